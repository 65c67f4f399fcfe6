"""The Responses era over real HTTP: responses, input items, conversations, conversation items, stored
chat completions and their messages, each equal to the emulator's JSON read through the official SDK."""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import httpx
import openai
import pyarrow as pa
import pytest
from starlette.responses import Response

from duckdb_openai.emulator import Emulator
from duckdb_openai.emulator.successors import RESPONSES_MANIFEST_COLUMNS, Successors
from duckdb_openai.errors import ResponseFormatError
from duckdb_openai.resources.chat_completions import (
    CHAT_COMPLETION_MESSAGES,
    CHAT_COMPLETION_MESSAGES_SCHEMA,
    CHAT_COMPLETIONS,
    CHAT_COMPLETIONS_SCHEMA,
)
from duckdb_openai.resources.conversations import CONVERSATION_ITEMS_SCHEMA, CONVERSATIONS_SCHEMA
from duckdb_openai.resources.items import ITEM, ITEM_FIELDS, ITEM_TYPES
from duckdb_openai.resources.responses import RESPONSE_INPUT_ITEMS_SCHEMA, RESPONSES_SCHEMA
from duckdb_openai.schema import is_json, is_object_json
from tests.helpers import KEY, connect, rows
from tests.scripted import ScriptedServer

SEED = 7


@pytest.fixture(scope="module")
def truth() -> Successors:
    """The emulator's Responses-era population of the session's seed, built here independently."""
    return Successors(SEED)


@pytest.fixture
def sdk(emu: Emulator) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=emu.base_url, api_key="sk-test", max_retries=0) as client:
        yield client


def bucket(emu: Emulator, name: str) -> dict[str, int]:
    return emu.stats()["by_endpoint"][name]  # type: ignore[no-any-return]


# -- comparing SQL rows with the SDK's objects, field by field ---------------------------------------------


def normalized(value: Any, f: pa.Field) -> Any:
    """A DuckDB value of field `f` as comparable JSON: JSON text parsed, timestamps as Unix seconds."""
    if value is None:
        return None
    if is_json(f) or is_object_json(f):
        return json.loads(value)
    t = f.type
    if pa.types.is_struct(t):
        return {child.name: normalized(value[child.name], child) for child in t}
    if pa.types.is_list(t):
        return [normalized(v, t.value_field) for v in value]
    if isinstance(value, datetime.datetime):
        return value.timestamp()
    return value


def expected(value: Any, f: pa.Field) -> Any:
    """What field `f` must hold for the API's `value`: the field's part of it, NULL where the JSON type
    differs (the item's `json` column keeps those)."""
    if value is None:
        return None
    if is_json(f):
        return value
    t = f.type
    if pa.types.is_struct(t):
        if not isinstance(value, dict):
            return None
        return {c.name: value if is_object_json(c) else expected(value.get(c.name), c) for c in t}
    if pa.types.is_list(t):
        return [expected(v, t.value_field) for v in value] if isinstance(value, list) else None
    if pa.types.is_map(t):
        return value
    if pa.types.is_string(t):
        return value if isinstance(value, str) else None
    if pa.types.is_boolean(t):
        return value if isinstance(value, bool) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if pa.types.is_timestamp(t) else value


def assert_rows_match(
    sql_rows: list[dict[str, Any]], objects: list[Any], schema: pa.Schema, keys: dict[str, str] | None = None
) -> None:
    """Each SQL row equals the SDK object at its position, column by column (keys filled from `keys`)."""
    assert len(sql_rows) == len(objects)
    assert objects, "compare at least one object"
    for row, obj in zip(sql_rows, objects, strict=True):
        api = obj.model_dump(mode="json", exclude_unset=True) if hasattr(obj, "model_dump") else obj
        assert list(row) == schema.names
        for f in schema:
            if keys and f.name in keys:
                assert row[f.name] == keys[f.name]
                continue
            want = api if is_object_json(f) else expected(api.get(f.name), f)
            assert normalized(row[f.name], f) == want, f"{api.get('id')}: column {f.name}"


def pick(truth: Successors, **wanted: Any) -> list[dict[str, Any]]:
    """Responses of the population whose top-level fields have the wanted values."""
    population = truth.population
    bodies = [json.loads(population.responses[info.response_id]) for info in truth.infos]
    return [b for b in bodies if all(b.get(k) == v for k, v in wanted.items())]


# -- responses ---------------------------------------------------------------------------------------------


def test_response_equals_the_sdks(
    con: duckdb.DuckDBPyConnection, sdk: openai.OpenAI, truth: Successors
) -> None:
    chosen = [pick(truth, status=s)[0]["id"] for s in ("completed", "failed", "incomplete")]
    chosen.append(next(b["id"] for b in pick(truth, status="completed") if len(b["output"]) >= 3))
    for response_id in chosen:
        got = rows(con, "SELECT * FROM response(?)", [response_id])
        assert_rows_match(got, [sdk.responses.retrieve(response_id)], RESPONSES_SCHEMA)
    listed = ", ".join(f"'{i}'" for i in chosen)
    catalog = rows(con, f"SELECT * FROM openai.responses.responses WHERE id IN ({listed})")
    assert_rows_match(catalog, [sdk.responses.retrieve(i) for i in chosen], RESPONSES_SCHEMA)


