"""The generic engine: every row of one resource key (all pages, fetched from both ends at once), one
item, or many keys concurrently. It knows a Resource's declaration, never run steps in particular.

Fetching from both ends: a list whose first page says `has_more` is paged from its start (in the asked
order) and from its end (in the reverse order) at once, until a page from one side holds an id the other
side already has. The overlap is cut away, so nothing is lost or duplicated, and the rows come out in the
asked order. This halves the wall time of long lists.

The far end is trusted only while it behaves as the list read backwards (see `_from_both_ends`); a
server that ignores the order parameter is paged from the front alone, so no row is lost or repeated.
An id that one side gives twice is a ResponseFormatError, and so is a list that has not ended after
`Settings.max_pages` page requests (both ends together).

The first two pages are fetched one after the other, so a list of up to 200 rows takes exactly as many
requests as it has pages. The price is a little overlap where the two sides meet: the request in flight
on the other side, and one more when both sides' pages tile the list exactly. That second one cannot
be avoided without knowing the length: after the same pages, a list of 300 and one of 400 look alike
to the client, yet one needs a single probe and the other a page from each side.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import pyarrow as pa

from duckdb_openai.engine.convert import Page, PageDecoder
from duckdb_openai.engine.pagination import Cursor, PageBudget
from duckdb_openai.errors import DuckDBOpenAIError, FetchError, ResponseFormatError, RunFetchError
from duckdb_openai.http.requester import Requester
from duckdb_openai.resources.base import Request, Resource

if TYPE_CHECKING:
    from duckdb_openai.engine.cache import Cache

__all__ = ["FetchOutcome", "Fetcher"]

_log = logging.getLogger(__name__)
_REVERSE = {"asc": "desc", "desc": "asc"}
#: Pages fetched one after the other before the far end is fetched too.
SEQUENTIAL_PAGES = 2
#: Bodies arriving together that are larger than this are decoded on a worker thread, so the event loop
#: (every other request's reads and timeouts) does not stop for them: about 30 ms of decoding.
THREAD_BYTES = 1 << 20


def _reverse(batch: pa.RecordBatch) -> pa.RecordBatch:
    return (
        batch.take(pa.array(range(batch.num_rows - 1, -1, -1), pa.int64())) if batch.num_rows > 1 else batch
    )


def _first_in(ids: Sequence[str], other: set[str]) -> int | None:
    """The index of the first id that is in `other`, or None."""
    if other:
        for index, item_id in enumerate(ids):
            if item_id in other:
                return index
    return None


def _add_new(ids: Sequence[str], seen: set[str]) -> None:
    """Add a page's ids to those its side of the list already gave; one seen before is an error (the
    list would hold that object twice)."""
    for item_id in ids:
        if item_id in seen:
            raise ResponseFormatError(
                f"the list gave the id {item_id!r} on two pages; refusing to return that object twice"
            )
        seen.add(item_id)


@dataclass
class FetchOutcome:
    """The rows of each key of a fan-out, and the keys that failed when failures are skipped."""

    tables: list[pa.Table | None]
    skipped: list[tuple[int, DuckDBOpenAIError]] = field(default_factory=list)


class Fetcher:
    """Fetches one resource over an Requester (which may serve other resources' fetchers too, sharing its
    pool and budget); use it on the client's event loop. It takes validated `Request`s only."""

    def __init__(self, client: Requester, resource: Resource, cache: Cache | None = None) -> None:
        self.client = client
        self.resource = resource
        #: `table` and `item` go through it (`cache.py`); `pages` streams without it.
        self.cache = cache
        self.decoder = PageDecoder(resource.schema, id_column=resource.item_column)
        self._decoding = _DecodeQueue(self.decoder)
        self._objects = _ObjectQueue(self.decoder)

    async def _page(
        self, path: str, base: Sequence[tuple[str, str]], cursor: Cursor, budget: PageBudget
    ) -> Page:
        budget.take()
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
        front = Cursor(request.order, after=request.after)
        if request.after is not None:
            both_ends = False  # the far end would be the list's end, not what follows `after`
        budget = PageBudget(self.client.settings.max_pages)
        seen: set[str] = set()
        # Two pages one after the other first: a list of up to two pages takes exactly as many requests
        # as it has pages, and fetching from both ends only saves round trips beyond that.
        for _ in range(SEQUENTIAL_PAGES if both_ends else sys.maxsize):
            page = await self._page(path, base, front, budget)
            _add_new(page.ids(), seen)
            yield page.batch
            if front.done:
                return
        async for batch in self._from_both_ends(path, base, front, seen, budget):
            yield batch

    async def _from_both_ends(
        self,
        path: str,
        base: Sequence[tuple[str, str]],
        front: Cursor,
        front_ids: set[str],
        budget: PageBudget,
    ) -> AsyncIterator[pa.RecordBatch]:
        """The rest of the list after the front's first pages, fetched from both ends until they meet.

        The far end is trusted only while it behaves as the list read backwards: the two sides must
        meet exactly where the other one stands (the first id one side finds of the other's is the
        other's latest id), and the far end must not reach the list's start without meeting the front.
        A server that ignores the order parameter serves the front's first page again, which meets the
        front at its first id, not its latest. Then the far end's rows are dropped and the front pages
        on alone: slower, never wrong. Its rows are held back until the sides meet, so nothing of it
        has been returned.
        """
        back = Cursor(_REVERSE[front.order])
        back_ids: set[str] = set()
        back_batches: list[pa.RecordBatch] = []
        # Where each side stands: the last id it gave (the cursors run ahead while a batch is yielded).
        front_last: str | None = front.after
        back_last: str | None = None
        tasks: dict[asyncio.Task[Page], str] = {
            asyncio.ensure_future(self._page(path, base, front, budget)): "front",
            asyncio.ensure_future(self._page(path, base, back, budget)): "back",
        }

        dropped: list[asyncio.Task[Page]] = []

        def distrust(reason: str) -> None:
            for task, side in list(tasks.items()):
                if side == "back":
                    task.cancel()
                    del tasks[task]
                    dropped.append(task)
            back_batches.clear()
            _log.info("%s: %s; paging from the front only", path, reason)

        try:
            met, trusted = False, True
            while tasks and not met:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                # Handle the front first so its rows stream out as early as possible.
                for task in sorted(done, key=lambda t: tasks.get(t) != "front"):
                    side = tasks.pop(task, None)
                    if side is None:  # a far-end task dropped by distrust() meanwhile
                        continue
                    page = task.result()
                    ids = page.ids()
                    if side == "front":
                        meet = _first_in(ids, back_ids) if trusted else None
                        if meet is not None and ids[meet] != back_last:
                            trusted = False
                            distrust(
                                f"the front met the far end at {ids[meet]!r}, not at its latest id "
                                f"{back_last!r}: the far end is not the list read backwards"
                            )
                            meet = None
                        _add_new(ids if meet is None else ids[:meet], front_ids)
                        batch = page.batch if meet is None else page.batch.slice(0, meet)
                        if batch.num_rows:
                            yield batch
                        if ids:
                            front_last = ids[-1]
                        if meet is not None:
                            met = True
                        elif front.done:
                            met, back_batches = True, []  # the front reached the end by itself
                        else:
                            tasks[asyncio.ensure_future(self._page(path, base, front, budget))] = "front"
                    elif trusted:
                        meet = _first_in(ids, front_ids)
                        if meet is not None and ids[meet] != front_last:
                            trusted = False
                            distrust(
                                f"the far end ({back.order_param}={back.order}) met the front at "
                                f"{ids[meet]!r}, not at its latest id {front_last!r}: it is not the list "
                                "read backwards"
                            )
                            continue
                        if meet is None and back.done:
                            trusted = False
                            distrust("the far end reached the list's start without meeting the front")
                            continue
                        _add_new(ids if meet is None else ids[:meet], back_ids)
                        back_batches.append(page.batch if meet is None else page.batch.slice(0, meet))
                        if ids:
                            back_last = ids[-1]
                        if meet is not None:
                            met = True
                        else:
                            tasks[asyncio.ensure_future(self._page(path, base, back, budget))] = "back"
                    if met:
                        break
        finally:
            for task in tasks:
                task.cancel()
            if tasks or dropped:  # let them unwind (and retrieve what they raised)
                await asyncio.gather(*tasks, *dropped, return_exceptions=True)
        for batch in reversed(back_batches):
            if batch.num_rows:
                yield _reverse(batch)

    async def table(self, request: Request) -> pa.Table:
        """Every row of the list `request` as one table of the schema (through the cache, if any)."""
        if self.cache is not None and request.after is None:
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
        budget = PageBudget(self.client.settings.max_pages)
        batches = []
        while not cursor.done:
            page = await self._page(request.path, request.params, cursor, budget)
            batches.append(page.batch)
        return pa.Table.from_batches(batches, schema=self.resource.schema)

    async def fetch_table(self, request: Request) -> pa.Table:
        """Every row of the list `request` as one table of the schema, from the API."""
        both_ends = self.client.settings.both_ends
        batches = [batch async for batch in self.pages(request, both_ends=both_ends)]
        return pa.Table.from_batches(batches, schema=self.resource.schema)

    async def fetch_item(self, request: Request) -> pa.Table:
        """The one object of the item `request`, as a one-row table, from the API; an answer about
        another object is a ResponseFormatError."""
        body = await self.client.get(request.path, request.params)
        batch = await self._objects.decode(body)
        got = batch.column(self.decoder.id_index)[0].as_py()
        if got != request.item_id:
            raise ResponseFormatError(
                f"asked for {self.resource.item_key.name}={request.item_id!r}, the API answered with the "
                f"object {got!r}"
            )
        return pa.Table.from_batches([batch], schema=self.resource.schema)

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


