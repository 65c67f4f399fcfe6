"""The emulator's ground truth: a deterministic population of threads, runs and run steps.

Everything derives from one integer seed. The run table (ids, customer, app version,
start time, step count) is drawn once, on first use, from a seed-derived RNG; a run's
steps are generated only when first asked for, from an RNG derived from the seed and
the run's index, so a population of 20,000 runs costs nothing until a run is read and
the same run always comes out the same, in any process and in any order of access.

Steps are kept as the exact JSON bytes the API sends (one string per step, with and
without file-search result ``content``), so serving a page is a join of byte strings.

    >>> ds = Dataset(seed=7)
    >>> run = ds.find_run(step_count=101)
    >>> steps = ds.steps(run.thread_id, run.run_id)
    >>> len(steps), steps[0]["object"], sorted(steps[0]) == sorted(RUN_STEP_KEYS)
    (101, 'thread.run.step', True)
"""

from __future__ import annotations

import base64
import csv
import json
import random
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

__all__ = [
    "EDGE_STEP_COUNTS",
    "INCLUDE_FILE_SEARCH_CONTENT",
    "MANIFEST_COLUMNS",
    "RUN_STEP_KEYS",
    "Dataset",
    "DatasetConfig",
    "RunInfo",
    "SerializedRun",
]

#: The one value the ``include[]`` query parameter accepts.
INCLUDE_FILE_SEARCH_CONTENT = "step_details.tool_calls[*].file_search.results[*].content"

#: The keys of a RunStepObject, in the order the API sends them.
RUN_STEP_KEYS = (
    "id",
    "object",
    "created_at",
    "run_id",
    "assistant_id",
    "thread_id",
    "type",
    "status",
    "cancelled_at",
    "completed_at",
    "expired_at",
    "failed_at",
    "last_error",
    "step_details",
    "metadata",
    "usage",
)

#: Step counts of the edge runs added to every population with ``edge_runs=True``:
#: empty, one step, exactly one and two full pages of 100, one past a page, and a long run.
EDGE_STEP_COUNTS = (0, 1, 100, 101, 200, 10_000)

MANIFEST_COLUMNS = ("thread_id", "run_id", "customer", "app_version", "started_at")

# Keeps memory bounded for big populations: least recently used runs are dropped past
# this many cached steps and regenerated (identically) when asked for again.
_CACHE_MAX_STEPS = 250_000
_MAX_PROMPT_TOKENS = 120_000
_END_TIMESTAMPS = ("cancelled_at", "completed_at", "expired_at", "failed_at")
_EPOCH = 1_725_148_800  # 2024-09-01T00:00:00Z, where the population's clock starts.
_ID_TRANSLATION = bytes.maketrans(b"+/", b"xQ")

_CUSTOMERS = (
    "Acme Corp",
    "Globex",
    "Initech",
    "Umbrella Health",
    "Stark Logistics",
    "Wayne Financial",
    "Hooli",
)
_APP_VERSIONS = ("1.8.2", "1.9.0", "1.9.1", "2.0.0", "2.1.0-beta.1")
_ASSISTANTS = 5
# Outcome of a run's last step; earlier steps of a run have completed.
_OUTCOMES = (("completed", 80), ("failed", 7), ("cancelled", 5), ("expired", 4), ("in_progress", 4))
_RANKERS = ("auto", "default_2024_08_21")
_FILES = (
    "refund_policy.pdf",
    "shipping_faq.md",
    "pricing_2024.xlsx",
    "onboarding_guide.docx",
    "api_reference.txt",
    "sla_terms.pdf",
)
_SNIPPETS = (
    "Refunds are issued within 14 days of the return being received.",
    "Orders over €50 ship free within the EU – express delivery costs €9.90.",
    "Enterprise plans include a 99.9% uptime SLA, measured monthly.",
    "To rotate an API key, open Settings → Security and choose “Regenerate”.",
    "Invoices are emailed on the 1st of each month in PDF format.",
    "Support hours: Monday–Friday, 08:00–18:00 CET.",
)
_CODE = (
    ("import pandas as pd\ndf = pd.read_csv('/mnt/data/orders.csv')\ndf.describe()", "logs"),
    ("total = sum(x * 1.19 for x in [12.5, 7.0, 30.25])\nprint(round(total, 2))", "logs"),
    ("import matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [3, 1, 2])\nplt.savefig('chart.png')", "image"),
    ("print('\\n'.join(sorted({'b', 'a', 'c'})))", "logs"),
)
_LOGS = (
    "       amount\ncount  120.00\nmean    41.73\nstd     12.04",
    "59.22",
    "a\nb\nc",
    "Traceback (most recent call last):\n  ...\nKeyError: 'region'",
)
_ERRORS = (
    ("server_error", "Sorry, something went wrong."),
    ("rate_limit_exceeded", "Rate limit reached for gpt-4o in organization org-emulator on tokens per min."),
)
_METADATA = (
    {"channel": "web", "attempt": "1"},
    {"channel": "email"},
    {"experiment": "ranker-b", "locale": "de-DE"},
    {"ticket": "SUP-4821"},
)


