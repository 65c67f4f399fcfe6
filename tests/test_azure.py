"""Azure and other OAuth servers: bearer tokens from token_provider= (Microsoft Entra ID), Azure's v1
base URL and the classic api_version form, over real HTTP on 127.0.0.1 (the emulator, or a scripted
server recording each request's headers)."""

from __future__ import annotations

import asyncio
import logging
import pickle
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import duckdb
import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

import duckdb_openai
from duckdb_openai.config import Settings
from duckdb_openai.errors import AuthenticationError, ConfigurationError, ResponseFormatError
from duckdb_openai.http import requester as client_module
from tests.helpers import KEY
from tests.netservers import RUN_ID, STEPS, THREAD_ID, TlsServer, page
from tests.scripted import ScriptedServer

TRANSPORTS = [pytest.param(False, id="aiohttp"), pytest.param(True, id="httpx-http2")]
FAST = {"retry_initial_delay": 0.01, "retry_max_delay": 0.05, "progress": "off"}
AZURE_VERSION = "2024-05-01-preview"
#: The name of the client's loop thread (runtime.LoopThread).
LOOP_THREAD = "duckdb-openai"
UNAUTHORIZED = (
    401,
    {"error": {"message": "Access token is missing, invalid or expired.", "type": "invalid_request_error"}},
)


def token(n: int) -> str:
    """A token shaped like Entra ID's (a JWT), long enough that finding a piece of it means a leak."""
    return f"eyJ0eXAiOiJKV1QifQ.entra-token-{n}-SECRET.c2lnbmF0dXJl"


class Provider:
    """A token provider that answers answers[i] on call i (the last one after that; an exception is
    raised) and records the thread each call ran on."""

    def __init__(self, *answers: object) -> None:
        self.answers = answers
        self.threads: list[str] = []

    @property
    def calls(self) -> int:
        return len(self.threads)

    def __call__(self) -> Any:
        self.threads.append(threading.current_thread().name)
        answer = self.answers[min(self.calls, len(self.answers)) - 1]
        if isinstance(answer, BaseException):
            raise answer
        return answer


class AccessToken(NamedTuple):
    """azure.core's AccessToken, which `credential.get_token(scope)` returns."""

    token: str
    expires_on: int


