"""A response of the Responses API and its input items, declared as data.

`response(response_id)` is GET /responses/{response_id} (the API cannot list responses); its columns
follow the order the API sends a response (the spec's example): id, object, created_at, status,
completed_at, error, incomplete_details, instructions, max_output_tokens, model, output,
parallel_tool_calls, previous_response_id, reasoning, temperature, text, tool_choice, tools, top_p,
truncation, usage, user, metadata, then the spec's fields the example leaves out: conversation,
service_tier, background, max_tool_calls, safety_identifier, prompt_cache_key.

`response_input_items(response_id, sort := 'asc')` is GET /responses/{response_id}/input_items (no
item endpoint): the item struct of `items.py` as columns, and `response_id` filled from the request.

What the schema cannot hold is documented, never an error:

- `output` is a LIST of the item struct (`items.py`), whose `json` field keeps each item whole.
- `instructions` (text or a list of input items) and `tool_choice` (text or an object) are JSON text;
  a string keeps its quotes ('"auto"').
- A tool in `tools` keeps `type`, `name`, `description`, `server_label`, `server_url` and
  `vector_store_ids` typed, and its whole JSON in `json`.
- Dropped: `output_text` (an SDK-side convenience the API does not send), `prompt`, `top_logprobs`,
  `prompt_cache_retention`, `prompt_cache_options`, `moderation`, `text.format`'s JSON schema (its
  type and name are kept), and any key the API adds outside the item and tool `json` columns.
"""

from __future__ import annotations

import pyarrow as pa

from duckdb_openai.resources.base import Key, Resource, sort_option
from duckdb_openai.resources.families import RESPONSES_API
from duckdb_openai.resources.items import ITEM, ITEM_FIELDS
from duckdb_openai.schema import field, json_field, number_time_field, object_json_field, struct

__all__ = [
    "RESPONSES",
    "RESPONSES_SCHEMA",
    "RESPONSE_INPUT_ITEMS",
    "RESPONSE_INPUT_ITEMS_SCHEMA",
    "RESPONSE_STATUSES",
]

RESPONSE_STATUSES = ("completed", "failed", "in_progress", "cancelled", "queued", "incomplete")

_S = pa.string()
_TS = pa.timestamp("us", tz="UTC")
_I = pa.int64()
_F = pa.float64()

#: Token usage of a response.
RESPONSE_USAGE = struct(
    field("input_tokens", _I, "Input tokens."),
    field(
        "input_tokens_details",
        struct(
            field("cached_tokens", _I, "Input tokens read from the prompt cache."),
            field("cache_write_tokens", _I, "Input tokens written to the prompt cache."),
        ),
        "A breakdown of the input tokens.",
    ),
    field("output_tokens", _I, "Output tokens, reasoning included."),
    field(
        "output_tokens_details",
        struct(field("reasoning_tokens", _I, "Reasoning tokens.")),
        "A breakdown of the output tokens.",
    ),
    field("total_tokens", _I, "Input plus output tokens."),
)
_TOOL = struct(
    field("type", _S, "'function', 'file_search', 'web_search', 'mcp', 'code_interpreter', 'custom', ..."),
    field("name", _S, "For a function or custom tool: its name."),
    field("description", _S, "For a function or custom tool: its description."),
    field("server_label", _S, "For an MCP tool: the server."),
    field("server_url", _S, "For an MCP tool: the server's URL."),
    field("vector_store_ids", pa.list_(_S), "For file search: the vector stores searched."),
    object_json_field("json", "The whole tool as the API sent it, JSON text (parameters, filters, ...)."),
)

