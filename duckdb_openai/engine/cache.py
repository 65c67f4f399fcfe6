"""Fetch immutable data once: what the cache keeps, and how a query combines it with what is new.

What can no longer change, per the resource's declaration (`Resource.lifecycle`, `Resource.parent`):

- An object of a `frozen` lifecycle (a run step) in a terminal status never changes. Per list key (a
  run's steps), the longest prefix in creation order of terminal objects is kept. A later query sends
  one request chain `order=asc&after=<last id of that prefix>` for the rest and returns the prefix and
  the rest in the asked order: the same rows, schema and order as a fetch without the cache. The rest
  must continue the prefix (`continues`: no kept id again, nothing created before the last kept row);
  an answer that does not (a server reading `after` inclusively, ignoring it or ignoring `order`) is
  dropped and the list fetched whole. A list whose rows are not in creation order is not kept.
- A list whose parent (the run) was seen in a terminal status before the list was fetched is final:
  later queries cost no request. The cache learns statuses from every fetch of the parent resource
  (`runs`, `run`); a status once seen terminal stays known, though the run itself (whose metadata can
  still be updated) is never served from the cache.
- When the parent's status is unknown, a list whose objects were all terminal and whose newest was
  created more than `final_after` seconds (24 hours by default; 0: never) before it was fetched is
  assumed final: a run that has made no step for that long is over (a run not finished by its
  `expires_at`, ten minutes after creation, expires). The assumption is the reader's: an entry keeps
  the facts (fetched when, whole or not, parent seen finished or not) and each client decides with its
  own `final_after` when it reads one, so a client with `final_after=0` never takes another's guess.
- One retrieved object in a terminal status (`run_step`) is kept too, and served from a kept list.
- Resources whose objects the API can modify (runs, messages, threads, assistants take metadata
  updates) are never served from the cache: their TTL is zero.

Whose rows: an entry is served only to the credential that fetched it. A client with an API key has one
store for its life (on disk, its folder is named by a one-way hash of the key). A client with
`token_provider=` reads the current token before each use of the cache (asking the provider only as a
request would: its token is reused for 30 s) and uses the store of the identity the token names, made
when first seen (`cache_scope.py`); rows fetched while the identity changed are not kept.

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
import re
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING
from urllib.parse import urlencode

import pyarrow as pa
import pyarrow.compute as pc

from duckdb_openai.engine.cache_scope import key_identity, opaque_identity, scope_of, token_identity
from duckdb_openai.engine.cache_store import (
    CacheInfo,
    Cleared,
    DiskStore,
    Entry,
    LayeredStore,
    MemoryStore,
    StoreKey,
)
from duckdb_openai.engine.source import Source
from duckdb_openai.errors import BadRequestError, ConfigurationError
from duckdb_openai.resources.base import CacheMode, Lifecycle, Request, Resource

if TYPE_CHECKING:
    from duckdb_openai.config import Settings

__all__ = [
    "CACHE_MODES",
    "Cache",
    "CachedSource",
    "check_cache_mode",
    "continues",
    "in_order",
    "list_key",
    "parent_status_key",
]

logger = logging.getLogger("duckdb_openai")

CACHE_MODES: tuple[CacheMode, ...] = ("on", "off", "refresh")
#: The token a request sent now would carry (`Requester.token`), None with a key.
Token = Callable[[], Awaitable[str | None]]


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


#: What `urlencode` leaves as it is (`quote_plus`'s safe characters).
_PLAIN = re.compile(r"[A-Za-z0-9_.~-]*")


def _encoded(pairs: Iterable[tuple[str, str]]) -> str:
    """`urlencode(pairs)`, without its cost (~35 us a key, a fifth of a warm query's time per run) when
    every name and value is plain, as ids and options are."""
    listed = list(pairs)
    plain = _PLAIN.fullmatch
    if all(plain(name) and plain(value) for name, value in listed):
        return "&".join(f"{name}={value}" for name, value in listed)
    return urlencode(listed)


def list_key(request: Request) -> StoreKey:
    """The key of a list's kept rows: its keys and the parameters that change its rows (not the order)."""
    keys = _encoded(request.keys.items())
    return StoreKey(
        _namespace(request.resource), f"{request.resource.name}/list?{keys}|{_encoded(request.params)}"
    )


def _item_key(request: Request) -> StoreKey:
    resource = request.resource
    keys = _encoded([*request.keys.items(), (resource.item_key.name, request.item_id or "")])
    return StoreKey(_namespace(resource), f"{resource.name}/item?{keys}|{_encoded(request.params)}")


def _list_key_of_item(request: Request) -> StoreKey | None:
    """The list whose kept rows may hold the item: when the item's parameters are exactly the list's
    (every list option but the order is an item option too, and the list has no filters)."""
    resource = request.resource
    if resource.filters or not resource.listable:
        return None
    if any(not o.on_item for o in resource.options if o.name != resource.order_option):
        return None
    keys = _encoded(request.keys.items())
    return StoreKey(_namespace(resource), f"{resource.name}/list?{keys}|{_encoded(request.params)}")


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


def in_order(table: pa.Table, resource: Resource) -> bool:
    """Whether `table` can be a list's rows in ascending creation order: no id twice, and no row created
    before the one above it (rows created in the same second may come in any order).

    >>> from duckdb_openai.resources.run_steps import RUN_STEPS
    >>> in_order(RUN_STEPS.schema.empty_table(), RUN_STEPS)
    True
    """
    n = table.num_rows
    if n <= 1:
        return True
    if pc.count_distinct(table.column(resource.item_column)).as_py() != n:
        return False
    created = resource.lifecycle.created if resource.lifecycle is not None else None
    if created is None or created not in table.column_names:
        return True
    times = table.column(created).combine_chunks()
    later = pc.greater_equal(times.slice(1), times.slice(0, n - 1))
    return bool(pc.all(pc.fill_null(later, True)).as_py())


def continues(kept: pa.Table, rest: pa.Table, resource: Resource) -> bool:
    """Whether `rest`, the answer to `order=asc&after=<kept's last id>`, continues `kept`: none of its ids
    kept already, none twice, none created before kept's last row. A server reading `after` inclusively
    (`[s2, s3]` after s2), ignoring it, or ignoring `order` fails this; appending its answer would
    repeat rows.
    """
    if rest.num_rows == 0:
        return True
    column = resource.item_column
    if kept.num_rows:
        repeated = pc.is_in(rest.column(column), value_set=kept.column(column).combine_chunks())
        if pc.any(repeated).as_py():
            return False
        rest = pa.concat_tables([kept.slice(kept.num_rows - 1), rest])
    return in_order(rest, resource)


class _ByToken:
    """The stores of a token_provider= client: one per identity its tokens name, the latest kept (one
    identity at a time is the usual case; a provider that switches back costs the memory front)."""

    def __init__(self, make: Callable[[str | None], LayeredStore]) -> None:
        self._make = make
        self._token: str | None = None
        self._name: str | None = None
        self.store: LayeredStore | None = None

    def store_for(self, token: str) -> LayeredStore:
        if token != self._token or self.store is None:
            identity = token_identity(token)
            name = identity or opaque_identity(token)
            if name != self._name or self.store is None:
                self.store = self._make(identity)
                self._name = name
            self._token = token
        return self.store


class Cache:
    """The cache of one `Client`: the policy above over the store of the client's credential. Its
    async methods are used on the client's event loop.

    `store` is the store of the credential requests are sent with (with token_provider=, the latest
    identity's, chosen by `by_token` from each token)."""

    def __init__(
        self,
        store: LayeredStore,
        *,
        final_after: float,
        clock: Callable[[], float] = time.time,
        by_token: Callable[[str | None], LayeredStore] | None = None,
    ) -> None:
        self.store = store
        self.final_after = final_after
        self._clock = clock
        self._by_token = None if by_token is None else _ByToken(by_token)
        self._warned_cursor = False

    @classmethod
    def for_settings(cls, settings: Settings) -> Cache | None:
        """The cache `settings` ask for: None when off, on disk with `cache_dir` (with the memory store in
        front, so a process reads an entry from disk once), else in memory.

        With a key, the folder is made and checked now; with token_provider=, the folder of each identity
        its tokens name when that identity is first seen (a token that names none: memory only)."""
        if not settings.cache:
            return None
        if settings.token_provider is None:
            back = None
            if settings.cache_dir is not None:
                assert settings.api_key is not None
                back = _disk(settings, key_identity(settings.api_key.reveal()))
            return cls(
                LayeredStore(MemoryStore(settings.cache_max_bytes), back), final_after=settings.final_after
            )
        if settings.cache_dir is not None:
            _disk(settings, None)  # the folders above the identities': refused now if unsafe
        warned: list[bool] = []

        def store_of(identity: str | None) -> LayeredStore:
            front = MemoryStore(settings.cache_max_bytes)
            if settings.cache_dir is None:
                return LayeredStore(front)
            if identity is None:
                if not warned:
                    warned.append(True)
                    logger.warning(
                        "a token from token_provider= is not a JWT naming an identity (claims tid and oid, "
                        "iss and sub, or iss and appid), so the cache cannot tell whose rows it would keep "
                        "in cache_dir %s: it keeps them in memory, per token",
                        settings.cache_dir,
                    )
                return LayeredStore(front)
            return LayeredStore(front, _disk(settings, identity))

        empty = LayeredStore(MemoryStore(settings.cache_max_bytes))
        return cls(empty, final_after=settings.final_after, by_token=store_of)

    def info(self) -> CacheInfo:
        """What the cache holds: entries, runs, finished runs, bytes, location."""
        return self.store.info()

    def clear(self) -> Cleared:
        """Forget everything this client's cache holds (with token_provider=, the current identity's; on
        disk: its folder's entries and status log, nothing else there); what was freed and the files
        left."""
        return self.store.clear()

    async def _current(self, token: Token | None) -> LayeredStore:
        """The store of the credential a request sent now would carry (`token`: the requester's)."""
        if self._by_token is None or token is None:
            return self.store
        current = await token()
        if current is not None:
            self.store = self._by_token.store_for(current)
        return self.store

    # -- the policy -----------------------------------------------------------------------------------

    async def _keep(
        self,
        store: LayeredStore,
        key: StoreKey,
        ascending: pa.Table,
        resource: Resource,
        old: Entry | None,
        sent_at: float,
        known_at: float | None,
        replace: bool,
    ) -> None:
        lifecycle = resource.lifecycle
        assert lifecycle is not None
        if not in_order(ascending, resource):
            return  # not in creation order (a server ignoring `order`): no prefix to continue from
        count = _terminal_prefix(ascending, lifecycle)
        whole = count == ascending.num_rows
        fresh = Entry(ascending.slice(0, count), sent_at, whole, whole and known_at is not None)
        if (
            old is not None
            and (old.rows.num_rows, old.whole, old.finished) == (count, whole, fresh.finished)
            and self._assumed(old, lifecycle) == self._assumed(fresh, lifecycle)
        ):
            return  # nothing new: keep the file as it is
        await store.put(key, fresh, replace=replace)

    def _assumed(self, entry: Entry, lifecycle: Lifecycle) -> bool:
        """Whether this client's `final_after` takes the entry as final: whole, and its newest row older
        than `final_after` when it was fetched."""
        if self.final_after <= 0 or not entry.whole or entry.rows.num_rows == 0:
            return False
        newest = _newest(entry.rows, lifecycle)
        return newest is not None and newest < entry.fetched_at - self.final_after

    async def _is_final(self, store: LayeredStore, request: Request, entry: Entry) -> bool:
        found = self._is_final_now(store, request, entry)
        if found is not None:
            return found
        known_at = await self._parent_known_at(store, request)
        return known_at is not None and known_at <= entry.fetched_at

    def _is_final_now(self, store: LayeredStore, request: Request, entry: Entry) -> bool | None:
        """`_is_final` from what memory holds; None when it takes the disk (the parent's status is not
        in memory)."""
        lifecycle = request.resource.lifecycle
        assert lifecycle is not None
        if entry.finished or self._assumed(entry, lifecycle):
            return True
        if not entry.whole:
            return False
        key = parent_status_key(request)
        found = store.front.status(key) if key is not None else None
        if found is None:
            return None if key is not None and store.back is not None else False
        return found[1] <= entry.fetched_at

    async def _parent_known_at(self, store: LayeredStore, request: Request) -> float | None:
        key = parent_status_key(request)
        found = await store.status(key) if key is not None else None
        return None if found is None else found[1]

    def _broken_cursor(self, resource: Resource) -> None:
        if not self._warned_cursor:
            self._warned_cursor = True
            logger.warning(
                "the server answered a request for the %s after the last kept one (order=asc&after=) "
                "with rows that do not follow it (it reads after inclusively or ignores it, or ignores "
                "order): such lists are fetched whole instead",
                resource.name,
            )

    async def _from_list(self, store: LayeredStore, request: Request) -> pa.Table | None:
        key = _list_key_of_item(request)
        entry = await store.get(key, request.resource.schema) if key is not None else None
        if entry is None:
            return None
        ids = entry.rows.column(request.resource.item_column)
        index = pc.index(ids, request.item_id).as_py()
        return entry.rows.slice(index, 1) if index >= 0 else None

    # -- learning statuses ---------------------------------------------------------------------------

    def _finished(self, resource: Resource, rows: pa.Table | pa.RecordBatch) -> list[tuple[str, str, float]]:
        """The status facts in `rows`: (status key, status, now) of each object in a terminal status."""
        lifecycle = resource.lifecycle
        if lifecycle is None or lifecycle.frozen or rows.num_rows == 0:
            return []
        terminal = pc.is_in(rows.column(lifecycle.column), value_set=pa.array(sorted(lifecycle.terminal)))
        finished = rows.filter(pc.fill_null(terminal, False))
        if finished.num_rows == 0:
            return []
        names = [*(k.name for k in resource.keys), resource.item_column]
        columns = [finished.column(name).to_pylist() for name in names]
        statuses = finished.column(lifecycle.column).to_pylist()
        now = self._clock()
        return [
            (_status_key(resource.name, ids), status, now)
            for *ids, status in zip(*columns, statuses, strict=True)
            if all(isinstance(i, str) for i in ids)
        ]


def _disk(settings: Settings, identity: str | None) -> DiskStore | None:
    """The disk store of `identity` under settings.cache_dir (None: only make and check the folders
    above the identities'); a ConfigurationError saying why a folder cannot be used."""
    assert settings.cache_dir is not None
    scope = (
        None
        if identity is None
        else scope_of(settings.base_url, settings.organization, settings.project, identity)
    )
    try:
        if scope is None:
            DiskStore.open_root(settings.cache_dir)
            return None
        return DiskStore(settings.cache_dir, scope)
    except OSError as exc:
        raise ConfigurationError(
            f"cannot use cache_dir {settings.cache_dir!r}: {exc.strerror or exc}; pass a folder you can "
            "write, or cache=False"
        ) from None


async def _collect(batches: AsyncIterator[pa.RecordBatch], schema: pa.Schema) -> pa.Table:
    return pa.Table.from_batches([batch async for batch in batches], schema=schema)


class CachedSource:
    """A source (`source.Source`) that serves what `cache` keeps and asks `inner` for the rest: the
    policy of the module docstring, for every form (the table functions, the catalog tables, the Python
    readers). `token` is the requester's (`Requester.token`): with token_provider=, whose rows may be
    served depends on the identity its current token names.

    A list without kept rows streams from `inner` and is kept once read to its end (a LIMIT that stops
    early keeps nothing); kept rows are yielded with what the API added since, after that was checked
    to continue them (`continues`)."""

    def __init__(self, inner: Source, cache: Cache, token: Token | None = None) -> None:
        self.inner = inner
        self.cache = cache
        self._token = token

    @property
    def resource(self) -> Resource:
        return self.inner.resource

    async def table(self, request: Request) -> pa.Table:
        """Every row of the list `request` as one table of the schema."""
        return await _collect(self.pages(request), self.resource.schema)

    async def pages(self, request: Request) -> AsyncGenerator[pa.RecordBatch, None]:
        """Every row of the list `request`: the kept prefix, then one request chain for the rest."""
        mode = request.cache or "on"
        resource = self.resource
        lifecycle = resource.lifecycle
        cache = self.cache
        if mode == "off" or lifecycle is None or request.after is not None or request.nothing:
            async for batch in self.inner.pages(request):
                yield batch
            return
        store = await cache._current(self._token)
        if not lifecycle.frozen:
            async for batch in self.inner.pages(request):
                facts = cache._finished(resource, batch)  # a run's status, if finished
                if facts and await cache._current(self._token) is store:
                    await store.learn(facts)
                yield batch
            return
        key = list_key(request)
        entry = await store.get(key, resource.schema) if mode == "on" else None
        if entry is not None and await cache._is_final(store, request, entry):
            for batch in (entry.rows if request.order == "asc" else _reversed(entry.rows)).to_batches():
                yield batch
            return
        # Read before the request is sent: a status learned later says nothing about these rows.
        known_at = await cache._parent_known_at(store, request)
        sent_at = cache._clock()
        ascending: pa.Table | None = None
        if entry is not None and entry.rows.num_rows:
            ascending = await self._extended(request, entry.rows)
        if ascending is not None:
            for batch in (ascending if request.order == "asc" else _reversed(ascending)).to_batches():
                yield batch
        else:
            batches = []
            async for batch in self.inner.pages(request):
                batches.append(batch)
                yield batch
            table = pa.Table.from_batches(batches, schema=resource.schema)
            ascending = table if request.order == "asc" else _reversed(table)
        if await cache._current(self._token) is store:  # rows fetched while the identity changed: not kept
            await cache._keep(store, key, ascending, resource, entry, sent_at, known_at, mode == "refresh")

    def kept(self, request: Request) -> pa.Table | None:
        """What `table` or `item` would return when memory answers it, final, without awaiting anything:
        1,000 kept lists of a warm LATERAL join skip the event loop's round trips (`fanout.many`). None
        when anything else is needed (a miss, a disk read, a request, a token provider's identity)."""
        mode = request.cache or "on"
        resource = self.resource
        lifecycle = resource.lifecycle
        cache = self.cache
        if mode != "on" or lifecycle is None or not lifecycle.frozen or cache._by_token is not None:
            return None
        store = cache.store
        if request.is_item:
            entry = store.front.get(_item_key(request), resource.schema)
            return None if entry is None else entry.rows
        if request.after is not None or request.nothing:
            return None
        entry = store.front.get(list_key(request), resource.schema)
        if entry is None or not cache._is_final_now(store, request, entry):
            return None
        return entry.rows if request.order == "asc" else _reversed(entry.rows)

    async def _extended(self, request: Request, kept: pa.Table) -> pa.Table | None:
        """The kept rows and what follows them (one `order=asc&after=<last kept id>` chain), or None when
        the cursor is no longer valid or the answer does not continue them: the list is then fetched
        whole."""
        resource = self.resource
        column = resource.item_column
        assert column is not None
        follow = replace(request, order="asc", after=kept.column(column)[-1].as_py())
        try:
            rest = await _collect(self.inner.pages(follow), resource.schema)
        except BadRequestError:
            return None
        if not continues(kept, rest, resource):
            self.cache._broken_cursor(resource)
            return None
        return pa.concat_tables([kept, rest])

    async def item(self, request: Request) -> pa.Table:
        """The one object of the item `request`: kept when terminal, or found in a kept list."""
        mode = request.cache or "on"
        resource = self.resource
        lifecycle = resource.lifecycle
        cache = self.cache
        if mode == "off" or lifecycle is None:
            return await self.inner.item(request)
        store = await cache._current(self._token)
        if not lifecycle.frozen:
            table = await self.inner.item(request)
            facts = cache._finished(resource, table)
            if facts and await cache._current(self._token) is store:
                await store.learn(facts)
            return table
        key = _item_key(request)
        if mode == "on":
            entry = await store.get(key, resource.schema)
            if entry is not None:
                return entry.rows
            found = await cache._from_list(store, request)
            if found is not None:
                return found
        table = await self.inner.item(request)
        terminal = table.num_rows == 1 and _terminal_prefix(table, lifecycle) == 1
        if terminal and await cache._current(self._token) is store:
            await store.put(key, Entry(table, cache._clock(), True, True), replace=mode == "refresh")
        return table
