"""The cache (issue 11), over real HTTP against the emulator: rows equal to an uncached fetch, and the
requests it saves, counted by the emulator."""

from __future__ import annotations

import csv
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pyarrow as pa
import pytest

from duckdb_openai import ConfigurationError, Settings
from duckdb_openai.emulator import Emulator
from duckdb_openai.emulator.family import Family
from duckdb_openai.emulator.live import LiveConfig
from duckdb_openai.engine.cache import CachedSource
from duckdb_openai.engine.cache_store import (
    CACHE_FORMAT,
    DiskStore,
    Entry,
    MemoryStore,
    StoreKey,
    read_entry_file,
)
from duckdb_openai.resources.base import Key, Lifecycle, Parent, Resource, check_relations, sort_option
from duckdb_openai.resources.run_steps import RUN_STEPS, RUN_STEPS_SCHEMA
from duckdb_openai.resources.runs import RUNS, TERMINAL_STATUSES
from duckdb_openai.sql.register import Registration
from tests.helpers import KEY, connect, list_requests

TERMINAL = set(TERMINAL_STATUSES)


def pick_runs(emu: Emulator) -> list[Any]:
    """Runs of every shape: empty, one page, several pages (101, 200), each outcome (in-progress too)."""
    runs = [r for r in emu.dataset.runs if r.step_count <= 200]
    edge = [r for r in runs if r.step_count in (0, 1, 100, 101, 200)]
    return [*runs[:40], *(r for r in edge if r not in runs[:40])]


def load(con: duckdb.DuckDBPyConnection, runs: list[Any]) -> None:
    con.execute("CREATE OR REPLACE TABLE my_runs(thread_id VARCHAR, run_id VARCHAR)")
    con.executemany("INSERT INTO my_runs VALUES (?, ?)", [(r.thread_id, r.run_id) for r in runs])


def steps(
    con: duckdb.DuckDBPyConnection, *, sort: str = "asc", include: bool = False, cache: str = "on"
) -> list[tuple[Any, ...]]:
    return con.execute(
        "SELECT s.* FROM my_runs r, run_steps(r.thread_id, r.run_id, sort := ?, include_content := ?, "
        "cache := ?) s",
        [sort, include, cache],
    ).fetchall()


def cached(emu: Emulator, **settings: Any) -> tuple[duckdb.DuckDBPyConnection, Registration]:
    return connect(emu.base_url, cache=True, **settings)


def learn_statuses(registration: Registration, runs: list[Any]) -> None:
    """Fetch the runs of the threads of `runs` through the registration's client (as `runs(thread_id)`
    would), so its cache learns which are finished."""
    threads = sorted({r.thread_id for r in runs})
    registration.client.fan_out([RUNS.bind_list({"thread_id": t}) for t in threads])


def statuses(emu: Emulator, runs: list[Any]) -> dict[str, str]:
    family = Family(emu.dataset)
    found = {}
    for thread_id in {r.thread_id for r in runs}:
        found.update({run["id"]: run["status"] for run in family.runs(thread_id)})
    return {r.run_id: found[r.run_id] for r in runs}


def last_terminal(emu: Emulator, run: Any) -> str | None:
    """The id of the last step of the run's terminal prefix (None: its first step is still moving)."""
    last = None
    for step in emu.dataset.steps(run.thread_id, run.run_id):
        if step["status"] == "in_progress":
            break
        last = step["id"]
    return last


def afters(emu: Emulator) -> list[str | None]:
    """The `after` cursor of each run-steps list request since the last reset (None: sent without)."""
    return [
        (record["query"].get("after") or [None])[0]
        for record in emu.requests()
        if record["endpoint"] == "list"
    ]


