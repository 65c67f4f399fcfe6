"""Migration check: tokens and tool calls per customer, asked of the Assistants runs and of the
Responses-era conversations that replaced them, side by side.

    python examples/migration_check.py --emulator            # offline, against the bundled emulator
    OPENAI_API_KEY=... python examples/migration_check.py runs.csv calls.csv

A team moving from Assistants to Responses rebuilds its dashboards on new tables; this asks one question
both ways with the same query, so the two can be compared. Each side is first brought to one row per
customer and session (an Assistants thread, a Responses conversation) with its tokens, tool calls and
failed tool calls; then one aggregation, the same text for both, makes the per-customer table.

- Assistants (`runs.csv`: thread_id, run_id, customer): tokens are the run steps' usage; a tool call
  failed when its step failed or its function output holds an `error`.
- Responses (`calls.csv`: response_id, conversation_id, customer): tokens are each response's usage
  (`response(response_id)`); tool calls are the conversation's `*_call` items
  (`conversation_items(conversation_id)`); one failed when its item says 'failed' (web and file
  searches) or its `function_call_output` holds an `error`.

Both logs name customers in their `customer` column, so the two sides meet on it; if your logs name them
differently, join a mapping table into one side first. Totals are not expected to match (a response is
one model call, a run several); the shape should: each customer's share of tokens and of tool calls,
the failure rate, their ranking. The emulator's two populations are generated independently, so with
`--emulator` the numbers differ and only the shape of the answer is the same.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from pathlib import Path

import duckdb
from _session import CALL_LOG, OUTPUT_ERROR, STEPS, connect, load_log, load_runs

#: Assistants: one row per customer and thread.
ASSISTANTS = f"""
CREATE OR REPLACE VIEW assistants_sessions AS
SELECT customer, thread_id AS session_id,
       sum(usage.total_tokens) AS tokens,
       coalesce(sum(len(step_details.tool_calls)), 0) AS tool_calls,
       coalesce(sum(CASE WHEN status = 'failed' THEN len(step_details.tool_calls)
                         ELSE len(list_filter(step_details.tool_calls, lambda c: {OUTPUT_ERROR})) END),
                0) AS failed_tool_calls
FROM steps
GROUP BY ALL
"""

#: Responses: every logged response's usage and every item of the logged conversations ...
RESPONSES_LOAD = """
CREATE OR REPLACE TABLE response_tokens AS
SELECT c.customer, c.conversation_id AS session_id, r.usage.total_tokens AS tokens
FROM my_calls c, response(c.response_id) r;

CREATE OR REPLACE TABLE items AS
SELECT v.customer, v.conversation_id AS session_id, i.type, i.status, i.output
FROM (SELECT DISTINCT customer, conversation_id FROM my_calls) v, conversation_items(v.conversation_id) i;
"""

#: ... brought to one row per customer and conversation.
RESPONSES = """
CREATE OR REPLACE VIEW responses_sessions AS
WITH tokens AS (
    SELECT customer, session_id, sum(tokens) AS tokens FROM response_tokens GROUP BY ALL
),
calls AS (
    SELECT customer, session_id,
           count(*) FILTER (WHERE suffix(type, '_call')) AS tool_calls,
           count(*) FILTER (WHERE suffix(type, '_call') AND status = 'failed'
                            OR type = 'function_call_output'
                               AND CASE WHEN json_valid(output) THEN output::JSON ->> '$.error' END
                                   IS NOT NULL) AS failed_tool_calls
    FROM items
    GROUP BY ALL
)
SELECT customer, session_id, tokens,
       coalesce(tool_calls, 0) AS tool_calls, coalesce(failed_tool_calls, 0) AS failed_tool_calls
