"""Pure functions and small state machines: retry policy, pacing, cursors, settings."""

from __future__ import annotations

import asyncio
import random

import pytest

from duckdb_openai.config import Settings
from duckdb_openai.errors import ConfigurationError, ResponseFormatError
from duckdb_openai.http.ratelimit import EMPTY_BUDGET_PAUSE, Pacer, WaitTooLong, parse_duration
from duckdb_openai.http.retry import retry_after, retry_delay, should_retry
from duckdb_openai.resources.paging import CursorPaging, TokenPaging


@pytest.mark.parametrize(
    ("status", "headers", "expected"),
    [
        (None, {}, True),
        (408, {}, True),
        (409, {}, True),
        (429, {}, True),
        (500, {}, True),
        (503, {}, True),
        (400, {}, False),
        (401, {}, False),
        (404, {}, False),
        (400, {"x-should-retry": "true"}, True),
        (503, {"x-should-retry": "false"}, False),
    ],
)
def test_should_retry(status: int | None, headers: dict[str, str], expected: bool) -> None:
    assert should_retry(status, headers) is expected


def test_retry_after_prefers_milliseconds_and_caps() -> None:
    assert retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert retry_after({"retry-after": "2"}) == 2.0
    assert retry_after({"retry-after": "3600"}) == 3600.0  # however long: max_wait decides
    assert retry_after({"retry-after": "soon"}) is None
    assert retry_after({}) is None


def test_backoff_grows_with_jitter_and_a_cap() -> None:
    rng = random.Random(0)
    delays = [retry_delay(n, {}, initial=0.5, maximum=8.0, rng=rng) for n in range(8)]
    assert all(0.375 <= d <= 0.5 for d in delays[:1])
    assert all(d <= 8.0 for d in delays) and delays[5] >= 6.0
    assert retry_delay(3, {"retry-after-ms": "100"}, initial=0.5, maximum=8.0) == 0.1


def test_parse_duration() -> None:
    assert parse_duration("1s") == 1.0
    assert parse_duration("120ms") == 0.12
    assert parse_duration("6m0s") == 360.0
    assert parse_duration("1h2m3.5s") == 3723.5
    assert parse_duration("0.5") == 0.5
    assert parse_duration("bogus") is None and parse_duration(None) is None


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_429_pauses_every_later_acquire() -> None:
    clock = FakeClock()
    pacer = Pacer(concurrency=8, clock=clock)
    assert pacer.delay() <= 0
    pacer.observe(429, {"retry-after-ms": "500"})
    assert pacer.delay() == pytest.approx(0.5)  # for every worker, not only the refused one
    clock.now += 0.3
    assert pacer.delay() == pytest.approx(0.2)
    clock.now += 0.3
    assert pacer.delay() <= 0
    assert pacer.throttled == 1


def test_low_remaining_requests_paces_before_any_429() -> None:
    clock = FakeClock()
    pacer = Pacer(concurrency=10, clock=clock)
    pacer.observe(200, {"x-ratelimit-remaining-requests": "4", "x-ratelimit-reset-requests": "2s"})
    asyncio.run(pacer.acquire())
    assert pacer.delay() == pytest.approx(0.5)  # 4 requests left over 2 s: one every 0.5 s
    pacer.observe(200, {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "1s"})
    assert pacer.delay() >= 1.0 - 1e-9
    pacer.observe(200, {"x-ratelimit-remaining-requests": "5000", "x-ratelimit-reset-requests": "1s"})
    clock.now += 2
    assert pacer.delay() <= 0


def test_an_empty_budget_pauses_briefly_and_never_fails() -> None:
    # An empty budget whose reset is minutes away: its reset is when the whole budget is full again, so
    # the pacer waits briefly and lets the next request ask, whatever max_wait says.
    clock = FakeClock()
    pacer = Pacer(concurrency=32, max_wait=0.0, clock=clock)
    pacer.observe(200, {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "6m0s"})
    assert 0 < pacer.delay() <= EMPTY_BUDGET_PAUSE
    clock.now += EMPTY_BUDGET_PAUSE
    asyncio.run(pacer.acquire())  # no WaitTooLong, and no sleep: the pause is over
    assert 0 < pacer.delay() <= EMPTY_BUDGET_PAUSE  # the next request after it, one at a time
    pacer.observe(429, {"retry-after": "30"})  # the server's own ask, past max_wait=0: that fails
    with pytest.raises(WaitTooLong, match=r"asked to wait 30s \(Retry-After\)"):
        asyncio.run(pacer.acquire())


