"""How each growth kind (`tables.py`) reads what is new and commits it: the requests, the cursors, and
what goes into each `Batch`.

A unit is a top table and the tables fetched with it (its children, and lists per id of the same log):
chat completions with their messages, responses with their input items, conversations with their
items, runs with their steps and their threads' messages. A unit commits in chunks (`CHUNK_ROWS` rows
of a list, `CHUNK_IDS` ids of a log), each chunk's rows with the state that says they are there, so a
killed sync loses at most one chunk's work.

Requests of one table never overlap another table's, so each table's request count is exact.

What a rerun with nothing new sends, per unit:

- `Whole`: the list's pages (one request for up to 100 rows);
- `Cursor` (asc): one request `after=<cursor>`, which returns the re-read window (one request per 100
  of its rows); a chat completion new to the target adds one request for its messages;
- `Buckets`: the pages of the re-read buckets and the current one;
- `Logged` items: one request per id not final in the target (none once all are final);
- `Logged` lists: one request per id (`after=<its last object>`), and one per object not yet final
  (an unfinished run, read again with its steps and messages).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from duckdb_openai.client import Client
from duckdb_openai.errors import APIError, BadRequestError, NotFoundError
from duckdb_openai.resources.base import Request
from duckdb_openai.sync.bars import Bars
from duckdb_openai.sync.fetch import Api
from duckdb_openai.sync.log import Log
from duckdb_openai.sync.state import Batch, State
from duckdb_openai.sync.summary import SyncResult
from duckdb_openai.sync.tables import Buckets, Children, Cursor, Logged, SyncTable, Whole
from duckdb_openai.sync.targets import Target
from duckdb_openai.sync.upsert import dedupe

__all__ = [
    "CHUNK_IDS",
    "CHUNK_ROWS",
    "Context",
    "Known",
    "Unit",
    "bucket_start",
    "finals",
    "gone",
    "is_final",
    "statuses",
    "sync_unit",
    "units",
]

#: Rows of a list read before a commit.
#: The most lists read at once ahead of their turn (`prefetch`): the ledger's sixteen tables.
PREFETCH_THREADS = 16
CHUNK_ROWS = 5_000
#: Ids of a log read before a commit.
CHUNK_IDS = 1_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Unit:
    """A top table and the tables fetched with it, in declaration order."""

    top: SyncTable
    members: tuple[SyncTable, ...]

    def member(self, growth: type) -> list[SyncTable]:
        return [t for t in self.members if isinstance(t.growth, growth)]


def units(tables: Sequence[SyncTable]) -> list[Unit]:
    """The tables grouped by top table (a table whose parent is not synced is its own top)."""
    by_name = {t.name: t for t in tables}

    def top(table: SyncTable) -> SyncTable:
        return top(by_name[table.parent]) if table.parent in by_name else table

    groups: dict[str, list[SyncTable]] = {}
    for table in tables:
        groups.setdefault(top(table).name, []).append(table)
    return [
        Unit(by_name[name], tuple(t for t in members if t.name != name)) for name, members in groups.items()
    ]


@dataclass
class Context:
    """What a unit's sync uses: the API, the target and its state, the log, the clock, and the summary."""

    api: Api
    target: Target
    state: State
    tables: dict[str, SyncTable]
    result: SyncResult
    bars: Bars
    log: Log | None = None
    since: datetime | None = None
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    chunk_rows: int = CHUNK_ROWS
    chunk_ids: int = CHUNK_IDS
    #: Seconds past its expiry after which an unfinished object counts as final (`is_final`).
    final_after: float = 0.0
    #: Lists already read concurrently (`prefetch`), by table: the request, its batches, its requests, and
    #: the server's clock when it was read.
    prefetched: dict[str, Future[tuple[Request, list[pa.RecordBatch], int, float]]] = field(
        default_factory=dict
    )
    #: The server's clock when each table's list was last read (its Date header): which buckets had ended.
    server_time: dict[str, float] = field(default_factory=dict)

    # -- requests ----------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _counted(self, name: str) -> Iterator[None]:
        """Count the requests sent during the block for `name`, in the summary and on its bar."""
        start = self.api.requests
        try:
            with self.bars.requests_of(name):
                yield
        finally:
            self.result.table(name).requests += self.api.requests - start

    def fetch(self, name: str, requests: Sequence[Request]) -> list[pa.Table | None]:
        """Each request's rows for `name` (None: the API no longer has it, 404). A list whose `after`
        cursor the API refuses (400: that object was deleted) is read again from its start."""
        if not requests:
            return []
        with self._counted(name):
            outcomes = self.api.many(requests)
            again = [
                i
                for i, (r, o) in enumerate(zip(requests, outcomes, strict=True))
                if isinstance(o, BadRequestError) and r.after is not None
            ]
            if again:
                retried = self.api.many([dataclasses.replace(requests[i], after=None) for i in again])
                for i, outcome in zip(again, retried, strict=True):
                    outcomes[i] = outcome
        tables: list[pa.Table | None] = []
        for outcome in outcomes:
            if isinstance(outcome, NotFoundError):
                tables.append(None)
            elif isinstance(outcome, APIError):
                raise outcome
            else:
                tables.append(outcome)
        self.bars.rows(name, sum(t.num_rows for t in tables if t is not None))
        return tables

    def stream(self, name: str, request: Request, *, sequential: bool = False) -> Iterator[pa.RecordBatch]:
        """The list's batches, each page's requests counted for `name` (nothing else is counted while a
        page is awaited, so the children fetched between pages count for themselves)."""
        ahead = self.prefetched.pop(name, None)
        if ahead is not None:
            asked, batches, sent, server = ahead.result()
            if asked == request:
                self.server_time[name] = server
                self.result.table(name).requests += sent
                for batch in batches:
                    self.bars.rows(name, batch.num_rows)
                    yield batch
                return
        pages = self.api.stream(request, sequential=sequential)
        try:
            while True:
                with self._counted(name):
                    batch = next(pages, None)
                self.server_time[name] = self.api.client.server_time()
                if batch is None:
                    return
                self.bars.rows(name, batch.num_rows)
                yield batch
        finally:
            pages.close()

    # -- writing -----------------------------------------------------------------------------------------

    def commit(self, batch: Batch) -> None:
        if batch.empty:
            return
        for name, rows in list(batch.rows.items()):
            table = self.tables[name]
            batch.rows[name] = dedupe(rows.select(table.schema.names), table.key)
        counts = self.target.commit(batch, self.tables)
        self.state.apply(batch.state)
        for name, count in counts.items():
            self.result.table(name).counts += count

    def present(
        self, table: SyncTable, columns: Sequence[str], column: str, values: Sequence[str]
    ) -> pa.Table:
        return self.target.lookup(table, columns, column, values)


