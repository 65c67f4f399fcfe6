"""`Client`: one configured connection to the API (settings, background loop, pooled HTTP client) and
its synchronous face: streaming readers for Python, and the vectorized fan-out DuckDB calls.

>>> import duckdb_openai
>>> client = duckdb_openai.Client(api_key="sk-test", base_url="http://127.0.0.1:9/v1")
>>> client.close()
"""

from __future__ import annotations

import contextlib
import difflib
import threading
import time
import warnings
from collections import Counter
from collections.abc import AsyncGenerator, Iterable, Iterator, Sequence
from typing import Any

import pyarrow as pa

from duckdb_openai.config import Progress, Settings, check_on_error, check_progress
from duckdb_openai.engine.cache import Cache, CachedSource
from duckdb_openai.engine.fanout import FetchOutcome, many, wrap
from duckdb_openai.engine.fetch import Fetcher
from duckdb_openai.engine.runtime import CancelScope, LoopThread, install_hooks
from duckdb_openai.engine.source import Source
from duckdb_openai.errors import ConfigurationError, DuckDBOpenAIError
from duckdb_openai.http.ratelimit import Pacer
from duckdb_openai.http.requester import Requester, RequestStats
from duckdb_openai.progress import FanOutProgress
from duckdb_openai.resources.base import Request, Resource

__all__ = ["Client", "check_keywords"]


