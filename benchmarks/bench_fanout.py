"""Fetching many runs, and one long run, through DuckDB: ours against the official SDK and the ideal.

    python -m benchmarks.bench_fanout [--quick] [--parts abcd] [--repeats N]

Each part starts its own emulator in process mode (so the server does not share this process's GIL)
and prints ratios against a baseline measured in the same run:

a. Fan-out: RUNS runs of about 10 steps (one page each) at 200 ms latency, concurrency 32:
   `SELECT count(*) FROM runs r, run_steps(r.thread_id, r.run_id) s`, against the ideal
   (runs x 200 ms / 32; target <= 1.15x), against the official SDK written as an expert would
   (AsyncOpenAI, async auto-pagination, asyncio.gather under Semaphore(32), model_dump()s into a DuckDB
   table via pyarrow; target <= 1.0x), and against the naive synchronous SDK loop (timed on a subset,
   extrapolated). The emulator generates every run once before timing, so no side pays for that.
b. One run of 10,000 steps at 50 ms latency: `SELECT count(*) FROM run_steps(...)` against the SDK's
   sync auto-pagination (target <= 0.55x), with the requests each made.
c. Faults: RUNS runs with fault_rate=0.1 and rate_limit=200/s, max_retries=10: the (run_id, step id)
   multiset must equal the emulator's ground truth; wall time against the same query on an emulator
   with the same rate limit and no faults.
d. Memory: peak RSS of a child process running the LATERAL count over 20,000 small runs (latency 0),
   against a child that only imports duckdb, pyarrow and duckdb_openai (target < 500 MB).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import os
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import openai
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

import duckdb_openai
from duckdb_openai.emulator import DatasetConfig, Emulator, RunInfo

from ._common import (
    API_KEY,
    HTTP_TIMEOUT,
    Watchdog,
    emulator,
    info,
    load_runs,
    parser,
    ratio,
    sdk_quietly,
    timed,
    warm_up,
)

__all__ = ["main"]

SEED = 7
CONCURRENCY = 32
PAGE_LIMIT = 100
LATERAL = "SELECT count(*) FROM runs r, run_steps(r.thread_id, r.run_id) s"
LATERAL_IDS = "SELECT s.run_id, s.id FROM runs r, run_steps(r.thread_id, r.run_id) s"


@dataclasses.dataclass(frozen=True)
class Sizes:
    fanout_runs: int
    naive_runs: int
    fault_runs: int
    memory_runs: int
    repeats: int
    long_repeats: int


DEFAULT_SIZES = Sizes(
    fanout_runs=1000, naive_runs=100, fault_runs=1000, memory_runs=20_000, repeats=2, long_repeats=3
)
QUICK_SIZES = Sizes(
    fanout_runs=400, naive_runs=20, fault_runs=300, memory_runs=5_000, repeats=1, long_repeats=1
)


def small_runs(count: int, mean_steps: float = 10.0) -> DatasetConfig:
    """`count` runs (four per thread) of about `mean_steps` steps, without the long edge runs."""
    return DatasetConfig(
        threads=math.ceil(count / 4), runs_per_thread=4, mean_steps=mean_steps, edge_runs=False
    )


def pages_of(run: RunInfo) -> int:
    return max(1, math.ceil(run.step_count / PAGE_LIMIT))


# -- the ways of fetching ------------------------------------------------------------------------------


def connect(emu: Emulator, runs: list[RunInfo], **settings: Any) -> tuple[duckdb.DuckDBPyConnection, Any]:
    """A connection with the runs table and duckdb_openai registered against `emu`."""
    con = duckdb.connect()
    load_runs(con, runs)
    registration = duckdb_openai.register(
        con,
        api_key=API_KEY,
        base_url=emu.base_url,
        max_concurrency=CONCURRENCY,
        progress=False,
        timeout=HTTP_TIMEOUT,
        # Every round measures fetching: without this a finished run's steps come from the cache
        # (bench_cache measures that).
        cache=False,
        **settings,
    )
    return con, registration


def ours_lateral(
    emu: Emulator, runs: list[RunInfo], sql: str = LATERAL, **settings: Any
) -> tuple[float, Any]:
    """Seconds of one LATERAL query on a fresh connection and client (setup untimed), and its rows."""
    con, registration = connect(emu, runs, **settings)
    try:
        return timed(lambda: con.execute(sql).fetchall())
    finally:
        registration.close()
        con.close()


def sdk_expert(emu: Emulator, runs: list[RunInfo], con: duckdb.DuckDBPyConnection) -> int:
    """The official SDK as an expert would use it; returns the rows of the DuckDB table it built."""

    async def fetch() -> list[dict[str, Any]]:
        client = openai.AsyncOpenAI(
            base_url=emu.base_url, api_key=API_KEY, max_retries=2, timeout=HTTP_TIMEOUT
        )
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(run: RunInfo) -> list[dict[str, Any]]:
            async with gate:
                steps = client.beta.threads.runs.steps.list(
                    run.run_id, thread_id=run.thread_id, limit=PAGE_LIMIT, order="asc"
                )
                return [step.model_dump() async for step in steps]

        try:
            per_run = await asyncio.gather(*(one(run) for run in runs))
        finally:
            await client.close()
        return [row for rows in per_run for row in rows]

    with sdk_quietly():
        rows = asyncio.run(fetch())
    sdk_steps = pa.Table.from_pylist(rows)  # noqa: F841  (read by DuckDB's replacement scan)
    con.execute("CREATE OR REPLACE TABLE sdk_steps AS SELECT * FROM sdk_steps")
    return int(con.execute("SELECT count(*) FROM sdk_steps").fetchall()[0][0])


def sdk_naive(emu: Emulator, runs: list[RunInfo], con: duckdb.DuckDBPyConnection) -> int:
    """The synchronous SDK in a for loop, into pandas and then DuckDB."""
    client = openai.OpenAI(base_url=emu.base_url, api_key=API_KEY, timeout=HTTP_TIMEOUT)
    rows = []
    try:
        with sdk_quietly():
            for run in runs:
                for step in client.beta.threads.runs.steps.list(
                    run.run_id, thread_id=run.thread_id, limit=PAGE_LIMIT, order="asc"
                ):
                    rows.append(step.model_dump())
    finally:
        client.close()
    naive_steps = pd.DataFrame(rows)  # noqa: F841  (read by DuckDB's replacement scan)
    con.execute("CREATE OR REPLACE TABLE naive_steps AS SELECT * FROM naive_steps")
    return int(con.execute("SELECT count(*) FROM naive_steps").fetchall()[0][0])


def requests_made(emu: Emulator, fn: Callable[[], Any]) -> tuple[float, Any, int]:
    """Seconds, result and emulator requests of `fn()`."""
    emu.reset()
    seconds, result = timed(fn)
    return seconds, result, int(emu.stats()["requests"])


def check(label: str, got: int, want: int) -> bool:
    ok = got == want
    info(f"rows, {label}", f"{'PASS' if ok else 'FAIL'}: {got:,} (ground truth {want:,})")
    return ok


# -- the parts -------------------------------------------------------------------------------------------


def part_a(sizes: Sizes) -> bool:
    n, latency = sizes.fanout_runs, 0.2
    print(
        f"\na. fan-out: {n} runs, ~10 steps each, {latency * 1000:.0f} ms latency, concurrency {CONCURRENCY}"
    )
    with emulator(seed=SEED, latency_ms=latency * 1000, dataset=small_runs(n)) as emu:
        runs = emu.dataset.runs[:n]
        truth = sum(r.step_count for r in runs)
        pages = sum(pages_of(r) for r in runs)
        warm_up(emu, runs)
        scratch = duckdb.connect()
        ours_times, sdk_times, ok = [], [], True
        for _ in range(sizes.repeats):  # interleaved, so drift on a shared machine hits both alike
            seconds, rows, ours_requests = requests_made(emu, lambda: ours_lateral(emu, runs)[1])
            ours_times.append(seconds)
            ok &= rows[0][0] == truth
            seconds, sdk_rows, sdk_requests = requests_made(emu, lambda: sdk_expert(emu, runs, scratch))
            sdk_times.append(seconds)
            ok &= sdk_rows == truth
        subset = runs[: sizes.naive_runs]
        naive_seconds, naive_rows, _ = requests_made(emu, lambda: sdk_naive(emu, subset, scratch))
        ok &= naive_rows == sum(r.step_count for r in subset)
        scratch.close()

    ideal = n * latency / CONCURRENCY
    ours, sdk = min(ours_times), min(sdk_times)
    naive = naive_seconds * n / len(subset)
    info("steps, pages", f"{truth:,} steps in {pages:,} pages ({n:,} runs)")
    info("ideal: runs x latency / concurrency", f"{ideal:8.2f} s")
    info(f"ours (best of {sizes.repeats})", f"{ours:8.2f} s, {ours_requests} requests")
    info(f"SDK, async expert (best of {sizes.repeats})", f"{sdk:8.2f} s, {sdk_requests} requests")
    info(
        "SDK, naive sync loop",
        f"{naive:8.2f} s, extrapolated from {len(subset)} runs ({naive_seconds:.2f} s) to {n}",
    )
    ratio("ours / ideal", ours / ideal, 1.15)
    ratio("ours / SDK async expert", ours / sdk, 1.0)
    ratio("ours / SDK naive sync loop (extrapolated)", ours / naive)
    info("rows (ours, SDK expert, naive subset)", "PASS" if ok else "FAIL: a row count differs from truth")
    return ok


def part_b(sizes: Sizes) -> bool:
    steps, latency_ms = 10_000, 50.0
    repeats = sizes.long_repeats
    print(f"\nb. one run of {steps:,} steps, {latency_ms:.0f} ms latency, best of {repeats}")
    edge_only = DatasetConfig(threads=1, runs_per_thread=0, edge_runs=True)
    with emulator(seed=SEED, latency_ms=latency_ms, dataset=edge_only) as emu:
        run = emu.dataset.find_run(step_count=steps)
        warm_up(emu, [run])
        con, registration = connect(emu, [run])
        sql = f"SELECT count(*) FROM run_steps('{run.thread_id}', '{run.run_id}')"
        client = openai.OpenAI(base_url=emu.base_url, api_key=API_KEY, max_retries=2, timeout=HTTP_TIMEOUT)

        def sdk() -> int:
            with sdk_quietly():
                pager = client.beta.threads.runs.steps.list(
                    run.run_id, thread_id=run.thread_id, limit=PAGE_LIMIT, order="asc"
                )
                return sum(1 for _ in pager)

        ours_times, sdk_times, ok = [], [], True
        try:
            for _ in range(repeats):
                seconds, rows, ours_requests = requests_made(emu, lambda: con.execute(sql).fetchall())
                ours_times.append(seconds)
                ok &= rows[0][0] == steps
                seconds, count, sdk_requests = requests_made(emu, sdk)
                sdk_times.append(seconds)
                ok &= count == steps
        finally:
            client.close()
            registration.close()
            con.close()
    ours, sdk_best = min(ours_times), min(sdk_times)
    info("ours: run_steps(...)", f"{ours:8.2f} s, {ours_requests} requests")
    info("SDK: sync auto-pagination", f"{sdk_best:8.2f} s, {sdk_requests} requests")
    info("round trips at latency alone (SDK, ideal)", f"{sdk_requests * latency_ms / 1000:8.2f} s")
    ratio("ours / SDK", ours / sdk_best, 0.55)
    ratio("requests, ours / SDK", ours_requests / sdk_requests)
    info("rows", f"{'PASS' if ok else 'FAIL'}: {steps:,} from each, every time")
    return ok


def _ids_with_retries(emu: Emulator, runs: list[RunInfo]) -> tuple[float, list[Any], Exception | None, Any]:
    """Seconds, (run_id, id) rows, the query's error if any, and our client's request counters."""
    con, registration = connect(emu, runs, max_retries=10)
    try:
        seconds, rows = timed(lambda: con.execute(LATERAL_IDS).fetchall())
        return seconds, rows, None, registration.client.stats
    except duckdb.Error as exc:
        return float("nan"), [], exc, registration.client.stats
    finally:
        registration.close()
        con.close()


def part_c(sizes: Sizes) -> bool:
    n, rate_limit, fault_rate = sizes.fault_runs, 200.0, 0.1
    print(f"\nc. faults: {n} runs, fault_rate={fault_rate}, rate_limit={rate_limit:.0f}/s, max_retries=10")
    config = small_runs(n)
    walls: dict[float, float] = {}
    ok = True
    truth: Counter[tuple[str, str]] = Counter()
    for faults in (0.0, fault_rate):
        # No warm-up: both servers generate the same runs on first read, and the rate limit, not that
        # generation, sets the pace.
        with emulator(seed=SEED, rate_limit=rate_limit, fault_rate=faults, dataset=config) as emu:
            runs = emu.dataset.runs[:n]
            if not truth:
                truth = Counter(
                    (run.run_id, step["id"])
                    for run in runs
                    for step in emu.dataset.steps(run.thread_id, run.run_id)
                )
            walls[faults], rows, error, client = _ids_with_retries(emu, runs)
            server = emu.stats()
        label = "with faults" if faults else "without faults"
        got = Counter((run_id, step_id) for run_id, step_id in rows)
        same = error is None and got == truth and len(rows) == sum(truth.values())
        ok &= same
        throttled = server["by_endpoint"]["list"].get("429", 0)
        info(
            f"{label}: server",
            f"{server['requests']:,} requests, {throttled} 429s, faults {server['faults']}",
        )
        info(
            f"{label}: client",
            f"{client.requests:,} requests, {client.retries:,} retries, {client.throttled:,} throttled",
        )
        problem = error or f"{len(got - truth)} unexpected, {len(truth - got)} missing"
        info(
            f"{label}: (run_id, id) multiset = truth",
            f"{'PASS' if same else f'FAIL ({problem})'}: {len(rows):,} rows, truth {sum(truth.values()):,}",
        )
    # The emulator's token bucket starts full: one second of budget is a free burst.
    floor = max(n - rate_limit, 1.0) / rate_limit
    info("floor: (runs - burst) / rate limit", f"{floor:8.2f} s")
    info("without faults", f"{walls[0.0]:8.2f} s")
    info("with faults", f"{walls[fault_rate]:8.2f} s")
    ratio("faults / no faults", walls[fault_rate] / walls[0.0])
    ratio("no faults / rate-limit floor", walls[0.0] / floor)
    return ok


def _child(*args: str) -> dict[str, Any]:
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks._rss_child", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).resolve().parent.parent,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    if completed.returncode != 0:
        raise RuntimeError(f"the child {args[0]!r} failed:\n{completed.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def part_d(sizes: Sizes) -> bool:
    n = sizes.memory_runs
    print(f"\nd. memory: LATERAL over {n:,} small runs, latency 0, peak RSS of a child process")
    with (
        emulator(seed=SEED, dataset=small_runs(n, mean_steps=5.0)) as emu,
        tempfile.TemporaryDirectory() as tmp,
    ):
        runs = emu.dataset.runs[:n]
        truth = sum(r.step_count for r in runs)
        runs_file = str(Path(tmp) / "runs.parquet")
        pq.write_table(
            pa.table({"thread_id": [r.thread_id for r in runs], "run_id": [r.run_id for r in runs]}),
            runs_file,
        )
        baseline = _child("baseline")
        query = _child("query", runs_file, emu.base_url)
        requests = emu.stats()["requests"]
    ok = query["rows"] == truth and query["peak_rss_mib"] < 500
    info("baseline child: imports only", f"{baseline['peak_rss_mib']:8.1f} MiB")
    info("query child: LATERAL count", f"{query['peak_rss_mib']:8.1f} MiB   (target < 500 MiB)")
    info("added by the query", f"{query['peak_rss_mib'] - baseline['peak_rss_mib']:8.1f} MiB")
    ratio("query child / baseline child", query["peak_rss_mib"] / baseline["peak_rss_mib"])
    info(
        "query (info)",
        f"{query['seconds']:.1f} s, {requests:,} requests, {requests / query['seconds']:,.0f}/s",
    )
    check("query child", query["rows"], truth)
    return ok


PARTS = {"a": part_a, "b": part_b, "c": part_c, "d": part_d}


def main(argv: list[str] | None = None) -> int:
    args_parser = parser("bench_fanout", __doc__)
    args_parser.add_argument("--parts", default="abcd", help="which parts to run (default: abcd)")
    args_parser.add_argument("--repeats", type=int, help="timed rounds in a and b (default 2 and 3; quick 1)")
    args = args_parser.parse_args(argv)
    sizes = QUICK_SIZES if args.quick else DEFAULT_SIZES
    if args.repeats:
        sizes = dataclasses.replace(sizes, repeats=args.repeats, long_repeats=args.repeats)
    unknown = set(args.parts) - set(PARTS)
    if unknown:
        args_parser.error(f"unknown parts {''.join(sorted(unknown))!r}; choose from {''.join(PARTS)}")
    print(f"bench_fanout ({'quick' if args.quick else 'default'} sizes): emulator in process mode")
    ok = True
    with Watchdog(480 if args.quick else 900, "bench_fanout"):
        for name in args.parts:
            ok &= PARTS[name](sizes)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
