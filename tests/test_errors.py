"""Every error a user can meet: raised from SQL as a clear DuckDB error, never holding the key."""

from __future__ import annotations

import logging
import socket
from typing import Any

import duckdb
import httpx
import pytest
from pytest_httpx import HTTPXMock

import duckdb_openai
from duckdb_openai.errors import ConfigurationError
from tests.helpers import KEY, all_requests, connect
from tests.scripted import ScriptedServer


def fails(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> str:
    with pytest.raises(duckdb.Error) as info:
        con.execute(sql, params).fetchall()
    message = str(info.value)
    assert "Traceback" not in message
    assert KEY not in message
    return message


def test_missing_key_names_argument_and_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match=r"api_key=.*OPENAI_API_KEY"):
        duckdb_openai.register(duckdb.connect())


def test_rejected_key_says_where_it_came_from(emulator_factory: Any) -> None:
    emu = emulator_factory(api_key="sk-the-right-one")
    run = emu.dataset.find_run(step_count=1)
    con, registration = connect(emu.base_url)
    message = fails(con, "SELECT * FROM run_steps(?, ?)", [run.thread_id, run.run_id])
    assert "AuthenticationError" in message and "401" in message and "api_key= argument" in message
    assert all_requests(emu) == 1  # 401 is not retried
    registration.close()


def test_not_found_names_the_thread_and_run(emu: Any) -> None:
    run = emu.dataset.find_run(step_count=1)
    con, registration = connect(emu.base_url)
    message = fails(con, "SELECT * FROM run_steps(?, ?)", [run.thread_id, "run_doesnotexist"])
    assert "NotFoundError" in message and "run_doesnotexist" in message and run.thread_id in message
    message = fails(con, "SELECT * FROM run_step(?, ?, ?)", [run.thread_id, run.run_id, "step_nope"])
    assert "step_nope" in message and "404" in message
    registration.close()


def test_bad_request_carries_the_api_message() -> None:
    error = {
        "message": "Invalid 'limit': too big.",
        "type": "invalid_request_error",
        "param": "limit",
        "code": "integer_above_max_value",
    }
    with ScriptedServer([(400, {"error": error})]) as server:
        con, registration = connect(server.base_url)
        message = fails(con, "SELECT * FROM run_steps('thread_a', 'run_b')", [])
        registration.close()
    assert "BadRequestError" in message and "Invalid 'limit': too big." in message
    assert len(server.requests) == 1  # a 400 is not retried


def test_a_server_echoing_the_key_is_redacted() -> None:
    with ScriptedServer([(401, {"error": {"message": f"bad key {KEY}", "type": "x"}})]) as server:
        con, registration = connect(server.base_url)
        message = fails(con, "SELECT * FROM run_steps('thread_a', 'run_b')", [])
        registration.close()
    assert "bad key ***" in message and KEY not in message


@pytest.mark.parametrize("kind", ["429", "500", "503"])
def test_retries_exhausted_give_status_and_message(emu: Any, kind: str) -> None:
    run = emu.dataset.find_run(step_count=1)
    emu.script_faults(kind, count=10)
    con, registration = connect(emu.base_url, max_retries=2)
    message = fails(con, "SELECT * FROM run_steps(?, ?)", [run.thread_id, run.run_id])
    assert kind in message
    assert ("RateLimitError" if kind == "429" else "ServerError") in message
    assert all_requests(emu) == 3
    registration.close()


def test_connection_refused_names_the_base_url() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base_url = f"http://127.0.0.1:{port}/v1"
    con, registration = connect(base_url, max_retries=1)
    message = fails(con, "SELECT * FROM run_steps('thread_a', 'run_b')", [])
    assert "APIConnectionError" in message and base_url in message
    registration.close()


def test_timeout_names_the_base_url(emulator_factory: Any) -> None:
    emu = emulator_factory()  # its slow answers outlive the test, so not the shared emulator
    run = emu.dataset.find_run(step_count=1)
    emu.script_faults("slow", count=5, slow_ms=2000)
    con, registration = connect(emu.base_url, timeout=0.2, max_retries=1)
    message = fails(con, "SELECT * FROM run_steps(?, ?)", [run.thread_id, run.run_id])
    assert "APITimeoutError" in message and emu.base_url in message
    registration.close()


BAD_IDS = [
    "",
    "../../files",
    "thread/x",
    "a?b=1",
    "a#b",
    "a%2Fb",
    "a b",
    "a\tb",
    "a\x00b",
    "thread_\u00e9",
    ".",
    "..",
]


