"""What every example shares: a DuckDB connection with run_steps registered and the user's run log loaded.

Each example runs against a real API (key and base URL from OPENAI_API_KEY / OPENAI_BASE_URL, the run
log from a CSV) or, with ``--emulator``, against the bundled emulator and its own run manifest:

    python examples/tokens_by_tool.py --emulator
    OPENAI_API_KEY=... OPENAI_BASE_URL=... python examples/tokens_by_tool.py runs.csv
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

import duckdb

import duckdb_openai

__all__ = ["STEPS", "STEP_KIND", "load_steps", "parser", "session"]

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


def parser(doc: str | None) -> argparse.ArgumentParser:
    """The examples' common arguments, described by the first line of the example's docstring."""
    result = argparse.ArgumentParser(description=(doc or "").strip().splitlines()[0])
    source = result.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "manifest", nargs="?", help="CSV of your runs, with columns thread_id, run_id and customer"
    )
    source.add_argument("--emulator", action="store_true", help="use the bundled emulator and its manifest")
    return result


def load_steps(con: duckdb.DuckDBPyConnection, manifest: str | Path) -> None:
    """Load the run log as `my_runs` and fetch every step of those runs into `steps`."""
    con.execute("CREATE OR REPLACE TABLE my_runs AS SELECT * FROM read_csv(?)", [str(manifest)])
    con.execute(STEPS)


@contextlib.contextmanager
def session(args: argparse.Namespace) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection with `my_runs` and `steps` loaded, from the API or the bundled emulator."""
    with contextlib.ExitStack() as stack:
        con = duckdb.connect()
        stack.callback(con.close)
        if args.emulator:
            from duckdb_openai.emulator import Emulator

            emu = stack.enter_context(Emulator(seed=7))
            scratch = stack.enter_context(tempfile.TemporaryDirectory())
            manifest: str | Path = emu.dataset.write_manifest(Path(scratch) / "runs.csv")
            duckdb_openai.register(con, api_key="sk-example", base_url=emu.base_url, progress=False)
        else:
            manifest = args.manifest
            duckdb_openai.register(con)  # OPENAI_API_KEY, OPENAI_BASE_URL, ... from the environment
        load_steps(con, manifest)
        yield con
