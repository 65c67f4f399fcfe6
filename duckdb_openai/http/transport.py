"""The wire: one pooled HTTP session per client, answering GETs with (status, headers, body).

aiohttp carries HTTP/1.1 by default: on the 2-core machines this project is measured on, 1,000 list
requests at a concurrency of 32 took 0.6 s with aiohttp, 1.8 s with httpx2 and 5.5 s with httpx (whose
connection pool polls every idle socket on each request). `http2=True` uses httpx with h2, the one
well-kept async client that speaks HTTP/2. Both raise only TransportTimeout, TransportFailure or
TransportTooLarge, so the client above maps errors once, and both get the same guarantees:

- `timeout` bounds the whole request, connection to last byte (httpx alone bounds each read, so a body
  sent a byte a second never timed out);
- the body is read in chunks and the decoded (decompressed) bytes counted, so a response past
  `max_response_bytes` stops being read there, whatever its Content-Length or compression ratio;
- the headers `Settings.headers()` gives, plus each request's own (a bearer token from token_provider=,
  which rotates), go to base_url only, never into the proxy's headers;
- the proxy and the trust settings are those `Settings` resolved (`proxy`, `verify`), never the
  libraries' own reading of the environment, which differed between the two;
- no exception they raise keeps the library's exception (which holds the request and its headers) as
  its context;
- no credential reaches a logger: over HTTP/2, hpack's DEBUG records of our requests' header blocks
  are dropped (it logs header values in clear, `api-key`, or Huffman-coded, `authorization`), and
  httpcore's DEBUG traces, which print every response header (a server may echo the key or token in
  one), have the credentials of the request that emitted them replaced by `***` (`_guard_logs`).
  aiohttp logs no headers.
"""

from __future__ import annotations

import asyncio
import base64
import contextvars
import errno
import logging
import ssl
from collections import deque
from collections.abc import AsyncIterator, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit, urlunsplit

import aiohttp
import certifi
import httpx

from duckdb_openai.config import Settings
from duckdb_openai.errors import ConfigurationError, redact

__all__ = [
    "Reply",
    "Transport",
    "TransportFailure",
    "TransportTimeout",
    "TransportTooLarge",
    "open_transport",
    "ssl_context",
]

#: A connection attempt gets at most this long, even when the request timeout is longer.
CONNECT_TIMEOUT_S = 10.0
#: Loggers that print HTTP/2 header blocks (hpack's encoder and its header table) at DEBUG.
HEADER_LOGGERS = ("hpack.hpack", "hpack.table")
#: httpcore's loggers, whose DEBUG traces print the response headers (and exceptions) of each request.
TRACE_LOGGERS = (
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "httpcore.socks",
)
#: Tokens a transport remembers for redaction: one sent a moment ago may be echoed after it rotated.
TOKENS_REMEMBERED = 8

#: While one of our requests runs, the credentials it may have sent: records emitted then (in its task)
#: are about our request, and hold nothing of these.
_IN_REQUEST: contextvars.ContextVar[_Credentials | None] = contextvars.ContextVar(
    "duckdb_openai_request", default=None
)


class TransportTimeout(Exception):
    """No complete answer within the timeout."""


class TransportFailure(Exception):
    """The connection could not be made, or broke before the answer was complete."""

    def __init__(
        self, message: str, *, refused: bool = False, untrusted: bool = False, connected: bool = False
    ) -> None:
        super().__init__(message)
        #: The connection was made and broke before the answer was complete.
        self.connected = connected
        #: The server's host refused the connection (nothing listens on the port).
        self.refused = refused
        #: The server's TLS certificate did not verify against the trusted CAs.
        self.untrusted = untrusted


class TransportTooLarge(Exception):
    """The decoded body grew past `max_response_bytes`; reading stopped there."""

    def __init__(self, limit: int, status: int) -> None:
        super().__init__(f"more than {limit} bytes")
        self.limit = limit
        self.status = status


@dataclass(frozen=True)
class Reply:
    status: int
    reason: str
    headers: Mapping[str, str]
    body: bytes


class Transport(Protocol):
    async def get(
        self, path: str, params: Sequence[tuple[str, str]], headers: Mapping[str, str] | None = None
    ) -> Reply: ...

    async def aclose(self) -> None: ...


def open_transport(settings: Settings) -> Transport:
    """The transport for `settings`; call it on the event loop that will use it."""
    if settings.http2:
        return _Httpx(settings)
    return _Aiohttp(settings)