# -- rows -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sort", ["asc", "desc"])
@pytest.mark.parametrize("include", [False, True])
def test_cached_rows_equal_uncached_rows(emu: Emulator, sort: str, include: bool) -> None:
    runs = pick_runs(emu)
    con, registration = cached(emu, final_after=0)
    load(con, runs)
    want = steps(con, sort=sort, include=include, cache="off")
    assert len(want) == sum(r.step_count for r in runs)
    cold = steps(con, sort=sort, include=include)
    warm = steps(con, sort=sort, include=include)
    other_order = steps(con, sort="desc" if sort == "asc" else "asc", include=include)
    assert cold == want
    assert warm == want
    # The order is not part of the key: the other order is served from the same rows, reversed per run.
    by_run: dict[str, list[Any]] = {}
    for row in other_order:
        by_run.setdefault(row[RUN_STEPS_SCHEMA.names.index("run_id")], []).append(row)
    assert [row for r in runs for row in reversed(by_run.get(r.run_id, []))] == want
    types = con.execute(
        "DESCRIBE SELECT s.* FROM my_runs r, run_steps(r.thread_id, r.run_id, cache := 'on') s"
    ).fetchall()
    assert [t[0] for t in types] == RUN_STEPS_SCHEMA.names
    registration.close()


def test_content_variant_is_kept_apart(emu: Emulator) -> None:
    runs = [r for r in emu.dataset.runs if 0 < r.step_count <= 100][:30]
    con, registration = cached(emu)
    load(con, runs)
    plain, full = steps(con), steps(con, include=True)
    assert steps(con) == plain and steps(con, include=True) == full
    content = RUN_STEPS_SCHEMA.names.index("step_details")
    assert plain != full  # some file-search results carry content only in the full variant
    assert [r[0] for r in plain] == [r[0] for r in full]
    assert any(
        result.get("content")
        for row in full
        for call in (row[content]["tool_calls"] or [])
        if call["file_search"]
        for result in call["file_search"]["results"]
    )
    registration.close()


# -- requests saved -------------------------------------------------------------------------------------


def test_finished_runs_cost_no_request(emu: Emulator) -> None:
    runs = pick_runs(emu)
    status = statuses(emu, runs)
    moving = [r for r in runs if status[r.run_id] not in TERMINAL]
    assert moving and len(moving) < len(runs)
    con, registration = cached(emu, final_after=0)  # only the runs' statuses prove anything here
    load(con, runs)
    learn_statuses(registration, runs)
    want = steps(con, cache="off")
    emu.reset()
    assert steps(con) == want
    assert list_requests(emu) >= len(runs)
    emu.reset()
    assert steps(con) == want
    assert steps(con, sort="desc") == steps(con, sort="desc", cache="off")
    emu.reset()
    assert steps(con) == want
    # Only the runs still moving are asked again: each one request, after its last terminal step.
    assert list_requests(emu) == len(moving)
    assert sorted(afters(emu), key=str) == sorted((last_terminal(emu, r) for r in moving), key=str)
    registration.close()


