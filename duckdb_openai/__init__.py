"""duckdb-openai: OpenAI API data as typed, streaming DuckDB tables: the Assistants API's run steps, runs,
messages, assistants and threads, and its successors' responses, conversations and stored chat
completions.

>>> import duckdb, duckdb_openai                                            # doctest: +SKIP
>>> con = duckdb.connect()                                                  # doctest: +SKIP
>>> duckdb_openai.register(con)                                             # doctest: +SKIP
>>> con.sql("SELECT id, status, usage.total_tokens FROM run_steps('thread_..', 'run_..')")  # doctest: +SKIP
"""

from __future__ import annotations

from duckdb_openai._version import __version__
from duckdb_openai.client import Client
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
from duckdb_openai.readers import (
    read_assistant,
    read_assistants,
    read_chat_completion,
    read_chat_completion_messages,
    read_chat_completions,
    read_conversation,
    read_conversation_items,
    read_message,
    read_messages,
    read_response,
    read_response_input_items,
    read_run,
    read_run_step,
    read_run_steps,
    read_runs,
    read_thread,
)
from duckdb_openai.resources import RESOURCES
from duckdb_openai.resources.assistants import ASSISTANTS, ASSISTANTS_SCHEMA
from duckdb_openai.resources.base import Resource
from duckdb_openai.resources.chat_completions import (
    CHAT_COMPLETION_MESSAGES,
    CHAT_COMPLETION_MESSAGES_SCHEMA,
    CHAT_COMPLETIONS,
    CHAT_COMPLETIONS_SCHEMA,
)
from duckdb_openai.resources.conversations import (
    CONVERSATION_ITEMS,
    CONVERSATION_ITEMS_SCHEMA,
    CONVERSATIONS,
    CONVERSATIONS_SCHEMA,
)
from duckdb_openai.resources.messages import MESSAGES, MESSAGES_SCHEMA
from duckdb_openai.resources.responses import (
    RESPONSE_INPUT_ITEMS,
    RESPONSE_INPUT_ITEMS_SCHEMA,
    RESPONSES,
    RESPONSES_SCHEMA,
)
from duckdb_openai.resources.run_steps import RUN_STEPS, RUN_STEPS_SCHEMA
from duckdb_openai.resources.runs import RUNS, RUNS_SCHEMA
from duckdb_openai.resources.threads import THREADS, THREADS_SCHEMA
from duckdb_openai.sql.register import Registration, register
from duckdb_openai.sync.run import sync
from duckdb_openai.sync.summary import SyncResult

__all__ = [
    "ASSISTANTS",
    "ASSISTANTS_SCHEMA",
    "CHAT_COMPLETIONS",
    "CHAT_COMPLETIONS_SCHEMA",
    "CHAT_COMPLETION_MESSAGES",
    "CHAT_COMPLETION_MESSAGES_SCHEMA",
    "CONVERSATIONS",
    "CONVERSATIONS_SCHEMA",
    "CONVERSATION_ITEMS",
    "CONVERSATION_ITEMS_SCHEMA",
    "MESSAGES",
    "MESSAGES_SCHEMA",
    "RESOURCES",
    "RESPONSES",
    "RESPONSES_SCHEMA",
    "RESPONSE_INPUT_ITEMS",
    "RESPONSE_INPUT_ITEMS_SCHEMA",
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
    "SyncResult",
    "__version__",
    "read_assistant",
    "read_assistants",
    "read_chat_completion",
    "read_chat_completion_messages",
    "read_chat_completions",
    "read_conversation",
    "read_conversation_items",
    "read_message",
    "read_messages",
    "read_response",
    "read_response_input_items",
    "read_run",
    "read_run_step",
    "read_run_steps",
    "read_runs",
    "read_thread",
    "register",
    "sync",
]
