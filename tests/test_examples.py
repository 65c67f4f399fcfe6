"""The examples and the dataframe hand-offs, checked against the emulator's ground truth.

Each example's query runs on a connection loaded the way the example loads it, and its rows are compared
with the same figures computed in Python from the emulator's data; each script also runs as a command.
"""

from __future__ import annotations

import ast
import csv
import datetime as dt
import importlib
import json
import os
import re
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pytest

import duckdb_openai
from duckdb_openai.emulator import DatasetConfig, Emulator, Organization
from duckdb_openai.emulator.family import Family
from duckdb_openai.emulator.successors import Successors
from tests.helpers import KEY, connect

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
DATASET = DatasetConfig(threads=30, runs_per_thread=4, mean_steps=12.0, edge_runs=False)


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(seed=11, dataset=DATASET) as server:
        yield server


@pytest.fixture(scope="module")
def manifest(emu: Emulator, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return emu.dataset.write_manifest(tmp_path_factory.mktemp("examples") / "runs.csv")


@pytest.fixture(scope="module")
def truth(emu: Emulator) -> list[dict[str, Any]]:
    """Every step of every run, as the API has it, with the run's customer."""
    customers = {run.run_id: run.customer for run in emu.dataset.runs}
    return [
        {**step, "customer": customers[run.run_id]}
        for run in emu.dataset.runs
        for step in emu.dataset.steps(run.thread_id, run.run_id)
    ]


@pytest.fixture(scope="module")
def family(emu: Emulator) -> Family:
    """The runs and messages the emulator serves (derived from its dataset, so equal to what it sends)."""
    return Family(emu.dataset)


@pytest.fixture(scope="module")
def successors(emu: Emulator) -> Successors:
    """The Responses-era population the emulator serves beside the runs (its seed's)."""
    return Successors(11)


def example(name: str) -> ModuleType:
    if str(EXAMPLES) not in sys.path:
        sys.path.insert(0, str(EXAMPLES))
    return importlib.import_module(name)


@pytest.fixture(scope="module")
def con(emu: Emulator, manifest: Path) -> Iterator[Any]:
    connection, registration = connect(emu.base_url)
    example("_session").load_steps(connection, manifest)
    yield connection
    registration.close()
    connection.close()


def kind(step: dict[str, Any]) -> str:
    if step["type"] == "message_creation":
        return "message_creation"
    return "+".join(sorted({call["type"] for call in step["step_details"]["tool_calls"]}))


def total(values: list[int | None]) -> int | None:
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def test_all_steps_are_loaded(con: Any, truth: list[dict[str, Any]]) -> None:
    assert con.sql("SELECT count(*), count(DISTINCT id) FROM steps").fetchall() == [(len(truth), len(truth))]


def test_tokens_by_tool(con: Any, truth: list[dict[str, Any]]) -> None:
    groups: defaultdict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for step in truth:
        groups[(step["customer"], kind(step))].append(step)
    want = {
        key: (
            len(steps),
            total([s["usage"]["prompt_tokens"] if s["usage"] else None for s in steps]),
            total([s["usage"]["completion_tokens"] if s["usage"] else None for s in steps]),
            total([s["usage"]["total_tokens"] if s["usage"] else None for s in steps]),
        )
        for key, steps in groups.items()
    }
    got = {(r[0], r[1]): tuple(r[2:]) for r in example("tokens_by_tool").query(con).fetchall()}
    assert got == want
    assert {k for _, k in got} >= {"message_creation", "function", "code_interpreter", "file_search"}


def test_failed_steps(con: Any, truth: list[dict[str, Any]]) -> None:
    module = example("failed_steps")
    want = {
        s["id"]: (s["status"], (s["last_error"] or {}).get("code"))
        for s in truth
        if s["status"] in ("failed", "expired")
    }
    assert {"failed", "expired"} <= {status for status, _ in want.values()}
    rows = module.query(con).fetchall()
    assert {r[3]: (r[5], r[6]) for r in rows} == want and len(rows) == len(want)
    summary = Counter(
        (s["customer"], s["status"], (s["last_error"] or {}).get("code") or "(none)")
        for s in truth
        if s["status"] in ("failed", "expired")
    )
    assert {tuple(r[:3]): r[3] for r in module.summary(con).fetchall()} == summary


def function_calls(truth: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        call
        for step in truth
        if step["type"] == "tool_calls"
        for call in step["step_details"]["tool_calls"]
        if call["type"] == "function"
    ]


def test_function_arguments(con: Any, truth: list[dict[str, Any]]) -> None:
    module = example("function_arguments")
    calls = function_calls(truth)
    per_name: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
    for call in calls:
        per_name[call["function"]["name"]].append(call["function"])
    want = {
        name: (
            len(fns),
            sorted({key for fn in fns for key in json.loads(fn["arguments"])}),
            sum(fn["output"] is None for fn in fns),
        )
        for name, fns in per_name.items()
    }
    assert {r[0]: tuple(r[1:]) for r in module.per_function(con).fetchall()} == want

    by_call = {call["id"]: call["function"] for call in calls}
    rows = module.arguments(con).fetchall()
    assert len(rows) == len(calls)
    for (name, order_id, location, query, limit, status), call_id in zip(rows, sorted(by_call), strict=True):
        fn = by_call[call_id]
        args = json.loads(fn["arguments"])
        assert (name, order_id, location, query, limit) == (
            fn["name"],
            args.get("order_id"),
            args.get("location"),
            args.get("query"),
            args.get("limit"),
        )
        assert status == (json.loads(fn["output"]).get("status") if fn["output"] else None)


def test_latency_breakdown(con: Any, truth: list[dict[str, Any]], tmp_path: Path) -> None:
    module = example("latency_breakdown")
    seconds: defaultdict[str, list[int]] = defaultdict(list)
    for step in truth:
        if step["status"] == "completed":
            seconds[kind(step)].append(step["completed_at"] - step["created_at"])
    rows = module.query(con).fetchall()
    assert {r[0] for r in rows} == set(seconds)
    for name, steps, p50, p90, longest, summed in rows:
        values = np.array(seconds[name])
        assert steps == len(values) and longest == values.max() and summed == values.sum()
        assert (p50, p90) == pytest.approx((np.percentile(values, 50), np.percentile(values, 90)))
    # Code interpreter steps are the slow ones in the emulator's data, and the breakdown shows it.
    p50 = {r[0]: r[2] for r in rows}
    assert p50["code_interpreter"] > p50["function"]

    chart = module.save_chart(rows, tmp_path / "latency.png")
    data = chart.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5_000


def test_quickstart(con: Any, truth: list[dict[str, Any]]) -> None:
    module = example("quickstart")
    groups: defaultdict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for step in truth:
        groups[(step["customer"], kind(step))].append(step)
    want = {
        key: (
            len(steps),
            total([len(s["step_details"]["tool_calls"]) for s in steps if s["type"] == "tool_calls"]),
            sum(s["status"] == "failed" for s in steps),
            total([s["usage"]["total_tokens"] if s["usage"] else None for s in steps]),
        )
        for key, steps in groups.items()
    }
    assert {(r[0], r[1]): tuple(r[2:]) for r in module.per_kind(con).fetchall()} == want

    calls: Counter[tuple[str, str]] = Counter()
    in_failed: Counter[tuple[str, str]] = Counter()
    for step in truth:
        for call in step["step_details"].get("tool_calls") or []:
            calls[(step["customer"], call["type"])] += 1
            in_failed[(step["customer"], call["type"])] += step["status"] == "failed"
    assert {(r[0], r[1]): (r[2], r[3]) for r in module.per_tool(con).fetchall()} == {
        key: (count, in_failed[key]) for key, count in calls.items()
    }
    failed = Counter(s["last_error"]["code"] for s in truth if s["status"] == "failed")
    assert {r[0]: r[1] for r in module.why_failed(con).fetchall()} == failed


def cost_truth(
    runs: list[tuple[str, Any]], family: Family, emu: Emulator
) -> dict[tuple[str, str], tuple[Any, ...]]:
    """(customer, model) -> runs with steps, steps, prompt and completion tokens, cost: from the JSON."""
    prices = example("cost_per_model").PRICES
    groups: defaultdict[tuple[str, str], list[tuple[str, dict[str, Any]]]] = defaultdict(list)
    for customer, run in runs:
        model = family.run(run.thread_id, run.run_id)["model"]
        for step in emu.dataset.steps(run.thread_id, run.run_id):
            groups[(customer, model)].append((run.run_id, step))
    want = {}
    for (customer, model), steps in groups.items():
        used = [s["usage"] for _, s in steps if s["usage"]]
        prompt_price, completion_price = prices[model]
        cost = sum(
            u["prompt_tokens"] * prompt_price + u["completion_tokens"] * completion_price for u in used
        )
        want[(customer, model)] = (
            len({run_id for run_id, _ in steps}),
            len(steps),
            total([u["prompt_tokens"] for u in used]),
            total([u["completion_tokens"] for u in used]),
            round(cost / 1e6, 4) if used else None,
        )
    return want


def test_cost_per_model(con: Any, emu: Emulator, family: Family) -> None:
    module = example("cost_per_model")
    module.load_prices(con)
    want = cost_truth([(run.customer, run) for run in emu.dataset.runs], family, emu)
    rows = module.query(con).fetchall()
    got = {(r[0], r[1]): tuple(r[2:]) for r in rows}
    assert got.keys() == want.keys() and len(rows) == len(want)
    for key, (runs, steps, prompt, completion, cost) in want.items():
        assert got[key][:4] == (runs, steps, prompt, completion)
        assert got[key][4] == pytest.approx(cost, abs=1e-4)
    # The model is the run's, not the assistant's: some runs override it, so joining run() matters.
    models = {(r.run_id, family.run(r.thread_id, r.run_id)["model"]) for r in emu.dataset.runs}
    assistant_models = {r.run_id: family.assistant(r.assistant_id)["model"] for r in emu.dataset.runs}
    assert any(model != assistant_models[run_id] for run_id, model in models)
    assert len({model for _, model in want}) == len(module.PRICES)  # every model priced, every price used

    module.load_cost(con)
    per_customer: defaultdict[str, list[Any]] = defaultdict(lambda: [0, 0, 0.0])
    for (customer, _), (runs, _, prompt, completion, cost) in want.items():
        per_customer[customer][0] += runs
        per_customer[customer][1] += (prompt or 0) + (completion or 0)
        per_customer[customer][2] += cost or 0
    got_totals = {r[0]: r[1:4] for r in module.per_customer(con).fetchall()}
    assert got_totals.keys() == per_customer.keys()
    for customer, (runs, tokens, cost) in per_customer.items():
        assert got_totals[customer][:2] == (runs, tokens)
        assert got_totals[customer][2] == pytest.approx(cost, abs=0.01)
    assert module.unpriced(con) == []


def test_cost_per_model_from_a_thread_log(emu: Emulator, family: Family, tmp_path: Path) -> None:
    """A log of threads only: runs(thread_id) lists each thread's runs, the thread's customer pays."""
    module = example("cost_per_model")
    log = family.write_threads_manifest(tmp_path / "threads.csv")
    customers = {row["thread_id"]: row["customer"] for row in pd.read_csv(log).to_dict("records")}
    connection, registration = connect(emu.base_url)
    try:
        example("_session").load_runs(connection, log, module.LOG_COLUMNS)
        module.load_prices(connection)
        assert module.use_thread_log(connection)
        want = cost_truth([(customers[r.thread_id], r) for r in emu.dataset.runs], family, emu)
        got = {(r[0], r[1]): tuple(r[2:]) for r in module.query(connection).fetchall()}
        assert got.keys() == want.keys()
        for key, (*counts, cost) in want.items():
            assert got[key][:4] == tuple(counts) and got[key][4] == pytest.approx(cost, abs=1e-4)
    finally:
        registration.close()
        connection.close()


def test_cost_per_model_names_models_without_a_price(emu: Emulator, manifest: Path, tmp_path: Path) -> None:
    prices = tmp_path / "prices.csv"
    prices.write_text("model,prompt_usd_per_1m,completion_usd_per_1m\ngpt-4o,1,2\ngpt-4o-mini,0.1,0.2\n")
    env = {**os.environ, "OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": emu.base_url}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "cost_per_model.py"), str(manifest), "--prices", str(prices)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    (note,) = [line for line in done.stdout.splitlines() if line.startswith("no price for ")]
    assert note == "no price for gpt-4-turbo, gpt-4.1, o3-mini: add it to PRICES or to --prices"


