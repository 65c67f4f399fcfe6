"""The `duckdb-openai` command against the emulator: as a subprocess where the process matters (exit
status, signals, a new process reading the cache), else in this process through typer's runner
(`cli_here`)."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from duckdb_openai import __version__
from duckdb_openai.cli import app
from tests.helpers import KEY

TIMEOUT_S = 60


def environment(base_url: str | None, key: str | None = KEY) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    if base_url is not None:
        env["OPENAI_BASE_URL"] = base_url
    if key is not None:
        env["OPENAI_API_KEY"] = key
    return env


def cli(*args: str, env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "duckdb_openai.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
        cwd=cwd,
    )


def cli_here(*args: str, base_url: str | None) -> subprocess.CompletedProcess[str]:
    """The command run in this process (typer's runner: the same app, arguments, output and exit status;
    no interpreter start), for the tests that only look at what it writes."""
    env = {name: None for name in os.environ if name.startswith(("OPENAI_", "DUCKDB_OPENAI_"))}
    env.update({"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": base_url})
    result = CliRunner().invoke(app, list(args), env=env, prog_name="duckdb-openai")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return subprocess.CompletedProcess(list(args), result.exit_code, result.stdout, result.stderr)


def run_query(emu: Any, count: int = 101) -> tuple[Any, str]:
    run = emu.dataset.find_run(step_count=count)
    sql = (
        "SELECT id, status, usage, created_at FROM openai.assistants.run_steps "
        f"WHERE thread_id = '{run.thread_id}' AND run_id = '{run.run_id}'"
    )
    return run, sql


def assert_one_error_line(result: subprocess.CompletedProcess[str], code: int = 1) -> str:
    assert result.returncode == code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_version() -> None:
    result = cli("--version", env=environment(None))
    assert result.returncode == 0 and result.stdout.strip().startswith(f"duckdb-openai {__version__}")


def test_table_is_duckdb_rendering(emu: Any) -> None:
    run, sql = run_query(emu, count=1)
    result = cli_here("query", sql, base_url=emu.base_url)
    assert result.returncode == 0, result.stderr
    (step,) = emu.dataset.steps(run.thread_id, run.run_id)
    assert step["id"] in result.stdout and "│" in result.stdout and "varchar" in result.stdout


def test_csv(emu: Any) -> None:
    run, sql = run_query(emu)
    result = cli_here("query", "--format", "csv", sql, base_url=emu.base_url)
    assert result.returncode == 0, result.stderr
    table = list(csv.DictReader(io.StringIO(result.stdout)))
    assert list(table[0]) == ["id", "status", "usage", "created_at"]
    assert [r["id"] for r in table] == [s["id"] for s in emu.dataset.steps(run.thread_id, run.run_id)]


def test_json_lines(emu: Any) -> None:
    run, sql = run_query(emu)
    result = cli_here("query", "--format", "json", sql, base_url=emu.base_url)
    assert result.returncode == 0, result.stderr
    objects = [json.loads(line) for line in result.stdout.splitlines()]
    steps = emu.dataset.steps(run.thread_id, run.run_id)
    assert [o["id"] for o in objects] == [s["id"] for s in steps]
    assert [o["usage"] for o in objects] == [s["usage"] for s in steps]


def test_parquet_needs_output(emu: Any, tmp_path: Path) -> None:
    run, sql = run_query(emu)
    refused = cli_here("query", "--format", "parquet", sql, base_url=emu.base_url)
    assert refused.returncode == 2 and "--output" in refused.stderr
    target = tmp_path / "steps.parquet"
    result = cli_here("query", "--format", "parquet", "--output", str(target), sql, base_url=emu.base_url)
    assert result.returncode == 0 and result.stdout == "", result.stderr
    table = pq.read_table(target)
    assert table.column_names == ["id", "status", "usage", "created_at"]
    assert table.column("id").to_pylist() == [s["id"] for s in emu.dataset.steps(run.thread_id, run.run_id)]


def test_output_file(emu: Any, tmp_path: Path) -> None:
    _, sql = run_query(emu, count=1)
    for fmt in ("csv", "json", "table"):
        target = tmp_path / f"out.{fmt}"
        result = cli_here("query", "-f", fmt, "-o", str(target), sql, base_url=emu.base_url)
        assert result.returncode == 0 and result.stdout == "", result.stderr
        assert "step_" in target.read_text()


@pytest.mark.parametrize("fmt", ["table", "csv", "json", "parquet"])
def test_a_failed_query_leaves_the_output_file_as_it_was(emu: Any, tmp_path: Path, fmt: str) -> None:
    """The query fails while it runs (a run that does not exist), after the output was chosen: the file
    that was there keeps its bytes, and no temporary file stays beside it."""
    run = emu.dataset.find_run(step_count=1)
    target = tmp_path / f"steps.{fmt}"
    target.write_bytes(b"yesterday's result\n")
    sql = f"SELECT id FROM run_steps('{run.thread_id}', 'run_nope')"
    result = cli_here("query", "-f", fmt, "-o", str(target), sql, base_url=emu.base_url)
    assert "run_nope" in assert_one_error_line(result)
    assert target.read_bytes() == b"yesterday's result\n"
    assert [p.name for p in tmp_path.iterdir()] == [target.name]


def test_output_replaces_the_file_a_symlink_points_at_and_keeps_its_mode(emu: Any, tmp_path: Path) -> None:
    _, sql = run_query(emu, count=1)
    target = tmp_path / "steps.csv"
    target.write_text("old\n")
    target.chmod(0o640)
    link = tmp_path / "latest.csv"
    link.symlink_to(target)
    result = cli_here("query", "-f", "csv", "-o", str(link), sql, base_url=emu.base_url)
    assert result.returncode == 0, result.stderr
    assert link.is_symlink() and "step_" in target.read_text()
    assert target.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest.csv", "steps.csv"]


@pytest.mark.parametrize("spelling", ["same", "dotted", "relative", "symlink", "wal"])
def test_an_output_that_is_the_database_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spelling: str
) -> None:
    """Writing the result over the database would destroy it: exit status 2, one line naming both, and
    the database keeps its table. No request is needed to see it, so no server is given."""
    folder = tmp_path / "data"
    folder.mkdir()
    database = folder / "runs.duckdb"
    with duckdb.connect(str(database)) as con:
        con.execute("CREATE TABLE my_runs AS SELECT 'run_1' AS run_id")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "link.duckdb").symlink_to(database)
    output = {
        "same": str(database),
        "dotted": str(folder / ".." / "data" / "." / "runs.duckdb"),
        "relative": "data/runs.duckdb",
        "symlink": "link.duckdb",
        "wal": f"{database}.wal",
    }[spelling]
    before = database.read_bytes()
    result = cli_here(
        "query", "--database", str(database), "-f", "csv", "-o", output, "SELECT 1", base_url=None
    )
    line = assert_one_error_line(result, code=2)
    assert f"--output {output}" in line and f"--database {database}" in line
    assert database.read_bytes() == before
    with duckdb.connect(str(database)) as con:
        assert con.execute("SELECT run_id FROM my_runs").fetchall() == [("run_1",)]


def test_csv_writes_nested_values_as_json(emu: Any) -> None:
    run = emu.dataset.find_run(step_count=101)
    sql = (
        "SELECT id, usage, step_details, metadata, [1, 2] AS numbers "
        f"FROM run_steps('{run.thread_id}', '{run.run_id}')"
    )
    result = cli_here("query", "-f", "csv", sql, base_url=emu.base_url)
    assert result.returncode == 0, result.stderr
    table = list(csv.DictReader(io.StringIO(result.stdout)))
    steps = emu.dataset.steps(run.thread_id, run.run_id)
    assert [r["id"] for r in table] == [s["id"] for s in steps]
    assert [json.loads(r["usage"]) for r in table] == [s["usage"] for s in steps]
    assert [json.loads(r["metadata"]) for r in table] == [s["metadata"] for s in steps]
    assert [json.loads(r["step_details"])["type"] for r in table] == [
        s["step_details"]["type"] for s in steps
    ]
    assert {r["numbers"] for r in table} == {"[1,2]"}
    assert any(json.loads(r["metadata"]) for r in table)


def test_help_says_what_the_package_reads_and_that_json_is_lines() -> None:
    import tomllib

    top = cli_here("--help", base_url=None)
    assert top.returncode == 0
    text = " ".join(top.stdout.split())
    assert "Assistants family" in text and "responses, conversations and stored chat completions" in text
    query_help = " ".join(cli_here("query", "--help", base_url=None).stdout.split())
    assert "newline-delimited" in query_help and "--cache-dir" in query_help
    project = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())
    description = project["project"]["description"]
    assert "Assistants" in description and "responses" in description and "chat completions" in description


def test_query_keeps_its_cache_in_cache_dir(emu: Any, tmp_path: Path) -> None:
    """`--cache-dir` is the `cache_dir` setting: a finished run's steps are kept there, and the same query
    in a new process asks the API for less."""
    run = emu.dataset.find_run(step_count=101)
    run_sql = f"SELECT r.status FROM run('{run.thread_id}', '{run.run_id}') r"
    steps_sql = f"SELECT count(*) AS steps FROM run_steps('{run.thread_id}', '{run.run_id}')"
    env = environment(emu.base_url)
    env.pop("DUCKDB_OPENAI_CACHE_DIR", None)
    folder = tmp_path / "cache"
    args = ("query", "--cache-dir", str(folder), "-f", "csv")
    first = cli(*args, f"{run_sql}; {steps_sql}", env=env)
    assert first.returncode == 0 and first.stdout.split() == ["steps", "101"], first.stderr
    assert any(folder.rglob("*")), "nothing was kept in --cache-dir"
    emu.reset()
    second = cli(*args, steps_sql, env=env)
    assert second.returncode == 0 and second.stdout.split() == ["steps", "101"], second.stderr
    assert sum(emu.stats()["by_endpoint"]["list"].values()) == 0
    info = cli("cache", "info", "--cache-dir", str(folder), env=env)
    assert "runs      1 with steps kept, 1 known finished" in info.stdout, info.stdout


def test_skipped_rows_warn_in_one_line(emu: Any) -> None:
    run = emu.dataset.find_run(step_count=1)
    sql = (
        f"SELECT count(*) AS steps FROM (VALUES ('{run.thread_id}', '{run.run_id}'), "
        f"('{run.thread_id}', 'run_nope')) t(thread_id, run_id), "
        "run_steps(t.thread_id, t.run_id, on_error := 'skip') s"
    )
    result = cli("query", "-f", "csv", sql, env=environment(emu.base_url))
    assert result.returncode == 0 and result.stdout.split() == ["steps", "1"], result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("warning: skipped 1 of 2 run_steps requests (on_error='skip')")
    assert "run_nope" in line and "RuntimeWarning" not in line


@pytest.mark.parametrize("command", ["query", "sync"])
def test_a_retried_connection_warns_in_one_line_before_the_error(tmp_path: Path, command: str) -> None:
    """The package's logged warnings (here: a refused connection, retried) print as the query's do."""
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}/v1"
    if command == "query":
        args = ["query", "SELECT * FROM assistants()"]
    else:
        args = ["sync", str(tmp_path / "h.duckdb"), "--table", "assistants", "--progress", "off"]
    result = cli(*args, env=environment(closed))
    assert result.returncode == 1
    warning, error = result.stderr.splitlines()
    assert warning.startswith(f"warning: could not reach {closed}: "), warning
    assert warning.endswith("the connection was refused; retrying 2 times quickly, then giving up")
    assert error.startswith("error: ") and "could not reach" in error


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        ("run_steps('thread_a', 'run_b', sortt := 'desc')", "no parameter 'sortt' (did you mean 'sort'?)"),
        ("runs('thread_a', on_eror := 'skip')", "no parameter 'on_eror' (did you mean 'on_error'?)"),
        ("run_steps('thread_a')", "run_steps takes thread_id, run_id, sort, include_content, on_error"),
    ],
)
def test_a_wrong_argument_names_the_closest_parameter(emu: Any, call: str, expected: str) -> None:
    line = assert_one_error_line(cli_here("query", f"SELECT * FROM {call}", base_url=emu.base_url))
    assert "does not support the supplied arguments" in line and expected in line
    assert emu.stats()["requests"] == 0


def test_database_file_joins_its_tables(emu: Any, tmp_path: Path) -> None:
    runs = [r for r in emu.dataset.runs if 0 < r.step_count < 150][:5]
    path = tmp_path / "runs.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE my_runs(thread_id VARCHAR, run_id VARCHAR, customer VARCHAR)")
        con.executemany(
            "INSERT INTO my_runs VALUES (?, ?, ?)", [(r.thread_id, r.run_id, r.customer) for r in runs]
        )
    sql = (
        "SELECT r.run_id, count(*) AS steps FROM my_runs r, run_steps(r.thread_id, r.run_id) s "
        "GROUP BY ALL ORDER BY ALL"
    )
    result = cli_here("query", "--database", str(path), "-f", "csv", sql, base_url=emu.base_url)
    assert result.returncode == 0, result.stderr
    got = {row["run_id"]: int(row["steps"]) for row in csv.DictReader(io.StringIO(result.stdout))}
    assert got == {r.run_id: r.step_count for r in runs}


def test_base_url_option_overrides_the_environment(emu: Any) -> None:
    _, sql = run_query(emu, count=1)
    result = cli_here("query", "--base-url", emu.base_url, "-f", "csv", sql, base_url="http://127.0.0.1:9/v1")
    assert result.returncode == 0, result.stderr
    assert "step_" in result.stdout


def test_missing_key(emu: Any) -> None:
    _, sql = run_query(emu, count=1)
    line = assert_one_error_line(cli("query", sql, env=environment(emu.base_url, key=None)))
    assert "OPENAI_API_KEY" in line
    assert emu.stats()["requests"] == 0


def test_rejected_key_is_not_echoed(emulator_factory: Any) -> None:
    emu = emulator_factory(seed=7, api_key="sk-the-right-one")
    _, sql = run_query(emu, count=1)
    line = assert_one_error_line(cli("query", sql, env=environment(emu.base_url, key=KEY)))
    assert "401" in line and KEY not in line and KEY[-10:] not in line


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELEC 1", "Parser Error"),
        ("SELECT * FROM no_such_table", "no_such_table"),
        (
            "SELECT id FROM openai.assistants.run_steps WHERE run_id = 'run_a'",
            "needs WHERE thread_id = '...'",
        ),
        ("SELECT id FROM run_steps('thread_a', 'bad/id')", "invalid run_id 'bad/id'"),
    ],
)
def test_errors_are_one_line(emu: Any, sql: str, expected: str) -> None:
    line = assert_one_error_line(cli_here("query", sql, base_url=emu.base_url))
    assert expected in line


def test_a_missing_run_names_it(emu: Any) -> None:
    run = emu.dataset.find_run(step_count=1)
    sql = f"SELECT id FROM run_steps('{run.thread_id}', 'run_nope')"
    line = assert_one_error_line(cli_here("query", sql, base_url=emu.base_url))
    assert "run_nope" in line and "404" in line


def test_several_statements_write_the_last_result(emu: Any, tmp_path: Path) -> None:
    sql = "CREATE TABLE t AS SELECT 42 AS answer; SELECT answer FROM t"
    result = cli_here("query", "-f", "csv", sql, base_url=emu.base_url)
    assert result.returncode == 0 and result.stdout.split() == ["answer", "42"], result.stderr


def test_emulator_prints_its_url_and_stops_on_sigterm() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "duckdb_openai.cli", "emulator", "--port", "0", "--threads", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment(None),
    )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], TIMEOUT_S)
        assert ready, "the emulator printed no URL"
        line = process.stdout.readline().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v1", line), line
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=TIMEOUT_S) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_emulator_options_are_forwarded() -> None:
    result = cli_here("emulator", "--help", base_url=None)
    assert result.returncode == 0 and "--latency-ms" in result.stdout
    bad = cli_here("emulator", "--fault-rate", "7", base_url=None)
    assert bad.returncode == 2 and "between 0 and 1" in bad.stderr


def test_emulator_writes_a_manifest(tmp_path: Path) -> None:
    from duckdb_openai.emulator import Dataset, DatasetConfig

    manifest = tmp_path / "runs.csv"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "duckdb_openai.cli",
            "emulator",
            "--threads",
            "2",
            "--manifest",
            str(manifest),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment(None),
    )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], TIMEOUT_S)
        assert ready and process.stdout.readline().startswith("http://127.0.0.1:")
        with manifest.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        runs = Dataset(seed=7, config=DatasetConfig(threads=2)).runs
        assert [(r["thread_id"], r["run_id"], r["customer"]) for r in rows] == [
            (run.thread_id, run.run_id, run.customer) for run in runs
        ]
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=TIMEOUT_S)
        assert process.returncode == 0 and f"Manifest: {manifest}" in err
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_emulator_takes_every_option_of_the_module() -> None:
    """`duckdb-openai emulator` and `python -m duckdb_openai.emulator` take the same options (the module's
    own parser here; tests/test_emulator_cli.py starts the module as a command)."""
    from duckdb_openai.emulator.cli import build_parser

    module = build_parser().format_help()
    assert module.startswith("usage: python -m duckdb_openai.emulator")
    wrapped = cli_here("emulator", "--help", base_url=None)
    assert wrapped.returncode == 0 and wrapped.stdout.startswith("usage: duckdb-openai emulator")
    options = set(re.findall(r"--[a-z][a-z-]+", module))
    assert {"--manifest", "--latency-ms", "--api-key", "--quiet"} <= options
    assert set(re.findall(r"--[a-z][a-z-]+", wrapped.stdout)) == options


def _default_sigint() -> None:
    # A test runner started as a background job inherits an ignored SIGINT; a user's shell gives the
    # command the default one, so the child gets that.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("form", ["table_function", "stackql", "plain_sql"])
def test_ctrl_c_exits_130_with_one_line(emulator_factory: Any, form: str) -> None:
    """Ctrl-C during a long query: exit status 130, `interrupted` on stderr, no traceback, nothing on
    stdout (DuckDB's progress bar included); the CLI ends long before the server would have answered,
    so its requests were cancelled, not awaited."""
    emu = emulator_factory(seed=7, latency_ms=0 if form == "plain_sql" else 120_000)
    run = emu.dataset.find_run(step_count=101)
    sql = {
        "table_function": f"SELECT count(*) FROM run_steps('{run.thread_id}', '{run.run_id}')",
        "stackql": "SELECT count(*) FROM openai.assistants.run_steps "
        f"WHERE thread_id = '{run.thread_id}' AND run_id = '{run.run_id}'",
        # A request first, to know when the CLI is running SQL; then DuckDB's own long work, which the
        # interrupt must reach (not only the package's requests).
        "plain_sql": f"SELECT count(*) FROM run_steps('{run.thread_id}', '{run.run_id}'); "
        "SELECT count(*) FROM range(1000000000000) t(x) WHERE x % 7 = 3",
    }[form]
    process = subprocess.Popen(
        [sys.executable, "-m", "duckdb_openai.cli", "query", "-f", "csv", sql],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment(emu.base_url),
        preexec_fn=_default_sigint,
    )
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            stats = emu.stats()
            if (
                stats["in_flight"]
                if form != "plain_sql"
                else stats["requests"] >= 2 and not stats["in_flight"]
            ):
                break
            time.sleep(0.05)
        else:
            pytest.fail("the query never reached the server")
        while True:  # as a user would, press Ctrl-C again if the first one fell between two statements
            process.send_signal(signal.SIGINT)
            try:
                out, err = process.communicate(timeout=5)
                break
            except subprocess.TimeoutExpired:
                assert time.monotonic() < deadline + TIMEOUT_S, "Ctrl-C did not stop the query"
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130, err
    assert err.strip() == "interrupted" and out == ""
