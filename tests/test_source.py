"""The StackQL form `openai.assistants.run_steps`, over real HTTP to the emulator."""

from __future__ import annotations

import math
import re
import sys
import types
from typing import Any

import duckdb
import pytest

import duckdb_openai
from duckdb_openai.errors import ConfigurationError
from duckdb_openai.resources.run_steps import RUN_STEPS_SCHEMA
from duckdb_openai.sql import catalog as source
from tests.helpers import KEY, api_row, connect, list_requests, rows, sparse

nodes = pytest.importorskip("duckdb._sources.nodes")

TABLE = "openai.assistants.run_steps"
SEED = (
    "SELECT id, assistant_id, cancelled_at, completed_at, created_at, expired_at, failed_at, last_error, "
    "metadata, object, run_id, status, step_details, thread_id, type, usage FROM openai.assistants.run_steps "
    "WHERE run_id = '{run_id}' AND thread_id = '{thread_id}';"
)


def retrieve_requests(emu: Any) -> int:
    return sum(emu.stats()["by_endpoint"]["retrieve"].values())  # type: ignore[no-any-return]


def where(run: Any) -> str:
    return f"thread_id = '{run.thread_id}' AND run_id = '{run.run_id}'"


def runs_of_one_thread(emu: Any, count: int) -> list[Any]:
    by_thread: dict[str, list[Any]] = {}
    for run in emu.dataset.runs:
        by_thread.setdefault(run.thread_id, []).append(run)
    return next(runs[:count] for runs in by_thread.values() if len(runs) >= count)


@pytest.mark.parametrize("count", [0, 1, 101])
def test_seed_statement_verbatim(emu: Any, con: Any, count: int) -> None:
    run = emu.dataset.find_run(step_count=count)
    result = con.execute(SEED.format(run_id=run.run_id, thread_id=run.thread_id))
    assert [d[0] for d in result.description] == RUN_STEPS_SCHEMA.names
    names = [d[0] for d in result.description]
    got = [dict(zip(names, r, strict=True)) for r in result.fetchall()]
    assert [api_row(r) for r in got] == [sparse(s) for s in emu.dataset.steps(run.thread_id, run.run_id)]
    assert list_requests(emu) == max(1, math.ceil(count / 100))


def test_describe_is_the_resource_schema(con: Any) -> None:
    described = con.execute(f"DESCRIBE {TABLE}").fetchall()
    assert [d[0] for d in described] == RUN_STEPS_SCHEMA.names
    assert dict((d[0], d[1]) for d in described)["created_at"] == "TIMESTAMP WITH TIME ZONE"
    (comment,) = con.execute(
        "SELECT comment FROM duckdb_views() WHERE database_name = 'openai' AND view_name = 'run_steps'"
    ).fetchone()
    assert "WHERE thread_id = '...' AND run_id = '...'" in comment


def test_projection_in_any_order(emu: Any, con: Any) -> None:
    run = emu.dataset.find_run(step_count=101)
    steps = emu.dataset.steps(run.thread_id, run.run_id)
    got = con.execute(f"SELECT usage.total_tokens, status, id FROM {TABLE} WHERE {where(run)}").fetchall()
    expected = [((s.get("usage") or {}).get("total_tokens"), s["status"], s["id"]) for s in steps]
    assert got == expected
    assert con.execute(f"SELECT count(*) FROM {TABLE} WHERE {where(run)}").fetchone() == (101,)
    assert len(con.execute(f"SELECT * FROM {TABLE} WHERE {where(run)}").fetchall()) == 101


def test_id_uses_the_item_endpoint_once(emu: Any, con: Any) -> None:
    run = emu.dataset.find_run(step_count=101)
    step = emu.dataset.steps(run.thread_id, run.run_id)[57]
    got = rows(con, f"SELECT * FROM {TABLE} WHERE {where(run)} AND id = ?", [step["id"]])
    assert [api_row(r) for r in got] == [sparse(step)]
    assert retrieve_requests(emu) == 1 and list_requests(emu) == 0


def test_id_in_fetches_each_id(emu: Any, con: Any) -> None:
    run = emu.dataset.find_run(step_count=101)
    steps = emu.dataset.steps(run.thread_id, run.run_id)
    wanted = [steps[3]["id"], steps[90]["id"]]
    got = con.execute(
        f"SELECT id FROM {TABLE} WHERE {where(run)} AND id IN (?, ?) ORDER BY id", wanted
    ).fetchall()
    assert got == [(i,) for i in sorted(wanted)]
    assert retrieve_requests(emu) == 2 and list_requests(emu) == 0


