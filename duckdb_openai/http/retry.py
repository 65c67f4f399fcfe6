"""Retry policy as two pure functions and named constants: should this be retried, and how long to wait.

Modelled on the official SDK's `_should_retry` and `_calculate_retry_timeout`; the loop itself is
tenacity's (see `requester.py`).

>>> should_retry(429, {})
True
>>> should_retry(400, {"x-should-retry": "true"})
True
>>> retry_delay(0, {"retry-after-ms": "250"}, initial=0.5, maximum=8.0)
0.25
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from time import time

__all__ = ["RETRYABLE_STATUSES", "retry_after", "retry_delay", "should_retry"]

#: Statuses worth another try: timeouts, lock conflicts, rate limits and server errors.
RETRYABLE_STATUSES = frozenset({408, 409, 429})
#: Backoff jitter: the delay is scaled by a factor drawn from [1 - JITTER, 1].
JITTER = 0.25


def should_retry(status: int | None, headers: Mapping[str, str]) -> bool:
    """Whether a response (or a connection failure, status None) should be retried.

    The server's `x-should-retry` wins; otherwise connection errors, 408, 409, 429 and 5xx are retried.
    """
    hint = headers.get("x-should-retry")
    if hint == "true":
        return True
    if hint == "false":
        return False
    return status is None or status in RETRYABLE_STATUSES or status >= 500


def retry_after(headers: Mapping[str, str]) -> float | None:
    """The server's requested wait in seconds (`retry-after-ms`, then `retry-after` as seconds or an HTTP
    date), or None when absent, unparsable or not positive. However long: the client decides whether to
    sit it out (`max_wait`) or fail at once."""
    value: float | None = None
    if "retry-after-ms" in headers:
        try:
            value = float(headers["retry-after-ms"]) / 1000
        except ValueError:
            value = None
    if value is None and "retry-after" in headers:
        raw = headers["retry-after"]
        try:
            value = float(raw)
        except ValueError:
            try:
                value = parsedate_to_datetime(raw).timestamp() - time()
            except (TypeError, ValueError):
                value = None
    if value is None or not 0 < value < float("inf"):
        return None
    return value


def retry_delay(
    retries_taken: int,
    headers: Mapping[str, str],
    *,
    initial: float,
    maximum: float,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before retry number `retries_taken + 1`: the server's word if it gave one, else
    exponential backoff from `initial`, capped at `maximum`, with jitter."""
    asked = retry_after(headers)
    if asked is not None:
        return asked
    backoff = min(initial * 2.0**retries_taken, maximum)
    draw = (rng or random).random()
    return backoff * (1 - JITTER * draw)
