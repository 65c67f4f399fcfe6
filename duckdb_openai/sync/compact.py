"""Compaction: a DuckDB file the sync opened, rewritten without its free blocks.

DuckDB reuses the blocks a checkpoint frees, but gives them back to the file system only at the file's
end. A sync that appends to a table rewrites that table's last row group at the checkpoint, so a file
synced every day carries free blocks of up to its own size again (`benchmarks/bench_sync.py`, part b,
measures it). After a sync that leaves at least `SHARE` of the file free (and at least `MIN_BYTES`),
or always with `compact=True`, the file is copied into a new one beside it (`COPY FROM DATABASE`, with
its storage version, so a DuckDB that read it still does, and `FILE_BLOCK_SIZE` blocks, or its own
where smaller), checked (the same schemas, tables, columns, views and row counts), given the old file's
permissions, owner and group, flushed to disk and moved over the old one (`durable.replace`). A copy no
smaller than the file is dropped.

The sync still holds the old file open meanwhile, so no other process can write it. A connection of
this same process could join DuckDB's open database and write: the connections, blocks and write-ahead
log are compared before the replace and right after it, and the old file, kept by a hard link until
then, is put back if anything changed. A `kill -9` at any point leaves the old file or the new one
whole, and at most `.NAME.compact-*.tmp` or `.old` beside it, which the next sync removes.

Only what `COPY FROM DATABASE` copies faithfully is compacted: a file holding sequences, indexes,
macros, types of its own or constraints other than NOT NULL is left as it is, and so is a file another
connection of this process has open (it would go on reading the old file); the summary says why.

>>> should_compact(Space(file_bytes=24_000_000, free_bytes=6_000_000), None)
True
>>> should_compact(Space(file_bytes=24_000_000, free_bytes=1_000_000), None)
False
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import stat
import uuid
from dataclasses import dataclass
from pathlib import Path

import duckdb

from duckdb_openai.sync.durable import fsync_file, replace
from duckdb_openai.sync.upsert import ident

__all__ = ["FILE_BLOCK_SIZE", "MIN_BYTES", "SHARE", "Space", "compact", "should_compact", "space"]

#: The block size of a database file the sync creates or compacts (bytes; DuckDB's default is 262,144).
#: 64 KiB is the smallest at which DuckDB bit-packs integers and timestamps (at 16 and 32 KiB it stores
#: them uncompressed), and small enough that a table's last, partly filled block costs little.
FILE_BLOCK_SIZE = 65_536
#: Compact (with compact=None) when free blocks make up at least this share of the file (a fifth)...
SHARE = 0.2
#: ... and at least this many bytes.
MIN_BYTES = 1 << 20
_COPY = "__duckdb_openai_sync_compact"
_MEANWHILE = "another connection of this process opened or wrote it meanwhile; the next sync compacts"
#: The headers at the start of a DuckDB file, before its first block (bytes).
_HEADERS = 3 * 4096


@dataclass(frozen=True)
class Space:
    """A database file's size, and the bytes of its free blocks."""

    file_bytes: int
    free_bytes: int


def space(con: duckdb.DuckDBPyConnection, catalog: str, path: str) -> Space:
    """The size of the file `path`, attached to `con` as `catalog`, and of the free blocks in it (DuckDB
    counts free blocks past the file's end too, after it truncated them away: those take no space)."""
    block_size, used_blocks = con.execute(
        "SELECT block_size, used_blocks FROM pragma_database_size() WHERE database_name = ?", [catalog]
    ).fetchall()[0]
    size = os.path.getsize(path)
    return Space(file_bytes=size, free_bytes=max(0, size - _HEADERS - int(block_size) * int(used_blocks)))


def should_compact(found: Space, mode: bool | None) -> bool:
    """Whether to compact a file with `found` space: always (True), never (False), or by the free share."""
    if mode is not None:
        return mode
    return found.free_bytes >= MIN_BYTES and found.free_bytes >= SHARE * found.file_bytes


def _megabytes(n: int) -> str:
    return f"{n / 1e6:.2f} MB"