def test_response_columns_answer_the_issues_questions(
    con: duckdb.DuckDBPyConnection, truth: Successors
) -> None:
    second = next(b for b in pick(truth) if b["previous_response_id"] and b["status"] == "failed")
    [row] = rows(
        con,
        "SELECT status, error.code AS code, previous_response_id, conversation.id AS conversation_id, "
        "usage.input_tokens_details.cached_tokens AS cached, usage.output_tokens_details.reasoning_tokens "
        "AS reasoning, usage.total_tokens AS total, metadata['customer'] AS customer, tool_choice, "
        "[o.type FOR o IN output] AS kinds FROM response(?)",
        [second["id"]],
    )
    assert row == {
        "status": "failed",
        "code": second["error"]["code"],
        "previous_response_id": second["previous_response_id"],
        "conversation_id": second["conversation"]["id"],
        "cached": second["usage"]["input_tokens_details"]["cached_tokens"],
        "reasoning": second["usage"]["output_tokens_details"]["reasoning_tokens"],
        "total": second["usage"]["total_tokens"],
        "customer": second["metadata"]["customer"],
        "tool_choice": '"auto"',
        "kinds": [o["type"] for o in second["output"]],
    }


@pytest.mark.parametrize("sort", ["asc", "desc"])
def test_input_items_equal_the_sdks(
    con: duckdb.DuckDBPyConnection, sdk: openai.OpenAI, truth: Successors, sort: str
) -> None:
    response_id = next(
        i for i in truth.infos if len(truth.population.input_items[i.response_id].ids) >= 2
    ).response_id
    listed = list(sdk.responses.input_items.list(response_id, order=sort))  # type: ignore[arg-type]
    got = rows(con, "SELECT * FROM response_input_items(?, sort := ?)", [response_id, sort])
    assert_rows_match(got, listed, RESPONSE_INPUT_ITEMS_SCHEMA, {"response_id": response_id})
    if sort == "asc":
        catalog = rows(con, "SELECT * FROM openai.responses.input_items WHERE response_id = ?", [response_id])
        assert_rows_match(catalog, listed, RESPONSE_INPUT_ITEMS_SCHEMA, {"response_id": response_id})


# -- conversations -----------------------------------------------------------------------------------------


def longest_conversation(truth: Successors) -> str:
    items = truth.population.conversation_items
    return max(items, key=lambda c: len(items[c].ids))


def test_conversation_and_its_items_equal_the_sdks(
    con: duckdb.DuckDBPyConnection, sdk: openai.OpenAI, emu: Emulator, truth: Successors
) -> None:
    conversation_id = longest_conversation(truth)
    assert len(truth.population.conversation_items[conversation_id].ids) > 20  # more than one SDK page
    got = rows(con, "SELECT * FROM conversation(?)", [conversation_id])
    assert_rows_match(got, [sdk.conversations.retrieve(conversation_id)], CONVERSATIONS_SCHEMA)
    catalog = rows(con, "SELECT * FROM openai.conversations.conversations WHERE id = ?", [conversation_id])
    assert_rows_match(catalog, [sdk.conversations.retrieve(conversation_id)], CONVERSATIONS_SCHEMA)

    listed = list(sdk.conversations.items.list(conversation_id, order="asc"))
    keys = {"conversation_id": conversation_id}
    emu.reset()
    got = rows(con, "SELECT * FROM conversation_items(?)", [conversation_id])
    assert_rows_match(got, listed, CONVERSATION_ITEMS_SCHEMA, keys)
    assert bucket(emu, "conversations.items") == {"200": 1}  # limit=100: one page
    desc = rows(con, "SELECT * FROM conversation_items(?, sort := 'desc')", [conversation_id])
    assert_rows_match(desc, listed[::-1], CONVERSATION_ITEMS_SCHEMA, keys)
    catalog = rows(
        con, "SELECT * FROM openai.conversations.items WHERE conversation_id = ?", [conversation_id]
    )
    assert_rows_match(catalog, listed, CONVERSATION_ITEMS_SCHEMA, keys)


def test_the_item_columns_hold_each_kinds_essentials(
    con: duckdb.DuckDBPyConnection, truth: Successors
) -> None:
    found = rows(
        con,
        "SELECT i.type, i.role, i.content[1].text AS text, i.call_id, i.name, i.arguments, i.output, "
        "i.action.query AS query, i.queries, i.summary[1].text AS summary, i.json ->> '$.id' AS json_id, "
        "i.id "
        "FROM (SELECT unnest(?) AS c) s, conversation_items(s.c) i",
        [list(truth.population.conversation_items)[:40]],
    )
    kinds = {r["type"] for r in found}
    assert kinds == {
        "message",
        "function_call",
        "function_call_output",
        "reasoning",
        "web_search_call",
        "file_search_call",
    }
    assert all(r["json_id"] == r["id"] for r in found)
    by_kind = {r["type"]: r for r in reversed(found)}
    assert by_kind["message"]["text"] and by_kind["message"]["role"] in ("user", "assistant")
    assert by_kind["function_call"]["name"] and json.loads(by_kind["function_call"]["arguments"])
    assert by_kind["function_call_output"]["call_id"] and by_kind["function_call_output"]["output"]
    assert by_kind["web_search_call"]["query"] and by_kind["file_search_call"]["queries"]
    assert by_kind["reasoning"]["summary"]