def ssl_context(settings: Settings) -> ssl.SSLContext | bool:
    """What both transports trust: False, the caller's context, the configured CA bundle or directory,
    or else the system store plus certifi's bundle (the system store alone lacks roots on some
    installs; certifi alone ignores a corporate CA installed in the system)."""
    if settings.verify is False:
        return False
    if isinstance(settings.verify, ssl.SSLContext):
        return settings.verify
    try:
        if settings.ca_file or settings.ca_dir:
            return ssl.create_default_context(cafile=settings.ca_file, capath=settings.ca_dir)
        context = ssl.create_default_context()
        context.load_verify_locations(certifi.where())
        return context
    except (OSError, ssl.SSLError) as exc:
        message = f"could not load the CA certificates {settings.ca_file or settings.ca_dir!r}: {exc}"
    raise ConfigurationError(message + " (check verify= or SSL_CERT_FILE / SSL_CERT_DIR)")


async def _read_capped(chunks: AsyncIterator[bytes], limit: int, status: int) -> bytes:
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise TransportTooLarge(limit, status)
        parts.append(chunk)
    return b"".join(parts)


def _chain(exc: BaseException) -> list[BaseException]:
    """`exc` and the exceptions behind it (causes, contexts, aiohttp's os_error)."""
    found: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not seen for seen in found):
        found.append(current)
        os_error = getattr(current, "os_error", None) or getattr(current, "certificate_error", None)
        if isinstance(os_error, BaseException) and all(os_error is not seen for seen in found):
            found.append(os_error)
        current = current.__cause__ or current.__context__
    return found


def _failure(exc: BaseException) -> TransportFailure:
    chain = _chain(exc)
    refused = any(
        isinstance(e, ConnectionRefusedError) or (isinstance(e, OSError) and e.errno == errno.ECONNREFUSED)
        for e in chain
    )
    untrusted = any(isinstance(e, ssl.SSLCertVerificationError) for e in chain)
    connecting = isinstance(exc, (aiohttp.ClientConnectorError, httpx.ConnectError, httpx.ProxyError))
    return TransportFailure(
        str(exc) or type(exc).__name__, refused=refused, untrusted=untrusted, connected=not connecting
    )


class _Credentials:
    """What one transport's requests may carry that no log may show: the key and proxy credentials of
    its settings, and the bearer tokens it sent lately (they rotate)."""

    def __init__(self, settings: Settings) -> None:
        self._static = settings.secrets()
        self._tokens: deque[str] = deque(maxlen=TOKENS_REMEMBERED)

    def sent(self, headers: Mapping[str, str] | None) -> None:
        """Note the token of a request's own Authorization header."""
        value = (headers or {}).get("Authorization", "")
        token = value.removeprefix("Bearer ")
        if token and token not in self._tokens:
            self._tokens.append(token)

    def redact(self, text: str) -> str:
        for secret in (*self._static, *self._tokens):
            # httpcore prints header values as bytes reprs, where a quote or backslash is escaped.
            text = redact(text, {secret, repr(secret.encode())[2:-1], repr(secret)[1:-1]})
        return text


