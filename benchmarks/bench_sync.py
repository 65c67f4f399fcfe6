"""The sync against the same reads as plain queries, on disk against zstd Parquet, and against dlt.

    python -m benchmarks.bench_sync [--quick] [--repeats N] [--parts abc]

One emulator in process mode at 200 ms per page (concurrency 32): every stored chat completion (250)
with its messages, the assistants, and a log of RUNS Assistants runs (`thread_id`, `run_id`) with their
steps. Each part prints ratios against a baseline measured in the same run:

a. The first sync into a new DuckDB file against the same reads as plain queries (`CREATE TABLE ...
   AS SELECT ... FROM chat_completions() ...`, one per table, in memory; target <= 1.3x); then the
   second sync with nothing new (seconds, target < 2 s; its requests and rows written, which must be
   0); both against the emulator's ground truth (rows per table).
b. Size: the DuckDB target's file against the same rows as zstd Parquet, one file a table (target
   <= 1.10x), and the Parquet target's dataset against the same; for RUNS runs and, by default, for
   10,000 (an emulator without latency of its own: size does not depend on it). Then the same rows
   synced by a daily job (8 syncs into one file, each with an eighth more of the runs and the clock a
   day on), with compaction as it is by default and with compact=False: the file against the one
   synced at once and against zstd Parquet.
c. dlt (`pip install 'duckdb-openai[bench]'`): a `rest_api` source over the same endpoints, cursor
   pagination on `last_id`/`has_more`, incremental cursors on the creation time, `merge` into DuckDB,
   its dependent resources parallelized over 32 workers; first and second run against the sync: time,
   requests and rows. Skipped, saying why, when dlt is not installed.

The organization's ledger is part of every sync here: the ten usage endpoints and costs over the 180
days of the emulator's organization (its clock set to the end of them, so every day has ended), grouped
by every dimension as the sync stores them, the audit log, projects and users (an admin key).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
import math
import os
import shutil
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

import duckdb_openai
from duckdb_openai.emulator import DatasetConfig, Emulator
from duckdb_openai.emulator.successors import Successors
from duckdb_openai.sync import TABLES as SYNC_TABLES
from duckdb_openai.sync import SyncTable

from ._common import API_KEY, HTTP_TIMEOUT, Watchdog, emulator, info, parser, ratio, timed

__all__ = ["main"]

SEED = 7
CONCURRENCY = 32
LATENCY_MS = 200.0
#: The syncs of part b's daily job.
DAYS = 8
#: The ledger's first day and the emulator's clock: 180 whole days.
SINCE = "2024-10-01"
NOW = datetime(2025, 3, 30, tzinfo=UTC)
ADMIN_KEY = "sk-admin-bench"
#: The ledger's tables (every one the sync declares) and the plain query reading the same rows.
LEDGER_TABLES = [t for t in SYNC_TABLES if t.resource.family.credential == "admin_key"]


def _plain_ledger(table: SyncTable) -> str:
    resource = table.resource
    if resource.grouping is not None:
        grouping = next(f for f in resource.filters if f.name == resource.grouping)
        dims = ", ".join(f"'{d}'" for d in grouping.choices)
        return f"SELECT * FROM {resource.name}(TIMESTAMPTZ '{SINCE} 00:00:00+00', group_by := [{dims}])"
    if resource.name == "audit_logs":
        return f"SELECT * FROM audit_logs(start_time := TIMESTAMPTZ '{SINCE} 00:00:00+00')"
    if resource.name == "projects":
        return "SELECT * FROM projects(include_archived := true)"
    return f"SELECT * FROM {resource.name}()"


LEDGER = [t.name for t in LEDGER_TABLES]
LEDGER_PLAIN: dict[str, str] = {t.name: _plain_ledger(t) for t in LEDGER_TABLES}
TABLES = ["assistants", "chat_completions", "chat_completion_messages", "runs", "run_steps", *LEDGER]
#: The same reads as plain queries: one CREATE TABLE per synced table.
PLAIN = {
    "assistants": "SELECT * FROM assistants()",
    "chat_completions": "SELECT * FROM chat_completions()",
    "chat_completion_messages": "SELECT m.* FROM chat_completions c, chat_completion_messages(c.id) m",
    "runs": "SELECT r.* FROM my_runs l, run(l.thread_id, l.run_id) r",
    "run_steps": "SELECT s.* FROM my_runs l, run_steps(l.thread_id, l.run_id) s",
    **LEDGER_PLAIN,
}


@dataclasses.dataclass(frozen=True)
class Sizes:
    runs: int
    repeats: int
    #: A larger population for the size only (0: none): DuckDB's 256 KB blocks weigh less there.
    size_runs: int


DEFAULT_SIZES = Sizes(runs=1000, repeats=2, size_runs=10_000)
QUICK_SIZES = Sizes(runs=400, repeats=1, size_runs=0)


def settings(emu: Emulator) -> dict[str, Any]:
    return {
        "api_key": API_KEY,
        "admin_key": ADMIN_KEY,
        "base_url": emu.base_url,
        "max_concurrency": CONCURRENCY,
        "timeout": HTTP_TIMEOUT,
        "progress": False,
    }


def run_log(emu: Emulator) -> pa.Table:
    """The user's log of runs: `thread_id`, `run_id`."""
    runs = emu.dataset.runs
    return pa.table({"thread_id": [r.thread_id for r in runs], "run_id": [r.run_id for r in runs]})


