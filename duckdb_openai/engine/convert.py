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

A struct holding an object-JSON field (`schema.object_json_field`: an output item of a response) is
filled leniently on that path: the field gets the whole object's JSON text, and any other field whose
value has another JSON type than the field's (text where a struct is declared, say) is NULL rather than
an error, since the object's JSON text still holds it.

Both paths see only bodies that `contract.check_body` let through (one JSON object, bounded nesting,
UTF-8), and every page they decode is held to `contract.check_ids` (ids present, unique, matching
`first_id` / `last_id`). What contradicts the contract is a ResponseFormatError; the tolerances, where
the data stays exact, are:

- a field the schema does not declare is dropped; a declared field that is missing is NULL;
- an integral number written as a float (`3.0`) in an integer or timestamp field is read as that
  integer (`3.7` is an error, never truncated);
- where the spec types epoch seconds as a number, not an integer (a response's `created_at` and
  `completed_at`, declared with `schema.number_time_field`), a fraction of a second is kept, rounded to
  the microsecond;
- a metadata value that is not a string is kept as its text (`2` becomes `'2'`);
- `first_id` / `last_id` may be absent or null (only a present one must match).

A number its field's type cannot hold (an integer past 64 bits, epoch seconds past the timestamp's range
such as `1e308`, or `1e400`, which Python's json reads as inf) is a ResponseFormatError naming the field,
as is a body holding `NaN` or `Infinity`, which are not JSON.

>>> from duckdb_openai.resources.run_steps import RUN_STEPS_SCHEMA
>>> page = PageDecoder(RUN_STEPS_SCHEMA).decode_page(b'{"object":"list","data":[],"first_id":null,'
...     b'"last_id":null,"has_more":false}')
>>> page.batch.num_rows, page.has_more, page.batch.schema == RUN_STEPS_SCHEMA
(0, False, True)
"""

from __future__ import annotations

import contextlib
import decimal
import functools
import io
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from duckdb_openai.engine.contract import check_body, check_ids, preview
from duckdb_openai.errors import ResponseFormatError
from duckdb_openai.resources.paging import CURSOR_PAGING, Paging, envelope_of
from duckdb_openai.schema import is_json, is_number_time, is_object_json, json_key

__all__ = ["Page", "PageDecoder", "check_page", "conform"]

_STRING = pa.string()
#: What the reader or the conversion raise when a body does not fit the fast path.
_FAST_PATH_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, ValueError, KeyError)


@dataclass(frozen=True)
class Page:
    """One list response: its rows as a batch of the target schema, and its envelope (the paging
    strategy's fields: `has_more` with `first_id` / `last_id`, or with `next_page`)."""

    batch: pa.RecordBatch
    envelope: Mapping[str, Any]
    #: The position of the id column in the batch; None when rows carry no ids (usage buckets).
    id_index: int | None = 0

    @property
    def has_more(self) -> bool:
        return bool(self.envelope.get("has_more"))

    @property
    def first_id(self) -> str | None:
        return self.envelope.get("first_id")

    @property
    def last_id(self) -> str | None:
        return self.envelope.get("last_id")

    def ids(self) -> list[str]:
        """The objects' ids: the id column's values (none when rows carry no ids)."""
        if self.id_index is None:
            return []
        return self.batch.column(self.id_index).to_pylist()  # type: ignore[no-any-return]


def check_page(page: Page) -> None:
    """Raise ResponseFormatError unless the page's ids are present and unique and its first_id /
    last_id name its first and last object (`contract.check_ids`); rows without ids have nothing to
    check here (their paging checks its token)."""
    if page.id_index is not None:
        check_ids(page.ids(), first_id=page.first_id, last_id=page.last_id)


def _checked(page: Page | ResponseFormatError) -> Page | ResponseFormatError:
    if isinstance(page, Page):
        try:
            check_page(page)
        except ResponseFormatError as exc:
            return exc
    return page


#: A place held in decode_pages' results until the body is decoded.
_UNREAD = ResponseFormatError("not decoded")


def _parse_type(t: pa.DataType) -> pa.DataType:
    """The type pyarrow's JSON reader is told to parse for target type `t` (None: leave it to inference)."""
    if pa.types.is_timestamp(t):
        return pa.int64()
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, _parse_type(f.type)) for f in t if not pa.types.is_map(f.type)])
    if pa.types.is_list(t):
        return pa.list_(_parse_type(t.value_type))
    return t


