"""Response bytes to Arrow record batches of one fixed schema, without a Python object per row.

The fast path hands the bytes to pyarrow's C++ JSON reader with an explicit parse schema derived from
the target schema (timestamps as integers, every declared field typed), lets it infer only what Arrow's
reader cannot declare (MAP columns arrive as structs keyed by the map's keys), then `conform`s the
result to the target schema with vectorized Arrow and NumPy operations: integer seconds become
timestamps, key structs become maps, and fields the schema does not declare are dropped.

If the reader refuses a body (a type conflict inside a page, say), a slow path parses it with `json`
and builds the same batch, so a surprise costs time, not data; a body neither path can read raises
ResponseFormatError.

A schema with JSON-text fields (`schema.json_field`: a run's `tool_choice`, a function's `parameters`)
always takes the Python path: Arrow's reader cannot hand back a value's source text, so each such value
is replaced by its compact JSON text (`json.dumps(v, separators=(",", ":"), ensure_ascii=False)`; a
string keeps its quotes, null and absent are NULL) before the rows become Arrow. The choice is made once,
when the decoder is built; schemas without JSON fields keep the fast path.

>>> from duckdb_openai.run_steps import RUN_STEPS_SCHEMA
>>> page = PageDecoder(RUN_STEPS_SCHEMA).decode_page(b'{"object":"list","data":[],"first_id":null,'
...     b'"last_id":null,"has_more":false}')
>>> page.batch.num_rows, page.has_more, page.batch.schema == RUN_STEPS_SCHEMA
(0, False, True)
"""

from __future__ import annotations

import functools
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.json as pj

from duckdb_openai.errors import ResponseFormatError
from duckdb_openai.schema import is_json

__all__ = ["Page", "PageDecoder", "conform"]

_STRING = pa.string()
#: What the reader or the conversion raise when a body does not fit the fast path.
_FAST_PATH_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, ValueError, KeyError)


@dataclass(frozen=True)
class Page:
    """One list response: its rows as a batch of the target schema, and its cursor fields."""

    batch: pa.RecordBatch
    has_more: bool
    first_id: str | None
    last_id: str | None
    #: The position of the id column in the batch.
    id_index: int = 0

    def ids(self) -> list[str]:
        return self.batch.column(self.id_index).to_pylist()  # type: ignore[no-any-return]


def _parse_type(t: pa.DataType) -> pa.DataType:
    """The type pyarrow's JSON reader is told to parse for target type `t` (None: leave it to inference)."""
    if pa.types.is_timestamp(t):
        return pa.int64()
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, _parse_type(f.type)) for f in t if not pa.types.is_map(f.type)])
    if pa.types.is_list(t):
        return pa.list_(_parse_type(t.value_type))
    return t


def _mask(arr: pa.Array) -> pa.Array | None:
    return arr.is_null() if arr.null_count else None


_SCALE = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


def _seconds_to_timestamps(arr: pa.Array, t: pa.TimestampType) -> pa.Array:
    """Integer epoch seconds as timestamps of `t`, scaled in NumPy over the data buffer (a chain of Arrow
    casts costs several times as much per column); the validity bitmap is shared, not copied."""
    scale = _SCALE[t.unit]
    if not pa.types.is_int64(arr.type):
        arr = arr.cast(pa.int64())
    validity, data = arr.buffers()
    seconds = np.frombuffer(data, dtype=np.int64, count=arr.offset + len(arr))
    # Null slots hold zeros as the reader leaves them; anything out of range goes the checked way.
    if len(seconds) and int(np.abs(seconds).max()) > np.iinfo(np.int64).max // scale:
        return arr.cast(pa.timestamp("s", tz=t.tz)).cast(t)
    return pa.Array.from_buffers(
        t, len(arr), [validity, pa.py_buffer(seconds * scale)], null_count=arr.null_count, offset=arr.offset
    )


@functools.lru_cache(maxsize=1024)
def _key_array(names: tuple[str, ...], key_type: pa.DataType) -> pa.Array:
    """The field names of a key struct as an array, cached: pages repeat the same few key sets."""
    return pa.array(names, key_type)


