"""The generic fetcher: every row of one list (all pages, from both ends at once where the list can be
read backwards), or one item, of one resource over the Requester. It knows a Resource's declaration
(its paging strategy, family and schema), never a resource in particular.

The flow is one way: request -> page (JSON bytes) -> Arrow batch (`convert.PageDecoder`, bursts decoded
together) -> rows held to the request (`Request.conform`) -> the caller (a reader's stream, a fan-out's
table, the cache wrapping this fetcher).

Fetching from both ends: a list whose first page says `has_more` is paged from its start (in the asked
order) and from its end (in the reverse order) at once, until a page from one side holds an id the other
side already has. The overlap is cut away, so nothing is lost or duplicated, and the rows come out in the
asked order. This halves the wall time of long lists.

The far end is trusted only while it behaves as the list read backwards (see `_from_both_ends`); a
server that ignores the order parameter is paged from the front alone, so no row is lost or repeated.
An id that one side gives twice is a ResponseFormatError, and so is a list that has not ended after
`Settings.max_pages` page requests (both ends together). Lists without ids (usage buckets, paged by a
token) are paged from the front, and their rows must come in the declared order.

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
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import Any

import pyarrow as pa

from duckdb_openai.engine.bursts import DecodeQueue, ObjectQueue
from duckdb_openai.engine.convert import Page, PageDecoder
from duckdb_openai.engine.pagination import PageBudget
from duckdb_openai.errors import ResponseFormatError
from duckdb_openai.http.requester import Requester
from duckdb_openai.resources.base import Request, Resource
from duckdb_openai.resources.paging import CursorState, PageState, check_ascending

__all__ = ["Fetcher", "PageDecoder"]

_log = logging.getLogger(__name__)
_REVERSE = {"asc": "desc", "desc": "asc"}
#: Pages fetched one after the other before the far end is fetched too.
SEQUENTIAL_PAGES = 2

# Names the tests reach through this module.
_DecodeQueue = DecodeQueue


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


class Fetcher:
    """Fetches one resource over a Requester (which may serve other resources' fetchers too, sharing its
    pool and budget); use it on the client's event loop. It takes validated `Request`s only. It is a
    `source.Source`."""

    def __init__(self, requester: Requester, resource: Resource) -> None:
        self.client = requester
        self._resource = resource
        self.decoder = PageDecoder(resource.schema, id_column=resource.item_column, paging=resource.paging)
        self._decoding = DecodeQueue(self.decoder)
        self._objects = ObjectQueue(self.decoder)

    @property
    def resource(self) -> Resource:
        return self._resource

    async def _page(self, request: Request, state: PageState, budget: PageBudget) -> Page:
        budget.take()
        limit = self._resource.paging.limit
        params = [*request.params, (limit.param, str(limit.value(request.options))), *state.params()]
        body = await self.client.get(request.path, params, self._resource.family)
        page = await self._decoding.decode(body)
        state.advance(page.envelope, rows=page.batch.num_rows)
        return page

    async def pages(self, request: Request) -> AsyncGenerator[pa.RecordBatch, None]:
        """Every row of the list `request`, as batches in the asked order, held to the request."""
        if request.nothing:
            return
        async for batch in self._pages(request):
            yield request.conform(batch, received_at=self.client.server_time())

    async def _pages(self, request: Request) -> AsyncIterator[pa.RecordBatch]:
        assert request.resource is self._resource and not request.is_item
        paging = self._resource.paging
        front = paging.start(order=request.order, after=request.after)
        budget = PageBudget(self.client.settings.max_pages)
        both_ends = (
            self.client.settings.both_ends
            and paging.reversible
            and request.after is None
            and request.order is not None
        )
        seen: set[str] = set()
        ascending = paging.records.ascending
        last: Any = None
        # Two pages one after the other first: a list of up to two pages takes exactly as many requests
        # as it has pages, and fetching from both ends only saves round trips beyond that.
        for _ in range(SEQUENTIAL_PAGES if both_ends else sys.maxsize):
            page = await self._page(request, front, budget)
            _add_new(page.ids(), seen)
            if ascending is not None:
                last = check_ascending(page.batch.column(ascending).to_pylist(), last, ascending)
            yield page.batch
            if front.done:
                return
        assert isinstance(front, CursorState)
        async for batch in self._from_both_ends(request, front, seen, budget):
            yield batch

    async def _from_both_ends(
        self,
        request: Request,
        front: CursorState,
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
        assert front.order is not None
        back = self.resource.paging.start(order=_REVERSE[front.order])
        assert isinstance(back, CursorState)
        back_ids: set[str] = set()
        back_batches: list[pa.RecordBatch] = []
        # Where each side stands: the last id it gave (the cursors run ahead while a batch is yielded).
        front_last: str | None = front.after
        back_last: str | None = None
        tasks: dict[asyncio.Task[Page], str] = {
            asyncio.ensure_future(self._page(request, front, budget)): "front",
            asyncio.ensure_future(self._page(request, back, budget)): "back",
        }

        dropped: list[asyncio.Task[Page]] = []

        def distrust(reason: str) -> None:
            for task, side in list(tasks.items()):
                if side == "back":
                    task.cancel()
                    del tasks[task]
                    dropped.append(task)
            back_batches.clear()
            _log.info("%s: %s; paging from the front only", request.path, reason)

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
                            tasks[asyncio.ensure_future(self._page(request, front, budget))] = "front"
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
                            tasks[asyncio.ensure_future(self._page(request, back, budget))] = "back"
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
        """Every row of the list `request` as one table of the schema, from the API."""
        batches = [batch async for batch in self.pages(request)]
        return pa.Table.from_batches(batches, schema=self._resource.schema)

    def kept(self, request: Request) -> pa.Table | None:
        """Nothing is at hand without a request."""
        return None

    async def item(self, request: Request) -> pa.Table:
        """The one object of the item `request`, as a one-row table, from the API; an answer about
        another object is a ResponseFormatError."""
        body = await self.client.get(request.path, request.params, self._resource.family)
        batch = await self._objects.decode(body)
        got = batch.column(self.decoder.id_index)[0].as_py() if self.decoder.id_index is not None else None
        if got != request.item_id:
            raise ResponseFormatError(
                f"asked for {self._resource.item_key.name}={request.item_id!r}, the API answered with the "
                f"object {got!r}"
            )
        table = pa.Table.from_batches([batch], schema=self._resource.schema)
        return request.conform(table, received_at=self.client.server_time())
