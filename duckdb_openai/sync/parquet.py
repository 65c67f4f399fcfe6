"""The Parquet target: a Hive-partitioned dataset by UTC day, that Spark, Trino and DuckDB read.

Layout::

    DIR/_duckdb_openai_sync.json                      the state (JSON, so no *.parquet glob reads it)
    DIR/.duckdb_openai_sync.lock                      the lock a sync holds (`lock.FolderLock`)
    DIR/<table>/day=2024-10-01/data.parquet           one file per table and UTC day, zstd

A row's day is its time column's UTC date (a chat completion's `created`, a run step's `created_at`);
a table without one files each row under its parent's day (a chat completion's messages under the
completion's day, a conversation's items under the conversation's). `day` is only in the path: read a
table with `read_parquet('DIR/<table>/**/*.parquet', hive_partitioning = true)` and it is a column.

A commit rewrites each partition it touches: the file's rows merged with the new ones by primary key
(`upsert.merged_sql`), written to a temporary file beside it (`.data.<random>.tmp`, which no `*.parquet`
glob matches), flushed to disk and moved over the old one with `os.replace`, so a reader sees the old
file or the new one, never a part. A partition whose rows are all unchanged is not rewritten. The
state file is written last, the same way. A sync killed between two files leaves some partitions
ahead of the state; the rerun reads those rows again and merges them into the same files, so a killed
and rerun sync ends with the files of a clean one.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from duckdb_openai.errors import ConfigurationError
from duckdb_openai.schema import duckdb_type
from duckdb_openai.sync.durable import replace
from duckdb_openai.sync.lock import FolderLock, held
from duckdb_openai.sync.state import FORMAT_VERSION, STATE_TABLE, Batch, State, encode
from duckdb_openai.sync.tables import Buckets, SyncTable
from duckdb_openai.sync.targets import Target, arrow_schema, declared_schema, evolution
from duckdb_openai.sync.upsert import Counts, ident, merged_sql, sql_counts

__all__ = ["DATA_FILE", "NULL_DAY", "STATE_FILE", "ParquetTarget", "sql_text"]

STATE_FILE = f"{STATE_TABLE}.json"
DATA_FILE = "data.parquet"
#: The partition of a row without a time (Hive's name for a NULL partition value).
NULL_DAY = "__HIVE_DEFAULT_PARTITION__"
_EXISTING = "__duckdb_openai_sync_existing"
_INCOMING = "__duckdb_openai_sync_incoming"


def sql_text(value: str) -> str:
    """`value` as a SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def _days(times: pa.ChunkedArray | pa.Array) -> list[str]:
    """The UTC day of each timestamp, 'YYYY-MM-DD' (NULL_DAY for a NULL)."""
    utc = pc.cast(times, pa.timestamp("us", tz="UTC"))
    text = pc.strftime(utc, format="%Y-%m-%d")
    return [NULL_DAY if value is None else value for value in text.to_pylist()]


