"""HTTP for one set of Settings: a pooled transport, the shared Pacer, retries, error mapping.

The retry loop is tenacity's; what to retry and how long to wait are `retry.py`'s pure functions. Every
answer that is not 2xx becomes an error of `errors.py`, with the API's own message. Policies decided here:

- Waits: a server may ask for a wait (Retry-After, retry-after-ms) of up to `max_wait` seconds, which is
  sat out; a longer one fails at once with the status's error (and the requests held back by a 429's:
  RateLimitError), saying how long was asked and that `max_wait=` raises the cap. The x-ratelimit
  headers only pace (`ratelimit.py`), never fail a request.
- A refused connection (nothing listens at base_url) is retried at most REFUSED_RETRIES times, quickly;
  a certificate that does not verify is not retried (its message says how to trust a CA); connection
  failures and timeouts log a warning (logger `duckdb_openai`, at most once a minute per client) naming
  base_url and how often it will retry, so a long backoff is never silent.
- The key never leaves the client: a 2xx body holding it (a server echoing the request) has it replaced
  by `***` before anything decodes it, and every text taken from an error response passes whole, every
  field of it, through `redact` before it is cut. No raised error keeps an exception that held the
  request as its context.
- Bearer tokens from `token_provider=` (Microsoft Entra ID): the provider is asked for the first request,
  then again when its token is TOKEN_REUSE_S old (the next request waits for the answer; one call at a
  time per client), and at once when a request is answered 401: that request is then sent once more
  with the provider's new answer, and a second 401 is the AuthenticationError. A sync provider runs in
  a daemon thread of its own (azure-identity may do network I/O), so one that never returns fails its
  request at `timeout` and does not keep the process alive, and is waited for again rather than called
  a second time; an async one runs on the client's loop. Every
  token it gives is redacted like the key (the last TOKENS_REMEMBERED of them, as tokens rotate).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import email.utils
import inspect
import json
import logging
import math
import random
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from tenacity import AsyncRetrying, RetryCallState, stop_after_attempt

from duckdb_openai.config import DEFAULT_BASE_URL, Settings, TokenProvider, check_credential
from duckdb_openai.errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    ConfigurationError,
    DuckDBOpenAIError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseFormatError,
    api_error_for_status,
    redact,
)
from duckdb_openai.http.ratelimit import Pacer, WaitTooLong
from duckdb_openai.http.retry import retry_after, retry_delay, should_retry
from duckdb_openai.http.transport import (
    Reply,
    TransportFailure,
    TransportTimeout,
    TransportTooLarge,
    open_transport,
)
from duckdb_openai.resources.base import PLAIN, Family

__all__ = ["REFUSED_RETRIES", "TOKEN_REUSE_S", "RequestStats", "Requester"]

logger = logging.getLogger("duckdb_openai")

#: A refused connection means nothing listens at base_url; a restarting server is back within a couple
#: of quick retries, anything else wants a human, not max_retries rounds of backoff.
REFUSED_RETRIES = 2
#: Connection failures log a warning before their retries at most this often (seconds).
WARNING_INTERVAL = 60.0
#: How much of an error body that is not the API's JSON a message quotes.
PREVIEW_CHARS = 300
#: Seconds a token from token_provider= is used before the provider is asked again (a 401 asks at once).
#: azure-identity's provider renews its cached token 5 minutes before it expires, so a token is never
#: sent expired, and a fan-out does not hop to a worker thread for every request.
TOKEN_REUSE_S = 30.0
#: Tokens remembered for redaction: a server may still echo one that was replaced a moment ago.
TOKENS_REMEMBERED = 8
#: The shortest key whose echo in a 2xx body is replaced by `***` (see `_without_credentials`).
MIN_REDACTED_BODY_SECRET = 8
#: How much of a token provider's error message a ConfigurationError quotes.
PROVIDER_MESSAGE_CHARS = 500

E = TypeVar("E", bound=DuckDBOpenAIError)


def _seconds(value: float) -> str:
    """A wait for a message: whole seconds from 10 s up, else to the millisecond."""
    return f"{value:.0f}" if value >= 10 else f"{round(value, 3):g}"


def _reworded(error: E, message: str) -> E:
    """A copy of `error` with another message (and every attribute kept)."""
    copied = copy.copy(error)
    copied.args = (message,)
    if isinstance(copied, APIError):
        copied.message = message
    return copied


@dataclass
class RequestStats:
    """Counters of one client, read by the progress bar and by tests."""

    requests: int = 0
    retries: int = 0
    throttled: int = 0


class _Failure(Exception):
    """An attempt's failure, carrying what the retry policy needs; unwrapped before it leaves the client."""

    def __init__(
        self,
        error: DuckDBOpenAIError,
        status: int | None,
        headers: Mapping[str, str],
        *,
        refused: bool = False,
        permanent: bool = False,
    ) -> None:
        super().__init__(str(error))
        self.error = error
        self.status = status
        self.headers = headers
        self.refused = refused
        #: No retry can help (a certificate that does not verify).
        self.permanent = permanent


