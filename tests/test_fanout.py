"""Many runs in one query: concurrency, retries, shared rate limits, failure policy, interrupts."""

from __future__ import annotations

import math
import os
import threading
import time
import warnings
from typing import Any

import duckdb
import pytest

from tests.helpers import all_requests, connect, list_requests
from tests.scripted import ScriptedServer


def small_runs(emu: Any, n: int) -> list[Any]:
    return [r for r in emu.dataset.runs if 0 < r.step_count <= 100][:n]


def load_runs(con: duckdb.DuckDBPyConnection, runs: list[Any]) -> None:
    con.execute("CREATE OR REPLACE TABLE my_runs(thread_id VARCHAR, run_id VARCHAR)")
    con.executemany("INSERT INTO my_runs VALUES (?, ?)", [(r.thread_id, r.run_id) for r in runs])


def truth(emu: Any, runs: list[Any]) -> list[tuple[str, str]]:
    return sorted((r.run_id, s["id"]) for r in runs for s in emu.dataset.steps(r.thread_id, r.run_id))


LATERAL = "SELECT s.run_id, s.id FROM my_runs r, run_steps(r.thread_id, r.run_id) s"


@pytest.mark.parametrize("limit", [4, 16])
def test_concurrency_is_bounded_and_used(emulator_factory: Any, limit: int) -> None:
    emu = emulator_factory(latency_ms=30)
    runs = small_runs(emu, 60)
    con, registration = connect(emu.base_url, max_concurrency=limit)
    load_runs(con, runs)
    assert sorted(con.execute(LATERAL).fetchall()) == truth(emu, runs)
    peak = emu.stats()["max_in_flight"]
    assert 1 < peak <= limit
    registration.close()


def test_named_max_concurrency_option(emulator_factory: Any) -> None:
    emu = emulator_factory(latency_ms=30)
    runs = small_runs(emu, 30)
    con, registration = connect(emu.base_url, max_concurrency=32)
    load_runs(con, runs)
    got = con.execute(
        "SELECT s.run_id, s.id FROM my_runs r, run_steps(r.thread_id, r.run_id, max_concurrency := 2) s"
    ).fetchall()
    assert sorted(got) == truth(emu, runs)
    assert emu.stats()["max_in_flight"] <= 2
    registration.close()


@pytest.mark.parametrize("kind", ["500", "502", "503", "408", "409", "429", "drop"])
@pytest.mark.parametrize("count", [1, 3])
def test_faults_are_retried_to_the_exact_result(emu: Any, kind: str, count: int) -> None:
    runs = small_runs(emu, 12)
    emu.script_faults(kind, count=count, retry_after_ms=20)
    con, registration = connect(emu.base_url, max_retries=5)
    load_runs(con, runs)
    assert sorted(con.execute(LATERAL).fetchall()) == truth(emu, runs)
    assert all_requests(emu) == len(runs) + count
    assert registration.client.stats.retries == count
    registration.close()


def test_long_run_survives_faults_on_its_pages(emu: Any) -> None:
    run = emu.dataset.find_run(step_count=10_000)
    emu.script_faults("503", count=4, match=run.run_id)
    emu.script_faults("drop", count=2, match=run.run_id)
    con, registration = connect(emu.base_url)
    ids = [
        r[0] for r in con.execute("SELECT id FROM run_steps(?, ?)", [run.thread_id, run.run_id]).fetchall()
    ]
    assert ids == [s["id"] for s in emu.dataset.steps(run.thread_id, run.run_id)]
    registration.close()


def test_client_errors_are_not_retried(emu: Any) -> None:
    con, registration = connect(emu.base_url, max_retries=5)
    run = emu.dataset.find_run(step_count=1)
    with pytest.raises(duckdb.Error, match="NotFoundError"):
        con.execute("SELECT * FROM run_steps(?, 'run_missing')", [run.thread_id]).fetchall()
    assert all_requests(emu) == 1
    registration.close()


@pytest.mark.parametrize("max_retries", [0, 2])
def test_max_retries_is_respected(emu: Any, max_retries: int) -> None:
    run = emu.dataset.find_run(step_count=1)
    emu.script_faults("500", count=10)
    con, registration = connect(emu.base_url, max_retries=max_retries)
    with pytest.raises(duckdb.Error, match="ServerError"):
        con.execute("SELECT * FROM run_steps(?, ?)", [run.thread_id, run.run_id]).fetchall()
    assert all_requests(emu) == max_retries + 1
    registration.close()


