"""Fetch immutable data once: what the cache keeps, and how a query combines it with what is new.

What can no longer change, per the resource's declaration (`Resource.lifecycle`, `Resource.parent`):

- An object of a `frozen` lifecycle (a run step) in a terminal status never changes. Per list key (a
  run's steps), the longest prefix in creation order of terminal objects is kept. A later query sends
  one request chain `order=asc&after=<last id of that prefix>` for the rest and returns the prefix and
  the rest in the asked order: the same rows, schema and order as a fetch without the cache.
- A list whose parent (the run) was seen in a terminal status before the list was fetched is final:
  later queries cost no request. The cache learns statuses from every fetch of the parent resource
  (`runs`, `run`); a status once seen terminal stays known, though the run itself (whose metadata can
  still be updated) is never served from the cache.
- When the parent's status is unknown, a list whose objects were all terminal and whose newest was
  created more than `final_after` seconds (24 hours by default; 0: never) before it was fetched is
  assumed final: a run that has made no step for that long is over (a run not finished by its
  `expires_at`, ten minutes after creation, expires).
- One retrieved object in a terminal status (`run_step`) is kept too, and served from a kept list.
- Resources whose objects the API can modify (runs, messages, threads, assistants take metadata
  updates) are never served from the cache: their TTL is zero.

A query chooses with `cache := 'on'` (the default), `'off'` (neither read nor written) or `'refresh'`
(everything fetched again, and the kept rows replaced). Options that change the rows (run steps'
`include_content`) are part of the key, so each variant is kept apart; the order is not.

>>> from duckdb_openai.resources.run_steps import RUN_STEPS
>>> request = RUN_STEPS.bind_list({"thread_id": "thread_a", "run_id": "run_b"}, {"sort": "desc"})
>>> list_key(request).key
'run_steps/list?thread_id=thread_a&run_id=run_b|'
>>> parent_status_key(request)
'runs\\tthread_a\\trun_b'
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING
from urllib.parse import urlencode

import pyarrow as pa
import pyarrow.compute as pc

from duckdb_openai.engine.cache_store import (
    CacheInfo,
    DiskStore,
    Entry,
    LayeredStore,
    MemoryStore,
    Store,
    StoreKey,
    scope_of,
)
from duckdb_openai.engine.source import Source
from duckdb_openai.errors import BadRequestError, ConfigurationError, ResponseFormatError
from duckdb_openai.resources.base import CacheMode, Lifecycle, Request, Resource

if TYPE_CHECKING:
    from duckdb_openai.config import Settings

__all__ = [
    "CACHE_MODES",
    "Cache",
    "CachedSource",
    "check_cache_mode",
    "list_key",
    "parent_status_key",
]

_log = logging.getLogger(__name__)

CACHE_MODES: tuple[CacheMode, ...] = ("on", "off", "refresh")


def check_cache_mode(value: object) -> CacheMode:
    """`value` if it is a cache mode, else a ConfigurationError listing them."""
    for mode in CACHE_MODES:
        if value == mode:
            return mode
    raise ConfigurationError(f"cache must be 'on', 'off' or 'refresh', not {value!r}")


_NAMESPACES: dict[Resource, str] = {}


def _namespace(resource: Resource) -> str:
    """The resource's name and a hash of its column types: a schema change never misreads old rows."""
    found = _NAMESPACES.get(resource)
    if found is None:
        types = ";".join(f"{f.name}:{f.type}" for f in resource.schema)  # 50 us: computed once
        found = _NAMESPACES[resource] = f"{resource.name}-{hashlib.sha256(types.encode()).hexdigest()[:12]}"
    return found


def list_key(request: Request) -> StoreKey:
    """The key of a list's kept rows: its keys and the parameters that change its rows (not the order)."""
    keys = urlencode(list(request.keys.items()))
    return StoreKey(
        _namespace(request.resource), f"{request.resource.name}/list?{keys}|{urlencode(request.params)}"
    )


def _item_key(request: Request) -> StoreKey:
    resource = request.resource
    keys = urlencode([*request.keys.items(), (resource.item_key.name, request.item_id or "")])
    return StoreKey(_namespace(resource), f"{resource.name}/item?{keys}|{urlencode(request.params)}")


def _list_key_of_item(request: Request) -> StoreKey | None:
    """The list whose kept rows may hold the item: when the item's parameters are exactly the list's
    (every list option but the order is an item option too, and the list has no filters)."""
    resource = request.resource
    if resource.filters or not resource.listable:
        return None
    if any(not o.on_item for o in resource.options if o.name != resource.order_option):
        return None
    keys = urlencode(list(request.keys.items()))
    return StoreKey(_namespace(resource), f"{resource.name}/list?{keys}|{urlencode(request.params)}")


def _status_key(resource: str, ids: Sequence[str]) -> str:
    return "\t".join([resource, *ids])


def parent_status_key(request: Request) -> str | None:
    """The status key of the parent owning the list (`runs\\t<thread_id>\\t<run_id>`), or None."""
    parent = request.resource.parent
    if parent is None:
        return None
    return _status_key(parent.resource, [request.keys[child] for child, _ in parent.columns])