class _Tokens:
    """The bearer token of token_provider=: asked for when missing, older than TOKEN_REUSE_S, or
    rejected; one call at a time, so a fan-out's first 32 requests (or 32 answered 401 together) make
    one call, not 32. A provider that failed is not asked again for TOKEN_REUSE_S either: requests
    meanwhile fail with its error (with on_error='skip', a credential chain that takes seconds to fail
    must not be tried once per key)."""

    def __init__(self, provider: TokenProvider, timeout: float, reuse: float) -> None:
        self._provider = provider
        self._timeout = timeout
        self._reuse = reuse
        self._lock = asyncio.Lock()
        self._token: str | None = None
        self._failure: ConfigurationError | None = None
        self._asked_at = -math.inf
        #: The provider's call in its thread, while it runs (and after: its outcome).
        self._running: asyncio.Future[object] | None = None
        #: Bumped by each call; a 401 renews only if no other request renewed since it was sent.
        self.generation = 0
        #: The latest tokens, for redaction.
        self.recent: deque[str] = deque(maxlen=TOKENS_REMEMBERED)

    def _stale(self) -> bool:
        return time.monotonic() - self._asked_at >= self._reuse

    async def current(self) -> tuple[str, int]:
        """The token to send and its generation."""
        if self._stale():
            async with self._lock:
                if self._stale():
                    await self._ask()
        if self._token is None:
            assert self._failure is not None
            raise copy.copy(self._failure)
        return self._token, self.generation

    async def renew(self, rejected: int) -> None:
        """Ask again after the token of generation `rejected` was answered 401."""
        async with self._lock:
            if self.generation == rejected:
                await self._ask()
        if self._token is None:
            assert self._failure is not None
            raise copy.copy(self._failure)

    async def _ask(self) -> None:
        failure: ConfigurationError | None = None
        try:
            token = _checked_token(await asyncio.wait_for(self._call(), self._timeout))
        except TimeoutError:
            failure = ConfigurationError(
                f"token_provider= gave no token within timeout={self._timeout:g}s; check that its "
                "credential can reach its identity service"
            )
        except ConfigurationError as exc:  # an answer that is not a usable token
            failure = exc
        except Exception as exc:
            text = redact(str(exc), self.recent)[:PROVIDER_MESSAGE_CHARS]
            failure = ConfigurationError(
                f"token_provider= raised {type(exc).__name__}: {text} (check the provider's credential: "
                "for azure-identity's DefaultAzureCredential, `az login` or the managed identity)"
            )
        else:
            logger.debug("token_provider= gave %s token", "the same" if token == self._token else "a new")
            if token not in self.recent:
                self.recent.append(token)
        # Kept as the answer until the next call; raised as copies, which hold no traceback or context.
        self._token, self._failure = (None, failure) if failure is not None else (token, None)
        self._asked_at = time.monotonic()
        self.generation += 1

    async def _call(self) -> object:
        provider = self._provider
        if inspect.iscoroutinefunction(provider) or inspect.iscoroutinefunction(
            getattr(provider, "__call__", None)  # noqa: B004 - an object whose __call__ is async
        ):
            return await provider()  # type: ignore[misc]
        # Off the loop: azure-identity may do network I/O to renew, and the loop serves every request.
        # A call still running (it outlived the timeout) is waited for again, not doubled: one stuck
        # provider holds one thread, however often the client asks.
        if self._running is None or self._running.done():
            self._running = _in_daemon_thread(provider)
        got = await asyncio.shield(self._running)
        return await got if inspect.isawaitable(got) else got


