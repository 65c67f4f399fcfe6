"""`Client`: one configured connection to the API (settings, background loop, pooled HTTP client) and
its synchronous face: streaming readers for Python, and the vectorized fan-out DuckDB calls.

>>> import duckdb_openai
>>> client = duckdb_openai.Client(api_key="sk-test", base_url="http://127.0.0.1:9/v1")
>>> client.close()
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from collections import Counter
from collections.abc import AsyncGenerator, Iterator, Mapping, Sequence
from typing import Any

import pyarrow as pa

from duckdb_openai.client import ApiClient, RequestStats
from duckdb_openai.config import Progress, Settings, check_on_error, check_progress
from duckdb_openai.errors import ConfigurationError
from duckdb_openai.fetch import Fetcher
from duckdb_openai.progress import FanOutProgress
from duckdb_openai.ratelimit import Pacer
from duckdb_openai.resource import Resource, check_id
from duckdb_openai.run_steps import RUN_STEPS
from duckdb_openai.runtime import CancelScope, LoopThread, install_hooks

__all__ = ["Client", "FanOutRequest"]

#: (keys, item id or None for the whole list, options); None stands for a row with a NULL key.
FanOutRequest = tuple[Mapping[str, object], str | None, Mapping[str, object]] | None


async def _next(agen: AsyncGenerator[pa.RecordBatch, None]) -> pa.RecordBatch:
    return await agen.__anext__()


class Client:
    """A configured client. Keyword arguments are those of `Settings.resolve` (api_key, base_url,
    organization, project, api_version, timeout, max_retries, max_concurrency, requests_per_second,
    http2, on_error, progress, allow_insecure_http)."""

    def __init__(
        self, *, settings: Settings | None = None, resource: Resource = RUN_STEPS, **kwargs: Any
    ) -> None:
        self.settings = settings if settings is not None else Settings.resolve(**kwargs)
        self.resource = resource
        self._lock = threading.Lock()
        self._loop: LoopThread | None = None
        self._api: ApiClient | None = None
        self._fetcher: Fetcher | None = None
        install_hooks()

    def __repr__(self) -> str:
        return f"Client(base_url={self.settings.base_url!r}, resource={self.resource.name!r})"

    # -- lifecycle -------------------------------------------------------------------------------------

    def _ensure(self) -> tuple[LoopThread, Fetcher]:
        with self._lock:
            if self._loop is None or not self._loop.alive:
                loop = LoopThread(name=f"duckdb-openai-{self.resource.name}")

                async def make() -> ApiClient:
                    return ApiClient(self.settings)

                self._api = loop.run(make())
                self._fetcher = Fetcher(self._api, self.resource)
                self._loop = loop
            assert self._fetcher is not None
            return self._loop, self._fetcher

    @property
    def stats(self) -> RequestStats:
        """Request counters of this client (requests, retries, throttled)."""
        return self._api.stats if self._api is not None else RequestStats()

    @property
    def pacer(self) -> Pacer | None:
        """The shared request budget (None before the first request)."""
        return self._api.pacer if self._api is not None else None

    def close(self) -> None:
        """Close the connection pool and stop the background thread; the client reopens on next use."""
        with self._lock:
            loop, api = self._loop, self._api
            self._loop = self._api = self._fetcher = None
        if loop is not None and loop.alive:
            if api is not None:
                with contextlib.suppress(Exception):
                    loop.run(api.aclose())
            loop.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- Python readers --------------------------------------------------------------------------------

    def read(
        self, keys: Mapping[str, object], options: Mapping[str, object] | None = None
    ) -> pa.RecordBatchReader:
        """Every row under `keys`, streamed page by page as a RecordBatchReader of the resource's schema.

        Ids and options are checked now, before any request is sent.
        """
        options = dict(options or {})
        self.resource.list_path(keys)
        self.resource.check_options(options)
        return pa.RecordBatchReader.from_batches(self.resource.schema, self._stream(dict(keys), options))

    def _stream(self, keys: dict[str, object], options: dict[str, object]) -> Iterator[pa.RecordBatch]:
        loop, fetcher = self._ensure()
        agen = fetcher.pages(keys, options, both_ends=self.settings.both_ends)
        try:
            with CancelScope(None) as scope:
                while True:
                    try:
                        yield loop.run(_next(agen), scope)
                    except StopAsyncIteration:
                        return
        finally:
            if loop.alive:
                with contextlib.suppress(Exception):
                    loop.run(agen.aclose())

    def read_item(
        self, keys: Mapping[str, object], item_id: str, options: Mapping[str, object] | None = None
    ) -> pa.Table:
        """The one object `item_id` under `keys` as a one-row table."""
        options = dict(options or {})
        self.resource.item_path(keys, item_id)
        loop, fetcher = self._ensure()
        with CancelScope(None) as scope:
            return loop.run(fetcher.item(keys, item_id, options), scope)

    # -- the DuckDB fan-out ----------------------------------------------------------------------------

    def fan_out(
        self,
        requests: Sequence[FanOutRequest],
        *,
        on_error: str | None = None,
        max_concurrency: int | None = None,
        progress: bool | str | None = None,
        owner: int | None = None,
    ) -> list[pa.Table | None]:
        """Fetch every request concurrently (None: no rows), in input order.

        `on_error` 'raise' fails on the first failed key, naming it; 'skip' leaves failed keys empty and
        warns once with the count and the reasons. `owner` ties the work to a DuckDB connection, so
        that connection's `interrupt()` cancels it.
        """
        policy = check_on_error(on_error) if on_error is not None else self.settings.on_error
        mode: Progress = check_progress(progress) if progress is not None else self.settings.progress
        if max_concurrency is not None and (
            isinstance(max_concurrency, bool) or not isinstance(max_concurrency, int) or max_concurrency < 1
        ):
            raise ConfigurationError(
                f"max_concurrency must be a whole number of at least 1, not {max_concurrency!r}"
            )
        loop, fetcher = self._ensure()
        total = sum(r is not None for r in requests)
        with FanOutProgress(total, fetcher.client.stats, mode) as bar, CancelScope(owner) as scope:

            def done(table: pa.Table | None) -> None:
                bar.advance(0 if table is None else table.num_rows)

            outcome = loop.run(
                fetcher.many(requests, skip_errors=policy == "skip", limit=max_concurrency, on_done=done),
                scope,
            )
        if outcome.skipped:
            reasons = Counter(f"{type(e).__name__}: {e}" for _, e in outcome.skipped)
            listed = "; ".join(f"{n} x {reason}" for reason, n in reasons.most_common(3))
            more = f"; and {len(reasons) - 3} other reasons" if len(reasons) > 3 else ""
            warnings.warn(
                f"skipped {len(outcome.skipped)} of {total} {self.resource.name} requests (on_error='skip'), "
                f"which yield no rows: {listed}{more}",
                RuntimeWarning,
                stacklevel=2,
            )
        return outcome.tables

    def check_keys(self, keys: Mapping[str, object], item_id: object = None) -> None:
        """Raise InvalidIdError for a malformed key (or item id when given)."""
        for key in self.resource.keys:
            check_id(key, keys.get(key.name))
        if item_id is not None:
            check_id(self.resource.item_key, item_id)