def message_text(message: dict[str, Any]) -> str | None:
    parts = [p["text"]["value"] if p["type"] == "text" else p.get("refusal") for p in message["content"]]
    present = [p for p in parts if p is not None]
    return " ".join(present) if present else None


def output_error(call: dict[str, Any]) -> bool:
    try:
        output = json.loads(call["function"]["output"] or "null")
    except ValueError:
        return False
    return isinstance(output, dict) and output.get("error") is not None


def test_after_failed_tool_calls(con: Any, truth: list[dict[str, Any]], family: Family) -> None:
    module = example("after_failed_tool_calls")
    began: dict[str, int] = {}
    for step in truth:
        began[step["run_id"]] = min(began.get(step["run_id"], step["created_at"]), step["created_at"])
    want = []
    for step in truth:
        if step["type"] != "tool_calls" or step["status"] not in ("failed", "completed"):
            continue
        calls = step["step_details"]["tool_calls"]
        failed = (
            calls
            if step["status"] == "failed"
            else [c for c in calls if c["type"] == "function" and output_error(c)]
        )
        if not failed:
            continue
        ended = step["failed_at"] or step["completed_at"]
        messages = sorted(family.messages(step["thread_id"]), key=lambda m: (m["created_at"], m["id"]))
        asked = [m for m in messages if m["role"] == "user" and m["created_at"] <= began[step["run_id"]]]
        reply = next((m for m in messages if m["role"] == "assistant" and m["created_at"] >= ended), None)
        want.append(
            (
                step["customer"],
                step["thread_id"],
                step["run_id"],
                step["id"],
                ", ".join((c.get("function") or {}).get("name") or c["type"] for c in failed),
                (step["last_error"] or {}).get("code") or "error in function output",
                ended,
                message_text(asked[-1]) if asked else None,
                None if reply is None else reply["run_id"] == step["run_id"],
                None if reply is None else reply["created_at"] - ended,
                None if reply is None else message_text(reply),
            )
        )
    module.load(con)
    rows = [(*r[:6], int(r[6].timestamp()), *r[7:]) for r in module.query(con).fetchall()]
    assert sorted(rows, key=lambda r: r[3]) == sorted(want, key=lambda r: r[3])
    assert [r[6] for r in rows] == sorted(r[6] for r in rows)  # in the order things failed
    # The emulator's failures: steps that failed (its function outputs hold no errors), most answered
    # in a later run of the thread, some never.
    assert len(want) >= 5 and all(r[5] != "error in function output" for r in want)
    assert any(r[10] is not None for r in want) and any(r[10] is None for r in want)
    assert all(r[7] is not None for r in want)

    by_customer: defaultdict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for r in want:
        by_customer[r[0]].append(r)
    summary = {r[0]: r[1:4] for r in module.summary(con).fetchall()}
    assert summary == {
        c: (len(rs), sum(r[10] is not None for r in rs), sum(bool(r[8]) for r in rs))
        for c, rs in by_customer.items()
    }