def check_keywords(given: Iterable[str], *, own: Sequence[str], where: str, noun: str = "option") -> None:
    """Refuse a keyword argument that is neither one of `where`'s own (`own`) nor a setting, naming the
    closest valid one: a misspelled option must fail, not be taken for a setting or ignored.

    >>> check_keywords(["sortt"], own=["sort", "client"], where="read_runs()")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    duckdb_openai.errors.ConfigurationError: unknown option 'sortt': did you mean 'sort'? read_runs() ...
    """
    settings = Settings.names()
    unknown = sorted(set(given) - {*own, *settings})
    if not unknown:
        return
    name = unknown[0]
    close = difflib.get_close_matches(name, [*own, *settings], n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    also = f" (also unknown: {', '.join(map(repr, unknown[1:]))})" if unknown[1:] else ""
    raise ConfigurationError(
        f"unknown {noun} {name!r}: {hint}{where} takes {', '.join(own)}, and the settings: "
        f"{', '.join(settings)}{also}"
    )


async def _next(agen: AsyncGenerator[pa.RecordBatch, None]) -> pa.RecordBatch:
    return await agen.__anext__()


class Client:
    """A configured client: one background loop thread, one connection pool and one rate budget for
    every resource it reads, so `max_concurrency` bounds the whole client.

    The thread and the pool start on first use and stop after `IDLE_CLOSE_S` seconds without a call (or
    at `close()`), and start again when needed: a client whose connection was closed, but which is
    still referenced, holds no thread or socket for long.

    Keyword arguments are those of `Settings.resolve`: api_key (or token_provider), base_url,
    organization, project, api_version, timeout, max_retries, max_concurrency, requests_per_second, http2,
    both_ends, on_error, progress, allow_insecure_http, max_wait, max_response_bytes, max_pages, proxy,
    verify, cache, cache_dir, final_after, cache_max_bytes.

    `cache` is what the client keeps of data that can no longer change (`engine/cache.py`): in memory by
    default, in `cache_dir` when given, None with `cache=False`; it outlives the idle close."""

    def __init__(self, *, settings: Settings | None = None, **kwargs: Any) -> None:
        check_keywords(kwargs, own=["settings"], where="Client()", noun="setting")
        if settings is not None and kwargs:
            raise ConfigurationError(
                f"pass either settings= or the settings as keywords ({', '.join(sorted(kwargs))}) to "
                "Client(), not both"
            )
        self.settings = settings if settings is not None else Settings.resolve(**kwargs)
        self.cache: Cache | None = Cache.for_settings(self.settings)
        self._lock = threading.Lock()
        self._loop: LoopThread | None = None
        self._api: Requester | None = None
        self._sources: dict[str, Source] = {}
        #: Calls in progress, and the timer that frees the thread and sockets after IDLE_CLOSE_S without.
        self._busy = 0
        self._idle_timer: threading.Timer | None = None
        install_hooks()

    def __repr__(self) -> str:
        return f"Client(base_url={self.settings.base_url!r})"

    # -- lifecycle -------------------------------------------------------------------------------------

    #: Seconds without a call after which the thread and connection pool are freed.
    IDLE_CLOSE_S = 30.0

    @contextlib.contextmanager
    def _using(self, resource: Resource) -> Iterator[tuple[LoopThread, Source]]:
        """The loop and the resource's source, kept from idling out while the block runs."""
        self.settings.check_credential(resource.family.credential)
        with self._lock:
            self._busy += 1
            if self._idle_timer is not None:
                self._idle_timer.cancel()
                self._idle_timer = None
        try:
            yield self._ensure(resource)
        finally:
            with self._lock:
                self._busy -= 1
                if self._busy == 0 and self._loop is not None:
                    timer = threading.Timer(self.IDLE_CLOSE_S, self._close_if_idle)
                    timer.daemon = True
                    timer.start()
                    self._idle_timer = timer

    def _close_if_idle(self) -> None:
        with self._lock:
            if self._busy or self._idle_timer is None:
                return
            self._idle_timer = None
        self.close()

    def _ensure(self, resource: Resource) -> tuple[LoopThread, Source]:
        with self._lock:
            if self._loop is None or not self._loop.alive:
                loop = LoopThread(name="duckdb-openai")

                async def make() -> Requester:
                    return Requester(self.settings)

                self._api = loop.run(make())
                self._sources = {}
                self._loop = loop
            source = self._sources.get(resource.name)
            if source is None:
                assert self._api is not None
                # The one flow of every form: the API, wrapped by the cache where one is kept.
                source = Fetcher(self._api, resource)
                if self.cache is not None and resource.lifecycle is not None:
                    source = CachedSource(source, self.cache, token=self._api.token)
                self._sources[resource.name] = source
            return self._loop, source

    @property
    def stats(self) -> RequestStats:
        """Request counters of this client (requests, retries, throttled)."""
        return self._api.stats if self._api is not None else RequestStats()

    def server_time(self) -> float:
        """The server's clock now (seconds since the epoch), as the last answer's `Date` header showed
        it; the local clock before any answer."""
        api = self._api
        return api.server_time() if api is not None else time.time()

    @property
    def pacer(self) -> Pacer | None:
        """The shared request budget (None before the first request)."""
        return self._api.pacer if self._api is not None else None

    def close(self) -> None:
        """Close the connection pool and stop the background thread; the client reopens on next use."""
        with self._lock:
            loop, api = self._loop, self._api
            self._loop, self._api, self._sources = None, None, {}
            if self._idle_timer is not None:
                self._idle_timer.cancel()
                self._idle_timer = None
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

    def read(self, request: Request, *, owner: int | None = None) -> pa.RecordBatchReader:
        """Every row of the list `request` (see `Resource.bind_list`), streamed page by page as a
        RecordBatchReader of the resource's schema: the first batch is there after the first response.
        A failure is the resource's FetchError naming the request (the same as in a fan-out).

        `owner` ties the stream to a DuckDB connection, so that connection's `interrupt()` cancels it."""
        return pa.RecordBatchReader.from_batches(request.resource.schema, self._stream(request, owner))

    def _stream(self, request: Request, owner: int | None) -> Iterator[pa.RecordBatch]:
        with self._using(request.resource) as (loop, source):
            agen = source.pages(request)
            try:
                with CancelScope(owner) as scope:
                    while True:
                        failure: DuckDBOpenAIError | None = None
                        try:
                            batch = loop.run(_next(agen), scope)
                        except StopAsyncIteration:
                            return
                        except DuckDBOpenAIError as exc:
                            failure = wrap(request, exc)
                        if failure is not None:
                            # Raised here, outside the handler: it keeps its cause as `.cause`, and
                            # nothing that saw the request as its context.
                            raise failure
                        yield batch
            finally:
                if loop.alive:
                    with contextlib.suppress(Exception):
                        loop.run(agen.aclose())

    def read_item(self, request: Request) -> pa.Table:
        """The one object of the item `request` (see `Resource.bind_item`) as a one-row table."""
        with self._using(request.resource) as (loop, source), CancelScope(None) as scope:
            try:
                return loop.run(source.item(request), scope)
            except DuckDBOpenAIError as exc:
                failure = wrap(request, exc)
        raise failure  # outside the handler, as in _stream

    # -- the DuckDB fan-out ----------------------------------------------------------------------------

    def fan_out(
        self,
        requests: Sequence[Request | None],
        *,
        on_error: str | None = None,
        max_concurrency: int | None = None,
        progress: bool | str | None = None,
        owner: int | None = None,
    ) -> list[pa.Table | None]:
        """Fetch every request concurrently (None: no rows), in input order. The requests are of one
        resource.

        `on_error` 'raise' fails on the first failed key, naming it; 'skip' leaves failed keys empty and
        warns once with the count and the reasons; a request's own `on_error` wins. `owner` ties the work
        to a DuckDB connection, so that connection's `interrupt()` cancels it.
        """
        policy = check_on_error(on_error) if on_error is not None else self.settings.on_error
        mode: Progress = check_progress(progress) if progress is not None else self.settings.progress
        if max_concurrency is not None and (
            isinstance(max_concurrency, bool) or not isinstance(max_concurrency, int) or max_concurrency < 1
        ):
            raise ConfigurationError(
                f"max_concurrency must be a whole number of at least 1, not {max_concurrency!r}"
            )
        present = [r for r in requests if r is not None]
        if not present:
            return [None] * len(requests)
        resource = present[0].resource
        if any(r.resource is not resource for r in present):
            raise ValueError("fan_out takes requests of one resource")
        items = present[0].is_item
        units = (resource.item_name + "s", resource.progress_units[1]) if items else resource.progress_units
        with (
            self._using(resource) as (loop, source),
            FanOutProgress(len(present), self.stats, mode, units=units) as bar,
            CancelScope(owner) as scope,
        ):

            def done(table: pa.Table | None) -> None:
                bar.advance(0 if table is None else table.num_rows)

            workers = 2 * (max_concurrency or self.settings.max_concurrency)
            outcome: FetchOutcome = loop.run(
                many(
                    source,
                    requests,
                    skip_errors=policy == "skip",
                    workers=workers,
                    limit=max_concurrency,
                    on_done=done,
                ),
                scope,
            )
        if outcome.skipped:
            reasons = Counter(f"{type(e).__name__}: {e}" for _, e in outcome.skipped)
            listed = "; ".join(f"{n} x {reason}" for reason, n in reasons.most_common(3))
            more = f"; and {len(reasons) - 3} other reasons" if len(reasons) > 3 else ""
            what = present[0].name
            warnings.warn(
                f"skipped {len(outcome.skipped)} of {len(present)} {what} requests (on_error='skip'), "
                f"which yield no rows: {listed}{more}",
                RuntimeWarning,
                stacklevel=2,
            )
        return outcome.tables
