"""The runs resource's Arrow schema, and the usage and error structs the family shares.

Columns follow the spec's `RunObject` properties: id, object, created_at, thread_id, assistant_id, status,
required_action, last_error, expires_at, started_at, cancelled_at, failed_at, completed_at,
incomplete_details, model, instructions, tools, metadata, usage, temperature, top_p, max_prompt_tokens,
max_completion_tokens, truncation_strategy, tool_choice, parallel_tool_calls, response_format; and,
after `tools`, `tool_resources`, which the spec does not declare but the API's examples show on a run
(the struct assistants declare: `assistants.TOOL_RESOURCES`).

`USAGE` keeps the run steps' field order (prompt_tokens, completion_tokens, total_tokens; the spec lists
completion first), so a run's usage and its steps' usage are one DuckDB type and compare directly.
`tools` is the struct list assistants declare (`assistants.TOOLS`).

What the schema cannot hold is documented, never an error:

- `tool_choice` ("none", "auto", "required" or an object naming a tool) and `response_format` ("auto" or
  an object) are JSON text: every key survives, and a string keeps its quotes ('"auto"').
- A tool of a kind the schema does not know keeps its `type`, its settings are dropped.
- A key the API adds to a run or a nested object (outside the JSON-text columns) is dropped.
"""

from __future__ import annotations

import pyarrow as pa

from duckdb_openai.resources.assistants import TOOL_RESOURCES, TOOLS
from duckdb_openai.resources.base import Key, Lifecycle, Resource, sort_option
from duckdb_openai.resources.families import ASSISTANTS_API
from duckdb_openai.schema import field, json_field, struct

__all__ = [
    "LAST_ERROR",
    "LAST_ERROR_CODES",
    "RUNS",
    "RUNS_SCHEMA",
    "RUN_INCOMPLETE_REASONS",
    "RUN_LIFECYCLE",
    "RUN_STATUSES",
    "TERMINAL_STATUSES",
    "USAGE",
]

RUN_STATUSES = (
    "queued",
    "in_progress",
    "requires_action",
    "cancelling",
    "cancelled",
    "failed",
    "completed",
    "incomplete",
    "expired",
)
#: Statuses after which a run changes no more; only these runs carry `usage`.
TERMINAL_STATUSES = ("cancelled", "failed", "completed", "incomplete", "expired")
LAST_ERROR_CODES = ("server_error", "rate_limit_exceeded", "invalid_prompt")
RUN_INCOMPLETE_REASONS = ("max_completion_tokens", "max_prompt_tokens")

_S = pa.string()
_TS = pa.timestamp("us", tz="UTC")
_I = pa.int64()
_F = pa.float64()

#: Token usage of a run (summed over its steps) or of a step.
USAGE = struct(
    field("prompt_tokens", _I, "Prompt tokens used."),
    field("completion_tokens", _I, "Completion tokens used."),
    field("total_tokens", _I, "Prompt plus completion tokens."),
)
#: The last error of a run or a step.
LAST_ERROR = struct(
    field("code", _S, "One of " + ", ".join(f"'{c}'" for c in LAST_ERROR_CODES) + "."),
    field("message", _S, "Human-readable description."),
)
_REQUIRED_CALL = struct(
    field("id", _S, "Id of the tool call; submitting its output names it."),
    field("type", _S, "Always 'function'."),
    field(
        "function",
        struct(
            field("name", _S, "Name of the function."),
            field("arguments", _S, "Arguments the model passes, a JSON string."),
        ),
        "The call the run waits for.",
    ),
)
_REQUIRED_ACTION = struct(
    field("type", _S, "Always 'submit_tool_outputs'."),
    field(
        "submit_tool_outputs",
        struct(field("tool_calls", pa.list_(_REQUIRED_CALL), "The calls whose outputs the run needs.")),
        "The tool outputs the run needs to continue.",
    ),
)
_TRUNCATION = struct(
    field("type", _S, "'auto' or 'last_messages'."),
    field("last_messages", _I, "How many recent messages the context keeps; for type 'last_messages'."),
)

RUNS_SCHEMA: pa.Schema = pa.schema(
    [
        field("id", _S, "Id of the run (`run_...`)."),
        field("object", _S, "Always 'thread.run'."),
        field("created_at", _TS, "When the run was created."),
        field("thread_id", _S, "Thread that was run."),
        field("assistant_id", _S, "Assistant that executed the run."),
        field("status", _S, "One of " + ", ".join(RUN_STATUSES) + "."),
        field("required_action", _REQUIRED_ACTION, "What the run waits for; NULL unless 'requires_action'."),
        field("last_error", LAST_ERROR, "The run's last error; NULL unless it failed."),
        field("expires_at", _TS, "When the unfinished run expires (or, for an expired run, expired)."),
        field("started_at", _TS, "When the run started; NULL while queued."),
        field("cancelled_at", _TS, "When the run was cancelled."),
        field("failed_at", _TS, "When the run failed."),
        field("completed_at", _TS, "When the run completed."),
        field(
            "incomplete_details",
            struct(
                field("reason", _S, "The token limit reached: " + " or ".join(RUN_INCOMPLETE_REASONS) + ".")
            ),
            "Why the run is incomplete; NULL unless 'incomplete'.",
        ),
        field("model", _S, "Model the run used (prices differ by model)."),
        field("instructions", _S, "Instructions the run used."),
        field("tools", TOOLS, "Tools the run could use: `unnest(tools)`."),
        field(
            "tool_resources",
            TOOL_RESOURCES,
            "Files and vector stores the run's tools could use (the API sends it; the spec omits it).",
        ),
        field("metadata", pa.map_(_S, _S), "Up to 16 key-value pairs attached to the run."),
        field("usage", USAGE, "Token usage over the run; NULL until the run reaches a terminal status."),
        field("temperature", _F, "Sampling temperature; NULL means 1."),
        field("top_p", _F, "Nucleus sampling mass; NULL means 1."),
        field("max_prompt_tokens", _I, "Most prompt tokens the run may use over its course."),
        field("max_completion_tokens", _I, "Most completion tokens the run may use over its course."),
        field("truncation_strategy", _TRUNCATION, "How the thread was truncated for the run's context."),
        json_field(
            "tool_choice",
            "Which tool the model had to call, JSON text: '\"auto\"', '\"none\"', '\"required\"' or "
            "an object naming a tool.",
        ),
        field("parallel_tool_calls", pa.bool_(), "Whether the model could call tools in parallel."),
        json_field("response_format", "Output format, JSON text: '\"auto\"' or an object."),
    ]
)

#: A run in a terminal status is finished, so its steps are final (the cache reads this); its metadata
#: can still be updated, so runs themselves are never served from the cache.
RUN_LIFECYCLE = Lifecycle("status", frozenset(TERMINAL_STATUSES), frozen=False)

RUNS = Resource(
    family=ASSISTANTS_API,
    progress_units=("threads", "runs"),
    name="runs",
    item_name="run",
    path="threads/{thread_id}/runs",
    keys=(Key("thread_id", "thread_abc123"),),
    item_key=Key("run_id", "run_abc123"),
    item_path_template="threads/{thread_id}/runs/{run_id}",
    schema=RUNS_SCHEMA,
    options=(sort_option("runs"),),
    lifecycle=RUN_LIFECYCLE,
    doc="Runs of an Assistants thread: GET /threads/{thread_id}/runs",
)