def _blockers(con: duckdb.DuckDBPyConnection, catalog: str) -> list[str]:
    """What in `catalog` COPY FROM DATABASE might not copy faithfully (empty: nothing)."""
    checks = {
        ("sequence", "sequences"): "SELECT count(*) FROM duckdb_sequences() WHERE database_name = ?",
        ("index", "indexes"): "SELECT count(*) FROM duckdb_indexes() WHERE database_name = ?",
        (
            "macro",
            "macros",
        ): "SELECT count(*) FROM duckdb_functions() WHERE database_name = ? AND NOT internal",
        ("type", "types"): "SELECT count(*) FROM duckdb_types() WHERE database_name = ? AND NOT internal",
        ("constraint other than NOT NULL", "constraints other than NOT NULL"): (
            "SELECT count(*) FROM duckdb_constraints() WHERE database_name = ? "
            "AND constraint_type <> 'NOT NULL'"
        ),
    }
    found = []
    for (one, many), sql in checks.items():
        (n,) = con.execute(sql, [catalog]).fetchall()[0]
        if n:
            found.append(f"{n} {one if n == 1 else many}")
    return found


def _connections(con: duckdb.DuckDBPyConnection) -> int:
    (n,) = con.execute("SELECT count FROM duckdb_connection_count()").fetchall()[0]
    return int(n)


def catalog_of(con: duckdb.DuckDBPyConnection, catalog: str) -> dict[str, object]:
    """What a copy must hold as `catalog` does: schemas, tables with their columns and row counts, views."""
    schemas = con.execute(
        "SELECT schema_name, comment FROM duckdb_schemas() WHERE database_name = ? AND NOT internal "
        "ORDER BY ALL",
        [catalog],
    ).fetchall()
    columns = con.execute(
        "SELECT schema_name, table_name, column_index, column_name, data_type, is_nullable, "
        "column_default, comment FROM duckdb_columns() WHERE database_name = ? AND NOT internal "
        "AND table_name IN (SELECT table_name FROM duckdb_tables() WHERE database_name = ?) ORDER BY ALL",
        [catalog, catalog],
    ).fetchall()
    tables = con.execute(
        "SELECT schema_name, table_name, comment FROM duckdb_tables() WHERE database_name = ? ORDER BY ALL",
        [catalog],
    ).fetchall()
    rows = {
        (schema, table): con.execute(
            f"SELECT count(*) FROM {ident(catalog)}.{ident(schema)}.{ident(table)}"
        ).fetchall()[0][0]
        for schema, table, _ in tables
    }
    views = con.execute(
        "SELECT schema_name, view_name, sql, comment FROM duckdb_views() WHERE database_name = ? "
        "AND NOT internal ORDER BY ALL",
        [catalog],
    ).fetchall()
    return {"schemas": schemas, "tables": tables, "columns": columns, "rows": rows, "views": views}


def _remove(path: Path) -> None:
    for leftover in (path, path.with_name(path.name + ".wal")):
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()


def _same_access(old: Path, new: Path) -> str | None:
    """Give `new` the permissions, owner and group of `old` (a team's group-readable file stays so, and
    a root cron job does not take a user's file); why not, when the owner or group cannot be kept."""
    status = old.stat()
    os.chmod(new, stat.S_IMODE(status.st_mode))
    with contextlib.suppress(OSError):
        os.chown(new, status.st_uid, status.st_gid)
    made = new.stat()
    if (made.st_uid, made.st_gid) != (status.st_uid, status.st_gid):
        return (
            f"its owner and group (uid {status.st_uid}, gid {status.st_gid}) could not be kept by this "
            "user; compact it as its owner"
        )
    return None


def _marks(con: duckdb.DuckDBPyConnection, catalog: str) -> tuple[object, ...]:
    """What any commit or checkpoint of another connection changes: the connections, the file's blocks,
    the write-ahead log."""
    blocks = con.execute(
        "SELECT total_blocks, free_blocks, wal_size FROM pragma_database_size() WHERE database_name = ?",
        [catalog],
    ).fetchall()[0]
    return (_connections(con), *blocks)


