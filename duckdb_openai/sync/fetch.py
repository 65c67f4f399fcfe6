"""What a sync asks of the API, over the package's public `Client`: many requests at once with each
one's own outcome, a list streamed page by page, and the count of requests sent.

`Api.many` tells a 404 (the API no longer has the object: kept 30 days) and a 400 on an `after` cursor
(the object it names was deleted) from a success, per request. `Client.fan_out` reports a failed
request only as a missing table and a warning, so each failed one is asked once more on its own to
learn why (one request per failure, and failures are rare: a 404 is recorded and never asked again).
A fan-out that returned each request's error would save that request.

Newest-first reads that stop early (`Api.stream(..., sequential=True)`) go through a second client
that pages from one end only: the first client pages long lists from both ends, which would fetch the
list's oldest pages too.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Generator, Sequence
from typing import TypeAlias

import pyarrow as pa

from duckdb_openai.client import Client
from duckdb_openai.errors import APIError
from duckdb_openai.resources.base import Request

__all__ = ["Api", "Outcome"]

#: A request's result: its rows, or the API's error (404, 400) for it.
Outcome: TypeAlias = pa.Table | APIError


class Api:
    """The clients of one sync and the requests they sent."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self._sequential: Client | None = None

    @property
    def requests(self) -> int:
        """Requests sent so far (retries included), by both clients."""
        sequential = self._sequential.stats.requests if self._sequential is not None else 0
        return self.client.stats.requests + sequential

    def many(self, requests: Sequence[Request]) -> list[Outcome]:
        """Every request's rows (lists or items of one resource, fetched concurrently), or the API's error
        for it; other errors (connection, timeouts after retries, a broken answer) are raised."""
        if not requests:
            return []
        with warnings.catch_warnings():
            # The skipped ones are asked again below, which tells why; fan_out's summary is not news.
            warnings.simplefilter("ignore", RuntimeWarning)
            tables = self.client.fan_out(list(requests), on_error="skip", progress="off")
        outcomes: list[Outcome] = []
        for request, table in zip(requests, tables, strict=True):
            if table is not None:
                outcomes.append(table)
                continue
            try:
                outcomes.append(self.one(request))
            except APIError as exc:
                outcomes.append(exc)
        return outcomes

    def one(self, request: Request) -> pa.Table:
        """One request's rows (a whole list, or the item)."""
        if request.is_item:
            return self.client.read_item(request)
        return self.client.read(request).read_all()

    def stream(self, request: Request, *, sequential: bool = False) -> Generator[pa.RecordBatch, None, None]:
        """The rows of the list `request`, page by page in its order; `sequential` pages from one end
        only, for a read the caller may stop early."""
        client = self.client
        if sequential:
            if self._sequential is None:
                self._sequential = Client(settings=dataclasses.replace(self.client.settings, both_ends=False))
            client = self._sequential
        reader = client.read(request)
        try:
            yield from reader
        finally:
            reader.close()

    def close(self) -> None:
        if self._sequential is not None:
            self._sequential.close()