@pytest.mark.parametrize(
    "runs_clause", ["run_id IN ({a}, {b})", "(run_id = {a} OR run_id = {b})"], ids=["in", "or"]
)
def test_several_runs_fan_out(emu: Any, con: Any, runs_clause: str) -> None:
    first, second = runs_of_one_thread(emu, 2)
    clause = runs_clause.format(a=f"'{first.run_id}'", b=f"'{second.run_id}'")
    sql = f"SELECT run_id, id FROM {TABLE} WHERE thread_id = '{first.thread_id}' AND {clause}"
    got = con.execute(sql).fetchall()
    expected = [
        (r.run_id, s["id"]) for r in (first, second) for s in emu.dataset.steps(r.thread_id, r.run_id)
    ]
    assert sorted(got) == sorted(expected)
    assert list_requests(emu) == sum(max(1, math.ceil(r.step_count / 100)) for r in (first, second))
    plan = con.execute("EXPLAIN " + sql).fetchall()[0][1]
    assert first.run_id in plan and "─ Filter " not in plan  # nothing is left for DuckDB to filter


def test_a_missing_run_names_its_keys(emu: Any, con: Any) -> None:
    run = runs_of_one_thread(emu, 1)[0]
    runs = f"('{run.run_id}', 'run_nope')"
    sql = f"SELECT id FROM {TABLE} WHERE thread_id = '{run.thread_id}' AND run_id IN {runs}"
    with pytest.raises(duckdb.Error, match="run_nope"):
        con.execute(sql).fetchall()


@pytest.mark.parametrize("threads", [1, 4])
@pytest.mark.parametrize("extra", ["", " AND status = 'completed'"], ids=["pushed", "engine-filter"])
def test_limit_makes_one_request(emu: Any, con: Any, threads: int, extra: str) -> None:
    run = emu.dataset.find_run(step_count=10_000)
    con.execute(f"SET threads = {threads}")
    got = con.execute(f"SELECT id, status FROM {TABLE} WHERE {where(run)}{extra} LIMIT 5").fetchall()
    assert len(got) == 5
    assert list_requests(emu) == 1


def test_other_predicates_stay_with_duckdb(emu: Any, con: Any) -> None:
    run = next(
        r
        for r in emu.dataset.runs
        if any(s["status"] == "failed" for s in emu.dataset.steps(r.thread_id, r.run_id))
    )
    sql = f"SELECT id, status FROM {TABLE} WHERE {where(run)} AND status = 'failed'"
    got = con.execute(sql).fetchall()
    expected = [
        (s["id"], "failed") for s in emu.dataset.steps(run.thread_id, run.run_id) if s["status"] == "failed"
    ]
    assert got == expected and expected
    plan = con.execute("EXPLAIN " + sql).fetchall()[0][1]
    scan = plan[plan.index("Python Arrow Scan") :]
    above = plan[: plan.index("Python Arrow Scan")]
    assert "─ Filter " in above and "status = 'failed'" in above
    assert "status" not in scan.split("Projections")[0]


def test_explain_shows_what_was_pushed_down(emu: Any, con: Any) -> None:
    run = emu.dataset.find_run(step_count=101)
    plan = con.execute(f"EXPLAIN SELECT id, usage FROM {TABLE} WHERE {where(run)}").fetchall()[0][1]
    scan = plan[plan.index("Python Arrow Scan") :]
    flat = " ".join(line.strip("│ ") for line in scan.splitlines())
    assert f"\"run_id\" = '{run.run_id}'" in flat and f"\"thread_id\" = '{run.thread_id}'" in flat
    assert "Projections: id, usage" in flat
    assert list_requests(emu) == 0


@pytest.mark.parametrize(
    ("clause", "missing"),
    [
        ("run_id = 'run_a'", "thread_id"),
        ("thread_id = 'thread_a' AND run_id LIKE 'run_%'", "run_id"),
        ("thread_id = 'thread_a' OR run_id = 'run_a'", "thread_id, run_id"),
        ("id = 'step_a'", "thread_id, run_id"),
    ],
)
def test_missing_keys_show_the_required_form(emu: Any, con: Any, clause: str, missing: str) -> None:
    with pytest.raises(duckdb.Error) as raised:
        con.execute(f"SELECT id FROM {TABLE} WHERE {clause}").fetchall()
    message = str(raised.value)
    assert (
        "ConfigurationError: openai.assistants.run_steps needs WHERE thread_id = '...' AND run_id = '...'"
        in message
    )
    assert f"missing: {missing}" in message
    with pytest.raises(duckdb.Error, match="missing: thread_id, run_id"):
        con.execute(f"SELECT * FROM {TABLE}").fetchall()
    assert emu.stats()["requests"] == 0


