"""run_steps / run_step in DuckDB SQL and the Python reader, over real HTTP to the emulator."""

from __future__ import annotations

import math
from typing import Any

import pyarrow as pa
import pytest

import duckdb_openai
from duckdb_openai.emulator import DatasetConfig
from duckdb_openai.resources.run_steps import FILE_SEARCH_CONTENT, RUN_STEPS_SCHEMA
from tests.helpers import KEY, api_row, connect, list_requests, rows, sparse


@pytest.mark.parametrize("count", [0, 1, 100, 101, 200])
@pytest.mark.parametrize("sort", ["asc", "desc"])
def test_every_step_once_in_order_with_exact_requests(emu: Any, con: Any, count: int, sort: str) -> None:
    run = emu.dataset.find_run(step_count=count)
    got = rows(con, "SELECT * FROM run_steps(?, ?, sort := ?)", [run.thread_id, run.run_id, sort])
    expected = emu.dataset.steps(run.thread_id, run.run_id)
    if sort == "desc":
        expected.reverse()
    assert [api_row(r) for r in got] == [sparse(s) for s in expected]
    assert list_requests(emu) == max(1, math.ceil(count / 100))
    log = emu.requests()
    assert all(dict(r["query"]).get("limit") in ("100", ["100"]) for r in log), log[:2]


def test_long_run_from_both_ends(emu: Any, con: Any) -> None:
    run = emu.dataset.find_run(step_count=10_000)
    ids = [
        r[0] for r in con.execute("SELECT id FROM run_steps(?, ?)", [run.thread_id, run.run_id]).fetchall()
    ]
    assert ids == [s["id"] for s in emu.dataset.steps(run.thread_id, run.run_id)]
    # 10,000 is a multiple of 100: both sides' pages tile the run exactly, so the side that finds the
    # other's rows needs a page of its own and the other side has one in flight: two over ceil(n/100).
    assert 100 <= list_requests(emu) <= 102


def test_long_runs_of_other_lengths_cost_one_request_more_at_most(emulator_factory: Any) -> None:
    emu = emulator_factory(
        dataset=DatasetConfig(threads=2, runs_per_thread=4, mean_steps=400, edge_runs=False), latency_ms=5
    )
    runs = [r for r in emu.dataset.runs if r.step_count > 200 and r.step_count % 100]
    assert len(runs) >= 5
    con, registration = connect(emu.base_url)
    for sort in ("asc", "desc"):
        for run in runs:
            emu.reset()
            got = con.execute(
                "SELECT id FROM run_steps(?, ?, sort := ?)", [run.thread_id, run.run_id, sort]
            ).fetchall()
            want = [s["id"] for s in emu.dataset.steps(run.thread_id, run.run_id)]
            assert [r[0] for r in got] == (want if sort == "asc" else want[::-1])
            assert (
                math.ceil(run.step_count / 100) <= list_requests(emu) <= math.ceil(run.step_count / 100) + 1
            )
    registration.close()


def test_both_ends_off_is_exactly_ceil(emu: Any) -> None:
    con, registration = connect(emu.base_url, both_ends=False)
    run = emu.dataset.find_run(step_count=10_000)
    assert con.execute(
        "SELECT count(DISTINCT id) FROM run_steps(?, ?)", [run.thread_id, run.run_id]
    ).fetchone() == (10_000,)
    assert list_requests(emu) == 100
    registration.close()


def test_describe_shows_the_fixed_schema(con: Any) -> None:
    described = con.execute("DESCRIBE SELECT * FROM run_steps('thread_a', 'run_b')").fetchall()
    assert [d[0] for d in described] == RUN_STEPS_SCHEMA.names
    types = dict((d[0], d[1]) for d in described)
    assert types["created_at"] == "TIMESTAMP WITH TIME ZONE"
    assert types["metadata"] == "MAP(VARCHAR, VARCHAR)"
    assert types["usage"] == "STRUCT(prompt_tokens BIGINT, completion_tokens BIGINT, total_tokens BIGINT)"


def test_empty_run_keeps_the_schema(emu: Any, con: Any) -> None:
    run = emu.dataset.find_run(step_count=0)
    rel = con.sql(f"SELECT * FROM run_steps('{run.thread_id}', '{run.run_id}')")
    table = rel.to_arrow_table()
    assert table.num_rows == 0 and table.column_names == RUN_STEPS_SCHEMA.names
    reader = duckdb_openai.read_run_steps(run.thread_id, run.run_id, api_key=KEY, base_url=emu.base_url)
    assert reader.schema == RUN_STEPS_SCHEMA and reader.read_all().num_rows == 0


