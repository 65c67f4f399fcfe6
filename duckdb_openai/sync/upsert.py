"""Upserts by primary key in plain SQL, so they work on any catalog DuckDB can attach (DuckLake and
Postgres through DuckDB have no primary-key constraints, so no `INSERT OR REPLACE`): count what is new,
changed and unchanged, delete the changed rows, insert the new and changed ones. Unchanged rows are not
written at all, so a sync that finds nothing new writes nothing.

Keys compare with `IS NOT DISTINCT FROM` (a usage row's dimension may be NULL), rows with the same over
`row(...)` of every column both sides have.

>>> import duckdb, pyarrow as pa
>>> con = duckdb.connect()
>>> _ = con.execute("CREATE TABLE t (id VARCHAR, n BIGINT)")
>>> _ = con.execute("INSERT INTO t VALUES ('a', 1), ('b', 2)")
>>> con.register("incoming", pa.table({"id": ["b", "c"], "n": [20, 3]}))  # doctest: +ELLIPSIS
<...>
>>> upsert(con, "t", "incoming", key=["id"], columns=["id", "n"])
Counts(new=1, updated=1, unchanged=0, removed=0)
>>> con.sql("SELECT * FROM t ORDER BY id").fetchall()
[('a', 1), ('b', 20), ('c', 3)]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["Counts", "dedupe", "ident", "merged_sql", "sql_counts", "upsert"]


def ident(name: str) -> str:
    """`name` quoted as a SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


@dataclass
class Counts:
    """Rows of one table in one commit: new keys, changed rows, rows equal to what the target held, and
    rows removed because their re-read bucket no longer has them."""

    new: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0

    def __iadd__(self, other: Counts) -> Counts:
        self.new += other.new
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.removed += other.removed
        return self

    @property
    def written(self) -> int:
        return self.new + self.updated + self.removed


def dedupe(rows: pa.Table, key: Sequence[str]) -> pa.Table:
    """`rows` with one row per key, the last one given (two reads of one object in one commit)."""
    if rows.num_rows < 2:
        return rows
    indexed = rows.append_column("__position", pa.array(range(rows.num_rows), pa.int64()))
    last = indexed.group_by(list(key), use_threads=False).aggregate([("__position", "max")])
    positions = pc.sort_indices(last.column("__position_max"))
    if len(positions) == rows.num_rows:
        return rows
    return rows.take(pc.take(last.column("__position_max"), positions))


def _match(key: Sequence[str]) -> str:
    return " AND ".join(f"t.{ident(k)} IS NOT DISTINCT FROM i.{ident(k)}" for k in key)


def _same(columns: Sequence[str]) -> str:
    left = ", ".join(f"i.{ident(c)}" for c in columns)
    right = ", ".join(f"t.{ident(c)}" for c in columns)
    return f"row({left}) IS NOT DISTINCT FROM row({right})"


def _replaced(start: str) -> str:
    return f"t.{ident(start)} >= $replace_from"


def sql_counts(
    con: duckdb.DuckDBPyConnection,
    table: str,
    incoming: str,
    *,
    key: Sequence[str],
    columns: Sequence[str],
    replace: tuple[str, datetime] | None = None,
) -> Counts:
    """How `incoming` compares with `table` (both SQL relations), without writing anything."""
    marked = f"(SELECT *, true AS __present FROM {table})"
    new, updated, total = con.execute(
        f"SELECT count(*) FILTER (WHERE t.__present IS NULL), "
        f"count(*) FILTER (WHERE t.__present AND NOT ({_same(columns)})), count(*) "
        f"FROM {incoming} i LEFT JOIN {marked} t ON {_match(key)}"
    ).fetchall()[0]
    removed = 0
    if replace is not None:
        (removed,) = con.execute(
            f"SELECT count(*) FROM {table} t WHERE {_replaced(replace[0])} AND NOT EXISTS "
            f"(SELECT 1 FROM {incoming} i WHERE {_match(key)})",
            {"replace_from": replace[1]},
        ).fetchall()[0]
    return Counts(new=new, updated=updated, unchanged=total - new - updated, removed=removed)


def upsert(
    con: duckdb.DuckDBPyConnection,
    table: str,
    incoming: str,
    *,
    key: Sequence[str],
    columns: Sequence[str],
    replace: tuple[str, datetime] | None = None,
) -> Counts:
    """Write `incoming` (deduplicated by key) into `table` by key, inside the caller's transaction.

    `columns` are the columns both hold (the target may have more: they are left NULL for the rows
    written). `replace` (a column and a start): rows of `table` from that start on whose key is not in
    `incoming` are removed, as their buckets were read again."""
    counts = sql_counts(con, table, incoming, key=key, columns=columns, replace=replace)
    if counts.updated:
        con.execute(
            f"DELETE FROM {table} AS t WHERE EXISTS "
            f"(SELECT 1 FROM {incoming} i WHERE {_match(key)} AND NOT ({_same(columns)}))"
        )
    if counts.removed and replace is not None:
        con.execute(
            f"DELETE FROM {table} AS t WHERE {_replaced(replace[0])} AND NOT EXISTS "
            f"(SELECT 1 FROM {incoming} i WHERE {_match(key)})",
            {"replace_from": replace[1]},
        )
    if counts.new or counts.updated:
        names = ", ".join(ident(c) for c in columns)
        selected = ", ".join(f"i.{ident(c)}" for c in columns)
        con.execute(
            f"INSERT INTO {table} ({names}) SELECT {selected} FROM {incoming} i "
            f"WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE {_match(key)})"
        )
    return counts


def merged_sql(
    table: str,
    incoming: str,
    *,
    key: Sequence[str],
    columns: Sequence[str],
    replace: tuple[str, datetime] | None = None,
) -> str:
    """A SELECT of what `table` holds after an upsert of `incoming`, for targets that rewrite a whole
    file (Parquet): the rows of `table` whose key `incoming` does not have (and outside a replaced
    start), then `incoming`'s. Binds `$replace_from` when `replace` is given."""
    names = ", ".join(ident(c) for c in columns)
    kept = f"NOT EXISTS (SELECT 1 FROM {incoming} i WHERE {_match(key)})"
    if replace is not None:
        kept += f" AND ({_replaced(replace[0])}) IS NOT TRUE"
    return (
        f"SELECT {', '.join(f't.{ident(c)}' for c in columns)} FROM {table} t WHERE {kept} "
        f"UNION ALL SELECT {names} FROM {incoming}"
    )
