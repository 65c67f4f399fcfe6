"""The one item schema of the Responses era: a response's output items, its input items and a
conversation's items.

The spec draws these as three unions (`OutputItem`, `ItemResource`, `ConversationItem`) over the same
28 kinds: messages, function and custom tool calls and their outputs, reasoning, web search, file
search, code interpreter, computer use, image generation, local and hosted shell, apply_patch, tool
search, programs, compaction and the MCP items. One struct serves all three.

The rule, which decides what is a typed field:

- A field is typed when analysts group, filter or join on it, and it has one JSON type in every kind
  that has it: the item's identity (`id`, `type`, `status`, `role`, `created_by`), the call's identity
  (`call_id`, `name`, `arguments`, `input`, `output`), the message's text parts (`content`) and the
  reasoning summary (`summary`), and each tool call's kind-specific essentials: web search `action`,
  file search `queries` and `results`, code interpreter `code` and `container_id`, MCP `server_label`,
  `error` and approvals.
- `json` holds the whole item as the API sent it (compact JSON text), so whatever is not typed (an
  annotation, logprobs, a computer action's coordinates, encrypted reasoning, an image's base64, a
  kind added later) is there for DuckDB's `->>` and `json_*` functions:
  `json ->> '$.action.x'`, `json_extract(json, '$.content[0].annotations')`.
- A typed field whose value has another JSON type in some kind is NULL for that kind, never an error:
  `output` is text for function, custom tool, MCP, shell and apply_patch outputs, and a list of content
  parts or an object in others (NULL here, whole in `json`); `arguments` is an object for tool search
  calls (NULL). `error` is an object for MCP calls and text for MCP tool lists, so it is JSON text
  ('"text"' keeps its quotes).
- A key the API adds is not a column until it is declared here; it is never lost, since `json` has it.

>>> [f.name for f in ITEM_FIELDS][:6]
['id', 'type', 'status', 'role', 'content', 'summary']
"""

from __future__ import annotations

import pyarrow as pa

from duckdb_openai.schema import field, json_field, object_json_field, struct

__all__ = ["ITEM", "ITEM_FIELDS", "ITEM_TYPES", "TYPED_ITEM_TYPES"]

#: Every kind of item the spec's unions name.
ITEM_TYPES = (
    "message",
    "function_call",
    "function_call_output",
    "reasoning",
    "web_search_call",
    "file_search_call",
    "code_interpreter_call",
    "computer_call",
    "computer_call_output",
    "image_generation_call",
    "local_shell_call",
    "local_shell_call_output",
    "shell_call",
    "shell_call_output",
    "apply_patch_call",
    "apply_patch_call_output",
    "tool_search_call",
    "tool_search_output",
    "additional_tools",
    "program",
    "program_output",
    "compaction",
    "mcp_list_tools",
    "mcp_approval_request",
    "mcp_approval_response",
    "mcp_call",
    "custom_tool_call",
    "custom_tool_call_output",
)
#: The kinds whose essentials have typed fields; the others keep id, type and status typed.
TYPED_ITEM_TYPES = (
    "message",
    "function_call",
    "function_call_output",
    "reasoning",
    "web_search_call",
    "file_search_call",
    "code_interpreter_call",
    "mcp_call",
    "mcp_list_tools",
    "mcp_approval_request",
    "mcp_approval_response",
    "custom_tool_call",
    "custom_tool_call_output",
)

_S = pa.string()
_F = pa.float64()

_CONTENT = struct(
    field(
        "type",
        _S,
        "'input_text', 'output_text', 'text', 'refusal', 'input_image', 'input_file', 'summary_text', "
        "'reasoning_text' or 'computer_screenshot'.",
    ),
    field("text", _S, "The text of a text part (input_text, output_text, text, reasoning_text)."),
    field("refusal", _S, "For type 'refusal': the model's refusal."),
    field("image_url", _S, "For type 'input_image' or 'computer_screenshot': the image's URL."),
    field("file_id", _S, "For type 'input_image' or 'input_file': the file's id."),
    field("filename", _S, "For type 'input_file': the file's name."),
)
_SUMMARY = struct(
    field("type", _S, "Always 'summary_text'."),
    field("text", _S, "A summary of the reasoning."),
)
_ACTION = struct(
    field(
        "type",
        _S,
        "Web search: 'search', 'open_page' or 'find_in_page'; local shell: 'exec'; computer: 'click', "
        "'type', ... (the computer action's other fields are in `json`).",
    ),
    field("query", _S, "For a web search's 'search': the query."),
    field("queries", pa.list_(_S), "For a web search's 'search': the queries, when several."),
    field("url", _S, "For a web search's 'open_page' and 'find_in_page': the page."),
    field("pattern", _S, "For a web search's 'find_in_page': the text looked for."),
    field("command", pa.list_(_S), "For a local shell call: the command and its arguments."),
    field("commands", pa.list_(_S), "For a shell call: the commands run."),
)
_RESULT = struct(
    field("file_id", _S, "File the result was found in."),
    field("filename", _S, "Name of that file."),
    field("score", _F, "Relevance of the result, 0 to 1."),
    field("text", _S, "The text found."),
)

#: The item's fields, in the order the API sends a message and then the tool calls' fields.
ITEM_FIELDS: tuple[pa.Field, ...] = (
    field("id", _S, "Id of the item (`msg_...`, `fc_...`, `rs_...`, `ws_...`)."),
    field("type", _S, "The kind of item: 'message', 'function_call', 'reasoning', ... (28 kinds)."),
    field(
        "status", _S, "'in_progress', 'completed', 'incomplete', 'searching', 'failed', ...; NULL if none."
    ),
    field("role", _S, "For a message: 'user', 'assistant', 'system' or 'developer'."),
    field(
        "content",
        pa.list_(_CONTENT),
        "For a message: its parts, `unnest(content)`; for reasoning: the reasoning text. Annotations and "
        "logprobs are in `json`.",
    ),
    field("summary", pa.list_(_SUMMARY), "For reasoning: its summary parts."),
    field("call_id", _S, "Id of the tool call, shared by a call and its output."),
    field("name", _S, "Function, custom tool or MCP tool called."),
    field(
        "arguments",
        _S,
        "Arguments of a function or MCP call, a JSON string (`arguments ->> '$.order_id'`).",
    ),
    field("input", _S, "Input of a custom tool call."),
    field(
        "output",
        _S,
        "Output of a function, custom tool, MCP, shell or apply_patch call, when it is text; NULL when "
        "it is a list of content parts or an object (then in `json`).",
    ),
    field("action", _ACTION, "For a web search, local shell or computer call: what it did."),
    field("queries", pa.list_(_S), "For a file search call: the queries."),
    field(
        "results",
        pa.list_(_RESULT),
        "For a file search call: the results (NULL unless the list was asked to include them).",
    ),
    field("code", _S, "For a code interpreter call or a program: the code."),
    field("container_id", _S, "For a code interpreter call: the container it ran in."),
    field("server_label", _S, "For MCP items: the MCP server."),
    json_field(
        "error",
        "For an MCP call or tool list: its error, JSON text (an object for a call, a string for a list).",
    ),
    field("approval_request_id", _S, "For an MCP call or approval response: the approval request."),
    field("approve", pa.bool_(), "For an MCP approval response: whether the call was approved."),
    field("reason", _S, "For an MCP approval response: why."),
    field("created_by", _S, "Who created the item (an id), when the API says."),
    object_json_field(
        "json", "The whole item as the API sent it, JSON text: every field of every kind, typed or not."
    ),
)

#: One item, as a struct (a response's `output` is a LIST of it).
ITEM = struct(*ITEM_FIELDS)
