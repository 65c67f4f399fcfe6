"""duckdb-openai: the OpenAI Assistants API's run steps as a typed, streaming DuckDB table.

>>> import duckdb, duckdb_openai                                            # doctest: +SKIP
>>> con = duckdb.connect()                                                  # doctest: +SKIP
>>> duckdb_openai.register(con)                                             # doctest: +SKIP
>>> con.sql("SELECT id, status, usage.total_tokens FROM run_steps('thread_..', 'run_..')")  # doctest: +SKIP
"""

from __future__ import annotations

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
    InvalidIdError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseFormatError,
    RunFetchError,
    ServerError,
)
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
    own = client is None
    active = client if client is not None else Client(**settings)
    reader = active.read(
        {"thread_id": thread_id, "run_id": run_id}, {"sort": sort, "include_content": include_content}
    )
    if not own:
        return reader

    def batches() -> Any:
        try:
            yield from reader
        finally:
            active.close()

    return pa.RecordBatchReader.from_batches(RUN_STEPS_SCHEMA, batches())


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
    active = client if client is not None else Client(**settings)
    try:
        return active.read_item(
            {"thread_id": thread_id, "run_id": run_id}, step_id, {"include_content": include_content}
        )
    finally:
        if client is None:
            active.close()
