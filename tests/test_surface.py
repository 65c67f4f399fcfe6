"""The public surface and the one fixed schema."""

from __future__ import annotations

import pyarrow as pa

import duckdb_openai
from duckdb_openai.resources.run_steps import RUN_STEPS_SCHEMA
from duckdb_openai.schema import column_reference, duckdb_type

SEED_COLUMNS = [
    "id", "assistant_id", "cancelled_at", "completed_at", "created_at", "expired_at", "failed_at",
    "last_error", "metadata", "object", "run_id", "status", "step_details", "thread_id", "type", "usage",
]  # fmt: skip


def test_public_surface_is_pinned() -> None:
    assert sorted(duckdb_openai.__all__) == sorted(
        [
            "ASSISTANTS", "ASSISTANTS_SCHEMA", "MESSAGES", "MESSAGES_SCHEMA", "RESOURCES", "RUNS",
            "RUNS_SCHEMA", "RUN_STEPS", "RUN_STEPS_SCHEMA", "THREADS", "THREADS_SCHEMA",
            "RESPONSES", "RESPONSES_SCHEMA", "RESPONSE_INPUT_ITEMS", "RESPONSE_INPUT_ITEMS_SCHEMA",
            "CONVERSATIONS", "CONVERSATIONS_SCHEMA", "CONVERSATION_ITEMS", "CONVERSATION_ITEMS_SCHEMA",
            "CHAT_COMPLETIONS", "CHAT_COMPLETIONS_SCHEMA", "CHAT_COMPLETION_MESSAGES",
            "CHAT_COMPLETION_MESSAGES_SCHEMA",
            "APIConnectionError", "APIError", "APITimeoutError", "AuthenticationError", "BadRequestError",
            "Client", "ConfigurationError", "DuckDBOpenAIError", "FetchError", "InvalidIdError",
            "NotFoundError", "PermissionDeniedError", "RateLimitError", "Registration", "Resource",
            "ResponseFormatError", "RunFetchError", "ServerError", "Settings", "SyncResult", "__version__",
            "read_assistant", "read_assistants", "read_message", "read_messages", "read_run",
            "read_run_step", "read_run_steps", "read_runs", "read_thread", "register",
            "read_chat_completion", "read_chat_completion_messages", "read_chat_completions",
            "read_conversation", "read_conversation_items", "read_response", "read_response_input_items",
            # The organization's ledger.
            "AUDIT_LOGS", "AUDIT_LOGS_SCHEMA", "COSTS", "COSTS_SCHEMA", "PROJECTS", "PROJECTS_SCHEMA",
            "PROJECT_API_KEYS", "PROJECT_API_KEYS_SCHEMA", "PROJECT_SERVICE_ACCOUNTS",
            "PROJECT_SERVICE_ACCOUNTS_SCHEMA", "USERS", "USERS_SCHEMA",
            "USAGE_AUDIO_SPEECHES", "USAGE_AUDIO_SPEECHES_SCHEMA", "USAGE_AUDIO_TRANSCRIPTIONS",
            "USAGE_AUDIO_TRANSCRIPTIONS_SCHEMA", "USAGE_CODE_INTERPRETER_SESSIONS",
            "USAGE_CODE_INTERPRETER_SESSIONS_SCHEMA", "USAGE_COMPLETIONS", "USAGE_COMPLETIONS_SCHEMA",
            "USAGE_EMBEDDINGS", "USAGE_EMBEDDINGS_SCHEMA", "USAGE_FILE_SEARCH_CALLS",
            "USAGE_FILE_SEARCH_CALLS_SCHEMA", "USAGE_IMAGES", "USAGE_IMAGES_SCHEMA", "USAGE_MODERATIONS",
            "USAGE_MODERATIONS_SCHEMA", "USAGE_VECTOR_STORES", "USAGE_VECTOR_STORES_SCHEMA",
            "USAGE_WEB_SEARCH_CALLS", "USAGE_WEB_SEARCH_CALLS_SCHEMA",
            "read_audit_logs", "read_costs", "read_project", "read_project_api_keys",
            "read_project_service_accounts", "read_projects", "read_usage_audio_speeches",
            "read_usage_audio_transcriptions", "read_usage_code_interpreter_sessions",
            "read_usage_completions", "read_usage_embeddings", "read_usage_file_search_calls",
            "read_usage_images", "read_usage_moderations", "read_usage_vector_stores",
            "read_usage_web_search_calls", "read_user", "read_users",
            "sync",
        ]
    )  # fmt: skip
    for name in duckdb_openai.__all__:
        assert hasattr(duckdb_openai, name), name


def test_schema_has_the_seed_columns_in_order() -> None:
    assert RUN_STEPS_SCHEMA.names == SEED_COLUMNS
    assert duckdb_openai.RUN_STEPS_SCHEMA is RUN_STEPS_SCHEMA


def test_schema_types() -> None:
    s = RUN_STEPS_SCHEMA
    for name in ("cancelled_at", "completed_at", "created_at", "expired_at", "failed_at"):
        assert s.field(name).type == pa.timestamp("us", tz="UTC")
    assert s.field("metadata").type == pa.map_(pa.string(), pa.string())
    assert duckdb_type(s.field("usage").type) == (
        'STRUCT("prompt_tokens" BIGINT, "completion_tokens" BIGINT, "total_tokens" BIGINT)'
    )
    assert duckdb_type(s.field("last_error").type) == 'STRUCT("code" VARCHAR, "message" VARCHAR)'
    tool_call = s.field("step_details").type.field("tool_calls").type.value_type
    assert [f.name for f in tool_call] == ["id", "type", "function", "code_interpreter", "file_search"]
    result = tool_call.field("file_search").type.field("results").type.value_type
    assert [f.name for f in result] == ["file_id", "file_name", "score", "content"]


def test_every_field_is_documented() -> None:
    reference = list(column_reference(RUN_STEPS_SCHEMA))
    assert len(reference) > 40
    assert all(doc for _, _, doc in reference), [path for path, _, doc in reference if not doc]
    paths = [path for path, _, _ in reference]
    assert "step_details.tool_calls[].function.arguments" in paths


def test_readme_column_reference_is_generated() -> None:
    from pathlib import Path

    from duckdb_openai.docs import BEGIN, END, reference
    from duckdb_openai.resources import RESOURCES

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    start = readme.index(BEGIN)
    generated = readme[start : readme.index(END) + len(END)]
    assert generated == reference(), "run: python -m duckdb_openai.docs --write README.md"
    for resource in RESOURCES:
        assert f"### {resource.name}\n" in generated


def test_every_resource_has_its_names_everywhere() -> None:
    """One naming: `NAME` and `NAME_SCHEMA` exported, `read_<name>` for a list, `read_<item_name>` for one
    object, the same names as the SQL functions."""
    from duckdb_openai.resources import RESOURCES

    for resource in RESOURCES:
        constant = resource.name.upper()
        assert getattr(duckdb_openai, constant) is resource
        assert getattr(duckdb_openai, f"{constant}_SCHEMA") is resource.schema
        assert hasattr(duckdb_openai, f"read_{resource.name}") == resource.listable, resource.name
        assert hasattr(duckdb_openai, f"read_{resource.item_name}") == resource.retrievable, resource.name