def _struct_to_map(arr: pa.StructArray, t: pa.MapType) -> pa.Array:
    """A struct whose field names are map keys (as the JSON reader infers an object) to a MapArray."""
    n = len(arr)
    mask = arr.is_null() if arr.null_count else None
    k = arr.type.num_fields
    if k == 0:
        offsets = pa.array(np.zeros(n + 1, dtype=np.int32))
        empty = pa.array([], t.key_type)
        return pa.MapArray.from_arrays(offsets, empty, pa.array([], t.item_type), type=t, mask=mask)
    # All k fields end to end: the value of field f in row r sits at f * n + r.
    values = pa.concat_arrays([conform(arr.field(i), t.item_type) for i in range(k)])
    if values.null_count:
        present = values.is_valid().to_numpy(zero_copy_only=False).reshape(k, n).T
    else:
        present = np.ones((n, k), dtype=bool)
    if mask is not None:
        present &= ~mask.to_numpy(zero_copy_only=False)[:, None]
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(present.sum(axis=1), out=offsets[1:])
    rows, fields = np.nonzero(present)
    keys = _key_array(tuple(f.name for f in arr.type), t.key_type).take(fields)
    return pa.MapArray.from_arrays(offsets, keys, values.take(fields * n + rows), type=t, mask=mask)


def conform(arr: pa.Array, t: pa.DataType) -> pa.Array:
    """`arr` as type `t`: fields matched by name (missing ones NULL, extra ones dropped), seconds as
    timestamps, key structs as maps, anything else cast."""
    if arr.type == t:
        return arr
    if pa.types.is_null(arr.type):
        return pa.nulls(len(arr), t)
    if pa.types.is_timestamp(t) and pa.types.is_integer(arr.type):
        return _seconds_to_timestamps(arr, t)
    if pa.types.is_map(t) and pa.types.is_struct(arr.type):
        return _struct_to_map(arr, t)
    if pa.types.is_struct(t) and pa.types.is_struct(arr.type):
        return pa.StructArray.from_arrays(_conform_fields(arr, t), fields=list(t), mask=_mask(arr))
    if pa.types.is_list(t) and pa.types.is_list(arr.type):
        if arr.offset:
            arr = pa.concat_arrays([arr])  # a sliced list's offsets are not zero-based
        values = conform(arr.values, t.value_type)
        return pa.ListArray.from_arrays(arr.offsets, values, type=t, mask=_mask(arr))
    return arr.cast(t)


def _conform_fields(arr: pa.StructArray, t: pa.StructType) -> list[pa.Array]:
    """The fields of struct type `t`, conformed from the struct array `arr` (matched by name). Integer
    seconds bound for the same timestamp type are scaled together: one NumPy pass, not one per field."""
    have = {arr.type.field(i).name: i for i in range(arr.type.num_fields)}
    out: list[pa.Array | None] = []
    seconds: dict[pa.DataType, list[tuple[int, pa.Array]]] = {}
    for f in t:
        if f.name not in have:
            out.append(pa.nulls(len(arr), f.type))
            continue
        child = arr.field(have[f.name])
        if pa.types.is_timestamp(f.type) and pa.types.is_integer(child.type):
            seconds.setdefault(f.type, []).append((len(out), child))
            out.append(None)
        else:
            out.append(conform(child, f.type))
    for target, group in seconds.items():
        if len(group) == 1:
            out[group[0][0]] = _seconds_to_timestamps(group[0][1], target)
            continue
        joined = _seconds_to_timestamps(
            pa.concat_arrays([child.cast(pa.int64()) for _, child in group]), target
        )
        for j, (position, _) in enumerate(group):
            out[position] = joined.slice(j * len(arr), len(arr))
    return out  # type: ignore[return-value]