def test_a_duration_that_is_no_time_is_ignored() -> None:
    assert [parse_duration(text) for text in ("nan", "inf", "-1", "1e400")] == [None] * 4


def test_cursor_refuses_a_broken_contract() -> None:
    cursor = CursorPaging().start(order="asc")
    with pytest.raises(ResponseFormatError, match="no rows or no last_id"):
        cursor.advance({"has_more": True, "last_id": None}, rows=0)
    cursor = CursorPaging().start(order="asc")
    cursor.advance({"has_more": True, "last_id": "step_a"}, rows=1)
    with pytest.raises(ResponseFormatError, match="did not advance"):
        cursor.advance({"has_more": True, "last_id": "step_a"}, rows=1)


def test_a_page_token_must_be_given_and_must_not_repeat() -> None:
    state = TokenPaging().start()
    assert state.params() == []
    with pytest.raises(ResponseFormatError, match="no next_page"):
        state.advance({"has_more": True, "next_page": None}, rows=3)
    state = TokenPaging().start()
    state.advance({"has_more": True, "next_page": "page_AA+/=="}, rows=3)
    assert state.params() == [("page", "page_AA+/==")]
    with pytest.raises(ResponseFormatError, match="twice"):
        state.advance({"has_more": True, "next_page": "page_AA+/=="}, rows=3)
    state.advance({"has_more": False, "next_page": None}, rows=0)
    assert state.done


def test_settings_never_show_the_key() -> None:
    settings = Settings.resolve(api_key="sk-very-secret", base_url="http://localhost:1/v1", env={})
    assert "sk-very-secret" not in repr(settings) and "sk-very-secret" not in str(settings.api_key)
    assert settings.credential_headers("api_key")["Authorization"] == "Bearer sk-very-secret"
    assert "Authorization" not in settings.headers()  # the session's headers carry no credential


def test_settings_read_the_environment_once() -> None:
    env = {
        "OPENAI_API_KEY": "k",
        "OPENAI_BASE_URL": "https://x.example/v1/",
        "OPENAI_API_VERSION": "2024-05-01",
    }
    settings = Settings.resolve(env=env)
    assert settings.base_url == "https://x.example/v1"
    assert settings.credential_headers("api_key") == {"api-key": "k"}
    assert settings.base_params() == {"api-version": "2024-05-01"}
    assert "OPENAI_API_KEY" in settings.key_hint()
    with pytest.raises(ConfigurationError, match="white space"):
        Settings.resolve(api_key="sk bad", env={})


def test_pacing_follows_the_refill_rate_with_headroom_for_requests_in_flight() -> None:
    clock = FakeClock()
    pacer = Pacer(concurrency=32, clock=clock)
    budget = {"x-ratelimit-limit-requests": "200", "x-ratelimit-reset-requests": "800ms"}
    pacer.observe(200, {**budget, "x-ratelimit-remaining-requests": "100"})
    asyncio.run(pacer.acquire())
    assert pacer.delay() <= 0  # plenty left: no pacing
    pacer.observe(200, {**budget, "x-ratelimit-remaining-requests": "40"})  # under 2 x 32 in flight
    asyncio.run(pacer.acquire())
    assert pacer.delay() == pytest.approx(0.8 / 160)  # 160 used refill in 0.8 s: one every 5 ms
    pacer.observe(200, {"x-ratelimit-limit-requests": "200", "x-ratelimit-reset-requests": "1s",
                        "x-ratelimit-remaining-requests": "0"})  # fmt: skip
    assert pacer.delay() == pytest.approx(32 * 1 / 200)  # room for everything in flight to refill
