"""The sync's targets: an attached catalog, a Parquet dataset (read back equal to the DuckDB target),
schema evolution, one sync per target at a time, the CLI, and runs that finish between two syncs."""

from __future__ import annotations

import fcntl
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

import duckdb_openai
from duckdb_openai.emulator import DatasetConfig, Emulator
from duckdb_openai.emulator.live import LiveConfig
from duckdb_openai.errors import ConfigurationError
from duckdb_openai.sync import TABLES_BY_NAME, BusyError
from duckdb_openai.sync.lock import LOCK_FILE
from duckdb_openai.sync.parquet import DATA_FILE, STATE_FILE
from duckdb_openai.sync.state import STATE_TABLE
from tests.helpers import KEY
from tests.sync_helpers import differences, parquet_state, quick, state_rows, table_rows

DATASET = DatasetConfig(threads=4, runs_per_thread=3, mean_steps=6, edge_runs=False)
TABLES = ["assistants", "chat_completions", "chat_completion_messages", "runs", "run_steps", "messages"]


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator(seed=7, dataset=DATASET) as emu:
        yield emu


@pytest.fixture
def emu(emulator: Emulator) -> Emulator:
    emulator.reset()
    return emulator


def thread_log(emu: Emulator) -> pa.Table:
    return pa.table({"thread_id": sorted({r.thread_id for r in emu.dataset.runs})})


def columns(table: str) -> str:
    return ", ".join(f'"{f.name}"' for f in TABLES_BY_NAME[table].schema)


def test_an_attached_duckdb_file_as_the_target(emu: Emulator, tmp_path: Path) -> None:
    con = duckdb.connect()
    con.execute(f"ATTACH '{tmp_path / 'lake.duckdb'}' AS lake")
    first = duckdb_openai.sync("lake", TABLES, con=con, log=thread_log(emu), **quick(emu.base_url))
    assert first.target.startswith("the catalog 'lake'")
    # The same rows as a sync into a database file of its own.
    duckdb_openai.sync(tmp_path / "file.duckdb", TABLES, log=thread_log(emu), **quick(emu.base_url))
    con.execute(f"ATTACH '{tmp_path / 'file.duckdb'}' AS f (READ_ONLY)")
    for table in TABLES:
        only_lake, only_file, total = differences(
            con, f"SELECT {columns(table)} FROM lake.{table}", f"SELECT {columns(table)} FROM f.{table}"
        )
        assert (only_lake, only_file) == (0, 0) and total > 0, table
    assert state_rows("lake", con) == state_rows(tmp_path / "file.duckdb")
    # The lease is gone once the sync ended; a rerun reads only what is new.
    assert con.execute(f"SELECT count(*) FROM lake.{STATE_TABLE} WHERE scope = 'lease'").fetchall() == [(0,)]
    emu.reset()
    second = duckdb_openai.sync("lake", TABLES, con=con, log=thread_log(emu), **quick(emu.base_url))
    assert second.rows_written == 0
    assert second.requests == emu.stats()["requests"]
    with pytest.raises(ConfigurationError, match="no catalog 'nope' is attached to the connection"):
        duckdb_openai.sync("nope", TABLES, con=con, log=thread_log(emu), **quick(emu.base_url))