# -- stored chat completions -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "metadata"),
    [(None, None), ("gpt-4o", None), (None, {"feature": "support"}), ("gpt-4.1", {"customer": "Globex"})],
)
def test_chat_completions_equal_the_sdks(
    con: duckdb.DuckDBPyConnection,
    sdk: openai.OpenAI,
    emu: Emulator,
    model: str | None,
    metadata: dict[str, str] | None,
) -> None:
    kwargs: dict[str, Any] = {}
    if model is not None:
        kwargs["model"] = model
    if metadata is not None:
        kwargs["metadata"] = metadata
    listed = list(sdk.chat.completions.list(**kwargs))
    assert listed
    assert all(c.model == model for c in listed if model)
    assert all(c.metadata and c.metadata.items() >= (metadata or {}).items() for c in listed)
    assert len(listed) == 250 or model or metadata  # unfiltered: three pages, read from both ends
    emu.reset()
    got = rows(con, "SELECT * FROM chat_completions(model := ?, metadata := ?)", [model, metadata])
    assert_rows_match(got, listed, CHAT_COMPLETIONS_SCHEMA)
    pages = -(-len(listed) // 100)
    # Past two pages the engine also reads from the far end, which may cost one page more.
    assert pages <= sum(bucket(emu, "chat.completions.list").values()) <= pages + (pages > 2)
    query = emu.requests()[0]["query"]
    assert query["order"] == ["asc"] and query["limit"] == ["100"]
    if model is not None:
        assert query["model"] == [model]
    for key, value in (metadata or {}).items():
        assert query[f"metadata[{key}]"] == [value]
    if metadata is None:
        where = "" if model is None else f"WHERE model = '{model}'"
        assert_rows_match(
            rows(con, f"SELECT * FROM openai.chat.completions {where}"), listed, CHAT_COMPLETIONS_SCHEMA
        )


def test_chat_completion_and_its_messages_equal_the_sdks(
    con: duckdb.DuckDBPyConnection, sdk: openai.OpenAI, truth: Successors
) -> None:
    ids = list(truth.population.chat.ids[:5])
    for completion_id in ids:
        got = rows(con, "SELECT * FROM chat_completion(?)", [completion_id])
        assert_rows_match(got, [sdk.chat.completions.retrieve(completion_id)], CHAT_COMPLETIONS_SCHEMA)
        listed = list(sdk.chat.completions.messages.list(completion_id))
        keys = {"completion_id": completion_id}
        got = rows(con, "SELECT * FROM chat_completion_messages(?)", [completion_id])
        assert_rows_match(got, listed, CHAT_COMPLETION_MESSAGES_SCHEMA, keys)
        catalog = rows(con, "SELECT * FROM openai.chat.messages WHERE completion_id = ?", [completion_id])
        assert_rows_match(catalog, listed, CHAT_COMPLETION_MESSAGES_SCHEMA, keys)
    catalog = rows(
        con, f"SELECT * FROM openai.chat.completions WHERE id IN ({', '.join(repr(i) for i in ids)})"
    )
    assert_rows_match(catalog, [sdk.chat.completions.retrieve(i) for i in ids], CHAT_COMPLETIONS_SCHEMA)


def test_chat_filters_are_checked_before_any_request(con: duckdb.DuckDBPyConnection, emu: Emulator) -> None:
    # A model no completion can have selects nothing, in every form, without a request.
    for sql in [
        "SELECT * FROM chat_completions(model := 'gpt\n4o')",
        "SELECT * FROM chat_completions(model := '')",
        f"SELECT * FROM chat_completions(model := '{'x' * 300}')",
        "SELECT * FROM openai.chat.completions WHERE model = ''",
        "SELECT * FROM openai.chat.completions WHERE model IN ('', 'gpt\n4o')",
    ]:
        assert con.execute(sql).fetchall() == []
    assert CHAT_COMPLETIONS.bind_list({}, {"metadata": {"a": "1", "b": "2"}}).params == (
        ("metadata[a]", "1"),
        ("metadata[b]", "2"),
    )
    assert emu.stats()["requests"] == 0


# -- LATERAL over local logs, LIMIT, required keys ---------------------------------------------------------


def test_lateral_responses_over_a_call_log(
    con: duckdb.DuckDBPyConnection, emu: Emulator, truth: Successors
) -> None:
    log = truth.infos[:60]
    con.execute("CREATE TABLE my_calls (response_id VARCHAR, customer VARCHAR)")
    con.executemany("INSERT INTO my_calls VALUES (?, ?)", [[i.response_id, i.customer] for i in log])
    got = rows(
        con,
        "SELECT c.response_id, c.customer, r.status, r.usage.total_tokens AS tokens, "
        "r.previous_response_id FROM my_calls c, response(c.response_id) r ORDER BY c.response_id",
    )
    bodies = {i.response_id: json.loads(truth.population.responses[i.response_id]) for i in log}
    assert got == sorted(
        (
            {
                "response_id": i.response_id,
                "customer": i.customer,
                "status": bodies[i.response_id]["status"],
                "tokens": bodies[i.response_id]["usage"]["total_tokens"],
                "previous_response_id": bodies[i.response_id]["previous_response_id"],
            }
            for i in log
        ),
        key=lambda r: r["response_id"],
    )
    assert bucket(emu, "responses.retrieve") == {"200": 60}


def test_lateral_conversation_items_over_a_session_log(
    con: duckdb.DuckDBPyConnection, emu: Emulator, truth: Successors
) -> None:
    sessions = list(truth.population.conversation_items)[:30]
    con.execute("CREATE TABLE my_sessions AS SELECT unnest(?) AS conversation_id", [sessions])
    got = con.execute(
        "SELECT s.conversation_id, list(i.id ORDER BY i.conversation_id) FILTER (WHERE true) AS ids, "
        "count(*) AS n FROM my_sessions s, conversation_items(s.conversation_id) i GROUP BY ALL"
    ).fetchall()
    assert {c: n for c, _, n in got} == {c: len(truth.population.conversation_items[c].ids) for c in sessions}
    ordered = rows(
        con,
        "SELECT s.conversation_id AS c, i.id, i.conversation_id FROM my_sessions s, "
        "conversation_items(s.conversation_id) i",
    )
    for conversation_id in sessions:
        mine = [r for r in ordered if r["c"] == conversation_id]
        assert [r["id"] for r in mine] == list(truth.population.conversation_items[conversation_id].ids)
        assert {r["conversation_id"] for r in mine} == {conversation_id}
    assert bucket(emu, "conversations.items") == {"200": 60}  # two queries, one page per session


def test_limit_on_a_catalog_list_makes_one_request(
    con: duckdb.DuckDBPyConnection, emu: Emulator, truth: Successors
) -> None:
    assert len(rows(con, "SELECT id FROM openai.chat.completions LIMIT 5")) == 5
    assert bucket(emu, "chat.completions.list") == {"200": 1}
    conversation_id = longest_conversation(truth)
    got = rows(
        con, "SELECT id FROM openai.conversations.items WHERE conversation_id = ? LIMIT 5", [conversation_id]
    )
    assert [r["id"] for r in got] == list(truth.population.conversation_items[conversation_id].ids[:5])
    assert bucket(emu, "conversations.items") == {"200": 1}


def test_catalog_tables_say_which_key_they_need(con: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(duckdb.Error, match=r"openai.responses.responses needs WHERE id = '...'"):
        con.execute("SELECT * FROM openai.responses.responses").fetchall()
    with pytest.raises(
        duckdb.Error, match=r"missing: conversation_id .*conversation_items\(conversation_id\)"
    ):
        con.execute("SELECT * FROM openai.conversations.items").fetchall()
    with pytest.raises(duckdb.Error, match="the API cannot list responses"):
        con.execute("SELECT * FROM openai.responses.responses WHERE status = 'failed'").fetchall()


# -- what the schema does not type, and hostile servers ----------------------------------------------------

NEW_KINDS: list[dict[str, Any]] = [
    {"id": "holo_1", "type": "hologram_call", "status": "completed", "beam": {"power": 3, "colour": "teal"}},
    {
        "id": "ts_1",
        "type": "tool_search_call",
        "call_id": None,
        "execution": "server",
        "arguments": {"query": "refunds"},
        "status": "completed",
    },
    {
        "id": "fco_1",
        "type": "function_call_output",
        "call_id": "call_1",
        "output": [{"type": "input_text", "text": "done"}],
        "status": "completed",
    },
    {
        "id": "mcp_1",
        "type": "mcp_call",
        "server_label": "crm",
        "name": "lookup",
        "arguments": "{}",
        "error": {"type": "mcp_protocol_error", "code": -32000, "message": "down"},
    },
    {"id": "cc_1", "type": "computer_call", "call_id": "c1", "action": {"type": "click", "x": 4, "y": 5}},
]


def page(data: list[Any]) -> dict[str, Any]:
    ids = [d.get("id") for d in data if isinstance(d, dict)]
    return {
        "object": "list",
        "data": data,
        "first_id": ids[0] if ids else None,
        "last_id": ids[-1] if ids else None,
        "has_more": False,
    }


def test_kinds_the_schema_does_not_type_come_through_in_json() -> None:
    with ScriptedServer([(200, page(NEW_KINDS))]) as server:
        con, registration = connect(server.base_url)
        try:
            got = rows(con, "SELECT * FROM conversation_items('conv_x')")
        finally:
            registration.close()
    assert [r["type"] for r in got] == [k["type"] for k in NEW_KINDS]
    assert [json.loads(r["json"]) for r in got] == NEW_KINDS
    assert json.loads(got[0]["json"])["beam"]["colour"] == "teal"
    assert got[1]["arguments"] is None  # an object where the item struct types text
    assert got[2]["output"] is None and got[2]["call_id"] == "call_1"
    assert json.loads(got[3]["error"])["message"] == "down" and got[3]["server_label"] == "crm"
    assert got[4]["action"]["type"] == "click"
    assert {r["conversation_id"] for r in got} == {"conv_x"}
    assert_rows_match(got, NEW_KINDS, CONVERSATION_ITEMS_SCHEMA, {"conversation_id": "conv_x"})


def response_body(**changes: Any) -> dict[str, Any]:
    base = {
        "id": "resp_1",
        "object": "response",
        "created_at": 1_741_476_777,
        "status": "completed",
        "output": [],
    }
    return {**base, **changes}


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        ((200, None), "ResponseFormatError"),
        ((200, []), "ResponseFormatError"),
        (Response(b"<html>", media_type="text/html"), "ResponseFormatError"),
        ((200, {}), "ResponseFormatError: the object has no id"),
        ((200, response_body(id="resp_other")), "the API answered with the object 'resp_other'"),
        ((200, response_body(status=7)), "ResponseFormatError"),
        ((200, response_body(output="oops")), "ResponseFormatError"),
        ((200, response_body(output=[None, {"type": "message"}])), {"id": "resp_1", "status": "completed"}),
        ((200, response_body(output=[3, "x"])), "ResponseFormatError: an object does not fit the schema"),
        (
            (
                404,
                {
                    "error": {
                        "message": "Response with id 'resp_1' not found.",
                        "type": "invalid_request_error",
                    }
                },
            ),
            "404",
        ),
    ],
)
def test_hostile_answers_end_as_rows_or_a_clear_error(answer: Any, outcome: Any) -> None:
    with ScriptedServer([answer]) as server:
        con, registration = connect(server.base_url, max_retries=0)
        try:
            if isinstance(outcome, str):
                with pytest.raises(duckdb.Error, match=outcome) as raised:
                    con.execute("SELECT * FROM response('resp_1')").fetchall()
                assert KEY not in str(raised.value)
                return
            [row] = rows(con, "SELECT id, status FROM response('resp_1')")
            assert row == outcome
        finally:
            registration.close()


