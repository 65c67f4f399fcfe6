"""Where a sync writes: a DuckDB database file, a catalog attached to a connection (MotherDuck,
DuckLake, Postgres through DuckDB; anything DuckDB can write with plain SQL), or a Parquet dataset
(`parquet.py`).

Every target does the same four things: create or evolve the tables (`prepare`), read the state
(`read_state`), answer lookups over what it holds (`lookup`), and write one `Batch` atomically
(`commit`). In a DuckDB target a batch is one transaction: each table's upsert (`upsert.py`), the state
entries, and for an attached catalog the lease's heartbeat, so `kill -9` at any point leaves either the
whole batch or none of it. (DuckDB allows a transaction to write one attached database only, which is
why the state lives in the target's own catalog.)

Schema evolution (`evolve`): a column the package declares and the table lacks is added with
`ALTER TABLE ... ADD COLUMN`; a struct that gained fields is widened with `ALTER ... SET DATA TYPE`;
nothing is dropped; any other type change is a ConfigurationError naming the column and both types.

>>> target = DuckDBTarget.open_file(":memory:")  # doctest: +SKIP
"""

from __future__ import annotations

import abc
import contextlib
import os
import socket
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import pyarrow as pa

from duckdb_openai.errors import ConfigurationError
from duckdb_openai.schema import duckdb_type
from duckdb_openai.sync.compact import FILE_BLOCK_SIZE, compact
from duckdb_openai.sync.lock import BusyError, describe_holder, duckdb_lock_holder, held, holder
from duckdb_openai.sync.state import FORMAT_VERSION, LEASE_SCOPE, STATE_TABLE, Batch, State, decode, encode
from duckdb_openai.sync.tables import Buckets, SyncTable
from duckdb_openai.sync.upsert import Counts, ident, upsert

__all__ = ["LEASE_S", "DuckDBTarget", "Target", "arrow_schema", "evolution", "widens"]

#: A lease (an attached catalog's lock) not renewed for this long is taken over by another machine's sync;
#: on the same machine, a lease whose process is gone is taken over at once.
LEASE_S = 15 * 60.0
_INCOMING = "__duckdb_openai_sync_incoming"
_PROBE = "__duckdb_openai_sync_probe"
_VALUES = "__duckdb_openai_sync_values"
_STATE_SCHEMA = pa.schema([("table_name", pa.string()), ("scope", pa.string()), ("value", pa.string())])


def arrow_schema(con: duckdb.DuckDBPyConnection, relation: str) -> pa.Schema:
    """The Arrow schema DuckDB gives for `relation`'s columns (its own rendering of each type, so two
    relations' schemas compare equal when DuckDB holds the same types)."""
    schema: pa.Schema = con.sql(f"SELECT * FROM {relation} LIMIT 0").arrow().schema
    return schema


def declared_schema(con: duckdb.DuckDBPyConnection, schema: pa.Schema) -> pa.Schema:
    """`schema` as DuckDB renders it (see `arrow_schema`)."""
    con.register(_PROBE, schema.empty_table())
    try:
        return arrow_schema(con, _PROBE)
    finally:
        con.unregister(_PROBE)


def widens(old: pa.DataType, new: pa.DataType) -> bool:
    """Whether a column of type `old` can become `new` keeping every value: equal, or structs that only
    gained fields (at any depth, inside lists and maps too)."""
    if old.equals(new):
        return True
    if pa.types.is_struct(old) and pa.types.is_struct(new):
        names = {f.name: f.type for f in new}
        return all(f.name in names and widens(f.type, names[f.name]) for f in old)
    if pa.types.is_list(old) and pa.types.is_list(new):
        return widens(old.value_type, new.value_type)
    if pa.types.is_map(old) and pa.types.is_map(new):
        return old.key_type.equals(new.key_type) and widens(old.item_type, new.item_type)
    return False


def evolution(table: str, have: pa.Schema, want: pa.Schema) -> tuple[list[pa.Field], list[pa.Field]]:
    """The columns of `want` that `have` lacks, and those whose type widens; ConfigurationError for a
    column whose type changed otherwise."""
    added: list[pa.Field] = []
    widened: list[pa.Field] = []
    for f in want:
        index = have.get_field_index(f.name)
        if index < 0:
            added.append(f)
            continue
        old = have.field(index).type
        if old.equals(f.type):
            continue
        if widens(old, f.type):
            widened.append(f)
            continue
        raise ConfigurationError(
            f"the column {table}.{f.name} holds {old} in the target, and this version of the package "
            f"writes {f.type}: the types are not compatible. Sync into a new target, or convert the column "
            "yourself (nothing was written)"
        )
    return added, widened


