"""Reconcile the organization's usage with your own calls: tokens per model and day from
`usage_completions`, beside the same sums from your stored responses and chat completions.

    python examples/reconcile_usage.py --emulator            # offline: every difference is 0
    OPENAI_API_KEY=... OPENAI_ADMIN_KEY=... python examples/reconcile_usage.py calls.csv
    ... reconcile_usage.py calls.csv --project proj_abc      # usage of that project only

`calls.csv` is the log of model calls an application of the Responses API keeps (one row per call with
its `response_id`, as `examples/responses_tokens.py` takes; with `--emulator`, the emulator's
`--responses-manifest`). Your side is every logged response (`response(c.response_id)` in a LATERAL
join) and every stored chat completion (`chat_completions()`, the whole list), read with the project key;
the organization's side is `usage_completions(start, group_by := ['model'])`, read with the admin key.
Both are summed per UTC day and model (the session's time zone is set to UTC, so `created_at::DATE` is
the bucket's day): requests, input tokens (cached ones included, as the usage counts them), cached input
tokens and output tokens. Each response and each chat completion is one model request, whatever its
status: a failed response bills the tokens its `usage` reports.

A full outer join keeps a day and model that only one side has; `difference` is usage minus yours. On
the emulator, whose usage is made of exactly these objects, every difference is 0. On your organization
usage holds more than a project key can read back (other projects, calls not stored, other
applications), so expect usage >= yours; `--project` narrows usage to the projects your calls ran in. A
day that had not ended when fetched is marked `partial`: its usage may still grow.
"""

from __future__ import annotations

import argparse
import datetime as dt

import duckdb
from _session import connect, load_log

#: Your side: one row per stored model call (a logged response or a stored chat completion), with its
#: UTC day, model and tokens.
STORED = (
    "SET TimeZone = 'UTC'",
    """
    CREATE OR REPLACE TABLE stored_calls AS
    SELECT r.created_at::DATE AS day, r.model, 'response' AS kind,
           r.usage.input_tokens AS input_tokens,
           r.usage.input_tokens_details.cached_tokens AS cached_tokens,
           r.usage.output_tokens AS output_tokens
    FROM my_calls c, response(c.response_id) r
    UNION ALL
    SELECT created::DATE, model, 'chat_completion',
           usage.prompt_tokens, usage.prompt_tokens_details.cached_tokens, usage.completion_tokens
    FROM chat_completions()
    """,
)

#: The organization's side, over the UTC days your calls span ($start to $end), per day and model.
#: Filtering by project groups by project too (every row says which one it is of): sum over it.
USAGE = """
CREATE OR REPLACE TABLE usage_days AS
SELECT start_time::DATE AS day, model, bool_or(partial) AS partial,
       sum(num_model_requests)::BIGINT AS requests, sum(input_tokens)::BIGINT AS input_tokens,
       sum(input_cached_tokens)::BIGINT AS cached_tokens, sum(output_tokens)::BIGINT AS output_tokens
FROM usage_completions($start, end_time := $end, group_by := ['model'], project_ids := $projects)
GROUP BY ALL
"""

#: One row per day, model and measure: usage, yours, and usage minus yours.
RECONCILE = """
CREATE OR REPLACE TABLE reconciliation AS
WITH stored AS (
    SELECT day, model, count(*) AS requests, sum(input_tokens) AS input_tokens,
           sum(cached_tokens) AS cached_tokens, sum(output_tokens) AS output_tokens
    FROM stored_calls GROUP BY ALL
),
-- A side without the day and model counts 0 (UNPIVOT would drop a NULL).
both_sides AS (
    SELECT day, model, coalesce(u.partial, false) AS partial,
           coalesce(u.requests, 0) AS usage_requests, coalesce(s.requests, 0) AS stored_requests,
           coalesce(u.input_tokens, 0) AS usage_input_tokens,
           coalesce(s.input_tokens, 0) AS stored_input_tokens,
           coalesce(u.cached_tokens, 0) AS usage_cached_tokens,
           coalesce(s.cached_tokens, 0) AS stored_cached_tokens,
           coalesce(u.output_tokens, 0) AS usage_output_tokens,
           coalesce(s.output_tokens, 0) AS stored_output_tokens
    FROM usage_days u FULL JOIN stored s USING (day, model)
)
SELECT day, model, partial, measure, usage::BIGINT AS usage, stored::BIGINT AS stored,
       (usage - stored)::BIGINT AS difference
FROM (
    UNPIVOT both_sides
    ON (usage_requests, stored_requests) AS requests,
       (usage_input_tokens, stored_input_tokens) AS input_tokens,
       (usage_cached_tokens, stored_cached_tokens) AS cached_tokens,
       (usage_output_tokens, stored_output_tokens) AS output_tokens
    INTO NAME measure VALUE usage, stored
)
ORDER BY day, model, measure
"""

