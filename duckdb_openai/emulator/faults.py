"""Which requests fail, and how: scripted faults first, then a seeded random draw.

Scripted faults are exact: ``schedule(ScriptedFault("503", count=2, match="/steps"))``
makes the next two requests whose path contains ``/steps`` answer 503. Random faults
come from one RNG seeded by the emulator's seed and drawn once per API request in
arrival order, so a sequential client sees the same faults on every run.

    >>> injector = FaultInjector(seed=7, rate=0.0)
    >>> injector.schedule(ScriptedFault("drop", count=1))
    >>> injector.next("/v1/threads/t/runs/r/steps").kind, injector.next("/v1/x")
    ('drop', None)
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass
from typing import Any, Literal, cast, get_args

__all__ = [
    "ERROR_KINDS",
    "FAULT_KINDS",
    "RANDOM_MIX",
    "Fault",
    "FaultInjector",
    "FaultKind",
    "ScriptedFault",
]

FaultKind = Literal["500", "502", "503", "408", "409", "429", "drop", "slow"]
FAULT_KINDS: tuple[str, ...] = get_args(FaultKind)
#: Kinds answered with an OpenAI-shaped error body instead of the data.
ERROR_KINDS = frozenset({"500", "502", "503", "408", "409"})
#: The random mix for ``fault_rate``: server errors, dropped connections, slow answers.
RANDOM_MIX: tuple[tuple[FaultKind, int], ...] = (("500", 3), ("502", 2), ("503", 2), ("drop", 2), ("slow", 1))
_DEFAULT_RETRY_AFTER_MS = 50


@dataclass(frozen=True)
class Fault:
    """One injected fault. ``delay_ms`` is for ``slow``, ``retry_after_ms`` for ``429``."""

    kind: FaultKind
    delay_ms: float = 0.0
    retry_after_ms: int = _DEFAULT_RETRY_AFTER_MS
    scripted: bool = False


@dataclass(eq=False)
class ScriptedFault:
    kind: FaultKind
    count: int = 1
    match: str | None = None
    retry_after_ms: int = _DEFAULT_RETRY_AFTER_MS
    slow_ms: float | None = None

    @classmethod
    def from_json(cls, payload: Any) -> ScriptedFault:
        """Validate a ``POST /_emulator/faults`` body; ``ValueError`` names what is wrong."""
        if not isinstance(payload, dict):
            raise ValueError("body must be a JSON object")
        unknown = set(payload) - {"kind", "count", "match", "retry_after_ms", "slow_ms"}
        if unknown:
            raise ValueError(f"unknown field(s): {', '.join(sorted(unknown))}")
        kind = payload.get("kind")
        if kind not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {', '.join(FAULT_KINDS)}, got {payload.get('kind')!r}")
        count = payload.get("count", 1)
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise ValueError(f"count must be a positive integer, got {count!r}")
        match = payload.get("match")
        if match is not None and not isinstance(match, str):
            raise ValueError(f"match must be a string, got {match!r}")
        retry_after_ms = payload.get("retry_after_ms", _DEFAULT_RETRY_AFTER_MS)
        if not isinstance(retry_after_ms, int) or isinstance(retry_after_ms, bool) or retry_after_ms < 0:
            raise ValueError(f"retry_after_ms must be a non-negative integer, got {retry_after_ms!r}")
        slow_ms = payload.get("slow_ms")
        if slow_ms is not None and (not isinstance(slow_ms, (int, float)) or slow_ms < 0):
            raise ValueError(f"slow_ms must be a non-negative number, got {slow_ms!r}")
        return cls(
            cast(FaultKind, kind), count, match, retry_after_ms, None if slow_ms is None else float(slow_ms)
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "count": self.count,
            "match": self.match,
            "retry_after_ms": self.retry_after_ms,
            "slow_ms": self.slow_ms,
        }


class FaultInjector:
    """Decides, per API request, whether and how it fails. Lives on the server's loop."""

    def __init__(self, seed: int, rate: float, slow_ms: float = 1000.0) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"fault rate must be between 0 and 1, got {rate}")
        self.seed = seed
        self.rate = rate
        self.slow_ms = slow_ms
        self._scripted: deque[ScriptedFault] = deque()
        self._rng = self._new_rng()

    def _new_rng(self) -> random.Random:
        return random.Random(f"duckdb-openai-emulator:{self.seed}:faults")

    def schedule(self, fault: ScriptedFault) -> None:
        self._scripted.append(fault)

    def pending(self) -> list[dict[str, Any]]:
        return [fault.to_json() for fault in self._scripted]

    def reset(self) -> None:
        """Forget scripted faults and restart the random sequence from the seed."""
        self._scripted.clear()
        self._rng = self._new_rng()

    def next(self, path: str) -> Fault | None:
        # The random draw happens for every request, scripted or not, so the random
        # sequence depends only on arrival order.
        drawn = self._draw()
        for fault in self._scripted:
            if fault.match is None or fault.match in path:
                fault.count -= 1
                if fault.count <= 0:
                    self._scripted.remove(fault)
                delay = self.slow_ms if fault.slow_ms is None else fault.slow_ms
                return Fault(fault.kind, delay_ms=delay, retry_after_ms=fault.retry_after_ms, scripted=True)
        return drawn

    def _draw(self) -> Fault | None:
        if self.rate <= 0.0:
            return None
        if self._rng.random() >= self.rate:
            return None
        kinds = [kind for kind, _ in RANDOM_MIX]
        kind = self._rng.choices(kinds, weights=[weight for _, weight in RANDOM_MIX])[0]
        return Fault(kind, delay_ms=self.slow_ms)