def test_tool_calls_unnest_without_json(emu: Any, con: Any) -> None:
    run = emu.dataset.find_run(step_count=200)
    got = con.execute(
        """
        SELECT tc.type, count(*) FROM (
          SELECT unnest(step_details.tool_calls) AS tc FROM run_steps(?, ?)
        ) GROUP BY ALL ORDER BY 1
        """,
        [run.thread_id, run.run_id],
    ).fetchall()
    expected: dict[str, int] = {}
    for step in emu.dataset.steps(run.thread_id, run.run_id):
        for call in step["step_details"].get("tool_calls", []):
            expected[call["type"]] = expected.get(call["type"], 0) + 1
    assert dict(got) == expected


def test_include_content(emu: Any, con: Any) -> None:
    run = emu.dataset.find_run(step_count=200)
    query = """
        SELECT count(*) FILTER (WHERE r.content IS NOT NULL), count(*) FROM (
          SELECT unnest(tc.file_search.results) AS r FROM (
            SELECT unnest(step_details.tool_calls) AS tc FROM run_steps(?, ?, include_content := ?)))
    """
    with_content, total = con.execute(query, [run.thread_id, run.run_id, True]).fetchone()
    assert total > 0 and with_content == total
    assert con.execute(query, [run.thread_id, run.run_id, False]).fetchone() == (0, total)
    included = [r for r in emu.requests() if FILE_SEARCH_CONTENT in str(r["query"])]
    assert len(included) == 2


def test_lateral_join_with_local_table(emu: Any, con: Any) -> None:
    runs = [r for r in emu.dataset.runs if r.step_count < 300][:40]
    con.execute("CREATE TABLE my_runs(thread_id VARCHAR, run_id VARCHAR, customer VARCHAR)")
    con.executemany(
        "INSERT INTO my_runs VALUES (?, ?, ?)", [(r.thread_id, r.run_id, r.customer) for r in runs]
    )
    con.execute("INSERT INTO my_runs VALUES (NULL, 'run_x', 'nobody'), ('thread_x', NULL, 'nobody')")
    got = con.execute(
        "SELECT r.run_id, s.id, s.run_id = r.run_id FROM my_runs r, run_steps(r.thread_id, r.run_id) s"
    ).fetchall()
    assert all(same for _, _, same in got)
    expected = sorted((r.run_id, s["id"]) for r in runs for s in emu.dataset.steps(r.thread_id, r.run_id))
    assert sorted((a, b) for a, b, _ in got) == expected
    assert list_requests(emu) == sum(max(1, math.ceil(r.step_count / 100)) for r in runs)


def test_run_step_one_row_from_the_get_endpoint(emu: Any, con: Any) -> None:
    run = emu.dataset.find_run(step_count=101)
    step = emu.dataset.steps(run.thread_id, run.run_id)[57]
    got = rows(con, "SELECT * FROM run_step(?, ?, ?)", [run.thread_id, run.run_id, step["id"]])
    assert [api_row(r) for r in got] == [sparse(step)]
    assert emu.stats()["by_endpoint"]["retrieve"] == {"200": 1} and list_requests(emu) == 0


def test_run_step_with_content(emu: Any, con: Any) -> None:
    run = emu.dataset.find_run(step_count=200)
    steps = emu.dataset.steps(run.thread_id, run.run_id, include_content=True)
    step = next(
        s for s in steps if any(c["type"] == "file_search" for c in s["step_details"].get("tool_calls", []))
    )
    got = rows(
        con,
        "SELECT * FROM run_step(?, ?, ?, include_content := true)",
        [run.thread_id, run.run_id, step["id"]],
    )
    assert [api_row(r) for r in got] == [sparse(step)]


def test_reader_streams_page_by_page(emu: Any) -> None:
    run = emu.dataset.find_run(step_count=10_000)
    reader = duckdb_openai.read_run_steps(run.thread_id, run.run_id, api_key=KEY, base_url=emu.base_url)
    assert isinstance(reader, pa.RecordBatchReader) and reader.schema == RUN_STEPS_SCHEMA
    first = reader.read_next_batch()
    assert first.num_rows == 100
    assert list_requests(emu) == 1  # the first batch is there after the first response
    rest = reader.read_all()
    ids = first.column("id").to_pylist() + rest.column("id").to_pylist()
    assert ids == [s["id"] for s in emu.dataset.steps(run.thread_id, run.run_id)]