def test_parquet_reads_back_equal_to_the_duckdb_target(emu: Emulator, tmp_path: Path) -> None:
    folder = tmp_path / "dataset"
    first = duckdb_openai.sync(parquet=folder, tables=TABLES, log=thread_log(emu), **quick(emu.base_url))
    duckdb_openai.sync(tmp_path / "h.duckdb", TABLES, log=thread_log(emu), **quick(emu.base_url))
    con = duckdb.connect()
    con.execute(f"ATTACH '{tmp_path / 'h.duckdb'}' AS h (READ_ONLY)")
    for table in TABLES:
        read_back = f"read_parquet('{folder}/{table}/**/*.parquet', hive_partitioning = true)"
        only_parquet, only_duckdb, total = differences(
            con, f"SELECT {columns(table)} FROM {read_back}", f"SELECT {columns(table)} FROM h.{table}"
        )
        assert (only_parquet, only_duckdb) == (0, 0) and total == first.table(table).counts.new, table
    # Partitioned by the UTC day of each row's time (a completion's messages under its day).
    days = con.execute(
        f"SELECT DISTINCT day::VARCHAR = strftime(created AT TIME ZONE 'UTC', '%Y-%m-%d') FROM "
        f"read_parquet('{folder}/chat_completions/**/*.parquet', hive_partitioning = true)"
    ).fetchall()
    assert days == [(True,)]
    joined = con.execute(
        f"SELECT count(*) FROM read_parquet('{folder}/chat_completion_messages/**/*.parquet', "
        f"hive_partitioning = true) m JOIN read_parquet('{folder}/chat_completions/**/*.parquet', "
        "hive_partitioning = true) c ON m.completion_id = c.id AND m.day = c.day"
    ).fetchall()
    assert joined[0][0] == first.table("chat_completion_messages").counts.new
    # The state is JSON beside the tables (no *.parquet glob reads it), equal to the DuckDB target's.
    assert not list(folder.glob("*.parquet")) and (folder / STATE_FILE).exists()
    assert [tuple(e) for e in parquet_state(folder)] == [
        (t, s, v) for t, s, v in state_rows(tmp_path / "h.duckdb")
    ]
    # A rerun with nothing new rewrites no file.
    before = {p: p.stat().st_mtime_ns for p in folder.glob(f"*/day=*/{DATA_FILE}")}
    again = duckdb_openai.sync(parquet=folder, tables=TABLES, log=thread_log(emu), **quick(emu.base_url))
    assert again.rows_written == 0
    assert {p: p.stat().st_mtime_ns for p in folder.glob(f"*/day=*/{DATA_FILE}")} == before


def test_an_upgrade_adds_a_column_and_drops_nothing(emu: Emulator, tmp_path: Path) -> None:
    path = tmp_path / "h.duckdb"
    duckdb_openai.sync(path, ["chat_completions"], **quick(emu.base_url))
    with duckdb.connect(str(path)) as con:
        # The table as an older version of the package made it, without this column.
        con.execute("ALTER TABLE chat_completions DROP COLUMN system_fingerprint")
        con.execute(
            "ALTER TABLE chat_completions ALTER COLUMN usage SET DATA TYPE STRUCT(prompt_tokens BIGINT)"
        )
        count = con.execute("SELECT count(*) FROM chat_completions").fetchall()[0][0]
    result = duckdb_openai.sync(path, ["chat_completions"], **quick(emu.base_url))
    assert "chat_completions: added the column system_fingerprint" in result.notes
    assert "chat_completions: widened the column usage" in result.notes
    rows = table_rows(path, "chat_completions", ["system_fingerprint", "usage"])
    assert len(rows) == count
    # The re-read window's rows were written again with the new column; the older ones keep NULL.
    refreshed = [r for r in rows if r[0] is not None]
    assert len(refreshed) == result.table("chat_completions").counts.updated > 0
    assert all(r[1]["total_tokens"] is not None for r in refreshed)

    # Parquet: a partition file without the column gets it.
    folder = tmp_path / "dataset"
    duckdb_openai.sync(parquet=folder, tables=["chat_completions"], **quick(emu.base_url))
    partition = sorted(folder.glob(f"chat_completions/day=*/{DATA_FILE}"))[0]
    duckdb.execute(
        f"COPY (SELECT * EXCLUDE (system_fingerprint) FROM '{partition}') TO '{partition}' (FORMAT parquet)"
    )
    evolved = duckdb_openai.sync(parquet=folder, tables=["chat_completions"], **quick(emu.base_url))
    assert "chat_completions: added the column system_fingerprint" in evolved.notes
    described = duckdb.sql(f"DESCRIBE SELECT * FROM '{partition}'").fetchall()
    assert "system_fingerprint" in [row[0] for row in described]


def test_an_incompatible_column_type_is_a_clear_error(emu: Emulator, tmp_path: Path) -> None:
    path = tmp_path / "h.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE chat_completions (id VARCHAR, created BIGINT)")
        con.execute("INSERT INTO chat_completions VALUES ('kept', 1)")
    with pytest.raises(ConfigurationError) as caught:
        duckdb_openai.sync(path, ["chat_completions"], **quick(emu.base_url))
    message = str(caught.value)
    assert "chat_completions.created holds int64 in the target" in message
    assert "timestamp" in message and "nothing was written" in message
    assert emu.stats()["requests"] == 0
    assert table_rows(path, "chat_completions") == [("kept", 1)]