@pytest.mark.parametrize("bad", BAD_IDS)
@pytest.mark.parametrize("position", [0, 1])
def test_invalid_ids_fail_before_any_request(emu: Any, bad: str, position: int) -> None:
    con, registration = connect(emu.base_url)
    ids = ["thread_ok", "run_ok"]
    ids[position] = bad
    message = fails(con, "SELECT * FROM run_steps(?, ?)", ids)
    assert "InvalidIdError" in message and f"invalid {['thread_id', 'run_id'][position]}" in message
    assert all_requests(emu) == 0
    registration.close()


def test_invalid_step_id(emu: Any) -> None:
    con, registration = connect(emu.base_url)
    message = fails(con, "SELECT * FROM run_step('thread_a', 'run_b', '../../../files/file-1')", [])
    assert "invalid step_id" in message
    assert all_requests(emu) == 0
    registration.close()


def test_path_traversal_never_reaches_another_endpoint(emu: Any) -> None:
    con, registration = connect(emu.base_url)
    for sql in (
        "SELECT * FROM run_steps('../../files', 'x')",
        "SELECT * FROM run_steps('t', '../../../files')",
        "SELECT * FROM run_step('t', 'r', '../../files')",
    ):
        fails(con, sql, [])
    assert emu.requests() == []
    registration.close()


@pytest.mark.parametrize(
    ("option", "value", "named"), [("sort", "'sideways'", "sort"), ("include_content", "'maybe'", "maybe")]
)
def test_bad_options_fail_before_any_request(emu: Any, option: str, value: str, named: str) -> None:
    con, registration = connect(emu.base_url)
    message = fails(con, f"SELECT * FROM run_steps('thread_a', 'run_b', {option} := {value})", [])
    assert named in message
    assert all_requests(emu) == 0
    registration.close()


def test_plain_http_to_a_remote_host_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="allow_insecure_http"):
        duckdb_openai.register(duckdb.connect(), api_key=KEY, base_url="http://api.example.com/v1")
    registration = duckdb_openai.register(
        duckdb.connect(), api_key=KEY, base_url="http://api.example.com/v1", allow_insecure_http=True
    )
    registration.close()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"base_url": "ftp://x/v1"}, "not an http"),
        ({"max_concurrency": 0}, "max_concurrency"),
        ({"max_retries": -1}, "max_retries"),
        ({"timeout": 0}, "timeout"),
        ({"on_error": "ignore"}, "on_error"),
    ],
)
def test_bad_settings(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        duckdb_openai.register(duckdb.connect(), api_key=KEY, **kwargs)


def test_key_never_in_catalog_plan_logs_or_repr(emu: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    con, registration = connect(emu.base_url)
    run = emu.dataset.find_run(step_count=101)
    con.execute("SELECT count(*) FROM run_steps(?, ?)", [run.thread_id, run.run_id]).fetchall()
    texts = [
        str(con.execute("SELECT * FROM duckdb_functions()").fetchall()),
        str(con.execute("SELECT * FROM duckdb_views()").fetchall()),
        str(con.execute(f"EXPLAIN SELECT * FROM run_steps('{run.thread_id}', '{run.run_id}')").fetchall()),
        str(con.execute("SELECT * FROM duckdb_settings()").fetchall()),
        caplog.text,
        repr(registration),
        repr(registration.client.settings),
    ]
    for text in texts:
        assert KEY not in text
    assert "run_steps" in texts[0]
    registration.close()


def test_the_exact_request_on_the_wire() -> None:
    """The URL, parameters and headers of the first list request, as a server receives them."""
    empty = {"object": "list", "data": [], "first_id": None, "last_id": None, "has_more": False}
    with ScriptedServer([(200, empty)]) as server:
        con, registration = connect(server.base_url)
        con.execute("SELECT * FROM run_steps('thread_a', 'run_b', sort := 'desc')").fetchall()
        registration.close()
    (request,) = server.requests
    assert (request.path, request.query) == ("/v1/threads/thread_a/runs/run_b/steps", "limit=100&order=desc")
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["openai-beta"] == "assistants=v2"


def test_http2_goes_through_httpx(httpx_mock: HTTPXMock) -> None:
    """A precise unit case for the HTTP/2 transport (httpx with h2): the same request, Azure style."""
    httpx_mock.add_response(
        json={"object": "list", "data": [], "first_id": None, "last_id": None, "has_more": False}
    )
    con, registration = connect("http://127.0.0.1:9/openai", http2=True, api_version="2024-05-01-preview")
    con.execute("SELECT * FROM run_steps('thread_a', 'run_b')").fetchall()
    (request,) = httpx_mock.get_requests()
    assert request.url == httpx.URL(
        "http://127.0.0.1:9/openai/threads/thread_a/runs/run_b/steps?api-version=2024-05-01-preview&limit=100&order=asc"
    )
    assert request.headers["api-key"] == KEY and "authorization" not in request.headers
    registration.close()
