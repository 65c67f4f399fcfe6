"""Stored chat completions and their messages, declared as data.

`chat_completions(model := NULL, metadata := NULL, sort := 'asc')` is GET /chat/completions, a list
without keys whose filters are the API's: `model := 'gpt-4o'` sends `model=gpt-4o`, `metadata :=
MAP {'topic': 'billing'}` sends `metadata[topic]=billing` (every pair must match). The catalog form
`openai.chat.completions` reads every stored completion, and pushes `model = '..'` (or `IN`) down;
a condition on `metadata` there is DuckDB's, applied after reading (use the function's `metadata :=`
to have the API filter).
`chat_completion(completion_id)` is GET /chat/completions/{completion_id}.

Columns follow the spec's `CreateChatCompletionResponse`: id, object, created, model, choices, usage,
metadata, service_tier, system_fingerprint (the API calls the creation time `created`, and so does the
table).

`chat_completion_messages(completion_id, sort := 'asc')` is GET /chat/completions/{completion_id}/
messages: id, role, content, name, content_parts, refusal, tool_calls, and `completion_id` filled from
the request.

What the schema cannot hold is documented, never an error: dropped are a choice's `logprobs`, a
message's `annotations`, `audio` and deprecated `function_call`, `moderation`, and any key the API
adds (the list example shows `request_id`, `seed`, `tools`, `temperature`..., which the spec does not
declare); a tool call of a kind the schema does not know keeps `id` and `type`.
"""

from __future__ import annotations

import pyarrow as pa

from duckdb_openai.resources.base import Filter, Key, Resource, sort_option
from duckdb_openai.resources.families import CHAT_API
from duckdb_openai.schema import field, struct

__all__ = [
    "CHAT_COMPLETIONS",
    "CHAT_COMPLETIONS_SCHEMA",
    "CHAT_COMPLETION_MESSAGES",
    "CHAT_COMPLETION_MESSAGES_SCHEMA",
    "FINISH_REASONS",
]

FINISH_REASONS = ("stop", "length", "tool_calls", "content_filter", "function_call")

_S = pa.string()
_TS = pa.timestamp("us", tz="UTC")
_I = pa.int64()

_TOOL_CALL = struct(
    field("id", _S, "Id of the tool call."),
    field("type", _S, "'function' or 'custom'."),
    field(
        "function",
        struct(
            field("name", _S, "Name of the function."),
            field("arguments", _S, "Arguments the model passes, a JSON string."),
        ),
        "For type 'function'.",
    ),
    field(
        "custom",
        struct(field("name", _S, "Name of the custom tool."), field("input", _S, "Its input.")),
        "For type 'custom'.",
    ),
)
_MESSAGE = struct(
    field("role", _S, "Always 'assistant'."),
    field("content", _S, "The message's text; NULL for a pure tool call or a refusal."),
    field("refusal", _S, "The model's refusal, if it refused."),
    field(
        "tool_calls",
        pa.list_(_TOOL_CALL),
        "Tool calls the model made: `unnest(choices[1].message.tool_calls)`.",
    ),
)
_CHOICE = struct(
    field("index", _I, "Position of the choice (several when `n` > 1)."),
    field("finish_reason", _S, "Why the model stopped: " + ", ".join(f"'{r}'" for r in FINISH_REASONS) + "."),
    field("message", _MESSAGE, "The message the model generated."),
)
_USAGE = struct(
    field("prompt_tokens", _I, "Prompt tokens."),
    field("completion_tokens", _I, "Completion tokens, reasoning included."),
    field("total_tokens", _I, "Prompt plus completion tokens."),
    field(
        "prompt_tokens_details",
        struct(
            field("cached_tokens", _I, "Prompt tokens read from the cache."),
            field("audio_tokens", _I, "Audio prompt tokens."),
        ),
        "A breakdown of the prompt tokens.",
    ),
    field(
        "completion_tokens_details",
        struct(
            field("reasoning_tokens", _I, "Reasoning tokens."),
            field("audio_tokens", _I, "Audio completion tokens."),
            field("accepted_prediction_tokens", _I, "Predicted tokens that appeared in the completion."),
            field("rejected_prediction_tokens", _I, "Predicted tokens that did not (still billed)."),
        ),
        "A breakdown of the completion tokens.",
    ),
)