#: Where the JSON-text fields of a type sit: `_JSON_TEXT` for one, a dict of the fields that hold some for
#: a struct, a one-element tuple for the elements of a list.
_JsonPlan: TypeAlias = "str | dict[str, _JsonPlan] | tuple[_JsonPlan]"
_JSON_TEXT = "json"


def _field_plan(f: pa.Field) -> _JsonPlan | None:
    return _JSON_TEXT if is_json(f) else _json_plan(f.type)


def _json_plan(t: pa.DataType) -> _JsonPlan | None:
    """The JSON-text fields inside type `t`, or None if it holds none (only those paths are walked)."""
    if pa.types.is_struct(t):
        children = {f.name: plan for f in t if (plan := _field_plan(f)) is not None}
        return children or None
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        element = _field_plan(t.value_field)
        return None if element is None else (element,)
    return None


def _with_json_text(value: Any, plan: _JsonPlan) -> Any:
    """`value` (parsed JSON) with every value at a JSON-text field replaced by its compact JSON text.
    Dicts are updated in place; a value of another shape than the schema's is left for Arrow to refuse."""
    if isinstance(plan, str):
        return None if value is None else json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    if isinstance(plan, dict):
        if isinstance(value, dict):
            for name, child in plan.items():
                if name in value:
                    value[name] = _with_json_text(value[name], child)
        return value
    if isinstance(value, list):
        return [_with_json_text(item, plan[0]) for item in value]
    return value


