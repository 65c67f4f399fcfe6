"""A conversation of the Conversations API and its items, declared as data.

`conversation(conversation_id)` is GET /conversations/{conversation_id} (the API cannot list
conversations); its columns are the spec's `ConversationResource`: id, object, created_at, metadata.

`conversation_items(conversation_id, sort := 'asc')` is GET /conversations/{conversation_id}/items
(the spec has no GET of one item): the item struct of `items.py` as columns (a conversation holds the
same kinds as a response's output), and `conversation_id` filled from the request.

What the schema cannot hold is documented, never an error: see `items.py` (each item is also kept
whole in `json`); a key the API adds to a conversation is dropped.
"""

from __future__ import annotations

import pyarrow as pa

from duckdb_openai.resources.base import Key, Resource, sort_option
from duckdb_openai.resources.families import RESPONSES_API
from duckdb_openai.resources.items import ITEM_FIELDS
from duckdb_openai.schema import field

__all__ = ["CONVERSATIONS", "CONVERSATIONS_SCHEMA", "CONVERSATION_ITEMS", "CONVERSATION_ITEMS_SCHEMA"]

_S = pa.string()
_TS = pa.timestamp("us", tz="UTC")

CONVERSATIONS_SCHEMA: pa.Schema = pa.schema(
    [
        field("id", _S, "Id of the conversation (`conv_...`)."),
        field("object", _S, "Always 'conversation'."),
        field("created_at", _TS, "When the conversation was created."),
        field("metadata", pa.map_(_S, _S), "Up to 16 key-value pairs attached to the conversation."),
    ]
)

CONVERSATIONS = Resource(
    family=RESPONSES_API,
    progress_units=("conversations", "conversations"),
    name="conversations",
    item_name="conversation",
    path=None,
    keys=(),
    item_key=Key("conversation_id", "conv_abc123"),
    item_path_template="conversations/{conversation_id}",
    schema=CONVERSATIONS_SCHEMA,
    catalog_schema="conversations",
    doc="A conversation of the Conversations API: GET /conversations/{conversation_id}",
)

CONVERSATION_ITEMS_SCHEMA: pa.Schema = pa.schema(
    [
        *ITEM_FIELDS,
        field(
            "conversation_id",
            _S,
            "Conversation the item belongs to (filled from the request; the API's items do not carry it).",
        ),
    ]
)

CONVERSATION_ITEMS = Resource(
    family=RESPONSES_API,
    progress_units=("conversations", "items"),
    name="conversation_items",
    item_name="conversation_item",
    path="conversations/{conversation_id}/items",
    keys=(Key("conversation_id", "conv_abc123"),),
    item_key=Key("item_id", "msg_abc123"),
    item_path_template=None,
    schema=CONVERSATION_ITEMS_SCHEMA,
    options=(sort_option("items"),),
    catalog_schema="conversations",
    catalog_table="items",
    doc="Items of a conversation: GET /conversations/{conversation_id}/items",
)