def ground_truth(emu: Emulator) -> dict[str, int]:
    """Rows per table, from the emulator's own data (not from any client)."""
    population = Successors(SEED).population
    return {
        "assistants": 5,
        "chat_completions": len(population.chat_objects),
        "chat_completion_messages": sum(len(m.ids) for m in population.chat_messages.values()),
        "runs": len(emu.dataset.runs),
        "run_steps": sum(r.step_count for r in emu.dataset.runs),
    }


def plain_queries(emu: Emulator) -> dict[str, int]:
    """The same reads as plain queries into an in-memory database; rows per table."""
    con = duckdb.connect()
    con.register("_log", run_log(emu))
    con.execute("CREATE TABLE my_runs AS SELECT * FROM _log")
    registration = duckdb_openai.register(con, cache=False, **settings(emu))
    try:
        counts = {}
        for table in TABLES:
            con.execute(f"CREATE TABLE {table} AS {PLAIN[table]}")
            counts[table] = int(con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])
        return counts
    finally:
        registration.close()
        con.close()


def requests_of(emu: Emulator, fn: Callable[[], Any]) -> tuple[float, Any, int]:
    emu.reset()
    seconds, result = timed(fn)
    return seconds, result, int(emu.stats()["requests"])


def check_rows(label: str, got: dict[str, int], want: dict[str, int]) -> bool:
    wrong = {t: (got.get(t), n) for t, n in want.items() if got.get(t) != n}
    info(f"rows, {label}", "PASS" if not wrong else f"FAIL: {wrong} (got, ground truth)")
    return not wrong


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# -- the parts -------------------------------------------------------------------------------------------