class PageDecoder:
    """Decodes list pages and single objects of one resource into batches of `schema`."""

    def __init__(self, schema: pa.Schema, *, id_column: str = "id") -> None:
        self.schema = schema
        self.id_index = schema.get_field_index(id_column)
        self.row_type = pa.struct(list(schema))
        self._object_parse = pa.schema(list(_parse_type(self.row_type)))
        self._page_parse = pa.schema(
            [
                ("data", pa.list_(_parse_type(self.row_type))),
                ("has_more", pa.bool_()),
                ("first_id", _STRING),
                ("last_id", _STRING),
            ]
        )
        self._map_fields = [f.name for f in schema if pa.types.is_map(f.type)]
        # Chosen once: a schema with JSON-text fields decodes every body on the Python path.
        self._json_plan = _json_plan(self.row_type)

    def empty(self) -> pa.RecordBatch:
        return pa.RecordBatch.from_pylist([], schema=self.schema)

    def _read(self, bodies: Sequence[bytes], parse_schema: pa.Schema) -> pa.Table:
        # A raw newline in valid JSON is always white space (inside strings it is escaped): fold each body
        # onto one line, so the reader sees one JSON object per body.
        lines = b"\n".join(body.replace(b"\n", b" ").replace(b"\r", b" ") for body in bodies)
        return pj.read_json(
            io.BytesIO(lines),
            read_options=pj.ReadOptions(use_threads=False, block_size=max(len(lines) + 64, 1 << 16)),
            parse_options=pj.ParseOptions(explicit_schema=parse_schema, unexpected_field_behavior="infer"),
        )

    def _rows(self, steps: pa.StructArray) -> pa.RecordBatch:
        # Top-level nulls cannot occur here (each is a JSON object), so the columns go straight into
        # the batch without an intermediate struct.
        return pa.RecordBatch.from_arrays(_conform_fields(steps, self.row_type), schema=self.schema)

    def decode_page(self, body: bytes) -> Page:
        """One list response (`{"object": "list", "data": [...], "has_more": ...}`) as a Page."""
        if self._json_plan is not None:
            return self._decode_page_slowly(body)
        try:
            return self._decode_together([body])[0]
        except _FAST_PATH_ERRORS:
            return self._decode_page_slowly(body)

    def decode_pages(self, bodies: Sequence[bytes]) -> list[Page | ResponseFormatError]:
        """Several list responses at once, each as decode_page would give it (or its error).

        The JSON reader and the conversion each cost a fixed few hundred microseconds per call, more
        than a small page's whole parse; pages that arrive together are decoded as one table, one page
        per line, then sliced apart. If that table cannot be read, each body is decoded on its own.
        """
        if self._json_plan is not None:
            return [self._page_or_error(body) for body in bodies]
        try:
            return list(self._decode_together(bodies))
        except _FAST_PATH_ERRORS:
            return [self._page_or_error(body) for body in bodies]

    def _decode_together(self, bodies: Sequence[bytes]) -> list[Page]:
        table = self._read(bodies, self._page_parse)
        if table.num_rows != len(bodies):
            raise ValueError("not one JSON object per body")
        column = table.column("data")
        data = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
        flags = table.column("has_more").to_pylist()
        firsts = table.column("first_id").to_pylist()
        lasts = table.column("last_id").to_pylist()
        if data.null_count or None in flags:
            raise ValueError("a body without a data list or has_more")
        offsets = data.offsets.to_pylist()
        # Only a list that starts at its values' origin and spans them all may skip flatten().
        values = data.values
        whole = data.offset == 0 and offsets[0] == 0 and offsets[-1] == len(values)
        rows = self._rows(values if whole else data.flatten())
        base = offsets[0]
        if len(bodies) == 1:
            return [Page(rows, bool(flags[0]), firsts[0], lasts[0], self.id_index)]
        return [
            Page(
                rows.slice(offsets[i] - base, offsets[i + 1] - offsets[i]),
                bool(flags[i]),
                firsts[i],
                lasts[i],
                self.id_index,
            )
            for i in range(len(bodies))
        ]

    def _page_or_error(self, body: bytes) -> Page | ResponseFormatError:
        try:
            return self.decode_page(body)
        except ResponseFormatError as exc:
            return exc

    def decode_object(self, body: bytes) -> pa.RecordBatch:
        """One object (the item endpoint's response) as a one-row batch."""
        if self._json_plan is not None:
            return self._decode_object_slowly(body)
        try:
            table = self._read([body], self._object_parse)
            if table.num_rows != 1:
                raise ValueError("not one JSON object")
            return self._rows(table.to_struct_array().combine_chunks())
        except _FAST_PATH_ERRORS:
            return self._decode_object_slowly(body)

    def _decode_object_slowly(self, body: bytes) -> pa.RecordBatch:
        document = _loads(body)
        if not isinstance(document, dict):
            raise ResponseFormatError(f"expected a JSON object, got {_preview(body)}") from None
        return self._from_python([document])

    def _decode_page_slowly(self, body: bytes) -> Page:
        document = _loads(body)
        if not isinstance(document, dict) or not isinstance(document.get("data"), list):
            raise ResponseFormatError(f'expected a list response with "data", got {_preview(body)}')
        has_more = document.get("has_more")
        if not isinstance(has_more, bool):
            raise ResponseFormatError(f'the list response has no boolean "has_more": {_preview(body)}')
        batch = self._from_python(document["data"])
        return Page(batch, has_more, document.get("first_id"), document.get("last_id"), self.id_index)

    def _from_python(self, rows: list[Any]) -> pa.RecordBatch:
        if not all(isinstance(row, dict) for row in rows):
            raise ResponseFormatError("the list response's data holds something other than objects")
        for row in rows:
            for name in self._map_fields:
                if isinstance(row.get(name), dict):
                    row[name] = [
                        (k, v if v is None or isinstance(v, str) else str(v)) for k, v in row[name].items()
                    ]
            if self._json_plan is not None:
                _with_json_text(row, self._json_plan)
        parse_type = pa.struct(
            [
                pa.field(f.name, f.type if pa.types.is_map(f.type) else _parse_type(f.type))
                for f in self.schema
            ]
        )
        try:
            return self._rows(pa.array(rows, type=parse_type))
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError) as exc:
            raise ResponseFormatError(f"a run step does not fit the schema: {exc}") from None


def _loads(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ResponseFormatError(
            f"the API answered with a body that is not JSON: {_preview(body)}"
        ) from None


def _preview(body: bytes) -> str:
    text = body[:200].decode("utf-8", "replace")
    return repr(text + ("..." if len(body) > 200 else ""))
