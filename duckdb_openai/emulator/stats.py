"""Counters and a bounded request log, served at ``/_emulator/stats`` and ``/_emulator/requests``.

The log records what a test wants to check about how a client called the API (method,
path, query, status, auth scheme, the OpenAI headers it sent) and never the key::

    >>> recorder = StatsRecorder()
    >>> recorder.begin()
    >>> recorder.finish(RequestRecord("req_1", "GET", "/v1/x", {}, "other", 404, None, {}, None, 1.0))
    >>> recorder.snapshot()["by_endpoint"]["other"]
    {'404': 1}
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import asdict, dataclass
from typing import Any

from .organization_usage import KINDS

__all__ = ["ENDPOINTS", "LOGGED_HEADERS", "LOG_SIZE", "RequestRecord", "StatsRecorder"]

#: How many recent requests ``/_emulator/requests`` can return.
LOG_SIZE = 2_000
#: The buckets of ``by_endpoint``: ``list`` and ``retrieve`` are run steps' (their names predate the
#: rest of the family), then one per endpoint of the family, and ``other`` for any other path.
ENDPOINTS = (
    "list",
    "retrieve",
    "runs.list",
    "runs.retrieve",
    "messages.list",
    "messages.retrieve",
    "threads.retrieve",
    "assistants.list",
    "assistants.retrieve",
    # The Responses era (successors.py).
    "responses.retrieve",
    "responses.input_items",
    "conversations.retrieve",
    "conversations.items",
    "chat.completions.list",
    "chat.completions.retrieve",
    "chat.completions.messages",
    # The organization (organization_routes.py), an admin key's.
    *(f"organization.usage.{name}" for name in KINDS),
    "organization.costs",
    "organization.audit_logs",
    "organization.projects.list",
    "organization.projects.retrieve",
    "organization.projects.api_keys.list",
    "organization.projects.service_accounts.list",
    "organization.users.list",
    "organization.users.retrieve",
    "other",
)
#: Request headers copied into the log (lower-case). Credentials are never among them.
LOGGED_HEADERS = (
    "openai-beta",
    "openai-organization",
    "openai-project",
    "user-agent",
    "x-stainless-retry-count",
)


@dataclass(frozen=True)
class RequestRecord:
    """One API request as the log shows it. ``status`` is ``"drop"`` for a cut connection;
    ``received_s`` is when it arrived, in seconds since the emulator started."""

    request_id: str
    method: str
    path: str
    query: dict[str, list[str]]
    endpoint: str
    status: int | str
    auth: str | None
    headers: dict[str, str]
    fault: str | None
    duration_ms: float
    api_version: str | None = None
    received_s: float = 0.0


class StatsRecorder:
    """Request counters. Not thread-safe: it lives on the server's event loop."""

    def __init__(self) -> None:
        self._log: deque[RequestRecord] = deque(maxlen=LOG_SIZE)
        self._in_flight = 0
        self.reset()

    def reset(self) -> None:
        self._log.clear()
        self._total = 0
        self._by_endpoint: dict[str, Counter[str]] = {name: Counter() for name in ENDPOINTS}
        self._faults: Counter[str] = Counter()
        # Requests running across a reset are still in flight; they just won't be counted.
        self._max_in_flight = self._in_flight

    def begin(self) -> None:
        self._in_flight += 1
        self._max_in_flight = max(self._max_in_flight, self._in_flight)

    def finish(self, record: RequestRecord) -> None:
        self._in_flight -= 1
        self._total += 1
        self._by_endpoint[record.endpoint][str(record.status)] += 1
        if record.fault is not None:
            self._faults[record.fault] += 1
        self._log.append(record)

    def snapshot(self) -> dict[str, Any]:
        return {
            "requests": self._total,
            "by_endpoint": {name: dict(counts) for name, counts in self._by_endpoint.items()},
            "faults": dict(self._faults),
            "max_in_flight": self._max_in_flight,
            "in_flight": self._in_flight,
        }

    def recent(self, limit: int) -> list[dict[str, Any]]:
        """The last ``limit`` requests, oldest first."""
        items = list(self._log)[-limit:] if limit > 0 else []
        return [asdict(record) for record in items]
