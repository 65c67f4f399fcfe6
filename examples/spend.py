"""Spend per project and model per day: the organization's costs, beside the tokens they paid for.

    python examples/spend.py --emulator                    # offline, the bundled emulator's organization
    OPENAI_ADMIN_KEY=... python examples/spend.py --days 30
    OPENAI_ADMIN_KEY=... python examples/spend.py --output spend.csv   # every day, project and model

Reads three tables of the organization's ledger (an admin key: OPENAI_ADMIN_KEY; the project key is not
needed, and never sent there):

- `costs(start, group_by := ['project_id', 'line_item'])`: one row per day, project and line item, the
  amount an exact DECIMAL. The model is the line item's text before ', ': a completions line item reads
  '<model>, input', '<model>, cached input' or '<model>, output' (the emulator's do; see yours with
  `SELECT DISTINCT line_item FROM costs(now() - INTERVAL 7 DAY, group_by := ['line_item'])`); one that
  names no model ('Vector store storage', 'Web search tool calls') is shown whole in the model column.
- `usage_completions(start, group_by := ['project_id', 'model'])`: requests and tokens per day, project
  and model, joined to the costs on all three.
- `projects(include_archived := true)`: the projects' names (an archived project's past spend counts).

Days are UTC days (the API's buckets). A day that has not ended by the server's clock (`partial`) is left
out, since its sums still grow, and the script names it. With `--emulator` the organization's clock is
set to EMULATOR_NOW, mid-day, so its last day is partial as today is on a real server.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from pathlib import Path

import duckdb
from _session import connect

#: The emulator's clock with `--emulator`: mid-day on 2025-03-20, inside its 180 days from 2024-10-01.
EMULATOR_NOW = int(dt.datetime(2025, 3, 20, 12, tzinfo=dt.UTC).timestamp())
DAY = 86_400

#: The ledger's rows from `$start` up to now, each a statement: costs per line item, completions per
#: model, the projects' names. `day` is the bucket's UTC day, so the session's time zone is UTC first.
LOAD = (
    "SET TimeZone = 'UTC'",
    """
    CREATE OR REPLACE TABLE cost_lines AS
    SELECT start_time::DATE AS day, partial, project_id, line_item,
           split_part(line_item, ', ', 1) AS model, amount.value AS usd
    FROM costs($start, group_by := ['project_id', 'line_item'])
    """,
    """
    CREATE OR REPLACE TABLE completions AS
    SELECT start_time::DATE AS day, partial, project_id, model, num_model_requests AS requests,
           input_tokens, input_cached_tokens AS cached_tokens, output_tokens
    FROM usage_completions($start, group_by := ['project_id', 'model'])
    """,
    """
    CREATE OR REPLACE TABLE project_names AS
    SELECT id AS project_id, name FROM projects(include_archived := true)
    """,
)

#: One row per whole day, project and model: its requests and tokens (NULL where the model is not a
#: completions model) and what it cost, exactly.
SPEND = """
CREATE OR REPLACE TABLE spend AS
WITH money AS (
    SELECT day, project_id, model, sum(usd) AS cost_usd FROM cost_lines WHERE NOT partial GROUP BY ALL
),
tokens AS (
    SELECT * EXCLUDE (partial) FROM completions WHERE NOT partial
)
SELECT day, coalesce(n.name, project_id) AS project, project_id, model,
       t.requests, t.input_tokens, t.cached_tokens, t.output_tokens,
       coalesce(m.cost_usd, 0) AS cost_usd
