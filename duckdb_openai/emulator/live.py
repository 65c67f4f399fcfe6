"""Live runs: runs that progress in real time while the emulator serves (``--live N``).

The population of :mod:`.data` is history: every run finished long ago (or stalled). A live run is
created when the emulator starts and moves on a clock, so a client can be shown data that changes
under it. With step time ``S`` (``--live-step-seconds``, default 3)::

    0 .. S            queued, no steps
    S*(1+i)           step i is created, in_progress (tool calls without outputs, no usage)
    S*(1+i) + S/2     step i is completed (a function call waiting for its output: after 0.9 S, and
                      meanwhile the run is requires_action)
    S*(n+1)           the run ends: completed, failed, cancelled or expired, as its last step

Live run k starts ``(k % 3) * S / 3`` later than run 0, so several runs are seen in different phases.
Every request sees each run and step as it is at that moment: the run-steps endpoints, the runs and
messages of the live thread, and the thread itself. Ids and contents derive from the seed, so two
emulators with the same seed have the same live runs (only the times differ). All live runs belong to
one thread of their own; the population of :mod:`.data` is unchanged.

The clock is wall time plus an offset that ``POST /_emulator/live {"advance_s": X}`` moves forward, so a
test can use a long step time (nothing moves by itself) and step the runs on exactly::

    >>> live = LiveRuns(7, LiveConfig(runs=2, step_seconds=1000), start=0.0, clock=LiveClock(now=0.0))
    >>> [run["status"] for run in live.state()["runs"]]
    ['queued', 'queued']
    >>> live.clock.advance(1100)
    >>> [(run["status"], run["steps"]) for run in live.state()["runs"]]
    [('requires_action', 1), ('queued', 0)]
"""

from __future__ import annotations

import csv
import json
import random
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import errors
from .data import (
    _END_TIMESTAMPS,
    MANIFEST_COLUMNS,
    Dataset,
    RunInfo,
    SerializedRun,
    _dump,
    _generate_step,
    _has_content,
    _make_id,
    _without_content,
)
from .errors import ApiError
from .family import (
    _EXPIRY_SECONDS,
    Family,
    ThreadData,
    _assistant_message,
    _run_object,
    _summarize,
    _thread,
    _user_message,
    assemble_thread,
)

__all__ = ["DEFAULT_STEP_SECONDS", "LiveClock", "LiveConfig", "LiveRuns", "write_manifest"]

DEFAULT_STEP_SECONDS = 3.0
_OUTCOMES = ("completed", "completed", "failed", "completed", "cancelled", "expired")
_TERMINAL_RUN = {"completed", "failed", "cancelled", "expired", "incomplete"}


@dataclass(frozen=True)
class LiveConfig:
    """How many live runs, and the seconds between their steps."""

    runs: int = 0
    step_seconds: float = DEFAULT_STEP_SECONDS

    def __post_init__(self) -> None:
        if self.runs < 0:
            raise ValueError(f"live runs must be >= 0, got {self.runs}")
        if self.step_seconds <= 0:
            raise ValueError(f"live step seconds must be > 0, got {self.step_seconds}")


class LiveClock:
    """Wall-clock seconds plus an offset that only moves forward (`advance`)."""

    def __init__(self, now: float | None = None) -> None:
        self._base = now
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return (time.time() if self._base is None else self._base) + self._offset

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"the live clock only moves forward, not by {seconds}")
        with self._lock:
            self._offset += seconds


@dataclass(frozen=True)
class _Plan:
    """One live run as it will be: its info, its steps when finished, and their times."""

    info: RunInfo
    begins: float  # when its first step may come: start + stagger
    steps: tuple[dict[str, Any], ...]
    created: tuple[float, ...]
    done: tuple[float, ...]
    ends: float


