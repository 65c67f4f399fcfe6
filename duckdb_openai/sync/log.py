"""The user's log of ids: which responses, conversations and threads (or runs) a sync reads, since the
API cannot list them.

A log is a table or view of the target's connection (`my_calls`, `lake.main.my_runs`), a file DuckDB
reads (`calls.csv`, `runs.parquet`, a glob), or a pyarrow table or data frame. Its columns name what it
holds: `response_id`, `conversation_id`, `thread_id`, `run_id` (any case); a table needing a column the
log lacks is not synced from it. A time column (`created_at`, `started_at`, `timestamp` or `time`)
lets `since` choose the log's rows from that time on; without one, `since` does not narrow a log.

Every id is checked before any request is sent: one that could change a URL is an InvalidIdError
naming the log's column.

>>> import duckdb, pyarrow as pa
>>> log = Log(duckdb.connect(), pa.table({"response_id": ["resp_b", "resp_a", "resp_b"]}))
>>> log.ids("response_id")
['resp_a', 'resp_b']
"""

from __future__ import annotations

import os
import re
from datetime import datetime
from typing import Any

import duckdb

from duckdb_openai.errors import ConfigurationError, InvalidIdError
from duckdb_openai.resources.base import Key, check_id
from duckdb_openai.sync.upsert import ident

__all__ = ["TIME_COLUMNS", "Log"]

#: A log's time column, the first of these it has.
TIME_COLUMNS = ("created_at", "started_at", "timestamp", "time")
_REGISTERED = "__duckdb_openai_sync_log"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*(?:\.[A-Za-z_][A-Za-z0-9_$]*){0,2}")
_FILE_SUFFIXES = (".csv", ".tsv", ".parquet", ".json", ".jsonl", ".ndjson", ".gz", ".zst")


def _file_like(source: str) -> bool:
    lowered = source.lower()
    return os.path.exists(source) or any(ch in source for ch in "*?/\\") or lowered.endswith(_FILE_SUFFIXES)


class Log:
    """A log of ids read through `con` (see the module docstring); `since` keeps the rows from then on
    when the log has a time column."""

    def __init__(self, con: duckdb.DuckDBPyConnection, source: Any, since: datetime | None = None) -> None:
        self.con = con
        self.since = since
        self.source = source
        if isinstance(source, str):
            if _file_like(source):
                self.relation = "'" + source.replace("'", "''") + "'"
                self.name = source
            elif _NAME.fullmatch(source):
                self.relation = ".".join(ident(part) for part in source.split("."))
                self.name = source
            else:
                raise ConfigurationError(
                    f"log {source!r} is neither a table name nor a file DuckDB reads; pass a table or view "
                    "(my_calls), a file (calls.csv, runs.parquet) or a pyarrow table"
                )
        else:
            self._registered = source
            con.register(_REGISTERED, source)
            self.relation = _REGISTERED
            self.name = f"the {type(source).__name__} given as log"
        try:
            described = con.execute(f"DESCRIBE SELECT * FROM {self.relation}").fetchall()
        except duckdb.Error as exc:
            raise ConfigurationError(
                f"cannot read the log {self.name!r}: {str(exc).splitlines()[0]}"
            ) from None
        self.columns = {row[0].lower(): row[0] for row in described}
        self.time_column = next((self.columns[c] for c in TIME_COLUMNS if c in self.columns), None)

    def has(self, column: str) -> bool:
        return column in self.columns

    @property
    def narrowed(self) -> bool:
        """Whether `since` chooses the log's rows (it has a time column)."""
        return self.since is not None and self.time_column is not None

    def _where(self, columns: list[str]) -> tuple[str, dict[str, Any]]:
        conditions = [f"{ident(self.columns[c])} IS NOT NULL" for c in columns]
        params: dict[str, Any] = {}
        if self.narrowed:
            assert self.time_column is not None
            conditions.append(f"TRY_CAST({ident(self.time_column)} AS TIMESTAMPTZ) >= $since")
            params["since"] = self.since
        return " AND ".join(conditions), params

    def _order(self) -> str:
        if self.time_column is None:
            return ""
        return f"min(TRY_CAST({ident(self.time_column)} AS TIMESTAMPTZ)) NULLS LAST, "

    def rows(self, columns: list[str]) -> list[tuple[str, ...]]:
        """The distinct combinations of `columns` (log column names, any case), oldest first when the log
        has a time column, each id checked."""
        missing = [c for c in columns if c not in self.columns]
        if missing:
            raise ConfigurationError(f"the log {self.name!r} has no column {missing[0]!r}")
        where, params = self._where(columns)
        selected = ", ".join(f"CAST({ident(self.columns[c])} AS VARCHAR)" for c in columns)
        found = self.con.execute(
            f"SELECT {selected} FROM {self.relation} WHERE {where} GROUP BY ALL "
            f"ORDER BY {self._order()}{selected}",
            params,
        ).fetchall()
        for row in found:
            for column, value in zip(columns, row, strict=True):
                try:
                    check_id(Key(column, "abc123"), value)
                except InvalidIdError as exc:
                    raise InvalidIdError(f"in the log {self.name!r}: {exc}") from None
        return [tuple(row) for row in found]

    def ids(self, column: str) -> list[str]:
        """The distinct ids of `column`, oldest first when the log has a time column."""
        return [row[0] for row in self.rows([column])]

    def close(self) -> None:
        if self.relation == _REGISTERED:
            self.con.unregister(_REGISTERED)