RESPONSES_SCHEMA: pa.Schema = pa.schema(
    [
        field("id", _S, "Id of the response (`resp_...`)."),
        field("object", _S, "Always 'response'."),
        number_time_field("created_at", _TS, "When the response was created."),
        field("status", _S, "One of " + ", ".join(RESPONSE_STATUSES) + "."),
        number_time_field("completed_at", _TS, "When the response completed; NULL unless 'completed'."),
        field(
            "error",
            struct(
                field("code", _S, "'server_error', 'rate_limit_exceeded', 'invalid_prompt', ..."),
                field("message", _S, "Human-readable description."),
            ),
            "Why the model failed to generate the response; NULL unless 'failed'.",
        ),
        field(
            "incomplete_details",
            struct(field("reason", _S, "'max_output_tokens' or 'content_filter'.")),
            "Why the response is incomplete; NULL unless 'incomplete'.",
        ),
        json_field(
            "instructions",
            "The system (developer) message, JSON text: a string (with its quotes) or a list of input items.",
        ),
        field("max_output_tokens", _I, "Most output tokens the response could generate, reasoning included."),
        field("model", _S, "Model that generated the response (prices differ by model)."),
        field(
            "output",
            pa.list_(ITEM),
            "The items the model generated, in order: messages, tool calls, reasoning; `unnest(output)`.",
        ),
        field("parallel_tool_calls", pa.bool_(), "Whether the model could call tools in parallel."),
        field(
            "previous_response_id",
            _S,
            "The response this one continues (multi-turn chains); NULL for the first.",
        ),
        field(
            "reasoning",
            struct(
                field("effort", _S, "'none', 'minimal', 'low', 'medium', 'high' or 'xhigh'."),
                field("summary", _S, "'auto', 'concise' or 'detailed'."),
            ),
            "Reasoning settings (reasoning models only).",
        ),
        field("temperature", _F, "Sampling temperature."),
        field(
            "text",
            struct(
                field(
                    "format",
                    struct(
                        field("type", _S, "'text', 'json_schema' or 'json_object'."),
                        field("name", _S, "For 'json_schema': the schema's name."),
                        field("strict", pa.bool_(), "For 'json_schema': whether the output must match."),
                    ),
                    "The output format.",
                ),
                field("verbosity", _S, "'low', 'medium' or 'high'."),
            ),
            "Text output settings.",
        ),
        json_field(
            "tool_choice",
            "Which tool the model had to call, JSON text: '\"auto\"', '\"none\"', '\"required\"' or an "
            "object naming a tool.",
        ),
        field("tools", pa.list_(_TOOL), "Tools the model could use: `unnest(tools)`."),
        field("top_p", _F, "Nucleus sampling mass."),
        field("truncation", _S, "'auto' or 'disabled'."),
        field("usage", RESPONSE_USAGE, "Token usage; NULL while in progress."),
        field("user", _S, "End-user id the request gave (deprecated by the API for safety_identifier)."),
        field("metadata", pa.map_(_S, _S), "Up to 16 key-value pairs attached to the response."),
        field(
            "conversation",
            struct(field("id", _S, "Id of the conversation (`conv_...`).")),
            "The conversation the response's items were added to; NULL if none.",
        ),
        field(
            "service_tier", _S, "'auto', 'default', 'flex', 'scale' or 'priority': the tier that served it."
        ),
        field("background", pa.bool_(), "Whether the response ran in the background."),
        field("max_tool_calls", _I, "Most calls to built-in tools the response could make."),
        field("safety_identifier", _S, "The end-user id given for abuse detection."),
        field("prompt_cache_key", _S, "The prompt cache key given."),
    ]
)

RESPONSES = Resource(
    family=RESPONSES_API,
    progress_units=("responses", "responses"),
    name="responses",
    item_name="response",
    path=None,
    keys=(),
    item_key=Key("response_id", "resp_abc123"),
    item_path_template="responses/{response_id}",
    schema=RESPONSES_SCHEMA,
    catalog_schema="responses",
    doc="A model response of the Responses API: GET /responses/{response_id}",
)

RESPONSE_INPUT_ITEMS_SCHEMA: pa.Schema = pa.schema(
    [
        *ITEM_FIELDS,
        field(
            "response_id",
            _S,
            "Response the item was input to (filled from the request; the API's items do not carry it).",
        ),
    ]
)

RESPONSE_INPUT_ITEMS = Resource(
    family=RESPONSES_API,
    progress_units=("responses", "items"),
    name="response_input_items",
    item_name="response_input_item",
    path="responses/{response_id}/input_items",
    keys=(Key("response_id", "resp_abc123"),),
    item_key=Key("item_id", "msg_abc123"),
    item_path_template=None,
    schema=RESPONSE_INPUT_ITEMS_SCHEMA,
    options=(sort_option("input items"),),
    catalog_schema="responses",
    catalog_table="input_items",
    doc="Input items of a response: GET /responses/{response_id}/input_items",
)
