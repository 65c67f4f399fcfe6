"""Page bytes to Arrow: exact schema, every value kept, surprises neither fail nor vanish silently."""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
import pytest

from duckdb_openai.engine.convert import Page, PageDecoder
from duckdb_openai.errors import ResponseFormatError
from duckdb_openai.resources.run_steps import RUN_STEPS_SCHEMA
from tests.helpers import api_row, sparse

DECODER = PageDecoder(RUN_STEPS_SCHEMA)


def page(steps: list[dict[str, Any]], has_more: bool = False, **dumps: Any) -> bytes:
    body = {
        "object": "list",
        "data": steps,
        "first_id": steps[0]["id"] if steps else None,
        "last_id": steps[-1]["id"] if steps else None,
        "has_more": has_more,
    }
    return json.dumps(body, **dumps).encode()


@pytest.fixture(scope="module")
def sample(emulator: Any) -> list[dict[str, Any]]:
    """A few hundred varied steps exactly as the emulator serves them (with content)."""
    data = emulator.dataset
    steps: list[dict[str, Any]] = []
    for run in data.runs:
        if 0 < run.step_count < 500:
            steps.extend(data.steps(run.thread_id, run.run_id, include_content=True))
        if len(steps) > 600 and {"in_progress", "failed", "expired"} <= {s["status"] for s in steps}:
            break
    return steps


def test_every_value_survives(sample: list[dict[str, Any]]) -> None:
    for start in range(0, len(sample), 100):
        chunk = sample[start : start + 100]
        decoded = DECODER.decode_page(page(chunk))
        assert decoded.batch.schema == RUN_STEPS_SCHEMA
        assert [api_row(r) for r in decoded.batch.to_pylist()] == [sparse(s) for s in chunk]


def test_the_sample_is_varied(sample: list[dict[str, Any]]) -> None:
    kinds = {c["type"] for s in sample if s["type"] == "tool_calls" for c in s["step_details"]["tool_calls"]}
    assert kinds == {"function", "code_interpreter", "file_search"}
    assert {s["status"] for s in sample} >= {"completed", "failed", "in_progress"}
    assert any(s["metadata"] == {} for s in sample) and any(s["metadata"] for s in sample)


def test_pretty_printed_equals_compact(sample: list[dict[str, Any]]) -> None:
    chunk = sample[:50]
    compact = DECODER.decode_page(page(chunk))
    pretty = DECODER.decode_page(page(chunk, indent=2))
    assert pretty.batch.equals(compact.batch)


def test_empty_page_has_the_schema() -> None:
    decoded = DECODER.decode_page(page([]))
    assert decoded.batch.schema == RUN_STEPS_SCHEMA and decoded.batch.num_rows == 0
    assert (decoded.has_more, decoded.first_id, decoded.last_id) == (False, None, None)


def test_unknown_tool_call_kind_keeps_type_and_id(sample: list[dict[str, Any]]) -> None:
    step = json.loads(json.dumps(sample[0]))
    step["type"] = "tool_calls"
    step["step_details"] = {
        "type": "tool_calls",
        "tool_calls": [
            {"id": "call_new", "type": "computer_use", "computer_use": {"action": "click", "x": 1}},
            {
                "id": "call_fn",
                "type": "function",
                "function": {"name": "f", "arguments": "{}", "output": None},
            },
        ],
    }
    step["brand_new_field"] = {"nested": [1, 2]}
    row = DECODER.decode_page(page([step])).batch.to_pylist()[0]
    calls = row["step_details"]["tool_calls"]
    assert calls[0] == {"id": "call_new", "type": "computer_use", "function": None, "code_interpreter": None,
                        "file_search": None}  # fmt: skip
    assert calls[1]["function"] == {"name": "f", "arguments": "{}", "output": None}
    assert "brand_new_field" not in row


def test_metadata_null_empty_and_values_are_distinct(sample: list[dict[str, Any]]) -> None:
    steps = [dict(sample[i], metadata=m) for i, m in enumerate([None, {}, {"a": "1", "b": "2"}, {"b": "3"}])]
    metadata = DECODER.decode_page(page(steps)).batch.column("metadata").to_pylist()
    assert metadata == [None, [], [("a", "1"), ("b", "2")], [("b", "3")]]


