"""Generic helpers over an Arrow schema: its DuckDB type text and its column reference.

The schema itself is declared once, beside its resource (`resources/run_steps.py`); DuckDB's types, the JSON
parse types and the README's column table are all derived from it here.

>>> import pyarrow as pa
>>> duckdb_type(pa.struct([("a", pa.int64()), ("b", pa.list_(pa.string()))]))
'STRUCT("a" BIGINT, "b" VARCHAR[])'
"""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa

__all__ = [
    "column_reference",
    "doc",
    "duckdb_type",
    "field",
    "is_json",
    "is_number_time",
    "is_object_json",
    "json_field",
    "json_key",
    "keyed_json_field",
    "number_time_field",
    "object_json_field",
    "struct",
]

_SIMPLE: dict[pa.DataType, str] = {
    pa.string(): "VARCHAR",
    pa.large_string(): "VARCHAR",
    pa.int64(): "BIGINT",
    pa.int32(): "INTEGER",
    pa.float64(): "DOUBLE",
    pa.bool_(): "BOOLEAN",
}


def field(name: str, type_: pa.DataType, doc: str) -> pa.Field:
    """A nullable field carrying its documentation in the field metadata."""
    return pa.field(name, type_, metadata={"doc": doc})


def json_field(name: str, doc: str) -> pa.Field:
    """A VARCHAR field holding the value's JSON text, whatever JSON it is (string, object, array...).

    For what the API types as "string or object" (a run's `tool_choice`, `response_format`) or as free
    JSON (a function's `parameters`): the text is valid JSON, so DuckDB's `->`, `->>` and `json_*`
    functions read it. A string value keeps its quotes (`'"auto"'`).
    """
    return pa.field(name, pa.string(), metadata={"doc": doc, "json": "true"})


def keyed_json_field(name: str, key: str, doc: str) -> pa.Field:
    """A VARCHAR field holding the JSON text of the object's value under the key that its field `key`
    names: an audit-log event keeps its own object under its type (`"type": "project.archived",
    "project.archived": {"id": "proj_abc"}`), so `details` holds `'{"id":"proj_abc"}'`. NULL when the
    object has no such key."""
    return pa.field(name, pa.string(), metadata={"doc": doc, "json": "keyed", "key": key})


def json_key(f: pa.Field) -> str | None:
    """The field naming the key of a `keyed_json_field`, else None."""
    metadata: dict[bytes, bytes] = f.metadata or {}
    return metadata[b"key"].decode() if metadata.get(b"json") == b"keyed" else None


def object_json_field(name: str, doc: str) -> pa.Field:
    """A VARCHAR field holding the JSON text of the whole object it is a field of.

    For a union of many kinds (a response's output items): the struct types the fields analysts group
    and filter on, and this field keeps the object as the API sent it, so a field the struct does not
    type, or a kind added later, is still there for DuckDB's `->>` and `json_*` functions. A struct
    holding one is filled leniently: a value whose JSON type differs from its field's (an `output` that
    is a list where the struct expects text) is NULL in that field and whole in this one.
    """
    return pa.field(name, pa.string(), metadata={"doc": doc, "json": "object"})


def number_time_field(name: str, type_: pa.DataType, doc: str) -> pa.Field:
    """A timestamp field whose epoch seconds the API types as a number, not an integer (a response's
    `created_at`): a fraction of a second is kept (to the timestamp's unit), where an integer field's
    fraction is an error."""
    return pa.field(name, type_, metadata={"doc": doc, "seconds": "number"})


def is_number_time(f: pa.Field) -> bool:
    """Whether `f` was declared with `number_time_field`."""
    metadata: dict[bytes, bytes] = f.metadata or {}
    return metadata.get(b"seconds") == b"number"


def is_json(f: pa.Field) -> bool:
    """Whether `f` was declared with `json_field`."""
    metadata: dict[bytes, bytes] = f.metadata or {}
    return metadata.get(b"json") == b"true"


def is_object_json(f: pa.Field) -> bool:
    """Whether `f` was declared with `object_json_field`."""
    metadata: dict[bytes, bytes] = f.metadata or {}
    return metadata.get(b"json") == b"object"


def struct(*fields: pa.Field) -> pa.StructType:
    return pa.struct(list(fields))


def doc(f: pa.Field) -> str:
    metadata: dict[bytes, bytes] = f.metadata or {}
    return metadata.get(b"doc", b"").decode()


def duckdb_type(t: pa.DataType) -> str:
    """The DuckDB type text of an Arrow type."""
    if t in _SIMPLE:
        return _SIMPLE[t]
    if pa.types.is_timestamp(t):
        return "TIMESTAMP WITH TIME ZONE" if t.tz else "TIMESTAMP"
    if pa.types.is_decimal(t):
        return f"DECIMAL({t.precision}, {t.scale})"
    if pa.types.is_map(t):
        return f"MAP({duckdb_type(t.key_type)}, {duckdb_type(t.item_type)})"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return f"{duckdb_type(t.value_type)}[]"
    if pa.types.is_struct(t):
        inner = ", ".join(f'"{f.name}" {duckdb_type(f.type)}' for f in t)
        return f"STRUCT({inner})"
    raise TypeError(f"no DuckDB type for Arrow type {t}")


def _short_type(t: pa.DataType) -> str:
    """The type as a reader wants it in a table: nested types abbreviated to their kind."""
    if pa.types.is_struct(t):
        return "STRUCT"
    if pa.types.is_list(t):
        return f"{_short_type(t.value_type)}[]"
    return duckdb_type(t)


def column_reference(schema: pa.Schema) -> Iterator[tuple[str, str, str]]:
    """(path, DuckDB type, doc) for every column and nested field, depth first, as SQL paths."""

    def walk(prefix: str, f: pa.Field) -> Iterator[tuple[str, str, str]]:
        path = f"{prefix}{f.name}"
        yield path, _short_type(f.type), doc(f)
        t = f.type
        suffix = ""
        while pa.types.is_list(t):
            t, suffix = t.value_type, suffix + "[]"
        if pa.types.is_struct(t):
            for child in t:
                yield from walk(f"{path}{suffix}.", child)

    for f in schema:
        yield from walk("", f)