def part_a(emu: Emulator, sizes: Sizes, work: Path) -> bool:
    print(
        f"\na. {sizes.runs} runs (a run log), 250 stored chat completions and 180 days of the ledger, "
        f"{LATENCY_MS:.0f} ms per page, concurrency {CONCURRENCY}"
    )
    truth = ground_truth(emu)
    plain_counts = plain_queries(emu)  # untimed: the emulator generates each thread once, here
    ok = check_rows("plain queries", plain_counts, truth)
    plain_s = math.inf
    first_s = math.inf
    first: Any = None
    for round_ in range(sizes.repeats):
        seconds, _, plain_requests = requests_of(emu, lambda: plain_queries(emu))
        plain_s = min(plain_s, seconds)
        target = work / f"first-{round_}.duckdb"
        seconds, result, sync_requests = requests_of(
            emu,
            lambda target=target: duckdb_openai.sync(
                target, TABLES, log=run_log(emu), since=SINCE, **settings(emu)
            ),
        )
        if seconds < first_s:
            first_s, first = seconds, (target, result, sync_requests)
    target, result, sync_requests = first
    info("plain queries", f"{plain_s:.2f} s, {plain_requests:,} requests")
    info("first sync", f"{first_s:.2f} s, {sync_requests:,} requests, {result.rows_written:,} rows written")
    ratio("first sync / plain queries", first_s / plain_s, 1.3)
    synced = {t: s.counts.new for t, s in result.tables.items()}
    ok &= check_rows("first sync", synced, plain_counts)
    seconds, again, requests = requests_of(
        emu, lambda: duckdb_openai.sync(target, TABLES, log=run_log(emu), since=SINCE, **settings(emu))
    )
    info("second sync, nothing new", f"{seconds:.2f} s (target < 2 s: {'met' if seconds < 2 else 'MISSED'})")
    info("second sync: requests, rows written", f"{requests:,}, {again.rows_written}")
    ok &= again.rows_written == 0 and requests == again.requests
    print(str(again).replace("\n", "\n      "))
    return ok


def part_b(emu: Emulator, sizes: Sizes, work: Path) -> bool:
    print("\nb. size on disk: the DuckDB target and the Parquet target against zstd Parquet of the same rows")
    largest = max(sizes.runs, sizes.size_runs)
    measured: tuple[int, int] = (0, 0)
    for runs in [sizes.runs, *([sizes.size_runs] if sizes.size_runs else [])]:
        # Size does not depend on latency: a population of its own, served without any.
        with emulator(seed=SEED, dataset=population(runs), admin_key=ADMIN_KEY, now=NOW) as fast:
            measured = measure_size(fast, work / f"size-{runs}", runs)
    daily_job(work / "daily", largest, *measured)
    return True


