"""One request budget shared by every worker of a client.

Three brakes, all shared, so a 429 to one worker slows every worker:

- an optional hard cap, `requests_per_second` (aiolimiter's leaky bucket);
- a pause: after a 429, nobody sends until its retry-after has passed;
- pacing: when `x-ratelimit-remaining-requests` falls below twice the concurrency (requests in flight
  spend budget too), requests are sent at the rate the budget refills, (limit - remaining) divided by
  `x-ratelimit-reset-requests`, so it is not exhausted in the first place.

The pause and pacing are a few lines over a monotonic clock, hand-written because no library reads
OpenAI's rate-limit headers. A request that would wait longer than `max_wait` seconds does not: `acquire`
raises WaitTooLong at once, naming what the server asked for (a long Retry-After, or an empty budget
with a long reset), so the client never sits silently for minutes.

>>> parse_duration("6m0s"), parse_duration("120ms"), parse_duration("1.5s")
(360.0, 0.12, 1.5)
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Mapping

from aiolimiter import AsyncLimiter

from duckdb_openai.http.retry import retry_after

__all__ = ["DEFAULT_429_PAUSE", "Pacer", "WaitTooLong", "parse_duration"]

#: The pause after a 429 that carries no retry-after header.
DEFAULT_429_PAUSE = 1.0
#: Pacing never waits longer than this between two requests, whatever the headers claim.
MAX_PACE_INTERVAL = 10.0

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


class WaitTooLong(Exception):
    """The shared budget says the next request must wait `seconds`, more than max_wait."""

    def __init__(self, seconds: float, reason: str) -> None:
        super().__init__(f"{reason}: {seconds:.0f}s")
        self.seconds = seconds
        self.reason = reason


def parse_duration(text: str | None) -> float | None:
    """Seconds in OpenAI's duration format ("1s", "120ms", "6m0s", "1h2m3.5s"); None if unparsable."""
    if not text:
        return None
    text = text.strip()
    parts = _DURATION.findall(text)
    if not parts or "".join(a + b for a, b in parts) != text:
        try:
            return float(text)
        except ValueError:
            return None
    return sum(float(number) * _UNITS[unit] for number, unit in parts)


class Pacer:
    """The shared budget of one client; `acquire()` before every request, `observe()` after every answer."""

    def __init__(
        self,
        *,
        concurrency: int,
        requests_per_second: float | None = None,
        max_wait: float = float("inf"),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.concurrency = concurrency
        self.max_wait = max_wait
        self._clock = clock
        self._limiter = AsyncLimiter(requests_per_second, 1.0) if requests_per_second else None
        self._paused_until = 0.0
        #: Why the current pause was set, for the message when it is too long to sit out.
        self._pause_reason = ""
        self._interval = 0.0
        self._next_slot = 0.0
        #: How many 429s this budget has seen, and how long it paused for them in total.
        self.throttled = 0
        self.paused_seconds = 0.0

    def delay(self) -> float:
        """Seconds a request starting now must wait."""
        return max(self._paused_until, self._next_slot) - self._clock()

    async def acquire(self) -> None:
        """Wait for this request's turn; raises WaitTooLong instead of waiting more than max_wait."""
        if self._limiter is not None:
            await self._limiter.acquire()
        while (wait := self.delay()) > 0:
            if wait > self.max_wait:
                paused = self._paused_until >= self._next_slot
                reason = self._pause_reason if paused else "pacing to the server's rate-limit headers"
                raise WaitTooLong(wait, reason)
            await asyncio.sleep(wait)
        if self._interval:
            self._next_slot = max(self._clock(), self._next_slot) + self._interval

    def observe(self, status: int | None, headers: Mapping[str, str]) -> None:
        now = self._clock()
        if status == 429:
            self.throttled += 1
            asked = retry_after(headers)
            # Taken as asked even past max_wait: every request then fails at once in acquire(),
            # rather than each sitting out max_wait to meet another 429.
            pause = asked or DEFAULT_429_PAUSE
            until = now + pause
            if until > self._paused_until:
                self.paused_seconds += until - max(now, self._paused_until)
                self._paused_until = until
                self._pause_reason = (
                    f"after a 429 the server asked to wait {pause:g}s (Retry-After)"
                    if asked
                    else "after a 429"
                )
        remaining_text = headers.get("x-ratelimit-remaining-requests")
        reset = parse_duration(headers.get("x-ratelimit-reset-requests"))
        if remaining_text is None or reset is None:
            return
        try:
            remaining = int(remaining_text)
            limit = int(headers.get("x-ratelimit-limit-requests") or 0)
        except ValueError:
            return
        # The reset header is the time until the budget is full again, so (limit - remaining) / reset is
        # the rate it refills at: the pace that can be kept up indefinitely. Without a limit header, the
        # remaining requests are spread over the reset time instead.
        used = limit - remaining
        refill = reset / used if limit and used > 0 else reset / max(remaining, 1)
        refill = min(refill, MAX_PACE_INTERVAL)
        if remaining <= 0:
            # Requests already in flight will find the budget empty; let it refill for as many as can be
            # in flight before anyone sends again.
            until = now + min(refill * self.concurrency, reset)
            if until > self._paused_until:
                self._paused_until = until
                self._pause_reason = (
                    f"the request budget is used up (x-ratelimit-remaining-requests: {remaining_text}, "
                    f"x-ratelimit-reset-requests: {headers.get('x-ratelimit-reset-requests')})"
                )
            self._interval = refill
        elif remaining < 2 * self.concurrency:
            # Up to `concurrency` requests may be on their way already, so pacing starts with that much
            # headroom left, not when the budget is gone.
            self._interval = refill
        else:
            self._interval = 0.0
