"""One request budget shared by every worker of a client.

Three brakes, all shared, so a 429 to one worker slows every worker:

- an optional hard cap, `requests_per_second` (aiolimiter's leaky bucket);
- a pause: after a 429, nobody sends until its retry-after has passed;
- pacing: when `x-ratelimit-remaining-requests` falls below twice the concurrency (requests in flight
  spend budget too), requests are sent at the rate the budget refills, (limit - remaining) divided by
  `x-ratelimit-reset-requests`, so it is not exhausted in the first place. An empty budget
  (`remaining: 0`) pauses everyone briefly, then requests go on one at a time at that pace (both at
  most EMPTY_BUDGET_PAUSE) and the server's answers say what next: the reset header is when the whole
  budget is full again, not when the next request is allowed, so it is never a reason to give up.

The pause and pacing are a few lines over a monotonic clock, hand-written because no library reads
OpenAI's rate-limit headers. Only the server's own word fails a request: when a 429 asked for a wait
longer than `max_wait` seconds, `acquire` raises WaitTooLong at once, naming what was asked, so the
client never sits silently for minutes. Pacing never waits longer than MAX_PACE_INTERVAL.

>>> parse_duration("6m0s"), parse_duration("120ms"), parse_duration("1.5s")
(360.0, 0.12, 1.5)
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import Callable, Mapping

from aiolimiter import AsyncLimiter

from duckdb_openai.http.retry import retry_after

__all__ = [
    "DEFAULT_429_PAUSE",
    "EMPTY_BUDGET_PAUSE",
    "MAX_PACE_INTERVAL",
    "Pacer",
    "WaitTooLong",
    "parse_duration",
]

#: The pause after a 429 that carries no retry-after header.
DEFAULT_429_PAUSE = 1.0
#: Pacing never waits longer than this between two requests, whatever the headers claim.
MAX_PACE_INTERVAL = 10.0
#: The longest pause an empty budget (`x-ratelimit-remaining-requests: 0`) imposes before the next
#: request asks again: long enough for requests in flight to land, short enough that a budget that
#: refills request by request (as OpenAI's does) costs little.
EMPTY_BUDGET_PAUSE = 1.0

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


class WaitTooLong(Exception):
    """A 429 asked every request to wait `seconds`, more than max_wait."""

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
            seconds = float(text)
        except ValueError:
            return None
        return seconds if math.isfinite(seconds) and seconds >= 0 else None  # not "nan", "inf", "-1"
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
        #: Until when a 429 asked everyone to wait, and what it said, for the message when that is too long.
        self._asked_until = 0.0
        self._asked_reason = ""
        #: Until when an empty budget pauses everyone (briefly; never a reason to fail).
        self._paused_until = 0.0
        self._interval = 0.0
        self._next_slot = 0.0
        #: How many 429s this budget has seen, and how long it paused for them in total.
        self.throttled = 0
        self.paused_seconds = 0.0

    def delay(self) -> float:
        """Seconds a request starting now must wait."""
        return max(self._asked_until, self._paused_until, self._next_slot) - self._clock()

    async def acquire(self) -> None:
        """Wait for this request's turn; raises WaitTooLong instead of waiting out a 429's ask of more
        than max_wait."""
        if self._limiter is not None:
            await self._limiter.acquire()
        while (wait := self.delay()) > 0:
            asked = self._asked_until - self._clock()
            if asked > self.max_wait:
                raise WaitTooLong(asked, self._asked_reason)
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
            if until > self._asked_until:
                self.paused_seconds += until - max(now, self._asked_until)
                self._asked_until = until
                self._asked_reason = (
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
            # in flight before anyone sends again, but briefly: then the next request asks, and a 429
            # with its retry-after, not this guess, decides how long to wait.
            until = now + min(refill * self.concurrency, reset, EMPTY_BUDGET_PAUSE)
            self._paused_until = max(self._paused_until, until)
            self._interval = min(refill, EMPTY_BUDGET_PAUSE)
        elif remaining < 2 * self.concurrency:
            # Up to `concurrency` requests may be on their way already, so pacing starts with that much
            # headroom left, not when the budget is gone.
            self._interval = refill
        else:
            self._interval = 0.0
