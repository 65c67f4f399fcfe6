"""The network side under hostile servers and real networks, over real HTTP on 127.0.0.1: the timeout
bounds the whole request, long waits are capped, memory is bounded by max_response_bytes, proxies and
CA trust work on both transports, and errors name what went wrong and the fix."""

from __future__ import annotations

import asyncio
import concurrent.futures
import email.utils
import gzip
import logging
import socket
import ssl
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import pytest
from pytest_httpx import HTTPXMock
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

import duckdb_openai
from duckdb_openai import (
    APIConnectionError,
    APITimeoutError,
    ConfigurationError,
    NotFoundError,
    RateLimitError,
    ResponseFormatError,
    ServerError,
)
from tests.helpers import KEY
from tests.netservers import RUN_ID, STEP, STEPS, THREAD_ID, TlsServer, page
from tests.scripted import ScriptedServer

T = TypeVar("T")
TRANSPORTS = [pytest.param(False, id="aiohttp"), pytest.param(True, id="httpx-http2")]
FAST = {"api_key": KEY, "retry_initial_delay": 0.01, "retry_max_delay": 0.05}


def within(seconds: float, call: Callable[[], T]) -> T:
    """`call()`'s result, failing the test (not hanging it) if it takes longer than `seconds`."""
    pool = concurrent.futures.ThreadPoolExecutor(1)
    try:
        return pool.submit(call).result(timeout=seconds)
    except concurrent.futures.TimeoutError:
        pytest.fail(f"still running after {seconds}s")
    finally:
        pool.shutdown(wait=False)


def read_step(base_url: str, **settings: Any) -> Any:
    return duckdb_openai.read_run_step(
        THREAD_ID, RUN_ID, STEP["id"], base_url=base_url, **{**FAST, **settings}
    )


def read_list(base_url: str, **settings: Any) -> Any:
    return duckdb_openai.read_run_steps(
        THREAD_ID, RUN_ID, base_url=base_url, **{**FAST, **settings}
    ).read_all()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- 1. the timeout bounds the whole request ---------------------------------------------------------


def dribble(request: Request) -> Response:
    async def body() -> AsyncIterator[bytes]:
        for _ in range(300):  # 30 s at most, so a client that never gives up still ends the test
            yield b" "
            await asyncio.sleep(0.1)

    return StreamingResponse(body(), media_type="application/json")


@pytest.mark.parametrize("http2", TRANSPORTS)
def test_a_body_sent_a_byte_at_a_time_times_out(http2: bool) -> None:
    with ScriptedServer([dribble]) as server:
        started = time.monotonic()
        with pytest.raises(APITimeoutError, match=r"no complete answer .* within 0\.5s"):
            within(20, lambda: read_step(server.base_url, http2=http2, timeout=0.5, max_retries=0))
        # Each read got a byte within 0.1 s, yet the request ended at the timeout (with a wide margin).
        assert time.monotonic() - started < 10
    assert len(server.requests) == 1


# -- 2. long waits: sat out up to max_wait, failed at once beyond --------------------------------------


def throttled(retry_after: str, header: str = "retry-after", status: int = 429) -> Response:
    body = b'{"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}}'
    return Response(body, status, {header: retry_after, "content-type": "application/json"})


@pytest.mark.parametrize("http2", TRANSPORTS)
def test_a_retry_after_beyond_max_wait_fails_at_once_saying_how_long(http2: bool) -> None:
    with ScriptedServer([throttled("3600")]) as server, pytest.raises(RateLimitError) as info:
        within(20, lambda: read_step(server.base_url, http2=http2))
    message = str(info.value)
    assert "wait 3600s" in message and "retry-after: 3600" in message and "max_wait=60s" in message
    assert "max_wait=3600" in message  # the setting, and the value that would wait it out
    assert info.value.status == 429
    assert len(server.requests) == 1  # not retried within seconds


def test_a_long_retry_after_ms_on_a_503_fails_at_once_as_a_server_error() -> None:
    with (
        ScriptedServer([throttled("120000", "retry-after-ms", 503)]) as server,
        pytest.raises(ServerError) as info,
    ):
        within(20, lambda: read_step(server.base_url))
    assert "wait 120s" in str(info.value) and "retry-after-ms: 120000" in str(info.value)
    assert len(server.requests) == 1


def test_an_http_date_retry_after_counts_too() -> None:
    later = email.utils.formatdate(time.time() + 600, usegmt=True)
    with (
        ScriptedServer([throttled(later)]) as server,
        pytest.raises(RateLimitError, match=r"wait (59\d|600)s"),
    ):
        within(20, lambda: read_step(server.base_url))
    assert len(server.requests) == 1