CHAT_COMPLETIONS_SCHEMA: pa.Schema = pa.schema(
    [
        field("id", _S, "Id of the chat completion (`chatcmpl-...`)."),
        field("object", _S, "Always 'chat.completion'."),
        field("created", _TS, "When the chat completion was created."),
        field("model", _S, "Model used (prices differ by model); the `model` filter matches it."),
        field("choices", pa.list_(_CHOICE), "The completion's choices: `unnest(choices)`."),
        field("usage", _USAGE, "Token usage of the request."),
        field("metadata", pa.map_(_S, _S), "Up to 16 key-value pairs stored with the completion."),
        field(
            "service_tier", _S, "'auto', 'default', 'flex', 'scale' or 'priority': the tier that served it."
        ),
        field("system_fingerprint", _S, "The backend configuration the model ran with (deprecated)."),
    ]
)

CHAT_COMPLETIONS = Resource(
    family=CHAT_API,
    progress_units=("lists", "completions"),
    name="chat_completions",
    item_name="chat_completion",
    path="chat/completions",
    keys=(),
    item_key=Key("completion_id", "chatcmpl-abc123"),
    item_path_template="chat/completions/{completion_id}",
    schema=CHAT_COMPLETIONS_SCHEMA,
    options=(sort_option("chat completions"),),
    filters=(
        Filter("model", "model", "gpt-4o", kind="text"),
        Filter("metadata", "metadata", "MAP {'topic': 'billing'}", kind="map", column="metadata"),
    ),
    catalog_schema="chat",
    catalog_table="completions",
    doc="Stored chat completions: GET /chat/completions",
)

CHAT_COMPLETION_MESSAGES_SCHEMA: pa.Schema = pa.schema(
    [
        field("id", _S, "Id of the message (`chatcmpl-...-0`)."),
        field("role", _S, "'developer', 'system', 'user', 'assistant' or 'tool'."),
        field("content", _S, "The message's text; NULL when it came as content parts."),
        field("name", _S, "The participant's name, if the request gave one."),
        field(
            "content_parts",
            pa.list_(
                struct(
                    field("type", _S, "'text' or 'image_url'."),
                    field("text", _S, "For type 'text': the text."),
                    field(
                        "image_url",
                        struct(
                            field("url", _S, "URL (or data URL) of the image."),
                            field("detail", _S, "'auto', 'low' or 'high'."),
                        ),
                        "For type 'image_url': the image.",
                    ),
                )
            ),
            "The message's parts, when the request sent parts; NULL otherwise.",
        ),
        field("refusal", _S, "For an assistant message: the model's refusal."),
        field("tool_calls", pa.list_(_TOOL_CALL), "For an assistant message: the tool calls it made."),
        field(
            "completion_id",
            _S,
            "Chat completion the message belongs to (filled from the request; the API's messages do not "
            "carry it).",
        ),
    ]
)

CHAT_COMPLETION_MESSAGES = Resource(
    family=CHAT_API,
    progress_units=("completions", "messages"),
    name="chat_completion_messages",
    item_name="chat_completion_message",
    path="chat/completions/{completion_id}/messages",
    keys=(Key("completion_id", "chatcmpl-abc123"),),
    item_key=Key("message_id", "chatcmpl-abc123-0"),
    item_path_template=None,
    schema=CHAT_COMPLETION_MESSAGES_SCHEMA,
    options=(sort_option("messages"),),
    catalog_schema="chat",
    catalog_table="messages",
    doc="Messages of a stored chat completion: GET /chat/completions/{completion_id}/messages",
)