#: Steps whose function outputs are an error, not JSON, missing, fine, and a JSON list.
SYNTHETIC_STEPS = """
CREATE OR REPLACE TABLE steps AS
SELECT 'Acme Corp' AS customer, 'thread_1' AS thread_id, 'run_1' AS run_id, 'step_' || i AS id,
       'tool_calls' AS type, 'completed' AS status, NULL::STRUCT(code VARCHAR, message VARCHAR) AS last_error,
       TIMESTAMPTZ '2024-09-01 00:00:00+00' + to_seconds(i) AS created_at, NULL::TIMESTAMPTZ AS failed_at,
       TIMESTAMPTZ '2024-09-01 00:00:01+00' + to_seconds(i) AS completed_at,
       {'prompt_tokens': 1, 'completion_tokens': 1, 'total_tokens': 2} AS usage,
       {'type': 'tool_calls', 'tool_calls': [{'id': 'call_' || i, 'type': 'function',
        'function': {'name': 'get_weather', 'arguments': '{}', 'output': o}}]} AS step_details
FROM (VALUES (1, '{"error": "timeout"}'), (2, 'not json'), (3, NULL), (4, '{"ok": true}'),
             (5, '["error"]')) t(i, o)
"""


def test_a_function_output_holding_an_error_is_a_failed_tool_call() -> None:
    """The rule the emulator's data never exercises (its outputs hold no errors), on made-up steps."""
    scratch = duckdb.connect()
    scratch.execute(SYNTHETIC_STEPS)
    scratch.execute(example("after_failed_tool_calls").FAILED)
    assert scratch.sql("SELECT step_id, tools, error FROM failed_tool_calls").fetchall() == [
        ("step_1", "get_weather", "error in function output")
    ]
    scratch.execute(example("migration_check").ASSISTANTS)
    assert scratch.sql("SELECT tool_calls, failed_tool_calls FROM assistants_sessions").fetchall() == [(5, 1)]
    scratch.close()


def per_customer_truth(sessions: dict[tuple[str, str], list[int | None]]) -> dict[str, tuple[Any, ...]]:
    """(customer, session) -> [tokens, tool calls, failed] to the migration check's per-customer row."""
    grouped: defaultdict[str, list[list[int | None]]] = defaultdict(list)
    for (customer, _), values in sessions.items():
        grouped[customer].append(values)
    tokens = {c: total([v[0] for v in vs]) or 0 for c, vs in grouped.items()}
    calls = {c: sum(v[1] or 0 for v in vs) for c, vs in grouped.items()}
    failed = {c: sum(v[2] or 0 for v in vs) for c, vs in grouped.items()}
    ranks = {c: 1 + sum(t > tokens[c] for t in tokens.values()) for c in tokens}
    return {
        c: (
            len(vs),
            tokens[c],
            calls[c],
            failed[c],
            100 * tokens[c] / sum(tokens.values()),
            100 * calls[c] / sum(calls.values()),
            100 * failed[c] / calls[c] if calls[c] else None,
            ranks[c],
        )
        for c, vs in grouped.items()
    }