def _python_field(f: pa.Field) -> pa.Field:
    """Field `f` as the Python path builds it: like the target field, but with struct fields, list
    elements and maps as Arrow builds them from Python values; timestamps stay timestamps, which
    `_exact_numbers` fills with the timestamp's units from epoch seconds (checking they fit)."""
    t = f.type
    if pa.types.is_struct(t):
        return pa.field(f.name, pa.struct([_python_field(child) for child in t]), metadata=f.metadata)
    if pa.types.is_list(t):
        return pa.field(f.name, pa.list_(_python_field(t.value_field)), metadata=f.metadata)
    return f


def _mask(arr: pa.Array) -> pa.Array | None:
    return arr.is_null() if arr.null_count else None


_SCALE = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}
#: The largest number of seconds each unit's scaling keeps within int64.
_LIMIT = {unit: np.iinfo(np.int64).max // scale for unit, scale in _SCALE.items()}


def _seconds_to_timestamps(arr: pa.Array, t: pa.TimestampType) -> pa.Array:
    """Integer epoch seconds as timestamps of `t`, scaled in NumPy over the data buffer (a chain of Arrow
    casts costs several times as much per column); the validity bitmap is shared, not copied."""
    scale = _SCALE[t.unit]
    if not pa.types.is_int64(arr.type):
        arr = arr.cast(pa.int64())
    validity, data = arr.buffers()
    seconds = np.frombuffer(data, dtype=np.int64, count=arr.offset + len(arr))
    # Null slots hold zeros as the reader leaves them; anything out of range goes the checked way.
    limit = _LIMIT[t.unit]
    if len(seconds) and (int(seconds.max()) > limit or int(seconds.min()) < -limit):
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
    present = _valid(values).reshape(k, n)
    if mask is not None:
        present &= _valid(arr)  # a NULL object has no entries
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(present.sum(axis=0, dtype=np.int32), out=offsets[1:])
    # Row by row, each row's entries in field order: the order of the transposed mask's nonzeros.
    rows, fields = np.nonzero(np.ascontiguousarray(present.T))
    keys = _key_array(tuple(arr.type.names), t.key_type).take(_indices(fields))
    offsets_array = pa.Array.from_buffers(pa.int32(), n + 1, [None, pa.py_buffer(offsets)])
    entries = values.take(_indices(fields * n + rows))
    return pa.MapArray.from_arrays(offsets_array, keys, entries, type=t, mask=mask)


def _valid(arr: pa.Array) -> np.ndarray:
    """Which slots of `arr` are valid, as booleans, from its validity bitmap (no Arrow kernel call)."""
    bitmap = arr.buffers()[0]
    if bitmap is None:
        return np.ones(len(arr), dtype=bool)
    bits = np.unpackbits(np.frombuffer(bitmap, dtype=np.uint8), bitorder="little")
    return bits[arr.offset : arr.offset + len(arr)].astype(bool)


def _indices(positions: np.ndarray) -> pa.Array:
    """NumPy positions as an Arrow int64 array without a copy; `Array.take` given NumPy converts it
    through pyarrow's generic (pandas-aware) path at tens of microseconds a call."""
    positions = np.ascontiguousarray(positions, dtype=np.int64)
    return pa.Array.from_buffers(pa.int64(), len(positions), [None, pa.py_buffer(positions)])


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
    have = {name: i for i, name in enumerate(arr.type.names)}
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
            pa.concat_arrays(
                [child if pa.types.is_int64(child.type) else child.cast(pa.int64()) for _, child in group]
            ),
            target,
        )
        for j, (position, _) in enumerate(group):
            out[position] = joined.slice(j * len(arr), len(arr))
    return out  # type: ignore[return-value]


