"""Decoding answers that arrive together as one batch, on the event loop or, when large, off it.

When many requests run at once their answers arrive in bursts; one decode per burst instead of one per
answer removes the decoder's fixed cost per call (the reader's, Arrow's conversion), which dominates for
small pages and single objects.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Generic, TypeVar

import pyarrow as pa

from duckdb_openai.engine.convert import Page, PageDecoder
from duckdb_openai.errors import ResponseFormatError

__all__ = ["THREAD_BYTES", "Burst", "DecodeQueue", "ObjectQueue"]

#: Bodies arriving together that are larger than this are decoded on a worker thread, so the event loop
#: (every other request's reads and timeouts) does not stop for them: about 30 ms of decoding.
THREAD_BYTES = 1 << 20

_T = TypeVar("_T")


class Burst(Generic[_T]):
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


class DecodeQueue(Burst[Page]):
    """List pages, decoded a burst at a time (`PageDecoder.decode_pages`)."""

    def _decode_many(self, bodies: list[bytes]) -> Sequence[Page | ResponseFormatError]:
        return self._decoder.decode_pages(bodies)


class ObjectQueue(Burst[pa.RecordBatch]):
    """Single objects (an item endpoint's answers), decoded a burst at a time
    (`PageDecoder.decode_objects`)."""

    def _decode_many(self, bodies: list[bytes]) -> Sequence[pa.RecordBatch | ResponseFormatError]:
        return self._decoder.decode_objects(bodies)