def assert_rows_match(rows: list[tuple[Any, ...]], want: dict[str, tuple[Any, ...]]) -> None:
    got = {r[0]: r[1:] for r in rows}
    assert got.keys() == want.keys()
    for customer, values in want.items():
        counts, shares, rank = values[:4], values[4:7], values[7]
        assert got[customer][:4] == counts and got[customer][7] == rank
        assert got[customer][4:7] == pytest.approx(shares, abs=0.051)  # rounded to one decimal


def test_migration_check(
    emu: Emulator, manifest: Path, truth: list[dict[str, Any]], successors: Successors, tmp_path: Path
) -> None:
    module = example("migration_check")
    calls_log = successors.write_manifest(tmp_path / "calls.csv")
    # The mapping between the two logs: both name the same customers in their `customer` column.
    run_customers = {run.customer for run in emu.dataset.runs}
    call_customers = {info.customer for info in successors.infos}
    assert run_customers == call_customers and len(run_customers) == 7

    assistants: dict[tuple[str, str], list[int | None]] = {}
    for step in truth:
        row = assistants.setdefault((step["customer"], step["thread_id"]), [None, 0, 0])
        if step["usage"]:
            row[0] = (row[0] or 0) + step["usage"]["total_tokens"]
        calls = step["step_details"].get("tool_calls") or []
        row[1] = (row[1] or 0) + len(calls)
        failed = (
            calls
            if step["status"] == "failed"
            else [c for c in calls if c["type"] == "function" and output_error(c)]
        )
        row[2] = (row[2] or 0) + len(failed)

    population = successors.population
    responses: dict[tuple[str, str], list[int | None]] = {}
    for info in successors.infos:
        body = json.loads(population.responses[info.response_id])
        row = responses.setdefault((info.customer, info.conversation_id), [0, 0, 0])
        row[0] = (row[0] or 0) + body["usage"]["total_tokens"]
    for customer, conversation_id in responses:
        items = [json.loads(b) for b in population.conversation_items[conversation_id].bodies]
        tool_calls = [i for i in items if i["type"].endswith("_call")]
        errors = [
            i for i in items if i["type"] == "function_call_output" and "error" in json.loads(i["output"])
        ]
        row = responses[(customer, conversation_id)]
        row[1] = len(tool_calls)
        row[2] = sum(i.get("status") == "failed" for i in tool_calls) + len(errors)

    connection, registration = connect(emu.base_url)
    try:
        module.load(connection, manifest, calls_log)
        want_a, want_r = per_customer_truth(assistants), per_customer_truth(responses)
        assert_rows_match(module.per_customer(connection, "assistants").fetchall(), want_a)
        assert_rows_match(module.per_customer(connection, "responses").fetchall(), want_r)
        both = module.both(connection).fetchall()
        assert_rows_match([r[1:] for r in both if r[0] == "assistants"], want_a)
        assert_rows_match([r[1:] for r in both if r[0] == "responses"], want_r)
        side = {r[0]: r[1:] for r in module.side_by_side(connection).fetchall()}
        assert side.keys() == want_a.keys()
        for customer, row in side.items():
            a, r = want_a[customer], want_r[customer]
            assert row[6:] == (a[7], r[7])
            assert row[:6] == pytest.approx((a[4], r[4], a[5], r[5], a[6], r[6]), abs=0.051)
    finally:
        registration.close()
        connection.close()
    # Both sides have failed tool calls, so the failure columns are not vacuously zero.
    assert sum(v[3] for v in want_a.values()) > 0 and sum(v[3] for v in want_r.values()) > 0


# -- the organization's ledger: spend per project and model, and the usage reconciliation --------------------

ADMIN = "sk-admin-examples-0123456789SECRET"
DAY = 86_400
MEASURES = {
    "requests": "num_model_requests",
    "input_tokens": "input_tokens",
    "cached_tokens": "input_cached_tokens",
    "output_tokens": "output_tokens",
}


@pytest.fixture(scope="module")
def org_emu() -> Iterator[Emulator]:
    """The organization `spend.py --emulator` reads: seed 7, its clock at the script's EMULATOR_NOW."""
    with Emulator(seed=7, api_key=KEY, admin_key=ADMIN, now=example("spend").EMULATOR_NOW) as server:
        yield server


def utc_day(seconds: int) -> dt.date:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).date()


def money(value: float) -> Decimal:
    """An amount as the API's JSON writes it, read as the decimal it is (never summed as a float)."""
    return Decimal(str(value))


def cents(value: Decimal | None) -> str:
    """How DuckDB shows `round(value, 2)` of a positive DECIMAL; NULL for None."""
    return "NULL" if value is None else str(value.quantize(Decimal("0.01"), ROUND_HALF_UP))


def box_tables(text: str) -> list[tuple[list[str], list[list[str]]]]:
    """The tables DuckDB's `show()` printed in `text`: each one's column names and rows, as text."""
    tables = []
    rows: list[list[str]] | None = None
    for line in text.splitlines():
        if line.startswith("┌"):
            rows = []
        elif line.startswith("└") and rows is not None:
            tables.append((rows[0], rows[2:]))  # rows[1] holds the column types
            rows = None
        elif line.startswith("│") and rows is not None:
            rows.append([cell.strip() for cell in line.strip().strip("│").split("│")])
    return tables


SpendPerModel = dict[tuple[str, str], tuple[Any, ...]]