def test_hostile_list_pages_end_as_a_clear_error() -> None:
    for body in (None, {}, {"data": None, "has_more": False}, {"data": [1, 2], "has_more": False}):
        with ScriptedServer([(200, body)]) as server:
            con, registration = connect(server.base_url, max_retries=0)
            try:
                with pytest.raises(duckdb.Error, match="ResponseFormatError"):
                    con.execute("SELECT * FROM chat_completions()").fetchall()
            finally:
                registration.close()


def test_output_items_of_unknown_shapes_keep_the_row() -> None:
    body = response_body(output=[None, {"type": "message"}, {"type": "new_kind", "id": "x_1", "status": 5}])
    with ScriptedServer([(200, body)]) as server:
        con, registration = connect(server.base_url)
        try:
            [row] = rows(con, "SELECT output FROM response('resp_1')")
        finally:
            registration.close()
    assert row["output"][0] is None
    assert row["output"][2]["status"] is None and json.loads(row["output"][2]["json"])["status"] == 5


# -- the emulator's population and paging -----------------------------------------------------------------


def test_the_population_is_seeded_and_consistent(truth: Successors) -> None:
    again = Successors(SEED)
    assert [i.response_id for i in again.infos] == [i.response_id for i in truth.infos]
    assert again.population.responses == truth.population.responses
    assert Successors(SEED + 1).infos[0].response_id != truth.infos[0].response_id
    assert len(truth.infos) >= 1_000  # enough for a fan-out of 1,000 responses
    statuses = {json.loads(b)["status"] for b in truth.population.responses.values()}
    assert statuses == {"completed", "failed", "incomplete"}
    for conversation_id, listing in truth.population.conversation_items.items():
        chain = [i for i in truth.infos if i.conversation_id == conversation_id]
        previous = None
        expected_items: list[str] = []
        for info in chain:
            body = json.loads(truth.population.responses[info.response_id])
            assert body["previous_response_id"] == previous and body["conversation"]["id"] == conversation_id
            expected_items += truth.population.input_items[info.response_id].ids
            expected_items += [o["id"] for o in body["output"]]
            previous = info.response_id
        assert list(listing.ids) == expected_items


