"""The DuckDB binding where users are: cursors, several connections, per-row options, and declarations
that are checked when they are made."""

from __future__ import annotations

import pickle
import threading
import time
import warnings
from dataclasses import replace
from typing import Any

import duckdb
import pyarrow as pa
import pytest

import duckdb_openai
from duckdb_openai.errors import ConfigurationError, FetchError, NotFoundError, RunFetchError
from duckdb_openai.resources.base import SQL_RESERVED, Filter, Key, Resource
from duckdb_openai.resources.run_steps import RUN_STEPS
from tests.helpers import KEY, connect


def settings(emu: Any) -> dict[str, Any]:
    return {"api_key": KEY, "base_url": emu.base_url, "progress": "off", "retry_initial_delay": 0.01}


def count(con: Any, run: Any) -> int:
    row = con.execute("SELECT count(*) FROM run_steps(?, ?)", [run.thread_id, run.run_id]).fetchone()
    return int(row[0])


def test_a_cursor_can_be_registered_beside_its_connection(emu: Any) -> None:
    run = emu.dataset.find_run(step_count=101)
    con = duckdb.connect()
    duckdb_openai.register(con, **settings(emu))
    cursor = con.cursor()
    duckdb_openai.register(cursor, **settings(emu))
    assert count(cursor, run) == 101 and count(con, run) == 101


def test_two_connections_of_one_database_file_and_their_cursors_in_threads(emu: Any, tmp_path: Any) -> None:
    runs = [emu.dataset.find_run(step_count=n) for n in (1, 100, 101, 200)]
    path = str(tmp_path / "runs.duckdb")
    first, second = duckdb.connect(path), duckdb.connect(path)
    for con in (first, second):
        duckdb_openai.register(con, **settings(emu))
    results: dict[int, int] = {}
    failures: list[BaseException] = []

    def work(index: int, con: Any) -> None:
        try:
            cursor = con.cursor()
            duckdb_openai.register(cursor, **settings(emu))
            results[index] = count(cursor, runs[index])
        except BaseException as exc:  # the assertion below shows it
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(i, (first, second)[i % 2])) for i in range(len(runs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert failures == []
    assert results == {0: 1, 1: 100, 2: 101, 3: 200}


def test_registering_again_removes_the_earlier_functions(emu: Any) -> None:
    con = duckdb.connect()
    first = duckdb_openai.register(con, **settings(emu))
    second = duckdb_openai.register(con, **settings(emu))
    names = {name for (name,) in con.execute("SELECT function_name FROM duckdb_functions()").fetchall()}
    assert not set(first.functions) & names
    assert set(second.functions) <= names
    first.close()
    second.close()


def test_each_rows_on_error_is_its_own(emu: Any) -> None:
    run = emu.dataset.find_run(step_count=1)
    con, registration = connect(emu.base_url)
    con.execute(
        "CREATE TABLE my_runs AS SELECT * FROM (VALUES (?, ?, 'raise'), (?, 'run_gone', 'skip')) "
        "t(thread_id, run_id, policy)",
        [run.thread_id, run.run_id, run.thread_id],
    )
    lateral = "SELECT r.run_id, s.id FROM my_runs r, run_steps(r.thread_id, r.run_id, on_error := r.policy) s"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = con.execute(lateral).fetchall()
    assert [row[0] for row in got] == [run.run_id]
    assert any("skipped 1 of 2" in str(w.message) for w in caught)
    # The other way round, the missing run's own 'raise' fails the query, naming it.
    con.execute("UPDATE my_runs SET policy = CASE policy WHEN 'raise' THEN 'skip' ELSE 'raise' END")
    with pytest.raises(duckdb.Error, match="run_gone"):
        con.execute(lateral).fetchall()
    registration.close()


def test_whole_call_settings_that_differ_between_rows_are_refused(emu: Any) -> None:
    run = emu.dataset.find_run(step_count=1)
    con, registration = connect(emu.base_url)
    con.execute(
        "CREATE TABLE my_runs AS SELECT * FROM (VALUES (?, ?, 4), (?, ?, 8)) t(thread_id, run_id, n)",
        [run.thread_id, run.run_id] * 2,
    )
    before = emu.stats()["requests"]
    with pytest.raises(duckdb.Error, match=r"max_concurrency governs the whole call.*4, 8"):
        con.execute(
            "SELECT * FROM my_runs r, run_steps(r.thread_id, r.run_id, max_concurrency := r.n)"
        ).fetchall()
    assert emu.stats()["requests"] == before
    registration.close()


def test_fetch_errors_survive_pickling_with_their_keys() -> None:
    cause = NotFoundError("not found (404): no run", status=404)
    for cls in (FetchError, RunFetchError):
        error = cls(
            "run_steps failed", resource="run_steps", keys={"thread_id": "t", "run_id": "r"}, cause=cause
        )
        back = pickle.loads(pickle.dumps(error))
        assert type(back) is cls and str(back) == str(error)
        assert back.resource == "run_steps" and back.keys == error.keys and str(back.cause) == str(cause)
    assert RunFetchError("x", resource="run_steps", keys={"run_id": "r"}, cause=cause).run_id == "r"


# -- declarations -------------------------------------------------------------------------------------------


def test_the_reserved_words_are_duckdbs() -> None:
    found = duckdb.sql("SELECT keyword_name FROM duckdb_keywords() WHERE keyword_category = 'reserved'")
    assert {name for (name,) in found.fetchall()} == SQL_RESERVED


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"keys": (Key("thread_id", "t"), Key("runid", "r"))}, "'runid' is not a column"),
        ({"item_column": "status_x"}, "'status_x' is not a column"),
        ({"item_column": "created_at"}, "must be a string column"),
        ({"path": "threads/{thread_id}/steps"}, "must use exactly the keys"),
        ({"item_path_template": "steps/{step_id}"}, "item path must use the keys"),
        ({"filters": (Filter("status", "status", "completed"), Filter("status", "s", "x"))}, "used twice"),
        ({"filters": (Filter("type", "limit", "x"), Filter("object", "order", "x"))}, None),
        (
            {"item_key": Key("order", "x"), "item_path_template": RUN_STEPS.path + "/{order}"},
            "reserved words",
        ),
        ({"order_option": "direction"}, "order option 'direction'"),
    ],
)
def test_a_resource_is_checked_when_declared(change: dict[str, Any], problem: str | None) -> None:
    fields = {
        name: getattr(RUN_STEPS, name)
        for name in ("name", "item_name", "path", "keys", "item_key", "item_path_template", "schema")
    }
    fields |= {"options": RUN_STEPS.options, "filters": RUN_STEPS.filters}
    fields |= change
    if problem is None:
        assert Resource(**fields).filters == change["filters"]
        return
    with pytest.raises(TypeError, match=problem):
        Resource(**fields)


