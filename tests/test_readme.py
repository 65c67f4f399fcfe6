"""The README's code, run as a new user would run it, against the emulator's ground truth.

The SQL and Python blocks are read from README.md itself, so an edit there that breaks a claim fails
here; the expected figures are computed in Python from the emulator's dataset, never by the query.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl
import pytest

import duckdb_openai
from duckdb_openai.emulator import Emulator
from tests.helpers import KEY, connect

README = Path(__file__).resolve().parent.parent / "README.md"


def blocks(language: str) -> list[str]:
    """The README's fenced code blocks in ``language``, in order."""
    return re.findall(rf"^```{language}\n(.*?)^```$", README.read_text(encoding="utf-8"), re.M | re.S)


def block(language: str, containing: str) -> str:
    (found,) = [text for text in blocks(language) if containing in text]
    return found


def kind(step: dict[str, Any]) -> str:
    if step["type"] == "message_creation":
        return "message_creation"
    return "+".join(sorted({call["type"] for call in step["step_details"]["tool_calls"]}))


@pytest.fixture
def my_runs(emu: Emulator, tmp_path: Path) -> Any:
    """A connection registered on the emulator, with its manifest loaded as `my_runs`, as a user has."""
    manifest = emu.dataset.write_manifest(tmp_path / "runs.csv")
    con, registration = connect(emu.base_url)
    con.execute("CREATE TABLE my_runs AS SELECT * FROM read_csv(?)", [str(manifest)])
    yield con
    registration.close()
    con.close()


def test_headline_query_counts_each_step_once(emu: Emulator, my_runs: Any) -> None:
    sql = blocks("sql")[0]
    assert "FROM my_runs r, run_steps(r.thread_id, r.run_id) s" in sql
    result = my_runs.execute(sql)
    assert [d[0] for d in result.description] == [
        "customer",
        "kind",
        "steps",
        "tool_calls",
        "failed_steps",
        "tokens",
    ]
    got = {(row[0], row[1]): tuple(row[2:]) for row in result.fetchall()}

    groups: defaultdict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    several_calls = 0
    for run in emu.dataset.runs:
        for step in emu.dataset.steps(run.thread_id, run.run_id):
            groups[(run.customer, kind(step))].append(step)
            several_calls += len(step["step_details"].get("tool_calls") or []) > 1
    want = {}
    for key, steps in groups.items():
        calls = [len(s["step_details"]["tool_calls"]) for s in steps if s["type"] == "tool_calls"]
        tokens = [s["usage"]["total_tokens"] for s in steps if s["usage"] is not None]
        want[key] = (
            len(steps),
            sum(calls) if calls else None,
            sum(s["status"] == "failed" for s in steps),
            sum(tokens) if tokens else None,
        )
    assert got == want
    # The figures the README quotes for the demo data, and the reason for grouping by kind of step.
    assert sum(len(steps) for steps in groups.values()) == 13_380 and several_calls == 2_647
    assert sum(row[3] or 0 for row in got.values()) == sum(
        s["usage"]["total_tokens"] for steps in groups.values() for s in steps if s["usage"]
    )


def test_stackql_block_returns_the_run(emu: Emulator, my_runs: Any) -> None:
    run = emu.dataset.find_run(step_count=101)
    sql = block("sql", "FROM openai.assistants.run_steps")
    sql = sql.replace("'run_..'", f"'{run.run_id}'").replace("'thread_..'", f"'{run.thread_id}'")
    ids = [row[0] for row in my_runs.execute(sql).fetchall()]
    assert ids == [step["id"] for step in emu.dataset.steps(run.thread_id, run.run_id)]