@dataclass(frozen=True)
class DatasetConfig:
    """Size of a generated population.

    ``threads * runs_per_thread`` regular runs with about ``mean_steps`` steps each,
    plus, with ``edge_runs``, one run for each of :data:`EDGE_STEP_COUNTS`.
    """

    threads: int = 60
    runs_per_thread: int = 4
    mean_steps: float = 12.0
    edge_runs: bool = True

    def __post_init__(self) -> None:
        if self.threads < 1:
            raise ValueError(f"threads must be at least 1, got {self.threads}")
        if self.runs_per_thread < 0:
            raise ValueError(f"runs_per_thread must be >= 0, got {self.runs_per_thread}")
        if self.mean_steps < 0:
            raise ValueError(f"mean_steps must be >= 0, got {self.mean_steps}")


@dataclass(frozen=True)
class RunInfo:
    """One run as a user's local records would know it, plus its true step count."""

    thread_id: str
    run_id: str
    step_count: int
    customer: str
    app_version: str
    started_at: int
    assistant_id: str

    @property
    def started_at_iso(self) -> str:
        """``started_at`` as ISO-8601 UTC, e.g. ``2024-09-01T00:12:40Z``."""
        return datetime.fromtimestamp(self.started_at, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class SerializedRun:
    """A run's steps in ascending order, as the JSON bytes the API sends."""

    ids: tuple[str, ...]
    positions: dict[str, int]
    plain: tuple[bytes, ...]
    with_content: tuple[bytes, ...]

    def body(self, index: int, include_content: bool) -> bytes:
        return self.with_content[index] if include_content else self.plain[index]


class Dataset:
    """A deterministic population of runs and their steps; the emulator's ground truth.

    Thread-safe: the server (in its own thread) and a test may read the same run at once.
    """

    def __init__(self, seed: int = 7, config: DatasetConfig | None = None) -> None:
        self.seed = seed
        self.config = config if config is not None else DatasetConfig()
        self._lock = threading.Lock()
        self._table: _RunTable | None = None
        self._cache: OrderedDict[str, SerializedRun] = OrderedDict()
        self._cached_steps = 0
        self._generating: dict[str, threading.Lock] = {}

    def __repr__(self) -> str:
        return f"Dataset(seed={self.seed}, config={self.config!r})"

    @property
    def runs(self) -> list[RunInfo]:
        """All runs, grouped by thread (regular runs first, then the edge runs)."""
        return list(self._run_table().runs)

    @property
    def thread_ids(self) -> list[str]:
        return list(self._run_table().threads)

    @property
    def assistant_ids(self) -> list[str]:
        """The assistants the runs name, in the order they were drawn."""
        return list(self._run_table().assistants)

    def thread_runs(self, thread_id: str) -> tuple[RunInfo, ...]:
        """The thread's runs in creation order; ``KeyError`` if the thread is unknown."""
        return self._run_table().threads[thread_id]

    def find_run(self, *, step_count: int) -> RunInfo:
        """The first run with exactly ``step_count`` steps; ``LookupError`` if none."""
        for run in self._run_table().runs:
            if run.step_count == step_count:
                return run
        raise LookupError(f"no run with {step_count} steps in {self!r}")

    def has_thread(self, thread_id: str) -> bool:
        return thread_id in self._run_table().threads

    def run(self, thread_id: str, run_id: str) -> RunInfo | None:
        """The run, or None if it does not exist in that thread."""
        found = self._run_table().by_id.get(run_id)
        if found is None or found[1].thread_id != thread_id:
            return None
        return found[1]

    def is_cached(self, run: RunInfo) -> bool:
        with self._lock:
            return run.run_id in self._cache

    def serialized(self, run: RunInfo) -> SerializedRun:
        """The run's steps as JSON bytes, generated on first use and cached.

        Generation happens outside the dataset lock (other runs stay readable meanwhile)
        and under a per-run lock, so concurrent first reads generate a run only once.
        """
        with self._lock:
            hit = self._cache_hit(run.run_id)
            if hit is not None:
                return hit
            generating = self._generating.setdefault(run.run_id, threading.Lock())
        index = self._run_table().by_id[run.run_id][0]
        with generating:
            with self._lock:
                hit = self._cache_hit(run.run_id)
            if hit is not None:
                return hit
            result = _generate_run(self.seed, index, run)
            with self._lock:
                self._cache[run.run_id] = result
                self._cached_steps += len(result.ids)
                while self._cached_steps > _CACHE_MAX_STEPS and len(self._cache) > 1:
                    _, evicted = self._cache.popitem(last=False)
                    self._cached_steps -= len(evicted.ids)
                self._generating.pop(run.run_id, None)
        return result

    def _cache_hit(self, run_id: str) -> SerializedRun | None:
        hit = self._cache.get(run_id)
        if hit is not None:
            self._cache.move_to_end(run_id)
        return hit

    def steps(self, thread_id: str, run_id: str, include_content: bool = False) -> list[dict[str, Any]]:
        """The run's steps, ascending, exactly as the API returns them (fresh objects)."""
        data = self.serialized(self._require_run(thread_id, run_id))
        bodies = data.with_content if include_content else data.plain
        return [json.loads(body) for body in bodies]

    def step(
        self, thread_id: str, run_id: str, step_id: str, include_content: bool = False
    ) -> dict[str, Any]:
        """One step exactly as the API returns it; ``KeyError`` if unknown."""
        data = self.serialized(self._require_run(thread_id, run_id))
        position = data.positions.get(step_id)
        if position is None:
            raise KeyError(f"no step {step_id!r} in run {run_id!r}")
        result: dict[str, Any] = json.loads(data.body(position, include_content))
        return result

    def write_manifest(self, path: str | Path) -> Path:
        """Write one CSV row per run: the local records a user would join against."""
        target = Path(path)
        with target.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(MANIFEST_COLUMNS)
            for run in self._run_table().runs:
                writer.writerow(
                    (run.thread_id, run.run_id, run.customer, run.app_version, run.started_at_iso)
                )
        return target

    def _require_run(self, thread_id: str, run_id: str) -> RunInfo:
        run = self.run(thread_id, run_id)
        if run is None:
            raise KeyError(f"no run {run_id!r} in thread {thread_id!r}")
        return run

    def _run_table(self) -> _RunTable:
        table = self._table
        if table is None:
            with self._lock:
                if self._table is None:
                    self._table = _RunTable.build(self.seed, self.config)
                table = self._table
        return table


@dataclass(frozen=True)
class _RunTable:
    runs: tuple[RunInfo, ...]
    threads: dict[str, tuple[RunInfo, ...]]
    by_id: dict[str, tuple[int, RunInfo]]  # run_id -> (generation index, run)
    assistants: tuple[str, ...]

    @classmethod
    def build(cls, seed: int, config: DatasetConfig) -> _RunTable:
        rng = random.Random(f"duckdb-openai-emulator:{seed}:runs")
        assistants = [_make_id(rng, "asst_") for _ in range(_ASSISTANTS)]
        thread_ids = [_make_id(rng, "thread_") for _ in range(config.threads)]
        clock = _EPOCH
        # (thread position, generation index, run) so edge runs can join existing threads.
        drafted: list[tuple[int, int, RunInfo]] = []

        def draft(thread_pos: int, step_count: int) -> None:
            nonlocal clock
            clock += rng.randint(45, 1_800)
            run = RunInfo(
                thread_id=thread_ids[thread_pos],
                run_id=_make_id(rng, "run_"),
                step_count=step_count,
                customer=rng.choice(_CUSTOMERS),
                app_version=rng.choice(_APP_VERSIONS),
                started_at=clock,
                assistant_id=rng.choice(assistants),
            )
            drafted.append((thread_pos, len(drafted), run))

        for thread_pos in range(config.threads):
            for _ in range(config.runs_per_thread):
                draft(thread_pos, _draw_step_count(rng, config.mean_steps))
        if config.edge_runs:
            for k, count in enumerate(EDGE_STEP_COUNTS):
                draft(k % config.threads, count)
        drafted.sort(key=lambda item: (item[0], item[1]))
        runs = tuple(run for _, _, run in drafted)
        threads: dict[str, list[RunInfo]] = {thread_id: [] for thread_id in thread_ids}
        for run in runs:
            threads[run.thread_id].append(run)
        return cls(
            runs=runs,
            threads={key: tuple(value) for key, value in threads.items()},
            by_id={run.run_id: (index, run) for _, index, run in drafted},
            assistants=tuple(assistants),
        )


def _draw_step_count(rng: random.Random, mean: float) -> int:
    # Exponential: mostly short runs, a tail past one page (20) and, rarely, past 100.
    if mean <= 0:
        return 0
    return int(rng.expovariate(1.0 / mean) + 0.5)


def _make_id(rng: random.Random, prefix: str) -> str:
    # 18 random bytes are exactly 24 base64 characters; '+' and '/' are mapped to letters
    # so the suffix is alphanumeric like the real ids.
    raw = base64.b64encode(rng.getrandbits(144).to_bytes(18, "big"))
    return prefix + raw.translate(_ID_TRANSLATION).decode()


def _weighted(rng: random.Random, options: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([name for name, _ in options], weights=[weight for _, weight in options])[0]


def _dump(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def _generate_run(seed: int, index: int, run: RunInfo) -> SerializedRun:
    rng = random.Random(f"duckdb-openai-emulator:{seed}:run:{index}")
    outcome = _weighted(rng, _OUTCOMES)
    clock = run.started_at + rng.randint(0, 3)
    prompt_tokens = rng.randint(150, 1_200)
    ids: list[str] = []
    plain: list[bytes] = []
    full: list[bytes] = []
    for position in range(run.step_count):
        status = outcome if position == run.step_count - 1 else "completed"
        step, clock = _generate_step(rng, run, status, clock, prompt_tokens)
        # The context grows with every step until the thread is truncated.
        prompt_tokens = min(prompt_tokens + rng.randint(20, 400), _MAX_PROMPT_TOKENS)
        full_bytes = _dump(step)
        ids.append(step["id"])
        full.append(full_bytes)
        plain.append(_dump(_without_content(step)) if _has_content(step) else full_bytes)
    return SerializedRun(
        ids=tuple(ids),
        positions={step_id: i for i, step_id in enumerate(ids)},
        plain=tuple(plain),
        with_content=tuple(full),
    )


def _generate_step(
    rng: random.Random, run: RunInfo, status: str, created_at: int, prompt_tokens: int
) -> tuple[dict[str, Any], int]:
    settled = status != "in_progress"
    step_type = "message_creation" if rng.random() < 0.35 else "tool_calls"
    details: dict[str, Any]
    if step_type == "message_creation":
        details = {"type": "message_creation", "message_creation": {"message_id": _make_id(rng, "msg_")}}
    else:
        calls = [_tool_call(rng, settled) for _ in range(rng.choices((1, 2, 3), weights=(70, 22, 8))[0])]
        details = {"type": "tool_calls", "tool_calls": calls}
    ended = created_at + _duration(rng, details)
    timestamps: dict[str, int | None] = dict.fromkeys(_END_TIMESTAMPS)
    last_error = None
    if status == "completed":
        timestamps["completed_at"] = ended
    elif status == "failed":
        timestamps["failed_at"] = ended
        code, message = rng.choice(_ERRORS)
        last_error = {"code": code, "message": message}
    elif status == "cancelled":
        timestamps["cancelled_at"] = ended
    elif status == "expired":
        ended = created_at + 600  # runs expire ten minutes after they stall
        timestamps["expired_at"] = ended
    completion = rng.randint(4, 700)
    usage = (
        {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": prompt_tokens + completion,
        }
        if settled
        else None
    )
    metadata = dict(rng.choice(_METADATA)) if rng.random() < 0.4 else {}
    step: dict[str, Any] = {
        "id": _make_id(rng, "step_"),
        "object": "thread.run.step",
        "created_at": created_at,
        "run_id": run.run_id,
        "assistant_id": run.assistant_id,
        "thread_id": run.thread_id,
        "type": step_type,
        "status": status,
        **timestamps,
        "last_error": last_error,
        "step_details": details,
        "metadata": metadata,
        "usage": usage,
    }
    # Ties in created_at happen (several steps in one second); position defines order.
    next_created = (ended if settled else created_at) + rng.choice((0, 0, 1, 2))
    return step, next_created


#: Seconds a step takes, by what it does: tools run in parallel, so a step lasts as long as its slowest.
_SECONDS = {
    "message_creation": (1, 6),
    "function": (0, 4),
    "file_search": (1, 9),
    "code_interpreter": (2, 30),
}


def _duration(rng: random.Random, details: dict[str, Any]) -> int:
    if details["type"] == "message_creation":
        return rng.randint(*_SECONDS["message_creation"])
    return max(rng.randint(*_SECONDS[call["type"]]) for call in details["tool_calls"])


def _tool_call(rng: random.Random, settled: bool) -> dict[str, Any]:
    call_id = _make_id(rng, "call_")
    kind = rng.choices(("function", "code_interpreter", "file_search"), weights=(50, 25, 25))[0]
    if kind == "function":
        name, arguments, output = _function_call(rng)
        submitted = settled and rng.random() > 0.03
        return {
            "id": call_id,
            "type": "function",
            "function": {"name": name, "arguments": arguments, "output": output if submitted else None},
        }
    if kind == "code_interpreter":
        code, output_kind = rng.choice(_CODE)
        outputs: list[dict[str, Any]] = []
        if settled:
            if output_kind == "image":
                outputs.append({"type": "image", "image": {"file_id": _make_id(rng, "file-")}})
                if rng.random() < 0.5:
                    outputs.append({"type": "logs", "logs": "Saved chart.png"})
            else:
                outputs.append({"type": "logs", "logs": rng.choice(_LOGS)})
        return {
            "id": call_id,
            "type": "code_interpreter",
            "code_interpreter": {"input": code, "outputs": outputs},
        }
    threshold = rng.choice((0.0, 0.0, 0.25, 0.5))
    scores = sorted(
        (round(rng.uniform(max(threshold, 0.3), 0.99), 4) for _ in range(rng.randint(0, 4))), reverse=True
    )
    results = [
        {
            "file_id": _make_id(rng, "file-"),
            "file_name": rng.choice(_FILES),
            "score": score,
            "content": [{"type": "text", "text": rng.choice(_SNIPPETS)}],
        }
        for score in (scores if settled else [])
    ]
    return {
        "id": call_id,
        "type": "file_search",
        "file_search": {
            "ranking_options": {"ranker": rng.choice(_RANKERS), "score_threshold": threshold},
            "results": results,
        },
    }


def _function_call(rng: random.Random) -> tuple[str, str, str]:
    choice = rng.randrange(5)
    order = f"ORD-{rng.randint(10_000, 99_999)}"
    if choice == 0:
        return (
            "get_order_status",
            json.dumps({"order_id": order}),
            json.dumps({"order_id": order, "status": rng.choice(("shipped", "pending", "delivered"))}),
        )
    if choice == 1:
        city = rng.choice(("Berlin", "São Paulo", "Tokyo", "Toronto"))
        return (
            "get_weather",
            json.dumps({"location": city, "unit": "celsius"}, ensure_ascii=False),
            json.dumps({"temperature": rng.randint(-5, 34), "conditions": "clear"}),
        )
    if choice == 2:
        return (
            "search_inventory",
            json.dumps({"query": rng.choice(("usb-c cable", "standing desk", "monitor arm")), "limit": 5}),
            json.dumps({"hits": rng.randint(0, 40)}),
        )
    if choice == 3:
        return (
            "create_support_ticket",
            json.dumps({"subject": "Refund request", "priority": rng.choice(("low", "high"))}),
            json.dumps({"ticket_id": f"SUP-{rng.randint(1000, 9999)}"}),
        )
    return (
        "lookup_customer",
        json.dumps({"email": "jane.doe@example.com"}),
        json.dumps({"customer_id": f"cus_{rng.randint(100_000, 999_999)}", "tier": "gold"}),
    )


def _has_content(step: dict[str, Any]) -> bool:
    details = step["step_details"]
    return details["type"] == "tool_calls" and any(
        call["type"] == "file_search" and call["file_search"]["results"] for call in details["tool_calls"]
    )


def _without_content(step: dict[str, Any]) -> dict[str, Any]:
    calls = []
    for call in step["step_details"]["tool_calls"]:
        if call["type"] == "file_search":
            search = call["file_search"]
            results = [{k: v for k, v in result.items() if k != "content"} for result in search["results"]]
            call = {**call, "file_search": {**search, "results": results}}
        calls.append(call)
    return {**step, "step_details": {**step["step_details"], "tool_calls": calls}}