def _format(con: duckdb.DuckDBPyConnection, catalog: str) -> str:
    """The ATTACH options that keep `catalog`'s storage version (older DuckDBs read what they read
    before) with FILE_BLOCK_SIZE blocks, or its own where smaller (an old 16 KiB file stays so)."""
    block_size, tags = con.execute(
        "SELECT d.block_size, b.tags FROM pragma_database_size() d JOIN duckdb_databases() b "
        "USING (database_name) WHERE database_name = ?",
        [catalog],
    ).fetchall()[0]
    options = f"BLOCK_SIZE {min(int(block_size), FILE_BLOCK_SIZE)}"
    version = (tags or {}).get("storage_version", "")
    if re.fullmatch(r"v\d+\.\d+\.\d+\+?", version):
        options += f", STORAGE_VERSION '{version.rstrip('+')}'"
    return options


def compact(con: duckdb.DuckDBPyConnection, catalog: str, path: str, mode: bool | None) -> str | None:
    """Compact the file `path` (attached to `con`, the sync's own connection, as `catalog`) if `mode`
    and its free space say so; a note for the summary (None: nothing to say)."""
    final = Path(os.path.realpath(path))  # through a symbolic link, the file it names is replaced
    ours = re.compile(rf"\.{re.escape(final.name)}\.compact-[0-9a-f]{{32}}\.(?:tmp|old)(?:\.wal)?")
    for stale in final.parent.glob(f".{glob.escape(final.name)}.compact-*"):
        if ours.fullmatch(stale.name):
            _remove(stale)  # an earlier compaction's, killed: this sync holds the file, no other one runs
    try:
        con.execute(f"CHECKPOINT {ident(catalog)}")
    except duckdb.Error:
        return None  # another connection of this process is writing it: the next sync looks again
    before = space(con, catalog, path)
    if not should_compact(before, mode):
        return None
    free = f"{_megabytes(before.free_bytes)} of its {_megabytes(before.file_bytes)} free"
    skipped = f"{final.name} was not compacted ({free})"
    blockers = _blockers(con, catalog)
    if blockers:
        return (
            f"{skipped}: it holds {', '.join(blockers)}, which a copy might not keep as they "
            "are; compact it yourself with ATTACH and COPY FROM DATABASE"
        )
    if _connections(con) > 1:
        return (
            f"{skipped}: another connection of this process has it open; close it, and the next sync compacts"
        )
    marks = _marks(con, catalog)
    token = uuid.uuid4().hex
    temporary = final.with_name(f".{final.name}.compact-{token}.tmp")
    backup = final.with_name(f".{final.name}.compact-{token}.old")
    try:
        con.execute(f"ATTACH ? AS {_COPY} ({_format(con, catalog)})", [os.fspath(temporary)])
        try:
            con.execute(f"COPY FROM DATABASE {ident(catalog)} TO {_COPY}")
            same = catalog_of(con, catalog) == catalog_of(con, _COPY)
        finally:
            con.execute(f"DETACH {_COPY}")
        why = None if same else "its copy did not hold the same tables, views and rows"
        if why is None and os.path.getsize(temporary) >= before.file_bytes:
            why = "a copy of it was no smaller"
        why = why or _same_access(final, temporary)
        if why is None and _marks(con, catalog) != marks:
            why = _MEANWHILE
        if why is not None:
            _remove(temporary)
            return f"{skipped}: {why}"
        fsync_file(temporary)
        # The old file stays reachable until the new one is known to hold every commit: a connection of
        # this process that joins and writes between the check above and the replace is caught below.
        os.link(final, backup)
        replace(temporary, final)
        try:
            raced = _marks(con, catalog) != marks
        except duckdb.Error:
            raced = True
        if raced:
            replace(backup, final)
            return f"{skipped}: {_MEANWHILE}"
        _remove(backup)
    except (duckdb.Error, OSError) as exc:
        _remove(temporary)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"{skipped}: {first}"
    after = os.path.getsize(final)
    sizes = f"{_megabytes(before.file_bytes)} to {_megabytes(after)}"
    return f"compacted {final.name}: {sizes}, its free blocks given back"
