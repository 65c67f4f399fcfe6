"""Many requests of one resource at once: a LATERAL join's rows, fetched concurrently under the client's
limit, each failure either raised (naming the resource and keys) or skipped and reported.

>>> outcome = await many(source, requests, skip_errors=False, workers=64)   # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from duckdb_openai.engine.source import Source
from duckdb_openai.errors import DuckDBOpenAIError, FetchError
from duckdb_openai.resources.base import Request

__all__ = ["FetchOutcome", "many", "wrap"]


@dataclass
class FetchOutcome:
    """The rows of each key of a fan-out, and the keys that failed when failures are skipped."""

    tables: list[pa.Table | None]
    skipped: list[tuple[int, DuckDBOpenAIError]] = field(default_factory=list)


def wrap(request: Request, exc: DuckDBOpenAIError) -> DuckDBOpenAIError:
    """The error naming what `request` asked for, caused by `exc`: the resource's declared FetchError
    (RunFetchError for run steps), whatever form asked; one already naming its request is kept."""
    if isinstance(exc, FetchError):
        return exc
    return request.resource.fetch_error.for_cause(
        f"{request.name} failed for {request.describe()}: {type(exc).__name__}: {exc}",
        resource=request.name,
        keys={
            **request.keys,
            **({request.resource.item_key.name: request.item_id} if request.is_item else {}),
        },
        cause=exc,
    )


async def many(
    source: Source,
    requests: Sequence[Request | None],
    *,
    skip_errors: bool,
    workers: int,
    limit: int | None = None,
    on_done: Callable[[pa.Table | None], None] | None = None,
) -> FetchOutcome:
    """Fetch every request (a list or an item) concurrently; None yields no rows. The requester's
    semaphore bounds the requests in flight. With `skip_errors` (or a request's own on_error='skip'),
    a failed key yields no rows and is reported in `skipped`; otherwise the first failure cancels the
    rest and raises the resource's FetchError naming the keys.

    A pool of `workers` (twice the concurrency) takes the requests in turn: enough that a freed
    connection slot always has a request waiting for it, few enough that starting thousands of
    coroutines does not hold up the first requests (one task per key delayed them by 50-170 ms per
    1,000 keys)."""
    outcome = FetchOutcome([None] * len(requests))
    gate = asyncio.Semaphore(limit) if limit else None
    todo = []
    for index, request in enumerate(requests):
        if request is None:
            continue
        at_hand = source.kept(request)  # a cache's memory: no coroutine, no turn of the loop
        if at_hand is None:
            todo.append((index, request))
            continue
        outcome.tables[index] = at_hand
        if on_done is not None:
            on_done(at_hand)
    queue = iter(todo)

    async def fetch(request: Request) -> pa.Table:
        return await (source.item(request) if request.is_item else source.table(request))

    async def one(index: int, request: Request) -> None:
        table: pa.Table | None = None
        failure: DuckDBOpenAIError | None = None
        try:
            if gate is None:
                table = await fetch(request)
            else:
                async with gate:
                    table = await fetch(request)
        except DuckDBOpenAIError as exc:
            skip = skip_errors if request.on_error is None else request.on_error == "skip"
            if skip:
                outcome.skipped.append((index, exc))
                table = None
            else:
                failure = wrap(request, exc)
        if failure is not None:
            raise failure  # outside the handler: the cause is `.cause`, not the context
        outcome.tables[index] = table
        if on_done is not None:
            on_done(table)

    async def worker() -> None:
        for index, request in queue:  # one shared iterator: each request goes to one worker
            await one(index, request)

    async with _Group() as group:
        for _ in range(min(len(todo), workers)):
            group.create_task(worker())
    return outcome


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