def test_lists_page_as_the_spec_says(emu: Emulator, truth: Successors) -> None:
    conversation_id = longest_conversation(truth)
    ids = list(truth.population.conversation_items[conversation_id].ids)
    headers = {"Authorization": "Bearer sk-test"}
    with httpx.Client(base_url=emu.base_url, headers=headers) as http:
        first = http.get(f"/conversations/{conversation_id}/items").json()
        assert [d["id"] for d in first["data"]] == ids[::-1][:20]  # default: desc, 20
        assert (first["first_id"], first["last_id"], first["has_more"]) == (ids[-1], ids[::-1][19], True)
        rest = http.get(f"/conversations/{conversation_id}/items", params={"after": first["last_id"]}).json()
        assert [d["id"] for d in rest["data"]] == ids[::-1][20:] and rest["has_more"] is False
        chat = http.get("/chat/completions", params={"limit": 3}).json()
        assert [d["id"] for d in chat["data"]] == list(truth.population.chat.ids[:3])  # default: asc
        for params in ({"limit": 0}, {"limit": 101}, {"order": "up"}, {"after": "msg_nope"}):
            answer = http.get(f"/conversations/{conversation_id}/items", params=params)
            assert answer.status_code == 400, params
            assert answer.json()["error"]["param"] in ("limit", "order", "after")
        assert http.get("/responses/resp_nope").status_code == 404
        assert http.get("/chat/completions/chatcmpl-nope/messages").status_code == 404
        assert http.post("/chat/completions").status_code == 405
        filtered = http.get(
            "/chat/completions", params={"model": "gpt-4o", "metadata[feature]": "support"}
        ).json()
        truth_ids = [
            c["id"]
            for c in truth.population.chat_objects
            if c["model"] == "gpt-4o" and c["metadata"]["feature"] == "support"
        ][:20]
        assert [d["id"] for d in filtered["data"]] == truth_ids
    stats = emu.stats()["by_endpoint"]
    assert stats["conversations.items"] == {"200": 2, "400": 4}
    assert stats["chat.completions.list"] == {"200": 2, "405": 1}
    assert stats["responses.retrieve"] == {"404": 1}
    assert stats["chat.completions.messages"] == {"404": 1}
    assert stats["other"] == {}


