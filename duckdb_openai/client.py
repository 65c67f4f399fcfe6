"""HTTP for one set of Settings: a pooled transport, the shared Pacer, retries, error mapping.

The retry loop is tenacity's; what to retry and how long to wait are `retry.py`'s pure functions. Every
answer that is not 2xx becomes an error of `errors.py`, with the API's own message; the key never enters
a message (the API masks it, and `_redact` removes it should a server echo it back).
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from duckdb_openai.config import Settings
from duckdb_openai.errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    DuckDBOpenAIError,
    NotFoundError,
    api_error_for_status,
)
from duckdb_openai.ratelimit import Pacer
from duckdb_openai.retry import retry_delay, should_retry
from duckdb_openai.transport import Reply, TransportFailure, TransportTimeout, open_transport

__all__ = ["ApiClient", "RequestStats"]


@dataclass
class RequestStats:
    """Counters of one client, read by the progress bar and by tests."""

    requests: int = 0
    retries: int = 0
    throttled: int = 0


class _Failure(Exception):
    """An attempt's failure, carrying what the retry policy needs; unwrapped before it leaves the client."""

    def __init__(self, error: DuckDBOpenAIError, status: int | None, headers: Mapping[str, str]) -> None:
        super().__init__(str(error))
        self.error = error
        self.status = status
        self.headers = headers


class ApiClient:
    """Sends GET requests for one Settings; create and use it on one event loop."""

    def __init__(self, settings: Settings, *, rng: random.Random | None = None) -> None:
        self.settings = settings
        self.stats = RequestStats()
        self.pacer = Pacer(
            concurrency=settings.max_concurrency, requests_per_second=settings.requests_per_second
        )
        self._slots = asyncio.Semaphore(settings.max_concurrency)
        self._rng = rng or random.Random()
        self._http = open_transport(settings)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def get(self, path: str, params: Sequence[tuple[str, str]] = ()) -> bytes:
        """The body of a 2xx answer to GET `path`, retrying what `should_retry` allows."""
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.settings.max_retries + 1),
            wait=self._wait,
            retry=retry_if_exception(
                lambda exc: isinstance(exc, _Failure) and should_retry(exc.status, exc.headers)
            ),
            before_sleep=self._before_sleep,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._attempt(path, params)
        except _Failure as failure:
            raise failure.error from None
        raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover

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

    async def _attempt(self, path: str, params: Sequence[tuple[str, str]]) -> bytes:
        # Pace inside the slot: a task waiting for a slot must not have passed the pacer before a 429 or
        # a low budget set the pace, or it would be sent unpaced when the slot frees up.
        async with self._slots:
            await self.pacer.acquire()
            self.stats.requests += 1
            try:
                reply = await self._http.get(path, params)
            except TransportTimeout:
                error: DuckDBOpenAIError = APITimeoutError(
                    f"no answer from {self.settings.base_url} within {self.settings.timeout:g}s "
                    "(raise timeout= if the server is slow)",
                    base_url=self.settings.base_url,
                )
                raise _Failure(error, None, {}) from None
            except TransportFailure as exc:
                error = APIConnectionError(
                    f"could not reach {self.settings.base_url}: {self._redact(str(exc))} "
                    "(check base_url / OPENAI_BASE_URL and that the server is up)",
                    base_url=self.settings.base_url,
                )
                raise _Failure(error, None, {}) from None
        self.pacer.observe(reply.status, reply.headers)
        if reply.status == 429:
            self.stats.throttled += 1
        if 200 <= reply.status < 300:
            return reply.body
        raise _Failure(self._api_error(reply), reply.status, reply.headers)

    def _api_error(self, reply: Reply) -> APIError:
        status = reply.status
        body: Any = None
        try:
            body = json.loads(reply.body)
        except ValueError:
            body = None
        detail = body.get("error") if isinstance(body, dict) else None
        if not isinstance(detail, dict):
            detail = {}
        text = reply.body[:300].decode("utf-8", "replace")
        api_message = detail.get("message") or text or reply.reason or f"HTTP {status}"
        api_message = self._redact(str(api_message))
        code = detail.get("code") if isinstance(detail.get("code"), str) else None
        cls = api_error_for_status(status)
        label = f"{status} {code}" if code else str(status)
        if cls is AuthenticationError:
            hint = self.settings.key_hint()
            message = f"the API key was rejected ({label}): {api_message} Set the key with {hint}."
        elif cls is NotFoundError:
            message = f"not found ({label}): {api_message}"
        else:
            message = f"the API answered {label}: {api_message}"
        return cls(
            message,
            status=status,
            type=detail.get("type") if isinstance(detail.get("type"), str) else None,
            code=code,
            param=detail.get("param") if isinstance(detail.get("param"), str) else None,
            request_id=reply.headers.get("x-request-id"),
        )

    def _redact(self, text: str) -> str:
        return text.replace(self.settings.api_key.reveal(), "***")
