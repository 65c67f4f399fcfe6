"""A token bucket for requests per second, and OpenAI's ``x-ratelimit-*`` headers.

The bucket holds one second of budget (burst = ``rate``) and refills continuously::

    >>> bucket = TokenBucket(rate=2.0, clock=lambda: 0.0)
    >>> [bucket.take().allowed for _ in range(3)]
    [True, True, False]
    >>> format_duration(0.12), format_duration(1.0), format_duration(360.0)
    ('120ms', '1s', '6m0s')
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["UNLIMITED_RATE", "Decision", "TokenBucket", "format_duration"]

#: Requests per second allowed when no rate limit is configured: high enough never to
#: be reached on loopback, low enough that the headers look like a real budget.
UNLIMITED_RATE = 10_000.0


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: float
    retry_after_ms: int

    def headers(self) -> dict[str, str]:
        return {
            "x-ratelimit-limit-requests": str(self.limit),
            "x-ratelimit-remaining-requests": str(self.remaining),
            "x-ratelimit-reset-requests": format_duration(self.reset_seconds),
        }


class TokenBucket:
    """Requests-per-second budget. Not thread-safe: it lives on the server's event loop."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self.rate = rate
        self.capacity = max(1.0, rate)
        self._clock = clock
        self._tokens = self.capacity
        self._stamp = clock()

    def reset(self) -> None:
        self._tokens = self.capacity
        self._stamp = self._clock()

    def take(self) -> Decision:
        """Spend one token if there is one; either way describe the budget after it."""
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        allowed = self._tokens >= 1.0
        if allowed:
            self._tokens -= 1.0
        retry_after_ms = 0 if allowed else max(1, math.ceil((1.0 - self._tokens) / self.rate * 1000))
        return Decision(
            allowed=allowed,
            limit=int(self.capacity),
            remaining=int(self._tokens),
            reset_seconds=(self.capacity - self._tokens) / self.rate,
            retry_after_ms=retry_after_ms,
        )

    def exhausted(self, retry_after_ms: int) -> Decision:
        """The budget as a forced (scripted) 429 reports it: nothing left until ``retry_after_ms``."""
        return Decision(
            allowed=False,
            limit=int(self.capacity),
            remaining=0,
            reset_seconds=retry_after_ms / 1000,
            retry_after_ms=retry_after_ms,
        )


def format_duration(seconds: float) -> str:
    """OpenAI's duration format: ``"17ms"``, ``"1s"``, ``"2.5s"``, ``"6m0s"``, ``"1h2m3s"``."""
    if seconds < 1.0:
        return f"{math.ceil(seconds * 1000)}ms"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{round(secs, 3):g}s"
    if hours:
        return f"{int(hours)}h{int(minutes)}m{text}"
    if minutes:
        return f"{int(minutes)}m{text}"
    return text
