"""The threads resource's Arrow schema: one thread, as the retrieve endpoint returns it.

The API cannot list threads: a thread is read by id only (`GET /threads/{thread_id}`), so the ids come
from the user's own records (the emulator's `--threads-manifest` writes such a file).

Columns follow the spec's `ThreadObject` properties: id, object, created_at, tool_resources, metadata.
`tool_resources` is the struct assistants declare (`assistants.TOOL_RESOURCES`).

What the schema cannot hold is documented, never an error: a key the API adds to a thread or to its
tool resources is dropped.
"""

from __future__ import annotations

import pyarrow as pa

from duckdb_openai.resources.assistants import TOOL_RESOURCES
from duckdb_openai.resources.base import Key, Resource
from duckdb_openai.resources.families import ASSISTANTS_API
from duckdb_openai.schema import field

__all__ = ["THREADS", "THREADS_SCHEMA"]

_S = pa.string()

THREADS_SCHEMA: pa.Schema = pa.schema(
    [
        field("id", _S, "Id of the thread (`thread_...`)."),
        field("object", _S, "Always 'thread'."),
        field("created_at", pa.timestamp("us", tz="UTC"), "When the thread was created."),
        field("tool_resources", TOOL_RESOURCES, "Files and vector stores the thread's tools can use."),
        field("metadata", pa.map_(_S, _S), "Up to 16 key-value pairs attached to the thread."),
    ]
)


THREADS = Resource(
    family=ASSISTANTS_API,
    progress_units=("threads", "threads"),
    name="threads",
    item_name="thread",
    path=None,
    keys=(),
    item_key=Key("thread_id", "thread_abc123"),
    item_path_template="threads/{thread_id}",
    schema=THREADS_SCHEMA,
    doc="An Assistants thread: GET /threads/{thread_id} (the API cannot list threads)",
)
