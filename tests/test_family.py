"""Runs, messages, assistants and threads as tables: every form equals what the official SDK reads from
the emulator, field by field; the chain from threads to steps; pushdown and streaming of the catalog."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import duckdb
import openai
import pytest

import duckdb_openai
from duckdb_openai.emulator import Emulator, Family
from tests.helpers import KEY, api_shape, connect, rows, sparse

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

#: Keys the emulator sends that a schema does not hold, as the schema modules document.
#: What the schema documents as dropped, per resource (nothing today: a run keeps its tool_resources).
DROPPED: dict[str, set[str]] = {}


@pytest.fixture(scope="module")
def family(emulator: Emulator) -> Family:
    return Family(emulator.dataset)


@pytest.fixture
def sdk(emulator: Emulator) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=emulator.base_url, api_key="sk-test", max_retries=0) as client:
        yield client


def assert_same(resource: duckdb_openai.Resource, got: list[dict[str, Any]], objects: list[Any]) -> None:
    """SQL rows equal the SDK's objects field by field, but for what the schema documents as dropped."""
    assert len(got) == len(objects)
    for row, obj in zip(got, objects, strict=True):
        expected = obj.model_dump(mode="json", exclude_unset=True, by_alias=True)
        for name in DROPPED.get(resource.name, ()):
            expected.pop(name, None)
        shaped = {f.name: api_shape(row[f.name], f) for f in resource.schema}
        assert sparse(shaped) == sparse(expected)


def thread_ids(emu: Emulator, n: int | None = None) -> list[str]:
    return emu.dataset.thread_ids[:n]


def test_runs_of_every_thread_equal_the_sdks(emu: Emulator, con: Any, sdk: openai.OpenAI) -> None:
    threads = thread_ids(emu)
    con.execute("CREATE TABLE my_threads AS SELECT unnest(?) AS thread_id", [threads])
    got = rows(con, "SELECT r.* FROM my_threads t, runs(t.thread_id) r")
    expected = [run for t in threads for run in sdk.beta.threads.runs.list(t, order="asc", limit=100)]
    assert_same(duckdb_openai.RUNS, got, expected)
    assert len(got) == len(emu.dataset.runs)


def test_one_run_and_its_retrieve_form(emu: Emulator, con: Any, sdk: openai.OpenAI) -> None:
    run = emu.dataset.find_run(step_count=101)
    got = rows(con, "SELECT * FROM run(?, ?)", [run.thread_id, run.run_id])
    assert_same(
        duckdb_openai.RUNS, got, [sdk.beta.threads.runs.retrieve(run.run_id, thread_id=run.thread_id)]
    )
    catalog = rows(
        con,
        f"SELECT * FROM openai.assistants.runs WHERE thread_id = '{run.thread_id}' AND id = '{run.run_id}'",
    )
    assert catalog == got
    table = duckdb_openai.read_run(run.thread_id, run.run_id, api_key=KEY, base_url=emu.base_url)
    assert table.to_pylist()[0]["id"] == run.run_id