def test_responses_manifest_lists_every_response(tmp_path: Path, truth: Successors) -> None:
    manifest = tmp_path / "responses.csv"
    command = [
        sys.executable,
        "-m",
        "duckdb_openai.emulator",
        "--port",
        "0",
        "--responses-manifest",
        str(manifest),
    ]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        base_url = server.stdout.readline().strip()  # the manifest is written before the server is ready
        con = duckdb.connect()
        got = con.execute("SELECT * FROM read_csv(?, all_varchar = true)", [str(manifest)]).fetchall()
        assert [d[0] for d in con.description] == list(RESPONSES_MANIFEST_COLUMNS)
        assert got == [
            (i.response_id, i.conversation_id, i.customer, i.app_version, i.started_at_iso)
            for i in truth.infos
        ]
        served = httpx.get(f"{base_url}/responses/{got[0][0]}", headers={"Authorization": "Bearer sk-test"})
        assert served.json()["conversation"]["id"] == got[0][1]
    finally:
        server.terminate()
        server.communicate(timeout=10)


def test_map_filters_take_a_map_or_a_struct(con: duckdb.DuckDBPyConnection, emu: Emulator) -> None:
    as_map = rows(con, "SELECT id FROM chat_completions(metadata := MAP {'feature': 'triage'})")
    as_struct = rows(con, "SELECT id FROM chat_completions(metadata := {'feature': 'triage'})")
    assert as_map == as_struct and as_map
    assert [r["query"]["metadata[feature]"] for r in emu.requests()] == [["triage"], ["triage"]]
    with pytest.raises(duckdb.Error, match="its value is NULL"):
        con.execute("SELECT * FROM chat_completions(metadata := {'feature': NULL})").fetchall()


def test_keys_fill_only_what_the_api_left_out() -> None:
    request = CHAT_COMPLETION_MESSAGES.bind_list({"completion_id": "chatcmpl-a"}, {})
    batch = pa.RecordBatch.from_pylist(
        [{"id": "m0", "completion_id": None}, {"id": "m1", "completion_id": "chatcmpl-sent"}],
        schema=CHAT_COMPLETION_MESSAGES_SCHEMA,
    )
    # A key the API left out is filled from the request; one it sent must be the request's.
    with pytest.raises(ResponseFormatError, match="whose completion_id is 'chatcmpl-sent'"):
        request.with_keys(batch)
    index = batch.schema.get_field_index("completion_id")
    batch = batch.set_column(index, batch.schema.field(index), pa.array([None, "chatcmpl-a"]))
    filled = request.with_keys(batch)
    assert filled.column("completion_id").to_pylist() == ["chatcmpl-a", "chatcmpl-a"]
    assert filled.schema == CHAT_COMPLETION_MESSAGES_SCHEMA
    whole = request.with_keys(pa.Table.from_batches([batch]))
    assert whole.column("completion_id").to_pylist() == ["chatcmpl-a", "chatcmpl-a"]


def test_declarations_of_the_responses_era() -> None:
    assert [f.name for f in RESPONSE_INPUT_ITEMS_SCHEMA][: len(ITEM_FIELDS)] == [f.name for f in ITEM_FIELDS]
    assert CHAT_COMPLETION_MESSAGES.bind_list({"completion_id": "chatcmpl-a"}, {}).path == (
        "chat/completions/chatcmpl-a/messages"
    )
    assert CHAT_COMPLETIONS.bind_list({}, {"model": "gpt-4o"}).params == (("model", "gpt-4o"),)
    assert RESPONSES_SCHEMA.field("created_at").type == pa.timestamp("us", tz="UTC")
    assert CONVERSATIONS_SCHEMA.field("metadata").type == pa.map_(pa.string(), pa.string())


def test_json_response_keeps_unknown_top_level_keys_out(
    con: duckdb.DuckDBPyConnection, truth: Successors
) -> None:
    # `store` is in the API's answer but not the spec's Response: documented as dropped.
    [row] = rows(con, "SELECT * FROM response(?)", [truth.infos[0].response_id])
    assert "store" not in row


