"""Token usage per customer and kind of step: which tools burn the tokens, for whom.

    python examples/tokens_by_tool.py --emulator        # or: runs.csv, with OPENAI_API_KEY set

A step's kind is `message_creation`, or the tool types it called (`function`, `code_interpreter`,
`file_search`; several joined with `+`), so each step's tokens are counted once. Steps still in progress
have no usage yet and count as steps with NULL tokens.
"""

from __future__ import annotations

import duckdb
from _session import STEP_KIND, parser, session

SQL = f"""
SELECT customer,
       {STEP_KIND} AS kind,
       count(*) AS steps,
       sum(usage.prompt_tokens) AS prompt_tokens,
       sum(usage.completion_tokens) AS completion_tokens,
       sum(usage.total_tokens) AS total_tokens
FROM steps
GROUP BY ALL
ORDER BY customer, total_tokens DESC NULLS LAST, kind
"""


def query(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyRelation:
    return con.sql(SQL)


def main() -> None:
    args = parser(__doc__).parse_args()
    with session(args) as con:
        query(con).show(max_rows=100)


if __name__ == "__main__":
    main()
