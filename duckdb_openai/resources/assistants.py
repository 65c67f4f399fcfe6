"""The assistants resource's Arrow schema, and the tool structs the rest of the family shares.

Columns follow the spec's `AssistantObject` properties: id, object, created_at, name, description, model,
instructions, tools, tool_resources, metadata, temperature, top_p, response_format. A struct merging the
variants of a `oneOf` (a tool is code_interpreter, file_search or function) lists its fields in order of
first appearance across the variants, so `tools[*]` is (type, file_search, function).

`TOOL`, `TOOLS` and `TOOL_RESOURCES` are declared here once; runs (`runs.py`) and threads (`threads.py`)
import them.

What the schema cannot hold is documented, never an error:

- `response_format` ("auto" or an object) and a function's `parameters` (free JSON Schema) are JSON text:
  every key survives, and DuckDB's `->>`/`json_*` functions read them. A string keeps its quotes: '"auto"'.
- A tool of a kind this schema does not know (one the API adds later) keeps its `type`, with `file_search`
  and `function` NULL; its own settings are dropped.
- A key the API adds to an assistant or a nested object (outside the JSON-text columns) is dropped.
"""

from __future__ import annotations

import pyarrow as pa

from duckdb_openai.resources.base import Key, Resource, sort_option
from duckdb_openai.resources.families import ASSISTANTS_API
from duckdb_openai.schema import field, json_field, struct

__all__ = ["ASSISTANTS", "ASSISTANTS_SCHEMA", "RANKERS", "TOOL", "TOOLS", "TOOL_RESOURCES", "TOOL_TYPES"]

#: The kinds of tool an assistant (and so a run) can have.
TOOL_TYPES = ("code_interpreter", "file_search", "function")
RANKERS = ("auto", "default_2024_08_21")

_S = pa.string()
_TS = pa.timestamp("us", tz="UTC")
_I = pa.int64()
_F = pa.float64()

_FUNCTION = struct(
    field("description", _S, "What the function does; the model reads it to choose when to call it."),
    field("name", _S, "Name of the function."),
    json_field("parameters", "The function's parameters as JSON Schema, JSON text (`parameters->>'type'`)."),
    field("strict", pa.bool_(), "Whether the model follows the parameters' schema exactly."),
)
_FILE_SEARCH = struct(
    field("max_num_results", _I, "Most results the search may output, 1 to 50."),
    field(
        "ranking_options",
        struct(
            field("ranker", _S, "One of " + ", ".join(f"'{r}'" for r in RANKERS) + "."),
            field("score_threshold", _F, "Score threshold, 0 to 1."),
        ),
        "Ranking options of the search.",
    ),
)
#: One tool of an assistant or a run.
TOOL = struct(
    field("type", _S, "One of " + ", ".join(f"'{t}'" for t in TOOL_TYPES) + " (or a kind added later)."),
    field("file_search", _FILE_SEARCH, "Overrides of the file search tool; for type 'file_search'."),
    field("function", _FUNCTION, "The function definition; for type 'function'."),
)
TOOLS = pa.list_(TOOL)
#: Files and vector stores made available to the tools (of an assistant or a thread).
TOOL_RESOURCES = struct(
    field(
        "code_interpreter",
        struct(field("file_ids", pa.list_(_S), "File ids the code interpreter can read (at most 20).")),
        "Resources of the code interpreter.",
    ),
    field(
        "file_search",
        struct(field("vector_store_ids", pa.list_(_S), "Vector store attached (at most 1).")),
        "Resources of file search.",
    ),
)

ASSISTANTS_SCHEMA: pa.Schema = pa.schema(
    [
        field("id", _S, "Id of the assistant (`asst_...`)."),
        field("object", _S, "Always 'assistant'."),
        field("created_at", _TS, "When the assistant was created."),
        field("name", _S, "Name of the assistant, at most 256 characters."),
        field("description", _S, "Description of the assistant, at most 512 characters."),
        field("model", _S, "Model the assistant uses (a run may override it)."),
        field("instructions", _S, "System instructions of the assistant."),
        field("tools", TOOLS, "Tools enabled on the assistant: `unnest(tools)`."),
        field("tool_resources", TOOL_RESOURCES, "Files and vector stores the tools can use."),
        field("metadata", pa.map_(_S, _S), "Up to 16 key-value pairs attached to the assistant."),
        field("temperature", _F, "Sampling temperature, 0 to 2."),
        field("top_p", _F, "Nucleus sampling mass, 0 to 1."),
        json_field(
            "response_format",
            'Output format, JSON text: \'"auto"\' or an object such as \'{"type":"json_object"}\'.',
        ),
    ]
)


ASSISTANTS = Resource(
    family=ASSISTANTS_API,
    progress_units=("lists", "assistants"),
    name="assistants",
    item_name="assistant",
    path="assistants",
    keys=(),
    item_key=Key("assistant_id", "asst_abc123"),
    item_path_template="assistants/{assistant_id}",
    schema=ASSISTANTS_SCHEMA,
    options=(sort_option("assistants"),),
    doc="Assistants of the organization or project: GET /assistants",
)
