"""`duckdb_openai.sync` against the emulator over real HTTP: each synced table equals a plain read of
the same resource, a rerun with nothing new sends exactly the stated requests and writes nothing, and
bad input fails before any request."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

import duckdb_openai
from duckdb_openai.emulator import DatasetConfig, Emulator
from duckdb_openai.emulator.successors import Successors
from duckdb_openai.errors import ConfigurationError, InvalidIdError
from duckdb_openai.resources.runs import TERMINAL_STATUSES
from duckdb_openai.sync import TABLES_BY_NAME, Cursor, SyncTable
from duckdb_openai.sync.tables import RESPONSE_TERMINAL
from tests.sync_helpers import differences, quick, registered, state_rows, table_rows

#: A small Assistants population (18 runs in 6 threads) beside the default Responses era.
DATASET = DatasetConfig(threads=6, runs_per_thread=3, mean_steps=8, edge_runs=False)
RESPONSES = 30


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator(seed=7, dataset=DATASET) as emu:
        yield emu


@pytest.fixture
def emu(emulator: Emulator) -> Emulator:
    emulator.reset()
    return emulator


def calls_log(count: int = RESPONSES) -> pa.Table:
    """A user's log of responses (and their conversations): the first `count` of the emulator's."""
    infos = Successors(7).infos[:count]
    return pa.table(
        {
            "response_id": [i.response_id for i in infos],
            "conversation_id": [i.conversation_id for i in infos],
            "started_at": [datetime.fromtimestamp(i.started_at, UTC) for i in infos],
        }
    )


def values(ids: list[str]) -> str:
    """A relation of the ids, one column `id`."""
    return "(SELECT unnest([" + ", ".join(f"'{i}'" for i in ids) + "]) AS id)"


def by_endpoint(emu: Emulator) -> dict[str, int]:
    return {name: sum(counts.values()) for name, counts in emu.stats()["by_endpoint"].items() if counts}


def same_as_api(path: Path, emu: Emulator, pairs: dict[str, str]) -> dict[str, int]:
    """Assert that each target table equals its plain query; the row count of each."""
    con = registered(emu.base_url)
    con.execute(f"ATTACH '{path}' AS h (READ_ONLY)")
    counts = {}
    try:
        for table, query in pairs.items():
            columns = ", ".join(f'"{f.name}"' for f in TABLES_BY_NAME[table].schema)
            only_target, only_api, total = differences(
                con, f"SELECT {columns} FROM h.{table}", f"SELECT {columns} FROM ({query})"
            )
            assert (only_target, only_api) == (0, 0), (table, only_target, only_api)
            counts[table] = total
    finally:
        con.close()
    return counts


def test_chat_completions_and_assistants_equal_the_api_and_a_rerun_writes_nothing(
    emu: Emulator, tmp_path: Path
) -> None:
    path = tmp_path / "history.duckdb"
    first = duckdb_openai.sync(path, **quick(emu.base_url))
    assert [*first.tables] == ["assistants", "chat_completions", "chat_completion_messages"]
    counts = same_as_api(
        path,
        emu,
        {
            "assistants": "SELECT * FROM assistants()",
            "chat_completions": "SELECT * FROM chat_completions()",
            "chat_completion_messages": (
                "SELECT m.* FROM chat_completions() c, chat_completion_messages(c.id) m"
            ),
        },
    )
    population = Successors(7).population
    assert counts["chat_completions"] == len(population.chat_objects) == 250
    assert counts["chat_completion_messages"] == sum(len(m.ids) for m in population.chat_messages.values())
    assert first.table("chat_completions").counts.new == 250
    assert first.table("chat_completion_messages").requests == 250  # one list per completion

    emu.reset()
    second = duckdb_openai.sync(path, **quick(emu.base_url))
    # One page of assistants, one request after the cursor (the last day's completions come back in it),
    # and no messages: no completion is new.
    assert by_endpoint(emu) == {"assistants.list": 1, "chat.completions.list": 1}
    assert second.rows_written == 0
    assert second.requests == 2
    created = sorted(o["created"] for o in population.chat_objects)
    window = sum(1 for c in created if c >= created[-1] - 86_400)
    assert second.table("chat_completions").counts.unchanged == window
    assert second.table("assistants").counts.unchanged == 5
    assert "chat_completions" in str(second) and "unchanged" in str(second)


def test_responses_and_conversations_from_a_log(emu: Emulator, tmp_path: Path) -> None:
    path = tmp_path / "history.duckdb"
    log = calls_log()
    first = duckdb_openai.sync(path, log=log, **quick(emu.base_url))
    assert {"responses", "response_input_items", "conversations", "conversation_items"} <= set(first.tables)
    con = duckdb.connect()
    con.register("log", log)
    ids = [r[0] for r in con.execute("SELECT DISTINCT response_id FROM log").fetchall()]
    conversations = [r[0] for r in con.execute("SELECT DISTINCT conversation_id FROM log").fetchall()]
    counts = same_as_api(
        path,
        emu,
        {
            "responses": f"SELECT r.* FROM {values(ids)}, response(id) r",
            "response_input_items": f"SELECT i.* FROM {values(ids)}, response_input_items(id) i",
            "conversations": f"SELECT c.* FROM {values(conversations)}, conversation(id) c",
            "conversation_items": f"SELECT i.* FROM {values(conversations)}, conversation_items(id) i",
        },
    )
    assert counts["responses"] == RESPONSES
    assert counts["conversations"] == len(conversations)

    emu.reset()
    second = duckdb_openai.sync(path, log=log, **quick(emu.base_url))
    # Every response is final (completed, failed or incomplete): none is asked again, nor its items;
    # conversations are read once; each conversation's items are asked after their last item.
    statuses = {r[0] for r in table_rows(path, "responses", ["status"])}
    assert statuses <= RESPONSE_TERMINAL
    assert by_endpoint(emu) == {
        "assistants.list": 1,
        "chat.completions.list": 1,
        "conversations.items": len(conversations),
    }
    assert second.table("responses").requests == 0
    assert second.rows_written == 0


@pytest.mark.parametrize("kind", ["threads", "runs"])
def test_runs_steps_and_messages_from_a_thread_or_run_log(emu: Emulator, tmp_path: Path, kind: str) -> None:
    path = tmp_path / "history.duckdb"
    runs = emu.dataset.runs
    threads = sorted({r.thread_id for r in runs})
    if kind == "threads":
        log = pa.table({"thread_id": threads})
    else:
        log = pa.table({"thread_id": [r.thread_id for r in runs], "run_id": [r.run_id for r in runs]})
    tables = ["runs", "run_steps", "messages"]

    def planned(**settings: Any) -> str:
        plan = duckdb_openai.sync(path, tables, log=log, dry_run=True, **quick(emu.base_url, **settings))
        return next(line for line in plan.plan if line.startswith("runs: "))

    if kind == "threads":
        assert planned().startswith(f"runs: {len(threads)} thread_ids in the log: one list each (GET /")
    else:
        assert planned().startswith(
            f"runs: {len(runs)} run_ids in the log: {len(runs)} to read, one request each "
            "(GET /threads/{thread_id}/runs/{run_id}); 0 in the target"
        )
    assert emu.stats()["requests"] == 0
    first = duckdb_openai.sync(path, tables, log=log, **quick(emu.base_url))
    counts = same_as_api(
        path,
        emu,
        {
            "runs": f"SELECT r.* FROM {values(threads)}, runs(id) r",
            "run_steps": f"SELECT s.* FROM {values(threads)}, runs(id) r, run_steps(r.thread_id, r.id) s",
            "messages": f"SELECT m.* FROM {values(threads)}, messages(id) m",
        },
    )
    assert counts["runs"] == len(runs)
    assert counts["run_steps"] == sum(r.step_count for r in runs)
    # Threads: one list of runs each; runs: one retrieve each. Then one list of steps per run, one of
    # messages per thread.
    assert first.table("runs").requests == (len(threads) if kind == "threads" else len(runs))
    assert first.table("run_steps").requests == len(runs)
    assert first.table("messages").requests == len(threads)

    emu.reset()
    unfinished = [s for (s,) in table_rows(path, "runs", ["status"]) if s not in TERMINAL_STATUSES]
    assert unfinished
    if kind == "runs":  # what the dry run says is what the sync then reads
        assert planned(final_after=0).startswith(
            f"runs: {len(runs)} run_ids in the log: {len(unfinished)} to read, one request each (GET /"
        )
        assert f"); {len(runs)} in the target, 0 the API no longer has" in planned(final_after=0)
    # final_after=0: a run the API calls unfinished is read again however long ago it expired.
    second = duckdb_openai.sync(path, tables, log=log, **quick(emu.base_url, final_after=0))
    # A run that has not finished is read again (and its steps, and its messages); finished ones never.
    endpoints = by_endpoint(emu)
    assert endpoints.get("runs.retrieve", 0) == len(unfinished)
    assert endpoints.get("runs.list", 0) == (len(threads) if kind == "threads" else 0)
    assert endpoints.get("list", 0) == len(unfinished)
    assert endpoints["messages.list"] == len(threads) + len(unfinished)
    assert second.requests == sum(endpoints.values())
    assert second.rows_written == 0
    assert second.table("runs").counts.unchanged == len(unfinished)

    # By default a run still unfinished a day past its expires_at counts as finished (the emulator's
    # stalled runs expired in 2024): only the lists after their cursors are asked.
    emu.reset()
    third = duckdb_openai.sync(path, tables, log=log, **quick(emu.base_url))
    lists = {"runs.list": len(threads)} if kind == "threads" else {}
    assert by_endpoint(emu) == lists | {"messages.list": len(threads)}
    assert third.rows_written == 0


def test_since_bounds_the_first_backfill_and_the_rest_arrives_later(emu: Emulator, tmp_path: Path) -> None:
    path = tmp_path / "history.duckdb"
    created = sorted(o["created"] for o in Successors(7).population.chat_objects)
    since = datetime.fromtimestamp(created[200], UTC)
    first = duckdb_openai.sync(path, ["chat_completions"], since=since, **quick(emu.base_url))
    assert first.table("chat_completions").counts.new == 50
    # Newest first, from one end only: the 50 rows take one page (and the page that passes since).
    assert by_endpoint(emu) == {"chat.completions.list": 1}
    assert min(r[0] for r in table_rows(path, "chat_completions", ["created"])) == since

    # A log prefix, then the whole log: only the new ids are read.
    emu.reset()
    log = calls_log(10)
    duckdb_openai.sync(path, ["responses"], log=log.slice(0, 4), **quick(emu.base_url))
    assert by_endpoint(emu) == {"responses.retrieve": len(set(log.column("response_id").to_pylist()[:4]))}
    emu.reset()
    later = duckdb_openai.sync(path, ["responses"], log=log, **quick(emu.base_url))
    assert later.table("responses").counts.new == 6
    assert by_endpoint(emu) == {"responses.retrieve": 6}

    # since also chooses the log's rows when it has a time column.
    emu.reset()
    started = log.column("started_at").to_pylist()
    cut = duckdb_openai.sync(
        tmp_path / "other.duckdb", ["responses"], log=log, since=started[7], **quick(emu.base_url)
    )
    expected = sum(1 for s in started if s >= started[7])
    assert cut.table("responses").counts.new == expected and 0 < expected < len(started)


def test_a_cursor_declared_newest_first_reads_down_to_what_it_has(emu: Emulator, tmp_path: Path) -> None:
    # The growth audit logs will have: a newest-first list read until a row older than the newest seen.
    table = SyncTable(
        "chat_completions",
        TABLES_BY_NAME["chat_completions"].resource,
        key=("id",),
        growth=Cursor("created", order="desc"),
        time="created",
    )
    path = tmp_path / "history.duckdb"
    first = duckdb_openai.sync(path, [table], **quick(emu.base_url))
    assert first.table("chat_completions").counts.new == 250
    assert by_endpoint(emu) == {"chat.completions.list": 3}
    emu.reset()
    second = duckdb_openai.sync(path, [table], **quick(emu.base_url))
    assert by_endpoint(emu) == {"chat.completions.list": 1}
    assert second.table("chat_completions").counts.unchanged == 1  # the newest row, at the newest time
    newest = max(o["created"] for o in Successors(7).population.chat_objects)
    assert state_rows(path)[1][2] == {"newest": datetime.fromtimestamp(newest, UTC).isoformat()}


def test_the_state_lives_in_the_target(emu: Emulator, tmp_path: Path) -> None:
    path = tmp_path / "history.duckdb"
    duckdb_openai.sync(path, ["chat_completions"], **quick(emu.base_url))
    entries = state_rows(path)
    assert entries[0] == ("", "format", {"version": 1})
    (table, scope, value) = entries[1]
    assert (table, scope) == ("chat_completions", "")
    newest = datetime.fromisoformat(value["newest"])
    assert newest == max(r[0] for r in table_rows(path, "chat_completions", ["created"]))
    # The cursor is the newest completion created a full window before the newest one.
    created = {r[0]: r[1] for r in table_rows(path, "chat_completions", ["id", "created"])}
    assert created[value["after"]] <= newest - timedelta(days=1)
    assert not [c for c in created.values() if created[value["after"]] < c <= newest - timedelta(days=1)]
    # A copy of the file is a target of its own: it resumes where the original stood.
    copy = tmp_path / "copy.duckdb"
    copy.write_bytes(path.read_bytes())
    emu.reset()
    assert duckdb_openai.sync(copy, ["chat_completions"], **quick(emu.base_url)).rows_written == 0
    assert by_endpoint(emu) == {"chat.completions.list": 1}


def test_dry_run_sends_nothing_and_writes_nothing(emu: Emulator, tmp_path: Path) -> None:
    path = tmp_path / "history.duckdb"
    plan = duckdb_openai.sync(path, log=calls_log(5), dry_run=True, **quick(emu.base_url))
    assert emu.stats()["requests"] == 0
    assert not path.exists()
    text = str(plan)
    assert text.startswith("dry run: nothing sent, nothing written")
    assert "chat_completions: GET /chat/completions?order=asc: the whole list (a first sync)" in text
    assert "responses: 5 response_ids in the log: 5 to read (GET /responses/{response_id})" in text

    duckdb_openai.sync(path, ["chat_completions"], **quick(emu.base_url))
    emu.reset()
    again = str(duckdb_openai.sync(path, ["chat_completions"], dry_run=True, **quick(emu.base_url)))
    assert emu.stats()["requests"] == 0
    (after,) = [v["after"] for t, _, v in state_rows(path) if t == "chat_completions"]
    assert f"GET /chat/completions?order=asc&after={after}: the rows after it" in again
    assert "within 1 day of the newest" in again


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"tables": ["chat_completion"]},
            "no sync table 'chat_completion'; did you mean 'chat_completions'? the tables are assistants,",
        ),
        ({"tables": ["zzzz"]}, "no sync table 'zzzz'; the tables are assistants,"),
        ({"since": "last tuesday"}, "since 'last tuesday' is not a date"),
        ({"log": "not a table!"}, "log 'not a table!' is neither a table name nor a file"),
        ({"log": pa.table({"response_id": ["resp_ok", "resp/../x"]})}, "invalid response_id 'resp/../x'"),
        ({"parquet": "x", "con": duckdb.connect()}, "pass parquet= alone"),
        (
            {"tables": ["run_steps"]},
            "the tables runs, run_steps need a log with a thread_id column, and no log was given: pass log=",
        ),
        (
            {"tables": ["responses"], "log": pa.table({"thread_id": ["thread_abc"]})},
            "the table responses needs a log with a response_id column, and the log ",
        ),
    ],
)
def test_bad_input_fails_before_any_request(
    emu: Emulator, tmp_path: Path, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=None) as caught:
        target = None if "parquet" in kwargs else tmp_path / "h.duckdb"
        duckdb_openai.sync(target, **kwargs, **quick(emu.base_url))
    assert message in str(caught.value)
    if "invalid response_id" in message:
        assert isinstance(caught.value, InvalidIdError)
    assert emu.stats()["requests"] == 0
    if "parquet" not in kwargs:
        # Refused before the target was opened, or after: a file the sync made is not left behind.
        assert sorted(os.listdir(tmp_path)) == []


def test_a_failed_first_sync_leaves_an_existing_file_as_it_was(emu: Emulator, tmp_path: Path) -> None:
    path = tmp_path / "h.duckdb"
    duckdb_openai.sync(path, ["assistants"], **quick(emu.base_url))
    size = path.stat().st_size
    with pytest.raises(ConfigurationError, match="the log 'the Table given as log' has none"):
        duckdb_openai.sync(
            path, ["responses"], log=pa.table({"thread_id": ["thread_a"]}), **quick(emu.base_url)
        )
    assert path.stat().st_size == size
    assert table_rows(path, "assistants")


def test_a_bar_per_table_when_progress_is_on(
    emu: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    duckdb_openai.sync(tmp_path / "h.duckdb", **{**quick(emu.base_url), "progress": "on"})
    err = capsys.readouterr().err
    for table in ("assistants", "chat_completions", "chat_completion_messages"):
        assert f"{table}: " in err
    assert "250 requests" in err  # the messages: one list per completion
    assert "rows=392" in err


def test_since_on_a_log_without_a_time_column_is_said(emu: Emulator, tmp_path: Path) -> None:
    log = calls_log(3).select(["response_id"])
    result = duckdb_openai.sync(
        tmp_path / "h.duckdb", ["responses"], log=log, since="2030-01-01", **quick(emu.base_url)
    )
    assert result.table("responses").counts.new == 3
    assert any(
        "since does not narrow the log" in note and "every id in it is read" in note for note in result.notes
    )
    assert "note: since does not narrow the log" in str(result)