def test_python_and_dataframes_block(emu: Emulator, my_runs: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    run = emu.dataset.find_run(step_count=101)
    steps = emu.dataset.steps(run.thread_id, run.run_id)
    code = block("python", "read_run_steps(")
    for quote in "\"'":
        code = code.replace(f"{quote}thread_..{quote}", f"{quote}{run.thread_id}{quote}")
        code = code.replace(f"{quote}run_..{quote}", f"{quote}{run.run_id}{quote}")
    code = code.replace('"step_.."', repr(steps[7]["id"]))
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", emu.base_url)
    namespace: dict[str, Any] = {"duckdb_openai": duckdb_openai, "con": my_runs}
    exec(compile(code, str(README), "exec"), namespace)
    assert list(namespace["frame"]["id"]) == [s["id"] for s in reversed(steps)]  # sort="desc"
    # metadata is a dict per row, as in .df() and .pl(), not pyarrow's default list of pairs.
    metadata = list(namespace["frame"]["metadata"])
    assert all(isinstance(m, dict) for m in metadata) and any(metadata)
    assert metadata == [s["metadata"] for s in reversed(steps)]
    assert metadata == list(
        my_runs.sql(
            f"SELECT metadata FROM run_steps('{run.thread_id}', '{run.run_id}', sort := 'desc')"
        ).df()["metadata"]
    )
    assert namespace["step"].column("id").to_pylist() == [steps[7]["id"]]


@pytest.mark.parametrize("zone", ["America/New_York", "Asia/Kolkata"])
def test_dataframe_timestamps_follow_the_session_time_zone(emu: Emulator, my_runs: Any, zone: str) -> None:
    """As the README says: `.df()` and `.pl()` use DuckDB's TimeZone setting; `SET TimeZone = 'UTC'` gives
    UTC; the Python readers always give UTC. The instants are the API's either way."""
    run = emu.dataset.find_run(step_count=101)
    created = [s["created_at"] for s in emu.dataset.steps(run.thread_id, run.run_id)]
    sql = f"SELECT created_at FROM run_steps('{run.thread_id}', '{run.run_id}')"

    my_runs.execute(f"SET TimeZone = '{zone}'")
    frame = my_runs.sql(sql).df()
    assert str(frame["created_at"].dt.tz) == zone
    assert [int(t.timestamp()) for t in frame["created_at"]] == created
    assert my_runs.sql(sql).pl().schema["created_at"] == pl.Datetime("us", zone)

    my_runs.execute("SET TimeZone = 'UTC'")
    assert str(my_runs.sql(sql).df()["created_at"].dt.tz) == "UTC"
    assert my_runs.sql(sql).pl().schema["created_at"] == pl.Datetime("us", "UTC")

    my_runs.execute(f"SET TimeZone = '{zone}'")
    reader = duckdb_openai.read_run_steps(run.thread_id, run.run_id, api_key=KEY, base_url=emu.base_url)
    table = reader.read_all()
    assert table.to_pandas()["created_at"].dtype == pd.DatetimeTZDtype("us", "UTC")
    assert [int(t.timestamp()) for t in table.to_pandas()["created_at"]] == created


# -- across tables -----------------------------------------------------------------------------------------


def test_tokens_per_customer_and_model_from_a_thread_log(emu: Emulator, my_runs: Any, tmp_path: Path) -> None:
    from duckdb_openai.emulator import Family

    family = Family(emu.dataset)
    manifest = family.write_threads_manifest(tmp_path / "threads.csv")
    my_runs.execute("CREATE TABLE my_threads AS SELECT * FROM read_csv(?)", [str(manifest)])
    sql = block("sql", "FROM my_threads t, runs(t.thread_id) r, run_steps(r.thread_id, r.id) s")
    got = {(row[0], row[1]): tuple(row[2:]) for row in my_runs.execute(sql).fetchall()}

    customer = {row["thread_id"]: row["customer"] for row in my_runs.execute(
        "SELECT thread_id, customer FROM my_threads").df().to_dict("records")}  # fmt: skip
    runs: defaultdict[tuple[str, str], set[str]] = defaultdict(set)
    prompt: defaultdict[tuple[str, str], list[int]] = defaultdict(list)
    completion: defaultdict[tuple[str, str], list[int]] = defaultdict(list)
    for thread_id, who in customer.items():
        for run in family.runs(thread_id):
            for step in emu.dataset.steps(thread_id, run["id"]):
                key = (who, run["model"])
                runs[key].add(run["id"])
                if step["usage"] is not None:
                    prompt[key].append(step["usage"]["prompt_tokens"])
                    completion[key].append(step["usage"]["completion_tokens"])
    want = {
        key: (
            len(ids),
            sum(prompt[key]) if prompt[key] else None,
            sum(completion[key]) if completion[key] else None,
        )
        for key, ids in runs.items()
    }
    assert got == want and len(want) > 5


def test_the_messages_a_run_created(emu: Emulator, my_runs: Any) -> None:
    from duckdb_openai.emulator import Family

    family = Family(emu.dataset)
    my_runs.execute("DELETE FROM my_runs WHERE run_id NOT IN (SELECT run_id FROM my_runs LIMIT 30)")
    sql = block("sql", "messages(r.thread_id, run_id := r.run_id)")
    got = sorted(my_runs.execute(sql).fetchall())
    want = sorted(
        (message["run_id"], message["role"], part["text"]["value"])
        for thread_id, run_id in my_runs.execute("SELECT thread_id, run_id FROM my_runs").fetchall()
        for message in family.messages(thread_id, run_id=run_id)
        for part in message["content"]
        if part["type"] == "text"
    )
    assert got == want and want


def test_tokens_and_failed_tool_calls_from_responses(emu: Emulator, my_runs: Any, tmp_path: Path) -> None:
    """The responses query counts failed tool calls (not failed responses): a tool call of a response's
    output whose status is failed, or a function call whose output, an input item of a later response of
    the log, holds an `error`; checked against the emulator's bodies, read as JSON here."""
    import json

    from duckdb_openai.emulator.successors import Successors

    truth = Successors(emu.dataset.seed)
    manifest = truth.write_manifest(tmp_path / "calls.csv")
    my_runs.execute("CREATE TABLE my_calls AS SELECT * FROM read_csv(?) LIMIT 200", [str(manifest)])
    sql = block("sql", "FROM my_calls c, response(c.response_id) r")
    result = my_runs.execute(sql)
    assert [d[0] for d in result.description] == [
        "customer",
        "model",
        "responses",
        "tool_calls",
        "failed_tool_calls",
        "input_tokens",
        "output_tokens",
        "reasoning_tokens",
    ]
    got = {(row[0], row[1]): tuple(row[2:]) for row in result.fetchall()}

    logged = truth.infos[:200]
    population = truth.population
    outputs: defaultdict[str, list[str]] = defaultdict(list)
    for info in logged:
        for item in map(json.loads, population.input_items[info.response_id].bodies):
            if item["type"] == "function_call_output":
                outputs[item["call_id"]].append(item["output"])

    def holds_error(text: str) -> bool:
        try:
            value = json.loads(text)
        except ValueError:
            return False
        return isinstance(value, dict) and value.get("error") is not None

    groups: defaultdict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for info in logged:
        body = json.loads(population.responses[info.response_id])
        groups[(info.customer, body["model"])].append(body)

    def total(bodies: list[dict[str, Any]], *path: str) -> int | None:
        values = []
        for body in bodies:
            value: Any = body.get("usage")
            for name in path:
                value = value.get(name) if isinstance(value, dict) else None
            if value is not None:
                values.append(value)
        return sum(values) if values else None

    want = {}
    for key, bodies in groups.items():
        calls = [item for body in bodies for item in body["output"] if item["type"].endswith("_call")]
        failed = [
            item
            for item in calls
            if item.get("status") == "failed" or any(map(holds_error, outputs.get(item.get("call_id"), [])))
        ]
        want[key] = (
            len(bodies),
            len(calls),
            len(failed),
            total(bodies, "input_tokens"),
            total(bodies, "output_tokens"),
            total(bodies, "output_tokens_details", "reasoning_tokens"),
        )
    assert got == want
    failed_by_status = sum(
        item.get("status") == "failed"
        for bodies in groups.values()
        for body in bodies
        for item in body["output"]
        if item["type"].endswith("_call")
    )
    failed_responses = sum(body["status"] == "failed" for bodies in groups.values() for body in bodies)
    # Both kinds of failure occur, and the count is of tool calls, not of failed responses.
    assert 0 < failed_by_status < sum(v[2] for v in want.values())
    assert sum(v[2] for v in want.values()) != failed_responses


def test_the_entra_id_block_runs_as_written(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """azure-identity is not a dependency: a stand-in with its two names runs the README's lines against
    the emulator's Azure v1 path, and the token reaches the server as a bearer token."""
    import sys
    import types

    import duckdb

    asked: list[tuple[Any, str]] = []

    def get_bearer_token_provider(credential: Any, scope: str) -> Any:
        asked.append((credential, scope))
        return lambda: "entra-token-0123456789"

    identity = types.ModuleType("azure.identity")
    identity.DefaultAzureCredential = lambda: "credential"  # type: ignore[attr-defined]
    identity.get_bearer_token_provider = get_bearer_token_provider  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "azure", types.ModuleType("azure"))
    monkeypatch.setitem(sys.modules, "azure.identity", identity)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    code = block("python", "get_bearer_token_provider(")
    code = code.replace("https://NAME.openai.azure.com/openai/v1/", emu.root_url + "/openai/v1/")
    con = duckdb.connect()
    namespace: dict[str, Any] = {"duckdb_openai": duckdb_openai, "con": con}
    exec(compile(code, str(README), "exec"), namespace)
    run = emu.dataset.find_run(step_count=1)
    emu.reset()
    assert con.execute("SELECT count(*) FROM run_steps(?, ?)", [run.thread_id, run.run_id]).fetchone() == (1,)
    assert asked == [("credential", "https://cognitiveservices.azure.com/.default")]
    assert emu.requests()[0]["auth"] is not None


def test_a_misspelled_sql_option_is_duckdbs_error_as_printed(con: Any) -> None:
    """In plain SQL the package cannot see a misspelled named option: the README quotes DuckDB's error
    for the call it names, word for word, and a bad value is the package's own error."""
    import duckdb

    printed = block("text", "Macro run_steps() does not support the supplied arguments")
    with pytest.raises(duckdb.BinderException) as raised:
        con.sql("SELECT * FROM run_steps('thread_a', 'run_b', sortt := 'desc')")
    assert str(raised.value) == printed.rstrip("\n")
    with pytest.raises(duckdb.Error, match=r"ConfigurationError: sort must be 'asc' or 'desc', not 'newest'"):
        con.sql("SELECT * FROM run_steps('thread_a', 'run_b', sort := 'newest')").fetchall()


def test_every_option_of_the_emulator_is_in_the_readme() -> None:
    """`duckdb-openai emulator --help` and the README's table of the emulator's options name the same
    options, each with the default the parser has."""
    from duckdb_openai.emulator.cli import build_parser
    from duckdb_openai.emulator.settings import API_KEY_ENV

    parser = build_parser()
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## The emulator") : text.index("## CLI")]
    rows = {
        row.split("`")[1].split()[0]: row.split("|")[2].strip()
        for row in section.splitlines()
        if row.startswith("| `--")
    }
    options = {
        option: action
        for action in parser._actions
        for option in action.option_strings
        if option.startswith("--") and option != "--help"
    }
    assert set(rows) == set(options)
    for option, action in options.items():
        if action.default not in (None, False, True) and action.dest != "api_key":
            assert f"`{action.default}`" == rows[option], option
    assert f"${API_KEY_ENV}" in rows["--api-key"]


# -- the organization's ledger -------------------------------------------------------------------------------

ADMIN = "sk-admin-readme-0123456789SECRET"


@pytest.fixture(scope="module")
def org_emu() -> Iterator[Emulator]:
    """The README's organization: the emulator of seed 7 with an admin key, on the real clock (so every one
    of its 180 days is over)."""
    with Emulator(seed=7, api_key=KEY, admin_key=ADMIN) as server:
        yield server


@pytest.fixture
def ledger(org_emu: Emulator) -> Iterator[Any]:
    """A connection with both keys, in a zone behind UTC (its midnight is the previous UTC day's evening):
    each block must set the zone it needs."""
    org_emu.reset()
    con, registration = connect(org_emu.base_url, admin_key=ADMIN)
    con.execute("SET TimeZone = 'America/Los_Angeles'")
    yield con
    registration.close()
    con.close()


def unix(day: str) -> int:
    return int(dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC).timestamp())