def _rows(tables: Sequence[pa.Table | None], schema: pa.Schema) -> pa.Table:
    found = [t for t in tables if t is not None and t.num_rows]
    return pa.concat_tables(found) if found else schema.empty_table()


def _time(value: Any) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _floor(moment: datetime, width: timedelta) -> datetime:
    """The start of the bucket of `width` (counted from the Unix epoch, UTC) holding `moment`."""
    steps = math.floor((moment - _EPOCH) / width)
    return _EPOCH + steps * width


@dataclass(frozen=True)
class Known:
    """A row the target holds: the key of its list (a run's thread), and whether it is final."""

    owner: str | None
    final: bool


def is_final(ctx: Context, table: SyncTable, status: str | None, expires: datetime | None) -> bool:
    """Whether a row is final: its status is terminal, or it expired more than `final_after` ago and
    the API still calls it unfinished (a run not finished by its `expires_at` expires; the package's
    cache assumes the same, `Settings.final_after`; 0 turns the assumption off)."""
    if status is not None and status in table.terminal:
        return True
    return (
        expires is not None and ctx.final_after > 0 and expires < ctx.now - timedelta(seconds=ctx.final_after)
    )


def finals(ctx: Context, table: SyncTable, rows: pa.Table) -> list[bool]:
    """`is_final` of each row of `rows` (a table of `table`'s columns)."""
    count = rows.num_rows
    status = rows.column(table.status).to_pylist() if table.status else [None] * count
    expires = rows.column(table.expires).to_pylist() if table.expires else [None] * count
    return [is_final(ctx, table, s, e) for s, e in zip(status, expires, strict=True)]


