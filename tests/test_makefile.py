"""The Makefile's environments: each follows the interpreter asked for, and the demo's holds only what the
demo needs.

`make` runs for real on the repository's Makefile, with its environments in a temporary folder and
`PYTHON` a stand-in interpreter: a script that answers as Python of a version it is given (it runs the
Makefile's `-c` checks with that version), makes a "virtual environment" that is a copy of itself, and
logs every other call (pip, pytest, the demo) instead of running it. So the tests see which interpreter
made which environment and what was installed into it, in a second, without installing anything.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

#: The stand-in interpreter; {real}, {version}, {log} are filled in.
FAKE_PYTHON = """#!{real}
import json, os, shutil, sys

VERSION = {version!r}
LOG = {log!r}
args = sys.argv[1:]
with open(LOG, "a") as log:
    log.write(json.dumps([os.path.abspath(sys.argv[0]), VERSION, *args]) + "\\n")
if args[:1] == ["-c"]:
    # The Makefile's checks, run as this version of Python would run them.
    sys.version = VERSION + " (stand-in)"
    sys.version_info = (*map(int, VERSION.split(".")), "final", 0)
    sys.base_prefix = "/opt/stand-in/python-" + VERSION
    exec(args[1], {{"__name__": "__main__"}})
elif args[:2] == ["-m", "venv"]:
    folder = args[2]
    os.makedirs(os.path.join(folder, "bin"))
    shutil.copy(os.path.abspath(sys.argv[0]), os.path.join(folder, "bin", "python"))
    open(os.path.join(folder, "pyvenv.cfg"), "w").write("version = " + VERSION + "\\n")
"""


class Make:
    """`make` on the repository's Makefile with environments under `folder` and stand-in interpreters."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.log = folder / "calls.jsonl"
        self.venv = folder / "venv"
        self.demo_venv = folder / "venv-demo"

    def python(self, version: str) -> Path:
        """A stand-in interpreter of `version`, by its own path."""
        path = self.folder / f"python{version}"
        if not path.exists():
            path.write_text(FAKE_PYTHON.format(real=sys.executable, version=version, log=str(self.log)))
            path.chmod(0o755)
        return path

    def __call__(self, target: str, python: Path | str) -> subprocess.CompletedProcess[str]:
        self.log.write_text("")
        return subprocess.run(
            [
                "make",
                "--no-print-directory",
                "-C",
                str(REPO),
                f"PYTHON={python}",
                f"VENV={self.venv}",
                f"DEMO_VENV={self.demo_venv}",
                target,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def calls(self) -> list[list[str]]:
        """Each call of a stand-in since the last `make`: [its path, its version, *arguments]."""
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def installs(self) -> list[tuple[str, str, str]]:
        """(interpreter path, its version, what it installed) of each `pip install -e`."""
        return [
            (call[0], call[1], call[-1])
            for call in self.calls()
            if call[2:4] == ["-m", "pip"] and "-e" in call
        ]


@pytest.fixture
def make(tmp_path: Path) -> Make:
    if shutil.which("make") is None:
        pytest.fail("make is not installed: the Makefile cannot be tested")
    return Make(tmp_path)


def test_the_environment_follows_the_interpreter_asked_for(make: Make) -> None:
    old, new = make.python("3.11.4"), make.python("3.12.1")
    first = make(f"{make.venv}/.installed", old)
    assert first.returncode == 0, first.stderr
    assert make.installs() == [(str(make.venv / "bin" / "python"), "3.11.4", ".[dev]")]

    again = make(f"{make.venv}/.installed", old)
    assert again.returncode == 0 and make.installs() == [], again.stdout  # nothing to do

    switched = make(f"{make.venv}/.installed", new)
    assert switched.returncode == 0, switched.stderr
    assert f"{make.venv} runs cpython 3.11.4" in switched.stdout and "making it again" in switched.stdout
    assert [c[:4] for c in make.calls() if c[2:4] == ["-m", "venv"]] == [[str(new), "3.12.1", "-m", "venv"]]
    assert make.installs() == [(str(make.venv / "bin" / "python"), "3.12.1", ".[dev]")]

    # The tests then run on the environment of the interpreter asked for.
    tested = make("test", new)
    assert tested.returncode == 0, tested.stderr
    assert [c[:5] for c in make.calls() if "pytest" in c] == [
        [str(make.venv / "bin" / "python"), "3.12.1", "-m", "pytest", "-q"]
    ]


def test_a_missing_interpreter_says_so_and_leaves_the_environment(make: Make) -> None:
    made = make(f"{make.venv}/.installed", make.python("3.11.4"))
    assert made.returncode == 0, made.stderr
    missing = make("test", "python3.99-not-here")
    assert missing.returncode == 2
    assert "error: PYTHON=python3.99-not-here does not run here" in missing.stderr
    assert "make PYTHON=python3.11 test" in missing.stderr
    assert (make.venv / "bin" / "python").exists() and make.calls() == []


def test_an_interpreter_too_old_says_which_is_needed(make: Make) -> None:
    old = make.python("3.10.12")
    refused = make("test", old)
    assert refused.returncode == 2
    assert f"duckdb-openai needs Python 3.11+ (duckdb 2 does), and {old} is 3.10.12" in refused.stderr
    assert not make.venv.exists()


def test_the_demo_installs_only_the_emulator_extra_and_says_so(make: Make) -> None:
    python = make.python("3.11.4")
    demo = make("demo", python)
    assert demo.returncode == 0, demo.stderr
    lines = demo.stdout.splitlines()
    said = (
        f"installing duckdb-openai[emulator] into {make.demo_venv} (once; again when pyproject.toml changes)"
    )
    assert lines[0] == said + "..."
    assert make.installs() == [(str(make.demo_venv / "bin" / "python"), "3.11.4", ".[emulator]")]
    ran = [c for c in make.calls() if c[-1].endswith("run_demo.py")]
    assert [c[0] for c in ran] == [str(make.demo_venv / "bin" / "python")]
    assert not make.venv.exists()  # the dev environment is not made for the demo

    again = make("demo", python)
    assert again.returncode == 0 and make.installs() == [] and "installing" not in again.stdout


def test_the_demo_needs_no_more_than_the_emulator_extra() -> None:
    """What examples/run_demo.py and the quickstart it runs import is the package, DuckDB and the emulator:
    nothing from the dev extra (pandas, polars, matplotlib, pytest, ...)."""
    import ast

    imported = set()
    for script in ("run_demo.py", "quickstart.py", "_session.py"):
        tree = ast.parse((REPO / "examples" / script).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.add(node.module.split(".")[0])
    third_party = imported - set(sys.stdlib_module_names) - {"_session", "quickstart"}
    assert third_party == {"duckdb", "duckdb_openai"}
