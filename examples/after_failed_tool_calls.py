"""What the assistant said after a tool call failed: each failed tool call with the user's question
before it and the assistant's next message in the thread.

    python examples/after_failed_tool_calls.py --emulator     # or: runs.csv, with OPENAI_API_KEY set

Run steps say which tool calls failed but not what the customer was told; messages hold the text but
not the failure. A tool call failed when its step failed (`status = 'failed'`, with `last_error`), or
when the function's submitted output is a JSON object with an `error` key (the step itself completed).

The reply is the thread's first assistant message created at or after the failure, from
`messages(thread_id)`. A failed step ends its run, so that reply comes from the next run of the thread
(`same_run` false); after a function output holding an error the run goes on and the reply is usually
the same run's (`messages(thread_id, run_id := ...)` would find only those). No reply means the
conversation stopped there. The question is the last user message at or before the run's first step.
"""

from __future__ import annotations

import duckdb
from _session import OUTPUT_ERROR, parser, session

#: The text of a message: its text parts and refusals, in order (an image part has none).
MESSAGE_TEXT = "array_to_string([coalesce(c.text.value, c.refusal) FOR c IN content], ' ')"

#: Every step with a failed tool call: which calls, why, and when.
FAILED = f"""
CREATE OR REPLACE TABLE failed_tool_calls AS
WITH tool_steps AS (
    SELECT customer, thread_id, run_id, id AS step_id, created_at,
           coalesce(failed_at, completed_at) AS ended_at,
           CASE WHEN status = 'failed' THEN step_details.tool_calls
                ELSE list_filter(step_details.tool_calls, lambda c: {OUTPUT_ERROR}) END AS calls,
           coalesce(last_error.code, 'error in function output') AS error, run_began_at
    -- The window sees all of the run's steps: it is computed before the WHERE below filters them.
    FROM (SELECT *, min(created_at) OVER (PARTITION BY run_id) AS run_began_at FROM steps)
    WHERE type = 'tool_calls' AND status IN ('failed', 'completed')
)
SELECT * EXCLUDE (calls),
       array_to_string(list_transform(calls, lambda c: coalesce(c.function.name, c.type)), ', ') AS tools
FROM tool_steps
WHERE len(calls) > 0
"""

#: Every message of the threads where something failed, with its text.
MESSAGES = f"""
CREATE OR REPLACE TABLE thread_messages AS
SELECT m.thread_id, m.id, m.run_id, m.role, m.created_at, {MESSAGE_TEXT} AS text
FROM (SELECT DISTINCT thread_id FROM failed_tool_calls) t, messages(t.thread_id) m
"""

SQL = """
SELECT f.customer, f.thread_id, f.run_id, f.step_id, f.tools, f.error, f.ended_at AS failed_at,
       asked.text AS asked,
       reply.run_id = f.run_id AS same_run,
       epoch(reply.created_at - f.ended_at) AS seconds_later,
       reply.text AS reply
FROM failed_tool_calls f
LEFT JOIN LATERAL (
    SELECT text FROM thread_messages m
    WHERE m.thread_id = f.thread_id AND m.role = 'user' AND m.created_at <= f.run_began_at
    ORDER BY m.created_at DESC, m.id DESC LIMIT 1
) asked ON true
LEFT JOIN LATERAL (
    SELECT run_id, created_at, text FROM thread_messages m
    WHERE m.thread_id = f.thread_id AND m.role = 'assistant' AND m.created_at >= f.ended_at
    ORDER BY m.created_at, m.id LIMIT 1
) reply ON true
ORDER BY f.ended_at, f.step_id
"""

SUMMARY = """
SELECT customer, count(*) AS failed_steps, count(reply) AS answered,
       count(*) FILTER (WHERE same_run) AS answered_in_same_run,
       median(seconds_later) AS median_seconds_to_reply
FROM after_failures
GROUP BY customer
ORDER BY failed_steps DESC, customer
"""


def load(con: duckdb.DuckDBPyConnection) -> None:
    """The failed tool calls of `steps`, and the messages of their threads."""
    con.execute(FAILED)
    con.execute(MESSAGES)


def query(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyRelation:
    return con.sql(SQL)


def summary(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyRelation:
    query(con).to_view("after_failures")
    return con.sql(SUMMARY)


def main() -> None:
    args = parser(__doc__).parse_args()
    with session(args) as con:
        load(con)
        print("Failed tool calls, what was asked, and what the assistant said next\n")
        rows = query(con).select("customer, run_id, tools, error, asked, same_run, seconds_later, reply")
        for customer, run_id, tools, error, asked, same_run, seconds, reply in rows.fetchall():
            print(f"{customer} · {run_id} · {tools} failed ({error})")
            print(f"    asked: {asked}")
            if seconds is None:
                print("    reply: none (the thread has no later assistant message)")
            else:
                where = "the same run" if same_run else "a later run"
                print(f"    reply: {reply}  [{seconds:.0f} s later, {where}]")
        print("\nPer customer")
        summary(con).show()


if __name__ == "__main__":
    main()