def statuses(ctx: Context, table: SyncTable, column: str, values: Sequence[str]) -> dict[str, Known]:
    """Each row of `table` whose `column` is one of `values`, by id: its list's key and finality."""
    id_column = table.resource.item_column
    owner = table.resource.keys[0].name if table.resource.keys else None
    columns = list(dict.fromkeys(c for c in (id_column, owner, table.status, table.expires) if c))
    found = ctx.present(table, columns, column, values)
    owners = found.column(owner).to_pylist() if owner else [None] * found.num_rows
    return {
        item: Known(who, final)
        for item, who, final in zip(
            found.column(id_column).to_pylist(), owners, finals(ctx, table, found), strict=True
        )
    }


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# -- children ------------------------------------------------------------------------------------------


def _child_requests(child: SyncTable, parents: pa.Table) -> list[Request]:
    assert isinstance(child.growth, Children)
    columns = {key: parents.column(parent_column).to_pylist() for key, parent_column in child.growth.keys}
    return [
        child.resource.bind_list({key: values[i] for key, values in columns.items()}, {"sort": "asc"})
        for i in range(parents.num_rows)
    ]


def _fetch_children(
    ctx: Context, unit: Unit, batch: Batch, fetched: pa.Table, new: set[str], final: set[str]
) -> None:
    """Add to `batch` the lists of the children of `fetched` (the top table's rows just read): for new
    parents, final ones, or every one read ('open'), as each child declares."""
    top = unit.top
    ids = fetched.column(top.resource.item_column).to_pylist() if fetched.num_rows else []
    for child in unit.member(Children):
        assert isinstance(child.growth, Children)
        if child.growth.parent != top.name:
            continue
        when = child.growth.when
        chosen = [
            i for i, item in enumerate(ids) if when == "open" or item in (new if when == "new" else final)
        ]
        parents = fetched.take(pa.array(chosen, pa.int64())) if chosen else fetched.slice(0, 0)
        tables = ctx.fetch(child.name, _child_requests(child, parents))
        batch.add(child.name, _rows(tables, child.resource.schema))


# -- list units: Whole, Cursor, Buckets -------------------------------------------------------------------


def _present_ids(ctx: Context, table: SyncTable, ids: list[str]) -> set[str]:
    column = table.resource.item_column
    assert column is not None  # a table read by ids: its rows carry them
    found = ctx.present(table, [column], column, ids)
    return set(found.column(0).to_pylist())


def _list_chunk(ctx: Context, unit: Unit, rows: pa.Table, state: dict[tuple[str, str], Any]) -> None:
    """Commit a chunk of the top list's rows, with the children of the rows new to the target."""
    top = unit.top
    batch = Batch()
    if rows.num_rows:
        ids = rows.column(top.resource.item_column).to_pylist()
        new = set(ids) - _present_ids(ctx, top, ids)
        _fetch_children(ctx, unit, batch, rows, new, set())
    batch.add(top.name, rows)
    batch.state.update(state)
    ctx.commit(batch)


def _whole_request(ctx: Context, top: SyncTable) -> Request:
    assert isinstance(top.growth, Whole)
    return top.resource.bind_list({}, dict(top.growth.options))


def _whole(ctx: Context, unit: Unit) -> None:
    top = unit.top
    request = _whole_request(ctx, top)
    rows = _rows(
        [pa.Table.from_batches(list(ctx.stream(top.name, request)), top.resource.schema)], top.resource.schema
    )
    _list_chunk(ctx, unit, rows, {})