@dataclass(frozen=True)
class _Lenient:
    """The plan of a struct holding an object-JSON field: every field is fitted by `fit`."""

    type: pa.StructType
    #: `_object_fitter(type)`, built once with the plan.
    fit: Callable[[dict[str, Any]], dict[str, Any]]


#: Where the JSON-text fields of a type sit: `_JSON_TEXT` for one, a dict of the fields that hold some for
#: a struct, a one-element tuple for the elements of a list, `_Lenient` for a struct with object JSON.
_JsonPlan: TypeAlias = "str | dict[str, _JsonPlan] | tuple[_JsonPlan] | _Lenient | _Keyed"
_JSON_TEXT = "json"


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class _Keyed:
    """The plan of a `keyed_json_field`: the JSON text of the object's value under the key that its
    field `key` names."""

    key: str


def _field_plan(f: pa.Field) -> _JsonPlan | None:
    key = json_key(f)
    if key is not None:
        return _Keyed(key)
    return _JSON_TEXT if is_json(f) else _json_plan(f.type)


def _json_plan(t: pa.DataType) -> _JsonPlan | None:
    """The JSON-text fields inside type `t`, or None if it holds none (only those paths are walked)."""
    if pa.types.is_struct(t):
        if any(is_object_json(f) for f in t):
            return _Lenient(t, _object_fitter(t))
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
        return None if value is None else _dumps(value)
    if isinstance(plan, _Lenient):
        return plan.fit(value) if isinstance(value, dict) else value
    if isinstance(plan, dict):
        if isinstance(value, dict):
            for name, child in plan.items():
                if isinstance(child, _Keyed):
                    key = value.get(child.key)
                    found = value.get(key) if isinstance(key, str) else None
                    value[name] = None if found is None else _dumps(found)
                elif name in value:
                    value[name] = _with_json_text(value[name], child)
        return value
    if isinstance(value, list) and isinstance(plan, tuple):
        return [_with_json_text(item, plan[0]) for item in value]
    return value


_Fitter: TypeAlias = Callable[[Any], Any]