def utc_day(seconds: int) -> dt.date:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).date()


def asked(emu: Emulator, endpoint: str) -> list[dict[str, list[str]]]:
    return [r["query"] for r in emu.requests() if r["endpoint"] == endpoint]


def test_spend_per_project_name_and_model_per_day(org_emu: Emulator, ledger: Any) -> None:
    org = org_emu.organization
    sql = block("sql", "FROM openai.organization.costs c JOIN projects(")
    got = ledger.execute(sql).fetchall()
    names = {p["id"]: p["name"] for p in org.projects()}
    want: defaultdict[tuple[dt.date, str, str], Decimal] = defaultdict(Decimal)
    for bucket in org.costs(unix("2025-03-01"), unix("2025-03-08"), group_by=["project_id", "line_item"]):
        for result in bucket["results"]:
            key = (
                utc_day(bucket["start_time"]),
                names[result["project_id"]],
                result["line_item"].split(", ")[0],
            )
            want[key] += Decimal(str(result["amount"]["value"]))
    assert {r[:3]: r[3] for r in got} == want and len(got) == len(want)
    assert [r[:2] for r in got] == sorted(r[:2] for r in got)
    assert {day for day, _, _ in want} == {dt.date(2025, 3, d) for d in range(1, 8)}
    # As the README says: one request for the costs, grouped by what the query reads, one for the projects.
    [costs] = asked(org_emu, "organization.costs")
    assert costs["group_by"] == ["project_id", "line_item"] and costs["end_time"] == [str(unix("2025-03-08"))]
    assert len(asked(org_emu, "organization.projects.list")) == 1