def _cursor(ctx: Context, unit: Unit) -> None:
    top = unit.top
    growth = top.growth
    assert isinstance(growth, Cursor)
    saved = ctx.state.get(top.name) or {}
    after: str | None = saved.get("after")
    newest = _time(saved.get("newest"))
    id_column, time_column = top.resource.item_column, growth.time
    if growth.order == "asc" and after is not None:
        try:
            _cursor_ascending(ctx, unit, after, newest)
            return
        except BadRequestError:
            pass  # the cursor's object was deleted: read newest-first down to the window instead
    if growth.order == "asc" and newest is None and ctx.since is None:
        _cursor_ascending(ctx, unit, None, None)
        return
    stop = newest - growth.window if newest is not None else ctx.since
    # Newest first: the `sort` option, or the list's one order (audit logs list newest first).
    order = {} if top.resource.order_option is None else {top.resource.order_option: "desc"}
    request = top.resource.bind_list({}, order)
    seen: list[tuple[datetime, str]] = []
    below: tuple[datetime, str] | None = None
    buffer: list[pa.Table] = []
    count = 0
    for batch in ctx.stream(top.name, request, sequential=True):
        table = pa.Table.from_batches([batch], top.resource.schema)
        times = table.column(time_column)
        done = False
        if stop is not None and table.num_rows:
            keep = pc.fill_null(pc.greater_equal(times, pa.scalar(stop, times.type)), True)
            done = not pc.all(keep).as_py()
            if done:
                # The first row older than the stop: already in the target, and a cursor the next
                # sync can read onward from.
                first = pc.index(keep, False).as_py()
                below = (times[first].as_py(), table.column(id_column)[first].as_py())
            table = table.filter(keep)
        seen.extend(
            zip(table.column(time_column).to_pylist(), table.column(id_column).to_pylist(), strict=True)
        )
        buffer.append(table)
        count += table.num_rows
        if count >= ctx.chunk_rows:
            _list_chunk(ctx, unit, pa.concat_tables(buffer), {})
            buffer, count = [], 0
        if done:
            break
    times_seen = [t for t, _ in seen if t is not None]
    if times_seen:
        newest = max([*times_seen, *([newest] if newest is not None else [])])
    state: dict[str, Any] = {"newest": newest.isoformat() if newest is not None else None}
    if growth.order == "asc":
        # The cursor: the newest row older than the window (the one below the stop, if no row read is).
        cursor = after
        if newest is not None:
            for moment, item in reversed([*seen, *([below] if below is not None else [])]):
                if moment is not None and moment <= newest - growth.window:
                    cursor = item
        state["after"] = cursor
    rows = pa.concat_tables(buffer) if buffer else top.resource.schema.empty_table()
    _list_chunk(ctx, unit, rows, {(top.name, ""): {k: v for k, v in state.items() if v is not None} or None})


def _cursor_ascending(ctx: Context, unit: Unit, after: str | None, newest: datetime | None) -> None:
    """Read the list onward from `after`, committing each chunk with the cursor: the last row older than
    the window, so the next sync reads the window again."""
    top = unit.top
    growth = top.growth
    assert isinstance(growth, Cursor)
    request = top.resource.bind_list({}, {"sort": "asc"}, after=after)
    pending: deque[tuple[datetime, str]] = deque()
    cursor = after
    buffer: list[pa.Table] = []
    count = 0

    def flush() -> None:
        nonlocal buffer, count, cursor
        if newest is not None:
            while pending and pending[0][0] <= newest - growth.window:
                cursor = pending.popleft()[1]
        value = {"after": cursor, "newest": newest.isoformat()} if newest is not None else None
        if value is not None and cursor is None:
            del value["after"]
        rows = pa.concat_tables(buffer) if buffer else top.resource.schema.empty_table()
        _list_chunk(ctx, unit, rows, {(top.name, ""): value})
        buffer, count = [], 0

    for batch in ctx.stream(top.name, request):
        table = pa.Table.from_batches([batch], top.resource.schema)
        for moment, item in zip(
            table.column(growth.time).to_pylist(),
            table.column(top.resource.item_column).to_pylist(),
            strict=True,
        ):
            if moment is not None:
                newest = moment if newest is None else max(newest, moment)
                pending.append((moment, item))
        buffer.append(table)
        count += table.num_rows
        if count >= ctx.chunk_rows:
            flush()
    flush()