def test_a_wait_within_max_wait_is_sat_out() -> None:
    with ScriptedServer([throttled("0.3"), (200, STEP)]) as server:
        table = within(20, lambda: read_step(server.base_url, max_wait=1))
    assert table.column("id").to_pylist() == [STEP["id"]]
    assert len(server.requests) == 2
    assert server.requests[1].received - server.requests[0].received >= 0.25  # the asked wait, honoured


def test_max_wait_is_the_cap() -> None:
    answers = [throttled("2"), (200, STEP)]
    with ScriptedServer(answers) as server, pytest.raises(RateLimitError, match=r"wait 2s .* max_wait=1s"):
        within(20, lambda: read_step(server.base_url, max_wait=1))
    assert len(server.requests) == 1


@pytest.mark.parametrize("limit", [None, "10", "10000"])
def test_an_empty_budget_with_a_long_reset_paces_briefly_and_asks(limit: str | None) -> None:
    # The reset header says when the whole budget is full again, not when the next request is allowed:
    # this failed at once ("would wait 360s, longer than max_wait") though the server answered the next
    # request.
    headers = {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "6m0s"}
    if limit is not None:
        headers["x-ratelimit-limit-requests"] = limit
    first = JSONResponse(page(STEPS[:1], has_more=True), headers=headers)
    with ScriptedServer([first, (200, page(STEPS[1:]))]) as server:
        table = within(30, lambda: read_list(server.base_url, both_ends=False))
    assert table.column("id").to_pylist() == [step["id"] for step in STEPS]
    assert len(server.requests) == 2


def test_a_429_asking_for_longer_than_max_wait_still_fails_every_waiting_request() -> None:
    # Only the server's own 429 fails a request for its wait: the requests held back by it fail at once
    # too, each with a RateLimitError saying what was asked.
    answers = [throttled("3600")]
    with ScriptedServer(answers) as server:
        con = duckdb.connect()
        registration = duckdb_openai.register(
            con, base_url=server.base_url, progress="off", cache=False, max_concurrency=1, **FAST
        )
        runs = ", ".join(f"('{THREAD_ID}', 'run_{i}')" for i in range(6))
        sql = f"SELECT r.id FROM (VALUES {runs}) v(t, r0), LATERAL run_steps(v.t, v.r0, on_error := 'skip') r"
        with pytest.warns(RuntimeWarning, match=r"skipped 6 of 6 .*RateLimitError.*wait 3600s"):
            assert within(30, lambda: con.execute(sql).fetchall()) == []
        registration.close()
    assert len(server.requests) == 1  # one at a time: the later requests were not sent into the pause


# -- 3. memory is bounded by max_response_bytes --------------------------------------------------------


@pytest.mark.parametrize("http2", TRANSPORTS)
def test_a_gzip_bomb_stops_at_max_response_bytes(http2: bool) -> None:
    bomb = gzip.compress(b" " * (50 * 1024 * 1024), compresslevel=9)  # 50 MiB in about 50 KB
    chunk = 1024
    sent: list[int] = []

    def answer(request: Request) -> Response:
        async def body() -> AsyncIterator[bytes]:
            for start in range(0, len(bomb), chunk):
                sent.append(start)
                yield bomb[start : start + chunk]
                await asyncio.sleep(0.005)

        return StreamingResponse(body(), headers={"content-encoding": "gzip"}, media_type="application/json")

    with ScriptedServer([answer]) as server:
        with pytest.raises(ResponseFormatError) as info:
            within(30, lambda: read_step(server.base_url, http2=http2, max_response_bytes=1024 * 1024))
        # The client hung up at the cap: the server got to send a small part of the bomb.
        time.sleep(0.3)
        assert len(sent) < len(bomb) // chunk // 2
    assert "max_response_bytes=1048576" in str(info.value)
    assert len(server.requests) == 1  # too large is not retried


@pytest.mark.parametrize("http2", TRANSPORTS)
def test_a_plain_body_past_the_cap_is_refused_and_one_within_is_read(http2: bool) -> None:
    padded = page(STEPS)
    padded["padding"] = "x" * 300_000
    with ScriptedServer([(200, padded)]) as server:
        with pytest.raises(ResponseFormatError, match="max_response_bytes=200000"):
            read_list(server.base_url, http2=http2, max_response_bytes=200_000)
        assert read_list(server.base_url, http2=http2, max_response_bytes=400_000).num_rows == len(STEPS)


# -- 6. proxies and trust -------------------------------------------------------------------------------