def test_random_faults_and_rate_limit_lose_nothing(emulator_factory: Any) -> None:
    emu = emulator_factory(fault_rate=0.15, rate_limit=150, seed=3, slow_ms=50)
    runs = [r for r in emu.dataset.runs if r.step_count <= 300][:80]
    con, registration = connect(emu.base_url, max_retries=12, max_concurrency=16)
    load_runs(con, runs)
    assert sorted(con.execute(LATERAL).fetchall()) == truth(emu, runs)
    stats = emu.stats()
    assert sum(stats["faults"].values()) > 0
    registration.close()


def test_a_429_pauses_every_worker(emulator_factory: Any) -> None:
    """One 429 with a retry-after pauses the shared budget: no worker sends until it has passed, including
    the workers that were already waiting for a connection slot when the 429 came."""
    emu = emulator_factory(latency_ms=20)
    runs = small_runs(emu, 40)
    emu.script_faults("429", count=1, retry_after_ms=400)
    con, registration = connect(emu.base_url, max_concurrency=8)
    load_runs(con, runs)
    assert sorted(con.execute(LATERAL).fetchall()) == truth(emu, runs)
    pacer = registration.client.pacer
    assert pacer is not None and pacer.throttled == 1
    assert pacer.paused_seconds == pytest.approx(0.4, abs=0.05)
    log = emu.requests()
    assert len(log) == len(runs) + 1
    (refused,) = [entry["received_s"] for entry in log if entry["status"] == 429]
    # The 429 is answered 20 ms after it arrived; the 7 requests in flight beside it were sent before that.
    # Between then (with room for a slow loop) and the end of the 400 ms pause, nothing may arrive.
    during_pause = [e for e in log if refused + 0.1 < e["received_s"] < refused + 0.4]
    assert during_pause == []
    registration.close()


def test_low_budget_sets_the_pace_before_429s(emulator_factory: Any) -> None:
    """The x-ratelimit-* headers pace the fan-out so the budget is not run dry: 150 requests against a
    budget of 50 per second (a full bucket of 50 to start) get through with no 429s, where sending as
    fast as the slots allow would be refused about 90 times."""
    emu = emulator_factory(rate_limit=50)
    runs = small_runs(emu, 150)
    con, registration = connect(emu.base_url, max_concurrency=8)
    load_runs(con, runs)
    assert sorted(con.execute(LATERAL).fetchall()) == truth(emu, runs)
    stats = emu.stats()
    assert stats["requests"] == len(runs)
    assert stats["by_endpoint"]["list"].get("429", 0) == 0
    assert registration.client.stats.throttled == 0
    registration.close()


def test_on_error_raise_names_the_run(emu: Any) -> None:
    runs = small_runs(emu, 5)
    con, registration = connect(emu.base_url)
    load_runs(con, runs)
    con.execute("INSERT INTO my_runs VALUES (?, 'run_gone')", [runs[0].thread_id])
    with pytest.raises(duckdb.Error) as info:
        con.execute(LATERAL).fetchall()
    assert "run_gone" in str(info.value) and runs[0].thread_id in str(info.value)
    registration.close()