class Target(abc.ABC):
    """A place a sync writes to; see the module docstring."""

    #: What messages call it: "the DuckDB database openai_history.duckdb", "the Parquet dataset DIR".
    description: str
    #: A connection for lookups and for reading the user's log.
    con: duckdb.DuckDBPyConnection

    @abc.abstractmethod
    def prepare(self, tables: Sequence[SyncTable]) -> list[str]:
        """Create the state and the tables, or evolve them; a note per column added or widened."""

    @abc.abstractmethod
    def read_state(self) -> State: ...

    @abc.abstractmethod
    def relation(self, table: SyncTable) -> str | None:
        """SQL for the rows `table` holds, or None when it holds none yet."""

    @abc.abstractmethod
    def commit(self, batch: Batch, tables: Mapping[str, SyncTable]) -> dict[str, Counts]:
        """Write `batch` atomically (or, for files, so that a rerun converges); counts per table."""

    @abc.abstractmethod
    def close(self) -> None: ...

    def compact(self, mode: bool | None) -> str | None:
        """Give back the space a sync left free, where the target has such a thing (`compact.py`); a
        note for the summary, or None."""
        return None

    def lookup(
        self, table: SyncTable, columns: Sequence[str], column: str, values: Sequence[str]
    ) -> pa.Table:
        """The `columns` of the rows of `table` whose `column` is one of `values`."""
        relation = self.relation(table)
        fields = [table.schema.field(c) for c in columns]
        if relation is None or not values:
            return pa.schema(fields).empty_table()
        self.con.register(_VALUES, pa.table({"value": pa.array(list(values), pa.string())}))
        try:
            selected = ", ".join(f"t.{ident(c)}" for c in columns)
            reader = self.con.sql(
                f"SELECT {selected} FROM {relation} t SEMI JOIN {_VALUES} v ON t.{ident(column)} = v.value"
            ).arrow()
            rows = reader.read_all() if isinstance(reader, pa.RecordBatchReader) else reader
        finally:
            self.con.unregister(_VALUES)
        return rows.cast(pa.schema(fields))

    def __enter__(self) -> Target:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _catalog_path(con: duckdb.DuckDBPyConnection, catalog: str) -> tuple[str | None, bool] | None:
    rows = con.execute(
        "SELECT path, readonly FROM duckdb_databases() WHERE database_name = ?", [catalog]
    ).fetchall()
    return (rows[0][0], bool(rows[0][1])) if rows else None