def _buckets_request(ctx: Context, top: SyncTable) -> Request:
    growth = top.growth
    assert isinstance(growth, Buckets)
    start = bucket_start(ctx, top)
    by_name = {f.name: f for f in top.resource.filters}
    # A time filter takes the instant; a text stand-in its Unix seconds.
    first: object = start if by_name[growth.start_filter].kind == "time" else str(int(start.timestamp()))
    return top.resource.bind_list({}, {**dict(growth.options), growth.start_filter: first})


def prefetch(ctx: Context, chosen: Sequence[Unit], client: Client) -> None:
    """Read the lists of the units that depend on nothing but the state (whole lists, time buckets) at
    once, one client each (so each table's requests are counted exactly), while the others sync: a
    rerun of the ledger's sixteen tables costs one round trip, not sixteen. The rows are committed in
    order, as if read then (`Context.stream` takes them)."""
    requests = {
        unit.top.name: (_whole_request if isinstance(unit.top.growth, Whole) else _buckets_request)(
            ctx, unit.top
        )
        for unit in chosen
        if isinstance(unit.top.growth, Whole | Buckets)
    }
    if len(requests) < 2:
        return
    pool = ThreadPoolExecutor(max_workers=min(len(requests), PREFETCH_THREADS), thread_name_prefix="sync")

    def read(request: Request) -> tuple[Request, list[pa.RecordBatch], int, float]:
        with Client(settings=client.settings) as own:
            batches = list(own.read(request))
            return request, batches, own.stats.requests, own.server_time()

    for name, request in requests.items():
        ctx.prefetched[name] = pool.submit(read, request)
    pool.shutdown(wait=False)


def _buckets(ctx: Context, unit: Unit) -> None:
    top = unit.top
    growth = top.growth
    assert isinstance(growth, Buckets)
    start = bucket_start(ctx, top)
    request = _buckets_request(ctx, top)
    rows = pa.Table.from_batches(list(ctx.stream(top.name, request)), top.resource.schema)
    ends = rows.column(growth.end)
    flag = top.unfinished_flag
    if growth.final_column is not None:
        final = pc.fill_null(pc.less_equal(ends, pa.scalar(ctx.now, ends.type)), False)
        rows = rows.append_column(top.schema.field(growth.final_column), final)
        complete = _floor(ctx.now, growth.width)
    else:
        # By the server's clock, which set the flag (its Date header): every bucket before the one it is
        # in has ended, with usage or without (an endpoint nobody used moves on too).
        assert flag is not None, f"{top.name}: a Buckets growth without final_column needs its flag"
        server = datetime.fromtimestamp(ctx.server_time.get(top.name, ctx.now.timestamp()), UTC)
        complete = max(start, _floor(server, growth.width))
    batch = Batch()
    batch.add(top.name, rows)
    batch.replace_from[top.name] = start
    batch.set_state(top.name, "", {"complete_until": complete.isoformat()})
    ctx.commit(batch)


def bucket_start(ctx: Context, table: SyncTable) -> datetime:
    """The first bucket a sync of `table` reads: `reread` buckets before where the ended ones stop, or
    for a first sync `since` (else `backfill` ago), at a bucket's start."""
    growth = table.growth
    assert isinstance(growth, Buckets)
    complete = _time((ctx.state.get(table.name) or {}).get("complete_until"))
    if complete is not None:
        return complete - growth.reread * growth.width
    return _floor(ctx.since or ctx.now - growth.backfill, growth.width)