def _reversed(table: pa.Table) -> pa.Table:
    n = table.num_rows
    return table.take(pa.array(range(n - 1, -1, -1), pa.int64())) if n > 1 else table


def _terminal_prefix(table: pa.Table, lifecycle: Lifecycle) -> int:
    """How many rows, from the first, are in a terminal status."""
    if table.num_rows == 0:
        return 0
    terminal = pc.is_in(table.column(lifecycle.column), value_set=pa.array(sorted(lifecycle.terminal)))
    moving = pc.invert(pc.fill_null(terminal, False))
    first = pc.index(moving, True).as_py()
    return table.num_rows if first < 0 else int(first)


def _newest(table: pa.Table, lifecycle: Lifecycle) -> float | None:
    """The newest creation time among the rows, in seconds since the epoch."""
    if table.num_rows == 0 or lifecycle.created not in table.column_names:
        return None
    newest = pc.max(table.column(lifecycle.created)).as_py()
    return None if newest is None else float(newest.timestamp())


class Cache:
    """The cache of one `Client`: the policy above over a `Store`. Used on the client's event loop."""

    def __init__(self, store: Store, *, final_after: float, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.final_after = final_after
        self._clock = clock

    @classmethod
    def for_settings(cls, settings: Settings) -> Cache | None:
        """The cache `settings` ask for: None when off, on disk with `cache_dir` (with the memory store in
        front, so a process reads an entry from disk once), else in memory."""
        if not settings.cache:
            return None
        store: Store
        if settings.cache_dir is not None:
            scope = scope_of(settings.base_url, settings.organization, settings.project)
            try:
                store = LayeredStore(
                    MemoryStore(settings.cache_max_bytes), DiskStore(settings.cache_dir, scope)
                )
            except OSError as exc:
                raise ConfigurationError(
                    f"cannot use cache_dir {settings.cache_dir!r}: {exc.strerror or exc}; pass a folder you "
                    "can write, or cache=False"
                ) from None
        else:
            store = MemoryStore(settings.cache_max_bytes)
        return cls(store, final_after=settings.final_after)

    def info(self) -> CacheInfo:
        """What the cache holds: entries, runs, finished runs, bytes, location."""
        return self.store.info()

    def clear(self) -> None:
        """Forget everything this client's cache holds (on disk: this base URL's, organization's and
        project's folder)."""
        self.store.clear()

    def _keep(
        self,
        key: StoreKey,
        ascending: pa.Table,
        lifecycle: Lifecycle,
        old: Entry | None,
        sent_at: float,
        known_at: float | None,
        *,
        replace: bool,
    ) -> None:
        count = _terminal_prefix(ascending, lifecycle)
        whole = count == ascending.num_rows
        newest = _newest(ascending, lifecycle)
        assumed = (
            self.final_after > 0 and count > 0 and newest is not None and newest < sent_at - self.final_after
        )
        final = whole and (known_at is not None or assumed)
        if old is not None and old.rows.num_rows == count and old.whole == whole and old.final == final:
            return  # nothing new: keep the file as it is
        self.store.put(key, Entry(ascending.slice(0, count), sent_at, whole, final), replace=replace)

    def _is_final(self, request: Request, entry: Entry) -> bool:
        if entry.final:
            return True
        known_at = self._parent_known_at(request)
        return entry.whole and known_at is not None and known_at <= entry.fetched_at

    def _parent_known_at(self, request: Request) -> float | None:
        key = parent_status_key(request)
        found = self.store.status(key) if key is not None else None
        return None if found is None else found[1]

    def _from_list(self, request: Request) -> pa.Table | None:
        key = _list_key_of_item(request)
        entry = self.store.get(key, request.resource.schema) if key is not None else None
        if entry is None:
            return None
        ids = entry.rows.column(request.resource.item_column)
        index = pc.index(ids, request.item_id).as_py()
        return entry.rows.slice(index, 1) if index >= 0 else None

    # -- learning statuses ---------------------------------------------------------------------------

    def observe(self, resource: Resource, rows: pa.Table | pa.RecordBatch) -> None:
        """Learn which objects of `resource` (runs) are in a terminal status, from rows just fetched."""
        lifecycle = resource.lifecycle
        if lifecycle is None or lifecycle.frozen or rows.num_rows == 0:
            return
        terminal = pc.is_in(rows.column(lifecycle.column), value_set=pa.array(sorted(lifecycle.terminal)))
        finished = rows.filter(pc.fill_null(terminal, False))
        if finished.num_rows == 0:
            return
        names = [*(k.name for k in resource.keys), resource.item_column]
        columns = [finished.column(name).to_pylist() for name in names]
        statuses = finished.column(lifecycle.column).to_pylist()
        now = self._clock()
        self.store.learn(
            (_status_key(resource.name, ids), status, now)
            for *ids, status in zip(*columns, statuses, strict=True)
            if all(isinstance(i, str) for i in ids)
        )


def _ids(table: pa.Table | pa.RecordBatch, column: str) -> list[str]:
    return table.column(column).to_pylist()  # type: ignore[no-any-return]


class CachedSource:
    """A source (`source.Source`) that serves what `cache` keeps and asks `inner` for the rest: the
    policy of the module docstring, for every form (the table functions, the catalog tables, the Python
    readers). A list streams: rows kept are yielded first, then what the API adds, and the list is kept
    once it was read to its end (a LIMIT that stops early keeps nothing)."""

    def __init__(self, inner: Source, cache: Cache) -> None:
        self.inner = inner
        self.cache = cache

    @property
    def resource(self) -> Resource:
        return self.inner.resource

    async def table(self, request: Request) -> pa.Table:
        """Every row of the list `request` as one table of the schema."""
        batches = [batch async for batch in self.pages(request)]
        return pa.Table.from_batches(batches, schema=self.resource.schema)

    async def pages(self, request: Request) -> AsyncGenerator[pa.RecordBatch, None]:
        """Every row of the list `request`: the kept prefix, then one request chain for the rest."""
        mode = request.cache or "on"
        lifecycle = self.resource.lifecycle
        if mode == "off" or lifecycle is None or request.after is not None or request.nothing:
            async for batch in self.inner.pages(request):
                yield batch
            return
        if not lifecycle.frozen:
            async for batch in self.inner.pages(request):
                self.cache.observe(self.resource, batch)  # a run's status, if finished
                yield batch
            return
        cache = self.cache
        key = list_key(request)
        entry = cache.store.get(key, self.resource.schema) if mode == "on" else None
        if entry is not None and cache._is_final(request, entry):
            rows = entry.rows if request.order == "asc" else _reversed(entry.rows)
            for batch in rows.to_batches():
                yield batch
            return
        # Read before the request is sent: a status learned later says nothing about these rows.
        known_at = cache._parent_known_at(request)
        sent_at = cache._clock()
        ascending: pa.Table | None = None
        if entry is not None and entry.rows.num_rows:
            rest: AsyncGenerator[pa.RecordBatch, None] | None = self._after(request, entry.rows)
            assert rest is not None
            try:
                first = await anext(rest, None)
            except (BadRequestError, ResponseFormatError) as exc:
                # The cursor is no longer valid, or the answer does not continue the kept rows (nothing
                # was yielded yet): fetch the whole list instead.
                _log.info("%s: %s; fetching the whole list", request.describe(), exc)
                first = None
                await rest.aclose()
                rest = None
            if rest is not None:
                kept = entry.rows
                if request.order == "asc":
                    for batch in kept.to_batches():
                        yield batch
                collected = [] if first is None else [first]
                if first is not None and request.order == "asc":
                    yield first
                async for batch in rest:
                    collected.append(batch)
                    if request.order == "asc":
                        yield batch
                more = pa.Table.from_batches(collected, schema=self.resource.schema)
                ascending = pa.concat_tables([kept, more])
                if request.order == "desc":
                    for batch in _reversed(ascending).to_batches():
                        yield batch
        if ascending is None:
            collected = []
            async for batch in self.inner.pages(request):
                collected.append(batch)
                yield batch
            table = pa.Table.from_batches(collected, schema=self.resource.schema)
            ascending = table if request.order == "asc" else _reversed(table)
        cache._keep(key, ascending, lifecycle, entry, sent_at, known_at, replace=mode == "refresh")

    async def _after(self, request: Request, kept: pa.Table) -> AsyncGenerator[pa.RecordBatch, None]:
        """What follows the kept rows, ascending (one `after=` request chain). A page holding a kept id
        (a server whose `after` is inclusive, or that ignores it or the order) is a ResponseFormatError:
        the rows would repeat. The first page is checked before anything is yielded, so the caller can
        still fetch the whole list instead."""
        column = self.resource.item_column
        assert column is not None
        last_id = kept.column(column)[-1].as_py()
        follow = replace(request, order="asc", after=last_id)
        kept_ids = set(_ids(kept, column))
        async for batch in self.inner.pages(follow):
            repeated = kept_ids.intersection(_ids(batch, column))
            if repeated:
                raise ResponseFormatError(
                    f"asked for what follows {last_id!r}, the API answered with {sorted(repeated)[0]!r}, "
                    "which came before it; the list would repeat rows"
                )
            yield batch

    async def item(self, request: Request) -> pa.Table:
        """The one object of the item `request`: kept when terminal, or found in a kept list."""
        mode = request.cache or "on"
        cache = self.cache
        lifecycle = self.resource.lifecycle
        if mode == "off" or lifecycle is None:
            return await self.inner.item(request)
        if not lifecycle.frozen:
            table = await self.inner.item(request)
            cache.observe(self.resource, table)
            return table
        key = _item_key(request)
        if mode == "on":
            entry = cache.store.get(key, self.resource.schema)
            if entry is not None:
                return entry.rows
            found = cache._from_list(request)
            if found is not None:
                return found
        table = await self.inner.item(request)
        if table.num_rows == 1 and _terminal_prefix(table, lifecycle) == 1:
            cache.store.put(key, Entry(table, cache._clock(), True, True), replace=mode == "refresh")
        return table