def test_on_error_skip_warns_and_keeps_the_rest(emu: Any) -> None:
    runs = small_runs(emu, 5)
    con, registration = connect(emu.base_url)
    load_runs(con, runs)
    con.execute("INSERT INTO my_runs VALUES (?, 'run_gone1'), (?, 'run_gone2')", [runs[0].thread_id] * 2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = con.execute(
            "SELECT s.run_id, s.id FROM my_runs r, run_steps(r.thread_id, r.run_id, on_error := 'skip') s"
        ).fetchall()
    assert sorted(got) == truth(emu, runs)
    messages = [str(w.message) for w in caught]
    assert any("skipped 2 of 7" in m and "NotFoundError" in m for m in messages), messages
    registration.close()


def test_skip_never_returns_a_partial_run(emu: Any) -> None:
    """The first page arrives, the second keeps failing: the run yields nothing, not half."""
    run = emu.dataset.find_run(step_count=101)
    steps = emu.dataset.steps(run.thread_id, run.run_id)
    first = {"object": "list", "data": steps[:100], "first_id": steps[0]["id"], "last_id": steps[99]["id"],
             "has_more": True}  # fmt: skip
    boom = {"error": {"message": "boom", "type": "server_error"}}
    with ScriptedServer([(200, first), (500, boom)]) as server:
        con, registration = connect(server.base_url, max_retries=1)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            got = con.execute(
                "SELECT count(*) FROM run_steps(?, ?, on_error := 'skip')", [run.thread_id, run.run_id]
            ).fetchall()
        registration.close()
    assert got == [(0,)]
    assert any("skipped 1 of 1" in str(w.message) and "ServerError" in str(w.message) for w in caught)
    assert len(server.requests) == 3  # the first page, then the second page and its one retry


def _sockets_to(port: int) -> set[str]:
    """Established TCP connections of this process to `port` on loopback (from /proc), by socket inode
    (so a test counts the connections opened after a point, whatever closed meanwhile)."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = set()
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        with open(table) as handle:
            for line in handle.readlines()[1:]:
                fields = line.split()
                remote_port = int(fields[2].split(":")[1], 16)
                if remote_port == port and fields[3] == "01" and fields[9] in inodes:
                    found.add(fields[9])
    return found


@pytest.mark.parametrize("how", ["interrupt", "close"])
def test_interrupt_stops_in_flight_fetching(emulator_factory: Any, how: str) -> None:
    emu = emulator_factory(latency_ms=20_000, mode="process")
    runs = small_runs(emu, 20)
    emu.stats()
    # The emulator handle's own control connections (one of them may close while the test runs).
    baseline = _sockets_to(emu.port)
    con, registration = connect(emu.base_url, max_concurrency=8)
    load_runs(con, runs)
    outcome: list[BaseException | None] = []

    def query() -> None:
        try:
            con.execute("SELECT count(*) FROM my_runs r, run_steps(r.thread_id, r.run_id) s").fetchall()
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=query)
    worker.start()
    deadline = time.monotonic() + 10
    while emu.stats()["in_flight"] < 8 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(_sockets_to(emu.port) - baseline) == 8
    if how == "interrupt":
        con.interrupt()
    else:
        registration.close()
    worker.join(timeout=10)
    assert not worker.is_alive()
    assert outcome and outcome[0] is not None
    assert not _sockets_to(emu.port) - baseline  # cancelled requests closed their connections
    registration.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("duckdb-openai-run_steps")]


def test_progress_bar_on_stderr(emu: Any, capsys: pytest.CaptureFixture[str]) -> None:
    runs = small_runs(emu, 10)
    con, registration = connect(emu.base_url, progress="on")
    load_runs(con, runs)
    con.execute(LATERAL).fetchall()
    err = capsys.readouterr().err
    final = err.rstrip().split("\r")[-1]
    steps = sum(r.step_count for r in runs)
    assert "10/10" in final and f"steps={steps}" in final and "requests=10" in final, final
    registration.close()


def test_requests_per_second_cap_is_shared(emulator_factory: Any) -> None:
    emu = emulator_factory()
    runs = small_runs(emu, 12)
    con, registration = connect(emu.base_url, requests_per_second=4, max_concurrency=16)
    load_runs(con, runs)
    started = time.monotonic()
    assert sorted(con.execute(LATERAL).fetchall()) == truth(emu, runs)
    # A lower bound, not a speed claim: 12 requests at 4 per second cannot all start within 1.5 s
    # (a burst of 4, then one every 0.25 s).
    assert time.monotonic() - started >= 1.5
    registration.close()


def test_request_count_matches_pages(emu: Any) -> None:
    runs = [r for r in emu.dataset.runs if r.step_count <= 200][:50]
    con, registration = connect(emu.base_url)
    load_runs(con, runs)
    con.execute(LATERAL).fetchall()
    assert list_requests(emu) == sum(max(1, math.ceil(r.step_count / 100)) for r in runs)
    registration.close()


def test_interrupt_stops_the_catalog_forms_stream(emulator_factory: Any) -> None:
    emu = emulator_factory(latency_ms=20_000, mode="process")
    run = emu.dataset.find_run(step_count=101)
    con, registration = connect(emu.base_url)
    outcome: list[BaseException | None] = []

    def query() -> None:
        try:
            con.execute(
                f"SELECT count(*) FROM openai.assistants.run_steps WHERE thread_id = '{run.thread_id}' "
                f"AND run_id = '{run.run_id}'"
            ).fetchall()
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=query)
    worker.start()
    deadline = time.monotonic() + 10
    while emu.stats()["in_flight"] < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    con.interrupt()
    worker.join(timeout=10)  # the answer would take 20 s: only a cancelled request ends sooner
    assert not worker.is_alive()
    assert outcome and outcome[0] is not None
    registration.close()