@pytest.fixture
def reuse(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Set TOKEN_REUSE_S for clients made in the test: 0 asks the provider before every request; an
    hour keeps a test's count of calls from depending on how fast the machine is."""

    def set_reuse(seconds: float) -> None:
        monkeypatch.setattr(client_module, "TOKEN_REUSE_S", seconds)

    yield set_reuse


def register(base_url: str, **settings: Any) -> tuple[duckdb.DuckDBPyConnection, duckdb_openai.Registration]:
    con = duckdb.connect()
    return con, duckdb_openai.register(con, base_url=base_url, **{**FAST, **settings})


def read_steps(base_url: str, **settings: Any) -> list[str]:
    reader = duckdb_openai.read_run_steps(THREAD_ID, RUN_ID, base_url=base_url, **{**FAST, **settings})
    return [str(i) for i in reader.read_all().column("id").to_pylist()]


def authorizations(server: ScriptedServer) -> list[str | None]:
    return [r.headers.get("authorization") for r in server.requests]


def load_runs(con: duckdb.DuckDBPyConnection, runs: list[Any]) -> None:
    con.execute("CREATE OR REPLACE TABLE my_runs(thread_id VARCHAR, run_id VARCHAR)")
    con.executemany("INSERT INTO my_runs VALUES (?, ?)", [(r.thread_id, r.run_id) for r in runs])


LATERAL = "SELECT s.run_id, s.id FROM my_runs r, run_steps(r.thread_id, r.run_id) s"


def truth(emu: Any, runs: list[Any]) -> list[tuple[str, str]]:
    return sorted((r.run_id, s["id"]) for r in runs for s in emu.dataset.steps(r.thread_id, r.run_id))


# -- the token is sent, reused, renewed -------------------------------------------------------------------


@pytest.mark.parametrize("http2", TRANSPORTS)
def test_the_token_is_sent_as_a_bearer_and_the_key_header_is_not(http2: bool) -> None:
    provider = Provider(token(1))
    with ScriptedServer([(200, page(STEPS))]) as server:
        assert read_steps(server.base_url, token_provider=provider, http2=http2) == [s["id"] for s in STEPS]
    assert authorizations(server) == [f"Bearer {token(1)}"]
    assert "api-key" not in server.requests[0].headers
    assert server.requests[0].headers["openai-beta"] == "assistants=v2"  # the other headers stay


def test_the_emulator_serves_rows_to_a_token_as_to_a_key(emu: Any) -> None:
    run = emu.dataset.find_run(step_count=101)
    expected = [s["id"] for s in emu.dataset.steps(run.thread_id, run.run_id)]
    reader = duckdb_openai.read_run_steps(
        run.thread_id, run.run_id, base_url=emu.base_url, token_provider=Provider(token(1)), **FAST
    )
    assert reader.read_all().column("id").to_pylist() == expected
    assert [r["auth"] for r in emu.requests()] == ["bearer", "bearer"]


def test_a_new_token_from_the_provider_is_used_on_the_next_request(reuse: Any) -> None:
    reuse(0)  # ask before every request
    provider = Provider(token(1), token(2), token(3))
    script = [
        (200, page(STEPS[:1], has_more=True)),
        (200, page(STEPS[1:2], has_more=True)),
        (200, page(STEPS[2:])),
    ]
    with ScriptedServer(list(script)) as server:
        # Without the cache, which asks for the current token too (whose rows it may serve).
        ids = read_steps(server.base_url, token_provider=provider, both_ends=False, cache=False)
    assert ids == [s["id"] for s in STEPS]
    assert authorizations(server) == [f"Bearer {token(n)}" for n in (1, 2, 3)]


def test_a_token_is_reused_and_asked_for_once_by_a_concurrent_fan_out(
    emulator_factory: Any, reuse: Any
) -> None:
    reuse(3600)
    emu = emulator_factory(latency_ms=20)
    runs = [r for r in emu.dataset.runs if 0 < r.step_count <= 100][:40]
    provider = Provider(token(1), token(2))
    con, registration = register(emu.base_url, token_provider=provider, max_concurrency=32)
    load_runs(con, runs)
    assert sorted(con.execute(LATERAL).fetchall()) == truth(emu, runs)
    assert emu.stats()["max_in_flight"] > 1  # the first requests went out together...
    assert provider.calls == 1  # ...after one call
    registration.close()


@pytest.mark.parametrize("max_retries", [0, 6])
def test_a_401_asks_the_provider_again_and_retries_once(max_retries: int) -> None:
    provider = Provider(token(1), token(2))
    with ScriptedServer([UNAUTHORIZED, (200, page(STEPS))]) as server:
        ids = read_steps(server.base_url, token_provider=provider, max_retries=max_retries)
    assert ids == [s["id"] for s in STEPS]
    assert provider.calls == 2
    assert authorizations(server) == [f"Bearer {token(1)}", f"Bearer {token(2)}"]


def test_a_second_401_is_an_authentication_error_naming_token_provider() -> None:
    provider = Provider(token(1), token(2), token(3))
    with ScriptedServer([UNAUTHORIZED]) as server, pytest.raises(AuthenticationError) as info:
        read_steps(server.base_url, token_provider=provider)
    assert len(server.requests) == 2 and provider.calls == 2  # one renewal, one retry: no more
    message = str(info.value)
    assert "token_provider=" in message and "Access token is missing" in message
    assert "api_key" not in message and "entra-token" not in message
    assert info.value.status == 401


def test_a_revoked_token_is_replaced_once_for_a_whole_fan_out(emulator_factory: Any, reuse: Any) -> None:
    # The emulator takes only the fresh token: every first request of the fan-out is answered 401
    # together, and one call to the provider serves all their retries.
    reuse(3600)
    emu = emulator_factory(latency_ms=20, api_key=token(2))
    runs = [r for r in emu.dataset.runs if 0 < r.step_count <= 100][:40]
    provider = Provider(token(1), token(2))
    con, registration = register(emu.base_url, token_provider=provider, max_concurrency=32)
    load_runs(con, runs)
    assert sorted(con.execute(LATERAL).fetchall()) == truth(emu, runs)
    assert provider.calls == 2
    assert emu.stats()["by_endpoint"]["list"]["401"] > 1
    registration.close()


# -- providers: sync off the loop, async, failing ---------------------------------------------------------


def test_a_sync_provider_runs_off_the_client_loop_and_an_async_one_works() -> None:
    sync_provider = Provider(token(1))
    calls: list[str] = []

    async def async_provider() -> str:
        await asyncio.sleep(0)
        calls.append(threading.current_thread().name)
        return token(2)

    with ScriptedServer([(200, page(STEPS))]) as server:
        read_steps(server.base_url, token_provider=sync_provider)
        read_steps(server.base_url, token_provider=async_provider)
    assert sync_provider.threads and LOOP_THREAD not in sync_provider.threads  # a worker thread
    assert calls == [LOOP_THREAD]
    assert authorizations(server) == [f"Bearer {token(1)}", f"Bearer {token(2)}"]


BAD_ANSWERS = [
    pytest.param(
        RuntimeError("DefaultAzureCredential failed to retrieve a token"),
        "raised RuntimeError: Def",
        id="raises",
    ),
    pytest.param(None, "returned a NoneType, not a string", id="none"),
    pytest.param(token(1).encode(), "returned a bytes, not a string", id="bytes"),
    pytest.param(AccessToken(token(1), 0), "get_bearer_token_provider", id="access-token"),
    pytest.param("", "empty token", id="empty"),
    pytest.param(" \t ", "empty token", id="blank"),
    pytest.param(token(1) + "\n", "white space", id="newline"),
    pytest.param(token(1)[:20] + "\x00" + token(1)[20:], "control or non-ASCII", id="control"),
    pytest.param("Bearer " + token(1), "return the token alone", id="bearer-prefix"),
]


@pytest.mark.parametrize(("answer", "expected"), BAD_ANSWERS)
def test_a_provider_that_fails_gives_a_configuration_error_and_sends_nothing(
    answer: object, expected: str
) -> None:
    with ScriptedServer([(200, page(STEPS))]) as server, pytest.raises(ConfigurationError) as info:
        read_steps(server.base_url, token_provider=Provider(answer))
    assert server.requests == []
    message = str(info.value)
    assert "token_provider=" in message and expected in message
    assert "entra-token" not in message + repr(info.value) + repr(pickle.dumps(info.value))
    assert info.value.__context__ is None and info.value.__cause__ is None


def test_a_failing_provider_is_not_asked_once_per_key(emu: Any, reuse: Any) -> None:
    # With on_error='skip', each key fails with the provider's error: a credential chain that takes
    # seconds to fail must not be tried once per run.
    reuse(3600)
    runs = [r for r in emu.dataset.runs if 0 < r.step_count <= 100][:10]
    provider = Provider(RuntimeError("no credential"))
    con, registration = register(emu.base_url, token_provider=provider, on_error="skip")
    load_runs(con, runs)
    with pytest.warns(RuntimeWarning, match="skipped 10 of 10.*token_provider= raised RuntimeError"):
        assert con.execute(LATERAL).fetchall() == []
    assert provider.calls == 1 and emu.stats()["requests"] == 0
    registration.close()


def test_a_provider_that_hangs_times_out() -> None:
    release = threading.Event()

    def hanging() -> str:
        release.wait(10)
        return token(1)

    try:
        with ScriptedServer([(200, page(STEPS))]) as server, pytest.raises(ConfigurationError) as info:
            read_steps(server.base_url, token_provider=hanging, timeout=0.2)
        assert "gave no token within timeout=0.2s" in str(info.value)
        assert server.requests == []
    finally:
        release.set()


HANGING_PROVIDER = """
import sys, threading, duckdb, duckdb_openai

def never() -> str:  # a credential stuck on an identity service that never answers
    threading.Event().wait()
    return ""

con = duckdb.connect()
duckdb_openai.register(con, token_provider=never, base_url=sys.argv[1], timeout=0.5, progress="off")
try:
    con.execute("SELECT id FROM run_steps('thread_a', 'run_b')").fetchall()
except duckdb.Error as exc:
    print(exc, flush=True)
"""


def test_a_provider_still_running_is_waited_for_again_not_called_twice(reuse: Any) -> None:
    # Each timed-out call left a thread behind; asking again started another one.
    reuse(0)
    release = threading.Event()
    calls: list[str] = []

    def slow() -> str:
        calls.append(threading.current_thread().name)
        release.wait(10)
        return token(1)

    with (
        ScriptedServer([(200, page(STEPS))]) as server,
        duckdb_openai.Client(token_provider=slow, base_url=server.base_url, timeout=0.2, **FAST) as client,
    ):
        for _ in range(2):
            with pytest.raises(ConfigurationError, match=r"gave no token within timeout=0\.2s"):
                duckdb_openai.read_run_steps(THREAD_ID, RUN_ID, client=client).read_all()
        assert len(calls) == 1 and server.requests == []
        release.set()
        table = duckdb_openai.read_run_steps(THREAD_ID, RUN_ID, client=client).read_all()
    assert table.num_rows == len(STEPS)
    assert authorizations(server) == [f"Bearer {token(1)}"]


def test_a_provider_that_never_returns_does_not_keep_the_process_alive() -> None:
    # The query failed on time, then the interpreter hung at exit: the provider ran on asyncio's
    # default executor, whose threads are joined at exit.
    script = HANGING_PROVIDER
    with ScriptedServer([(200, page(STEPS))]) as server:
        try:
            done = subprocess.run(
                [sys.executable, "-c", script, server.base_url], capture_output=True, text=True, timeout=60
            )
        except subprocess.TimeoutExpired as expired:
            pytest.fail(f"the process did not exit after the query failed: {expired.stdout!r}")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ConfigurationError" in done.stdout and "gave no token within timeout=0.5s" in done.stdout
    assert server.requests == []


# -- a token never shows ----------------------------------------------------------------------------------


def echo(request: Request) -> Response:
    # The credential first: an error quotes the start of the body.
    return JSONResponse({"authorization": request.headers.get("authorization"), **request.headers})


def echo_401(request: Request) -> Response:
    text = f"token {request.headers.get('authorization')} expired"
    # In the body: a response header echoing it is tests/test_leaks.py's (httpcore's DEBUG traces).
    return JSONResponse({"error": {"message": text, "code": text, "param": text}}, 401)


@pytest.mark.parametrize("http2", TRANSPORTS)
def test_a_token_never_shows_in_errors_logs_reprs_pickles_or_the_catalog(
    http2: bool, reuse: Any, caplog: pytest.LogCaptureFixture
) -> None:
    reuse(0)  # a new token for every request: the earlier ones must stay hidden too
    caplog.set_level(logging.DEBUG)
    provider = Provider(token(1), token(2), token(3), token(4), RuntimeError(f"could not renew {token(2)}"))
    client = duckdb_openai.Client(
        token_provider=provider, http2=http2, **FAST, base_url="http://127.0.0.1:9/v1"
    )
    errors: list[BaseException] = []
    with ScriptedServer([echo, echo_401, echo_401, echo]) as server:
        # Without the cache, which asks for the current token too: the sequence of tokens sent is the test's.
        client = duckdb_openai.Client(
            token_provider=provider, http2=http2, base_url=server.base_url, cache=False, **FAST
        )
        # A 200 echoing the request (quoted by the error); two 401s echoing the token in every field;
        # then a provider whose error quotes an earlier token.
        for expected in (ResponseFormatError, AuthenticationError, ConfigurationError):
            with pytest.raises(expected) as info:
                duckdb_openai.read_run_steps(THREAD_ID, RUN_ID, client=client).read_all()
            errors.append(info.value)
        con = duckdb.connect()
        registration = duckdb_openai.register(con, client=client)
        with pytest.raises(duckdb.Error) as in_sql:
            con.execute("SELECT * FROM run_steps(?, ?)", [THREAD_ID, RUN_ID]).fetchall()
        catalog = con.execute(
            "SELECT string_agg(CAST(f AS VARCHAR), ' ') FROM duckdb_functions() f "
            "UNION ALL SELECT string_agg(CAST(s AS VARCHAR), ' ') FROM duckdb_settings() s "
            "UNION ALL SELECT string_agg(CAST(v AS VARCHAR), ' ') FROM duckdb_views() v"
        ).fetchall()
        shown = [str(catalog), str(in_sql.value), repr(client), repr(client.settings), repr(registration)]
        shown.append(str(client.settings.token_provider))
        with pytest.raises(TypeError, match="cannot be pickled"):
            pickle.dumps(client.settings)
        registration.close()
        client.close()
    sent = [a.split(".")[1] if a else a for a in authorizations(server)]
    # token 3 came from the renewal after the first 401, and was replaced at once (reuse 0)
    assert sent == ["entra-token-1-SECRET", "entra-token-2-SECRET", "entra-token-4-SECRET"]
    assert '"authorization":"Bearer ***"' in str(errors[0])
    assert "token_provider=" in str(errors[1]) and "token Bearer *** expired" in str(errors[1])
    assert "could not renew ***" in str(errors[2]) and "could not renew ***" in str(in_sql.value)
    for error in errors:
        shown += [str(error), repr(error), repr(vars(error)), repr(pickle.dumps(error))]
    shown += [caplog.text] + [repr(vars(record)) for record in caplog.records]
    assert any("token_provider= gave a new token" in r.getMessage() for r in caplog.records)
    for text in shown:
        assert "entra-token" not in text


def test_http2_debug_logs_hold_no_token(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with TlsServer(tmp_path) as server, caplog.at_level(logging.DEBUG):
        client = duckdb_openai.Client(
            token_provider=Provider(token(1)),
            base_url=server.base_url,
            http2=True,
            verify=server.ca_path,
            **FAST,
        )
        for _ in range(2):  # the second request's header block refers to the first's table entries
            assert duckdb_openai.read_run_step(THREAD_ID, RUN_ID, STEPS[0]["id"], client=client).num_rows == 1
        client.close()
    assert {version for version, _ in server.requests} == {"2"}
    assert all(headers["authorization"] == f"Bearer {token(1)}" for _, headers in server.requests)
    # The test server decodes our headers in this process and logs them; only the client's count.
    ours = [r for r in caplog.records if r.threadName.startswith(LOOP_THREAD)]
    assert any(r.name.startswith("httpcore") for r in ours)  # DEBUG logging of the client was on
    assert not [r.getMessage() for r in ours if r.name.startswith("hpack")]
    assert not [r.getMessage() for r in ours if "entra-token" in r.getMessage()]


# -- api_key or token_provider ----------------------------------------------------------------------------


def test_api_key_and_token_provider_together_are_refused_everywhere() -> None:
    both = {"api_key": KEY, "token_provider": Provider(token(1)), "base_url": "http://127.0.0.1:9/v1"}
    attempts = [
        lambda: Settings.resolve(**both, env={}),
        lambda: duckdb_openai.Client(**both),
        lambda: duckdb_openai.register(duckdb.connect(), **both),
        lambda: duckdb_openai.read_run_steps(THREAD_ID, RUN_ID, **both),
    ]
    for attempt in attempts:
        with pytest.raises(ConfigurationError, match="pass api_key= or token_provider=, not both"):
            attempt()


def test_neither_falls_back_to_openai_api_key_and_else_names_both(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(
        ConfigurationError, match=r"pass api_key= \(or token_provider= for Microsoft Entra ID\)"
    ):
        duckdb_openai.Client(base_url="http://127.0.0.1:9/v1")
    with pytest.raises(ConfigurationError, match="token_provider="):
        duckdb_openai.register(duckdb.connect(), base_url="http://127.0.0.1:9/v1")
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with ScriptedServer([(200, page(STEPS))]) as server:
        read_steps(server.base_url)  # the environment's key
        read_steps(server.base_url, token_provider=Provider(token(1)))  # an argument wins over it
    assert authorizations(server) == [f"Bearer {KEY}", f"Bearer {token(1)}"]


def test_a_token_passed_as_token_provider_is_refused_without_showing_it() -> None:
    with pytest.raises(ConfigurationError, match="must be a callable returning a token string") as info:
        Settings.resolve(token_provider=token(1), env={})  # type: ignore[arg-type]
    assert "entra-token" not in str(info.value)


# -- Azure: the v1 base URL and the classic api_version form ----------------------------------------------


def test_the_emulator_serves_azure_v1_with_either_header_and_no_version(emu: Any) -> None:
    run = emu.dataset.find_run(step_count=3)
    path = f"/threads/{run.thread_id}/runs/{run.run_id}/steps"
    beta = {"OpenAI-Beta": "assistants=v2"}
    with httpx.Client(base_url=emu.root_url) as http:
        for auth in ({"Authorization": f"Bearer {KEY}"}, {"api-key": KEY}):
            answer = http.get("/openai/v1" + path, headers={**beta, **auth})
            assert answer.status_code == 200 and len(answer.json()["data"]) == 3
        # The classic prefix still wants api-version with a key.
        assert http.get("/openai" + path, headers={**beta, "api-key": KEY}).status_code == 400
        versioned = http.get(
            "/openai" + path, headers={**beta, "api-key": KEY}, params={"api-version": AZURE_VERSION}
        )
        assert versioned.status_code == 200
    assert [r["endpoint"] for r in emu.requests()] == ["list"] * 4


@pytest.mark.parametrize("how", ["key", "token"])
def test_azure_v1_base_url_works_with_a_key_or_a_token_and_no_api_version(emu: Any, how: str) -> None:
    credentials: dict[str, Any] = {"api_key": KEY} if how == "key" else {"token_provider": Provider(token(1))}
    run = emu.dataset.find_run(step_count=101)
    con, registration = register(emu.root_url + "/openai/v1/", **credentials)
    got = con.execute("SELECT id FROM run_steps(?, ?)", [run.thread_id, run.run_id]).fetchall()
    assert [i for (i,) in got] == [s["id"] for s in emu.dataset.steps(run.thread_id, run.run_id)]
    log = emu.requests()
    assert len(log) == 2
    for request in log:
        # As the openai SDK's OpenAI(base_url=".../openai/v1/", api_key=...) does: Bearer, no version.
        assert request["path"].startswith("/openai/v1/threads/")
        assert (request["auth"], request["api_version"]) == ("bearer", None)
    registration.close()


def test_the_classic_api_version_form_sends_a_token_as_bearer(emu: Any) -> None:
    run = emu.dataset.find_run(step_count=3)
    con, registration = register(
        emu.azure_base_url, api_version=AZURE_VERSION, token_provider=Provider(token(1))
    )
    assert con.execute("SELECT count(*) FROM run_steps(?, ?)", [run.thread_id, run.run_id]).fetchone() == (3,)
    (request,) = emu.requests()
    assert request["path"].startswith("/openai/threads/")
    assert (request["auth"], request["api_version"]) == ("bearer", AZURE_VERSION)
    registration.close()
    with ScriptedServer([(200, page(STEPS))]) as server:
        read_steps(server.base_url, api_version=AZURE_VERSION, token_provider=Provider(token(1)))
    (sent,) = server.requests
    assert sent.headers["authorization"] == f"Bearer {token(1)}" and "api-key" not in sent.headers
    assert sent.query.startswith(f"api-version={AZURE_VERSION}")
