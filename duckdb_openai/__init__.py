"""duckdb-openai: the OpenAI Assistants API's run steps as a typed, streaming DuckDB table.

>>> import duckdb, duckdb_openai                                            # doctest: +SKIP
>>> con = duckdb.connect()                                                  # doctest: +SKIP
>>> duckdb_openai.register(con)                                             # doctest: +SKIP
>>> con.sql("SELECT id, status, usage.total_tokens FROM run_steps('thread_..', 'run_..')")  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from duckdb_openai._version import __version__
from duckdb_openai.config import Settings
from duckdb_openai.errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    DuckDBOpenAIError,
    FetchError,
    InvalidIdError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseFormatError,
    RunFetchError,
    ServerError,
)
from duckdb_openai.resource import Resource
from duckdb_openai.run_steps import RUN_STEPS, RUN_STEPS_SCHEMA
from duckdb_openai.session import Client
from duckdb_openai.sql import Registration, register

__all__ = [
    "RUN_STEPS",
    "RUN_STEPS_SCHEMA",
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "Client",
    "ConfigurationError",
    "DuckDBOpenAIError",
    "FetchError",
    "InvalidIdError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "Registration",
    "ResponseFormatError",
    "RunFetchError",
    "ServerError",
    "Settings",
    "__version__",
    "read_run_step",
    "read_run_steps",
    "register",
]


def _read_list(
    resource: Resource,
    keys: dict[str, object],
    options: dict[str, object],
    client: Client | None,
    settings: Any,
) -> pa.RecordBatchReader:
    """A RecordBatchReader over the list; ids and options are checked before any request is sent."""
    request = resource.bind_list(keys, options)
    if client is not None:
        return client.read(request)
    own = Client(**settings)
    reader = own.read(request)

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            yield from reader
        finally:
            own.close()

    return pa.RecordBatchReader.from_batches(resource.schema, batches())


def _read_item(
    resource: Resource,
    keys: dict[str, object],
    item_id: object,
    options: dict[str, object],
    client: Client | None,
    settings: Any,
) -> pa.Table:
    request = resource.bind_item(keys, item_id, options)
    active = client if client is not None else Client(**settings)
    try:
        return active.read_item(request)
    finally:
        if client is None:
            active.close()


def read_run_steps(
    thread_id: str,
    run_id: str,
    *,
    sort: str = "asc",
    include_content: bool = False,
    client: Client | None = None,
    **settings: Any,
) -> pa.RecordBatchReader:
    """Every step of a run as a `pyarrow.RecordBatchReader` of RUN_STEPS_SCHEMA, streamed page by page:
    the first batch is there after the first response.

    `settings` are those of `Client` (api_key, base_url, ...); pass `client=` to reuse a connection pool.
    Ids and options are checked before any request is sent.
    """
    keys: dict[str, object] = {"thread_id": thread_id, "run_id": run_id}
    options: dict[str, object] = {"sort": sort, "include_content": include_content}
    return _read_list(RUN_STEPS, keys, options, client, settings)


def read_run_step(
    thread_id: str,
    run_id: str,
    step_id: str,
    *,
    include_content: bool = False,
    client: Client | None = None,
    **settings: Any,
) -> pa.Table:
    """One step (the retrieve endpoint) as a one-row table of RUN_STEPS_SCHEMA."""
    keys: dict[str, object] = {"thread_id": thread_id, "run_id": run_id}
    return _read_item(RUN_STEPS, keys, step_id, {"include_content": include_content}, client, settings)
