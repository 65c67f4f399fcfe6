"""The cache: the second LATERAL query over finished runs, against the first.

    python -m benchmarks.bench_cache [--quick] [--repeats N]

One emulator in process mode at 200 ms latency serves RUNS runs of about 10 steps (one page each), all
finished (their last step terminal); the query is `SELECT count(*), sum(s.usage.total_tokens) FROM runs
r, run_steps(r.thread_id, r.run_id) s` at concurrency 32, each on a fresh client:

- baseline: the query with `cache=False`, as every query cost before the cache;
- memory, runs' statuses known (learned from the runs lists first, untimed): the cold query, which
  fills the cache, then the warm one (target: at least 50x faster, 0 requests); the cold query against
  the baseline is what filling costs (target: at most 1.05x);
- disk, statuses known: the same with `cache_dir`: the warm query on the same client (its memory front)
  and on a new client (reading the files, as a new process would); bytes on disk per 1,000 steps;
- steps only known: `final_after=0`, so only the kept steps count: the warm query's requests (target: at
  most one per run, each with `after=`); and with the default final_after (24 h; the emulator's runs
  are from 2024, so every kept run is assumed final): its requests.
"""

from __future__ import annotations

import gc
import math
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb

import duckdb_openai
from duckdb_openai.emulator import DatasetConfig, Emulator, Family, RunInfo
from duckdb_openai.resources.runs import RUNS, TERMINAL_STATUSES

from ._common import API_KEY, HTTP_TIMEOUT, Watchdog, emulator, info, load_runs, parser, ratio, timed, warm_up

__all__ = ["main"]

SEED = 7
CONCURRENCY = 32
LATENCY_MS = 200.0
QUERY = "SELECT count(*), sum(s.usage.total_tokens) FROM runs r, run_steps(r.thread_id, r.run_id) s"
TERMINAL = set(TERMINAL_STATUSES)


def finished_runs(emu: Emulator, count: int) -> list[RunInfo]:
    family = Family(emu.dataset)
    found: list[RunInfo] = []
    for thread_id in emu.dataset.thread_ids:
        status = {run["id"]: run["status"] for run in family.runs(thread_id)}
        found.extend(r for r in emu.dataset.thread_runs(thread_id) if status[r.run_id] in TERMINAL)
    return found[:count]


class Session:
    """One registered connection on a fresh client."""

    def __init__(self, emu: Emulator, runs: list[RunInfo], **settings: Any) -> None:
        self.emu = emu
        self.con = duckdb.connect()
        load_runs(self.con, runs)
        self.registration = duckdb_openai.register(
            self.con,
            api_key=API_KEY,
            base_url=emu.base_url,
            max_concurrency=CONCURRENCY,
            progress=False,
            timeout=HTTP_TIMEOUT,
            **settings,
        )
        self.runs = runs

    def learn_statuses(self) -> None:
        threads = sorted({r.thread_id for r in self.runs})
        self.registration.client.fan_out([RUNS.bind_list({"thread_id": t}) for t in threads])

    def query(self) -> tuple[float, Any, int, list[str | None]]:
        """Seconds, result, requests and the `after` cursor of each steps request."""
        self.emu.reset()
        gc.collect()  # the garbage of an earlier query is not this one's cost
        seconds, result = timed(lambda: self.con.execute(QUERY).fetchall())
        log = self.emu.requests()
        afters = [(r["query"].get("after") or [None])[0] for r in log if r["endpoint"] == "list"]
        return seconds, result, int(self.emu.stats()["requests"]), afters

    def close(self) -> None:
        self.registration.close()
        self.con.close()


def best(repeats: int, fn: Callable[[], tuple[float, Any, int, list[str | None]]]) -> tuple[float, Any, int]:
    runs = [fn() for _ in range(max(1, repeats))]
    seconds, result, requests, _ = min(runs, key=lambda r: r[0])
    return seconds, result, requests


def folder_bytes(folder: Path) -> tuple[int, int]:
    """Bytes of the entry files, and of everything (the status log too)."""
    entries = total = 0
    for path in folder.rglob("*"):
        if path.is_file():
            size = path.stat().st_size
            total += size
            entries += size if path.suffix == ".arrow" else 0
    return entries, total


