"""The messages resource's Arrow schema.

Columns follow the spec's `MessageObject` properties: id, object, created_at, thread_id, status,
incomplete_details, completed_at, incomplete_at, role, content, assistant_id, run_id, attachments, metadata.
A struct merging the variants of a `oneOf` lists its fields in order of first appearance across the
variants: a content part is (type, image_file, image_url, text, refusal), an annotation (type, text,
file_citation, start_index, end_index, file_path).

What the schema cannot hold is documented, never an error:

- A content part of a kind the schema does not know (one the API adds later) keeps its `type`, with every
  kind-specific struct NULL; an annotation of an unknown kind keeps type, text, start_index, end_index.
- A key the API adds to a message or a nested object is dropped.
"""

from __future__ import annotations

import pyarrow as pa

from duckdb_openai.resources.base import Filter, Key, Resource, sort_option
from duckdb_openai.resources.families import ASSISTANTS_API
from duckdb_openai.schema import field, struct

__all__ = [
    "ANNOTATION_TYPES",
    "CONTENT_TYPES",
    "IMAGE_DETAILS",
    "MESSAGES",
    "MESSAGES_SCHEMA",
    "MESSAGE_INCOMPLETE_REASONS",
    "MESSAGE_STATUSES",
    "ROLES",
]

MESSAGE_STATUSES = ("in_progress", "incomplete", "completed")
ROLES = ("user", "assistant")
CONTENT_TYPES = ("image_file", "image_url", "text", "refusal")
ANNOTATION_TYPES = ("file_citation", "file_path")
IMAGE_DETAILS = ("auto", "low", "high")
MESSAGE_INCOMPLETE_REASONS = ("content_filter", "max_tokens", "run_cancelled", "run_expired", "run_failed")

_S = pa.string()
_TS = pa.timestamp("us", tz="UTC")
_I = pa.int64()


def _one_of(values: tuple[str, ...]) -> str:
    return "One of " + ", ".join(f"'{v}'" for v in values)


_DETAIL = field("detail", _S, _one_of(IMAGE_DETAILS) + ": the resolution the model sees.")
_ANNOTATION = struct(
    field("type", _S, _one_of(ANNOTATION_TYPES) + " (or a kind added later)."),
    field("text", _S, "The text in the message that the annotation replaces."),
    field(
        "file_citation",
        struct(field("file_id", _S, "File the quote is from.")),
        "For type 'file_citation': a quote from a file found by file search.",
    ),
    field("start_index", _I, "Where the annotated text starts in the value."),
    field("end_index", _I, "Where the annotated text ends in the value."),
    field(
        "file_path",
        struct(field("file_id", _S, "File the code interpreter generated.")),
        "For type 'file_path': a file the code interpreter generated.",
    ),
)
_CONTENT = struct(
    field("type", _S, _one_of(CONTENT_TYPES) + " (or a kind added later)."),
    field(
        "image_file",
        struct(field("file_id", _S, "File id of the image."), _DETAIL),
        "For type 'image_file': an image file.",
    ),
    field(
        "image_url",
        struct(field("url", _S, "External URL of the image."), _DETAIL),
        "For type 'image_url': an image on the web.",
    ),
    field(
        "text",
        struct(
            field("value", _S, "The text."),
            field("annotations", pa.list_(_ANNOTATION), "File citations and file paths in the text."),
        ),
        "For type 'text': the text and its annotations.",
    ),
    field("refusal", _S, "For type 'refusal': the model's refusal."),
)
_ATTACHMENT = struct(
    field("file_id", _S, "The attached file."),
    field(
        "tools",
        pa.list_(struct(field("type", _S, "'code_interpreter' or 'file_search'."))),
        "The tools the file was added to.",
    ),
)

MESSAGES_SCHEMA: pa.Schema = pa.schema(
    [
        field("id", _S, "Id of the message (`msg_...`)."),
        field("object", _S, "Always 'thread.message'."),
        field("created_at", _TS, "When the message was created."),
        field("thread_id", _S, "Thread the message belongs to."),
        field("status", _S, _one_of(MESSAGE_STATUSES) + "."),
        field(
            "incomplete_details",
            struct(field("reason", _S, _one_of(MESSAGE_INCOMPLETE_REASONS) + ".")),
            "Why the message is incomplete; NULL unless 'incomplete'.",
        ),
        field("completed_at", _TS, "When the message was completed."),
        field("incomplete_at", _TS, "When the message was marked incomplete."),
        field("role", _S, _one_of(ROLES) + "."),
        field("content", pa.list_(_CONTENT), "Parts of the message, text and images: `unnest(content)`."),
        field("assistant_id", _S, "Assistant that wrote the message; NULL for a user's message."),
        field("run_id", _S, "Run whose step created the message; NULL for messages created directly."),
        field("attachments", pa.list_(_ATTACHMENT), "Files attached to the message, with their tools."),
        field("metadata", pa.map_(_S, _S), "Up to 16 key-value pairs attached to the message."),
    ]
)


MESSAGES = Resource(
    family=ASSISTANTS_API,
    progress_units=("threads", "messages"),
    name="messages",
    item_name="message",
    path="threads/{thread_id}/messages",
    keys=(Key("thread_id", "thread_abc123"),),
    item_key=Key("message_id", "msg_abc123"),
    item_path_template="threads/{thread_id}/messages/{message_id}",
    schema=MESSAGES_SCHEMA,
    options=(sort_option("messages"),),
    filters=(Filter("run_id", "run_id", "run_abc123"),),
    doc="Messages of an Assistants thread: GET /threads/{thread_id}/messages (optionally of one run)",
)