def test_a_join_on_the_keys_points_to_lateral(con: Any) -> None:
    con.execute("CREATE TABLE my_runs AS SELECT 'thread_a' AS thread_id, 'run_a' AS run_id")
    with pytest.raises(duckdb.Error, match=r"LATERAL run_steps\(thread_id, run_id\)"):
        con.execute(f"SELECT s.id FROM my_runs JOIN {TABLE} s USING (thread_id, run_id)").fetchall()


def test_a_malformed_id_is_refused_before_any_request(emu: Any, con: Any) -> None:
    with pytest.raises(duckdb.Error, match=re.escape("invalid run_id 'run/../x'")):
        con.execute(f"SELECT id FROM {TABLE} WHERE thread_id = 'thread_a' AND run_id = 'run/../x'").fetchall()
    assert emu.stats()["requests"] == 0


def test_the_key_is_nowhere_in_the_catalog(emu: Any, con: Any) -> None:
    run = emu.dataset.find_run(step_count=1)
    sql = f"SELECT * FROM {TABLE} WHERE {where(run)}"
    con.execute(sql).fetchall()
    shown = [
        con.execute("SELECT * FROM duckdb_views()").fetchall(),
        con.execute("SELECT * FROM duckdb_functions()").fetchall(),
        con.execute("SELECT * FROM duckdb_tables()").fetchall(),
        con.execute("SELECT * FROM duckdb_databases()").fetchall(),
        con.execute("EXPLAIN " + sql).fetchall(),
        con.execute("EXPLAIN ANALYZE " + sql).fetchall(),
    ]
    assert KEY not in str(shown) and KEY[-10:] not in str(shown)


def test_registering_again_replaces_the_view(emu: Any) -> None:
    con, first = connect("http://127.0.0.1:9/v1")
    second = duckdb_openai.register(con, api_key=KEY, base_url=emu.base_url, progress="off")
    assert second.sources[TABLE] is not first.sources[TABLE]
    run = emu.dataset.find_run(step_count=1)
    assert con.execute(f"SELECT count(*) FROM {TABLE} WHERE {where(run)}").fetchone() == (1,)
    first.close()
    second.close()


def test_an_in_memory_catalog_is_reused(emu: Any) -> None:
    con = duckdb.connect()
    con.execute("ATTACH ':memory:' AS openai")
    con.execute("CREATE TABLE openai.main.notes AS SELECT 1 AS x")
    registration = duckdb_openai.register(con, api_key=KEY, base_url=emu.base_url, progress="off")
    run = emu.dataset.find_run(step_count=1)
    assert con.execute(f"SELECT count(*) FROM {TABLE} WHERE {where(run)}").fetchone() == (1,)
    assert con.execute("SELECT x FROM openai.main.notes").fetchone() == (1,)
    registration.close()


@pytest.mark.parametrize("how", ["attached", "opened"])
def test_a_database_file_named_openai_is_never_written(emu: Any, tmp_path: Any, how: str) -> None:
    path = tmp_path / ("mine.duckdb" if how == "attached" else "openai.duckdb")
    con = duckdb.connect() if how == "attached" else duckdb.connect(str(path))
    if how == "attached":
        con.execute(f"ATTACH '{path}' AS openai")
    con.execute("CREATE TABLE openai.main.notes AS SELECT 1 AS x")
    with pytest.warns(RuntimeWarning, match="left out so nothing is written into that file"):
        registration = duckdb_openai.register(con, api_key=KEY, base_url=emu.base_url, progress="off")
    assert registration.sources == {}
    run = emu.dataset.find_run(step_count=1)  # the table functions work as they are
    assert con.execute("SELECT count(*) FROM run_steps(?, ?)", [run.thread_id, run.run_id]).fetchone() == (1,)
    registration.close()
    con.close()
    reopened = duckdb.connect(str(path))
    schemas = reopened.execute(
        "SELECT schema_name FROM duckdb_schemas() WHERE database_name = ?", [path.stem]
    )
    assert "assistants" not in {name for (name,) in schemas.fetchall()}
    assert reopened.execute(f"SELECT x FROM {path.stem}.main.notes").fetchone() == (1,)


# -- the predicate logic, with trees built by hand ---------------------------------------------------------


def col(name: str) -> Any:
    return nodes.Col((name,))


def text(value: str) -> Any:
    return nodes.Lit(value, "VARCHAR")


def eq(name: str, value: str) -> Any:
    return nodes.Binary("=", col(name), text(value))


@pytest.fixture()
def bare(emu: Any) -> Any:
    client = duckdb_openai.Client(api_key=KEY, base_url=emu.base_url, progress="off")
    yield source.ResourceSource(client, duckdb_openai.RUN_STEPS, nodes, table=TABLE)
    client.close()


