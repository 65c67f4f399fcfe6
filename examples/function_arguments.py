"""Function calls with their JSON arguments parsed by DuckDB: what the assistant asked the tools for.

    python examples/function_arguments.py --emulator    # or: runs.csv, with OPENAI_API_KEY set

`arguments` and `output` are JSON strings in the API; DuckDB's JSON functions read them in SQL. The
first table counts calls per function with their argument keys and how many never got an output; the
second pulls single arguments out with `->>`.
"""

from __future__ import annotations

import duckdb
from _session import parser, session

CALLS = """
CREATE OR REPLACE TEMP VIEW function_calls AS
SELECT customer, run_id, id AS step_id, status,
       call.id AS call_id,
       call.function.name AS name,
       call.function.arguments::JSON AS arguments,
       call.function.output AS output
FROM (SELECT customer, run_id, id, status, unnest(step_details.tool_calls) AS call FROM steps)
WHERE call.type = 'function'
"""

PER_FUNCTION = """
SELECT name,
       count(*) AS calls,
       list_sort(list_distinct(flatten(list(json_keys(arguments))))) AS argument_keys,
       count(*) FILTER (WHERE output IS NULL) AS without_output
FROM function_calls
GROUP BY name
ORDER BY calls DESC, name
"""

ARGUMENTS = """
SELECT name,
       arguments ->> '$.order_id' AS order_id,
       arguments ->> '$.location' AS location,
       arguments ->> '$.query' AS search_query,
       (arguments ->> '$.limit')::INTEGER AS search_limit,
       json_extract_string(output, '$.status') AS order_status
FROM function_calls
ORDER BY call_id
"""


def calls(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(CALLS)


def per_function(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyRelation:
    calls(con)
    return con.sql(PER_FUNCTION)


def arguments(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyRelation:
    calls(con)
    return con.sql(ARGUMENTS)


def main() -> None:
    args = parser(__doc__).parse_args()
    with session(args) as con:
        per_function(con).show()
        arguments(con).show(max_rows=20)


if __name__ == "__main__":
    main()