class ParquetTarget(Target):
    """A folder holding a Hive-partitioned Parquet dataset per table (see the module docstring)."""

    def __init__(self, folder: str | os.PathLike[str], *, read_only: bool = False) -> None:
        self.folder = Path(folder)
        self.description = f"the Parquet dataset {os.fspath(folder)}"
        self.con = duckdb.connect()
        self.read_only = read_only
        self._state: State | None = None
        #: Per parent table: the day of each parent key, for its children's partitions.
        self._parent_days: dict[str, dict[str, str]] = {}
        self._lock = FolderLock(self.folder, self.description)
        self._held = held(f"parquet:{os.path.realpath(self.folder)}", self.description)
        if read_only:
            return
        self._held.__enter__()
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._lock.acquire()
        except BaseException:
            self._held.__exit__(None, None, None)
            self.con.close()
            raise

    # -- files -------------------------------------------------------------------------------------------

    def _table_dir(self, name: str) -> Path:
        return self.folder / name

    def files(self, name: str) -> list[Path]:
        folder = self._table_dir(name)
        return sorted(folder.glob(f"day=*/{DATA_FILE}")) if folder.is_dir() else []

    def relation(self, table: SyncTable) -> str | None:
        if not self.files(table.name):
            return None
        pattern = os.fspath(self._table_dir(table.name) / "day=*" / DATA_FILE)
        return f"read_parquet({sql_text(pattern)}, hive_partitioning = false, union_by_name = true)"

    # -- state -------------------------------------------------------------------------------------------

    def read_state(self) -> State:
        if self._state is None:
            path = self.folder / STATE_FILE
            if not path.exists():
                self._state = State()
            else:
                document = json.loads(path.read_text(encoding="utf-8"))
                if document.get("format", 0) > FORMAT_VERSION:
                    raise ConfigurationError(
                        f"{self.description} was synced by a newer version of duckdb-openai (state format "
                        f"{document['format']}); upgrade the package to sync into it"
                    )
                self._state = State({(t, s): v for t, s, v in document["entries"]})
        return self._state

    def _write_state(self) -> None:
        state = self.read_state()
        document = {"format": FORMAT_VERSION, "entries": [[t, s, v] for (t, s), v in state.items()]}
        path = self.folder / STATE_FILE
        temporary = self.folder / f".{STATE_TABLE}.{uuid.uuid4().hex}.tmp"
        temporary.write_text(encode(document) + "\n", encoding="utf-8")
        replace(temporary, path)

    # -- preparing ---------------------------------------------------------------------------------------

    def prepare(self, tables: Sequence[SyncTable]) -> list[str]:
        notes: list[str] = []
        for leftover in self.folder.glob("**/.*.tmp"):
            # A temporary file a killed sync left: never read (not *.parquet), so only removed here.
            with contextlib.suppress(OSError):
                leftover.unlink()
        for table in tables:
            want = declared_schema(self.con, table.schema)
            changed: set[str] = set()
            for path in self.files(table.name):
                have = arrow_schema(self.con, f"read_parquet({sql_text(os.fspath(path))})")
                added, widened = evolution(table.name, have, want)
                if not added and not widened:
                    continue
                self._rewrite_evolved(path, table, have)
                changed.update(f"added the column {f.name}" for f in added)
                changed.update(f"widened the column {f.name}" for f in widened)
            notes.extend(f"{table.name}: {what}" for what in sorted(changed))
        state = self.read_state()
        if state.get("", "format") is None:
            state.apply({("", "format"): {"version": FORMAT_VERSION}})
            self._write_state()
        return notes

    def _rewrite_evolved(self, path: Path, table: SyncTable, have: pa.Schema) -> None:
        columns = []
        for f in table.schema:
            kind = duckdb_type(f.type)
            if have.get_field_index(f.name) < 0:
                columns.append(f"CAST(NULL AS {kind}) AS {ident(f.name)}")
            else:
                columns.append(f"CAST({ident(f.name)} AS {kind}) AS {ident(f.name)}")
        self._write(
            f"SELECT {', '.join(columns)} FROM read_parquet({sql_text(os.fspath(path))})", path, table
        )

    # -- committing --------------------------------------------------------------------------------------

    def _write(
        self, select: str, path: Path, table: SyncTable, params: Mapping[str, Any] | None = None
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.parent / f".data.{uuid.uuid4().hex}.tmp"
        order = ", ".join(ident(k) for k in table.key)
        self.con.execute(
            f"COPY (SELECT * FROM ({select}) ORDER BY {order}) TO {sql_text(os.fspath(temporary))} "
            "(FORMAT parquet, COMPRESSION zstd)",
            dict(params or {}),
        )
        replace(temporary, path)

    def _row_days(
        self, table: SyncTable, rows: pa.Table, batch: Batch, tables: Mapping[str, SyncTable]
    ) -> list[str]:
        if table.time is not None:
            return _days(rows.column(table.time))
        assert table.parent is not None
        column, parent_column = table.parent_key[0]
        known = self._days_of(tables[table.parent], parent_column)
        parent_rows = batch.rows.get(table.parent)
        if parent_rows is not None and tables[table.parent].time is not None:
            parent_time = tables[table.parent].time
            assert parent_time is not None
            known = {
                **known,
                **dict(
                    zip(
                        parent_rows.column(parent_column).to_pylist(),
                        _days(parent_rows.column(parent_time)),
                        strict=True,
                    )
                ),
            }
        days = []
        for value in rows.column(column).to_pylist():
            day = known.get(value)
            if day is None:
                raise RuntimeError(
                    f"{table.name}: no {table.parent} row {value!r} to take the day of; the sync writes a "
                    "parent with or before its children"
                )
            days.append(day)
        return days

    def _days_of(self, parent: SyncTable, column: str) -> dict[str, str]:
        """The day of each row of `parent`, by `column`, from its files (kept up to date by commits)."""
        known = self._parent_days.get(parent.name)
        if known is None:
            known = {}
            pattern = os.fspath(self._table_dir(parent.name) / "day=*" / DATA_FILE)
            if self.files(parent.name):
                rows = self.con.execute(
                    f"SELECT {ident(column)}, day FROM read_parquet({sql_text(pattern)}, "
                    "hive_partitioning = true, hive_types = {'day': VARCHAR})"
                ).fetchall()
                known = {value: day for value, day in rows}
            self._parent_days[parent.name] = known
        return known

    def commit(self, batch: Batch, tables: Mapping[str, SyncTable]) -> dict[str, Counts]:
        if self.read_only:
            raise ConfigurationError(f"{self.description} was opened to read only")
        counts: dict[str, Counts] = {}
        for name in [*batch.rows, *(n for n in batch.replace_from if n not in batch.rows)]:
            table = tables[name]
            rows = batch.rows.get(name, table.schema.empty_table())
            days = self._row_days(table, rows, batch, tables) if rows.num_rows else []
            start = batch.replace_from.get(name)
            replace = None
            touched = sorted(set(days))
            if start is not None and isinstance(table.growth, Buckets):
                replace = (table.growth.start, start)
                first = start.astimezone(UTC).strftime("%Y-%m-%d")
                existing = [p.parent.name.removeprefix("day=") for p in self.files(name)]
                touched = sorted(set(touched) | {d for d in existing if d >= first and d != NULL_DAY})
            total = Counts()
            day_array = pa.array(days, pa.string())
            for day in touched:
                part = rows.filter(pc.equal(day_array, day)) if rows.num_rows else rows
                total += self._merge(table, day, part, replace)
            counts[name] = total
            if name in self._parent_days:
                self._update_days(table, rows, days)
        self.read_state().apply(batch.state)
        self._write_state()
        return counts

    def _update_days(self, table: SyncTable, rows: pa.Table, days: list[str]) -> None:
        known = self._parent_days[table.name]
        # The parent's rows are looked up by the column children join on; for every declared table
        # that is its first key column.
        column = table.key[0]
        for value, day in zip(rows.column(column).to_pylist(), days, strict=True):
            known[value] = day

    def _merge(
        self, table: SyncTable, day: str, rows: pa.Table, replace: tuple[str, datetime] | None
    ) -> Counts:
        path = self._table_dir(table.name) / f"day={day}" / DATA_FILE
        existing = f"read_parquet({sql_text(os.fspath(path))})" if path.exists() else _EXISTING
        self.con.register(_INCOMING, rows)
        self.con.register(_EXISTING, table.schema.empty_table())
        try:
            params = {} if replace is None else {"replace_from": replace[1]}
            counts = sql_counts(
                self.con, existing, _INCOMING, key=table.key, columns=table.schema.names, replace=replace
            )
            if counts.written == 0 and path.exists():
                return counts
            if counts.written == 0 and not rows.num_rows:
                return counts
            select = merged_sql(
                existing, _INCOMING, key=table.key, columns=table.schema.names, replace=replace
            )
            self._write(select, path, table, params)
            return counts
        finally:
            self.con.unregister(_INCOMING)
            self.con.unregister(_EXISTING)

    def close(self) -> None:
        if self.read_only:
            self.con.close()
            return
        try:
            self._lock.release()
            self.con.close()
        finally:
            self._held.__exit__(None, None, None)