@pytest.mark.parametrize(
    "predicate",
    [
        eq("run_id", "run_a"),
        eq("id", "step_a"),
        nodes.In(col("run_id"), [text("run_a"), text("run_b")]),
        nodes.Binary("AND", eq("run_id", "run_a"), eq("thread_id", "thread_a")),
        nodes.Binary("AND", eq("run_id", "run_a"), eq("run_id", "run_b")),
        nodes.Binary("OR", eq("run_id", "run_a"), eq("run_id", "run_b")),
    ],
    ids=["eq", "id", "in", "and", "and-same-key", "or-same-key"],
)
def test_accepts_what_it_applies_exactly(bare: Any, predicate: Any) -> None:
    assert bare.accepts(predicate)


@pytest.mark.parametrize(
    "predicate",
    [
        eq("status", "failed"),
        nodes.Binary("!=", col("run_id"), text("run_a")),
        nodes.Binary(">", col("run_id"), text("run_a")),
        nodes.Binary("=", nodes.Col(("usage", "total_tokens")), nodes.Lit(3, "BIGINT")),
        nodes.Binary("=", col("run_id"), nodes.Lit(3, "INTEGER")),
        nodes.In(col("run_id"), []),
        nodes.Binary("OR", eq("run_id", "run_a"), eq("thread_id", "thread_a")),
        nodes.Binary("AND", eq("run_id", "run_a"), eq("status", "failed")),
        nodes.Unary("NOT", eq("run_id", "run_a")),
        nodes.Postfix("IS NULL", col("run_id")),
    ],
    ids=[
        "other-column",
        "ne",
        "gt",
        "struct-field",
        "not-text",
        "empty-in",
        "or-keys",
        "and-other",
        "not",
        "null",
    ],
)
def test_declines_everything_else(bare: Any, predicate: Any) -> None:
    assert not bare.accepts(predicate)


def test_a_key_equal_to_two_values_selects_nothing(emu: Any, bare: Any) -> None:
    conflict = nodes.Binary("AND", eq("run_id", "run_a"), eq("run_id", "run_b"))
    plan = bare.plan([eq("thread_id", "thread_a"), conflict])
    assert plan.requests == ()
    reader = duckdb.from_arrow(_Stream(bare.stream([0], [eq("thread_id", "thread_a"), conflict])[0]))
    assert reader.fetchall() == []
    assert emu.stats()["requests"] == 0


def test_in_lists_make_every_combination(bare: Any) -> None:
    plan = bare.plan(
        [
            nodes.In(col("thread_id"), [text("thread_a"), text("thread_b")]),
            nodes.In(col("run_id"), [text("run_a"), text("run_b"), text("run_a")]),
            eq("run_id", "run_b"),
        ]
    )
    assert [r.keys for r in plan.requests] == [
        {"thread_id": "thread_a", "run_id": "run_b"},
        {"thread_id": "thread_b", "run_id": "run_b"},
    ]
    assert not plan.items


class _Stream:
    """A bare stream capsule as an object DuckDB can read."""

    def __init__(self, capsule: object) -> None:
        self.capsule = capsule

    def __arrow_c_stream__(self, requested_schema: object = None) -> object:
        return self.capsule


# -- without the protocol ----------------------------------------------------------------------------------


def test_scan_protocol_detection(monkeypatch: pytest.MonkeyPatch) -> None:
    con = duckdb.connect()
    assert source.scan_protocol(con) is not None
    assert source.scan_protocol(object()) is None
    monkeypatch.setitem(sys.modules, "duckdb._sources", types.ModuleType("duckdb._sources"))
    assert source.scan_protocol(con) is None
    monkeypatch.setitem(sys.modules, "duckdb._sources", None)
    assert source.scan_protocol(con) is None


def test_register_works_without_the_protocol(emu: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "duckdb._sources", None)
    con, registration = connect(emu.base_url)
    assert registration.sources == {}
    run = emu.dataset.find_run(step_count=1)
    assert con.execute("SELECT count(*) FROM run_steps(?, ?)", [run.thread_id, run.run_id]).fetchone() == (1,)
    assert con.execute(
        "SELECT count(*) FROM duckdb_databases() WHERE database_name = 'openai'"
    ).fetchone() == (0,)
    with pytest.raises(duckdb.CatalogException):
        con.execute(f"SELECT * FROM {TABLE}")
    registration.close()


def test_configuration_error_is_the_cause(bare: Any) -> None:
    with pytest.raises(ConfigurationError, match="missing: thread_id"):
        bare.plan([eq("run_id", "run_a")])