def population(runs: int) -> DatasetConfig:
    return DatasetConfig(threads=runs // 4, runs_per_thread=4, mean_steps=10.0, edge_runs=False)


def daily_job(work: Path, runs: int, fresh_bytes: int, parquet_bytes: int) -> None:
    """The same rows synced by a daily job: DAYS syncs into one file, each with runs // DAYS more runs in
    the log and the organization's clock a day later (so the open day is replaced and the window of
    recent buckets read again); with compaction as it is by default, and without."""
    print(
        f"   a daily job: {DAYS} syncs of {runs // DAYS:,} more runs each, the clock a day on each time "
        f"(the same {runs:,} runs in the end):"
    )
    work.mkdir()
    for compact in (None, False):
        path = work / f"daily-{'default' if compact is None else 'never'}.duckdb"
        compactions = 0
        for day in range(DAYS):
            clock = NOW - timedelta(days=DAYS - 1 - day)
            with emulator(seed=SEED, dataset=population(runs), admin_key=ADMIN_KEY, now=clock) as fast:
                log = run_log(fast).slice(0, runs * (day + 1) // DAYS)
                result = duckdb_openai.sync(
                    path, TABLES, log=log, since=SINCE, compact=compact, **settings(fast)
                )
            compactions += any(note.startswith("compacted") for note in result.notes)
        size = path.stat().st_size
        label = f"{compactions} of its {DAYS} syncs compacted" if compact is None else "compact=False"
        info(f"after the job, {label}", f"{size / 1e6:.2f} MB")
        ratio("  / the same rows synced at once", size / fresh_bytes)
        ratio("  / zstd Parquet", size / parquet_bytes, 1.10)


def measure_size(emu: Emulator, work: Path, runs: int) -> tuple[int, int]:
    """Print the sizes; (the DuckDB target's bytes, zstd Parquet's)."""
    work.mkdir()
    target = work / "h.duckdb"
    folder = work / "dataset"
    duckdb_openai.sync(target, TABLES, log=run_log(emu), since=SINCE, **settings(emu))
    duckdb_openai.sync(parquet=folder, tables=TABLES, log=run_log(emu), since=SINCE, **settings(emu))
    plain = work / "plain-parquet"
    plain.mkdir()
    con = duckdb.connect()
    con.execute(f"ATTACH '{target}' AS h (READ_ONLY)")
    for table in TABLES:
        con.execute(f"COPY h.{table} TO '{plain / table}.parquet' (FORMAT parquet, COMPRESSION zstd)")
    steps = int(con.execute("SELECT count(*) FROM h.run_steps").fetchall()[0][0])
    con.close()
    parquet_bytes = folder_bytes(plain)
    target_bytes = target.stat().st_size
    print(f"   {runs:,} runs, {steps:,} steps, 250 chat completions, 180 days of the ledger:")
    info("zstd Parquet, one file a table", f"{parquet_bytes / 1e6:.2f} MB")
    info("DuckDB target", f"{target_bytes / 1e6:.2f} MB")
    ratio("DuckDB target / zstd Parquet", target_bytes / parquet_bytes, 1.10)
    dataset_bytes = folder_bytes(folder)
    info("Parquet target (a file a table and day)", f"{dataset_bytes / 1e6:.2f} MB")
    ratio("Parquet target / zstd Parquet", dataset_bytes / parquet_bytes, 1.10)
    return target_bytes, parquet_bytes


def dlt_source(emu: Emulator) -> Any:
    """dlt's rest_api source over the same endpoints, configured as its documentation suggests."""
    import dlt
    from dlt.sources.rest_api import rest_api_resources

    @dlt.resource(name="my_runs", primary_key="run_id", write_disposition="merge")
    def my_runs() -> Any:
        yield run_log(emu).to_pylist()

    def cursor() -> dict[str, Any]:
        return {
            "type": "cursor",
            "cursor_path": "last_id",
            "cursor_param": "after",
            "has_more_path": "has_more",
        }

    def child(name: str, path: str) -> dict[str, Any]:
        return {
            "name": name,
            "parallelized": True,
            "primary_key": "id",
            "write_disposition": "merge",
            "endpoint": {"path": path, "params": {"limit": 100, "order": "asc"}, "paginator": cursor()},
        }

    def single(name: str, path: str) -> dict[str, Any]:
        return {
            "name": name,
            "parallelized": True,
            "primary_key": "id",
            "write_disposition": "merge",
            "endpoint": {"path": path, "data_selector": "$", "paginator": "single_page"},
        }

    def incremental(name: str, path: str, column: str, **more: Any) -> dict[str, Any]:
        spec = child(name, path)
        spec["endpoint"]["incremental"] = {"cursor_path": column, "initial_value": 0}
        spec.update(more)
        return spec

    config: Any = {
        "client": {
            "base_url": emu.base_url + "/",
            "auth": {"type": "bearer", "token": API_KEY},
            "headers": {"OpenAI-Beta": "assistants=v2"},
        },
        "resource_defaults": {"endpoint": {"data_selector": "data"}},
        "resources": [
            my_runs,
            incremental("assistants", "assistants", "created_at", parallelized=False),
            incremental("chat_completions", "chat/completions", "created", parallelized=False),
            child("chat_completion_messages", "chat/completions/{resources.chat_completions.id}/messages"),
            single("runs", "threads/{resources.my_runs.thread_id}/runs/{resources.my_runs.run_id}"),
            child("run_steps", "threads/{resources.my_runs.thread_id}/runs/{resources.my_runs.run_id}/steps"),
        ],
    }
    return rest_api_resources(config)


def part_c(emu: Emulator, sizes: Sizes, work: Path) -> bool:
    print("\nc. dlt: a rest_api source over the same endpoints, merge into DuckDB")
    if importlib.util.find_spec("dlt") is None:
        info(
            "skipped",
            "dlt is not installed: pip install 'duckdb-openai[bench]' (or pip install 'dlt[duckdb]')",
        )
        return True
    # dlt's thread pool for parallelized resources, and how many items it keeps in flight (5 and 20 by
    # default): the same concurrency as the sync's.
    os.environ["EXTRACT__WORKERS"] = str(CONCURRENCY)
    os.environ["EXTRACT__MAX_PARALLEL_ITEMS"] = str(CONCURRENCY)
    os.environ["RUNTIME__LOG_LEVEL"] = "ERROR"  # its notes on columns that stayed NULL, once per load
    import dlt

    logging.getLogger("dlt").setLevel(logging.ERROR)
    pipeline = dlt.pipeline(
        pipeline_name="bench_sync",
        destination=dlt.destinations.duckdb(str(work / "dlt.duckdb")),
        dataset_name="openai",
        pipelines_dir=str(work / "dlt-pipelines"),
    )
    first_s, _, dlt_requests = requests_of(emu, lambda: pipeline.run(dlt_source(emu)))
    con = duckdb.connect(str(work / "dlt.duckdb"), read_only=True)
    dlt_rows = {t: int(con.execute(f"SELECT count(*) FROM openai.{t}").fetchall()[0][0]) for t in DLT_TABLES}
    con.close()
    sync_s, result, sync_requests = requests_of(
        emu,
        lambda: duckdb_openai.sync(
            work / "vs-dlt.duckdb", DLT_TABLES, log=run_log(emu), since=SINCE, **settings(emu)
        ),
    )
    ok = check_rows("dlt", dlt_rows, {t: s.counts.new for t, s in result.tables.items()})
    info("dlt first run", f"{first_s:.2f} s, {dlt_requests:,} requests, {sum(dlt_rows.values()):,} rows")
    info("sync, first", f"{sync_s:.2f} s, {sync_requests:,} requests, {result.rows_written:,} rows")
    ratio("sync / dlt, first run (time)", sync_s / first_s)
    second_s, _, dlt_again = requests_of(emu, lambda: pipeline.run(dlt_source(emu)))
    again_s, again, sync_again = requests_of(
        emu,
        lambda: duckdb_openai.sync(
            work / "vs-dlt.duckdb", DLT_TABLES, log=run_log(emu), since=SINCE, **settings(emu)
        ),
    )
    info("dlt second run", f"{second_s:.2f} s, {dlt_again:,} requests")
    info("sync, second", f"{again_s:.2f} s, {sync_again:,} requests, {again.rows_written} rows written")
    ratio("sync / dlt, second run (time)", again_s / second_s)
    info("requests, second run", f"sync {sync_again:,}, dlt {dlt_again:,}")
    return ok


#: The tables the dlt pipeline reads (its source covers the object lists, not the ledger's buckets).
DLT_TABLES = ["assistants", "chat_completions", "chat_completion_messages", "runs", "run_steps"]

PARTS = {"a": part_a, "b": part_b, "c": part_c}


def main(argv: list[str] | None = None) -> int:
    args_parser = parser("bench_sync", __doc__)
    args_parser.add_argument("--parts", default="abc", help="which parts to run (default: abc)")
    args_parser.add_argument("--repeats", type=int, help="timed rounds in a (default 2; quick 1)")
    args = args_parser.parse_args(argv)
    sizes = QUICK_SIZES if args.quick else DEFAULT_SIZES
    if args.repeats:
        sizes = dataclasses.replace(sizes, repeats=args.repeats)
    unknown = set(args.parts) - set(PARTS)
    if unknown:
        args_parser.error(f"unknown parts {''.join(sorted(unknown))!r}; choose from {''.join(PARTS)}")
    print(f"bench_sync ({'quick' if args.quick else 'default'} sizes): emulator in process mode")
    dataset = DatasetConfig(threads=sizes.runs // 4, runs_per_thread=4, mean_steps=10.0, edge_runs=False)
    ok = True
    work = Path(tempfile.mkdtemp(prefix="bench-sync-"))
    try:
        with (
            Watchdog(600 if args.quick else 1500, "bench_sync"),
            emulator(seed=SEED, dataset=dataset, latency_ms=LATENCY_MS, admin_key=ADMIN_KEY, now=NOW) as emu,
        ):
            for name in args.parts:
                ok &= PARTS[name](emu, sizes, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