# -- the example ------------------------------------------------------------------------------------------


def responses_example() -> Any:
    examples = str(Path(__file__).resolve().parent.parent / "examples")
    if examples not in sys.path:
        sys.path.insert(0, examples)
    import responses_tokens

    return responses_tokens


def test_the_responses_example_equals_ground_truth(
    con: duckdb.DuckDBPyConnection, truth: Successors, tmp_path: Path
) -> None:
    example = responses_example()
    example.load(con, truth.write_manifest(tmp_path / "calls.csv"))
    population = truth.population
    bodies = {i.response_id: json.loads(population.responses[i.response_id]) for i in truth.infos}
    customer = {i.response_id: i.customer for i in truth.infos}

    tokens: dict[tuple[str, str], list[int]] = {}
    for response_id, body in bodies.items():
        usage = body["usage"]
        row = tokens.setdefault((customer[response_id], body["model"]), [0] * 8)
        for k, v in enumerate(
            (
                1,
                body["status"] == "failed",
                body["status"] == "incomplete",
                usage["input_tokens"],
                usage["input_tokens_details"]["cached_tokens"],
                usage["output_tokens"],
                usage["output_tokens_details"]["reasoning_tokens"],
                usage["total_tokens"],
            )
        ):
            row[k] += int(v)
    got = con.execute(example.TOKENS).fetchall()
    assert got == [(c, m, *values) for (c, m), values in sorted(tokens.items())]

    outputs = {
        item["call_id"]: item["output"]
        for listing in population.input_items.values()
        for item in map(json.loads, listing.bodies)
        if item["type"] == "function_call_output"
    }
    calls: dict[tuple[str, str, str], list[int]] = {}
    for response_id, body in bodies.items():
        for item in body["output"]:
            if not item["type"].endswith("_call"):
                continue
            failed = item.get("status") == "failed" or "error" in json.loads(
                outputs.get(item.get("call_id"), "{}")
            )
            row = calls.setdefault(
                (customer[response_id], item["type"], item.get("name") or item["type"]), [0, 0]
            )
            row[0] += 1
            row[1] += failed
    assert con.execute(example.TOOL_CALLS).fetchall() == [
        (*key, n, f) for key, (n, f) in sorted(calls.items())
    ]
    assert any(f for _, f in calls.values())  # the population has failed tool calls to find


