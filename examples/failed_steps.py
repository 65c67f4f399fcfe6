"""Failed and expired steps with their errors: what went wrong, for whom, and when.

    python examples/failed_steps.py --emulator          # or: runs.csv, with OPENAI_API_KEY set

Lists every step whose status is `failed` or `expired` with the API's `last_error` (code and message;
expired steps have none), then a summary per customer and error code.
"""

from __future__ import annotations

import duckdb
from _session import parser, session

SQL = """
SELECT customer, thread_id, run_id, id AS step_id, type, status,
       last_error.code AS error_code, last_error.message AS error_message,
       coalesce(failed_at, expired_at) AS ended_at
FROM steps
WHERE status IN ('failed', 'expired')
ORDER BY ended_at, step_id
"""

SUMMARY = """
SELECT customer, status, coalesce(error_code, '(none)') AS error_code, count(*) AS steps
FROM failures
GROUP BY ALL
ORDER BY customer, steps DESC, error_code
"""


def query(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyRelation:
    return con.sql(SQL)


def summary(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyRelation:
    query(con).to_view("failures")
    return con.sql(SUMMARY)


def main() -> None:
    args = parser(__doc__).parse_args()
    with session(args) as con:
        query(con).show(max_rows=30)
        summary(con).show(max_rows=50)


if __name__ == "__main__":
    main()