class LiveRuns:
    """The live runs of one emulator (see the module docstring). Thread-safe: state is read only."""

    def __init__(
        self,
        seed: int,
        config: LiveConfig,
        *,
        assistant_ids: list[str] | None = None,
        start: float | None = None,
        clock: LiveClock | None = None,
    ) -> None:
        self.seed = seed
        self.config = config
        self.clock = clock if clock is not None else LiveClock()
        self.start = self.clock.now() if start is None else start
        rng = random.Random(f"duckdb-openai-emulator:{seed}:live")
        self.thread_id = _make_id(rng, "thread_")
        assistants = assistant_ids or [_make_id(rng, "asst_")]
        self.plans: list[_Plan] = []
        for k in range(config.runs):
            info = RunInfo(
                thread_id=self.thread_id,
                run_id=_make_id(rng, "run_"),
                step_count=rng.randint(3, 8),
                customer="Live Customer",
                app_version="live",
                started_at=int(self.start),
                assistant_id=rng.choice(assistants),
            )
            self.plans.append(self._plan(k, info))
        self._by_id = {plan.info.run_id: plan for plan in self.plans}

    def _plan(self, k: int, info: RunInfo) -> _Plan:
        step = self.config.step_seconds
        rng = random.Random(f"duckdb-openai-emulator:{self.seed}:live-run:{k}")
        outcome = _OUTCOMES[k % len(_OUTCOMES)]
        begins = self.start + (k % 3) * step / 3
        steps: list[dict[str, Any]] = []
        created: list[float] = []
        done: list[float] = []
        prompt_tokens = rng.randint(150, 1_200)
        for i in range(info.step_count):
            status = outcome if i == info.step_count - 1 else "completed"
            at = begins + step * (1 + i)
            obj, _ = _generate_step(rng, info, status, int(at), prompt_tokens)
            prompt_tokens += rng.randint(20, 400)
            waits = obj["step_details"]["type"] == "tool_calls" and any(
                c["type"] == "function" for c in obj["step_details"]["tool_calls"]
            )
            finished = at + step * (0.9 if waits else 0.5)
            for name in _END_TIMESTAMPS:
                if obj[name] is not None:
                    obj[name] = int(finished)
            steps.append(obj)
            created.append(at)
            done.append(finished)
        return _Plan(
            info, begins, tuple(steps), tuple(created), tuple(done), begins + step * (len(steps) + 1)
        )

    # -- what a request sees -----------------------------------------------------------------------------

    def has_thread(self, thread_id: str) -> bool:
        return bool(self.plans) and thread_id == self.thread_id

    def runs(self) -> list[RunInfo]:
        return [plan.info for plan in self.plans]

    def steps_at(self, run_id: str, now: float | None = None) -> list[dict[str, Any]]:
        """The run's steps as the API shows them at `now` (default: the clock's now), ascending."""
        plan = self._by_id[run_id]
        now = self.clock.now() if now is None else now
        return [
            step if now >= finished else _moving(step)
            for step, at, finished in zip(plan.steps, plan.created, plan.done, strict=True)
            if now >= at
        ]

    def find_run(self, thread_id: str, run_id: str) -> tuple[RunInfo, SerializedRun] | ApiError:
        plan = self._by_id.get(run_id)
        if plan is None or plan.info.thread_id != thread_id:
            return errors.api_error(404, f"No run found with id '{run_id}'.")
        return plan.info, _serialize(self.steps_at(run_id))

    def thread_body(self) -> bytes:
        return _dump(_thread(self.seed, self.thread_id, self.runs()))

    def thread_data(self, family: Family) -> ThreadData:
        """The live thread's runs and messages now."""
        now = self.clock.now()
        run_objects = []
        messages: list[tuple[int, int, dict[str, Any]]] = []
        for plan in self.plans:
            steps = self.steps_at(plan.info.run_id, now)
            run_objects.append(self._run_object(plan, steps, now, family))
            rng = random.Random(f"duckdb-openai-emulator:{self.seed}:live-messages:{plan.info.run_id}")
            asked = plan.info.started_at - 1
            messages.append((asked, len(messages), _user_message(rng, plan.info, asked)))
            for step, files, images in _summarize(steps).created:
                message_id = step["step_details"]["message_creation"]["message_id"]
                own = random.Random(f"duckdb-openai-emulator:{self.seed}:live-message:{message_id}")
                message = _assistant_message(own, plan.info, step, files, images)
                messages.append((step["created_at"], len(messages), message))
        return assemble_thread(run_objects, messages)

    def _run_object(
        self, plan: _Plan, steps: list[dict[str, Any]], now: float, family: Family
    ) -> dict[str, Any]:
        info = plan.info
        try:
            assistant = family.assistant(info.assistant_id)
        except KeyError:
            assistant = family.assistants()[0]
        run = _run_object(self.seed, info, _summarize(steps), assistant)
        if now < plan.ends and run["status"] in _TERMINAL_RUN:
            # Between two steps the last one is completed, yet the run goes on.
            run.update(
                status="in_progress",
                completed_at=None,
                failed_at=None,
                cancelled_at=None,
                last_error=None,
                incomplete_details=None,
                usage=None,
                expires_at=run["created_at"] + _EXPIRY_SECONDS,
            )
        return run

    def state(self) -> dict[str, Any]:
        """For ``GET /_emulator/live``: the clock and each live run's status and visible steps."""
        now = self.clock.now()
        runs = []
        for plan in self.plans:
            steps = self.steps_at(plan.info.run_id, now)
            if now >= plan.ends:
                status = plan.steps[-1]["status"] if plan.steps else "completed"
            elif not steps:
                status = "queued"
            elif steps[-1]["status"] == "in_progress" and any(
                c["type"] == "function" for c in steps[-1]["step_details"].get("tool_calls", [])
            ):
                status = "requires_action"
            else:
                status = "in_progress"
            runs.append(
                {
                    "thread_id": plan.info.thread_id,
                    "run_id": plan.info.run_id,
                    "status": status,
                    "steps": len(steps),
                    "step_ids": [s["id"] for s in steps],
                    "finished": now >= plan.ends,
                }
            )
        return {"now": now, "step_seconds": self.config.step_seconds, "runs": runs}