def spend_truth(
    org: Organization, start: int
) -> tuple[dict[tuple[dt.date, str], Decimal], SpendPerModel, list[dt.date]]:
    """From the emulator's own buckets since `start`: spend per whole day and project (by name); per
    project and model (the line item's text before ', ') its days, requests, input, cached and output
    tokens and spend; and the days not over at the organization's `now`."""
    now = org.now()
    names = {p["id"]: p["name"] for p in org.projects()}
    partial: set[dt.date] = set()
    per_day: dict[tuple[dt.date, str], Decimal] = {}
    for bucket in org.costs(start, group_by=["project_id"]):
        day = utc_day(bucket["start_time"])
        if bucket["end_time"] > now:
            partial.add(day)
            continue
        for result in bucket["results"]:
            per_day[(day, names[result["project_id"]])] = money(result["amount"]["value"])
    days: defaultdict[tuple[str, str], set[int]] = defaultdict(set)
    spent: defaultdict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for bucket in org.costs(start, group_by=["project_id", "line_item"]):
        if bucket["end_time"] <= now:
            for result in bucket["results"]:
                key = (names[result["project_id"]], result["line_item"].split(", ")[0])
                days[key].add(bucket["start_time"])
                spent[key] += money(result["amount"]["value"])
    tokens: defaultdict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for bucket in org.usage("completions", start, group_by=["project_id", "model"]):
        if bucket["end_time"] > now:
            partial.add(utc_day(bucket["start_time"]))
            continue
        for result in bucket["results"]:
            key = (names[result["project_id"]], result["model"])
            days[key].add(bucket["start_time"])
            for i, name in enumerate(MEASURES.values()):
                tokens[key][i] += result[name]
    per_model = {
        key: (len(seen), *tokens.get(key, [None] * 4), spent.get(key, Decimal(0)))
        for key, seen in days.items()
    }
    return per_day, per_model, sorted(partial)


def test_spend(org_emu: Emulator) -> None:
    module = example("spend")
    start = module.start_of(7, module.EMULATOR_NOW)
    assert start == dt.datetime(2025, 3, 13, tzinfo=dt.UTC)
    per_day, per_model, partial = spend_truth(org_emu.organization, int(start.timestamp()))
    org_emu.reset()
    connection, registration = connect(org_emu.base_url, admin_key=ADMIN)
    try:
        module.load(connection, start)
        got = {(r[0], r[1]): r[2] for r in module.per_day_and_project(connection).fetchall()}
        assert got == per_day  # exact decimals, to the last of the API's digits
        assert {day for day, _ in got} == {dt.date(2025, 3, 13) + dt.timedelta(days=i) for i in range(7)}
        assert module.partial_days(connection) == partial == [dt.date(2025, 3, 20)]
        rows = module.per_project_and_model(connection).fetchall()
        assert {(r[0], r[1]): tuple(r[2:]) for r in rows} == per_model and len(rows) == len(per_model)
    finally:
        registration.close()
        connection.close()
    # Completions models carry their tokens; line items of no completions model (storage, tool calls,
    # embeddings, images) their spend alone.
    assert any(v[1] for v in per_model.values()) and any(v[1] is None and v[5] for v in per_model.values())
    # Eight days of costs and of usage are one request each (a page holds 180 and 31 buckets).
    by = org_emu.stats()["by_endpoint"]
    assert sum(by["organization.costs"].values()) == 1
    assert sum(by["organization.usage.completions"].values()) == 1
    assert sum(by["organization.projects.list"].values()) == 1


def test_spend_runs_offline_with_emulator(org_emu: Emulator, tmp_path: Path) -> None:
    module = example("spend")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    output = tmp_path / "spend.csv"
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "spend.py"), "--emulator", "--output", str(output)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[:2] == [
        "Spend per day and project (USD), 7 whole days from 2025-03-13 to 2025-03-19",
        "(left out, not over yet by the server's clock: 2025-03-20)",
    ]
    start = int(module.start_of(7, module.EMULATOR_NOW).timestamp())
    per_day, per_model, _ = spend_truth(org_emu.organization, start)

    (names, wide), (columns, by_model) = box_tables(done.stdout)
    projects = sorted({project for _, project in per_day})
    assert names == ["day", *projects, "total"] and len(projects) == 5  # the archived project spent nothing
    assert [row[0] for row in wide] == sorted({str(day) for day, _ in per_day})
    for row in wide:
        day = dt.date.fromisoformat(row[0])
        spent = [per_day.get((day, project)) for project in projects]
        assert row[1:] == [cents(v) for v in spent] + [
            cents(sum((v or Decimal(0) for v in spent), Decimal(0)))
        ]

    assert columns == ["project", "model", "days", "requests", "input_tokens", "cached_tokens",
                       "output_tokens", "cost_usd"]  # fmt: skip
    assert {(r[0], r[1]): r[2:] for r in by_model} == {
        key: [*("NULL" if v is None else str(v) for v in values[:5]), cents(values[5])]
        for key, values in per_model.items()
    }
    assert lines[-1] == f"wrote every day, project and model to {output}"

    # The file holds every whole day, project and model, the amounts exact.
    with output.open(newline="") as handle:
        written = list(csv.DictReader(handle))
    per_day_written: defaultdict[tuple[dt.date, str], Decimal] = defaultdict(Decimal)
    for row in written:
        per_day_written[(dt.date.fromisoformat(row["day"]), row["project"])] += Decimal(row["cost_usd"])
    assert per_day_written == per_day
    assert sum(int(r["requests"] or 0) for r in written) == sum(v[1] or 0 for v in per_model.values()) > 0


def reconcile_truth(
    org: Organization, projects: list[str] | None = None
) -> tuple[dict[tuple[dt.date, str, str], int], dict[tuple[dt.date, str, str], int]]:
    """Per UTC day, model and measure: the completions usage the emulator reports (of `projects` only,
    when given) over the days its stored calls span, and the same sums from every stored response and
    chat completion's own JSON, each one request."""
    population = org.successors.population
    stored: defaultdict[tuple[dt.date, str, str], int] = defaultdict(int)

    def add(created: int, model: str, *values: int) -> None:
        for measure, value in zip(MEASURES, (1, *values), strict=True):
            stored[(utc_day(created), model, measure)] += value

    for body in (json.loads(b) for b in population.responses.values()):
        usage = body["usage"]
        cached = usage["input_tokens_details"]["cached_tokens"]
        add(body["created_at"], body["model"], usage["input_tokens"], cached, usage["output_tokens"])
    for chat in population.chat_objects:
        usage = chat["usage"]
        cached = usage["prompt_tokens_details"]["cached_tokens"]
        add(chat["created"], chat["model"], usage["prompt_tokens"], cached, usage["completion_tokens"])
    days = sorted({day for day, _, _ in stored})
    start = int(dt.datetime.combine(days[0], dt.time(), dt.UTC).timestamp())
    end = int(dt.datetime.combine(days[-1], dt.time(), dt.UTC).timestamp()) + DAY
    only = {} if projects is None else {"project_ids": projects}
    usage_sums: defaultdict[tuple[dt.date, str, str], int] = defaultdict(int)
    for bucket in org.usage("completions", start, end, group_by=["model"], **only):
        for result in bucket["results"]:
            for measure, name in MEASURES.items():
                usage_sums[(utc_day(bucket["start_time"]), result["model"], measure)] += result[name]
    return dict(usage_sums), dict(stored)