@pytest.mark.slow
@pytest.mark.parametrize("sort", ["asc", "desc"])
def test_messages_equal_the_sdks_in_every_form(
    emu: Emulator, con: Any, sdk: openai.OpenAI, sort: str
) -> None:
    thread = emu.dataset.find_run(step_count=10_000).thread_id
    expected = list(sdk.beta.threads.messages.list(thread, order=sort, limit=100))
    assert len(expected) > 100  # several pages
    got = rows(con, f"SELECT * FROM messages(?, sort := '{sort}')", [thread])
    assert_same(duckdb_openai.MESSAGES, got, expected)
    if sort == "asc":
        assert rows(con, f"SELECT * FROM openai.assistants.messages WHERE thread_id = '{thread}'") == got
        reader = duckdb_openai.read_messages(thread, api_key=KEY, base_url=emu.base_url)
        assert [r["id"] for r in reader.read_all().to_pylist()] == [r["id"] for r in got]
    one = expected[len(expected) // 2]
    assert_same(duckdb_openai.MESSAGES, rows(con, "SELECT * FROM message(?, ?)", [thread, one.id]), [one])


def test_messages_of_each_run_are_those_its_steps_created(emu: Emulator, con: Any, family: Family) -> None:
    runs = [r for r in emu.dataset.runs if 0 < r.step_count <= 100][:40]
    con.execute(
        "CREATE TABLE my_runs AS SELECT * FROM (SELECT unnest(?) AS thread_id, unnest(?) AS run_id)",
        [[r.thread_id for r in runs], [r.run_id for r in runs]],
    )
    got = con.execute(
        "SELECT m.run_id, m.id FROM my_runs r, messages(r.thread_id, run_id := r.run_id) m"
    ).fetchall()
    created = con.execute(
        "SELECT s.run_id, s.step_details.message_creation.message_id FROM my_runs r, "
        "run_steps(r.thread_id, r.run_id) s WHERE s.type = 'message_creation'"
    ).fetchall()
    assert sorted(created) and set(created) <= set(got)
    truth = sorted((r.run_id, m["id"]) for r in runs for m in family.messages(r.thread_id, run_id=r.run_id))
    assert sorted(got) == truth
    # The catalog form sends run_id as the API's filter too: one list request per run.
    run = runs[0]
    emu.reset()
    where = f"thread_id = '{run.thread_id}' AND run_id = '{run.run_id}'"
    catalog = con.execute(f"SELECT id FROM openai.assistants.messages WHERE {where}").fetchall()
    assert sorted(catalog) == sorted((m["id"],) for m in family.messages(run.thread_id, run_id=run.run_id))
    logged = emu.requests()
    assert len(logged) == 1 and logged[0]["query"]["run_id"] == [run.run_id]


def test_assistants_and_threads(emu: Emulator, con: Any, sdk: openai.OpenAI) -> None:
    expected = list(sdk.beta.assistants.list(order="asc", limit=100))
    assert_same(duckdb_openai.ASSISTANTS, rows(con, "SELECT * FROM assistants()"), expected)
    assert rows(con, "SELECT * FROM openai.assistants.assistants") == rows(con, "SELECT * FROM assistants()")
    first = expected[0]
    assert_same(duckdb_openai.ASSISTANTS, rows(con, "SELECT * FROM assistant(?)", [first.id]), [first])
    thread = thread_ids(emu, 1)[0]
    got = rows(con, "SELECT * FROM thread(?)", [thread])
    assert_same(duckdb_openai.THREADS, got, [sdk.beta.threads.retrieve(thread)])
    assert rows(con, f"SELECT * FROM openai.assistants.threads WHERE id = '{thread}'") == got


def test_threads_cannot_be_listed_and_say_so(con: Any) -> None:
    with pytest.raises(duckdb.Error, match=r"threads needs WHERE id = '...'.*the API cannot list threads"):
        con.execute("SELECT * FROM openai.assistants.threads").fetchall()
    with pytest.raises(duckdb.Error, match="Table Function with name threads does not exist"):
        con.execute("SELECT * FROM threads()").fetchall()


@pytest.mark.slow
def test_the_chain_from_threads_to_steps_under_one_concurrency(emulator_factory: Any) -> None:
    emu = emulator_factory(seed=7, latency_ms=20)
    threads = thread_ids(emu, 30)
    con, registration = connect(emu.base_url, max_concurrency=4)
    con.execute("CREATE TABLE my_threads AS SELECT unnest(?) AS thread_id", [threads])
    got = con.execute(
        "SELECT r.id, s.id FROM my_threads t, runs(t.thread_id) r, run_steps(r.thread_id, r.id) s"
    ).fetchall()
    truth = sorted(
        (run.run_id, step["id"])
        for run in emu.dataset.runs
        if run.thread_id in set(threads)
        for step in emu.dataset.steps(run.thread_id, run.run_id)
    )
    assert sorted(got) == truth and len(truth) > 100
    assert 1 < emu.stats()["max_in_flight"] <= 4
    registration.close()


@pytest.mark.parametrize(
    ("table", "where"),
    [
        ("runs", "thread_id = '{thread}'"),
        ("messages", "thread_id = '{thread}'"),
        ("run_steps", "thread_id = '{thread}' AND run_id = '{run}'"),
        ("assistants", "true"),
    ],
)
def test_limit_over_a_catalog_list_makes_one_request(emu: Emulator, con: Any, table: str, where: str) -> None:
    run = emu.dataset.find_run(step_count=10_000)
    clause = where.format(thread=run.thread_id, run=run.run_id)
    emu.reset()
    got = con.execute(f"SELECT id FROM openai.assistants.{table} WHERE {clause} LIMIT 2").fetchall()
    assert len(got) == 2
    assert emu.stats()["requests"] == 1


def test_a_fan_out_error_names_the_resource_and_its_keys(emu: Emulator, con: Any) -> None:
    with pytest.raises(duckdb.Error) as info:
        con.execute("SELECT * FROM messages('thread_nope')").fetchall()
    message = str(info.value)
    assert "FetchError" in message and "messages failed for thread_id='thread_nope'" in message
    assert "run step" not in message
    with pytest.raises(duckdb.Error, match=r"message failed for thread_id='thread_nope', message_id='msg_x'"):
        con.execute("SELECT * FROM message('thread_nope', 'msg_x')").fetchall()
