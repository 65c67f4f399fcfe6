"""What every example shares: a DuckDB connection with run_steps registered and the user's run log loaded.

Each example runs against a real API (key and base URL from OPENAI_API_KEY / OPENAI_BASE_URL, the run
log from a CSV; the organization's admin key from OPENAI_ADMIN_KEY) or, with ``--emulator``, against the
bundled emulator and its own run manifest:

    python examples/tokens_by_tool.py --emulator
    OPENAI_API_KEY=... OPENAI_BASE_URL=... python examples/tokens_by_tool.py runs.csv
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

import duckdb_openai

__all__ = [
    "CALL_LOG",
    "EMULATOR_ADMIN_KEY",
    "EMULATOR_SEED",
    "RUN_LOG",
    "STEPS",
    "STEP_KIND",
    "LogError",
    "Logs",
    "connect",
    "load_log",
    "load_runs",
    "load_steps",
    "parser",
    "session",
]

#: The seed of the emulator `--emulator` starts: every example sees the same data.
EMULATOR_SEED = 7
#: The admin key the emulator is started with when an example reads the organization's endpoints (usage,
#: costs, projects): they accept it alone, and every other endpoint refuses it, as the API does.
EMULATOR_ADMIN_KEY = "sk-admin-example"

#: The columns the examples read from a run log (one row per Assistants run); others are kept.
RUN_LOG = ("thread_id", "run_id", "customer")
#: The columns the examples read from a call log (one row per Responses-API model call).
CALL_LOG = ("response_id", "conversation_id", "customer")

#: Every step of every run in `my_runs`, with the run's customer in front (the one column of the run log
#: the examples use besides the ids).
STEPS = """
CREATE OR REPLACE TABLE steps AS
SELECT r.customer, s.*
FROM my_runs r, run_steps(r.thread_id, r.run_id) s
"""

#: A step's kind: `message_creation`, or the tool types it called, sorted and joined with `+`.
STEP_KIND = """CASE WHEN type = 'message_creation' THEN 'message_creation'
    ELSE array_to_string(list_sort(list_distinct(
        list_transform(step_details.tool_calls, lambda c: c.type))), '+') END"""


#: Whether a run-step function call `c` returned an error: its submitted output is a JSON object with an
#: `error` key. The CASE keeps DuckDB's JSON functions away from an output that is not JSON (they fail).
OUTPUT_ERROR = (
    "CASE WHEN json_valid(c.function.output) THEN c.function.output::JSON ->> '$.error' END IS NOT NULL"
)


def parser(doc: str | None) -> argparse.ArgumentParser:
    """The examples' common arguments, described by the first line of the example's docstring."""
    result = argparse.ArgumentParser(description=(doc or "").strip().splitlines()[0])
    source = result.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "manifest", nargs="?", help="CSV of your runs, with columns thread_id, run_id and customer"
    )
    source.add_argument("--emulator", action="store_true", help="use the bundled emulator and its manifest")
    return result


class LogError(SystemExit):
    """A log the example cannot use: uncaught, Python prints its one line on stderr and exits with status 1
    (no traceback), as a command-line tool would."""


def load_log(con: duckdb.DuckDBPyConnection, table: str, path: str | Path, columns: Sequence[str]) -> None:
    """Load the CSV at `path` as `table`, or fail in one line naming the columns it lacks and those it has.

    >>> load_log(con, "my_runs", "runs.csv", RUN_LOG)  # doctest: +SKIP
    LogError: error: runs.csv has no column 'customer' (its columns: thread_id, run_id); ...
    """
    try:
        con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM read_csv(?)", [str(path)])
    except duckdb.Error as exc:
        raise LogError(f"error: cannot read {path}: {str(exc).splitlines()[0]}") from None
    have = [name for (name,) in con.execute(f"SELECT name FROM pragma_table_info('{table}')").fetchall()]
    missing = [name for name in columns if name not in have]
    if missing:
        con.execute(f"DROP TABLE {table}")
        names = ", ".join(repr(name) for name in missing)
        raise LogError(
            f"error: {path} has no column {names} (its columns: {', '.join(have)}); "
            f"this example needs {', '.join(columns)}"
        )


def load_steps(con: duckdb.DuckDBPyConnection, manifest: str | Path) -> None:
    """Load the run log as `my_runs` and fetch every step of those runs into `steps`."""
    load_runs(con, manifest)
    con.execute(STEPS)


@dataclass(frozen=True)
class Logs:
    """The bundled emulator's stand-ins for an application's own logs."""

    #: One row per Assistants run: thread_id, run_id, customer, app_version, started_at.
    runs: Path
    #: One row per Responses-API model call: response_id, conversation_id, customer, app_version, started_at.
    calls: Path


@contextlib.contextmanager
def connect(
    emulator: bool, *, admin: bool = False, now: int | None = None
) -> Iterator[tuple[duckdb.DuckDBPyConnection, Logs | None]]:
    """A connection with the package registered, and the emulator's logs when it runs on the emulator.

    With ``emulator=False`` the keys and base URL come from the environment and the logs are the user's
    (None here: each example takes their paths from its command line). On the emulator, ``admin=True``
    gives it an admin key (EMULATOR_ADMIN_KEY) for the organization's endpoints, and ``now`` (Unix
    seconds) sets the organization's clock: its usage and costs stop there (None: the real clock).
    """
    with contextlib.ExitStack() as stack:
        con = duckdb.connect()
        stack.callback(con.close)
        logs: Logs | None = None
        if emulator:
            from duckdb_openai.emulator import Emulator
            from duckdb_openai.emulator.successors import Successors

            admin_key = EMULATOR_ADMIN_KEY if admin else None
            emu = stack.enter_context(Emulator(seed=EMULATOR_SEED, admin_key=admin_key, now=now))
            scratch = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            # The emulator serves the Responses-era population of its own seed beside the runs.
            logs = Logs(
                runs=emu.dataset.write_manifest(scratch / "runs.csv"),
                calls=Successors(EMULATOR_SEED).write_manifest(scratch / "calls.csv"),
            )
            duckdb_openai.register(
                con, api_key="sk-example", admin_key=admin_key, base_url=emu.base_url, progress=False
            )
        else:
            # OPENAI_API_KEY, OPENAI_ADMIN_KEY, OPENAI_BASE_URL, ... from the environment
            duckdb_openai.register(con)
        yield con, logs


def load_runs(con: duckdb.DuckDBPyConnection, manifest: str | Path, columns: Sequence[str] = RUN_LOG) -> None:
    """Load the run log as `my_runs`, which must have `columns`."""
    load_log(con, "my_runs", manifest, columns)


@contextlib.contextmanager
def session(
    args: argparse.Namespace, *, steps: bool = True, columns: Sequence[str] = RUN_LOG
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection with `my_runs` loaded (it must have `columns`) and, unless ``steps=False``, every step
    of those runs in `steps`."""
    with connect(args.emulator) as (con, logs):
        manifest = logs.runs if logs is not None else args.manifest
        load_runs(con, manifest, columns)
        if steps:
            con.execute(STEPS)
        yield con