FROM tokens LEFT JOIN calls USING (customer, session_id)
"""

#: The question, asked the same way of either side's sessions.
PER_CUSTOMER = """
SELECT customer,
       count(*) AS sessions,
       sum(tokens) AS tokens,
       sum(tool_calls) AS tool_calls,
       sum(failed_tool_calls) AS failed_tool_calls,
       round(100 * sum(tokens) / sum(sum(tokens)) OVER (), 1) AS token_share_pct,
       round(100 * sum(tool_calls) / sum(sum(tool_calls)) OVER (), 1) AS tool_call_share_pct,
       round(100 * sum(failed_tool_calls) / nullif(sum(tool_calls), 0), 1) AS failed_pct,
       rank() OVER (ORDER BY sum(tokens) DESC) AS token_rank
FROM {sessions}
GROUP BY customer
"""

APIS = {"assistants": "assistants_sessions", "responses": "responses_sessions"}

SIDE_BY_SIDE = f"""
WITH a AS ({PER_CUSTOMER.format(sessions="assistants_sessions")}),
     r AS ({PER_CUSTOMER.format(sessions="responses_sessions")})
SELECT customer,
       a.token_share_pct AS assistants_token_share, r.token_share_pct AS responses_token_share,
       a.tool_call_share_pct AS assistants_call_share, r.tool_call_share_pct AS responses_call_share,
       a.failed_pct AS assistants_failed_pct, r.failed_pct AS responses_failed_pct,
       a.token_rank AS assistants_rank, r.token_rank AS responses_rank
FROM a FULL JOIN r USING (customer)
ORDER BY customer
"""


def load(con: duckdb.DuckDBPyConnection, runs: str | Path, calls: str | Path) -> None:
    """Both sides' sessions: the runs' steps and the logged responses and conversations."""
    load_runs(con, runs)
    load_log(con, "my_calls", calls, CALL_LOG)  # both logs checked before any request
    con.execute(STEPS)
    con.execute(ASSISTANTS)
    con.execute(RESPONSES_LOAD)
    con.execute(RESPONSES)


def per_customer(con: duckdb.DuckDBPyConnection, api: str) -> duckdb.DuckDBPyRelation:
    """The per-customer answer over one side: `api` is 'assistants' or 'responses'."""
    return con.sql(PER_CUSTOMER.format(sessions=APIS[api]) + "ORDER BY customer")


def both(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyRelation:
    """Both answers in one table, one row per API and customer."""
    union = " UNION ALL ".join(
        f"SELECT '{api}' AS api, * FROM ({PER_CUSTOMER.format(sessions=view)})" for api, view in APIS.items()
    )
    return con.sql(f"{union} ORDER BY customer, api")


def side_by_side(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyRelation:
    return con.sql(SIDE_BY_SIDE)


@contextlib.contextmanager
def session(args: argparse.Namespace) -> Iterator[duckdb.DuckDBPyConnection]:
    with connect(args.emulator) as (con, logs):
        runs, calls = (logs.runs, logs.calls) if logs is not None else args.logs
        load(con, runs, calls)
        yield con


def main() -> None:
    cli = argparse.ArgumentParser(description=(__doc__ or "").strip().splitlines()[0])
    cli.add_argument("logs", nargs="*", metavar="LOG", help="runs.csv and calls.csv, your two logs")
    cli.add_argument("--emulator", action="store_true", help="use the bundled emulator and its logs")
    args = cli.parse_args()
    if args.emulator == bool(args.logs) or (args.logs and len(args.logs) != 2):
        cli.error("give runs.csv and calls.csv, or --emulator")
    with session(args) as con:
        print("Tokens and tool calls per customer: the same query over each API's sessions")
        both(con).show(max_rows=60, max_width=250)
        print("Side by side: shares, failure rates and ranks, which should agree after a migration")
        side_by_side(con).show(max_rows=60, max_width=250)
        if args.emulator:
            print(
                "(The emulator's Assistants and Responses populations are independent: the numbers differ;\n"
                " on your data, with conversations replacing runs, the shares and ranks are what to compare.)"
            )


if __name__ == "__main__":
    main()