def _object_fitter(t: pa.StructType) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A function giving the fields of struct `t` from an object: object-JSON fields hold its JSON
    text, the others its values that fit them (`_fitter`). Each field's branch is chosen once, here,
    not per value: the Python path runs this for every output item of every response."""
    parts = [(f.name, None if is_object_json(f) else _fitter(f)) for f in t]

    def fit(value: dict[str, Any]) -> dict[str, Any]:
        text: str | None = None  # the object's JSON text, made once however many fields hold it
        out: dict[str, Any] = {}
        for name, fit_field in parts:
            if fit_field is None:
                if text is None:
                    text = _dumps(value)
                out[name] = text
            else:
                out[name] = fit_field(value.get(name))
        return out

    return fit


def _fitter(f: pa.Field) -> _Fitter:
    """A function giving a value as field `f`'s parse type wants it, or None where its JSON type is
    another (text where a struct is declared, say)."""
    if is_json(f):
        return lambda value: None if value is None else _dumps(value)
    t = f.type
    if pa.types.is_struct(t):
        fit_object = _object_fitter(t)
        return lambda value: fit_object(value) if isinstance(value, dict) else None
    if pa.types.is_list(t):
        element = _fitter(t.value_field)
        return lambda value: [element(v) for v in value] if isinstance(value, list) else None
    if pa.types.is_map(t):
        return lambda value: (
            [(str(k), v if v is None or isinstance(v, str) else _dumps(v)) for k, v in value.items()]
            if isinstance(value, dict)
            else None
        )
    if pa.types.is_string(t):
        return lambda value: value if isinstance(value, str) else None
    if pa.types.is_boolean(t):
        return lambda value: value if isinstance(value, bool) else None
    floating = pa.types.is_floating(t)
    # Epoch seconds the API types as a number (`number_time_field`): a fraction is kept.
    fraction_limit = 2**63 / _SCALE[t.unit] if pa.types.is_timestamp(t) and is_number_time(f) else None

    # Integers, floats and timestamps (epoch seconds); a whole float such as 1741476777.0 counts.
    def number(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        if floating:
            return float(value)
        if fraction_limit is not None:
            return value if math.isfinite(value) and abs(value) < fraction_limit else None
        if isinstance(value, float):
            return int(value) if value.is_integer() and abs(value) < 2**63 else None
        return value if -(2**63) <= value < 2**63 else None

    return number


class PageDecoder:
    """Decodes list pages and single objects of one resource into batches of `schema`.

    `paging` (a `resources.paging` strategy) says what a page's envelope holds and where its rows are;
    `id_column` is the column holding each object's id (None: rows without ids, such as usage
    results)."""

    def __init__(
        self, schema: pa.Schema, *, id_column: str | None = "id", paging: Paging = CURSOR_PAGING
    ) -> None:
        self.schema = schema
        self.paging = paging
        self.records = paging.records
        self.id_index = None if id_column is None else schema.get_field_index(id_column)
        self.row_type = pa.struct(list(schema))
        self._object_parse = pa.schema(list(_parse_type(self.row_type)))
        element = _parse_type(self.row_type)
        nested = self.records.nested
        if nested is not None:
            # A bucket: its copied fields (parsed as the rows' columns are), then its list of rows.
            copied = [pa.field(name, _parse_type(schema.field(name).type)) for name in self.records.copied]
            element = pa.struct([*copied, pa.field(nested, pa.list_(element))])
        self._page_parse = pa.schema([pa.field("data", pa.list_(element)), *paging.envelope])
        self._map_fields = [f.name for f in schema if pa.types.is_map(f.type)]
        # Chosen once: a schema with JSON-text fields decodes every body on the Python path.
        self._json_plan = _json_plan(self.row_type)
        # What the Python path builds its rows as (maps as maps), and where their numbers sit.
        self._python_parse = pa.struct([_python_field(f) for f in schema])
        self._python_numbers = _number_plan(pa.field("", self._python_parse))
        # DECIMAL fields (money) need each number's own digits: the Python path parses them as Decimals.
        self._decimals = _has_decimal(self.row_type)
        if self._decimals and (self._json_plan is not None or self._map_fields):
            raise TypeError("a schema with DECIMAL fields cannot also hold JSON-text or MAP fields")

    def _loads(self, body: bytes) -> Any:
        return _loads(body, decimals=self._decimals)

    def empty(self) -> pa.RecordBatch:
        return pa.RecordBatch.from_pylist([], schema=self.schema)

    def _read(self, bodies: Sequence[bytes], parse_schema: pa.Schema) -> pa.Table:
        # Arrow's reader is for objects only: given a top-level `null` with an explicit schema, pyarrow
        # 20 crashes the process (a segmentation fault). Anything else goes the slow path, which names it.
        if not all(body.lstrip()[:1] == b"{" for body in bodies):
            raise ValueError("a body that is not a JSON object")
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
        check_body(body)
        if self._json_plan is not None:
            page = self._decode_page_slowly(body)
        else:
            try:
                page = self._decode_together([body])[0]
            except _FAST_PATH_ERRORS:
                page = self._decode_page_slowly(body)
        check_page(page)
        return page

    def decode_pages(self, bodies: Sequence[bytes]) -> list[Page | ResponseFormatError]:
        """Several list responses at once, each as decode_page would give it (or its error).

        The JSON reader and the conversion each cost a fixed few hundred microseconds per call, more
        than a small page's whole parse; pages that arrive together are decoded as one table, one page
        per line, then sliced apart. If that table cannot be read, each body is decoded on its own.
        """
        results: list[Page | ResponseFormatError] = []
        readable: list[int] = []  # the bodies a parser may see, decoded together below
        for index, body in enumerate(bodies):
            try:
                check_body(body)
            except ResponseFormatError as exc:
                results.append(exc)
            else:
                results.append(_UNREAD)
                readable.append(index)
        if not readable:
            return results
        pages: list[Page | ResponseFormatError]
        try:
            if self._json_plan is not None:
                raise ValueError("a schema with JSON-text fields decodes each body on the Python path")
            pages = list(self._decode_together([bodies[i] for i in readable]))
        except _FAST_PATH_ERRORS:
            pages = [self._page_or_error(bodies[i]) for i in readable]
        for index, page in zip(readable, pages, strict=True):
            results[index] = _checked(page)
        return results

    def _decode_together(self, bodies: Sequence[bytes]) -> list[Page]:
        table = self._read(bodies, self._page_parse)
        if table.num_rows != len(bodies):
            raise ValueError("not one JSON object per body")
        column = table.column("data")
        data = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
        names = [f.name for f in self.paging.envelope]
        envelopes = [
            dict(zip(names, values, strict=True))
            for values in zip(*(table.column(name).to_pylist() for name in names), strict=True)
        ]
        if data.null_count or any(e.get("has_more") is None for e in envelopes):
            raise ValueError("a body without a data list or has_more")
        offsets = data.offsets.to_pylist()
        # Only a list that starts at its values' origin and spans them all may skip flatten().
        values = data.values
        whole = data.offset == 0 and offsets[0] == 0 and offsets[-1] == len(values)
        elements = values if whole else data.flatten()
        if self.records.nested is not None:
            elements, offsets = self._flatten_nested(elements, offsets)
        rows = self._rows(elements)
        base = offsets[0]
        if len(bodies) == 1:
            return [Page(rows, envelopes[0], self.id_index)]
        return [
            Page(rows.slice(offsets[i] - base, offsets[i + 1] - offsets[i]), envelopes[i], self.id_index)
            for i in range(len(bodies))
        ]

    def _flatten_nested(
        self, buckets: pa.StructArray, offsets: list[int]
    ) -> tuple[pa.StructArray, list[int]]:
        """The rows of each bucket's nested list, with the bucket's copied fields set on each, and the
        bodies' offsets into those rows (`offsets` are the bodies' offsets into the buckets)."""
        nested = self.records.nested
        assert nested is not None
        if buckets.null_count:
            raise ValueError("a bucket that is null")
        start = offsets[0]
        if buckets.offset or start:
            buckets = pa.concat_arrays([buckets])  # zero-based, so the list offsets below line up
        lists = buckets.field(nested)
        if lists.null_count:
            raise ValueError(f"a bucket without its {nested} list")
        if lists.offset:
            lists = pa.concat_arrays([lists])
        inner = lists.offsets.to_pylist()
        rows = lists.flatten()
        parents = pc.list_parent_indices(lists)
        copied = {name: buckets.field(name).take(parents) for name in self.records.copied}
        arrays = [copied[f.name] if f.name in copied else rows.field(f.name) for f in rows.type]
        flat = pa.StructArray.from_arrays(arrays, fields=list(rows.type))
        return flat, [inner[o - start] for o in offsets]

    def _page_or_error(self, body: bytes) -> Page | ResponseFormatError:
        """A body that passed check_body, on its own: the fast path, else the slow one."""
        try:
            if self._json_plan is not None:
                return self._decode_page_slowly(body)
            try:
                return self._decode_together([body])[0]
            except _FAST_PATH_ERRORS:
                return self._decode_page_slowly(body)
        except ResponseFormatError as exc:
            return exc

    def decode_object(self, body: bytes) -> pa.RecordBatch:
        """One object (the item endpoint's response) as a one-row batch; an object without an id (an
        error object answered with 200, say) is a ResponseFormatError."""
        check_body(body)
        try:
            if self._json_plan is not None:
                raise ValueError("a schema with JSON-text fields decodes on the Python path")
            table = self._read([body], self._object_parse)
            if table.num_rows != 1:
                raise ValueError("not one JSON object")
            batch = self._rows(table.to_struct_array().combine_chunks())
        except _FAST_PATH_ERRORS:
            batch = self._from_python([self._loads(body)])
        if self.id_index is not None and not batch.column(self.id_index)[0].as_py():
            document = self._loads(body)
            if isinstance(document, dict) and isinstance(document.get("error"), dict):
                raise ResponseFormatError(f"the API answered 200 with an error object: {preview(body)}")
            raise ResponseFormatError(f"the object has no id: {preview(body)}")
        return batch

    def decode_objects(self, bodies: Sequence[bytes]) -> list[pa.RecordBatch | ResponseFormatError]:
        """Several objects at once, each as decode_object would give it (or its error).

        On the Python path (a schema with JSON-text fields), Arrow's conversion and `conform` cost a
        fixed few hundred microseconds per call, several times a small object's own work: objects that
        arrive together become one batch, then one-row slices. If that batch cannot be built, each
        body is decoded on its own, so one bad body spoils only its own answer."""
        if self._json_plan is None:
            return [self._object_or_error(body) for body in bodies]
        results: list[pa.RecordBatch | ResponseFormatError | None] = []
        documents: list[Any] = []
        readable: list[int] = []
        for index, body in enumerate(bodies):
            try:
                check_body(body)
                documents.append(self._loads(body))
            except ResponseFormatError as exc:
                results.append(exc)
            else:
                results.append(None)
                readable.append(index)
        batch: pa.RecordBatch | None = None
        if len(readable) > 1:
            # If some body does not fit, each is decoded alone below, to name its own error.
            with contextlib.suppress(ResponseFormatError):
                batch = self._from_python(documents)
        if batch is None:
            for index in readable:
                results[index] = self._object_or_error(bodies[index])
        else:
            ids = (
                [True] * batch.num_rows if self.id_index is None else batch.column(self.id_index).to_pylist()
            )
            for row, index in enumerate(readable):
                # A row without an id is decode_object's error object (or an object without an id).
                results[index] = batch.slice(row, 1) if ids[row] else self._object_or_error(bodies[index])
        return results  # type: ignore[return-value]  # every None was filled in

    def _object_or_error(self, body: bytes) -> pa.RecordBatch | ResponseFormatError:
        try:
            return self.decode_object(body)
        except ResponseFormatError as exc:
            return exc

    def _decode_page_slowly(self, body: bytes) -> Page:
        document = self._loads(body)
        if isinstance(document, dict) and isinstance(document.get("error"), dict):
            raise ResponseFormatError(
                f"the API answered 200 with an error object instead of a list: {preview(body)}"
            )
        if not isinstance(document, dict) or not isinstance(document.get("data"), list):
            raise ResponseFormatError(f'expected a list response with "data", got {preview(body)}')
        try:
            envelope = envelope_of(document, self.paging)
        except ResponseFormatError as exc:
            raise ResponseFormatError(f"{exc}: {preview(body)}") from None
        rows = document["data"]
        nested = self.records.nested
        if nested is not None:
            rows = []
            for bucket in document["data"]:
                if not isinstance(bucket, dict) or not isinstance(bucket.get(nested), list):
                    raise ResponseFormatError(
                        f'an element of "data" is not an object with a "{nested}" list: {preview(body)}'
                    )
                copied = {name: bucket.get(name) for name in self.records.copied}
                for row in bucket[nested]:
                    rows.append({**row, **copied} if isinstance(row, dict) else row)
        batch = self._from_python(rows)
        return Page(batch, envelope, self.id_index)

    def _from_python(self, rows: list[Any]) -> pa.RecordBatch:
        if not all(isinstance(row, dict) for row in rows):
            raise ResponseFormatError("the list response's data holds something other than objects")
        if self._json_plan is not None:
            # Before the maps become pairs, so JSON text shows them as the API sent them.
            rows = [_with_json_text(row, self._json_plan) for row in rows]
        for row in rows:
            for name in self._map_fields:
                if isinstance(row.get(name), dict):
                    row[name] = [
                        (k, v if v is None or isinstance(v, str) else json.dumps(v, separators=(",", ":")))
                        for k, v in row[name].items()
                    ]
        numbers = self._python_numbers
        if numbers is not None:
            for position, row in enumerate(rows):
                try:
                    _exact_numbers(row, numbers, "")
                except ResponseFormatError as exc:
                    raise ResponseFormatError(f"object {position} of the response: {exc}") from None
        try:
            return self._rows(pa.array(rows, type=self._python_parse))
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError) as exc:
            raise ResponseFormatError(f"an object does not fit the schema: {exc}") from None
        except UnicodeEncodeError as exc:  # a lone surrogate escape (`"\ud800"`): JSON, but no text
            raise ResponseFormatError(
                f"an object holds a string that is not valid Unicode ({exc.object[exc.start : exc.end]!r})"
            ) from None


#: Where the numbers of a parse type sit: `_Whole` or `_FLOAT` for one, a tuple of (name, plan) pairs for
#: the fields of a struct that hold some, `_Items` for the elements of a list, `_Seconds` for a timestamp,
#: `_Decimal` for an exact amount.
_NumberPlan: TypeAlias = "str | tuple[tuple[str, _NumberPlan], ...] | _Items | _Seconds | _Whole | _Decimal"
_FLOAT = "float"


@dataclass(frozen=True)
class _Items:
    """The number plan of a list: its elements' plan."""

    element: _NumberPlan


