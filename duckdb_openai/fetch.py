"""The generic engine: every row of one resource key (all pages, fetched from both ends at once), one
item, or many keys concurrently. It knows a Resource's declaration, never run steps in particular.

Fetching from both ends: a list whose first page says `has_more` is paged from its start (in the asked
order) and from its end (in the reverse order) at once, until a page from one side holds an id the other
side already has. The overlap is cut away, so nothing is lost or duplicated, and the rows come out in the
asked order. This halves the wall time of long lists.

The first two pages are fetched one after the other, so a list of up to 200 rows takes exactly as many
requests as it has pages. The price is a little overlap where the two sides meet: the request in flight
on the other side, and one more when both sides' pages tile the list exactly. That second one cannot
be avoided without knowing the length: after the same pages, a list of 300 and one of 400 look alike
to the client, yet one needs a single probe and the other a page from each side.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from duckdb_openai.client import ApiClient
from duckdb_openai.convert import Page, PageDecoder
from duckdb_openai.errors import DuckDBOpenAIError, FetchError, RunFetchError
from duckdb_openai.pagination import Cursor
from duckdb_openai.resource import Request, Resource

if TYPE_CHECKING:
    from duckdb_openai.cache import Cache

__all__ = ["FetchOutcome", "Fetcher"]

_REVERSE = {"asc": "desc", "desc": "asc"}
#: Pages fetched one after the other before the far end is fetched too.
SEQUENTIAL_PAGES = 2


def _reverse(batch: pa.RecordBatch) -> pa.RecordBatch:
    return (
        batch.take(pa.array(range(batch.num_rows - 1, -1, -1), pa.int64())) if batch.num_rows > 1 else batch
    )


def _cut(page: Page, stop: set[str]) -> tuple[pa.RecordBatch, bool]:
    """The page's rows before the first id in `stop`, and whether such an id was found."""
    if not stop:
        return page.batch, False
    for index, step_id in enumerate(page.ids()):
        if step_id in stop:
            return page.batch.slice(0, index), True
    return page.batch, False


@dataclass
class FetchOutcome:
    """The rows of each key of a fan-out, and the keys that failed when failures are skipped."""

    tables: list[pa.Table | None]
    skipped: list[tuple[int, DuckDBOpenAIError]] = field(default_factory=list)


