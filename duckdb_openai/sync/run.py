"""`sync()`: one incremental, resumable sync of the chosen tables into a target.

>>> import duckdb_openai                                                  # doctest: +SKIP
>>> result = duckdb_openai.sync("openai_history.duckdb", ["chat_completions"])   # doctest: +SKIP
>>> print(result)                                                         # doctest: +SKIP

Order of work: everything the user gave is checked first (the tables, `since`, the target, the log and
every id in it, the settings), so bad input fails before any request. Then the target is locked
(`lock.py`), its tables created or evolved, its state read, and each unit of tables (`growth.py`) read
and committed chunk by chunk. The lock is released whatever happens.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any

import duckdb

from duckdb_openai.client import Client
from duckdb_openai.config import Settings
from duckdb_openai.errors import ConfigurationError
from duckdb_openai.sync.bars import Bars
from duckdb_openai.sync.fetch import Api
from duckdb_openai.sync.growth import CHUNK_IDS, CHUNK_ROWS, Context, Unit, prefetch, sync_unit, units
from duckdb_openai.sync.lock import retrying
from duckdb_openai.sync.log import TIME_COLUMNS, Log
from duckdb_openai.sync.parquet import ParquetTarget
from duckdb_openai.sync.plan import plan_unit
from duckdb_openai.sync.summary import SyncResult
from duckdb_openai.sync.tables import TABLES, Logged, SyncTable, resolve_tables
from duckdb_openai.sync.targets import DuckDBTarget, Target

__all__ = ["DEFAULT_TARGET", "parse_since", "sync"]

#: The target when none is named: a DuckDB database file in the working directory.
DEFAULT_TARGET = "openai_history.duckdb"


def parse_since(value: date | datetime | str | None) -> datetime | None:
    """`value` as an aware UTC datetime: a date is its midnight UTC, a naive datetime is UTC, a text is
    ISO 8601 ('2025-01-31', '2025-01-31T12:00:00Z')."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ConfigurationError(
                f"since {value!r} is not a date: pass YYYY-MM-DD (UTC) or an ISO 8601 time"
            ) from None
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    raise ConfigurationError(f"since must be a date, a datetime or an ISO text, not {type(value).__name__}")


def _has_credential(settings: Settings, table: SyncTable) -> bool:
    """Whether `settings` hold the credential the table's family is read with (an admin key for the
    organization's ledger, a key or a token provider for the rest)."""
    if table.resource.family.credential == "admin_key":
        return settings.admin_key is not None
    return settings.api_key is not None or settings.token_provider is not None


def _default_tables(log: Log | None, settings: Settings) -> list[SyncTable]:
    """Every table that needs no log, and those whose log column the log has, of the families whose
    credential was given (the ledger needs the admin key)."""
    chosen = []
    for table in TABLES:
        if not _has_credential(settings, table):
            continue
        root = table
        while root.parent is not None:
            root = next(t for t in TABLES if t.name == root.parent)
        growth = root.growth
        if not isinstance(growth, Logged) or (log is not None and log.has(growth.column)):
            chosen.append(table)
    return chosen


def _open_target(
    target: str | os.PathLike[str] | None,
    parquet: str | os.PathLike[str] | None,
    con: duckdb.DuckDBPyConnection | None,
    *,
    read_only: bool,
    wait: float,
) -> Target:
    if parquet is not None:
        if target is not None or con is not None:
            raise ConfigurationError("pass parquet= alone, or a target (a DuckDB file or catalog), not both")
        return retrying(lambda: ParquetTarget(parquet, read_only=read_only), wait)
    if con is not None:
        if target is None:
            raise ConfigurationError(
                "with con=, name the catalog to sync into: sync('lake', con=con) after ATTACH ... AS lake"
            )
        name = os.fspath(target)
        return retrying(lambda: DuckDBTarget.attached(con, name), wait)
    path = os.fspath(target) if target is not None else DEFAULT_TARGET
    if read_only and not os.path.exists(path):
        # A dry run creates nothing: an empty database stands in for the file to be.
        empty = DuckDBTarget.open_file(":memory:")
        empty.description = f"the DuckDB database {path} (not there yet)"
        return empty
    return retrying(lambda: DuckDBTarget.open_file(path, read_only=read_only), wait)


def _needs_log(unit: Unit, reader: Log | None) -> ConfigurationError:
    """The error for a table asked for by name that reads a log's ids, without them."""
    growth = unit.top.growth
    assert isinstance(growth, Logged)
    names = [unit.top.name, *(t.name for t in unit.members)]
    what = f"the table {names[0]} needs" if len(names) == 1 else f"the tables {', '.join(names)} need"
    where = "no log was given" if reader is None else f"the log {reader.name!r} has none"
    return ConfigurationError(
        f"{what} a log with a {growth.column} column, and {where}: pass log= (--log FILE, or a table of "
        f"the target database) with that column, or leave {'it' if len(names) == 1 else 'them'} out "
        "(nothing was sent)"
    )