class _HideOwnHeaderBlocks(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return _IN_REQUEST.get() is None


class _RedactOwnTraces(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        credentials = _IN_REQUEST.get()
        if credentials is not None:
            text = record.getMessage()
            redacted = credentials.redact(text)
            if redacted != text:
                record.msg, record.args = redacted, None
        return True


_hiding = _HideOwnHeaderBlocks()
_redacting = _RedactOwnTraces()


def _guard_logs() -> None:
    """Install, once per process, the filters that keep credentials out of the HTTP/2 libraries' DEBUG
    logs: one on each of hpack's two loggers, dropping the records of our requests' header blocks, and
    one on each of httpcore's trace loggers, redacting the records of our requests.

    This is process-wide state, so it is installed only where the user opted in: by the first client
    made with `http2=True` (the httpx transport). The filters act only on records emitted inside one of
    our requests (`_IN_REQUEST`); other code's HTTP/2 logs pass unchanged."""
    for names, guard in ((HEADER_LOGGERS, _hiding), (TRACE_LOGGERS, _redacting)):
        for name in names:
            logger = logging.getLogger(name)
            if guard not in logger.filters:
                logger.addFilter(guard)


class _Aiohttp:
    def __init__(self, settings: Settings) -> None:
        self._base = settings.base_url.rstrip("/") + "/"
        self._params = list(settings.base_params().items())
        self._timeout = settings.timeout
        self._limit = settings.max_response_bytes
        self._proxy: str | None = None
        # Sent with each request, not as the session's default headers: aiohttp copies those into the
        # proxy's headers, so a CONNECT would carry the key to the proxy as Proxy-Authorization.
        self._headers = settings.headers()
        self._proxy_headers: dict[str, str] | None = None
        if settings.proxy is not None:
            parts = urlsplit(settings.proxy.reveal())
            netloc = f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)
            self._proxy = urlunsplit((parts.scheme, netloc, parts.path, "", ""))
            if parts.username is not None:
                # As httpx does from the proxy URL's user info (aiohttp's proxy_auth is deprecated).
                pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
                credentials = {"Proxy-Authorization": "Basic " + base64.b64encode(pair).decode()}
                # An https target is tunnelled (the CONNECT carries them); an http one is sent to the
                # proxy whole, so the request itself carries them.
                if self._base.startswith("https:"):
                    self._proxy_headers = credentials
                else:
                    self._headers.update(credentials)
        tls = ssl_context(settings) if self._base.startswith("https:") else True
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=settings.max_concurrency, limit_per_host=0, ssl=tls),
            # The whole request is bounded by wait_for in get(); aiohttp bounds the connection attempt.
            timeout=aiohttp.ClientTimeout(total=None, connect=min(settings.timeout, CONNECT_TIMEOUT_S)),
            trust_env=False,
            auto_decompress=True,
            raise_for_status=False,
        )

    async def _get(
        self, path: str, params: Sequence[tuple[str, str]], headers: Mapping[str, str] | None
    ) -> Reply:
        async with self._session.get(
            self._base + path,
            params=[*self._params, *params],
            headers={**self._headers, **headers} if headers else self._headers,
            allow_redirects=False,
            proxy=self._proxy,
            proxy_headers=self._proxy_headers,
        ) as response:
            # aiohttp decompresses a chunk at a time (at most its chunk size per step), so counting the
            # chunks bounds memory even for a gzip bomb.
            body = await _read_capped(response.content.iter_any(), self._limit, response.status)
            return Reply(response.status, response.reason or "", response.headers, body)

    async def get(
        self, path: str, params: Sequence[tuple[str, str]], headers: Mapping[str, str] | None = None
    ) -> Reply:
        return await _bounded(
            self._get(path, params, headers),
            self._timeout,
            timeouts=(TimeoutError, aiohttp.ServerTimeoutError),
            failures=(aiohttp.ClientError,),
        )

    async def aclose(self) -> None:
        await self._session.close()


class _Httpx:
    def __init__(self, settings: Settings) -> None:
        _guard_logs()
        self._credentials = _Credentials(settings)
        self._timeout = settings.timeout
        self._limit = settings.max_response_bytes
        base_url = settings.base_url.rstrip("/") + "/"
        self._client = httpx.AsyncClient(
            base_url=base_url,
            headers=settings.headers(),
            params=settings.base_params(),
            timeout=httpx.Timeout(settings.timeout, connect=min(settings.timeout, CONNECT_TIMEOUT_S)),
            limits=httpx.Limits(
                max_connections=settings.max_concurrency,
                max_keepalive_connections=settings.max_concurrency,
            ),
            http2=True,
            follow_redirects=False,
            proxy=settings.proxy.reveal() if settings.proxy is not None else None,
            verify=ssl_context(settings) if base_url.startswith("https:") else True,
            trust_env=False,
        )

    async def _get(
        self, path: str, params: Sequence[tuple[str, str]], headers: Mapping[str, str] | None
    ) -> Reply:
        self._credentials.sent(headers)
        token = _IN_REQUEST.set(self._credentials)
        try:
            async with self._client.stream("GET", path, params=list(params), headers=headers) as response:
                # httpx bounds each read with its timeout; wait_for in get() bounds the whole request.
                body = await _read_capped(response.aiter_bytes(), self._limit, response.status_code)
                return Reply(response.status_code, response.reason_phrase, response.headers, body)
        finally:
            _IN_REQUEST.reset(token)

    async def get(
        self, path: str, params: Sequence[tuple[str, str]], headers: Mapping[str, str] | None = None
    ) -> Reply:
        return await _bounded(
            self._get(path, params, headers),
            self._timeout,
            timeouts=(TimeoutError, httpx.TimeoutException),
            failures=(httpx.TransportError,),
        )

    async def aclose(self) -> None:
        await self._client.aclose()


async def _bounded(
    request: Coroutine[Any, Any, Reply],
    timeout: float,
    *,
    timeouts: tuple[type[BaseException], ...],
    failures: tuple[type[BaseException], ...],
) -> Reply:
    """`request` within `timeout` for the whole of it, its library's errors as TransportTimeout or
    TransportFailure. The failure is raised after the except block, so it does not keep the library's
    exception (its request, headers included) as __context__."""
    failure: Exception
    try:
        return await asyncio.wait_for(request, timeout)
    except timeouts as exc:
        failure = TransportTimeout(str(exc))
    except failures as exc:
        failure = _failure(exc)
    raise failure
