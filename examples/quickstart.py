"""Quickstart: run steps joined with your own run log, in one SQL query.

    OPENAI_API_KEY=... OPENAI_BASE_URL=... python examples/quickstart.py runs.csv

`runs.csv` is the local data a user of the Assistants API keeps: one row per run with thread_id and
run_id plus columns of their own (customer, app_version, started_at). `make demo` runs this against the
bundled emulator.
"""

from __future__ import annotations

import argparse

import duckdb

import duckdb_openai


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("manifest", help="CSV with thread_id, run_id and local columns (e.g. customer)")
    args = parser.parse_args()

    con = duckdb.connect()
    duckdb_openai.register(con)  # key and base URL from OPENAI_API_KEY / OPENAI_BASE_URL
    con.execute("CREATE TABLE my_runs AS SELECT * FROM read_csv(?)", [args.manifest])
    con.execute(
        """
        CREATE TABLE steps AS
        SELECT r.customer, r.app_version, s.*
        FROM my_runs r, run_steps(r.thread_id, r.run_id) s
        """
    )
    ((runs, steps),) = con.sql("SELECT count(*), (SELECT count(*) FROM steps) FROM my_runs").fetchall()
    print(f"{steps:,} run steps from {runs:,} runs\n")

    print("Tokens and failures per customer and step type")
    con.sql(
        """
        SELECT customer, type AS step_type, count(*) AS steps,
               sum(usage.total_tokens) AS total_tokens,
               count(*) FILTER (WHERE status = 'failed') AS failed
        FROM steps GROUP BY ALL ORDER BY customer, step_type
        """
    ).show(max_rows=40)

    print("Tool calls per customer and tool: how many, how many failed, tokens of their steps")
    con.sql(
        """
        SELECT customer, tc.type AS tool, count(*) AS calls,
               count(*) FILTER (WHERE status = 'failed') AS failed_calls,
               sum(usage.total_tokens) AS step_tokens
        FROM (SELECT customer, status, usage, unnest(step_details.tool_calls) AS tc FROM steps)
        GROUP BY ALL ORDER BY customer, tool
        """
    ).show(max_rows=60)

    print("Why steps failed")
    con.sql(
        """
        SELECT last_error.code AS error, count(*) AS steps, any_value(last_error.message) AS example
        FROM steps WHERE status = 'failed' GROUP BY ALL ORDER BY steps DESC
        """
    ).show()


if __name__ == "__main__":
    main()