def reconciliation_rows(connection: Any) -> dict[tuple[dt.date, str, str], tuple[int, int, int]]:
    rows = connection.sql("SELECT day, model, measure, usage, stored, difference FROM reconciliation")
    return {(r[0], r[1], r[2]): tuple(r[3:]) for r in rows.fetchall()}


def test_reconcile_usage(emu: Emulator, tmp_path: Path) -> None:
    module = example("reconcile_usage")
    org = emu.organization
    log = org.successors.write_manifest(tmp_path / "calls.csv")
    usage, stored = reconcile_truth(org)
    # The emulator's usage is its stored calls', to the token: the sums agree, and are not all zero.
    assert usage == stored and all(sum(v for k, v in stored.items() if k[2] == m) > 0 for m in MEASURES)
    connection, registration = connect(emu.base_url, admin_key=ADMIN)
    try:
        module.load(connection, str(log))
        got = reconciliation_rows(connection)
        assert got == {key: (usage[key], stored[key], 0) for key in stored}
        assert module.differences(connection).fetchall() == []
        totals: defaultdict[tuple[str, str], list[Any]] = defaultdict(lambda: [set(), 0, 0, 0])
        for (day, model, measure), value in stored.items():
            row = totals[(model, measure)]
            row[0].add(day)
            row[1] += usage[(day, model, measure)]
            row[2] += value
        assert {(r[0], r[1]): r[2:] for r in module.per_model(connection).fetchall()} == {
            key: (len(days), used, kept, used - kept) for key, (days, used, kept, _) in totals.items()
        }
    finally:
        registration.close()
        connection.close()


def test_reconcile_usage_of_some_projects_shows_the_calls_they_did_not_make(
    emu: Emulator, tmp_path: Path
) -> None:
    """Usage of the projects serving responses only: the stored chat completions (billed to other
    projects) are then in your calls and not in the usage, and each difference is minus theirs."""
    module = example("reconcile_usage")
    org = emu.organization
    log = org.successors.write_manifest(tmp_path / "calls.csv")
    projects = sorted({org.attribution(info.response_id).project_id for info in org.successors.infos})
    usage, stored = reconcile_truth(org, projects)
    connection, registration = connect(emu.base_url, admin_key=ADMIN)
    try:
        module.load(connection, str(log), projects)
        got = reconciliation_rows(connection)
        differing = {r[:4]: r[4:] for r in module.differences(connection).fetchall()}
    finally:
        registration.close()
        connection.close()
    want = {key: (usage.get(key, 0), kept, usage.get(key, 0) - kept) for key, kept in stored.items()}
    assert got == want
    # A day and model with chat completions but no response has no usage row at all: it still counts.
    assert any(key not in usage and value for key, value in stored.items())
    assert {
        (day, model, measure): (u, s, d) for (day, model, _, measure), (u, s, d) in differing.items()
    } == {key: value for key, value in want.items() if value[2]}
    chats = sum(1 for _ in org.successors.population.chat_objects)
    assert -sum(d for (_, _, measure), (_, _, d) in want.items() if measure == "requests") == chats


def test_reconcile_usage_runs_offline_with_emulator(emulator: Emulator, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "reconcile_usage.py"), "--emulator"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    usage, stored = reconcile_truth(emulator.organization)  # the seed `--emulator` serves, on the real clock
    lines = done.stdout.splitlines()
    assert (
        lines[0]
        == "Completions usage beside your stored calls, per model, 2024-10-01 to 2025-03-29 (UTC days)"
    )
    pairs = {(day, model) for day, model, _ in stored}
    assert lines[-1] == f"Every difference is 0: {len(pairs)} (day, model) rows, four measures each."
    [(columns, rows)] = box_tables(done.stdout)
    assert columns == ["model", "measure", "days", "usage", "stored", "difference"]
    want: dict[tuple[str, str], list[str]] = {}
    for model in sorted({model for _, model in pairs}):
        for measure in MEASURES:
            used = sum(v for (_, m, k), v in usage.items() if (m, k) == (model, measure))
            kept = sum(v for (_, m, k), v in stored.items() if (m, k) == (model, measure))
            days = sum(1 for _, m in pairs if m == model)
            want[(model, measure)] = [str(days), str(used), str(kept), str(used - kept)]
    assert [(r[0], r[1]) for r in rows] == list(want) and {(r[0], r[1]): r[2:] for r in rows} == want
    assert all(int(v[1]) > 0 for v in want.values())