@dataclass(frozen=True)
class _Decimal:
    """The number plan of a DECIMAL field (money): the JSON number's own digits, parsed as a Decimal,
    rounded half to even to `scale` places; more digits before the point than `precision - scale` is
    an error."""

    precision: int
    scale: int


@dataclass(frozen=True)
class _Whole:
    """The number plan of an integer field: the range its type holds."""

    low: int
    high: int
    #: The type, for messages ("int64").
    name: str


@dataclass(frozen=True)
class _Seconds:
    """The number plan of a timestamp: epoch seconds made the timestamp's units (`scale` per second).
    A fraction of a second is kept for a `number_time_field` (`fraction`), an error elsewhere."""

    scale: int
    fraction: bool


def _number_plan(f: pa.Field) -> _NumberPlan | None:
    """The number fields inside field `f` (of a Python parse type), or None if it holds none (only those
    are walked)."""
    t = f.type
    if pa.types.is_timestamp(t):
        return _Seconds(_SCALE[t.unit], is_number_time(f))
    if pa.types.is_integer(t):
        bounds = np.iinfo(t.to_pandas_dtype())
        return _Whole(int(bounds.min), int(bounds.max), str(t))
    if pa.types.is_floating(t):
        return _FLOAT
    if pa.types.is_decimal(t):
        return _Decimal(t.precision, t.scale)
    if pa.types.is_struct(t):
        children = tuple((child.name, plan) for child in t if (plan := _number_plan(child)) is not None)
        return children or None
    if pa.types.is_list(t):
        return None if (element := _number_plan(t.value_field)) is None else _Items(element)
    return None


