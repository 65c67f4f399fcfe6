"""Hostile and broken 200 answers: every body ends as rows or a ResponseFormatError, never a crash, a
hang, or wrong rows. Each case is served over real HTTP on loopback by a ScriptedServer.

Bodies that crashed the process before (a `null` body, deeply nested arrays) are read by a child
process, so that a regression fails its test instead of killing the whole test run.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import duckdb
import pyarrow as pa
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

import duckdb_openai
from duckdb_openai.config import DEFAULT_MAX_PAGES, Settings
from duckdb_openai.engine import fetch
from duckdb_openai.errors import ConfigurationError, ResponseFormatError
from duckdb_openai.resources import resource as resource_named
from tests.helpers import KEY, connect
from tests.scripted import ScriptedServer

LIST_SQL = "SELECT id FROM run_steps('thread_a', 'run_b')"
ITEM_SQL = "SELECT id FROM run_step('thread_a', 'run_b', 'step_00001')"


def step(i: int, **fields: Any) -> dict[str, Any]:
    """A small run step; position i fixes its id and creation time."""
    return {"id": f"step_{i:05d}", "object": "thread.run.step", "created_at": 1_700_000_000 + i, **fields}


def page(data: list[Any], has_more: bool = False, **cursors: Any) -> dict[str, Any]:
    ids = [d.get("id") if isinstance(d, dict) else None for d in data]
    body = {"object": "list", "data": data, "first_id": ids[0] if ids else None}
    body["last_id"] = ids[-1] if ids else None
    body.update(cursors, has_more=has_more)
    return body


def raw(body: bytes) -> Response:
    return Response(body, media_type="application/json")


def list_server(count: int, *, honour_order: bool = True) -> Callable[[Request], Response]:
    """A list endpoint over `count` steps that pages by `after` and `limit` like the API, and sorts by
    `order` only if `honour_order` (a server that ignores it serves ascending order to everyone)."""
    steps = [step(i) for i in range(count)]

    def answer(request: Request) -> Response:
        query = parse_qs(request.url.query)
        view = steps[::-1] if honour_order and query.get("order") == ["desc"] else steps
        start = 0
        if "after" in query:
            start = [s["id"] for s in view].index(query["after"][0]) + 1
        limit = int(query.get("limit", ["20"])[0])
        chunk = view[start : start + limit]
        return JSONResponse(page(chunk, has_more=start + limit < len(view)))

    return answer


def fails(con: duckdb.DuckDBPyConnection, sql: str) -> str:
    with pytest.raises(duckdb.Error) as info:
        con.execute(sql).fetchall()
    message = str(info.value)
    assert "Traceback" not in message and KEY not in message
    return message


def sql_error(script: list[Any], sql: str = LIST_SQL, **settings: Any) -> tuple[str, int]:
    """The error of `sql` against a server answering `script`, and how many requests it got."""
    with ScriptedServer(script) as server:
        con, registration = connect(server.base_url, **settings)
        message = fails(con, sql)
        registration.close()
    return message, len(server.requests)


CHILD = textwrap.dedent(
    """
    import json, sys, duckdb, duckdb_openai
    con = duckdb.connect()
    duckdb_openai.register(con, api_key=sys.argv[1], base_url=sys.argv[2], progress="off", timeout=10)
    try:
        print(json.dumps({"rows": con.execute(sys.argv[3]).fetchall()}))
    except duckdb.Error as exc:
        print(json.dumps({"error": str(exc)}))
    """
)


def in_child(script: list[Any], sql: str) -> dict[str, Any]:
    """Run `sql` in a child process against a server answering `script`: its JSON result, or a failed
    assertion with its exit code if it crashed."""
    with ScriptedServer(script) as server:
        done = subprocess.run(
            [sys.executable, "-c", CHILD, KEY, server.base_url, sql],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 0, f"the client process died ({done.returncode}): {done.stderr[-500:]}"
    return json.loads(done.stdout)  # type: ignore[no-any-return]


# -- never crash, never hang ---------------------------------------------------------------------------


def test_a_null_list_body_is_an_error_not_a_crash() -> None:
    result = in_child([raw(b"null")], LIST_SQL)
    assert (
        "ResponseFormatError" in result["error"] and "expected a JSON object, got 'null'" in result["error"]
    )


def test_a_null_item_body_is_an_error_not_a_crash() -> None:
    result = in_child([raw(b"null")], ITEM_SQL)
    assert (
        "ResponseFormatError" in result["error"] and "expected a JSON object, got 'null'" in result["error"]
    )


def test_a_step_holding_100_kb_of_nested_arrays_is_an_error_not_a_crash() -> None:
    nested = b"[" * 50_000 + b"]" * 50_000
    body = b'{"object":"list","data":[{"id":"step_1","x":' + nested + b'}],"has_more":false}'
    result = in_child([raw(body)], LIST_SQL)
    assert "ResponseFormatError" in result["error"] and "50003 deep" in result["error"]


def test_an_8000_deep_array_fails_at_once_not_past_the_timeout() -> None:
    # The reader took about 30 s on this body (timeout=5 did not bound it): now it is refused unread.
    nested = b"[" * 8_000 + b"]" * 8_000
    body = b'{"object":"list","data":[{"id":"step_1","x":' + nested + b'}],"has_more":false}'
    started = time.monotonic()
    message, requests = sql_error([raw(body)], timeout=5)
    assert time.monotonic() - started < 15  # the timeout plus a generous margin
    assert "ResponseFormatError" in message and "8003 deep" in message and requests == 1


def test_a_100000_deep_body_is_skipped_with_on_error_skip() -> None:
    # It raised a raw RecursionError, which on_error := 'skip' did not skip.
    deep = b'{"object":"list","data":[{"id":"step_1","x":' + b"[" * 100_000 + b"]" * 100_000 + b"}]}"

    def answer(request: Request) -> Response:
        if "run_bad" in request.url.path:
            return raw(deep)
        return JSONResponse(page([step(1)]))

    sql = (
        "SELECT r.id FROM (VALUES ('run_good'), ('run_bad')) v(run_id), "
        "LATERAL run_steps('thread_a', v.run_id, on_error := 'skip') r"
    )
    result = in_child([answer], sql)
    assert result == {"rows": [["step_00001"]]}


def test_a_large_body_is_decoded_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    # Decoding 8 MiB took ~300 ms on the loop, stalling every other request's reads and timeouts.
    threads: list[threading.Thread] = []
    decode_pages = fetch.PageDecoder.decode_pages

    def spy(self: Any, bodies: Any) -> Any:
        threads.append(threading.current_thread())
        return decode_pages(self, bodies)

    monkeypatch.setattr(fetch.PageDecoder, "decode_pages", spy)
    steps = [step(i, metadata={"pad": "x" * 500}) for i in range(3_000)]
    with ScriptedServer([(200, page(steps[:100])), (200, page(steps))]) as server:
        client = duckdb_openai.Client(api_key=KEY, base_url=server.base_url, progress="off")
        request = duckdb_openai.RUN_STEPS.bind_list({"thread_id": "thread_a", "run_id": "run_b"})
        small = client.read(request).read_all()
        large = client.read(request).read_all()
        loop_thread = client._ensure(duckdb_openai.RUN_STEPS)[0]._thread
        client.close()
    assert (small.num_rows, large.num_rows) == (100, 3_000)
    assert threads[0] is loop_thread and threads[1] is not loop_thread


# -- a list that never ends ---------------------------------------------------------------------------


def endless(request: Request) -> Response:
    """has_more forever, with fresh ids on every page."""
    query = parse_qs(request.url.query)
    n = int(query["after"][0].split("_")[1]) + 1 if "after" in query else 0
    return JSONResponse(page([step(n)], has_more=True))


def test_has_more_forever_stops_at_max_pages() -> None:
    message, requests = sql_error([endless], LIST_SQL + " LIMIT 5", max_pages=7, both_ends=False)
    assert "ResponseFormatError" in message and "max_pages=7" in message and "raise max_pages=" in message
    assert requests == 7


def test_max_pages_counts_both_ends_of_a_list() -> None:
    message, requests = sql_error([endless], max_pages=6)
    assert "max_pages=6" in message and requests == 6


def test_max_pages_default_and_check() -> None:
    assert DEFAULT_MAX_PAGES == 10_000
    assert Settings.resolve(api_key="sk-x", env={}).max_pages == 10_000
    with pytest.raises(ConfigurationError, match="max_pages"):
        Settings.resolve(api_key="sk-x", env={}, max_pages=0)


# -- never return wrong rows --------------------------------------------------------------------------


def test_a_server_ignoring_order_loses_no_rows() -> None:
    # Before: the far end's first "desc" page was the front's first page, so the list "met" at once
    # and 1,000 steps came back as 300.
    with ScriptedServer([list_server(1_000, honour_order=False)]) as server:
        con, registration = connect(server.base_url)
        ids = [r[0] for r in con.execute(LIST_SQL).fetchall()]
        registration.close()
    assert ids == [f"step_{i:05d}" for i in range(1_000)]
    # The front pages alone (10), plus what the far end cost before it was dropped (2 at most).
    assert 10 <= len(server.requests) <= 12


def test_a_server_honouring_order_still_pages_from_both_ends() -> None:
    with ScriptedServer([list_server(1_050)]) as server:
        con, registration = connect(server.base_url)
        ids = [r[0] for r in con.execute(LIST_SQL).fetchall()]
        registration.close()
    assert ids == [f"step_{i:05d}" for i in range(1_050)]
    assert any("order=desc" in r.query for r in server.requests) and len(server.requests) <= 12


def test_a_last_id_that_is_not_the_last_item_is_an_error() -> None:
    # Paging on from the wrong last_id repeated rows (15,299 rows for 350) or skipped them.
    message, requests = sql_error([(200, page([step(1), step(2)], has_more=True, last_id="step_00001"))])
    assert (
        "ResponseFormatError" in message and "last_id='step_00001'" in message and "'step_00002'" in message
    )
    assert requests == 1


def test_a_first_id_that_is_not_the_first_item_is_an_error() -> None:
    message, _ = sql_error([(200, page([step(1), step(2)], first_id="step_00002"))])
    assert "ResponseFormatError" in message and "first_id='step_00002'" in message


def test_a_null_item_is_an_error_not_a_null_row() -> None:
    message, _ = sql_error([(200, page([step(1), None]))])
    assert "ResponseFormatError" in message and "object 1" in message and "no id" in message


def test_an_empty_object_item_is_an_error_not_a_null_row() -> None:
    message, _ = sql_error([(200, page([{}, step(1)]))])
    assert "ResponseFormatError" in message and "object 0" in message and "no id" in message


def test_an_item_without_an_id_is_an_error() -> None:
    message, _ = sql_error([(200, page([step(1), {"object": "thread.run.step", "status": "completed"}]))])
    assert "ResponseFormatError" in message and "object 1" in message and "no id" in message


def test_a_failure_names_the_run() -> None:
    message, _ = sql_error([(200, page([{}]))])
    assert "thread_id='thread_a'" in message and "run_id='run_b'" in message


def test_retrieve_answering_another_id_is_an_error() -> None:
    message, _ = sql_error([(200, step(2))], ITEM_SQL)
    assert "ResponseFormatError" in message and "step_id='step_00001'" in message and "step_00002" in message


def test_a_200_error_object_from_retrieve_is_an_error() -> None:
    error = {"error": {"message": "The server had an error", "type": "server_error"}}
    message, _ = sql_error([(200, error)], ITEM_SQL)
    assert "ResponseFormatError" in message and "200 with an error object" in message
    assert "The server had an error" in message


def test_a_200_error_object_from_the_list_is_an_error() -> None:
    error = {"error": {"message": "The server had an error", "type": "server_error"}}
    message, _ = sql_error([(200, error)])
    assert "ResponseFormatError" in message and "200 with an error object" in message


INVALID_UTF8 = b'{"object":"list","data":[{"id":"step_1","status":"compl\xffeted"}],"has_more":false}'


def test_invalid_utf8_is_an_error_in_sql() -> None:
    # It reached DuckDB and failed later with "Invalid unicode ... segment statistics".
    message, _ = sql_error([raw(INVALID_UTF8)])
    assert "ResponseFormatError" in message and "not valid UTF-8" in message


def test_invalid_utf8_is_an_error_in_the_python_reader() -> None:
    # It came out as an Arrow table that failed validation.
    with ScriptedServer([raw(INVALID_UTF8)]) as server:
        reader = duckdb_openai.read_run_steps("thread_a", "run_b", api_key=KEY, base_url=server.base_url)
        with pytest.raises(ResponseFormatError, match="not valid UTF-8"):
            reader.read_all()


def test_a_lone_surrogate_escape_is_an_error() -> None:
    body = b'{"object":"list","data":[{"id":"step_1","status":"\\ud800"}],"has_more":false}'
    message, _ = sql_error([raw(body)])
    assert "ResponseFormatError" in message and "not valid Unicode" in message


def test_an_id_twice_in_one_page_is_an_error() -> None:
    message, _ = sql_error([(200, page([step(1), step(2), step(1)]))])
    assert "ResponseFormatError" in message and "'step_00001' twice" in message


def test_an_id_on_two_pages_is_an_error() -> None:
    script = [(200, page([step(1), step(2)], has_more=True)), (200, page([step(2), step(3)]))]
    message, requests = sql_error(script)
    assert "ResponseFormatError" in message and "'step_00002' on two pages" in message and requests == 2


def test_a_float_token_count_is_an_error_not_truncated() -> None:
    usage = {"prompt_tokens": 3.7, "completion_tokens": 1, "total_tokens": 4}
    message, _ = sql_error([(200, page([step(1, usage=usage)]))])
    assert "ResponseFormatError" in message and "usage.prompt_tokens holds 3.7" in message


def test_an_integral_float_token_count_is_read_exactly() -> None:
    usage = {"prompt_tokens": 3.0, "completion_tokens": 1, "total_tokens": 4.0}
    with ScriptedServer([(200, page([step(1, usage=usage)]))]) as server:
        con, registration = connect(server.base_url)
        got = con.execute("SELECT usage FROM run_steps('thread_a', 'run_b')").fetchall()
        registration.close()
    assert got == [({"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},)]


def test_a_float_timestamp_is_an_error_not_truncated() -> None:
    message, _ = sql_error([(200, page([step(1, created_at=1_700_000_000.5)]))])
    assert "ResponseFormatError" in message and "created_at holds 1700000000.5" in message


def test_a_boolean_score_is_an_error() -> None:
    details = {"type": "tool_calls", "tool_calls": [{"id": "c", "type": "file_search", "file_search": {
        "ranking_options": {"ranker": "auto", "score_threshold": True}, "results": []}}]}  # fmt: skip
    message, _ = sql_error([(200, page([step(1, step_details=details)]))])
    assert "ResponseFormatError" in message and "score_threshold holds True" in message


def test_decoded_pages_always_validate() -> None:
    # The rows that do come back are a valid Arrow table with the fixed schema.
    with ScriptedServer([list_server(250)]) as server:
        table = duckdb_openai.read_run_steps(
            "thread_a", "run_b", api_key=KEY, base_url=server.base_url
        ).read_all()
    table.validate(full=True)
    assert table.num_rows == 250 and table.schema == duckdb_openai.RUN_STEPS_SCHEMA
    assert pa.compute.count_distinct(table.column("id")).as_py() == 250


def test_the_decode_queue_delivers_errors_from_the_thread() -> None:
    # A burst decoded on the worker thread reports a bad body to its own waiter only.
    good = json.dumps(page([step(i, metadata={"pad": "x" * 500}) for i in range(2_500)])).encode()

    async def main() -> list[Any]:
        queue = fetch._DecodeQueue(fetch.PageDecoder(duckdb_openai.RUN_STEPS_SCHEMA))
        return await asyncio.gather(queue.decode(good), queue.decode(b"<html>"), return_exceptions=True)

    decoded, failed = asyncio.run(main())
    assert decoded.batch.num_rows == 2_500
    assert isinstance(failed, ResponseFormatError)


def test_a_far_end_that_never_meets_the_front_is_dropped() -> None:
    # A "desc" listing of other objects ends without meeting the front: its rows must not be mixed in.
    ascending = list_server(1_000)
    strangers = [step(5_000 + i) for i in range(150)]

    def answer(request: Request) -> Response:
        query = parse_qs(request.url.query)
        if query.get("order") != ["desc"]:
            return ascending(request)
        start = 0 if "after" not in query else [s["id"] for s in strangers].index(query["after"][0]) + 1
        return JSONResponse(page(strangers[start : start + 100], has_more=start + 100 < len(strangers)))

    with ScriptedServer([answer]) as server:
        con, registration = connect(server.base_url)
        ids = [r[0] for r in con.execute(LIST_SQL).fetchall()]
        registration.close()
    assert ids == [f"step_{i:05d}" for i in range(1_000)]


def test_the_depth_scan_agrees_with_the_json_parser() -> None:
    # Brackets, quotes and backslash runs inside strings must not count; the scan is checked against
    # the depth of what json.loads reads, over bodies built to confuse it.
    import random

    from duckdb_openai.engine.contract import _depths

    rng = random.Random(7)
    pieces = ['"', "\\", "[", "]", "{", "}", "a", "é", "\\\\", '\\"', " "]

    def text() -> str:
        return "".join(rng.choice(pieces) for _ in range(rng.randint(0, 8)))

    def value(depth: int) -> Any:
        r = rng.random()
        if depth > 12 or r < 0.3:
            return rng.choice([1, 2.5, None, True, text()])
        if r < 0.65:
            return [value(depth + 1) for _ in range(rng.randint(0, 4))]
        return {text(): value(depth + 1) for _ in range(rng.randint(0, 4))}

    def nesting(v: Any) -> int:
        children = v if isinstance(v, list) else list(v.values()) if isinstance(v, dict) else None
        return 0 if children is None else 1 + max(map(nesting, children), default=0)

    for _ in range(500):
        document = {"k": value(1)}
        body = json.dumps(document, ensure_ascii=rng.random() < 0.5, indent=rng.choice([None, 1])).encode()
        depth, _ = _depths(body)
        assert int(depth.max()) == nesting(document) and depth[-1] == 0


def test_a_burst_of_only_refused_bodies_gives_one_error_each() -> None:
    decoder = fetch.PageDecoder(duckdb_openai.RUN_STEPS_SCHEMA)
    results = decoder.decode_pages([b"null", b"[1]", b'{"data":[]} {}'])
    assert [type(r) for r in results] == [ResponseFormatError] * 3
    assert "got more after it" in str(results[2])


# -- numbers no schema type can hold ---------------------------------------------------------------------

#: JSON numbers past every integer and timestamp type: 1e308 times a timestamp's scale overflows a float
#: to inf, 1e400 is read as inf, 2**63 is one past int64. NaN and Infinity are not JSON at all, though
#: Python's json reads them.
HUGE = ["1e308", "-1e308", "1e400", "-1e400", "1e300", "9223372036854775808", "-1e19", "NaN", "-Infinity"]


def response_body(field: str, value: str, id_: str = "resp_1") -> str:
    body = {"id": id_, "object": "response", "created_at": 1_741_476_777, "status": "completed"}
    text = json.dumps({**body, "model": "gpt-4o", "output": []})
    return text[:-1] + f', "{field}": {value}}}'


def as_page(obj: str) -> bytes:
    id_ = json.loads(obj.replace("NaN", "0").replace("Infinity", "0"))["id"]
    return (
        f'{{"object":"list","data":[{obj}],"first_id":"{id_}","last_id":"{id_}","has_more":false}}'.encode()
    )


STEP_1 = '{"id": "step_1", "object": "thread.run.step", "created_at": 1700000000'
#: (schema, an object holding VALUE, the field's path in messages): a number-typed time (the Python path),
#: an integer time and an integer (the fast path first), at the top and inside a struct.
NUMBER_PLACES = [
    pytest.param("responses", "response:created_at", "created_at", id="response.created_at"),
    pytest.param("responses", "response:completed_at", "completed_at", id="response.completed_at"),
    pytest.param("run_steps", STEP_1[:-10] + "VALUE}", "created_at", id="step.created_at"),
    pytest.param(
        "run_steps",
        STEP_1 + ', "usage": {"prompt_tokens": VALUE, "completion_tokens": 1, "total_tokens": 2}}',
        "usage.prompt_tokens",
        id="step.usage",
    ),
    pytest.param(
        "chat_completions",
        '{"id": "c1", "object": "chat.completion", "created": VALUE, "model": "m"}',
        "created",
        id="chat.created",
    ),
]


@pytest.mark.parametrize("value", HUGE)
@pytest.mark.parametrize(("resource", "template", "path"), NUMBER_PLACES)
def test_a_number_no_type_can_hold_is_a_response_format_error_naming_its_field(
    resource: str, template: str, path: str, value: str
) -> None:
    # 1e308 in a response's created_at raised a raw OverflowError (inf seconds), which on_error := 'skip'
    # could not skip; integers past int64 failed with "Python int too large to convert to C long".
    if template.startswith("response:"):
        obj = response_body(template.split(":")[1], value)
    else:
        obj = template.replace("VALUE", value)
    decoder = fetch.PageDecoder(resource_named(resource).schema)
    for decode, body in [(decoder.decode_object, obj.encode()), (decoder.decode_page, as_page(obj))]:
        with pytest.raises(ResponseFormatError) as info:
            decode(body)
        message = str(info.value)
        if value in ("NaN", "-Infinity"):
            assert "not JSON" in message, message
        else:
            assert f"{path} holds " in message and "does not fit" in message, message
    # The batch forms answer an error in the body's place.
    for results in (decoder.decode_objects([obj.encode()]), decoder.decode_pages([as_page(obj)])):
        assert [type(r) for r in results] == [ResponseFormatError]


def test_a_response_time_past_any_timestamp_is_skipped_in_a_lateral_join() -> None:
    places = ("created_at", "completed_at")
    bad = {f"resp_{field}_{i}": (field, value) for i, value in enumerate(HUGE) for field in places}

    def answer(request: Request) -> Response:
        id_ = request.url.path.rsplit("/", 1)[1]
        if id_ in bad:
            return raw(response_body(*bad[id_], id_=id_).encode())
        return raw(response_body("completed_at", "1741476778.5", id_=id_).encode())

    ids = ", ".join(f"('{id_}')" for id_ in ["resp_good", *bad])
    sql = f"SELECT r.id FROM (VALUES {ids}) v(id), LATERAL response(v.id, on_error := 'skip') r"
    with ScriptedServer([answer]) as server:
        con, registration = connect(server.base_url)
        with pytest.warns(RuntimeWarning, match=f"skipped {len(bad)} of {len(bad) + 1} response requests"):
            got = con.execute(sql).fetchall()
        message = fails(con, sql.replace("'skip'", "'raise'"))
        registration.close()
    assert got == [("resp_good",)]
    assert "ResponseFormatError" in message and " holds " in message, message
