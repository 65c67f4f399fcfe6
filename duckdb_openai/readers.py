"""Python readers: each resource as pyarrow data, without DuckDB (`read_<list>` and `read_<item>`, named
as the SQL functions are).

A list is a `pyarrow.RecordBatchReader` streamed page by page (the first batch is there after the first
response); one object is a one-row `pyarrow.Table`. Every reader takes `client=` to reuse a `Client`'s
connection pool, or the `Client` settings (api_key, base_url, ...) to make one for this read. Ids and
options are checked before any request is sent.

>>> reader = read_runs("thread_abc123", base_url="http://127.0.0.1:8000/v1")  # doctest: +SKIP
>>> reader.read_all().to_pandas()                                          # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pyarrow as pa

from duckdb_openai.client import Client, check_keywords
from duckdb_openai.errors import ConfigurationError
from duckdb_openai.resources.assistants import ASSISTANTS
from duckdb_openai.resources.base import Resource
from duckdb_openai.resources.chat_completions import CHAT_COMPLETION_MESSAGES, CHAT_COMPLETIONS
from duckdb_openai.resources.conversations import CONVERSATION_ITEMS, CONVERSATIONS
from duckdb_openai.resources.messages import MESSAGES
from duckdb_openai.resources.responses import RESPONSE_INPUT_ITEMS, RESPONSES
from duckdb_openai.resources.run_steps import RUN_STEPS
from duckdb_openai.resources.runs import RUNS
from duckdb_openai.resources.threads import THREADS

__all__ = [
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
]


def _check(
    where: str, options: Mapping[str, object], client: Client | None, settings: Mapping[str, Any]
) -> None:
    """Refuse a misspelled option, which would otherwise be taken for a setting (`sortt=` for `sort=`), and
    settings beside `client=`, which has its own: neither may be ignored silently."""
    check_keywords(settings, own=[*options, "client"], where=where)
    if client is not None and settings:
        raise ConfigurationError(
            f"pass either client= or settings ({', '.join(sorted(settings))}) to {where}, not both: "
            "the client has its own"
        )


def _list(
    resource: Resource,
    keys: Mapping[str, object],
    options: Mapping[str, object],
    client: Client | None,
    settings: Mapping[str, Any],
) -> pa.RecordBatchReader:
    _check(f"read_{resource.name}()", options, client, settings)
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


def _item(
    resource: Resource,
    keys: Mapping[str, object],
    item_id: object,
    options: Mapping[str, object],
    client: Client | None,
    settings: Mapping[str, Any],
) -> pa.Table:
    _check(f"read_{resource.item_name}()", options, client, settings)
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
    """Every step of a run (RUN_STEPS_SCHEMA), in `sort` order of creation."""
    keys = {"thread_id": thread_id, "run_id": run_id}
    return _list(RUN_STEPS, keys, {"sort": sort, "include_content": include_content}, client, settings)


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
    keys = {"thread_id": thread_id, "run_id": run_id}
    return _item(RUN_STEPS, keys, step_id, {"include_content": include_content}, client, settings)


def read_runs(
    thread_id: str, *, sort: str = "asc", client: Client | None = None, **settings: Any
) -> pa.RecordBatchReader:
    """Every run of a thread (RUNS_SCHEMA), in `sort` order of creation."""
    return _list(RUNS, {"thread_id": thread_id}, {"sort": sort}, client, settings)


def read_run(thread_id: str, run_id: str, *, client: Client | None = None, **settings: Any) -> pa.Table:
    """One run as a one-row table of RUNS_SCHEMA."""
    return _item(RUNS, {"thread_id": thread_id}, run_id, {}, client, settings)


def read_messages(
    thread_id: str,
    *,
    run_id: str | None = None,
    sort: str = "asc",
    client: Client | None = None,
    **settings: Any,
) -> pa.RecordBatchReader:
    """Every message of a thread (MESSAGES_SCHEMA), or only those `run_id` created (the API's filter)."""
    return _list(MESSAGES, {"thread_id": thread_id}, {"run_id": run_id, "sort": sort}, client, settings)


def read_message(
    thread_id: str, message_id: str, *, client: Client | None = None, **settings: Any
) -> pa.Table:
    """One message as a one-row table of MESSAGES_SCHEMA."""
    return _item(MESSAGES, {"thread_id": thread_id}, message_id, {}, client, settings)


def read_assistants(
    *, sort: str = "asc", client: Client | None = None, **settings: Any
) -> pa.RecordBatchReader:
    """Every assistant (ASSISTANTS_SCHEMA), in `sort` order of creation."""
    return _list(ASSISTANTS, {}, {"sort": sort}, client, settings)


def read_assistant(assistant_id: str, *, client: Client | None = None, **settings: Any) -> pa.Table:
    """One assistant as a one-row table of ASSISTANTS_SCHEMA."""
    return _item(ASSISTANTS, {}, assistant_id, {}, client, settings)


def read_thread(thread_id: str, *, client: Client | None = None, **settings: Any) -> pa.Table:
    """One thread as a one-row table of THREADS_SCHEMA (the API cannot list threads)."""
    return _item(THREADS, {}, thread_id, {}, client, settings)


def read_response(response_id: str, *, client: Client | None = None, **settings: Any) -> pa.Table:
    """One response, with its output items, as a one-row table of RESPONSES_SCHEMA."""
    return _item(RESPONSES, {}, response_id, {}, client, settings)


def read_response_input_items(
    response_id: str, *, sort: str = "asc", client: Client | None = None, **settings: Any
) -> pa.RecordBatchReader:
    """Every input item of a response (RESPONSE_INPUT_ITEMS_SCHEMA), in `sort` order."""
    return _list(RESPONSE_INPUT_ITEMS, {"response_id": response_id}, {"sort": sort}, client, settings)


def read_conversation(conversation_id: str, *, client: Client | None = None, **settings: Any) -> pa.Table:
    """One conversation as a one-row table of CONVERSATIONS_SCHEMA."""
    return _item(CONVERSATIONS, {}, conversation_id, {}, client, settings)


def read_conversation_items(
    conversation_id: str, *, sort: str = "asc", client: Client | None = None, **settings: Any
) -> pa.RecordBatchReader:
    """Every item of a conversation (CONVERSATION_ITEMS_SCHEMA), in `sort` order."""
    keys = {"conversation_id": conversation_id}
    return _list(CONVERSATION_ITEMS, keys, {"sort": sort}, client, settings)


def read_chat_completions(
    *,
    model: str | None = None,
    metadata: Mapping[str, str] | None = None,
    sort: str = "asc",
    client: Client | None = None,
    **settings: Any,
) -> pa.RecordBatchReader:
    """Every stored chat completion (CHAT_COMPLETIONS_SCHEMA), or those of one `model` and carrying every
    key/value pair of `metadata` (the API's filters)."""
    options = {"model": model, "metadata": metadata, "sort": sort}
    return _list(CHAT_COMPLETIONS, {}, options, client, settings)


def read_chat_completion(completion_id: str, *, client: Client | None = None, **settings: Any) -> pa.Table:
    """One stored chat completion as a one-row table of CHAT_COMPLETIONS_SCHEMA."""
    return _item(CHAT_COMPLETIONS, {}, completion_id, {}, client, settings)


def read_chat_completion_messages(
    completion_id: str, *, sort: str = "asc", client: Client | None = None, **settings: Any
) -> pa.RecordBatchReader:
    """Every message of a stored chat completion (CHAT_COMPLETION_MESSAGES_SCHEMA), in `sort` order."""
    keys = {"completion_id": completion_id}
    return _list(CHAT_COMPLETION_MESSAGES, keys, {"sort": sort}, client, settings)