_T = TypeVar("_T")


class _Burst(Generic[_T]):
    """Decodes the answers that arrive in the same turn of the event loop together.

    When 32 requests run at once their answers arrive in bursts; one decode per burst instead of one
    per answer removes the decoder's fixed cost per call (the reader's, Arrow's conversion), which
    dominates for small pages and single objects. An answer that arrives alone is decoded alone, with
    no added wait. A burst larger than THREAD_BYTES is decoded on a worker thread (pyarrow's reader
    releases the GIL), so the loop keeps serving the other requests.
    """

    def __init__(self, decoder: PageDecoder) -> None:
        self._decoder = decoder
        self._pending: list[tuple[bytes, asyncio.Future[_T]]] = []
        self._threads: set[asyncio.Task[None]] = set()

    def _decode_many(self, bodies: list[bytes]) -> Sequence[_T | ResponseFormatError]:
        raise NotImplementedError

    async def decode(self, body: bytes) -> _T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[_T] = loop.create_future()
        if not self._pending:
            loop.call_soon(self._flush)
        self._pending.append((body, future))
        return await future

    def _flush(self) -> None:
        burst, self._pending = self._pending, []
        bodies = [body for body, _ in burst]
        if sum(len(body) for body in bodies) > THREAD_BYTES:
            task = asyncio.ensure_future(self._decode_in_thread(bodies, burst))
            self._threads.add(task)  # a task only weakly referenced by the loop could be collected
            task.add_done_callback(self._threads.discard)
            return
        try:
            results = self._decode_many(bodies)
        except Exception as exc:
            self._fail(burst, exc)
            return
        self._deliver(burst, results)

    async def _decode_in_thread(
        self, bodies: list[bytes], burst: list[tuple[bytes, asyncio.Future[_T]]]
    ) -> None:
        try:
            results = await asyncio.to_thread(self._decode_many, bodies)
        except Exception as exc:
            self._fail(burst, exc)
            return
        self._deliver(burst, results)

    def _fail(self, burst: list[tuple[bytes, asyncio.Future[_T]]], exc: Exception) -> None:
        # Every waiter hears of an unexpected failure, each in its own task.
        for _, future in burst:
            if not future.done():
                future.set_exception(exc)

    def _deliver(
        self, burst: list[tuple[bytes, asyncio.Future[_T]]], results: Sequence[_T | ResponseFormatError]
    ) -> None:
        for (_, future), result in zip(burst, results, strict=True):
            if future.done():  # its task was cancelled meanwhile
                continue
            if isinstance(result, ResponseFormatError):
                future.set_exception(result)
            else:
                future.set_result(result)


class _DecodeQueue(_Burst[Page]):
    """List pages, decoded a burst at a time (`PageDecoder.decode_pages`)."""

    def _decode_many(self, bodies: list[bytes]) -> Sequence[Page | ResponseFormatError]:
        return self._decoder.decode_pages(bodies)


class _ObjectQueue(_Burst[pa.RecordBatch]):
    """Single objects (an item endpoint's answers), decoded a burst at a time
    (`PageDecoder.decode_objects`)."""

    def _decode_many(self, bodies: list[bytes]) -> Sequence[pa.RecordBatch | ResponseFormatError]:
        return self._decoder.decode_objects(bodies)


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
