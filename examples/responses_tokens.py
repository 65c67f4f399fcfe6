"""Tokens and failed tool calls per customer, from responses: the run-steps quickstart after Assistants.

    python examples/responses_tokens.py --emulator        # or: calls.csv, with OPENAI_API_KEY set

`calls.csv` is the log an application of the Responses API keeps: one row per model call with its
response_id plus columns of its own (customer, app_version, ...); with `--emulator`, the bundled
emulator's `--responses-manifest`. Each response brings its model, status, usage and output items; a
function call's output arrives as an input item of the next response, so a tool call failed when its
item says 'failed' (web and file searches) or its output holds an `error` (functions). A function call
whose output never came (the conversation ended) counts as a call, not as a failure.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

import duckdb
from _session import load_log

import duckdb_openai

#: Every logged response, with the log's own columns in front, and every response's input items.
LOAD = """
CREATE OR REPLACE TABLE responses AS
SELECT c.customer, c.app_version, r.*
FROM my_calls c, response(c.response_id) r;

CREATE OR REPLACE TABLE input_items AS
SELECT c.customer, i.*
FROM my_calls c, response_input_items(c.response_id) i;
"""

TOKENS = """
SELECT customer, model,
       count(*) AS responses,
       count(*) FILTER (WHERE status = 'failed') AS failed,
       count(*) FILTER (WHERE status = 'incomplete') AS incomplete,
       sum(usage.input_tokens) AS input_tokens,
       sum(usage.input_tokens_details.cached_tokens) AS cached_tokens,
       sum(usage.output_tokens) AS output_tokens,
       sum(usage.output_tokens_details.reasoning_tokens) AS reasoning_tokens,
       sum(usage.total_tokens) AS total_tokens
FROM responses
GROUP BY ALL
ORDER BY customer, model
"""

TOOL_CALLS = """
WITH calls AS (
    SELECT customer, o.type AS kind, coalesce(o.name, o.type) AS tool, o.call_id, o.status
    FROM (SELECT customer, unnest(output) AS o FROM responses)
    WHERE suffix(o.type, '_call')
),
outputs AS (
    SELECT call_id, output FROM input_items WHERE type = 'function_call_output'
)
SELECT customer, kind, tool,
       count(*) AS calls,
       count(*) FILTER (WHERE status = 'failed' OR output ->> '$.error' IS NOT NULL) AS failed
FROM calls LEFT JOIN outputs USING (call_id)
GROUP BY ALL
ORDER BY customer, kind, tool
"""


def load(con: duckdb.DuckDBPyConnection, manifest: str | Path) -> None:
    """Load the call log as `my_calls`, then its responses and their input items."""
    load_log(con, "my_calls", manifest, ("response_id", "customer", "app_version"))
    con.execute(LOAD)


@contextlib.contextmanager
def session(args: argparse.Namespace) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection with the log and its responses loaded, from the API or the bundled emulator."""
    with contextlib.ExitStack() as stack:
        con = duckdb.connect()
        stack.callback(con.close)
        if args.emulator:
            from duckdb_openai.emulator import Emulator
            from duckdb_openai.emulator.successors import Successors

            emu = stack.enter_context(Emulator(seed=7))
            scratch = stack.enter_context(tempfile.TemporaryDirectory())
            manifest: str | Path = Successors(7).write_manifest(Path(scratch) / "calls.csv")
            duckdb_openai.register(con, api_key="sk-example", base_url=emu.base_url, progress=False)
        else:
            manifest = args.manifest
            duckdb_openai.register(con)  # OPENAI_API_KEY, OPENAI_BASE_URL, ... from the environment
        load(con, manifest)
        yield con


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").strip().splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("manifest", nargs="?", help="CSV of your model calls: response_id, customer, ...")
    source.add_argument("--emulator", action="store_true", help="use the bundled emulator and its manifest")
    args = parser.parse_args()
    with session(args) as con:
        print("Tokens per customer and model")
        con.sql(TOKENS).show(max_rows=100)
        print("Tool calls per customer and tool, and how many failed")
        con.sql(TOOL_CALLS).show(max_rows=100)


if __name__ == "__main__":
    main()
