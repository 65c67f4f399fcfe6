"""The examples and the dataframe hand-offs, checked against the emulator's ground truth.

Each example's query runs on a connection loaded the way the example loads it, and its rows are compared
with the same figures computed in Python from the emulator's data; each script also runs as a command.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pytest

import duckdb_openai
from duckdb_openai.emulator import DatasetConfig, Emulator
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


SCRIPTS = [
    "quickstart.py",
    "tokens_by_tool.py",
    "failed_steps.py",
    "function_arguments.py",
    "latency_breakdown.py",
]


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_example_takes_emulator(script: str) -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script), "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and "--emulator" in done.stdout, done.stderr


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


def test_script_without_a_source_explains_itself() -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "failed_steps.py")], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2 and "--emulator" in done.stderr


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


def test_the_notebook_runs_top_to_bottom(tmp_path: Path) -> None:
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(EXAMPLES / "run_steps.ipynb", as_version=4)
    NotebookClient(notebook, timeout=180, resources={"metadata": {"path": str(tmp_path)}}).execute()

    outputs = {
        tag: cell.outputs
        for cell in notebook.cells
        if cell.cell_type == "code"
        for tag in cell.metadata.get("tags", [])
    }
    with Emulator(seed=7, dataset=DatasetConfig(threads=25)) as same:
        runs = same.dataset.runs
        expected = (sum(r.step_count for r in runs), sum(1 for r in runs if r.step_count))
    assert outputs["steps-count"][0]["data"]["text/plain"] == repr(expected)
    kinds = [output.get("output_type") for cell in notebook.cells for output in cell.get("outputs", [])]
    assert "error" not in kinds
    images = [o for c in notebook.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) == 1  # the latency chart
