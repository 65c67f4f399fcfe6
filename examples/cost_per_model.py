"""Cost per customer and model: each run's model (from the run) times its steps' token usage.

    python examples/cost_per_model.py --emulator         # or: runs.csv, with OPENAI_API_KEY set
    python examples/cost_per_model.py runs.csv --prices prices.csv
    python examples/cost_per_model.py threads.csv       # a thread log: every run of each thread

No table answers this alone: a step knows its tokens but not the model, which is set on the run (a run
may override its assistant's model), and only the application's log knows the customer. One query joins
the three: `my_runs`, `run(thread_id, run_id)` for the model and `run_steps(thread_id, run_id)` for the
usage. An application that logs only threads (a CSV with thread_id and customer, no run_id) gets the
same table from `my_threads`, `runs(thread_id)` and `run_steps`.

The prices below are illustrative (list prices in USD per million tokens as published for these models
at one time), not a quote: set yours in PRICES, or pass `--prices prices.csv` with the columns model,
prompt_usd_per_1m, completion_usd_per_1m (your contract's prices, Azure's for your region, ...). A model
without a price keeps its tokens and gets a NULL cost, and the script names it.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
from _session import parser, session

#: Illustrative prices, USD per 1M tokens: (prompt, completion). Replace with your own.
PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4-turbo": (10.00, 30.00),
    "o3-mini": (1.10, 4.40),
}

# Step usage, not the run's: a run's usage stays NULL until the run ends, while the steps it finished
# already count (and a step's tokens are billed whether or not its run later failed).
#: One row per step with its run's model and the log's customer, from a run log ...
FROM_RUN_LOG = """
    SELECT m.customer, r.model, r.id AS run_id, s.usage
    FROM my_runs m, run(m.thread_id, m.run_id) r, run_steps(m.thread_id, m.run_id) s
"""
#: ... or from a thread log, listing each thread's runs.
FROM_THREAD_LOG = """
    SELECT t.customer, r.model, r.id AS run_id, s.usage
    FROM my_threads t, runs(t.thread_id) r, run_steps(r.thread_id, r.id) s
"""

SQL = """
WITH usage AS ({steps})
SELECT u.customer, u.model,
       count(DISTINCT u.run_id) AS runs,
       count(*) AS steps,
       sum(u.usage.prompt_tokens) AS prompt_tokens,
       sum(u.usage.completion_tokens) AS completion_tokens,
       round(sum(u.usage.prompt_tokens * p.prompt_usd_per_1m
                 + u.usage.completion_tokens * p.completion_usd_per_1m) / 1e6, 4) AS cost_usd
FROM usage u LEFT JOIN prices p USING (model)
GROUP BY ALL
ORDER BY u.customer, cost_usd DESC NULLS LAST, u.model
"""

#: The columns the log needs: a run log has run_id too, a thread log not (see use_thread_log).
LOG_COLUMNS = ("thread_id", "customer")

PER_CUSTOMER = """
SELECT customer, sum(runs) AS runs, sum(prompt_tokens + completion_tokens) AS tokens,
       round(sum(cost_usd), 2) AS cost_usd,
       arg_max(model, cost_usd) AS costliest_model
FROM cost
GROUP BY customer
ORDER BY cost_usd DESC, customer
"""


def load_prices(con: duckdb.DuckDBPyConnection, csv: str | Path | None = None) -> None:
    """Create `prices` from PRICES, or from a CSV of model, prompt_usd_per_1m, completion_usd_per_1m."""
    if csv is not None:
        con.execute(
            "CREATE OR REPLACE TABLE prices AS SELECT model::VARCHAR AS model, "
            "prompt_usd_per_1m::DOUBLE AS prompt_usd_per_1m, "
            "completion_usd_per_1m::DOUBLE AS completion_usd_per_1m FROM read_csv(?)",
            [str(csv)],
        )
        return
    con.execute(
        "CREATE OR REPLACE TABLE prices (model VARCHAR PRIMARY KEY, prompt_usd_per_1m DOUBLE, "
        "completion_usd_per_1m DOUBLE)"
    )
    con.executemany("INSERT INTO prices VALUES (?, ?, ?)", [(m, *p) for m, p in PRICES.items()])


def query(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyRelation:
    """Tokens and cost per customer and model, from `my_runs`, or from `my_threads` if that is loaded."""
    threads = con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'my_threads'").fetchall()
    return con.sql(SQL.format(steps=FROM_THREAD_LOG if threads[0][0] else FROM_RUN_LOG))


def use_thread_log(con: duckdb.DuckDBPyConnection) -> bool:
    """If the loaded log has no run_id, it is a thread log: keep it as `my_threads` and say so."""
    columns = {name for (name,) in con.execute("SELECT name FROM pragma_table_info('my_runs')").fetchall()}
    if "run_id" in columns:
        return False
    con.execute("ALTER TABLE my_runs RENAME TO my_threads")
    return True


def load_cost(con: duckdb.DuckDBPyConnection) -> None:
    """Run :data:`SQL` once into the table `cost`, which the totals and the price check reuse."""
    query(con).to_table("cost")


def per_customer(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyRelation:
    """Totals per customer over the table `cost`."""
    return con.sql(PER_CUSTOMER)


def unpriced(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The models in `cost` without a price."""
    found = con.sql("SELECT DISTINCT model FROM cost WHERE cost_usd IS NULL ORDER BY model").fetchall()
    return [model for (model,) in found]


def main() -> None:
    cli = parser(__doc__)
    cli.add_argument("--prices", help="CSV of model, prompt_usd_per_1m, completion_usd_per_1m")
    args = cli.parse_args()
    with session(args, steps=False, columns=LOG_COLUMNS) as con:
        load_prices(con, args.prices)
        if use_thread_log(con):
            print("a thread log (no run_id column): every run of each thread counts")
        load_cost(con)
        print("Tokens and cost per customer and model (prices: illustrative, see the script)")
        con.sql("FROM cost").show(max_rows=100)
        print("Cost per customer")
        per_customer(con).show(max_rows=50)
        missing = unpriced(con)
        if missing:
            print(f"no price for {', '.join(missing)}: add it to PRICES or to --prices")


if __name__ == "__main__":
    main()
