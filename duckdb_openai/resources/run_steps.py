"""The run-steps resource of the Assistants API, declared as data, and its one fixed Arrow schema.

Columns follow the seed statement's order: id, assistant_id, cancelled_at, completed_at, created_at,
expired_at, failed_at, last_error, metadata, object, run_id, status, step_details, thread_id, type, usage.

What the schema cannot hold is documented, never an error: a tool call of a kind this schema does not
know (one the API adds later) keeps its `id` and `type` with every kind-specific struct NULL; a key the
API adds to a step or a nested object is dropped.
"""

from __future__ import annotations

import pyarrow as pa

from duckdb_openai.errors import RunFetchError
from duckdb_openai.resources.base import Key, Lifecycle, Option, OptionValue, Parent, Resource, sort_option
from duckdb_openai.resources.families import ASSISTANTS_API
from duckdb_openai.schema import field, struct

__all__ = [
    "FILE_SEARCH_CONTENT",
    "RUN_STEPS",
    "RUN_STEPS_SCHEMA",
    "STEP_STATUSES",
    "STEP_TERMINAL_STATUSES",
    "TOOL_CALL_TYPES",
]

FILE_SEARCH_CONTENT = "step_details.tool_calls[*].file_search.results[*].content"
STEP_STATUSES = ("in_progress", "cancelled", "failed", "completed", "expired")
#: A step in one of these never changes again: the API has no endpoint that modifies a run step.
STEP_TERMINAL_STATUSES = ("cancelled", "failed", "completed", "expired")
TOOL_CALL_TYPES = ("function", "code_interpreter", "file_search")

_S = pa.string()
_TS = pa.timestamp("us", tz="UTC")
_I = pa.int64()
_F = pa.float64()

_FUNCTION = struct(
    field("name", _S, "Name of the function."),
    field("arguments", _S, "Arguments passed to the function, a JSON string (use DuckDB's json functions)."),
    field("output", _S, "Output of the function; NULL until the outputs were submitted."),
)
_CODE_OUTPUT = struct(
    field("type", _S, "'logs' or 'image'."),
    field("logs", _S, "Text output, for type 'logs'."),
    field("image", struct(field("file_id", _S, "File id of the image.")), "For type 'image'."),
)
_CODE_INTERPRETER = struct(
    field("input", _S, "The code the interpreter ran."),
    field("outputs", pa.list_(_CODE_OUTPUT), "Outputs, each logs or an image."),
)
_CONTENT = struct(field("type", _S, "Always 'text'."), field("text", _S, "Text content of the file."))
_RESULT = struct(
    field("file_id", _S, "File the result was found in."),
    field("file_name", _S, "Name of that file."),
    field("score", _F, "Score of the result, 0 to 1."),
    field("content", pa.list_(_CONTENT), "Content found; only with include_content := true."),
)
_FILE_SEARCH = struct(
    field(
        "ranking_options",
        struct(
            field("ranker", _S, "'auto' or 'default_2024_08_21'."),
            field("score_threshold", _F, "Score threshold, 0 to 1."),
        ),
        "Ranking options of the search.",
    ),
    field("results", pa.list_(_RESULT), "Results of the search."),
)
_TOOL_CALL = struct(
    field("id", _S, "Id of the tool call."),
    field("type", _S, "'function', 'code_interpreter' or 'file_search' (or a kind added later)."),
    field("function", _FUNCTION, "For type 'function'."),
    field("code_interpreter", _CODE_INTERPRETER, "For type 'code_interpreter'."),
    field("file_search", _FILE_SEARCH, "For type 'file_search'."),
)
_STEP_DETAILS = struct(
    field("type", _S, "'message_creation' or 'tool_calls'."),
    field(
        "message_creation",
        struct(field("message_id", _S, "Id of the message the step created.")),
        "For type 'message_creation'.",
    ),
    field("tool_calls", pa.list_(_TOOL_CALL), "For type 'tool_calls': `unnest(step_details.tool_calls)`."),
)

RUN_STEPS_SCHEMA: pa.Schema = pa.schema(
    [
        field("id", _S, "Id of the run step (`step_...`)."),
        field("assistant_id", _S, "Assistant of the run."),
        field("cancelled_at", _TS, "When the step was cancelled."),
        field("completed_at", _TS, "When the step completed."),
        field("created_at", _TS, "When the step was created."),
        field("expired_at", _TS, "When the step expired (its run expired)."),
        field("failed_at", _TS, "When the step failed."),
        field(
            "last_error",
            struct(
                field("code", _S, "'server_error' or 'rate_limit_exceeded'."),
                field("message", _S, "Human-readable description."),
            ),
            "The step's error; NULL unless it failed.",
        ),
        field("metadata", pa.map_(_S, _S), "Up to 16 key-value pairs attached to the step."),
        field("object", _S, "Always 'thread.run.step'."),
        field("run_id", _S, "Run the step belongs to."),
        field("status", _S, "One of " + ", ".join(STEP_STATUSES) + "."),
        field("step_details", _STEP_DETAILS, "What the step did."),
        field("thread_id", _S, "Thread that was run."),
        field("type", _S, "'message_creation' or 'tool_calls'."),
        field(
            "usage",
            struct(
                field("prompt_tokens", _I, "Prompt tokens used by the step."),
                field("completion_tokens", _I, "Completion tokens used by the step."),
                field("total_tokens", _I, "Prompt plus completion tokens."),
            ),
            "Token usage; NULL while the step is in progress.",
        ),
    ]
)


def _include(value: OptionValue) -> list[tuple[str, str]]:
    return [("include[]", FILE_SEARCH_CONTENT)] if value else []


RUN_STEPS = Resource(
    family=ASSISTANTS_API,
    fetch_error=RunFetchError,
    progress_units=("runs", "steps"),
    name="run_steps",
    item_name="run_step",
    path="threads/{thread_id}/runs/{run_id}/steps",
    keys=(Key("thread_id", "thread_abc123"), Key("run_id", "run_abc123")),
    item_key=Key("step_id", "step_abc123"),
    item_path_template="threads/{thread_id}/runs/{run_id}/steps/{step_id}",
    schema=RUN_STEPS_SCHEMA,
    options=(
        sort_option("steps"),
        Option(
            "include_content",
            False,
            "Include file-search result content (`include[]=" + FILE_SEARCH_CONTENT + "`).",
            (False, True),
            _include,
            on_item=True,
        ),
    ),
    doc="Steps of an Assistants run: GET /threads/{thread_id}/runs/{run_id}/steps",
    lifecycle=Lifecycle("status", frozenset(STEP_TERMINAL_STATUSES), frozen=True),
    parent=Parent("runs", (("thread_id", "thread_id"), ("run_id", "id"))),
)