#: Totals per model and measure over every day.
PER_MODEL = """
SELECT model, measure, count(DISTINCT day) AS days, sum(usage)::BIGINT AS usage,
       sum(stored)::BIGINT AS stored, sum(difference)::BIGINT AS difference
FROM reconciliation
GROUP BY model, measure
ORDER BY model, list_position(['requests', 'input_tokens', 'cached_tokens', 'output_tokens'], measure)
"""

#: The days and models where the two sides differ.
DIFFERENCES = """
SELECT day, model, partial, measure, usage, stored, difference
FROM reconciliation WHERE difference <> 0
ORDER BY day, model, measure
"""


#: The days covered, how many (day, model) rows, and how many of them differ.
SUMMARY = """
SELECT min(day), max(day), count(DISTINCT (day, model)),
       count(DISTINCT (day, model)) FILTER (WHERE difference <> 0)
FROM reconciliation
"""


def load(con: duckdb.DuckDBPyConnection, log: str, projects: list[str] | None = None) -> None:
    """Your calls from the log and the stored chat completions, the usage over the days they span, and
    the reconciliation of the two (`reconciliation`)."""
    load_log(con, "my_calls", log, ("response_id",))  # one clear line if the column is missing
    for statement in STORED:
        con.execute(statement)
    [(first, last)] = con.execute("SELECT min(day), max(day) FROM stored_calls").fetchall()
    if first is None:
        raise SystemExit("no stored calls: the log is empty and there are no stored chat completions")
    start = dt.datetime.combine(first, dt.time(), dt.UTC)
    end = dt.datetime.combine(last, dt.time(), dt.UTC) + dt.timedelta(days=1)
    con.execute(USAGE, {"start": start, "end": end, "projects": projects})
    con.execute(RECONCILE)


def per_model(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyRelation:
    return con.sql(PER_MODEL)


def differences(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyRelation:
    return con.sql(DIFFERENCES)


def main() -> None:
    cli = argparse.ArgumentParser(description=(__doc__ or "").strip().splitlines()[0])
    source = cli.add_mutually_exclusive_group(required=True)
    source.add_argument("log", nargs="?", help="CSV of your model calls, with a response_id column")
    source.add_argument("--emulator", action="store_true", help="use the bundled emulator and its call log")
    cli.add_argument(
        "--project", action="append", metavar="PROJECT_ID", help="count the usage of this project only"
    )
    args = cli.parse_args()
    with connect(args.emulator, admin=True) as (con, logs):
        log = str(logs.calls) if logs is not None else args.log
        load(con, log, args.project)
        [(first, last, pairs, differing)] = con.execute(SUMMARY).fetchall()
        print(f"Completions usage beside your stored calls, per model, {first} to {last} (UTC days)")
        per_model(con).show(max_rows=400, max_width=250)
        if differing:
            print(f"{differing} of the {pairs} (day, model) rows differ (difference: usage minus yours):")
            differences(con).show(max_rows=400, max_width=250)
        else:
            print(f"Every difference is 0: {pairs} (day, model) rows, four measures each.")


if __name__ == "__main__":
    main()
