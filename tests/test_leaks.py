"""The key never leaks (messages, fields, logs, exception chains, pickles, proxies), and errors survive
pickling: each case over real HTTP on 127.0.0.1 where a server is involved."""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import inspect
import logging
import multiprocessing
import pickle
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

import duckdb_openai
from duckdb_openai import errors
from duckdb_openai.config import Settings
from tests.helpers import KEY
from tests.netservers import RUN_ID, STEP, STEPS, THREAD_ID, TlsServer, page
from tests.scripted import ScriptedServer

TRANSPORTS = [pytest.param(False, id="aiohttp"), pytest.param(True, id="httpx-http2")]
FAST = {"api_key": KEY, "retry_initial_delay": 0.01, "retry_max_delay": 0.05}
#: Long enough that finding it means the key leaked, short enough to catch a cut-off key.
KEY_PREFIX = KEY[:12]


def read_step(base_url: str, **settings: Any) -> Any:
    return duckdb_openai.read_run_step(
        THREAD_ID, RUN_ID, STEP["id"], base_url=base_url, **{**FAST, **settings}
    )


def chain(error: BaseException) -> list[BaseException]:
    found: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in found:
        found.append(current)
        current = current.__cause__ or current.__context__
    return found


#: Packages whose exceptions hold the request (and so its headers), or the attempts that made it.
HOLDERS = {"aiohttp", "httpx", "httpcore", "h11", "h2", "hpack", "anyio", "tenacity"}


def assert_clean(error: BaseException) -> None:
    """No exception in the chain holds the key, or is one of the HTTP libraries' (which hold the
    request); the client's own errors have no chain at all."""
    for link in chain(error):
        assert type(link).__module__.split(".")[0] not in HOLDERS, f"{type(link)} in the chain of {error!r}"
        assert "duckdb_openai.http.requester" not in type(link).__module__  # its internal retry carrier
        assert "duckdb_openai.http.transport" not in type(link).__module__
        text = repr(link) + repr(vars(link)) + str(link)
        assert KEY_PREFIX not in text


# -- a server echoing the key -----------------------------------------------------------------------------


def echo_headers(request: Request) -> Response:
    first = {name: request.headers[name] for name in ("authorization", "api-key") if name in request.headers}
    return JSONResponse({"you sent": {**first, **request.headers}})


@pytest.mark.parametrize("http2", TRANSPORTS)
def test_a_200_echoing_the_request_headers_does_not_put_the_key_in_the_error(http2: bool) -> None:
    with ScriptedServer([echo_headers]) as server:
        with pytest.raises(errors.ResponseFormatError) as info:
            duckdb_openai.read_run_steps(
                THREAD_ID, RUN_ID, base_url=server.base_url, http2=http2, **FAST
            ).read_all()
        assert "Bearer ***" in str(info.value)  # the body was quoted, with the key cut out
        assert_clean(info.value)
        with pytest.raises(errors.ResponseFormatError) as info:
            duckdb_openai.read_run_steps(
                THREAD_ID,
                RUN_ID,
                base_url=server.base_url,
                http2=http2,
                api_version="2024-05-01-preview",
                **FAST,
            ).read_all()  # Azure's api-key header
        assert '"api-key":"***"' in str(info.value)
        assert_clean(info.value)


def test_rows_never_carry_the_key_back() -> None:
    step = dict(STEPS[0], metadata={"echo": f"Bearer {KEY}"})
    with ScriptedServer([(200, page([step]))]) as server:
        table = duckdb_openai.read_run_steps(THREAD_ID, RUN_ID, base_url=server.base_url, **FAST).read_all()
    assert table.column("metadata").to_pylist() == [[("echo", "Bearer ***")]]


def test_every_field_of_an_api_error_is_redacted() -> None:
    error = {"message": f"bad {KEY}", "type": f"t {KEY}", "code": KEY, "param": f"key={KEY}"}
    with (
        ScriptedServer([Response(JSONResponse({"error": error}, 400).body, 400, {"x-request-id": KEY})]) as s,
        pytest.raises(errors.BadRequestError) as info,
    ):
        read_step(s.base_url)
    assert (info.value.code, info.value.param, info.value.type) == ("***", "key=***", "t ***")
    assert info.value.request_id == "***"
    assert "bad ***" in str(info.value)
    assert_clean(info.value)


def test_a_plain_text_body_is_redacted_before_it_is_cut() -> None:
    body = ("x" * 290 + KEY + " and more").encode()  # the cut at 300 characters falls inside the key
    plain = Response(body, 403, media_type="text/plain")
    with ScriptedServer([plain]) as server, pytest.raises(errors.PermissionDeniedError) as info:
        read_step(server.base_url)
    assert "***" in str(info.value)
    assert_clean(info.value)


# -- logs over HTTP/2 -------------------------------------------------------------------------------------