class DuckDBTarget(Target):
    """A catalog of a DuckDB connection: the file it opened itself (`open_file`), or one the user
    attached (`attached`)."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        catalog: str,
        *,
        description: str,
        lock_key: str,
        own: bool,
        lease: bool,
        schema: str | None = None,
    ) -> None:
        self.con = con
        self.catalog = catalog
        self.description = description
        #: The file this sync opened itself for writing (None: an attached catalog, or read-only).
        self.path: str | None = None
        #: Whether this sync made that file: it is removed again if the sync ends before `prepare`.
        self._made = False
        self._prepared = False
        self._own = own
        self._lease = lease
        self._leased = False
        self._lock = held(lock_key, description)
        self._lock.__enter__()
        try:
            self.schema = schema or self._default_schema()
        except BaseException:
            self.close()
            raise

    # -- opening -----------------------------------------------------------------------------------------

    @classmethod
    def open_file(cls, path: str | os.PathLike[str], *, read_only: bool = False) -> DuckDBTarget:
        """The database file at `path` (created if missing), opened by this sync; BusyError when another
        process holds it."""
        where = os.fspath(path)
        description = f"the DuckDB database {where}"
        made = not read_only and where != ":memory:" and not os.path.exists(where)
        try:
            if made:
                # A new file gets FILE_BLOCK_SIZE blocks (DuckDB's default is 256 KiB; see compact.py).
                # Made by a connection of its own, closed at once, so the sync's connection (and any
                # other in this process) has the default settings.
                duckdb.connect(where, config={"default_block_size": str(FILE_BLOCK_SIZE)}).close()
            con = duckdb.connect(where, read_only=read_only)
        except duckdb.Error as exc:
            other = duckdb_lock_holder(exc)
            if other is None:
                raise ConfigurationError(f"cannot open {description}: {exc}") from None
            raise BusyError(
                f"{description} is open in another process ({other}): another sync is writing it, or a "
                "program holds it open. Wait for it to finish, or pass wait= seconds (--wait) to wait for it"
            ) from None
        try:
            catalog = con.execute("SELECT current_database()").fetchall()[0][0]
            target = cls(
                con,
                catalog,
                description=description,
                lock_key=f"file:{os.path.realpath(where)}",
                own=True,
                lease=False,
            )
            target.path = None if where == ":memory:" or read_only else where
            target._made = made
            return target
        except BaseException:
            con.close()
            raise

    @classmethod
    def attached(
        cls, con: duckdb.DuckDBPyConnection, catalog: str, *, schema: str | None = None
    ) -> DuckDBTarget:
        """The catalog `catalog` attached to `con`; a lease row in its state table keeps other processes'
        syncs out."""
        found = _catalog_path(con, catalog)
        if found is None:
            names = [row[0] for row in con.execute("SELECT database_name FROM duckdb_databases()").fetchall()]
            raise ConfigurationError(
                f"no catalog {catalog!r} is attached to the connection (its catalogs: {', '.join(names)}); "
                f"ATTACH it first, e.g. ATTACH 'history.duckdb' AS {catalog}"
            )
        path, read_only = found
        if read_only:
            raise ConfigurationError(f"the catalog {catalog!r} is attached READ_ONLY; a sync writes into it")
        where = f"path:{os.path.realpath(path)}" if path else f"catalog:{id(con)}:{catalog}"
        return cls(
            con,
            catalog,
            description=f"the catalog {catalog!r}" + (f" ({path})" if path else ""),
            lock_key=where,
            own=False,
            lease=True,
            schema=schema,
        )

    def _default_schema(self) -> str:
        schemas = {
            row[0]
            for row in self.con.execute(
                "SELECT schema_name FROM duckdb_schemas() WHERE database_name = ?", [self.catalog]
            ).fetchall()
        }
        for name in ("main", "public"):
            if name in schemas:
                return name
        raise ConfigurationError(
            f"{self.description} has neither a 'main' nor a 'public' schema; pass schema= to name one"
        )

    # -- names -------------------------------------------------------------------------------------------

    def ref(self, name: str) -> str:
        return f"{ident(self.catalog)}.{ident(self.schema)}.{ident(name)}"

    def _exists(self, name: str) -> bool:
        return bool(
            self.con.execute(
                "SELECT count(*) FROM duckdb_tables() WHERE database_name = ? AND schema_name = ? "
                "AND table_name = ?",
                [self.catalog, self.schema, name],
            ).fetchall()[0][0]
        )

    def relation(self, table: SyncTable) -> str | None:
        return self.ref(table.name) if self._exists(table.name) else None

    # -- state and lease ---------------------------------------------------------------------------------

    def _state_ref(self) -> str:
        return self.ref(STATE_TABLE)

    def read_state(self) -> State:
        if not self._exists(STATE_TABLE):
            return State()
        rows = self.con.execute(f"SELECT table_name, scope, value FROM {self._state_ref()}").fetchall()
        entries = {(t, s): decode(v) for t, s, v in rows if not (t == "" and s == LEASE_SCOPE)}
        fmt = entries.get(("", "format"))
        if fmt is not None and fmt.get("version", 0) > FORMAT_VERSION:
            raise ConfigurationError(
                f"{self.description} was synced by a newer version of duckdb-openai (state format "
                f"{fmt['version']}); upgrade the package to sync into it"
            )
        return State(entries)

    def _write_state(self, changes: Mapping[tuple[str, str], Any]) -> None:
        if not changes:
            return
        keys = pa.table(
            {
                "table_name": [t for t, _ in changes],
                "scope": [s for _, s in changes],
                "value": [None if v is None else encode(v) for v in changes.values()],
            },
            schema=_STATE_SCHEMA,
        )
        self.con.register(_INCOMING, keys)
        try:
            self.con.execute(
                f"DELETE FROM {self._state_ref()} AS t WHERE EXISTS (SELECT 1 FROM {_INCOMING} i "
                "WHERE i.table_name = t.table_name AND i.scope = t.scope)"
            )
            self.con.execute(
                f"INSERT INTO {self._state_ref()} SELECT table_name, scope, value FROM {_INCOMING} "
                "WHERE value IS NOT NULL"
            )
        finally:
            self.con.unregister(_INCOMING)

    def _take_lease(self) -> None:
        """Write this sync's lease, unless a live one of another sync is there (BusyError naming it)."""
        me = holder() | {"heartbeat": datetime.now(UTC).isoformat(timespec="seconds")}
        with self._transaction():
            rows = self.con.execute(
                f"SELECT value FROM {self._state_ref()} WHERE table_name = '' AND scope = ?", [LEASE_SCOPE]
            ).fetchall()
            if rows:
                other = decode(rows[0][0])
                if _alive(other):
                    raise BusyError(
                        f"{self.description} is being synced by {describe_holder(other)} (its lease in "
                        f"{STATE_TABLE} was renewed at {other.get('heartbeat')}); wait for it to finish, or "
                        "pass wait= seconds (--wait) to wait for it"
                    )
            self._write_state({("", LEASE_SCOPE): me})
        self._leased = True

    # -- preparing ---------------------------------------------------------------------------------------

    def prepare(self, tables: Sequence[SyncTable]) -> list[str]:
        self._prepared = True
        self.con.execute(
            f"CREATE TABLE IF NOT EXISTS {self._state_ref()} "
            "(table_name VARCHAR NOT NULL, scope VARCHAR NOT NULL, value VARCHAR NOT NULL)"
        )
        if self._lease and not self._leased:
            self._take_lease()
        notes: list[str] = []
        for table in tables:
            want = declared_schema(self.con, table.schema)
            if not self._exists(table.name):
                columns = ", ".join(f"{ident(f.name)} {duckdb_type(f.type)}" for f in table.schema)
                self.con.execute(f"CREATE TABLE IF NOT EXISTS {self.ref(table.name)} ({columns})")
                continue
            added, widened = evolution(table.name, arrow_schema(self.con, self.ref(table.name)), want)
            for f in added:
                declared = table.schema.field(f.name)
                kind = duckdb_type(declared.type)
                self.con.execute(f"ALTER TABLE {self.ref(table.name)} ADD COLUMN {ident(f.name)} {kind}")
                notes.append(f"{table.name}: added the column {f.name}")
            for f in widened:
                declared = table.schema.field(f.name)
                try:
                    self.con.execute(
                        f"ALTER TABLE {self.ref(table.name)} ALTER COLUMN {ident(f.name)} "
                        f"SET DATA TYPE {duckdb_type(declared.type)}"
                    )
                except duckdb.Error as exc:
                    raise ConfigurationError(
                        f"the column {table.name}.{f.name} gained fields in this version of the package, "
                        f"and {self.description} could not widen it: {exc}"
                    ) from None
                notes.append(f"{table.name}: widened the column {f.name}")
        with self._transaction():
            if self.read_state().get("", "format") is None:
                self._write_state({("", "format"): {"version": FORMAT_VERSION}})
        return notes

    # -- committing --------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        self.con.execute("BEGIN TRANSACTION")
        try:
            yield
        except BaseException:
            with contextlib.suppress(duckdb.Error):
                self.con.execute("ROLLBACK")
            raise
        self.con.execute("COMMIT")

    def commit(self, batch: Batch, tables: Mapping[str, SyncTable]) -> dict[str, Counts]:
        counts: dict[str, Counts] = {}
        with self._transaction():
            for name in [*batch.rows, *(n for n in batch.replace_from if n not in batch.rows)]:
                table = tables[name]
                rows = batch.rows.get(name, table.schema.empty_table())
                start = batch.replace_from.get(name)
                growth = table.growth
                replace = (growth.start, start) if start is not None and isinstance(growth, Buckets) else None
                self.con.register(_INCOMING, rows)
                try:
                    counts[name] = upsert(
                        self.con,
                        self.ref(name),
                        _INCOMING,
                        key=table.key,
                        columns=table.schema.names,
                        replace=replace,
                    )
                finally:
                    self.con.unregister(_INCOMING)
            changes = dict(batch.state)
            if self._leased:
                changes[("", LEASE_SCOPE)] = holder() | {
                    "heartbeat": datetime.now(UTC).isoformat(timespec="seconds")
                }
            self._write_state(changes)
        return counts

    def compact(self, mode: bool | None) -> str | None:
        if self.path is None:
            return None
        return compact(self.con, self.catalog, self.path, mode)

    def close(self) -> None:
        try:
            if self._made and not self._prepared and self.path is not None:
                # A file this sync made and never wrote to (it failed first, on its input): unlinked
                # while still held, so no other sync can have opened it meanwhile.
                for leftover in (self.path, self.path + ".wal"):
                    with contextlib.suppress(OSError):
                        os.unlink(leftover)
            if self._leased:
                with contextlib.suppress(duckdb.Error), self._transaction():
                    self._write_state({("", LEASE_SCOPE): None})
                self._leased = False
            if self._own:
                with contextlib.suppress(duckdb.Error):
                    self.con.close()
        finally:
            self._lock.__exit__(None, None, None)


def _alive(lease: Mapping[str, Any]) -> bool:
    """Whether the sync holding `lease` may still be running."""
    if lease.get("host") == socket.gethostname():
        pid = lease.get("pid")
        if not isinstance(pid, int):
            return False
        if pid == os.getpid():
            return False  # a lease this process left behind (its sync was interrupted)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    try:
        beat = datetime.fromisoformat(str(lease.get("heartbeat")))
    except ValueError:
        return False
    return datetime.now(UTC) - beat < timedelta(seconds=LEASE_S)