@pytest.mark.parametrize("http2", TRANSPORTS)
def test_the_environment_proxy_is_used_and_no_proxy_bypasses_it(
    http2: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ScriptedServer([(200, STEP)]) as proxy, ScriptedServer([(200, STEP)]) as target:
        monkeypatch.setenv("HTTP_PROXY", proxy.base_url.removesuffix("/v1"))
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        assert read_step(target.base_url, http2=http2).num_rows == 1
        # The proxy got the request (absolute-form, so its path is the target's) and answered it.
        assert len(proxy.requests) == 1 and len(target.requests) == 0
        assert proxy.requests[0].path == f"/v1/threads/{THREAD_ID}/runs/{RUN_ID}/steps/{STEP['id']}"
        assert proxy.requests[0].headers["host"] == target.base_url.split("/")[2]

        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        assert read_step(target.base_url, http2=http2).num_rows == 1
        assert len(proxy.requests) == 1 and len(target.requests) == 1

        monkeypatch.delenv("NO_PROXY")
        assert read_step(target.base_url, http2=http2, proxy=False).num_rows == 1
        assert len(proxy.requests) == 1 and len(target.requests) == 2


@pytest.mark.parametrize("http2", TRANSPORTS)
def test_an_explicit_proxy_gets_its_credentials_and_messages_never_show_them(http2: bool) -> None:
    with ScriptedServer([(200, STEP)]) as proxy:
        port = proxy.base_url.split(":")[2].split("/")[0]
        url = f"http://someone:pr0xy-pa55word@127.0.0.1:{port}"
        assert read_step("http://127.0.0.1:9/v1", http2=http2, proxy=url).num_rows == 1
    assert proxy.requests[0].headers["proxy-authorization"] == "Basic c29tZW9uZTpwcjB4eS1wYTU1d29yZA=="
    dead = f"http://someone:pr0xy-pa55word@127.0.0.1:{free_port()}"
    with pytest.raises(APIConnectionError) as info:
        read_step("http://127.0.0.1:9/v1", http2=http2, proxy=dead)
    assert "through the proxy http://127.0.0.1:" in str(info.value)
    assert "pr0xy-pa55word" not in str(info.value) and "someone" not in str(info.value)
    settings = duckdb_openai.Settings.resolve(api_key=KEY, proxy=dead)
    assert "pr0xy-pa55word" not in repr(settings)


@pytest.mark.parametrize("http2", TRANSPORTS)
def test_a_private_ca_is_refused_by_default_and_trusted_with_verify(http2: bool, tmp_path: Path) -> None:
    with TlsServer(tmp_path) as server:
        with pytest.raises(APIConnectionError, match=r"certificate.*not trusted.*verify=") as info:
            read_step(server.base_url, http2=http2, verify=True)
        assert len(server.requests) == 0  # a certificate that does not verify is not retried either
        assert "CERTIFICATE_VERIFY_FAILED" in str(info.value)
        assert read_step(server.base_url, http2=http2, verify=server.ca_path).num_rows == 1
        context = ssl.create_default_context(cafile=server.ca_path)
        assert read_step(server.base_url, http2=http2, verify=context).num_rows == 1
        assert read_step(server.base_url, http2=http2, verify=False).num_rows == 1
    # A real HTTP/2 exchange for httpx, HTTP/1.1 for aiohttp.
    assert {version for version, _ in server.requests} == {"2" if http2 else "1.1"}


@pytest.mark.parametrize("http2", TRANSPORTS)
def test_ssl_cert_file_is_honoured_by_both_transports(
    http2: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with TlsServer(tmp_path) as server:
        monkeypatch.setenv("SSL_CERT_FILE", server.ca_path)
        monkeypatch.delenv("SSL_CERT_DIR", raising=False)
        assert read_step(server.base_url, http2=http2).num_rows == 1


def test_a_missing_ca_bundle_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError, match=r"CA bundle '/nowhere/ca.pem' from verify="):
        duckdb_openai.Client(api_key=KEY, verify="/nowhere/ca.pem")
    monkeypatch.setenv("SSL_CERT_FILE", "/nowhere/ca.pem")
    with pytest.raises(ConfigurationError, match=r"\$SSL_CERT_FILE"):
        duckdb_openai.Client(api_key=KEY)
    duckdb_openai.Client(api_key=KEY, base_url="http://127.0.0.1:9/v1").close()  # unused over http


# -- 7. messages: not an OpenAI API, the retired default, a refused connection --------------------------


def test_an_html_404_is_named_as_not_an_openai_api() -> None:
    html = Response(
        b"<!doctype html><html><body><h1>Not Found</h1></body></html>", 404, media_type="text/html"
    )
    with ScriptedServer([html]) as server, pytest.raises(NotFoundError) as info:
        read_step(server.base_url)
    message = str(info.value)
    assert f"the server at {server.base_url} answered 404" in message
    assert "with an HTML page, not an OpenAI API error: check base_url" in message
    assert "<h1>" not in message


def test_a_non_json_error_body_is_quoted_and_named() -> None:
    plain = Response(b"upstream exploded", 502, media_type="text/plain")
    with ScriptedServer([plain]) as server, pytest.raises(ServerError) as info:
        read_step(server.base_url, max_retries=1)
    assert "answered 502" in str(info.value) and "not JSON ('upstream exploded')" in str(info.value)


def test_the_default_base_url_says_the_assistants_api_was_retired(httpx_mock: HTTPXMock) -> None:
    error = {"error": {"message": "Invalid URL (GET /v1/threads/...)", "type": "invalid_request_error"}}
    httpx_mock.add_response(status_code=404, json=error)
    with pytest.raises(NotFoundError) as info:
        duckdb_openai.read_run_step(THREAD_ID, RUN_ID, STEP["id"], api_key=KEY, http2=True)
    message = str(info.value)
    assert "Assistants API was retired at https://api.openai.com/v1 on 2026-08-26" in message
    assert "set base_url" in message and "Azure OpenAI" in message


def test_a_refused_connection_fails_fast_and_says_it_is_retrying(caplog: pytest.LogCaptureFixture) -> None:
    base_url = f"http://127.0.0.1:{free_port()}/v1"
    with duckdb_openai.Client(base_url=base_url, **FAST) as client:
        assert client.settings.max_retries == 6
        with caplog.at_level(logging.WARNING, logger="duckdb_openai"), pytest.raises(APIConnectionError):
            duckdb_openai.read_run_step(THREAD_ID, RUN_ID, STEP["id"], client=client)
        assert client.stats.requests == 3  # one try and two quick retries, not max_retries
    warnings = [r.getMessage() for r in caplog.records if r.name == "duckdb_openai"]
    assert len(warnings) == 1
    assert f"could not reach {base_url}" in warnings[0] and "refused; retrying 2 times quickly" in warnings[0]


# -- 8. a misspelled keyword names the closest setting --------------------------------------------------


def test_a_misspelled_keyword_is_a_configuration_error_naming_the_closest() -> None:
    with pytest.raises(ConfigurationError, match=r"unknown setting 'api_kye': did you mean 'api_key'\?"):
        duckdb_openai.register(duckdb.connect(), api_kye=KEY)
    with pytest.raises(ConfigurationError, match=r"'timout': did you mean 'timeout'\?.*max_wait"):
        duckdb_openai.Client(api_key=KEY, timout=3)
    with pytest.raises(ConfigurationError, match=r"'base_ur': did you mean 'base_url'"):
        duckdb_openai.read_run_steps(THREAD_ID, RUN_ID, api_key=KEY, base_ur="http://127.0.0.1:9/v1")
    with pytest.raises(ConfigurationError, match=r"unknown setting 'zzz': the settings are api_key, "):
        duckdb_openai.Settings.resolve(api_key=KEY, zzz=1)


def test_a_timeout_warns_once_before_retrying(caplog: pytest.LogCaptureFixture) -> None:
    async def late(request: Request) -> Response:
        await asyncio.sleep(1)
        return JSONResponse(STEP)

    with (
        ScriptedServer([late]) as server,
        caplog.at_level(logging.WARNING, logger="duckdb_openai"),
        pytest.raises(APITimeoutError),
    ):
        read_step(server.base_url, timeout=0.2, max_retries=2)
    warnings = [r.getMessage() for r in caplog.records if r.name == "duckdb_openai"]
    assert len(warnings) == 1 and "retrying up to 2 times (max_retries=)" in warnings[0]
    assert len(server.requests) == 3


@pytest.mark.parametrize("http2", TRANSPORTS)
def test_a_connection_broken_mid_body_is_named_as_such(http2: bool) -> None:
    def half(request: Request) -> Response:
        async def body() -> AsyncIterator[bytes]:
            yield b'{"object": "list", "data": ['
            raise ConnectionAbortedError("the test server hangs up mid-body")

        return StreamingResponse(body(), media_type="application/json")

    with ScriptedServer([half]) as server, pytest.raises(APIConnectionError) as info:
        read_step(server.base_url, http2=http2, max_retries=1)
    assert f"the connection to {server.base_url} broke" in str(info.value)
    assert len(server.requests) == 2  # retried, as any broken connection
