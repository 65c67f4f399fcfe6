"""A sync killed with SIGKILL at random points, several times, then run to its end, leaves exactly the
rows and the state of a clean sync (a DuckDB file, and a Parquet dataset: the same files too)."""

from __future__ import annotations

import dataclasses
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from duckdb_openai.emulator import DatasetConfig, Emulator
from duckdb_openai.emulator.successors import Successors
from duckdb_openai.resources.chat_completions import CHAT_COMPLETIONS
from duckdb_openai.sync import TABLES, TABLES_BY_NAME, Cursor
from tests.sync_helpers import differences, parquet_state, state_rows

pytestmark = pytest.mark.slow

KILLS = 4
#: Small chunks, so a sync commits many times and a kill can fall between any two of them.
CHILD = """
import sys, duckdb_openai
kind, target, url, log = sys.argv[1:5]
settings = dict(api_key="sk-test", base_url=url, progress="off", max_concurrency=4)
settings |= dict(chunk_rows=40, chunk_ids=4)
where = {"parquet": target} if kind == "parquet" else {"target": target, "compact": True}
duckdb_openai.sync(log=log, **where, **settings)
"""


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    dataset = DatasetConfig(threads=4, runs_per_thread=3, mean_steps=6, edge_runs=False)
    with Emulator(seed=7, dataset=dataset, latency_ms=20) as emu:
        yield emu


@pytest.fixture(scope="module")
def log(emulator: Emulator, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One log for every table: 16 responses with their conversations, and the threads."""
    path = tmp_path_factory.mktemp("log") / "log.csv"
    lines = ["response_id,conversation_id,thread_id"]
    lines += [f"{i.response_id},{i.conversation_id}," for i in Successors(7).infos[:16]]
    lines += [f",,{t}" for t in sorted({r.thread_id for r in emulator.dataset.runs})]
    path.write_text("\n".join(lines) + "\n")
    return path


def run(kind: str, target: Path, url: str, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", CHILD, kind, str(target), url, str(log)])


def rows_of(kind: str, target: Path, table: str) -> str:
    columns = ", ".join(f'"{f.name}"' for f in next(t for t in TABLES if t.name == table).schema)
    if kind == "parquet":
        return (
            f"SELECT {columns} FROM read_parquet('{target}/{table}/**/*.parquet', hive_partitioning = true)"
        )
    return f"SELECT {columns} FROM {'clean' if 'clean' in target.name else 'killed'}.{table}"


@pytest.mark.parametrize("kind", ["duckdb", "parquet"])
def test_killed_and_rerun_equals_a_clean_sync(
    emulator: Emulator, log: Path, tmp_path: Path, kind: str
) -> None:
    suffix = "" if kind == "parquet" else ".duckdb"
    clean, killed = tmp_path / f"clean{suffix}", tmp_path / f"killed{suffix}"
    started = time.monotonic()
    reference = run(kind, clean, emulator.base_url, log)
    assert reference.wait(timeout=300) == 0
    length = time.monotonic() - started

    chooser = random.Random(f"sync-kill-{kind}")
    delays = []
    for _ in range(KILLS):
        delay = chooser.uniform(0.5, length * 0.9)  # Python's start takes about half a second
        delays.append(round(delay, 2))
        child = run(kind, killed, emulator.base_url, log)
        time.sleep(delay)
        child.kill()
        child.wait()
    assert run(kind, killed, emulator.base_url, log).wait(timeout=300) == 0, delays

    con = duckdb.connect()
    if kind == "duckdb":
        con.execute(f"ATTACH '{clean}' AS clean (READ_ONLY)")
        con.execute(f"ATTACH '{killed}' AS killed (READ_ONLY)")
    totals = {}
    # The tables a sync reads without an admin key (the ledger's need one; tests/test_sync_ledger.py).
    for table in (t.name for t in TABLES if t.resource.family.credential == "api_key"):
        only_clean, only_killed, total = differences(
            con, rows_of(kind, clean, table), rows_of(kind, killed, table)
        )
        assert (only_clean, only_killed) == (0, 0), (table, delays)
        totals[table] = total
    assert all(totals.values()), totals  # every table has rows: the log reaches them all
    con.close()
    if kind == "duckdb":
        assert state_rows(killed) == state_rows(clean), delays
    else:
        assert parquet_state(killed) == parquet_state(clean), delays
        files = sorted(p.relative_to(killed) for p in killed.rglob("*") if p.is_file())
        assert files == sorted(p.relative_to(clean) for p in clean.rglob("*") if p.is_file()), delays
        assert not [p for p in files if p.name.endswith(".tmp")]


class _Killed(BaseException):
    """Stands for SIGKILL at one point of a Parquet commit (no cleanup touches the files)."""


def test_parquet_stopped_before_any_file_replacement_converges(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deterministic where the random kills are not: stop the sync just before its k-th file replacement
    (a partition or the state file), for every k, then rerun; the files end as a clean sync's."""
    import os

    original = os.replace
    from duckdb_openai import sync
    from duckdb_openai.resources.paging import Limit
    from duckdb_openai.sync import parquet as parquet_module
    from tests.scripted import ScriptedServer
    from tests.sync_helpers import FakeApi, quick

    api = FakeApi(completions=12, responses=3)
    log = tmp_path / "log.csv"
    log.write_text("response_id\n" + "\n".join(api.responses) + "\n")
    # Pages of 3 and no re-read window, so the cursor moves at every commit.
    completions = dataclasses.replace(
        TABLES_BY_NAME["chat_completions"],
        resource=dataclasses.replace(
            CHAT_COMPLETIONS, paging=dataclasses.replace(CHAT_COMPLETIONS.paging, limit=Limit(size=3))
        ),
        growth=Cursor("created"),
    )
    tables = [completions, "chat_completion_messages", "responses", "response_input_items"]
    calls = 0
    limit: int | None = None

    def replace(source: str | Path, destination: str | Path) -> None:
        nonlocal calls
        calls += 1
        if limit is not None and calls == limit:
            raise _Killed
        original(source, destination)

    monkeypatch.setattr(parquet_module.os, "replace", replace)  # the module's os is os: patched for the test
    with ScriptedServer([api]) as server:
        settings = quick(server.base_url, chunk_rows=3, chunk_ids=1)
        sync(parquet=tmp_path / "clean", tables=tables, log=str(log), **settings)
        replacements = calls
        assert replacements > 8
        for k in range(1, replacements + 1):
            target = tmp_path / f"stopped-{k}"
            calls, limit = 0, k
            with pytest.raises(_Killed):
                sync(parquet=target, tables=tables, log=str(log), **settings)
            limit = None
            sync(parquet=target, tables=tables, log=str(log), **settings)
            assert parquet_state(target) == parquet_state(tmp_path / "clean"), k
            con = duckdb.connect()
            for table in ("chat_completions", *tables[1:]):
                assert differences(
                    con, rows_of("parquet", tmp_path / "clean", table), rows_of("parquet", target, table)
                )[:2] == (0, 0), (k, table)
            con.close()