@pytest.mark.parametrize("azure", [False, True])
def test_http2_debug_logs_hold_no_key(azure: bool, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings: dict[str, Any] = {"api_version": "2024-05-01-preview"} if azure else {}
    with TlsServer(tmp_path) as server, caplog.at_level(logging.DEBUG):
        for _ in range(2):  # the second request's header block refers to the first's table entries
            assert read_step(server.base_url, http2=True, verify=server.ca_path, **settings).num_rows == 1
    assert {version for version, _ in server.requests} == {"2"}  # a real HTTP/2 exchange
    header = "api-key" if azure else "authorization"
    assert all(KEY in headers[header] for _, headers in server.requests)  # the key was sent, though
    # The test server decodes our headers in this process and logs them; only the client's count.
    ours = [r for r in caplog.records if r.threadName.startswith("duckdb-openai")]
    assert any(r.name.startswith("httpcore") for r in ours)  # DEBUG logging of the client was on
    assert not [r.getMessage() for r in ours if r.name.startswith("hpack")]
    assert not [r.getMessage() for r in ours if KEY_PREFIX in r.getMessage()]


#: A bearer token from token_provider=, as Microsoft Entra ID gives them (a JWT).
TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.tok-SECRET-0123456789"
CREDENTIALS = {
    "key": {"api_key": KEY},
    "azure-api-key": {"api_key": KEY, "api_version": "2024-05-01-preview"},
    "token": {"token_provider": lambda: TOKEN},
}
#: The test servers' threads: they decode our headers in this process and log them, which is theirs.
SERVER_THREADS = {"tls-server", "scripted-server"}


def echo_credentials(request: Request) -> Response:
    """One run step, with the request's Authorization or api-key header echoed in a response header."""
    names = ("authorization", "api-key")
    echoed = {f"x-echo-{name}": request.headers[name] for name in names if name in request.headers}
    return JSONResponse(STEP, headers=echoed)


@pytest.mark.parametrize("http2", TRANSPORTS)
@pytest.mark.parametrize("credential", list(CREDENTIALS))
def test_debug_logs_hold_no_credential_a_server_echoes_in_its_headers(
    http2: bool, credential: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # httpcore logs each response's headers at DEBUG; a server echoing Authorization or api-key put the
    # key (or token) in the log, over HTTP/2 and over httpx's HTTP/1.1 alike.
    settings = {"retry_initial_delay": 0.01, "retry_max_delay": 0.05, **CREDENTIALS[credential]}
    secret = TOKEN if credential == "token" else KEY
    with (
        TlsServer(tmp_path, echo_credentials) as tls,
        ScriptedServer([echo_credentials]) as plain,
        caplog.at_level(logging.DEBUG),  # the root logger and its handler, so every logger's records
    ):
        for base_url, verify in ((tls.base_url, tls.ca_path), (plain.base_url, True)):
            step = duckdb_openai.read_run_step(
                THREAD_ID, RUN_ID, STEP["id"], base_url=base_url, http2=http2, verify=verify, **settings
            )
            assert step.num_rows == 1
    sent = [headers for _, headers in tls.requests] + [r.headers for r in plain.requests]
    header = "api-key" if credential == "azure-api-key" else "authorization"
    assert len(sent) == 2 and all(secret in headers[header] for headers in sent)  # sent, so echoed
    assert {version for version, _ in tls.requests} == {"2" if http2 else "1.1"}
    ours = [r for r in caplog.records if r.threadName not in SERVER_THREADS]
    if http2:  # DEBUG logging was on, and httpcore logged the echoing headers
        assert sum(f"x-echo-{header}" in r.getMessage() for r in ours) == 2
    leaked = [f"{r.name}: {r.getMessage()}" for r in ours if secret[:12] in r.getMessage()]
    assert not leaked


# -- the key itself, the settings, the exception chain ----------------------------------------------------


@pytest.mark.parametrize("bad", ["sk-abc\x01def", "sk-abc\x7fdef", "sk-abcdéf", "sk-abc\x00"])
def test_a_key_with_a_control_or_non_ascii_character_is_refused_up_front(bad: str) -> None:
    with pytest.raises(
        errors.ConfigurationError, match=r"control or non-ASCII character \(at position"
    ) as info:
        duckdb_openai.Client(api_key=bad, base_url="http://127.0.0.1:9/v1")
    assert bad not in str(info.value) and "sk-abc" not in str(info.value)


def refused_base_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/v1"


def slow(request: Request) -> Any:
    async def answer() -> Response:
        await asyncio.sleep(2)
        return JSONResponse(STEP)

    return answer()


@pytest.mark.parametrize("http2", TRANSPORTS)
def test_no_raised_error_keeps_the_request_in_its_chain(http2: bool) -> None:
    with ScriptedServer(
        [(404, {"error": {"message": "No run found", "type": "invalid_request_error"}})]
    ) as s:
        with pytest.raises(errors.NotFoundError) as info:
            read_step(s.base_url, http2=http2)
        assert_clean(info.value)
    with pytest.raises(errors.APIConnectionError) as info:
        read_step(refused_base_url(), http2=http2)
    assert_clean(info.value)
    with ScriptedServer([slow]) as s, pytest.raises(errors.APITimeoutError) as timeout:
        read_step(s.base_url, http2=http2, timeout=0.2, max_retries=1)
    assert_clean(timeout.value)


def test_settings_refuse_pickling_and_never_write_the_key() -> None:
    settings = Settings.resolve(api_key=KEY, proxy="http://u:pr0xy-pa55@127.0.0.1:3128")
    for target in (settings, settings.api_key, settings.proxy):
        with pytest.raises(TypeError, match="cannot be pickled") as info:
            pickle.dumps(target)
        assert KEY_PREFIX not in str(info.value)
    assert copy.deepcopy(settings) == settings  # copies still work
    assert KEY not in repr(settings) and "pr0xy-pa55" not in repr(settings)


# -- proxies never get the key --------------------------------------------------------------------------


class RecordingProxy:
    """A proxy on 127.0.0.1 that records each request head it gets (a CONNECT for https targets) and
    refuses it."""

    def __init__(self) -> None:
        self.heads: list[bytes] = []
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(8)
        self._sock.settimeout(0.2)
        self.url = f"http://proxyuser:pr0xy-pa55@127.0.0.1:{self._sock.getsockname()[1]}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(5)
                head = b""
                while b"\r\n\r\n" not in head:
                    data = conn.recv(4096)
                    if not data:
                        break
                    head += data
                self.heads.append(head)
                conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    def __enter__(self) -> RecordingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()


@pytest.mark.parametrize("http2", TRANSPORTS)
@pytest.mark.parametrize("azure", [False, True])
def test_a_tunnelling_proxy_never_sees_the_key(http2: bool, azure: bool) -> None:
    settings: dict[str, Any] = {"api_version": "2024-05-01-preview"} if azure else {}
    with RecordingProxy() as proxy, pytest.raises(errors.APIConnectionError) as info:
        read_step("https://api.example.test/v1", http2=http2, proxy=proxy.url, max_retries=0, **settings)
    assert proxy.heads and proxy.heads[0].startswith(b"CONNECT api.example.test:443")
    assert b"proxy-authorization: basic " in proxy.heads[0].lower()  # its own credentials, yes
    assert all(KEY_PREFIX.encode() not in head for head in proxy.heads)
    assert "pr0xy-pa55" not in str(info.value)


# -- errors survive pickling ------------------------------------------------------------------------------


def examples() -> Iterator[errors.DuckDBOpenAIError]:
    for name in errors.__all__:
        cls = getattr(errors, name)
        if not (inspect.isclass(cls) and issubclass(cls, errors.DuckDBOpenAIError)):
            continue
        if issubclass(cls, errors.APIError):
            yield cls(f"{name} message", status=418, type="t", code="c", param="p", request_id="req_1")
        elif issubclass(cls, errors.APIConnectionError):
            yield cls(f"{name} message", base_url="http://127.0.0.1:9/v1")
        elif "cause" in inspect.signature(cls.__init__).parameters:  # RunFetchError (FetchError)
            given = {
                "keys": {"thread_id": "thread_a", "run_id": "run_b"},
                "cause": errors.NotFoundError("not found", status=404),
                "resource": "run_steps",
            }
            parameters = inspect.signature(cls.__init__).parameters
            yield cls("run failed", **{k: v for k, v in given.items() if k in parameters})
        else:
            yield cls(f"{name} message")


@pytest.mark.parametrize("error", list(examples()), ids=lambda e: type(e).__name__)
def test_every_error_round_trips_through_pickle(error: errors.DuckDBOpenAIError) -> None:
    copied = pickle.loads(pickle.dumps(error))
    assert type(copied) is type(error) and str(copied) == str(error) and copied.args == error.args
    assert repr(vars(copied)) == repr(vars(error))
    if isinstance(error, errors.RunFetchError):
        assert (copied.thread_id, copied.run_id, copied.cause.status) == ("thread_a", "run_b", 404)
        assert type(copied.cause) is errors.NotFoundError


def read_missing_step(base_url: str) -> None:
    duckdb_openai.read_run_step(THREAD_ID, "run_missing", "step_missing", api_key=KEY, base_url=base_url)


def test_a_404_in_a_process_pool_reaches_the_parent_as_not_found(emu: Any) -> None:
    context = multiprocessing.get_context("spawn")  # a fresh interpreter, as a pool on any platform
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        future = pool.submit(read_missing_step, emu.base_url)
        with pytest.raises(errors.NotFoundError) as info:
            future.result(timeout=120)
    assert info.value.status == 404 and "run_missing" in str(info.value)