def sync(
    target: str | os.PathLike[str] | None = None,
    tables: Iterable[str | SyncTable] | None = None,
    *,
    parquet: str | os.PathLike[str] | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
    log: Any = None,
    since: date | datetime | str | None = None,
    dry_run: bool = False,
    compact: bool | None = None,
    wait: float = 0.0,
    now: datetime | None = None,
    client: Client | None = None,
    chunk_rows: int = CHUNK_ROWS,
    chunk_ids: int = CHUNK_IDS,
    **settings: Any,
) -> SyncResult:
    """Sync `tables` (names, or `SyncTable` declarations; default: every table that needs no log, and
    those the log serves) from the API into `target`, reading only what is new; returns the summary.

    Target: a DuckDB database file (default `openai_history.duckdb`, created if missing); with `con=`,
    the name of a catalog attached to that connection (MotherDuck, DuckLake, Postgres through DuckDB,
    another DuckDB file); or `parquet=DIR` for a Parquet dataset partitioned by UTC day.

    `log`: the ids of responses, conversations or threads (and runs) to read, which the API cannot
    list: a table or view name of the target's connection, a file DuckDB reads, or a pyarrow table (see
    `log.py`). `since`: bounds the first backfill of a table (chat completions created from then on;
    buckets from then on) and chooses the log's rows from then on, if it has a time column. `dry_run`:
    print what would be read, send nothing, write nothing. `compact`: rewrite the DuckDB file the sync
    opened without its free blocks after the sync (None: when they make up a fifth of it; see
    `compact.py`). `wait`: seconds to wait for another sync of
    the target to finish before giving up. `now`: the time that decides which bucket has ended (default:
    the current time). Other keyword arguments are the client's settings (`api_key`, `base_url`,
    `max_concurrency`, `progress`, ...), as `Client` takes them; `cache` defaults to False (the target
    keeps the data), or pass a `client`.
    """
    started = time.perf_counter()
    when = parse_since(since)
    clock = now if now is not None else datetime.now(UTC)
    if clock.tzinfo is None:
        raise ConfigurationError("now must be an aware datetime (with a time zone)")
    if isinstance(wait, bool) or not isinstance(wait, int | float) or wait < 0:
        raise ConfigurationError(f"wait must be a number of seconds >= 0, not {wait!r}")
    for name, value in (("chunk_rows", chunk_rows), ("chunk_ids", chunk_ids)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigurationError(f"{name} must be a whole number of at least 1, not {value!r}")
    if compact is not None and not isinstance(compact, bool):
        raise ConfigurationError(
            f"compact must be True, False or None (when a fifth is free), not {compact!r}"
        )
    if compact and (parquet is not None or con is not None):
        raise ConfigurationError(
            "compact=True applies to a DuckDB file the sync opens itself; a Parquet dataset has nothing to "
            "compact, and an attached catalog is compacted by whoever attached it"
        )
    if client is not None and settings:
        raise ConfigurationError("pass the settings or a client, not both")
    asked = list(tables) if tables is not None else None
    if asked is not None:
        # An unknown name, or a table that needs a log when none was given, fails before the target opens.
        for unit in units(resolve_tables(asked)[0]):
            if log is None and isinstance(unit.top.growth, Logged):
                raise _needs_log(unit, None)
    own_client = client is None
    if client is None:
        settings.setdefault("cache", False)
        client = Client(**settings)
    destination = _open_target(target, parquet, con, read_only=dry_run, wait=wait)
    result = SyncResult(destination.description, dry_run=dry_run)
    reader: Log | None = None
    api = Api(client)
    bars = Bars("off" if dry_run else client.settings.progress, lambda: api.requests)
    try:
        if log is not None:
            reader = Log(destination.con, log, when)
        defaults = _default_tables(reader, client.settings) if asked is None else None
        chosen, added = resolve_tables(asked if asked is not None else defaults)
        if asked is None and client.settings.admin_key is None:
            result.notes.append(
                "the organization's ledger (usage, costs, audit logs, projects, users) was left out: it "
                "needs an admin key (admin_key= or OPENAI_ADMIN_KEY)"
            )
        result.notes += [f"also syncing {note}" for note in added]
        for unit in units(chosen):
            growth = unit.top.growth
            if reader is not None and isinstance(growth, Logged) and reader.has(growth.column):
                reader.rows([growth.column])  # every id checked before any request
            elif isinstance(growth, Logged):
                # Only a table asked for by name gets here (the default ones need their log column).
                raise _needs_log(unit, reader)
        if when is not None and reader is not None and not reader.narrowed:
            result.notes.append(
                f"since does not narrow the log {reader.name!r}, which has no time column "
                f"({', '.join(TIME_COLUMNS)}): every id in it is read"
            )
        if not dry_run:
            result.notes += destination.prepare(chosen)
        context = Context(
            api=api,
            target=destination,
            state=destination.read_state(),
            tables={t.name: t for t in chosen},
            result=result,
            bars=bars,
            log=reader,
            since=when,
            now=clock,
            chunk_rows=chunk_rows,
            chunk_ids=chunk_ids,
            final_after=client.settings.final_after,
        )
        if not dry_run:
            prefetch(context, units(chosen), client)
        for unit in units(chosen):
            if dry_run:
                result.plan += plan_unit(context, unit)
            else:
                sync_unit(context, unit)
        if dry_run and compact:
            result.notes.append("compact=True: a dry run compacts nothing")
        if not dry_run:
            if reader is not None:
                reader.close()  # its connection, if any, would keep the file from being compacted
                reader = None
            note = destination.compact(compact)
            if note is not None:
                result.notes.append(note)
    finally:
        bars.close()
        api.close()
        if own_client:
            client.close()
        if reader is not None:
            reader.close()
        destination.close()
    result.seconds = time.perf_counter() - started
    return result
