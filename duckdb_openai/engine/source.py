"""What the engine reads rows from: the fetcher (the API) or a wrapper around it (the cache), one
interface, chosen once per resource by the client.

A source yields every row of a list request as Arrow batches in the asked order, already held to the
request (`Request.conform`), and one object for an item request. Wrappers compose (a cache wraps the
fetcher, with the same interface); layers never call each other back.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Protocol

import pyarrow as pa

from duckdb_openai.resources.base import Request, Resource

__all__ = ["Source"]


class Source(Protocol):
    """Rows of one resource. Used on the client's event loop."""

    @property
    def resource(self) -> Resource: ...

    def pages(self, request: Request) -> AsyncGenerator[pa.RecordBatch, None]:
        """Every row of the list `request`, as batches in the asked order (none if it selects nothing)."""
        ...

    async def table(self, request: Request) -> pa.Table:
        """Every row of the list `request` as one table of the resource's schema."""
        ...

    async def item(self, request: Request) -> pa.Table:
        """The one object of the item `request`, as a one-row table."""
        ...

    def kept(self, request: Request) -> pa.Table | None:
        """What `table` or `item` would return for `request`, when it is at hand without awaiting
        anything (a cache's memory); None: ask them. The fan-out's fast path."""
        ...