def _exact_numbers(value: Any, plan: _NumberPlan, path: str) -> Any:
    """`value` (parsed JSON) with integral floats in integer fields made ints and epoch seconds made
    timestamp units, in place; `plan` is `_number_plan` of its parse type.

    pa.array would truncate 3.7 in an integer field to 3, read `true` in a float field as 1.0, and
    fail without naming the field on a number past the type (1e308, or 1e400, which json reads as inf);
    each raises ResponseFormatError here instead, naming the field. `3.0` is read as 3 (the value is
    exact).
    """
    if value is None:
        return None
    if isinstance(value, decimal.Decimal) and not isinstance(plan, _Decimal):
        value = float(value)  # a body parsed for a DECIMAL field elsewhere: other numbers as floats
    if isinstance(plan, _Whole):
        whole = value
        if isinstance(value, float):
            if math.isfinite(value) and not value.is_integer():
                raise ResponseFormatError(f"{path} holds {value!r} where the schema has a whole number")
            whole = int(value) if math.isfinite(value) else None
        elif isinstance(value, bool) or not isinstance(value, int):
            return value  # not a number: pa.array refuses it
        if whole is None or not plan.low <= whole <= plan.high:
            raise ResponseFormatError(
                f"{path} holds {value!r}, which does not fit the schema's whole number ({plan.name})"
            )
        return whole
    if plan is _FLOAT:
        if isinstance(value, bool):
            raise ResponseFormatError(f"{path} holds {value!r} where the schema has a number")
        return value
    if isinstance(plan, _Decimal):
        if isinstance(value, bool) or not isinstance(value, (int, decimal.Decimal)):
            raise ResponseFormatError(f"{path} holds {value!r} where the schema has an exact amount")
        if isinstance(value, decimal.Decimal) and not value.is_finite():
            raise ResponseFormatError(f"{path} holds {value!r} where the schema has an exact amount")
        exact = decimal.Decimal(value).quantize(
            decimal.Decimal(1).scaleb(-plan.scale), rounding=decimal.ROUND_HALF_EVEN
        )
        if exact.adjusted() >= plan.precision - plan.scale:
            raise ResponseFormatError(
                f"{path} holds {value!r}, too large for DECIMAL({plan.precision}, {plan.scale})"
            )
        return exact
    if isinstance(plan, _Seconds):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ResponseFormatError(
                f"{path} holds {value!r}, which does not fit the schema: it has a time there (epoch seconds)"
            )
        if isinstance(value, float) and math.isfinite(value) and not value.is_integer() and not plan.fraction:
            raise ResponseFormatError(f"{path} holds {value!r} where the schema has a whole number")
        # Compared before rounding: 1e308 seconds times the scale is inf, which round() cannot take.
        units = value * plan.scale
        if not -(2**63) <= units < 2**63:
            raise ResponseFormatError(
                f"{path} holds {value!r} seconds, which does not fit the schema's timestamp"
            )
        return units if isinstance(units, int) else round(units)
    if isinstance(plan, tuple):
        if isinstance(value, dict):
            for name, child in plan:
                item = value.get(name)
                if item is not None:
                    value[name] = _exact_numbers(item, child, f"{path}.{name}" if path else name)
    elif isinstance(plan, _Items) and isinstance(value, list):
        element = plan.element
        for i, item in enumerate(value):
            value[i] = _exact_numbers(item, element, f"{path}[{i}]")
    return value


def _has_decimal(t: pa.DataType) -> bool:
    if pa.types.is_decimal(t):
        return True
    if pa.types.is_struct(t):
        return any(_has_decimal(f.type) for f in t)
    if pa.types.is_list(t):
        return _has_decimal(t.value_type)
    return False


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


def _loads(body: bytes, *, decimals: bool = False) -> Any:
    """The parsed body; with `decimals`, numbers with a fraction or exponent as Decimals (their exact
    digits, for DECIMAL fields). NaN and Infinity, which Python's json reads, are not JSON."""
    try:
        if decimals:
            return json.loads(body, parse_constant=_not_json, parse_float=decimal.Decimal)
        return json.loads(body, parse_constant=_not_json)
    except (ValueError, RecursionError):  # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ResponseFormatError(f"the API answered with a body that is not JSON: {preview(body)}") from None