class Fetcher:
    """Fetches one resource over an ApiClient (which may serve other resources' fetchers too, sharing its
    pool and budget); use it on the client's event loop. It takes validated `Request`s only."""

    def __init__(self, client: ApiClient, resource: Resource, cache: Cache | None = None) -> None:
        self.client = client
        self.resource = resource
        #: `table` and `item` go through it (`cache.py`); `pages` streams without it.
        self.cache = cache
        self.decoder = PageDecoder(resource.schema, id_column=resource.item_column)
        self._decoding = _DecodeQueue(self.decoder)

    async def _page(self, path: str, base: Sequence[tuple[str, str]], cursor: Cursor) -> Page:
        body = await self.client.get(
            path, [*base, ("limit", str(self.resource.page_limit)), *cursor.params()]
        )
        page = await self._decoding.decode(body)
        cursor.advance(has_more=page.has_more, last_id=page.last_id, count=page.batch.num_rows)
        return page

    async def pages(
        self, request: Request, *, both_ends: bool = True
    ) -> AsyncGenerator[pa.RecordBatch, None]:
        """Every row of the list `request`, as batches in the asked order."""
        assert request.order is not None and request.resource is self.resource
        path, base = request.path, request.params
        front = Cursor(request.order)
        seen: set[str] = set()
        # Two pages one after the other first: a list of up to two pages takes exactly as many requests
        # as it has pages, and fetching from both ends only saves round trips beyond that.
        for _ in range(SEQUENTIAL_PAGES if both_ends else sys.maxsize):
            page = await self._page(path, base, front)
            yield page.batch
            if front.done:
                return
            if both_ends:
                seen.update(page.ids())
        async for batch in self._from_both_ends(path, base, front, seen):
            yield batch

    async def _from_both_ends(
        self, path: str, base: Sequence[tuple[str, str]], front: Cursor, front_ids: set[str]
    ) -> AsyncIterator[pa.RecordBatch]:
        back = Cursor(_REVERSE[front.order])
        back_ids: set[str] = set()
        back_batches: list[pa.RecordBatch] = []
        tasks: dict[asyncio.Task[Page], str] = {
            asyncio.ensure_future(self._page(path, base, front)): "front",
            asyncio.ensure_future(self._page(path, base, back)): "back",
        }
        try:
            met = False
            while tasks and not met:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                # Handle the front first so its rows stream out as early as possible.
                for task in sorted(done, key=lambda t: tasks[t] != "front"):
                    side = tasks.pop(task)
                    page = task.result()
                    if side == "front":
                        batch, met = _cut(page, back_ids)
                        if batch.num_rows:
                            yield batch
                        front_ids.update(page.ids())
                        if not met and front.done:
                            met, back_batches = True, []  # the front reached the end by itself
                        elif not met:
                            tasks[asyncio.ensure_future(self._page(path, base, front))] = "front"
                    else:
                        batch, met = _cut(page, front_ids)
                        back_batches.append(batch)
                        back_ids.update(page.ids())
                        if (
                            not met and back.done
                        ):  # pragma: no cover - the first front page is always met first
                            met = True
                        elif not met:
                            tasks[asyncio.ensure_future(self._page(path, base, back))] = "back"
                    if met:
                        break
        finally:
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
        for batch in reversed(back_batches):
            if batch.num_rows:
                yield _reverse(batch)

    async def table(self, request: Request) -> pa.Table:
        """Every row of the list `request` as one table of the schema (through the cache, if any)."""
        if self.cache is not None:
            return await self.cache.table(self, request)
        return await self.fetch_table(request)

    async def item(self, request: Request) -> pa.Table:
        """The one object of the item `request`, as a one-row table (through the cache, if any)."""
        if self.cache is not None:
            return await self.cache.item(self, request)
        return await self.fetch_item(request)

    async def fetch_after(self, request: Request, after: str) -> pa.Table:
        """Every row of the list `request` after the id `after`, ascending: one chain of pages (the
        cache's request for what follows the rows it keeps)."""
        cursor = Cursor("asc", after=after)
        batches = []
        while not cursor.done:
            page = await self._page(request.path, request.params, cursor)
            batches.append(page.batch)
        return pa.Table.from_batches(batches, schema=self.resource.schema)

    async def fetch_table(self, request: Request) -> pa.Table:
        """Every row of the list `request` as one table of the schema, from the API."""
        both_ends = self.client.settings.both_ends
        batches = [batch async for batch in self.pages(request, both_ends=both_ends)]
        return pa.Table.from_batches(batches, schema=self.resource.schema)

    async def fetch_item(self, request: Request) -> pa.Table:
        """The one object of the item `request`, as a one-row table, from the API."""
        body = await self.client.get(request.path, request.params)
        return pa.Table.from_batches([self.decoder.decode_object(body)], schema=self.resource.schema)

    async def many(
        self,
        requests: Sequence[Request | None],
        *,
        skip_errors: bool,
        limit: int | None = None,
        on_done: Callable[[pa.Table | None], None] | None = None,
    ) -> FetchOutcome:
        """Fetch every request (a list or an item) concurrently; None yields no rows. The client's
        semaphore bounds the requests in flight. With `skip_errors` (or a request's own on_error='skip'),
        a failed key yields no rows and is reported in `skipped`; otherwise the first failure cancels the
        rest and raises FetchError naming the resource and the keys.

        A pool of workers, twice the concurrency, takes the requests in turn: enough that a freed
        connection slot always has a request waiting for it, few enough that starting thousands of
        coroutines does not hold up the first requests (one task per key delayed them by 50-170 ms per
        1,000 keys)."""
        outcome = FetchOutcome([None] * len(requests))
        gate = asyncio.Semaphore(limit) if limit else None
        todo = [(index, request) for index, request in enumerate(requests) if request is not None]
        workers = min(len(todo), 2 * (limit or self.client.settings.max_concurrency))
        queue = iter(todo)

        async def fetch(request: Request) -> pa.Table:
            return await (self.item(request) if request.is_item else self.table(request))

        async def one(index: int, request: Request) -> None:
            table: pa.Table | None
            try:
                if gate is None:
                    table = await fetch(request)
                else:
                    async with gate:
                        table = await fetch(request)
            except DuckDBOpenAIError as exc:
                skip = skip_errors if request.on_error is None else request.on_error == "skip"
                if not skip:
                    raise wrap(request, exc) from exc
                outcome.skipped.append((index, exc))
                table = None
            outcome.tables[index] = table
            if on_done is not None:
                on_done(table)

        async def worker() -> None:
            for index, request in queue:  # one shared iterator: each request goes to one worker
                await one(index, request)

        async with _Group() as group:
            for _ in range(workers):
                group.create_task(worker())
        return outcome


def wrap(request: Request, exc: DuckDBOpenAIError) -> FetchError:
    """The FetchError naming what `request` asked for (RunFetchError for run steps), caused by `exc`."""
    cls = RunFetchError if request.resource.name == "run_steps" else FetchError
    return cls(
        f"{request.name} failed for {request.describe()}: {type(exc).__name__}: {exc}",
        resource=request.name,
        keys={
            **request.keys,
            **({request.resource.item_key.name: request.item_id} if request.is_item else {}),
        },
        cause=exc,
    )


class _DecodeQueue:
    """Decodes the pages that arrive in the same turn of the event loop together.

    When 32 requests run at once their answers arrive in bursts; one decode per burst instead of one
    per page removes the reader's fixed cost per call, which dominates for small pages. A page that
    arrives alone is decoded alone, with no added wait.
    """

    def __init__(self, decoder: PageDecoder) -> None:
        self._decoder = decoder
        self._pending: list[tuple[bytes, asyncio.Future[Page]]] = []

    async def decode(self, body: bytes) -> Page:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Page] = loop.create_future()
        if not self._pending:
            loop.call_soon(self._flush)
        self._pending.append((body, future))
        return await future

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        try:
            results = self._decoder.decode_pages([body for body, _ in batch])
        except Exception as exc:  # every waiter hears of an unexpected failure, each in its own task
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():  # its task was cancelled meanwhile
                continue
            if isinstance(result, Page):
                future.set_result(result)
            else:
                future.set_exception(result)


class _Group:
    """Like asyncio.TaskGroup (3.11+), but raises the first failure itself rather than an ExceptionGroup."""

    def __init__(self) -> None:
        self._tasks: list[asyncio.Task[None]] = []

    def create_task(self, coro: Coroutine[Any, Any, None]) -> None:
        self._tasks.append(asyncio.ensure_future(coro))

    async def __aenter__(self) -> _Group:
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            await asyncio.gather(*self._tasks)
        except BaseException:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            raise
