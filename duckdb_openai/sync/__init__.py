"""A history that outlives the API: incremental, resumable sync of the package's tables into a DuckDB
database, an attached catalog (MotherDuck, DuckLake, Postgres through DuckDB) or a Parquet dataset.

>>> import duckdb_openai                                                       # doctest: +SKIP
>>> duckdb_openai.sync("openai_history.duckdb", log="my_calls.csv")            # doctest: +SKIP

Modules, each one job:

- `tables`: the tables a sync writes, declared as data (resource, primary key, time column, growth kind:
  `Whole`, `Cursor`, `Buckets`, `Logged`, `Children`);
- `growth`: how each growth kind reads what is new and what each commit holds;
- `targets`: the DuckDB targets (a file, an attached catalog) and schema evolution; `parquet`: the
  Parquet dataset; `upsert`: delete-insert by primary key in plain SQL; `compact`: a DuckDB file
  rewritten without its free blocks; `durable`: replacing a file so a crash leaves one whole;
- `state`: the one state table (cursors, windows, what the API no longer has) and a commit's `Batch`;
- `lock`: one sync per target; `log`: the user's log of ids; `fetch`: the requests, over `Client`;
- `bars`: a progress bar per table; `summary`: the figures per table; `run`: `sync()`; `cli`: the
  `duckdb-openai sync` command.
"""

from __future__ import annotations

from duckdb_openai.sync.lock import BusyError
from duckdb_openai.sync.run import DEFAULT_TARGET, sync
from duckdb_openai.sync.summary import SyncResult, TableSummary
from duckdb_openai.sync.tables import (
    TABLES,
    TABLES_BY_NAME,
    Buckets,
    Children,
    Cursor,
    Logged,
    SyncTable,
    Whole,
)

__all__ = [
    "DEFAULT_TARGET",
    "TABLES",
    "TABLES_BY_NAME",
    "Buckets",
    "BusyError",
    "Children",
    "Cursor",
    "Logged",
    "SyncResult",
    "SyncTable",
    "TableSummary",
    "Whole",
    "sync",
]