FROM money m FULL JOIN tokens t USING (day, project_id, model)
LEFT JOIN project_names n USING (project_id)
ORDER BY day, project, cost_usd DESC, model
"""

#: The days left out: not over yet when fetched.
PARTIAL_DAYS = """
SELECT DISTINCT day FROM cost_lines WHERE partial
UNION SELECT DISTINCT day FROM completions WHERE partial
ORDER BY day
"""

PER_DAY_AND_PROJECT = """
SELECT day, project, sum(cost_usd) AS cost_usd FROM spend GROUP BY ALL ORDER BY day, project
"""

#: The same, one column per project and a total, in dollars and cents.
PER_DAY_WIDE = """
WITH wide AS (
    PIVOT (SELECT day, project, cost_usd FROM spend) ON project USING round(sum(cost_usd), 2) GROUP BY day
),
total AS (SELECT day, round(sum(cost_usd), 2) AS total FROM spend GROUP BY day)
SELECT * FROM wide JOIN total USING (day) ORDER BY day
"""

PER_PROJECT_AND_MODEL = """
SELECT project, model, count(DISTINCT day) AS days, sum(requests)::BIGINT AS requests,
       sum(input_tokens)::BIGINT AS input_tokens, sum(cached_tokens)::BIGINT AS cached_tokens,
       sum(output_tokens)::BIGINT AS output_tokens, sum(cost_usd) AS cost_usd
FROM spend
GROUP BY ALL
ORDER BY project, cost_usd DESC, model
"""


def load(con: duckdb.DuckDBPyConnection, start: dt.datetime) -> None:
    """Fetch costs, completions usage and project names from `start` up to now, then build `spend`."""
    for statement in LOAD:
        con.execute(statement, {"start": start} if "$start" in statement else None)
    con.execute(SPEND)


def partial_days(con: duckdb.DuckDBPyConnection) -> list[dt.date]:
    """The days fetched but left out of `spend`, since they had not ended."""
    return [day for (day,) in con.execute(PARTIAL_DAYS).fetchall()]


def per_day_and_project(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyRelation:
    """Exact spend per whole day and project (by name)."""
    return con.sql(PER_DAY_AND_PROJECT)


def per_day_wide(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyRelation:
    """Spend per whole day, one column per project and a total, rounded to the cent."""
    return con.sql(PER_DAY_WIDE)


def per_project_and_model(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyRelation:
    """Requests, tokens and exact spend per project and model over the whole days."""
    return con.sql(PER_PROJECT_AND_MODEL)


def start_of(days: int, now: float) -> dt.datetime:
    """Midnight UTC `days` days before the day of `now` (Unix seconds): the range's lower bound."""
    today = int(now) // DAY * DAY
    return dt.datetime.fromtimestamp(today - days * DAY, dt.UTC)


def main() -> None:
    cli = argparse.ArgumentParser(description=(__doc__ or "").strip().splitlines()[0])
    cli.add_argument("--emulator", action="store_true", help="use the bundled emulator's organization")
    cli.add_argument("--days", type=int, default=7, help="whole days before today to report (default 7)")
    cli.add_argument("--output", type=Path, help="write every day, project and model to a .csv or .parquet")
    args = cli.parse_args()
    if args.days < 1:
        cli.error("--days must be at least 1")
    now = EMULATOR_NOW if args.emulator else time.time()
    start = start_of(args.days, now)
    with connect(args.emulator, admin=True, now=EMULATOR_NOW if args.emulator else None) as (con, _):
        load(con, start)
        [(count, first, last)] = con.execute(
            "SELECT count(DISTINCT day), min(day), max(day) FROM spend"
        ).fetchall()
        left_out = partial_days(con)
        named = ", ".join(str(day) for day in left_out)
        if not count:
            print(
                f"No spend in the whole days since {start:%Y-%m-%d}"
                + (f" (only {named}, not over yet)" if named else "")
            )
            return
        print(f"Spend per day and project (USD), {count} whole days from {first} to {last}")
        if left_out:
            print(f"(left out, not over yet by the server's clock: {named})")
        per_day_wide(con).show(max_rows=400, max_width=250)
        print("Spend per project and model, with the completions tokens it paid for")
        con.sql(f"SELECT * REPLACE (round(cost_usd, 2) AS cost_usd) FROM ({PER_PROJECT_AND_MODEL})").show(
            max_rows=400, max_width=250
        )
        if args.output is not None:
            table = con.table("spend")
            if args.output.suffix == ".parquet":
                table.write_parquet(str(args.output))
            else:
                table.write_csv(str(args.output))
            print(f"wrote every day, project and model to {args.output}")


if __name__ == "__main__":
    main()