def test_type_conflict_takes_the_slow_path_without_loss(sample: list[dict[str, Any]]) -> None:
    steps = [dict(sample[0], metadata={"n": "1"}), dict(sample[1], metadata={"n": 2})]
    decoded = DECODER.decode_page(page(steps))
    assert decoded.batch.column("metadata").to_pylist() == [[("n", "1")], [("n", "2")]]


def test_decode_object_matches_page(sample: list[dict[str, Any]]) -> None:
    one = DECODER.decode_object(json.dumps(sample[3]).encode())
    assert one.schema == RUN_STEPS_SCHEMA and one.num_rows == 1
    assert api_row(one.to_pylist()[0]) == sparse(sample[3])


@pytest.mark.parametrize(
    "body",
    [b"<html>502 Bad Gateway</html>", b'{"object": "list"}', b"[1, 2]", b'{"data": [1], "has_more": false}'],
)
def test_bodies_that_break_the_contract_raise(body: bytes) -> None:
    with pytest.raises(ResponseFormatError):
        DECODER.decode_page(body)


def test_a_value_that_does_not_fit_raises_clearly(sample: list[dict[str, Any]]) -> None:
    step = dict(sample[0], created_at="yesterday")
    with pytest.raises(ResponseFormatError, match="does not fit the schema"):
        DECODER.decode_page(page([step]))


def test_batches_concatenate(sample: list[dict[str, Any]]) -> None:
    a = DECODER.decode_page(page(sample[:10])).batch
    b = DECODER.decode_page(page(sample[10:20])).batch
    assert pa.Table.from_batches([a, b]).num_rows == 20


@pytest.mark.parametrize("seconds", [0, -1, 1_700_000_000, 253_402_300_799])
def test_timestamps_scale_exactly(sample: list[dict[str, Any]], seconds: int) -> None:
    steps = [dict(s) for s in sample[:3]]
    steps[1]["created_at"] = seconds
    steps[2]["completed_at"] = None
    batch = DECODER.decode_page(page(steps)).batch
    assert batch.column("created_at")[1].value == seconds * 1_000_000
    assert batch.column("completed_at")[2].as_py() is None
    assert batch.column("created_at")[0].value == steps[0]["created_at"] * 1_000_000


def test_a_timestamp_beyond_the_type_is_an_error_not_a_wrapped_value(sample: list[dict[str, Any]]) -> None:
    steps = [dict(sample[0])]
    steps[0]["created_at"] = 10**16  # seconds: beyond int64 microseconds
    with pytest.raises(ResponseFormatError, match="does not fit"):
        DECODER.decode_page(page(steps))


def test_pages_decoded_together_equal_pages_decoded_alone(sample: list[dict[str, Any]]) -> None:
    bodies = [page(sample[i : i + n], has_more=i % 2 == 0) for i, n in ((0, 7), (7, 0), (7, 50), (57, 1))]
    bodies.append(page(sample[60:63], indent=2))
    together = DECODER.decode_pages(bodies)
    alone = [DECODER.decode_page(body) for body in bodies]
    assert [p.batch.num_rows for p in together] == [7, 0, 50, 1, 3]  # type: ignore[union-attr]
    for a, b in zip(together, alone, strict=True):
        assert isinstance(a, Page)
        assert a.batch.equals(b.batch) and (a.has_more, a.first_id, a.last_id) == (
            b.has_more,
            b.first_id,
            b.last_id,
        )


def test_one_bad_body_among_many_fails_alone(sample: list[dict[str, Any]]) -> None:
    # A type conflict inside one body: that body alone takes the slow path, without loss.
    conflict = [dict(sample[0], metadata={"n": "1"}), dict(sample[1], metadata={"n": 2})]
    bodies = [page(sample[:3]), b"<html>bad gateway</html>", page(conflict), page(sample[3:5])]
    results = DECODER.decode_pages(bodies)
    assert isinstance(results[1], ResponseFormatError)
    assert [r.batch.num_rows for r in results if isinstance(r, Page)] == [3, 2, 2]
    assert results[2].batch.column("metadata").to_pylist() == [[("n", "1")], [("n", "2")]]  # type: ignore[union-attr]