# -- logged units ----------------------------------------------------------------------------------------


def gone(ctx: Context, table: SyncTable) -> set[str]:
    """The ids (objects, or owners of lists) of `table` the API no longer has (404), from the state."""
    return {
        scope
        for scope, value in ctx.state.scopes(table.name)
        if isinstance(value, dict) and value.get("gone")
    }


def _logged_items(ctx: Context, unit: Unit, ids: Sequence[str]) -> None:
    """One chunk of a top table read one object per id (responses, conversations)."""
    top = unit.top
    growth = top.growth
    assert isinstance(growth, Logged)
    lost = gone(ctx, top)
    wanted = [i for i in ids if i not in lost]
    id_column = top.resource.item_column
    assert id_column is not None  # logged objects are named by their ids
    known = statuses(ctx, top, id_column, wanted)
    to_fetch = [i for i in wanted if i not in known or (growth.final and not known[i].final)]
    batch = Batch()
    tables = ctx.fetch(top.name, [top.resource.bind_item({}, i) for i in to_fetch])
    for item, table in zip(to_fetch, tables, strict=True):
        if table is None:
            batch.set_state(top.name, item, {"gone": True})
    fetched = _rows(tables, top.resource.schema)
    fetched_ids = fetched.column(id_column).to_pylist()
    new = {i for i in fetched_ids if i not in known}
    final = {i for i, done in zip(fetched_ids, finals(ctx, top, fetched), strict=True) if done}
    _fetch_children(ctx, unit, batch, fetched, new, final)
    have = set(known) | set(fetched_ids)
    for child in unit.member(Logged):
        _logged_lists(ctx, child, [i for i in wanted if i in have], batch)
    batch.add(top.name, fetched)
    ctx.commit(batch)


def _logged_lists(
    ctx: Context, table: SyncTable, ids: Sequence[str], batch: Batch, *, extra: Sequence[Request] = ()
) -> pa.Table:
    """Read each id's list onward from its cursor into `batch` (and the `extra` requests' rows); the
    rows read from the cursors."""
    lost = gone(ctx, table)
    key = table.resource.keys[0].name
    wanted = [i for i in ids if i not in lost]
    requests = [
        table.resource.bind_list(
            {key: i}, {"sort": "asc"}, after=(ctx.state.get(table.name, i) or {}).get("after")
        )
        for i in wanted
    ]
    tables = ctx.fetch(table.name, [*requests, *extra])
    listed, more = tables[: len(requests)], tables[len(requests) :]
    item_column = table.resource.item_column
    for item, rows in zip(wanted, listed, strict=True):
        if rows is None:
            batch.set_state(table.name, item, {"gone": True})
        elif rows.num_rows:
            batch.set_state(table.name, item, {"after": rows.column(item_column)[-1].as_py()})
    rows = _rows(listed, table.resource.schema)
    batch.add(table.name, pa.concat_tables([_rows(more, table.resource.schema), rows]))
    return rows