def _in_daemon_thread(call: TokenProvider) -> asyncio.Future[object]:
    """`call()` in a thread of its own, its result (or exception) as a future of the running loop.

    A daemon thread, not asyncio.to_thread: the default executor's threads are joined at interpreter
    exit, so a provider that never returns (a credential waiting on an identity service that does not
    answer) kept the process alive after its query had failed on time."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[object] = loop.create_future()

    def settle(outcome: object, error: BaseException | None) -> None:
        if not future.done():
            future.set_result(outcome) if error is None else future.set_exception(error)

    def run() -> None:
        outcome: object = None
        error: BaseException | None = None
        try:
            outcome = call()
        except BaseException as exc:  # handed to the awaiting task, as asyncio.to_thread would
            error = exc
        # The client may have closed its loop meanwhile: then nobody waits for this answer.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(settle, outcome, error)

    threading.Thread(target=run, name="duckdb-openai-token", daemon=True).start()
    return future


def _checked_token(got: object) -> str:
    """The provider's answer as a header-safe token, or a ConfigurationError that never quotes it."""
    if not isinstance(got, str):
        hint = (
            "; an azure.core AccessToken? wrap the credential with azure.identity's "
            "get_bearer_token_provider(credential, scope)"
            if hasattr(got, "token")
            else ""
        )
        raise ConfigurationError(f"token_provider= returned a {type(got).__name__}, not a string{hint}")
    token = str.__str__(got)  # a str subclass could change how it prints
    if not token.strip():
        raise ConfigurationError("token_provider= returned an empty token; check its credential")
    if token.lower().startswith("bearer "):
        raise ConfigurationError(
            "token_provider= returned 'Bearer <token>'; return the token alone (the client adds 'Bearer ')"
        )
    check_credential(token, "the token from token_provider=")
    return token


@dataclass
class _Sent:
    """What one `get` last sent: the generation of its token."""

    generation: int = -1


