"""``python -m duckdb_openai.emulator`` as a user runs it: one URL line, serve, clean exit."""

from __future__ import annotations

import csv
import os
import re
import select
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from duckdb_openai.emulator import Dataset, DatasetConfig
from duckdb_openai.emulator.cli import build_parser, main, settings_from_args
from duckdb_openai.emulator.settings import API_KEY_ENV, EmulatorSettings

HEADERS = {"Authorization": "Bearer sk-test", "OpenAI-Beta": "assistants=v2"}
URL_LINE = re.compile(r"http://127\.0\.0\.1:(\d+)/v1\n")
START_TIMEOUT_S = 30


class Served:
    """A running CLI process and the URL it printed."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "duckdb_openai.emulator", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], START_TIMEOUT_S)
        assert ready, "the emulator printed nothing"
        self.line = self.process.stdout.readline().decode()
        match = URL_LINE.fullmatch(self.line)
        assert match, f"unexpected first line {self.line!r}"
        self.base_url = self.line.strip()

    def stop(self, sig: int = signal.SIGTERM) -> tuple[int, str, str]:
        """Send ``sig``; returns (exit code, the rest of stdout, stderr)."""
        self.process.send_signal(sig)
        rest, err = self.process.communicate(timeout=START_TIMEOUT_S)
        return self.process.returncode, rest.decode(), err.decode()


@pytest.fixture
def serve() -> Iterator[type[Served]]:
    started: list[Served] = []

    class Tracked(Served):
        def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
            started.append(self)
            super().__init__(args, env)

    yield Tracked
    for served in started:
        if served.process.poll() is None:
            served.process.kill()
            served.process.communicate()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_prints_one_url_line_serves_and_exits_zero(serve: type[Served], sig: int) -> None:
    served = serve(["--port", "0"])
    run = Dataset(seed=7).find_run(step_count=101)
    response = httpx.get(
        f"{served.base_url}/threads/{run.thread_id}/runs/{run.run_id}/steps", headers=HEADERS
    )
    assert response.status_code == 200
    assert response.json()["data"] == Dataset(seed=7).steps(run.thread_id, run.run_id)[::-1][:20]
    code, rest, err = served.stop(sig)
    assert code == 0, err
    assert rest == ""  # exactly one line on stdout, and no access log


def test_options_shape_the_data_and_the_key(serve: type[Served], tmp_path: Path) -> None:
    manifest = tmp_path / "runs.csv"
    env = {**os.environ, API_KEY_ENV: "sk-only-this-one"}
    args = ["--seed", "3", "--threads", "2", "--runs-per-thread", "3", "--mean-steps", "4", "--no-edge-runs"]
    served = serve([*args, "--manifest", str(manifest)], env=env)
    expected = Dataset(
        seed=3, config=DatasetConfig(threads=2, runs_per_thread=3, mean_steps=4, edge_runs=False)
    )
    with manifest.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["run_id"] for row in rows] == [run.run_id for run in expected.runs]
    run = expected.runs[-1]
    url = f"{served.base_url}/threads/{run.thread_id}/runs/{run.run_id}/steps"
    assert httpx.get(url, headers=HEADERS).status_code == 401
    response = httpx.get(
        url, headers={**HEADERS, "Authorization": "Bearer sk-only-this-one"}, params={"limit": 100}
    )
    assert response.json()["data"] == expected.steps(run.thread_id, run.run_id)[::-1]
    code, _, err = served.stop()
    assert code == 0, err


def test_knobs_reach_the_server(serve: type[Served]) -> None:
    served = serve(["--port", "0", "--rate-limit", "2", "--latency-ms", "1", "--fault-rate", "0"])
    url = f"{served.base_url}/threads/thread_x/runs/run_x/steps"
    response = httpx.get(url, headers=HEADERS)
    assert response.headers["x-ratelimit-limit-requests"] == "2"
    code, _, err = served.stop()
    assert code == 0, err


def test_parser_round_trips_settings() -> None:
    settings = EmulatorSettings(
        seed=5,
        dataset=DatasetConfig(threads=9, runs_per_thread=2, mean_steps=3.5, edge_runs=False),
        latency_ms=25.0,
        rate_limit=40.0,
        fault_rate=0.1,
        slow_ms=200.0,
    )
    args = build_parser().parse_args(settings.to_argv())
    assert settings_from_args(args) == settings


@pytest.mark.parametrize(
    "argv",
    [["--fault-rate", "1.5"], ["--latency-ms", "-1"], ["--rate-limit", "0"], ["--threads", "0"], ["--bogus"]],
)
def test_bad_options_exit_with_usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    for option in (
        "--port",
        "--host",
        "--seed",
        "--latency-ms",
        "--rate-limit",
        "--fault-rate",
        "--manifest",
    ):
        assert option in out


def test_banner_tells_how_to_use_it(serve: type[Served], tmp_path: Path) -> None:
    """After the URL line (alone on stdout), stderr says what to export, the key rule and the manifest."""
    manifest, calls, threads = tmp_path / "runs.csv", tmp_path / "calls.csv", tmp_path / "threads.csv"
    logs = ["--responses-manifest", str(calls), "--threads-manifest", str(threads)]
    served = serve(["--port", "0", "--threads", "3", "--manifest", str(manifest), *logs])
    code, rest, err = served.stop()
    assert code == 0 and rest == "", err
    lines = err.splitlines()
    assert f"  export OPENAI_BASE_URL={served.base_url}" in lines
    # The whole API it serves, not only run steps.
    about = " ".join(err.split("To use it")[0].split())
    assert "Assistants family (run steps, runs, messages, assistants, threads)" in about
    assert "responses, conversations and stored chat completions" in about
    assert any(line.startswith("  export OPENAI_API_KEY=sk-any ") and "any" in line for line in lines)
    runs = len(Dataset(seed=7, config=DatasetConfig(threads=3)).runs)
    assert f"Manifest: {manifest}, its {runs:,} runs as CSV, one row each, to join with run_steps:" in lines
    with manifest.open(newline="") as handle:
        header = next(csv.reader(handle))
    for column in header:  # every column of the file is explained
        assert any(line.split()[:1] == [column] for line in lines), column
    # The other logs it wrote, and where.
    assert f"Responses manifest (response_id, conversation_id, ...: a my_calls log): {calls}" in lines
    assert f"Threads manifest (thread_id, customer, created_at: a my_threads log): {threads}" in lines


def test_banner_key_line_works_and_quiet_leaves_it_out(serve: type[Served]) -> None:
    served = serve(["--port", "0", "--threads", "2", "--quiet"])
    run = Dataset(seed=7, config=DatasetConfig(threads=2)).runs[0]
    url = f"{served.base_url}/threads/{run.thread_id}/runs/{run.run_id}/steps"
    assert httpx.get(url, headers={**HEADERS, "Authorization": "Bearer sk-any"}).status_code == 200
    code, rest, err = served.stop()
    assert code == 0 and rest == "" and err == ""


def test_banner_with_a_required_key_does_not_print_it(serve: type[Served]) -> None:
    served = serve(["--port", "0", "--threads", "2", "--api-key", "sk-required-one"])
    code, _, err = served.stop()
    assert code == 0 and "sk-required-one" not in err
    assert "export OPENAI_API_KEY=... " in err and "No manifest: --manifest runs.csv" in err
    assert "(/_emulator/ controls need it too)" in err