# -- one sync per target ----------------------------------------------------------------------------------

CHILD = """
import sys, duckdb_openai
kind, target, url = sys.argv[1:4]
settings = dict(api_key="sk-test", base_url=url, progress="off", max_concurrency=2)
where = {"parquet": target} if kind == "parquet" else {"target": target}
duckdb_openai.sync(tables=["chat_completions", "chat_completion_messages"], **where, **settings)
"""


def _locked(path: Path) -> bool:
    if not path.exists():
        return False
    with path.open() as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    return False


@pytest.mark.parametrize("kind", ["duckdb", "parquet"])
def test_a_second_sync_into_one_target_is_refused(emulator_factory: Any, tmp_path: Path, kind: str) -> None:
    slow = emulator_factory(seed=7, dataset=DATASET, latency_ms=150)
    target = tmp_path / ("dataset" if kind == "parquet" else "h.duckdb")
    child = subprocess.Popen([sys.executable, "-c", CHILD, kind, str(target), slow.base_url])
    try:
        deadline = time.monotonic() + 30
        while not (_locked(target / LOCK_FILE) if kind == "parquet" else target.exists()):
            assert time.monotonic() < deadline and child.poll() is None, "the first sync did not start"
            time.sleep(0.02)
        time.sleep(0.3)  # DuckDB creates the file, then locks it
        where: dict[str, Any] = {"parquet": target} if kind == "parquet" else {"target": target}
        with pytest.raises(BusyError) as caught:
            duckdb_openai.sync(tables=["chat_completions"], **where, **quick(slow.base_url))
        message = str(caught.value)
        assert str(target) in message
        assert f"PID {child.pid}" in message
        if kind == "parquet":
            assert socket.gethostname() in message
        # The same from the CLI: exit status 75, one line.
        env = {**os.environ, "OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": slow.base_url}
        args = ["--parquet", str(target)] if kind == "parquet" else [str(target)]
        cli = subprocess.run(
            [sys.executable, "-m", "duckdb_openai.cli", "sync", *args, "--table", "chat_completions"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert cli.returncode == 75, cli.stderr
        assert cli.stderr.startswith("error: ") and f"PID {child.pid}" in cli.stderr
        assert child.poll() is None  # the first one was not disturbed
    finally:
        child.kill()  # it would take a while yet; tests/test_sync_kill.py shows a kill is harmless
        child.wait()


def test_an_attached_catalog_refuses_while_another_live_sync_holds_its_lease(
    emu: Emulator, tmp_path: Path
) -> None:
    con = duckdb.connect()
    con.execute(f"ATTACH '{tmp_path / 'lake.duckdb'}' AS lake")
    duckdb_openai.sync("lake", ["assistants"], con=con, **quick(emu.base_url))
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lease = {"host": socket.gethostname(), "pid": sleeper.pid, "started": "2026-01-01T00:00:00+00:00"}
        lease["heartbeat"] = datetime.now(UTC).isoformat(timespec="seconds")
        con.execute(f"INSERT INTO lake.{STATE_TABLE} VALUES ('', 'lease', ?)", [json.dumps(lease)])
        with pytest.raises(
            BusyError, match=f"the catalog 'lake'.* is being synced by the sync of PID {sleeper.pid}"
        ):
            duckdb_openai.sync("lake", ["assistants"], con=con, **quick(emu.base_url))
    finally:
        sleeper.kill()
        sleeper.wait()
    # Its process is gone: the lease is taken over.
    assert (
        duckdb_openai.sync("lake", ["assistants"], con=con, **quick(emu.base_url))
        .tables["assistants"]
        .requests
        == 1
    )


def test_the_cli_syncs_and_prints_the_summary(emu: Emulator, tmp_path: Path) -> None:
    env = {**os.environ, "OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": emu.base_url}
    log = tmp_path / "threads.csv"
    duckdb.from_arrow(thread_log(emu)).write_csv(str(log))
    command = [
        sys.executable,
        "-m",
        "duckdb_openai.cli",
        "sync",
        str(tmp_path / "h.duckdb"),
        "--log",
        str(log),
    ]
    command += ["--table", "runs", "--table", "run_steps", "--progress", "off"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"synced the DuckDB database {tmp_path / 'h.duckdb'}")
    assert lines[1].split() == ["table", "new", "updated", "unchanged", "requests"]
    assert lines[2].split()[:2] == ["runs", str(len(emu.dataset.runs))]
    dry = subprocess.run([*command, "--dry-run"], env=env, capture_output=True, text=True, timeout=60)
    assert dry.returncode == 0 and dry.stdout.startswith("dry run: nothing sent")
    bad = subprocess.run(
        [*command[:5], "--table", "nope"], env=env, capture_output=True, text=True, timeout=60
    )
    assert bad.returncode == 1 and bad.stderr.startswith("error: no sync table 'nope'")


def test_a_running_run_is_read_again_until_it_finishes(emulator_factory: Any, tmp_path: Path) -> None:
    emu = emulator_factory(seed=7, dataset=DATASET, live=LiveConfig(runs=1, step_seconds=1000))
    live = emu.live()["runs"][0]
    log = pa.table({"thread_id": [live["thread_id"]]})
    path = tmp_path / "h.duckdb"
    tables = ["runs", "run_steps", "messages"]

    def status() -> tuple[str, int]:
        (run_status,) = [r[0] for r in table_rows(path, "runs", ["status"])]
        return run_status, len(table_rows(path, "run_steps"))

    emu.live(advance_s=1100)  # the first step exists, in progress
    duckdb_openai.sync(path, tables, log=log, **quick(emu.base_url))
    assert status()[0] not in ("completed", "failed", "cancelled", "expired")
    emu.live(advance_s=100_000)  # the run ends
    emu.reset()
    duckdb_openai.sync(path, tables, log=log, **quick(emu.base_url))
    by = emu.stats()["by_endpoint"]
    assert by["runs.retrieve"] == {"200": 1} and by["list"] == {"200": 1}
    final, steps = status()
    assert final in ("completed", "failed", "cancelled", "expired")
    assert steps == emu.live()["runs"][0]["steps"]
    emu.reset()
    third = duckdb_openai.sync(path, tables, log=log, **quick(emu.base_url))
    # Finished: its steps are never asked again; only the thread's lists after their cursors.
    assert emu.stats()["by_endpoint"]["list"] == {} and third.rows_written == 0
    assert third.requests == 2


def test_wait_waits_for_the_other_sync_to_finish(emu: Emulator, tmp_path: Path) -> None:
    import threading

    from duckdb_openai.sync.lock import FolderLock

    folder = tmp_path / "dataset"
    folder.mkdir()
    other = FolderLock(folder, "the Parquet dataset")
    other.acquire()
    with pytest.raises(BusyError):
        duckdb_openai.sync(parquet=folder, tables=["assistants"], **quick(emu.base_url))
    timer = threading.Timer(0.5, other.release)
    timer.start()
    started = time.monotonic()
    result = duckdb_openai.sync(parquet=folder, tables=["assistants"], wait=30, **quick(emu.base_url))
    assert time.monotonic() - started >= 0.4
    assert result.table("assistants").counts.new == 5
    timer.join()


def test_two_syncs_of_one_process_into_one_file(emu: Emulator, tmp_path: Path) -> None:
    """DuckDB shares one open database between a process's connections, so its lock cannot tell two
    syncs of one process apart: the sync's own registry does."""
    import threading

    path = tmp_path / "h.duckdb"
    started, release = threading.Event(), threading.Event()

    def first() -> None:
        from duckdb_openai.sync.targets import DuckDBTarget

        with DuckDBTarget.open_file(path):
            started.set()
            release.wait(30)

    holder = threading.Thread(target=first, name="first-sync")
    holder.start()
    try:
        assert started.wait(30)
        with pytest.raises(BusyError, match=r"being synced by another sync of this process .*'first-sync'"):
            duckdb_openai.sync(path, ["assistants"], **quick(emu.base_url))
    finally:
        release.set()
        holder.join()
    assert duckdb_openai.sync(path, ["assistants"], **quick(emu.base_url)).table("assistants").counts.new == 5