def test_reader_desc_and_dataframes(emu: Any) -> None:
    run = emu.dataset.find_run(step_count=101)
    table = duckdb_openai.read_run_steps(
        run.thread_id, run.run_id, sort="desc", api_key=KEY, base_url=emu.base_url
    ).read_all()
    assert (
        table.column("id").to_pylist()
        == [s["id"] for s in emu.dataset.steps(run.thread_id, run.run_id)][::-1]
    )
    frame = table.to_pandas()
    assert len(frame) == 101 and str(frame["created_at"].dtype).startswith("datetime64")


def test_read_run_step(emu: Any) -> None:
    run = emu.dataset.find_run(step_count=100)
    step = emu.dataset.steps(run.thread_id, run.run_id)[0]
    table = duckdb_openai.read_run_step(
        run.thread_id, run.run_id, step["id"], api_key=KEY, base_url=emu.base_url
    )
    assert [api_row(r) for r in table.to_pylist()] == [sparse(step)]


def test_two_connections_with_different_settings(emu: Any, emulator_factory: Any) -> None:
    other = emulator_factory(seed=11, api_key="sk-other")
    con1, reg1 = connect(emu.base_url)
    con2, reg2 = connect(other.base_url, api_key="sk-other")
    run1, run2 = emu.dataset.find_run(step_count=101), other.dataset.find_run(step_count=101)
    assert con1.execute("SELECT count(*) FROM run_steps(?, ?)", [run1.thread_id, run1.run_id]).fetchone() == (
        101,
    )
    assert con2.execute("SELECT count(*) FROM run_steps(?, ?)", [run2.thread_id, run2.run_id]).fetchone() == (
        101,
    )
    assert list_requests(emu) == 2 and list_requests(other) == 2
    reg1.close()
    reg2.close()


def test_registering_again_replaces(emu: Any) -> None:
    con, first = connect("http://127.0.0.1:9/v1")
    second = duckdb_openai.register(con, api_key=KEY, base_url=emu.base_url, progress="off")
    run = emu.dataset.find_run(step_count=1)
    assert con.execute("SELECT count(*) FROM run_steps(?, ?)", [run.thread_id, run.run_id]).fetchone() == (1,)
    first.close()
    second.close()


def test_headers_and_user_agent(emu: Any) -> None:
    con, registration = connect(emu.base_url, organization="org-abc", project="proj_xyz")
    run = emu.dataset.find_run(step_count=1)
    con.execute("SELECT * FROM run_steps(?, ?)", [run.thread_id, run.run_id]).fetchall()
    (request,) = emu.requests()
    text = str(request)
    assert "assistants=v2" in text and "org-abc" in text and "proj_xyz" in text
    assert f"duckdb-openai/{duckdb_openai.__version__}" in text
    assert KEY not in text
    registration.close()


def test_azure_sends_api_key_header_and_version(emu: Any) -> None:
    con, registration = connect(emu.azure_base_url, api_version="2024-05-01-preview")
    run = emu.dataset.find_run(step_count=101)
    assert con.execute("SELECT count(*) FROM run_steps(?, ?)", [run.thread_id, run.run_id]).fetchone() == (
        101,
    )
    log = emu.requests()
    assert len(log) == 2
    for request in log:
        text = str(request)
        assert "2024-05-01-preview" in text and "api-key" in text.lower() and "Bearer" not in text
    registration.close()


def test_environment_fallbacks(emu: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", emu.base_url)
    monkeypatch.setenv("OPENAI_ORG_ID", "org-env")
    import duckdb

    con = duckdb.connect()
    registration = duckdb_openai.register(con)
    run = emu.dataset.find_run(step_count=1)
    assert con.execute("SELECT count(*) FROM run_steps(?, ?)", [run.thread_id, run.run_id]).fetchone() == (1,)
    assert "org-env" in str(emu.requests())
    registration.close()


def test_closing_the_connection_frees_the_client(emu: Any) -> None:
    import gc
    import threading

    import duckdb

    con = duckdb.connect()
    duckdb_openai.register(con, api_key=KEY, base_url=emu.base_url, progress="off")
    run = emu.dataset.find_run(step_count=1)
    con.execute("SELECT * FROM run_steps(?, ?)", [run.thread_id, run.run_id]).fetchall()
    assert any(t.name == "duckdb-openai" for t in threading.enumerate())
    con.close()
    del con
    gc.collect()
    assert not any(t.name == "duckdb-openai" for t in threading.enumerate())
