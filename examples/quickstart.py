"""Quickstart: run steps joined with your own run log: tokens, failures and tool calls per customer.

    python examples/quickstart.py --emulator            # offline, against the bundled emulator
    OPENAI_API_KEY=... OPENAI_BASE_URL=... python examples/quickstart.py runs.csv

`runs.csv` is the local data a user of the Assistants API keeps: one row per run with thread_id and
run_id plus columns of their own (customer, app_version, started_at). `make demo` runs this against the
bundled emulator. The first table is the README's headline query.
"""

from __future__ import annotations

import duckdb
from _session import STEP_KIND, parser, session

#: The README's headline query over the loaded steps: one row per customer and kind of step, so each
#: step's tokens count once however many tool calls it made (summing after unnest would not).
PER_KIND = f"""
SELECT customer,
       {STEP_KIND} AS kind,
       count(*) AS steps,
       sum(len(step_details.tool_calls)) AS tool_calls,
       count(*) FILTER (WHERE status = 'failed') AS failed_steps,
       sum(usage.total_tokens) AS tokens
FROM steps
GROUP BY ALL
ORDER BY customer, tokens DESC NULLS LAST, kind
"""

#: Tool calls per tool: a call has no status of its own, so "failed" counts the calls of failed steps.
PER_TOOL = """
SELECT customer, call.type AS tool, count(*) AS calls,
       count(*) FILTER (WHERE status = 'failed') AS calls_in_failed_steps
FROM (SELECT customer, status, unnest(step_details.tool_calls) AS call FROM steps)
GROUP BY ALL
ORDER BY customer, tool
"""

WHY_FAILED = """
SELECT last_error.code AS error, count(*) AS steps, min(last_error.message) AS example
FROM steps WHERE status = 'failed' GROUP BY ALL ORDER BY steps DESC, error
"""


def per_kind(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyRelation:
    return con.sql(PER_KIND)


def per_tool(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyRelation:
    return con.sql(PER_TOOL)


def why_failed(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyRelation:
    return con.sql(WHY_FAILED)


def main() -> None:
    args = parser(__doc__).parse_args()
    with session(args) as con:
        ((runs, steps),) = con.sql("SELECT count(*), (SELECT count(*) FROM steps) FROM my_runs").fetchall()
        print(f"{steps:,} run steps from {runs:,} runs\n")
        print("Steps, tool calls, failures and tokens per customer and kind of step")
        per_kind(con).show(max_rows=80)
        print("Tool calls per customer and tool")
        per_tool(con).show(max_rows=60)
        print("Why steps failed")
        why_failed(con).show()


if __name__ == "__main__":
    main()