def test_a_warm_fan_out_takes_finished_lists_from_memory_without_the_event_loop(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fast path (`CachedSource.kept`): the lists memory answers as final never reach `pages`, and
    give the same rows in either order; only the runs still moving take the usual way."""
    runs = pick_runs(emu)
    status = statuses(emu, runs)
    moving = [r for r in runs if status[r.run_id] not in TERMINAL]
    con, registration = cached(emu, final_after=0)
    load(con, runs)
    learn_statuses(registration, runs)
    want = {order: steps(con, sort=order, cache="off") for order in ("asc", "desc")}
    assert steps(con) == want["asc"]  # kept now
    original = CachedSource.pages
    through_pages: list[str] = []

    def counted(self: CachedSource, request: Any) -> Any:
        through_pages.append(request.keys["run_id"])
        return original(self, request)

    monkeypatch.setattr(CachedSource, "pages", counted)
    for order in ("asc", "desc"):
        through_pages.clear()
        assert steps(con, sort=order) == want[order]
        assert sorted(through_pages) == sorted(r.run_id for r in moving), order
    registration.close()


def test_a_status_learned_after_the_steps_costs_one_more_request(emu: Emulator) -> None:
    runs = [r for r in pick_runs(emu) if r.step_count > 0]
    status = statuses(emu, runs)
    finished = [r for r in runs if status[r.run_id] in TERMINAL]
    con, registration = cached(emu, final_after=0)
    load(con, finished)
    want = steps(con)
    learn_statuses(registration, finished)  # learned after the steps were fetched: no proof for them
    emu.reset()
    assert steps(con) == want
    assert list_requests(emu) == len(finished)
    assert all(after is not None for after in afters(emu))
    emu.reset()
    assert steps(con) == want
    assert list_requests(emu) == 0
    registration.close()


def test_steps_only_cost_at_most_one_request_per_run_sent_with_after(emu: Emulator) -> None:
    runs = [r for r in pick_runs(emu) if r.step_count > 0]
    con, registration = cached(emu, final_after=0)
    load(con, runs)
    want = steps(con, cache="off")
    assert steps(con) == want
    emu.reset()
    assert steps(con) == want
    cursors = afters(emu)
    assert len(cursors) == len(runs)
    assert all(cursor is not None and cursor.startswith("step_") for cursor in cursors)
    registration.close()


def test_old_finished_runs_are_assumed_final_after_final_after(emu: Emulator) -> None:
    # The emulator's runs are from 2024: with the default final_after (24 h), a run whose steps are all
    # terminal is final without its status; one whose last step is in progress is asked again.
    runs = [r for r in pick_runs(emu) if r.step_count > 0]
    status = statuses(emu, runs)
    moving = [r for r in runs if status[r.run_id] not in TERMINAL]
    con, registration = cached(emu)
    load(con, runs)
    want = steps(con)
    emu.reset()
    assert steps(con) == want
    assert list_requests(emu) == len(moving)
    registration.close()


def test_run_step_is_cached_like_the_list(emu: Emulator) -> None:
    run = emu.dataset.find_run(step_count=101)
    ids = [s["id"] for s in emu.dataset.steps(run.thread_id, run.run_id)]
    con, registration = cached(emu)
    one = "SELECT * FROM run_step(?, ?, ?, include_content := ?, cache := ?)"

    def retrieve(step_id: str, include: bool = False, cache: str = "on") -> list[Any]:
        return con.execute(one, [run.thread_id, run.run_id, step_id, include, cache]).fetchall()

    def retrieves() -> int:
        return sum(emu.stats()["by_endpoint"]["retrieve"].values())  # type: ignore[no-any-return]

    emu.reset()
    first = retrieve(ids[3])
    assert retrieve(ids[3]) == first and retrieves() == 1
    assert retrieve(ids[3], include=True) == retrieve(ids[3], include=True) and retrieves() == 2
    assert retrieve(ids[3], cache="off") == first and retrieves() == 3
    # A kept list answers a retrieve of one of its steps.
    con.execute("SELECT count(*) FROM run_steps(?, ?)", [run.thread_id, run.run_id]).fetchall()
    emu.reset()
    assert retrieve(ids[50]) == retrieve(ids[50], cache="off")
    assert retrieves() == 1
    registration.close()


def test_cache_off_and_refresh(emu: Emulator) -> None:
    runs = [r for r in pick_runs(emu) if 0 < r.step_count <= 100][:20]
    con, registration = cached(emu)
    load(con, runs)
    want = steps(con, cache="off")
    emu.reset()
    assert steps(con, cache="off") == want
    assert list_requests(emu) == len(runs)  # 'off' neither reads nor fills the cache
    emu.reset()
    assert steps(con, cache="refresh") == want
    assert list_requests(emu) == len(runs) and afters(emu) == [None] * len(runs)
    emu.reset()
    assert steps(con) == want  # refresh filled it
    on_requests = list_requests(emu)
    assert on_requests < len(runs)
    emu.reset()
    assert steps(con, cache="refresh") == want
    assert list_requests(emu) == len(runs)
    with pytest.raises(duckdb.Error, match="cache must be 'on', 'off' or 'refresh'"):
        steps(con, cache="maybe")
    registration.close()


def test_refresh_rewrites_the_files(emu: Emulator, tmp_path: Path) -> None:
    runs = [r for r in pick_runs(emu) if 0 < r.step_count <= 100][:5]
    con, registration = cached(emu, cache_dir=tmp_path)
    load(con, runs)
    want = steps(con)
    entries = sorted(p for p in files(tmp_path) if p.suffix == ".arrow")
    before = {p: p.stat().st_ino for p in entries}
    assert steps(con) == want
    assert {p: p.stat().st_ino for p in entries} == before  # nothing new: nothing written
    assert steps(con, cache="refresh") == want
    assert all(p.stat().st_ino != before[p] for p in entries)  # each replaced by a new file
    registration.close()


def test_runs_are_never_served_from_the_cache(emu: Emulator) -> None:
    # Runs take metadata updates: every runs query goes to the API, while their statuses are learned.
    runs = [r for r in pick_runs(emu) if r.step_count > 0][:8]
    _, registration = cached(emu, final_after=0)
    threads = sorted({r.thread_id for r in runs})
    emu.reset()
    for _ in range(2):
        learn_statuses(registration, runs)
        registration.client.fan_out([RUNS.bind_item({"thread_id": r.thread_id}, r.run_id) for r in runs])
    buckets = emu.stats()["by_endpoint"]
    assert sum(buckets["runs.list"].values()) == 2 * len(threads)
    assert sum(buckets["runs.retrieve"].values()) == 2 * len(runs)
    assert registration.client.cache is not None
    assert registration.client.cache.info().finished >= 1
    registration.close()


def test_register_cache_false_fetches_every_time(emu: Emulator) -> None:
    runs = [r for r in pick_runs(emu) if 0 < r.step_count <= 100][:10]
    con, registration = connect(emu.base_url, cache=False)
    assert registration.client.cache is None
    load(con, runs)
    want = steps(con)
    emu.reset()
    assert steps(con, cache="on") == want
    assert list_requests(emu) == len(runs)
    registration.close()


def test_memory_is_bounded(emu: Emulator) -> None:
    runs = [r for r in pick_runs(emu) if 0 < r.step_count <= 100][:10]
    con, registration = cached(emu, cache_max_bytes=1)
    load(con, runs)
    want = steps(con)
    emu.reset()
    assert steps(con) == want
    assert list_requests(emu) == len(runs)
    assert registration.client.cache is not None and registration.client.cache.info().entries == 0
    registration.close()


def test_memory_drops_the_least_recently_used_first() -> None:
    store = MemoryStore(max_bytes=1 << 20)
    rows = pa.table({"id": pa.array([f"step_{k:04d}" for k in range(100)])})
    keys = [StoreKey("ns", f"run_steps/list?run_id=run_{k}|") for k in range(3)]
    store.put(keys[0], Entry(rows, 0.0, True, True))
    size = store.info().bytes
    store.max_bytes = 2 * size + size // 2  # room for two
    store.put(keys[1], Entry(rows, 0.0, True, True))
    assert store.get(keys[0], rows.schema) is not None  # 0 is now the most recently used
    store.put(keys[2], Entry(rows, 0.0, True, True))
    assert [store.get(k, rows.schema) is not None for k in keys] == [True, False, True]
    assert store.info().entries == 2 and 0 < store.info().bytes <= store.max_bytes


def test_an_entry_read_from_disk_goes_to_memory_as_it_was_read(tmp_path: Path) -> None:
    """The memory front keeps a file's compressed messages as they are (no second encoding), and they
    read back as the same rows."""
    rows = pa.table({"id": pa.array([f"step_{k:04d}" for k in range(300)]), "n": pa.array(range(300))})
    key = StoreKey("ns", "run_steps/list?run_id=run_1|")
    disk = DiskStore(tmp_path, "scope")
    disk.put(key, Entry(rows, 5.0, True, True))
    read = disk.get(key, rows.schema)
    assert read is not None and read.packed is not None
    assert read == Entry(rows, 5.0, True, True)  # `packed` is not part of equality
    memory = MemoryStore(max_bytes=1 << 20)
    memory.put(key, read)
    kept = memory.get(key, rows.schema)
    assert kept is not None and kept.rows.equals(rows) and (kept.fetched_at, kept.whole) == (5.0, True)
    fresh = MemoryStore(max_bytes=1 << 20)
    fresh.put(key, Entry(rows, 5.0, True, True))
    assert memory.info().bytes == fresh.info().bytes  # the same messages either way


# -- on disk --------------------------------------------------------------------------------------------


def files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


def test_disk_cache_is_shared_private_and_keyless(emu: Emulator, tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    runs = [r for r in pick_runs(emu) if r.step_count > 0]
    con, registration = cached(emu, cache_dir=folder)
    load(con, runs)
    want = steps(con, cache="off")
    assert steps(con) == want
    registration.close()
    # A new client (a new process would do the same) reads what the first one kept.
    con2, registration2 = cached(emu, cache_dir=folder)
    load(con2, runs)
    emu.reset()
    assert steps(con2) == want
    status = statuses(emu, runs)
    assert list_requests(emu) == len([r for r in runs if status[r.run_id] not in TERMINAL])
    entries = [p for p in files(folder) if p.suffix == ".arrow"]
    assert len(entries) == len(runs)
    for path in [folder, *folder.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))
    secret = KEY.encode()
    for path in files(folder):
        data = path.read_bytes()
        assert secret not in data and b"SECRET" not in data, path
    assert registration2.client.cache is not None
    info = registration2.client.cache.info()
    assert info.entries == len(runs) and info.runs == len(runs) and info.bytes > 0
    registration2.close()


def test_a_corrupt_entry_is_dropped_and_fetched_again(emu: Emulator, tmp_path: Path) -> None:
    runs = [r for r in pick_runs(emu) if r.step_count > 0][:12]
    con, registration = cached(emu, cache_dir=tmp_path)
    load(con, runs)
    want = steps(con)
    entries = sorted(p for p in files(tmp_path) if p.suffix == ".arrow")
    # One flipped byte deep in the rows, one file cut short, one replaced by garbage, one emptied.
    data = bytearray(entries[0].read_bytes())
    data[len(data) // 2] ^= 0x40
    entries[0].write_bytes(bytes(data))
    entries[1].write_bytes(entries[1].read_bytes()[:100])
    entries[2].write_bytes(b"not an entry at all")
    entries[3].write_bytes(b"")
    registration.close()
    con, registration = cached(emu, cache_dir=tmp_path)  # a new client reads the files again
    load(con, runs)
    emu.reset()
    assert steps(con) == want
    assert list_requests(emu) == 4  # the four damaged runs, each fetched whole again
    assert afters(emu) == [None] * 4
    for path in entries[:4]:
        read_entry_file(path, RUN_STEPS_SCHEMA)  # written again, whole
    emu.reset()
    assert steps(con) == want and list_requests(emu) == 0
    registration.close()


def test_the_status_log_ignores_torn_and_damaged_lines(tmp_path: Path) -> None:
    writer = DiskStore(tmp_path, "scope")
    writer.learn([("runs\tthread_a\trun_1", "completed", 1.0), ("runs\tthread_a\trun_2", "failed", 2.0)])
    log = tmp_path / CACHE_FORMAT / "scope" / "statuses.log"
    lines = log.read_bytes().splitlines(keepends=True)
    damaged = lines[1].replace(b"failed", b"falied")  # its CRC no longer matches
    log.write_bytes(lines[0] + damaged + b"runs\tthread_a\trun_3\tcompleted\t3.0")  # a torn last line
    reader = DiskStore(tmp_path, "scope")
    assert reader.status("runs\tthread_a\trun_1") == ("completed", 1.0)
    assert reader.status("runs\tthread_a\trun_2") is None
    assert reader.status("runs\tthread_a\trun_3") is None
    assert stat.S_IMODE(log.stat().st_mode) == 0o600


_WRITER = textwrap.dedent(
    """
    import sys, duckdb, duckdb_openai
    from tests.test_cache import RUNS
    base_url, folder, *pairs = sys.argv[1:]
    con = duckdb.connect()
    registration = duckdb_openai.register(con, api_key="sk-test-writer", base_url=base_url,
                                          cache_dir=folder, final_after=0, progress=False)
    con.execute("CREATE TABLE my_runs(thread_id VARCHAR, run_id VARCHAR)")
    con.executemany("INSERT INTO my_runs VALUES (?, ?)", [p.split(",") for p in pairs])
    threads = sorted({p.split(",")[0] for p in pairs})
    for _ in range(3):
        registration.client.fan_out([RUNS.bind_list({"thread_id": t}) for t in threads])
        con.execute("SELECT count(*) FROM my_runs r, run_steps(r.thread_id, r.run_id, cache := 'refresh') s")
    """
)


@pytest.mark.slow
def test_two_processes_writing_one_folder_lose_nothing(emu: Emulator, tmp_path: Path) -> None:
    runs = [r for r in emu.dataset.runs if 0 < r.step_count <= 100][:60]
    status = statuses(emu, runs)
    runs = [r for r in runs if status[r.run_id] in TERMINAL]
    # Overlapping halves, each refreshed three times at once: every entry is written by both, and both
    # append the finished runs they learn to one status log. Without final_after, only those statuses
    # make the entries final.
    halves = [runs[: 2 * len(runs) // 3], runs[len(runs) // 3 :]]
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                _WRITER,
                emu.base_url,
                str(tmp_path),
                *(f"{r.thread_id},{r.run_id}" for r in half),
            ],
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
        )
        for half in halves
    ]
    for process in processes:
        assert process.wait(120) == 0
    # The writers' key: entries are served only to the credential that fetched them.
    con, registration = cached(emu, cache_dir=tmp_path, final_after=0, api_key="sk-test-writer")
    load(con, runs)
    emu.reset()
    got = steps(con)
    assert list_requests(emu) == 0  # every run was kept, whole and final
    assert got == steps(con, cache="off")
    assert not [p for p in files(tmp_path) if p.name.endswith(".tmp")]
    threads = {r.thread_id for r in runs}
    family = Family(emu.dataset)
    finished = [run for t in threads for run in family.runs(t) if run["status"] in TERMINAL]
    assert registration.client.cache is not None
    assert registration.client.cache.info().finished == len(finished)
    registration.close()


# -- declarations ---------------------------------------------------------------------------------------


def test_relations_are_checked() -> None:
    check_relations([RUN_STEPS, RUNS])
    wrong = Resource(
        name="run_steps",
        item_name="run_step",
        path="threads/{thread_id}/runs/{run_id}/steps",
        keys=RUN_STEPS.keys,
        item_key=RUN_STEPS.item_key,
        item_path_template=RUN_STEPS.item_path_template,
        schema=RUN_STEPS_SCHEMA,
        options=RUN_STEPS.options,
        lifecycle=RUN_STEPS.lifecycle,
        parent=Parent("runs", (("thread_id", "thread_id"), ("run_id", "run_id"))),
    )
    with pytest.raises(TypeError, match="identified by"):
        check_relations([wrong, RUNS])
    with pytest.raises(TypeError, match="status column 'state'"):
        Resource(
            name="x",
            item_name="y",
            path=None,
            keys=(),
            item_key=Key("x_id", "x_1"),
            item_path_template="x/{x_id}",
            schema=pa.schema([pa.field("id", pa.string()), pa.field("created_at", pa.timestamp("s"))]),
            lifecycle=Lifecycle("state", frozenset({"done"}), frozen=True),
        )
    with pytest.raises(TypeError, match="must map exactly its keys"):
        Resource(
            name="x",
            item_name="y",
            path="x/{a_id}",
            keys=(Key("a_id", "a_1"),),
            item_key=Key("x_id", "x_1"),
            item_path_template=None,
            schema=pa.schema([pa.field("id", pa.string()), pa.field("a_id", pa.string())]),
            options=(sort_option("x"),),
            parent=Parent("a", (("b_id", "id"),)),
        )


def test_settings_are_checked(emu: Emulator, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="final_after"):
        Settings.resolve(api_key=KEY, final_after=-1)
    with pytest.raises(ConfigurationError, match="cache_max_bytes"):
        Settings.resolve(api_key=KEY, cache_max_bytes=-5)
    env = {"DUCKDB_OPENAI_CACHE_DIR": str(tmp_path / "from-env")}
    assert Settings.resolve(api_key=KEY, env=env).cache_dir == str(tmp_path / "from-env")
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(ConfigurationError, match="cannot use cache_dir"):
        connect(emu.base_url, cache=True, cache_dir=blocker / "below")
    with pytest.raises(ConfigurationError, match="cache must be True or False"):
        Settings.resolve(api_key=KEY, cache="yes")  # type: ignore[arg-type]


# -- the command line -----------------------------------------------------------------------------------


def test_cli_cache_info_and_clear(emu: Emulator, tmp_path: Path) -> None:
    runs = [r for r in pick_runs(emu) if r.step_count > 0][:10]
    con, registration = cached(emu, cache_dir=tmp_path)
    load(con, runs)
    learn_statuses(registration, runs)
    steps(con)
    registration.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "DUCKDB_OPENAI_"))}

    def cli(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "duckdb_openai.cli", "cache", *args],
            env={**env, **extra},
            capture_output=True,
            text=True,
            timeout=60,
        )

    info = cli("info", "--cache-dir", str(tmp_path))
    assert info.returncode == 0, info.stderr
    assert f"location  {tmp_path}" in info.stdout
    assert "entries   10\n" in info.stdout
    assert "runs      10 with steps kept" in info.stdout
    assert "known finished" in info.stdout and "bytes" in info.stdout
    missing = cli("info")
    assert missing.returncode == 1 and "no cache directory" in missing.stderr
    (tmp_path / "mine.txt").write_text("not the cache's")
    cleared = cli("clear", DUCKDB_OPENAI_CACHE_DIR=str(tmp_path))
    assert cleared.returncode == 0, cleared.stderr
    assert "entries   0\n" in cli("info", "--cache-dir", str(tmp_path)).stdout
    assert (tmp_path / "mine.txt").read_text() == "not the cache's"


# -- live runs: data that changes under the cache -------------------------------------------------------


def live_runs(emu: Emulator) -> list[Any]:
    return [type("LiveRun", (), run)() for run in emu.live()["runs"]]


def terminal_prefix_last(rows: list[tuple[Any, ...]], run_id: str) -> str | None:
    names = RUN_STEPS_SCHEMA.names
    last = None
    for row in rows:
        if row[names.index("run_id")] != run_id:
            continue
        if row[names.index("status")] == "in_progress":
            break
        last = row[names.index("id")]
    return last


def test_a_live_run_is_never_stale_and_is_fetched_with_after(emulator_factory: Any) -> None:
    # A step time of 1000 s: nothing moves by itself during the test; the test moves the clock.
    emu = emulator_factory(live=LiveConfig(runs=3, step_seconds=1000))
    runs = live_runs(emu)
    con, registration = cached(emu)
    load(con, runs)
    seen_moving = set()
    previous: list[tuple[Any, ...]] = []
    finished_before: set[str] = set()  # runs seen finished when their steps were last fetched
    for _ in range(60):
        learn_statuses(registration, runs)
        finished_now = {run["run_id"] for run in emu.live()["runs"] if run["finished"]}
        expected_afters = sorted(
            str(terminal_prefix_last(previous, r.run_id)) for r in runs if r.run_id not in finished_before
        )
        emu.reset()
        got = steps(con)
        sent = afters(emu)
        assert got == steps(con, cache="off")  # never a stale or a missing step
        # Only runs not yet known finished are asked, each once, after its last terminal step.
        assert sorted(str(a) for a in sent) == expected_afters
        state = emu.live()
        seen_moving.update(run["status"] for run in state["runs"])
        previous, finished_before = got, finished_now
        if all(run["finished"] for run in state["runs"]):
            break
        emu.live(advance_s=250)
    else:
        pytest.fail("the live runs did not finish")
    assert {"queued", "in_progress", "requires_action"} <= seen_moving
    # Finished, and their status learned before the last fetch: no request any more.
    learn_statuses(registration, runs)
    emu.reset()
    assert steps(con) == previous
    assert list_requests(emu) == 0
    assert {row[RUN_STEPS_SCHEMA.names.index("status")] for row in previous} <= TERMINAL
    registration.close()


def test_live_runs_progressing_in_real_time(emulator_factory: Any) -> None:
    emu = emulator_factory(live=LiveConfig(runs=2, step_seconds=0.15))
    runs = live_runs(emu)
    con, registration = cached(emu)
    load(con, runs)
    ids = RUN_STEPS_SCHEMA.names.index("id")
    run_ids = RUN_STEPS_SCHEMA.names.index("run_id")
    for _ in range(400):
        before = {run["run_id"]: run["step_ids"] for run in emu.live()["runs"]}
        got = steps(con)
        after = emu.live()
        for run in after["runs"]:
            shown = [row[ids] for row in got if row[run_ids] == run["run_id"]]
            # Every step that existed before the query is there, in order, and nothing else is.
            assert shown[: len(before[run["run_id"]])] == before[run["run_id"]]
            assert run["step_ids"][: len(shown)] == shown
        if all(run["finished"] for run in after["runs"]):
            break
    else:
        pytest.fail("the live runs did not finish")
    assert steps(con) == steps(con, cache="off")
    registration.close()


def test_live_runs_are_in_the_manifest_and_only_with_live(tmp_path: Path) -> None:
    from duckdb_openai.emulator.data import MANIFEST_COLUMNS

    manifest = tmp_path / "runs.csv"
    args = ["--threads", "2", "--runs-per-thread", "2", "--no-edge-runs", "--port", "0"]
    process = subprocess.Popen(
        [sys.executable, "-m", "duckdb_openai.emulator", *args, "--live", "2", "--manifest", str(manifest)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        assert base_url.startswith("http://")
        with manifest.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        assert list(rows[0]) == [*MANIFEST_COLUMNS, "live"]
        assert [row["live"] for row in rows] == ["false"] * 4 + ["true"] * 2
        live = [row for row in rows if row["live"] == "true"]
        headers = {"Authorization": "Bearer sk-x", "OpenAI-Beta": "assistants=v2"}
        runs = httpx.get(f"{base_url}/threads/{live[0]['thread_id']}/runs", headers=headers).json()["data"]
        assert {run["id"] for run in runs} == {row["run_id"] for row in live}
        assert {run["status"] for run in runs} <= {"queued", "in_progress", "requires_action"}
    finally:
        process.terminate()
        process.wait(30)
        if process.stdout is not None:
            process.stdout.close()


def test_cache_keys_are_urlencoded_whatever_the_ids() -> None:
    from urllib.parse import urlencode

    from duckdb_openai.engine.cache import _encoded

    for pairs in (
        [("thread_id", "thread_abc-1.2~x"), ("run_id", "run_9")],
        [("thread_id", "thread a&b=c"), ("run_id", "run/é+%")],
        [("include[]", "step_details.tool_calls[*].file_search.results[*].content")],
        [],
    ):
        assert _encoded(pairs) == urlencode(pairs)