def _logged_runs(ctx: Context, unit: Unit, chunk: Sequence[tuple[str, ...]], by_item: bool) -> None:
    """One chunk of a top table read as a list per id (a thread's runs), or one object per id pair when
    the log names each object (thread_id, run_id); objects not final are read again, with their open
    children (a run's steps) and the lists of the same ids (a thread's messages)."""
    top = unit.top
    growth = top.growth
    assert isinstance(growth, Logged)
    key = top.resource.keys[0].name
    id_column = top.resource.item_column
    owners = list(dict.fromkeys(row[0] for row in chunk))
    gone_items = gone(ctx, top)
    known = statuses(ctx, top, key, owners)
    open_before = [
        (item, row.owner or "") for item, row in known.items() if not row.final and item not in gone_items
    ]
    batch = Batch()
    list_requests: list[Request] = []
    listed_owners: list[str] = []
    if by_item:
        wanted = {(row[0], row[1]) for row in chunk}
        items = [(r, t) for t, r in sorted(wanted) if r not in known and r not in gone_items]
        items += [(r, t) for r, t in open_before if (t, r) in wanted]
    else:
        items = list(open_before)
        for owner in owners:
            if owner in gone_items:
                continue
            after = (ctx.state.get(top.name, owner) or {}).get("after")
            list_requests.append(top.resource.bind_list({key: owner}, {"sort": "asc"}, after=after))
            listed_owners.append(owner)
    item_requests = [top.resource.bind_item({key: owner}, item) for item, owner in items]
    tables = ctx.fetch(top.name, [*list_requests, *item_requests])
    for owner, rows in zip(listed_owners, tables, strict=False):
        if rows is None:
            batch.set_state(top.name, owner, {"gone": True})
        elif rows.num_rows:
            batch.set_state(top.name, owner, {"after": rows.column(id_column)[-1].as_py()})
    for (item, _), rows in zip(items, tables[len(list_requests) :], strict=True):
        if rows is None:
            batch.set_state(top.name, item, {"gone": True})
    fetched = dedupe(_rows(tables, top.resource.schema), top.key)
    fetched_ids = fetched.column(id_column).to_pylist()
    new = set(fetched_ids) - set(known)
    final = {i for i, done in zip(fetched_ids, finals(ctx, top, fetched), strict=True) if done}
    _fetch_children(ctx, unit, batch, fetched, new, final)
    for child in unit.member(Logged):
        assert isinstance(child.growth, Logged)
        extra: list[Request] = []
        if child.growth.reread_open_runs:
            run_filter = next(f for f in child.resource.filters if f.param == "run_id").name
            extra = [
                child.resource.bind_list({key: owner}, {"sort": "asc", run_filter: item})
                for item, owner in open_before
            ]
        lost_now = {s for (t, s), v in batch.state.items() if t == top.name and v and v.get("gone")}
        live_owners = [o for o in owners if o not in gone_items and o not in lost_now]
        _logged_lists(ctx, child, live_owners, batch, extra=extra)
    batch.add(top.name, fetched)
    ctx.commit(batch)


def _logged(ctx: Context, unit: Unit) -> None:
    top = unit.top
    growth = top.growth
    assert isinstance(growth, Logged)
    if ctx.log is None or not ctx.log.has(growth.column):
        what = "no log was given" if ctx.log is None else f"the log has no {growth.column} column"
        ctx.result.table(top.name).notes.append(f"skipped: {what} (log=, --log)")
        for member in unit.members:
            ctx.result.table(member.name)
        return
    item_key = top.resource.item_key.name
    if growth.list:
        by_item = ctx.log.has(item_key)
        rows = ctx.log.rows([growth.column, item_key] if by_item else [growth.column])
        owners = list(dict.fromkeys(row[0] for row in rows))
        for owner_chunk in _chunks(owners, ctx.chunk_ids):
            chosen = set(owner_chunk)
            _logged_runs(ctx, unit, [row for row in rows if row[0] in chosen], by_item)
    else:
        for chunk in _chunks(ctx.log.ids(growth.column), ctx.chunk_ids):
            _logged_items(ctx, unit, chunk)


# -- dispatch --------------------------------------------------------------------------------------------


def sync_unit(ctx: Context, unit: Unit) -> None:
    """Read what is new for `unit` and commit it, chunk by chunk."""
    for table in (unit.top, *unit.members):
        ctx.result.table(table.name)
    growth = unit.top.growth
    if isinstance(growth, Whole):
        _whole(ctx, unit)
    elif isinstance(growth, Cursor):
        _cursor(ctx, unit)
    elif isinstance(growth, Buckets):
        _buckets(ctx, unit)
    elif isinstance(growth, Logged):
        _logged(ctx, unit)
    else:
        raise TypeError(f"{unit.top.name}: a {type(growth).__name__} table is read with its parent")