class Requester:
    """Sends GET requests for one Settings; create and use it on one event loop."""

    def __init__(self, settings: Settings, *, rng: random.Random | None = None) -> None:
        self.settings = settings
        self.stats = RequestStats()
        self.pacer = Pacer(
            concurrency=settings.max_concurrency,
            requests_per_second=settings.requests_per_second,
            max_wait=settings.max_wait,
        )
        self._slots = asyncio.Semaphore(settings.max_concurrency)
        self._rng = rng or random.Random()
        self._static_secrets = settings.secrets()
        self._key = None if settings.api_key is None else settings.api_key.reveal().encode()
        self._admin = None if settings.admin_key is None else settings.admin_key.reveal().encode()
        #: Each credential's headers, made once (the admin key's only when one was given).
        self._credentials = {
            "api_key": settings.credential_headers("api_key"),
            "admin_key": settings.credential_headers("admin_key") if settings.admin_key is not None else {},
        }
        provider = settings.token_provider
        self._tokens = (
            None if provider is None else _Tokens(provider.reveal(), settings.timeout, TOKEN_REUSE_S)
        )
        self._quiet_until = 0.0
        #: The server's clock minus ours, from the last 2xx answer's Date header (`server_time`).
        self.clock_offset = 0.0
        self._http = open_transport(settings)

    @property
    def _secrets(self) -> list[str]:
        return self._static_secrets if self._tokens is None else [*self._static_secrets, *self._tokens.recent]

    async def aclose(self) -> None:
        await self._http.aclose()

    async def token(self) -> str | None:
        """The bearer token a request sent now would carry (asking token_provider= only when a request
        would), or None with an API key. The cache reads from it whose rows it may serve."""
        if self._tokens is None:
            return None
        return (await self._tokens.current())[0]

    async def get(self, path: str, params: Sequence[tuple[str, str]] = (), family: Family = PLAIN) -> bytes:
        """The body of a 2xx answer to GET `path`, retrying what `should_retry` allows, and once more
        with a new token after a 401 when token_provider= gives them. `family` (the resource's
        declaration) says which headers and which credential the request carries, and what its errors
        add."""
        self.settings.check_credential(family.credential)
        if self._tokens is None or family.credential != "api_key":
            return await self._get(path, params, None, family)
        sent = _Sent()
        try:
            return await self._get(path, params, sent, family)
        except AuthenticationError:
            pass
        # Outside the except block, so a second error does not carry the first as its context.
        await self._tokens.renew(sent.generation)
        return await self._get(path, params, sent, family)

    async def _get(
        self, path: str, params: Sequence[tuple[str, str]], sent: _Sent | None, family: Family
    ) -> bytes:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.settings.max_retries + 1),
            wait=self._wait,
            retry=self._retry,
            before_sleep=self._before_sleep,
            reraise=True,
        )
        error: DuckDBOpenAIError
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._attempt(path, params, sent, family)
        except _Failure as caught:
            error = caught.error
        except DuckDBOpenAIError as caught:
            error = caught
        else:  # pragma: no cover
            raise AssertionError("unreachable: tenacity either returns or raises")
        # This is where errors leave the client: nothing the transport or tenacity saw stays attached.
        error.__context__ = error.__cause__ = None
        raise error

    def _retry(self, state: RetryCallState) -> bool:
        failure = state.outcome.exception() if state.outcome else None
        if not isinstance(failure, _Failure) or failure.permanent:
            return False
        if not should_retry(failure.status, failure.headers):
            return False
        if failure.refused and state.attempt_number > REFUSED_RETRIES:
            return False
        asked = retry_after(failure.headers)
        if asked is not None and asked > self.settings.max_wait:
            failure.error = _reworded(failure.error, f"{failure.error}; {self._too_long(asked, failure)}")
            return False
        return True

    def _too_long(self, asked: float, failure: _Failure) -> str:
        header = "retry-after-ms" if "retry-after-ms" in failure.headers else "retry-after"
        return (
            f"the server asked to wait {_seconds(asked)}s before retrying ({header}: "
            f"{failure.headers[header]}), longer than max_wait={self.settings.max_wait:g}s; pass "
            f"max_wait={math.ceil(asked)} (or more) to wait that long, or try again later"
        )

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        headers = exc.headers if isinstance(exc, _Failure) else {}
        return retry_delay(
            state.attempt_number - 1,
            headers,
            initial=self.settings.retry_initial_delay,
            maximum=self.settings.retry_max_delay,
            rng=self._rng,
        )

    def _before_sleep(self, state: RetryCallState) -> None:
        self.stats.retries += 1
        failure = state.outcome.exception() if state.outcome else None
        now = time.monotonic()
        if isinstance(failure, _Failure) and failure.status is None and now >= self._quiet_until:
            # Once a minute at most: a bulk fan-out meeting the odd dropped connection must not flood
            # stderr, while a server that is down is never silent for long.
            self._quiet_until = now + WARNING_INTERVAL
            if failure.refused:
                plan = f"the connection was refused; retrying {REFUSED_RETRIES} times quickly, then giving up"
            else:
                plan = f"retrying up to {self.settings.max_retries} times (max_retries=) before giving up"
            logger.warning("%s; %s", failure.error, plan)

    async def _auth(self, sent: _Sent | None, family: Family) -> dict[str, str]:
        """The request's own headers: its family's, and its credential (the admin key, the key, or a
        token from token_provider=)."""
        headers = dict(family.headers)
        if self._tokens is not None and sent is not None:
            token, sent.generation = await self._tokens.current()
            headers["Authorization"] = f"Bearer {token}"
        else:
            headers.update(self._credentials[family.credential])
        return headers

    async def _attempt(
        self, path: str, params: Sequence[tuple[str, str]], sent: _Sent | None, family: Family
    ) -> bytes:
        # Pace inside the slot: a task waiting for a slot must not have passed the pacer before a 429 or
        # a low budget set the pace, or it would be sent unpaced when the slot frees up.
        failure: _Failure | DuckDBOpenAIError
        async with self._slots:
            try:
                await self.pacer.acquire()
            except WaitTooLong as wait:
                failure = self._budget_error(wait)
            else:
                auth = await self._auth(sent, family)
                self.stats.requests += 1
                try:
                    reply = await self._http.get(path, params, auth)
                except TransportTimeout:
                    failure = _Failure(
                        APITimeoutError(
                            f"no complete answer from {self.settings.base_url} within "
                            f"{self.settings.timeout:g}s (raise timeout= if the server is slow)",
                            base_url=self.settings.base_url,
                        ),
                        None,
                        {},
                    )
                except TransportFailure as exc:
                    if exc.untrusted:
                        hint = (
                            "the server's certificate is not trusted: if a private or corporate CA signed "
                            "it, pass verify='/path/to/ca.pem' or set SSL_CERT_FILE"
                        )
                    else:
                        hint = "check base_url / OPENAI_BASE_URL, the proxy, and that the server is up"
                    what = "the connection to {} broke" if exc.connected else "could not reach {}"
                    failure = _Failure(
                        APIConnectionError(
                            f"{what.format(self.settings.base_url)}{self._via()}: "
                            f"{self._redact(str(exc))} ({hint})",
                            base_url=self.settings.base_url,
                        ),
                        None,
                        {},
                        refused=exc.refused,
                        permanent=exc.untrusted,
                    )
                except TransportTooLarge as exc:
                    failure = ResponseFormatError(
                        f"the answer from {self.settings.base_url} (HTTP {exc.status}) holds more than "
                        f"max_response_bytes={exc.limit} bytes once decompressed; reading stopped there. "
                        "Pass a larger max_response_bytes= if the server really sends pages that large"
                    )
                else:
                    self.pacer.observe(reply.status, reply.headers)
                    if reply.status == 429:
                        self.stats.throttled += 1
                    if 200 <= reply.status < 300:
                        self._observe_clock(reply.headers)
                        # A server echoing the request must not hand the key to the decoder, whose
                        # errors quote the body and whose rows could hold it.
                        return self._without_credentials(reply.body)
                    failure = _Failure(self._api_error(reply, family), reply.status, reply.headers)
        raise failure

    def _observe_clock(self, headers: Mapping[str, str]) -> None:
        date = headers.get("date")
        if not date:
            return
        try:
            server = email.utils.parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            return
        self.clock_offset = server - time.time()

    def server_time(self) -> float:
        """The server's clock now, in seconds since the epoch: the local clock, corrected by the offset
        the last answer's `Date` header showed (to the second). What "has this time bucket ended" is
        judged by: the server's usage for the bucket grows until its own clock passes the bucket's end."""
        return time.time() + self.clock_offset

    def _without_credentials(self, body: bytes) -> bytes:
        # A secret of a few characters (no real key or token is) would also match ordinary data (a key
        # "sk" inside every id starting "sk"): the rows would be silently changed, so only longer ones go.
        for secret in (self._key, self._admin):
            if secret is not None and len(secret) >= MIN_REDACTED_BODY_SECRET and secret in body:
                body = body.replace(secret, b"***")
        for token in self._tokens.recent if self._tokens is not None else ():
            if token.encode() in body:
                body = body.replace(token.encode(), b"***")
        return body

    def _via(self) -> str:
        proxy = self.settings.proxy_display()
        return f" (through the proxy {proxy})" if proxy else ""

    def _budget_error(self, wait: WaitTooLong) -> RateLimitError:
        return RateLimitError(
            f"{wait.reason}: the next request would wait {_seconds(wait.seconds)}s, longer than "
            f"max_wait={self.settings.max_wait:g}s; pass max_wait={math.ceil(wait.seconds)} (or more) to "
            "wait that long, or try again later",
            status=429,
        )

    def _api_error(self, reply: Reply, family: Family) -> APIError:
        status = reply.status
        # Redact the whole body before any of it is cut or parsed: a cut could leave a prefix of the key.
        text = self._redact(reply.body.decode("utf-8", "replace"))
        body: Any = None
        try:
            body = json.loads(text)
        except (ValueError, RecursionError):
            body = None
        detail = body.get("error") if isinstance(body, dict) else None
        cls = api_error_for_status(status)
        request_id = self._field(reply.headers.get("x-request-id"))
        if not isinstance(detail, dict):
            return cls(self._not_an_api_error(reply, text, family), status=status, request_id=request_id)
        api_message = self._field(detail.get("message")) or reply.reason or f"HTTP {status}"
        code = self._field(detail.get("code"))
        label = f"{status} {code}" if code else str(status)
        if cls in (AuthenticationError, PermissionDeniedError) and family.credential == "admin_key":
            hint = self.settings.key_hint("admin_key")
            verb = "rejected" if cls is AuthenticationError else "refused"
            message = (
                f"the admin key was {verb} ({label}): {api_message} Set it with {hint}; "
                f"{family.auth_advice or 'these endpoints need an admin key'}."
            )
        elif cls is AuthenticationError and self._tokens is not None:
            message = (
                f"the token from token_provider= was rejected ({label}), also after asking it for a new "
                f"one: {api_message} Check that its credential may use this resource (on Azure: the scope "
                "https://cognitiveservices.azure.com/.default and a role such as Cognitive Services OpenAI "
                "User)."
            )
        elif cls is AuthenticationError:
            hint = self.settings.key_hint()
            message = f"the API key was rejected ({label}): {api_message} Set the key with {hint}."
        elif cls is NotFoundError and self._retired(family):
            message = f"not found ({label}): {api_message}; {self._retired(family)}"
        elif cls is NotFoundError:
            message = f"not found ({label}): {api_message}"
        else:
            message = f"the API answered {label}: {api_message}"
        return cls(
            message,
            status=status,
            type=self._field(detail.get("type")),
            code=code,
            param=self._field(detail.get("param")),
            request_id=request_id,
        )

    def _not_an_api_error(self, reply: Reply, text: str, family: Family) -> str:
        """The message for an error status whose body is not the API's JSON error object."""
        content_type = reply.headers.get("content-type", "").lower()
        stripped = text.lstrip()
        if "html" in content_type or stripped[:1] == "<":
            what = "an HTML page"
        elif not stripped:
            what = "an empty body"
        else:
            cut = stripped[:PREVIEW_CHARS] + ("..." if len(stripped) > PREVIEW_CHARS else "")
            kind = (
                "a JSON body without an error object" if stripped[:1] in "{[" else "a body that is not JSON"
            )
            what = f"{kind} ({cut!r})"
        base = self.settings.base_url
        message = f"the server at {base} answered {reply.status} {reply.reason}".rstrip()
        message += f" with {what}, not an OpenAI API error"
        if reply.status == 404 and self._retired(family):
            return f"{message}: {self._retired(family)}"
        if reply.status >= 500:
            return f"{message} (a gateway or proxy in between may have failed)"
        return f"{message}: check base_url (or OPENAI_BASE_URL){self._via() and ' and the proxy'}"

    def _retired(self, family: Family) -> str | None:
        """What a 404 adds when the family's API was shut down at the default base URL."""
        if self.settings.base_url == DEFAULT_BASE_URL:
            return family.retired_at_default
        return None

    def _field(self, value: object) -> str | None:
        return self._redact(value) if isinstance(value, str) else None

    def _redact(self, text: str) -> str:
        return redact(text, self._secrets)