def test_tokens_per_model_and_day(org_emu: Emulator, ledger: Any) -> None:
    sql = block("sql", "sum(input_cached_tokens) AS cached_tokens")
    got = {(r[0], r[1]): r[2:] for r in ledger.execute(sql).fetchall()}
    buckets = org_emu.organization.usage(
        "completions", unix("2024-10-01"), unix("2025-03-30"), group_by=["model"]
    )
    want = {
        (utc_day(b["start_time"]), r["model"]): (
            r["num_model_requests"], r["input_tokens"], r["input_cached_tokens"], r["output_tokens"],
        )
        for b in buckets
        for r in b["results"]
    }  # fmt: skip
    assert got == want and len({day for day, _ in got}) == 180
    queries = asked(org_emu, "organization.usage.completions")
    assert len(queries) == 6 and all(q["group_by"] == ["model"] for q in queries)  # 180 days, 31 a page


def test_failed_sign_ins_from_the_audit_log(org_emu: Emulator, ledger: Any) -> None:
    sql = block("sql", "FROM openai.organization.audit_logs")
    got = ledger.execute(sql).fetchall()
    failures: defaultdict[tuple[str, str], list[int]] = defaultdict(list)
    for event in org_emu.organization.events():
        if event["type"] == "login.failed" and event["effective_at"] >= unix("2024-10-01"):
            email = event["actor"]["session"]["user"]["email"]
            failures[(email, event["login.failed"]["error_code"])].append(event["effective_at"])
    want = {key: (len(times), max(times)) for key, times in failures.items()}
    assert {r[:2]: (r[2], int(r[3].timestamp())) for r in got} == want and len(got) == len(want) > 3
    assert [(-r[2], r[0]) for r in got] == sorted((-r[2], r[0]) for r in got)
    [query] = asked(org_emu, "organization.audit_logs")
    assert query["event_types[]"] == ["login.failed"]
    assert query["effective_at[gte]"] == [str(unix("2024-10-01"))]
