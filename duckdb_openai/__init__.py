"""duckdb-openai: OpenAI API data (the Assistants API's run steps, runs, messages, assistants and
threads) as typed, streaming DuckDB tables.

>>> import duckdb, duckdb_openai                                            # doctest: +SKIP
>>> con = duckdb.connect()                                                  # doctest: +SKIP
>>> duckdb_openai.register(con)                                             # doctest: +SKIP
>>> con.sql("SELECT id, status, usage.total_tokens FROM run_steps('thread_..', 'run_..')")  # doctest: +SKIP
"""

from __future__ import annotations

from duckdb_openai._version import __version__
from duckdb_openai.assistants import ASSISTANTS, ASSISTANTS_SCHEMA
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
from duckdb_openai.messages import MESSAGES, MESSAGES_SCHEMA
from duckdb_openai.readers import (
    read_assistant,
    read_assistants,
    read_message,
    read_messages,
    read_run,
    read_run_step,
    read_run_steps,
    read_runs,
    read_thread,
)
from duckdb_openai.resource import Resource
from duckdb_openai.resources import RESOURCES
from duckdb_openai.run_steps import RUN_STEPS, RUN_STEPS_SCHEMA
from duckdb_openai.runs import RUNS, RUNS_SCHEMA
from duckdb_openai.session import Client
from duckdb_openai.sql import Registration, register
from duckdb_openai.threads import THREADS, THREADS_SCHEMA

__all__ = [
    "ASSISTANTS",
    "ASSISTANTS_SCHEMA",
    "MESSAGES",
    "MESSAGES_SCHEMA",
    "RESOURCES",
    "RUNS",
    "RUNS_SCHEMA",
    "RUN_STEPS",
    "RUN_STEPS_SCHEMA",
    "THREADS",
    "THREADS_SCHEMA",
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
    "Resource",
    "ResponseFormatError",
    "RunFetchError",
    "ServerError",
    "Settings",
    "__version__",
    "read_assistant",
    "read_assistants",
    "read_message",
    "read_messages",
    "read_run",
    "read_run_step",
    "read_run_steps",
    "read_runs",
    "read_thread",
    "register",
]