def test_a_request_is_bound_once_and_names_what_it_asked_for() -> None:
    request = RUN_STEPS.bind_list({"thread_id": "thread_a", "run_id": "run_b"}, {"include_content": True})
    assert request.params == (("include[]", "step_details.tool_calls[*].file_search.results[*].content"),)
    assert request.order == "asc" and request.name == "run_steps"
    item = RUN_STEPS.bind_item(
        {"thread_id": "thread_a", "run_id": "run_b"}, "step_c", {"include_content": False}
    )
    assert (
        item.describe() == "thread_id='thread_a', run_id='run_b', step_id='step_c'"
        and item.name == "run_step"
    )
    with pytest.raises(ConfigurationError, match="unknown option 'sort' for run_step"):
        RUN_STEPS.bind_item({"thread_id": "thread_a", "run_id": "run_b"}, "step_c", {"sort": "asc"})
    assert replace(request, on_error="skip").on_error == "skip"
    assert isinstance(RUN_STEPS.schema, pa.Schema)


def _loop_threads() -> int:
    return sum(t.name == "duckdb-openai" and t.is_alive() for t in threading.enumerate())


def test_a_closed_but_referenced_connection_frees_its_thread_when_idle(
    emu: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(duckdb_openai.Client, "IDLE_CLOSE_S", 0.2)
    run = emu.dataset.find_run(step_count=1)
    before = _loop_threads()
    con = duckdb.connect()
    registration = duckdb_openai.register(con, **settings(emu))
    assert count(con, run) == 1
    assert _loop_threads() == before + 1
    con.close()  # `con` and `registration` stay referenced: no finalizer runs
    deadline = time.monotonic() + 10
    while _loop_threads() > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _loop_threads() == before
    # A client that idled out starts again when used.
    reader = duckdb_openai.read_run_steps(run.thread_id, run.run_id, client=registration.client)
    assert reader.read_all().num_rows == 1
    registration.close()


def test_a_misspelled_register_keyword_names_the_closest() -> None:
    with pytest.raises(ConfigurationError, match="unknown setting 'clinet': did you mean 'client'"):
        duckdb_openai.register(duckdb.connect(), clinet=None)