@pytest.mark.slow
def test_the_responses_example_runs_as_a_command() -> None:
    script = Path(__file__).resolve().parent.parent / "examples" / "responses_tokens.py"
    done = subprocess.run(
        [sys.executable, str(script), "--emulator"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "Tokens per customer and model" in done.stdout and "create_support_ticket" in done.stdout


# -- every kind of the spec's item unions, as the spec draws them -------------------------------------------

#: One object of each of the 28 kinds, with the fields the spec requires (and a few optional ones).
SPEC_KINDS: list[dict[str, Any]] = [
    {
        "type": "message",
        "id": "msg_1",
        "status": "completed",
        "role": "assistant",
        "content": [
            {
                "type": "output_text",
                "text": "Hi",
                "annotations": [
                    {
                        "type": "url_citation",
                        "url": "https://a",
                        "start_index": 0,
                        "end_index": 2,
                        "title": "A",
                    }
                ],
                "logprobs": [],
            },
            {"type": "refusal", "refusal": "No."},
        ],
    },
    {
        "type": "message",
        "id": "msg_2",
        "role": "user",
        "content": [
            {"type": "input_image", "image_url": "https://i", "detail": "auto"},
            {"type": "input_file", "file_id": "file_1", "filename": "a.pdf"},
        ],
    },
    {
        "type": "function_call",
        "id": "fc_1",
        "call_id": "call_1",
        "name": "f",
        "arguments": '{"a":1}',
        "status": "completed",
    },
    {
        "type": "function_call_output",
        "id": "fco_1",
        "call_id": "call_1",
        "output": "ok",
        "status": "completed",
    },
    {
        "type": "reasoning",
        "id": "rs_1",
        "summary": [{"type": "summary_text", "text": "s"}],
        "content": [{"type": "reasoning_text", "text": "t"}],
        "encrypted_content": "gAAA",
    },
    {
        "type": "web_search_call",
        "id": "ws_1",
        "status": "completed",
        "action": {
            "type": "search",
            "query": "q",
            "queries": ["q", "r"],
            "sources": [{"type": "url", "url": "https://s"}],
        },
    },
    {
        "type": "web_search_call",
        "id": "ws_2",
        "status": "completed",
        "action": {"type": "find_in_page", "url": "https://p", "pattern": "x"},
    },
    {
        "type": "file_search_call",
        "id": "fs_1",
        "status": "completed",
        "queries": ["q"],
        "results": [
            {"file_id": "file_1", "filename": "a.pdf", "score": 0.5, "text": "t", "attributes": {"k": "v"}}
        ],
    },
    {
        "type": "code_interpreter_call",
        "id": "ci_1",
        "status": "completed",
        "container_id": "cntr_1",
        "code": "print(1)",
        "outputs": [{"type": "logs", "logs": "1"}],
    },
    {
        "type": "computer_call",
        "id": "cc_1",
        "call_id": "c1",
        "action": {"type": "click", "button": "left", "x": 1, "y": 2},
        "pending_safety_checks": [],
        "status": "completed",
    },
    {
        "type": "computer_call_output",
        "id": "cco_1",
        "call_id": "c1",
        "output": {"type": "computer_screenshot", "image_url": "https://x"},
        "status": "completed",
    },
    {"type": "image_generation_call", "id": "ig_1", "status": "completed", "result": "iVBORw0KGgo="},
    {
        "type": "local_shell_call",
        "id": "ls_1",
        "call_id": "c2",
        "action": {"type": "exec", "command": ["ls", "-l"], "env": {"A": "1"}},
        "status": "completed",
    },
    {"type": "local_shell_call_output", "id": "lso_1", "output": "total 0", "status": "completed"},
    {
        "type": "shell_call",
        "id": "sh_1",
        "call_id": "c3",
        "action": {"commands": ["ls"], "timeout_ms": None, "max_output_length": None},
        "status": "completed",
        "environment": {"type": "local"},
    },
    {
        "type": "shell_call_output",
        "id": "sho_1",
        "call_id": "c3",
        "status": "completed",
        "output": [{"stdout": "a", "stderr": "", "outcome": {"type": "exit", "exit_code": 0}}],
        "max_output_length": None,
    },
    {
        "type": "apply_patch_call",
        "id": "ap_1",
        "call_id": "c4",
        "status": "completed",
        "operation": {"type": "delete_file", "path": "a.txt"},
    },
    {
        "type": "apply_patch_call_output",
        "id": "apo_1",
        "call_id": "c4",
        "status": "completed",
        "output": "done",
    },
    {
        "type": "tool_search_call",
        "id": "tsc_1",
        "call_id": None,
        "execution": "server",
        "arguments": {"q": "x"},
        "status": "completed",
    },
    {
        "type": "tool_search_output",
        "id": "tso_1",
        "call_id": None,
        "execution": "server",
        "tools": [{"type": "function", "name": "f", "parameters": None, "strict": None}],
        "status": "completed",
    },
    {"type": "additional_tools", "id": "at_1", "role": "developer", "tools": []},
    {"type": "program", "id": "pg_1", "call_id": "c5", "code": "x = 1", "fingerprint": "fp"},
    {"type": "program_output", "id": "po_1", "call_id": "c5", "result": "1", "status": "completed"},
    {"type": "compaction", "id": "cp_1", "encrypted_content": "gAAA"},
    {
        "type": "mcp_list_tools",
        "id": "ml_1",
        "server_label": "crm",
        "tools": [{"name": "t", "input_schema": {}}],
        "error": "unreachable",
    },
    {"type": "mcp_approval_request", "id": "ma_1", "server_label": "crm", "name": "t", "arguments": "{}"},
    {
        "type": "mcp_approval_response",
        "id": "mr_1",
        "approval_request_id": "ma_1",
        "approve": False,
        "reason": "no",
    },
    {
        "type": "mcp_call",
        "id": "mc_1",
        "server_label": "crm",
        "name": "t",
        "arguments": "{}",
        "output": "r",
        "status": "completed",
        "approval_request_id": "ma_1",
    },
    {
        "type": "custom_tool_call",
        "id": "ct_1",
        "call_id": "c6",
        "name": "grep",
        "input": "foo",
        "status": "completed",
    },
    {
        "type": "custom_tool_call_output",
        "id": "cto_1",
        "call_id": "c6",
        "output": "bar",
        "status": "completed",
    },
]


def test_every_kind_of_the_spec_fits_the_item_struct() -> None:
    assert {k["type"] for k in SPEC_KINDS} == set(ITEM_TYPES)
    response = response_body(output=SPEC_KINDS)
    with ScriptedServer([(200, page(SPEC_KINDS)), (200, response)]) as server:
        con, registration = connect(server.base_url)
        try:
            items = rows(con, "SELECT * FROM response_input_items('resp_1')")
            [row] = rows(con, "SELECT output FROM response('resp_1')")
        finally:
            registration.close()
    assert_rows_match(items, SPEC_KINDS, RESPONSE_INPUT_ITEMS_SCHEMA, {"response_id": "resp_1"})
    assert [normalized(o, pa.field("o", ITEM)) for o in row["output"]] == [
        expected(k, pa.field("o", ITEM)) for k in SPEC_KINDS
    ]
    by_id = {r["id"]: r for r in items}
    assert by_id["msg_1"]["content"][1]["refusal"] == "No."
    assert by_id["ws_2"]["action"]["url"] == "https://p"
    assert by_id["fs_1"]["results"][0]["score"] == 0.5
    assert by_id["ls_1"]["action"]["command"] == ["ls", "-l"]
    assert by_id["sh_1"]["action"]["commands"] == ["ls"]
    assert by_id["cco_1"]["output"] is None and by_id["sho_1"]["output"] is None  # objects and lists
    assert by_id["tsc_1"]["arguments"] is None
    assert json.loads(by_id["ml_1"]["error"]) == "unreachable"
    assert by_id["mr_1"]["approve"] is False