def _moving(step: dict[str, Any]) -> dict[str, Any]:
    """A step as it looks while in progress: no end, no usage, tool calls without their outputs."""
    view = {**step, "status": "in_progress", "last_error": None, "usage": None}
    for name in _END_TIMESTAMPS:
        view[name] = None
    details = step["step_details"]
    if details["type"] == "tool_calls":
        calls = []
        for call in details["tool_calls"]:
            if call["type"] == "function":
                call = {**call, "function": {**call["function"], "output": None}}
            elif call["type"] == "code_interpreter":
                call = {**call, "code_interpreter": {**call["code_interpreter"], "outputs": []}}
            elif call["type"] == "file_search":
                call = {**call, "file_search": {**call["file_search"], "results": []}}
            calls.append(call)
        view["step_details"] = {**details, "tool_calls": calls}
    return view


def _serialize(steps: list[dict[str, Any]]) -> SerializedRun:
    ids = tuple(step["id"] for step in steps)
    full = tuple(_dump(step) for step in steps)
    plain = tuple(
        _dump(_without_content(step)) if _has_content(step) else body
        for step, body in zip(steps, full, strict=True)
    )
    return SerializedRun(ids, {step_id: i for i, step_id in enumerate(ids)}, plain, full)


def write_manifest(dataset: Dataset, live: LiveRuns, path: str | Path) -> Path:
    """The runs manifest (``--manifest``) with the live runs after the others, and a ``live`` column."""
    target = Path(path)
    with target.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow((*MANIFEST_COLUMNS, "live"))
        for run in dataset.runs:
            writer.writerow(
                (run.thread_id, run.run_id, run.customer, run.app_version, run.started_at_iso, "false")
            )
        for run in live.runs():
            writer.writerow(
                (run.thread_id, run.run_id, run.customer, run.app_version, run.started_at_iso, "true")
            )
    return target


def parse_advance(body: bytes) -> float:
    """The seconds of a ``POST /_emulator/live`` body ``{"advance_s": X}``; ValueError if malformed."""
    data = json.loads(body or b"{}")
    seconds = data.get("advance_s", 0) if isinstance(data, dict) else None
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
        raise ValueError(f"advance_s must be a number of seconds >= 0, got {seconds!r}")
    return float(seconds)