def test_ledger_scripts_read_the_admin_key_from_the_environment(emu: Emulator, tmp_path: Path) -> None:
    """Against a base URL: spend.py needs the admin key alone, reconcile_usage.py both keys; neither
    key is ever printed."""
    log = emu.organization.successors.write_manifest(tmp_path / "calls.csv")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env.update(OPENAI_ADMIN_KEY=ADMIN, OPENAI_BASE_URL=emu.base_url)
    # Enough days to reach back before the population began, whatever today is.
    days = (dt.datetime.now(dt.UTC).date() - dt.date(2024, 10, 1)).days + 2
    first, last = utc_day(emu.organization.first_day), utc_day(emu.organization.last_day)
    spend = subprocess.run(
        [sys.executable, str(EXAMPLES / "spend.py"), "--days", str(days)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert spend.returncode == 0, spend.stderr
    count = (last - first).days + 1
    assert spend.stdout.startswith(
        f"Spend per day and project (USD), {count} whole days from {first} to {last}\n"
    )
    reconcile = subprocess.run(
        [sys.executable, str(EXAMPLES / "reconcile_usage.py"), str(log)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**env, "OPENAI_API_KEY": KEY},
        cwd=tmp_path,
    )
    assert reconcile.returncode == 0, reconcile.stderr
    assert "Every difference is 0: " in reconcile.stdout
    for done in (spend, reconcile):
        assert ADMIN not in done.stdout + done.stderr and KEY not in done.stdout + done.stderr


SCRIPTS = [
    "quickstart.py",
    "tokens_by_tool.py",
    "failed_steps.py",
    "function_arguments.py",
    "latency_breakdown.py",
    "cost_per_model.py",
    "after_failed_tool_calls.py",
    "migration_check.py",
    "spend.py",
    "reconcile_usage.py",
]


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_example_takes_emulator(script: str) -> None:
    code, out, _ = run_here(script, "--help")
    assert code == 0 and "--emulator" in out


def test_quickstart_runs_offline_with_emulator(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "quickstart.py"), "--emulator"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    with Emulator(seed=7) as same:  # the data `--emulator` serves; only its dataset is used here
        runs = same.dataset.runs
    steps = sum(run.step_count for run in runs)
    assert done.stdout.startswith(f"{steps:,} run steps from {len(runs):,} runs\n")
    assert "code_interpreter+file_search" in done.stdout and "Why steps failed" in done.stdout


@pytest.mark.slow
def test_migration_check_runs_offline_with_emulator(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "migration_check.py"), "--emulator"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "Tokens and tool calls per customer: the same query over each API's sessions"
    assert (
        sum("│ assistants │" in line for line in lines)
        == sum("│ responses  │" in line for line in lines)
        == 7
    )
    assert "populations are independent: the numbers differ" in done.stdout


def run_here(script: str, *args: str) -> tuple[int | str | None, str, str]:
    """`script` run as `__main__` in this process, as `python examples/<script> args` would run it:
    (its exit code, stdout, stderr), for the runs that stop at the command line."""
    import contextlib
    import io
    import runpy

    example("_session")  # puts examples/ on sys.path, as running a script from there does
    out, err = io.StringIO(), io.StringIO()
    argv = sys.argv
    sys.argv = [str(EXAMPLES / script), *args]
    try:
        with (
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
            pytest.raises(SystemExit) as done,
        ):
            runpy.run_path(str(EXAMPLES / script), run_name="__main__")
    finally:
        sys.argv = argv
    return done.value.code, out.getvalue(), err.getvalue()


def test_migration_check_wants_both_logs(manifest: Path) -> None:
    code, _, err = run_here("migration_check.py", str(manifest))
    assert code == 2 and "give runs.csv and calls.csv, or --emulator" in err


def test_latency_breakdown_without_matplotlib(emu: Emulator, manifest: Path, tmp_path: Path) -> None:
    """Without the chart's library the table still prints, and one line says how to get the chart."""
    hide = (
        "import runpy, sys; sys.modules['matplotlib'] = None; sys.path.insert(0, sys.argv[1]); "
        "sys.argv = sys.argv[2:]; runpy.run_path(sys.argv[0], run_name='__main__')"
    )
    env = {**os.environ, "OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": emu.base_url}
    done = subprocess.run(
        [sys.executable, "-c", hide, str(EXAMPLES), str(EXAMPLES / "latency_breakdown.py"), str(manifest)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert "code_interpreter" in done.stdout and "p50_s" in done.stdout
    (note,) = [line for line in done.stdout.splitlines() if line.startswith("chart: ")]
    assert "matplotlib is not installed" in note and "pip install matplotlib" in note
    assert not (tmp_path / "latency_breakdown.png").exists()


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("quickstart.py", "Why steps failed"),
        ("tokens_by_tool.py", "message_creation"),
        ("failed_steps.py", "rate_limit_exceeded"),
        ("function_arguments.py", "get_order_status"),
        ("latency_breakdown.py", "chart: "),
        ("cost_per_model.py", "Cost per customer"),
        ("after_failed_tool_calls.py", "what the assistant said next"),
    ],
)
def test_scripts_run_against_a_base_url(
    emu: Emulator, manifest: Path, tmp_path: Path, script: str, expected: str
) -> None:
    env = {**os.environ, "OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": emu.base_url}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script), str(manifest)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert expected in done.stdout
    assert KEY not in done.stdout + done.stderr
    if script == "latency_breakdown.py":
        assert (tmp_path / "latency_breakdown.png").read_bytes()[:4] == b"\x89PNG"


#: Each script, the logs it takes, which of them lacks a column, and that column (one the script reads).
LOG_CASES = [
    *(
        (script, ["runs.csv"], 0, "customer")
        for script in SCRIPTS
        if script not in ("migration_check.py", "spend.py", "reconcile_usage.py")  # no run log
    ),
    ("reconcile_usage.py", ["calls.csv"], 0, "response_id"),
    ("cost_per_model.py", ["runs.csv"], 0, "thread_id"),
    ("responses_tokens.py", ["calls.csv"], 0, "response_id"),
    ("migration_check.py", ["runs.csv", "calls.csv"], 0, "run_id"),
    ("migration_check.py", ["runs.csv", "calls.csv"], 1, "conversation_id"),
]


def _log_without(folder: Path, name: str, column: str) -> Path:
    """A small log of the emulator's shape (a run log, or a call log) without `column`."""
    columns = {
        "runs.csv": ["thread_id", "run_id", "customer", "app_version"],
        "calls.csv": ["response_id", "conversation_id", "customer", "app_version"],
    }[name]
    path = folder / name
    kept = [c for c in columns if c != column]
    path.write_text(",".join(kept) + "\n" + ",".join(f"x_{c}" for c in kept) + "\n")
    return path


@pytest.mark.parametrize(("script", "logs", "broken", "column"), LOG_CASES)
def test_a_log_without_a_column_is_one_clear_line(
    script: str, logs: list[str], broken: int, column: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each example refuses a CSV that lacks a column it reads, before any request, naming the column
    and the columns the file has (run here in this process; the next test runs one as a command)."""
    import runpy

    paths = [_log_without(tmp_path, name, column if i == broken else "") for i, name in enumerate(logs)]
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # nothing listens: no request may go
    monkeypatch.setattr(sys, "argv", [str(EXAMPLES / script), *map(str, paths)])
    example("_session")  # puts examples/ on sys.path, as running a script from there does
    with pytest.raises(SystemExit) as raised:
        runpy.run_path(str(EXAMPLES / script), run_name="__main__")
    message = str(raised.value.code)
    kept = paths[broken].read_text().splitlines()[0].replace(",", ", ")
    assert message == message.strip() and "\n" not in message
    assert message.startswith(f"error: {paths[broken]} has no column '{column}' (its columns: {kept})")


def test_a_log_without_a_column_stops_the_command_in_one_line(tmp_path: Path) -> None:
    log = _log_without(tmp_path, "runs.csv", "customer")
    env = {**os.environ, "OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "quickstart.py"), str(log)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.splitlines() == [
        f"error: {log} has no column 'customer' (its columns: thread_id, run_id, app_version); "
        "this example needs thread_id, run_id, customer"
    ]


def test_script_without_a_source_explains_itself() -> None:
    code, _, err = run_here("failed_steps.py")
    assert code == 2 and "--emulator" in err


def test_dataframes(con: Any, emu: Emulator, truth: list[dict[str, Any]]) -> None:
    con.execute("SET TimeZone = 'UTC'")  # as the README says: .df() and .pl() follow DuckDB's TimeZone
    frame = con.sql("SELECT * FROM steps").df()
    assert isinstance(frame, pd.DataFrame) and len(frame) == len(truth)
    created = frame.set_index("id")["created_at"]
    assert created.dt.unit == "us" and created.dt.tz.utcoffset(None).total_seconds() == 0
    assert {i: int(t.timestamp()) for i, t in created.items()} == {s["id"]: s["created_at"] for s in truth}

    polars_frame = con.sql("SELECT * FROM steps").pl()
    assert isinstance(polars_frame, pl.DataFrame) and polars_frame.height == len(truth)
    created_type = polars_frame.schema["created_at"]
    assert isinstance(created_type, pl.Datetime) and created_type.time_unit == "us"
    assert created_type.time_zone in ("UTC", "Etc/UTC")
    assert isinstance(polars_frame.schema["usage"], pl.Struct)

    run = max(emu.dataset.runs, key=lambda r: r.step_count)
    reader = duckdb_openai.read_run_steps(run.thread_id, run.run_id, api_key=KEY, base_url=emu.base_url)
    steps = pl.from_arrow(reader)
    assert isinstance(steps, pl.DataFrame)
    assert steps["id"].to_list() == [s["id"] for s in emu.dataset.steps(run.thread_id, run.run_id)]
    metadata = [m if isinstance(m, dict) else {e["key"]: e["value"] for e in m} for m in steps["metadata"]]
    assert metadata == [s["metadata"] for s in emu.dataset.steps(run.thread_id, run.run_id)]
    assert any(metadata) and not all(metadata)


@pytest.mark.slow
def test_the_notebook_runs_top_to_bottom(tmp_path: Path) -> None:
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(EXAMPLES / "run_steps.ipynb", as_version=4)
    before = sorted(p.name for p in EXAMPLES.iterdir())
    # The kernel runs in tmp_path, as Jupyter runs a notebook in its folder: the logs the notebook writes
    # must go to a folder of their own and go with it, leaving nothing beside the notebook.
    NotebookClient(notebook, timeout=180, resources={"metadata": {"path": str(tmp_path)}}).execute()
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    assert sorted(p.name for p in EXAMPLES.iterdir()) == before

    outputs = {
        tag: cell.outputs
        for cell in notebook.cells
        if cell.cell_type == "code"
        for tag in cell.metadata.get("tags", [])
    }
    with Emulator(seed=7, dataset=DatasetConfig(threads=25)) as same:
        runs = same.dataset.runs
        expected = (sum(r.step_count for r in runs), sum(1 for r in runs if r.step_count))
        # Cost per customer and model: groups, tokens and dollars, from the runs' and steps' JSON.
        cost = cost_truth([(r.customer, r) for r in runs], Family(same.dataset), same)
    assert outputs["steps-count"][0]["data"]["text/plain"] == repr(expected)
    groups, tokens, dollars = ast.literal_eval(outputs["cost-totals"][0]["data"]["text/plain"])
    assert (groups, tokens) == (len(cost), sum((p or 0) + (c or 0) for _, _, p, c, _ in cost.values()))
    assert dollars == pytest.approx(sum(v[4] or 0 for v in cost.values()), abs=0.01)

    population = Successors(7).population
    bodies = [json.loads(body) for body in population.responses.values()]
    assert outputs["responses-totals"][0]["data"]["text/plain"] == repr(
        (len(bodies), sum(b["usage"]["total_tokens"] for b in bodies))
    )
    # The organization's ledger: spend from the emulator's cost buckets, usage from its stored calls.
    org = Organization(7)  # the notebook's emulator: seed 7, on the real clock
    names = {p["id"]: p["name"] for p in org.projects()}
    march = int(dt.datetime(2025, 3, 1, tzinfo=dt.UTC).timestamp())
    lines: set[tuple[dt.date, str, str]] = set()
    spent = Decimal(0)
    for bucket in org.costs(march, march + 7 * DAY, group_by=["project_id", "line_item"]):
        for result in bucket["results"]:
            name, model = names[result["project_id"]], result["line_item"].split(", ")[0]
            lines.add((utc_day(bucket["start_time"]), name, model))
            spent += money(result["amount"]["value"])
    text = outputs["spend-totals"][0]["data"]["text/plain"]
    found = re.fullmatch(r"\((\d+), (\d+), Decimal\('([0-9.]+)'\)\)", text)
    assert found is not None, text
    assert (int(found[1]), int(found[2]), Decimal(found[3])) == (7, len(lines), spent) and spent > 0
    usage, stored = reconcile_truth(org)
    assert usage == stored
    differing, requests, input_tokens = ast.literal_eval(
        outputs["reconciled-totals"][0]["data"]["text/plain"]
    )
    assert (differing, requests, input_tokens) == (
        0,
        sum(v for (_, _, m), v in usage.items() if m == "requests"),
        sum(v for (_, _, m), v in usage.items() if m == "input_tokens"),
    )
    assert requests == len(population.responses) + len(population.chat_objects)

    kinds = [output.get("output_type") for cell in notebook.cells for output in cell.get("outputs", [])]
    assert "error" not in kinds
    assert list(tmp_path.iterdir()) == []  # the logs the emulator wrote are removed in the last cell
    images = [o for c in notebook.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) == 1  # the latency chart
