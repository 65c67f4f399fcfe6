"""JSON-text fields: whatever JSON the API sent, kept as its compact text, anywhere in a schema."""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
import pytest

from duckdb_openai.engine.convert import PageDecoder
from duckdb_openai.errors import ResponseFormatError
from duckdb_openai.resources.assistants import ASSISTANTS_SCHEMA
from duckdb_openai.resources.messages import MESSAGES_SCHEMA
from duckdb_openai.resources.run_steps import RUN_STEPS_SCHEMA
from duckdb_openai.resources.runs import RUNS_SCHEMA
from duckdb_openai.resources.threads import THREADS_SCHEMA
from duckdb_openai.schema import field, is_json, json_field, struct

_S = pa.string()
SCHEMA = pa.schema(
    [
        field("id", _S, "Id."),
        json_field("choice", "Top level."),
        field(
            "config", struct(field("name", _S, "A name."), json_field("options", "In a struct.")), "Nested."
        ),
        field(
            "tools",
            pa.list_(struct(field("type", _S, "Kind."), json_field("parameters", "In a list of structs."))),
            "Listed.",
        ),
        field("raw", pa.list_(pa.field("item", _S, metadata={"json": "true"})), "A list of JSON values."),
        field("metadata", pa.map_(_S, _S), "A map beside them."),
        field("created_at", pa.timestamp("us", tz="UTC"), "A timestamp beside them."),
    ]
)
DECODER = PageDecoder(SCHEMA)


