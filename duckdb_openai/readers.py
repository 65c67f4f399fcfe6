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

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pyarrow as pa

from duckdb_openai.client import Client, check_keywords
from duckdb_openai.errors import ConfigurationError
from duckdb_openai.resources.assistants import ASSISTANTS
from duckdb_openai.resources.audit_logs import AUDIT_LOGS
from duckdb_openai.resources.base import Resource
from duckdb_openai.resources.chat_completions import CHAT_COMPLETION_MESSAGES, CHAT_COMPLETIONS
from duckdb_openai.resources.conversations import CONVERSATION_ITEMS, CONVERSATIONS
from duckdb_openai.resources.costs import COSTS
from duckdb_openai.resources.messages import MESSAGES
from duckdb_openai.resources.projects import PROJECT_API_KEYS, PROJECT_SERVICE_ACCOUNTS, PROJECTS
from duckdb_openai.resources.responses import RESPONSE_INPUT_ITEMS, RESPONSES
from duckdb_openai.resources.run_steps import RUN_STEPS
from duckdb_openai.resources.runs import RUNS
from duckdb_openai.resources.threads import THREADS
from duckdb_openai.resources.usage import (
    USAGE_AUDIO_SPEECHES,
    USAGE_AUDIO_TRANSCRIPTIONS,
    USAGE_CODE_INTERPRETER_SESSIONS,
    USAGE_COMPLETIONS,
    USAGE_EMBEDDINGS,
    USAGE_FILE_SEARCH_CALLS,
    USAGE_IMAGES,
    USAGE_MODERATIONS,
    USAGE_VECTOR_STORES,
    USAGE_WEB_SEARCH_CALLS,
)
from duckdb_openai.resources.users import USERS

__all__ = [
    "read_assistant",
    "read_assistants",
    "read_audit_logs",
    "read_chat_completion",
    "read_chat_completion_messages",
    "read_chat_completions",
    "read_conversation",
    "read_conversation_items",
    "read_costs",
    "read_message",
    "read_messages",
    "read_project",
    "read_project_api_keys",
    "read_project_service_accounts",
    "read_projects",
    "read_response",
    "read_response_input_items",
    "read_run",
    "read_run_step",
    "read_run_steps",
    "read_runs",
    "read_thread",
    "read_usage_audio_speeches",
    "read_usage_audio_transcriptions",
    "read_usage_code_interpreter_sessions",
    "read_usage_completions",
    "read_usage_embeddings",
    "read_usage_file_search_calls",
    "read_usage_images",
    "read_usage_moderations",
    "read_usage_vector_stores",
    "read_usage_web_search_calls",
    "read_user",
    "read_users",
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


# -- the organization's ledger (an admin key: admin_key= or OPENAI_ADMIN_KEY) ------------------------------

BucketReader = Callable[..., pa.RecordBatchReader]


def _bucketed(resource: Resource) -> BucketReader:
    """The reader of a usage or costs endpoint: `start_time` (a datetime, a date, an ISO text or Unix
    seconds) and the endpoint's own keywords (see its declaration's filters), then Client settings."""
    own = {f.name for f in resource.filters} | {o.name for o in resource.options}

    def read(start_time: object, *, client: Client | None = None, **keywords: Any) -> pa.RecordBatchReader:
        options = {name: keywords.pop(name) for name in list(keywords) if name in own}
        options["start_time"] = start_time
        return _list(resource, {}, options, client, keywords)

    names = ", ".join(sorted(own - {"start_time"}))
    read.__name__ = read.__qualname__ = f"read_{resource.name}"
    read.__doc__ = (
        f"{resource.doc}: every result of every time bucket from `start_time` on, streamed; keywords "
        f"{names} (lists for the id and model filters; `group_by` a list of dimensions), then Client "
        "settings (`admin_key=`, ...)."
    )
    return read


read_usage_completions = _bucketed(USAGE_COMPLETIONS)
read_usage_embeddings = _bucketed(USAGE_EMBEDDINGS)
read_usage_moderations = _bucketed(USAGE_MODERATIONS)
read_usage_images = _bucketed(USAGE_IMAGES)
read_usage_audio_speeches = _bucketed(USAGE_AUDIO_SPEECHES)
read_usage_audio_transcriptions = _bucketed(USAGE_AUDIO_TRANSCRIPTIONS)
read_usage_vector_stores = _bucketed(USAGE_VECTOR_STORES)
read_usage_code_interpreter_sessions = _bucketed(USAGE_CODE_INTERPRETER_SESSIONS)
read_usage_file_search_calls = _bucketed(USAGE_FILE_SEARCH_CALLS)
read_usage_web_search_calls = _bucketed(USAGE_WEB_SEARCH_CALLS)
read_costs = _bucketed(COSTS)


def read_audit_logs(
    *,
    start_time: object = None,
    end_time: object = None,
    event_types: list[str] | None = None,
    project_ids: list[str] | None = None,
    actor_ids: list[str] | None = None,
    actor_emails: list[str] | None = None,
    resource_ids: list[str] | None = None,
    client: Client | None = None,
    **settings: Any,
) -> pa.RecordBatchReader:
    """The organization's audit-log events (AUDIT_LOGS_SCHEMA), newest first, in the effective_at range
    [start_time, end_time) and of the given types, projects, actors and resources."""
    options = {
        "start_time": start_time,
        "end_time": end_time,
        "event_types": event_types,
        "project_ids": project_ids,
        "actor_ids": actor_ids,
        "actor_emails": actor_emails,
        "resource_ids": resource_ids,
    }
    return _list(AUDIT_LOGS, {}, options, client, settings)


def read_projects(
    *, include_archived: bool = False, client: Client | None = None, **settings: Any
) -> pa.RecordBatchReader:
    """The organization's projects (PROJECTS_SCHEMA), archived ones too with `include_archived`."""
    return _list(PROJECTS, {}, {"include_archived": include_archived}, client, settings)


def read_project(project_id: str, *, client: Client | None = None, **settings: Any) -> pa.Table:
    """One project as a one-row table of PROJECTS_SCHEMA."""
    return _item(PROJECTS, {}, project_id, {}, client, settings)


def read_users(
    *, emails: list[str] | None = None, client: Client | None = None, **settings: Any
) -> pa.RecordBatchReader:
    """The organization's users (USERS_SCHEMA), or those with the given emails."""
    return _list(USERS, {}, {"emails": emails}, client, settings)


def read_user(user_id: str, *, client: Client | None = None, **settings: Any) -> pa.Table:
    """One user as a one-row table of USERS_SCHEMA."""
    return _item(USERS, {}, user_id, {}, client, settings)


def read_project_api_keys(
    project_id: str, *, client: Client | None = None, **settings: Any
) -> pa.RecordBatchReader:
    """A project's API keys (PROJECT_API_KEYS_SCHEMA)."""
    return _list(PROJECT_API_KEYS, {"project_id": project_id}, {}, client, settings)


def read_project_service_accounts(
    project_id: str, *, client: Client | None = None, **settings: Any
) -> pa.RecordBatchReader:
    """A project's service accounts (PROJECT_SERVICE_ACCOUNTS_SCHEMA)."""
    return _list(PROJECT_SERVICE_ACCOUNTS, {"project_id": project_id}, {}, client, settings)