def run(count: int, repeats: int) -> bool:
    ok = True
    population = DatasetConfig(
        threads=math.ceil(count * 1.15 / 4), runs_per_thread=4, mean_steps=10.0, edge_runs=False
    )
    with emulator(seed=SEED, latency_ms=LATENCY_MS, dataset=population) as emu:
        runs = finished_runs(emu, count)
        steps = sum(r.step_count for r in runs)
        warm_up(emu, runs)
        print(
            f"\n{len(runs):,} finished runs, {steps:,} steps, {LATENCY_MS:.0f} ms latency, concurrency "
            f"{CONCURRENCY}, best of {repeats} where repeated"
        )

        def baseline() -> tuple[float, Any, int, list[str | None]]:
            session = Session(emu, runs, cache=False)
            try:
                return session.query()
            finally:
                session.close()

        base_s, truth, base_requests = best(repeats, baseline)
        info("baseline: cache=False", f"{base_s:8.2f} s, {base_requests} requests")
        ok &= truth[0][0] == steps

        # Memory, statuses known.
        colds, warms = [], []
        for _ in range(max(1, repeats)):
            session = Session(emu, runs)
            session.learn_statuses()
            colds.append(session.query())
            warms.extend(session.query() for _ in range(5))
            session.close()
        cold_s, cold_result, cold_requests, _ = min(colds, key=lambda r: r[0])
        warm_s, warm_result, warm_requests, _ = min(warms, key=lambda r: r[0])
        ok &= cold_result == truth and warm_result == truth
        info("memory, statuses known: cold (fills)", f"{cold_s:8.2f} s, {cold_requests} requests")
        info(
            f"memory, statuses known: warm (best of {len(warms)})",
            f"{warm_s:8.3f} s, {warm_requests} requests",
        )
        ratio("memory: cold / warm", cold_s / warm_s, 50.0, at_least=True)
        ratio("memory: cold / baseline (cost of filling)", cold_s / base_s, 1.05)
        info(
            "memory: warm requests",
            f"{warm_requests} (target 0): {'met' if warm_requests == 0 else 'MISSED'}",
        )
        ok &= warm_requests == 0

        # Disk, statuses known: the warm query on a new client.
        disk_colds, disk_warms, same_warms, sizes = [], [], [], (0, 0)
        for _ in range(max(1, repeats)):
            with tempfile.TemporaryDirectory(prefix="bench-cache-") as folder:
                session = Session(emu, runs, cache_dir=folder)
                session.learn_statuses()
                disk_colds.append(session.query())
                same_warms.extend(session.query() for _ in range(5))
                session.close()
                sizes = folder_bytes(Path(folder))
                for _ in range(3):
                    reader = Session(emu, runs, cache_dir=folder)
                    disk_warms.append(reader.query())
                    reader.close()
        disk_cold_s, disk_cold_result, _, _ = min(disk_colds, key=lambda r: r[0])
        disk_warm_s, disk_warm_result, disk_warm_requests, _ = min(disk_warms, key=lambda r: r[0])
        same_s, same_result, same_requests, _ = min(same_warms, key=lambda r: r[0])
        ok &= disk_cold_result == truth and disk_warm_result == truth and same_result == truth
        info("disk, statuses known: cold (fills)", f"{disk_cold_s:8.2f} s")
        info(
            f"disk: warm, same client (best of {len(same_warms)})",
            f"{same_s:8.3f} s, {same_requests} requests",
        )
        info(
            f"disk: warm on a new client (best of {len(disk_warms)})",
            f"{disk_warm_s:8.3f} s, {disk_warm_requests} requests",
        )
        ratio("disk: cold / warm, same client", disk_cold_s / same_s, 50.0, at_least=True)
        ratio("disk: cold / warm, new client (reads files)", disk_cold_s / disk_warm_s, 50.0, at_least=True)
        ratio("disk: cold / baseline (cost of filling)", disk_cold_s / base_s, 1.05)
        info(
            "disk: bytes per 1,000 steps",
            f"{sizes[0] * 1000 / steps:,.0f} in entries, {sizes[1] * 1000 / steps:,.0f} with the status log "
            f"({sizes[1]:,} bytes for {steps:,} steps)",
        )
        ok &= disk_warm_requests == 0 and same_requests == 0

        # Steps only known.
        session = Session(emu, runs, final_after=0)
        session.query()
        only_s, only_result, only_requests, afters = session.query()
        session.close()
        with_after = sum(1 for a in afters if a is not None)
        info(
            "steps only (final_after=0): warm",
            f"{only_s:8.2f} s, {only_requests} requests for {len(runs):,} runs, {with_after} with after=",
        )
        info(
            "steps only: requests per run",
            f"{only_requests / len(runs):.2f} (target <= 1): "
            + ("met" if only_requests <= len(runs) else "MISSED"),
        )
        ok &= only_result == truth and only_requests <= len(runs) and with_after == only_requests
        session = Session(emu, runs)
        session.query()
        assumed_s, assumed_result, assumed_requests, _ = session.query()
        session.close()
        info("steps only, final_after 24 h: warm", f"{assumed_s:8.3f} s, {assumed_requests} requests")
        ok &= assumed_result == truth and assumed_requests == 0
    info("results equal the baseline's", "PASS" if ok else "FAIL")
    return ok


def main(argv: list[str] | None = None) -> int:
    args_parser = parser("bench_cache", __doc__)
    args_parser.add_argument("--runs", type=int, help="finished runs (default 1,000; quick 400)")
    args_parser.add_argument(
        "--repeats", type=int, help="timed rounds of the cold queries (default 2; quick 1)"
    )
    args = args_parser.parse_args(argv)
    count = args.runs or (400 if args.quick else 1000)
    repeats = args.repeats or (1 if args.quick else 2)
    print(f"bench_cache ({'quick' if args.quick else 'default'} sizes): emulator in process mode")
    with Watchdog(480 if args.quick else 900, "bench_cache"):
        ok = run(count, repeats)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