def text(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def body(objects: list[dict[str, Any]], **dumps: Any) -> bytes:
    page = {"object": "list", "data": objects, "first_id": None, "last_id": None, "has_more": True}
    return json.dumps(page, **dumps).encode()


ODD_VALUES: list[Any] = [
    "auto",
    {"type": "function", "function": {"name": "f"}},
    [1, 2.5, None, True],
    0,
    -1.25,
    False,
    {"nested": {"deep": ["€", "日本", '"quoted"', "line\nbreak"]}, "empty": {}},
    [],
]


@pytest.mark.parametrize(
    "value", ODD_VALUES, ids=[type(v).__name__ + str(i) for i, v in enumerate(ODD_VALUES)]
)
def test_every_place_holds_the_compact_text(value: Any) -> None:
    obj = {
        "id": "x_1",
        "choice": value,
        "config": {"name": "n", "options": value},
        "tools": [{"type": "function", "parameters": value}, {"type": "code_interpreter"}],
        "raw": [value, None],
        "metadata": {"k": "v"},
        "created_at": 1_725_148_800,
    }
    for dumps in ({}, {"indent": 2}, {"ensure_ascii": True}):
        row = DECODER.decode_page(body([obj], **dumps)).batch.to_pylist()[0]
        assert row["choice"] == text(value)
        assert row["config"] == {"name": "n", "options": text(value)}
        assert row["tools"] == [
            {"type": "function", "parameters": text(value)},
            {"type": "code_interpreter", "parameters": None},
        ]
        assert row["raw"] == [text(value), None]
        assert row["metadata"] == [("k", "v")]
        assert int(row["created_at"].timestamp()) == 1_725_148_800


def test_a_string_keeps_its_quotes_and_null_or_absent_is_null() -> None:
    rows = DECODER.decode_page(
        body([{"id": "a", "choice": "auto"}, {"id": "b", "choice": None}, {"id": "c"}])
    )
    assert rows.batch.column("choice").to_pylist() == ['"auto"', None, None]
    assert rows.batch.column("config").to_pylist() == [None, None, None]
    assert rows.has_more is True


def test_objects_and_several_pages_decode_the_same_way() -> None:
    obj = {"id": "a", "choice": {"b": [1, {"c": None}]}, "tools": [{"type": "t", "parameters": {"x": 1}}]}
    batch = DECODER.decode_object(json.dumps(obj).encode())
    assert batch.schema == SCHEMA
    assert batch.column("choice").to_pylist() == ['{"b":[1,{"c":null}]}']
    pages = DECODER.decode_pages([body([obj]), b"not json", body([])])
    first, broken, empty = pages
    assert not isinstance(first, ResponseFormatError) and first.batch.equals(batch)
    assert isinstance(broken, ResponseFormatError) and "expected a JSON object" in str(broken)
    assert not isinstance(empty, ResponseFormatError) and empty.batch.num_rows == 0
    assert empty.batch.schema == SCHEMA


def test_a_value_of_the_wrong_shape_is_a_response_format_error() -> None:
    with pytest.raises(ResponseFormatError):
        DECODER.decode_page(body([{"id": "a", "created_at": "yesterday", "choice": "auto"}]))
    with pytest.raises(ResponseFormatError):
        DECODER.decode_page(body([{"id": "a", "tools": "not a list"}]))
    with pytest.raises(ResponseFormatError):
        DECODER.decode_object(b"[1, 2]")


def json_paths(t: pa.DataType, prefix: str = "") -> list[str]:
    found: list[str] = []
    fields = list(t) if pa.types.is_struct(t) else []
    if pa.types.is_list(t):
        fields, prefix = [t.value_field], prefix + "[]"
    for f in fields:
        path = f"{prefix}.{f.name}" if pa.types.is_struct(t) else prefix
        found += [path] if is_json(f) else json_paths(f.type, path)
    return found


def test_the_family_declares_json_text_where_the_spec_says_string_or_object() -> None:
    assert json_paths(pa.struct(list(RUNS_SCHEMA))) == [
        ".tools[].function.parameters",
        ".tool_choice",
        ".response_format",
    ]
    assert json_paths(pa.struct(list(ASSISTANTS_SCHEMA))) == [
        ".tools[].function.parameters",
        ".response_format",
    ]
    for schema in (MESSAGES_SCHEMA, THREADS_SCHEMA, RUN_STEPS_SCHEMA):
        assert json_paths(pa.struct(list(schema))) == []


def test_schemas_without_json_text_keep_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Python path parses with json.loads; the fast path never calls it for a well-formed page."""
    calls: list[bytes] = []
    loads = json.loads

    def counting_loads(raw: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(raw)
        return loads(raw, *args, **kwargs)

    monkeypatch.setattr("duckdb_openai.engine.convert.json.loads", counting_loads)
    thread = {"id": "thread_a", "object": "thread", "created_at": 1, "metadata": {}, "tool_resources": {}}
    assert PageDecoder(THREADS_SCHEMA).decode_page(body([thread])).batch.num_rows == 1
    assert calls == []
    run = {"id": "run_a", "tool_choice": "auto"}
    assert PageDecoder(RUNS_SCHEMA).decode_page(body([run])).batch.column("tool_choice").to_pylist() == [
        '"auto"'
    ]
    assert len(calls) == 1


def test_kinds_the_family_schemas_do_not_know_keep_their_type() -> None:
    """What the module docstrings promise: unknown kinds keep `type`, added keys are dropped, no error."""
    run = {
        "id": "run_a",
        "tools": [{"type": "web_search", "web_search": {"size": "low"}}, {"type": "code_interpreter"}],
        "tool_choice": {"type": "web_search", "new": [1]},
        "added_later": {"x": 1},
    }
    row = PageDecoder(RUNS_SCHEMA).decode_page(body([run])).batch.to_pylist()[0]
    assert row["tools"] == [
        {"type": "web_search", "file_search": None, "function": None},
        {"type": "code_interpreter", "file_search": None, "function": None},
    ]
    assert row["tool_choice"] == '{"type":"web_search","new":[1]}'
    assert "added_later" not in row
    annotation = {"type": "url_citation", "text": "[1]", "start_index": 3, "end_index": 6, "url": "https://x"}
    message = {
        "id": "msg_a",
        "content": [
            {"type": "audio", "audio": {"file_id": "file-a"}},
            {"type": "text", "text": {"value": "abc[1]", "annotations": [annotation]}},
        ],
    }
    row = PageDecoder(MESSAGES_SCHEMA).decode_page(body([message])).batch.to_pylist()[0]
    unknown, text_part = row["content"]
    assert unknown["type"] == "audio" and [k for k, v in unknown.items() if v is not None] == ["type"]
    assert text_part["text"]["annotations"] == [
        {
            "type": "url_citation",
            "text": "[1]",
            "file_citation": None,
            "start_index": 3,
            "end_index": 6,
            "file_path": None,
        }
    ]
