"""A REST resource declared as data: its family, path templates, keys, filters, options, paging and
schema.

The engine (paging, retrying, converting, caching, registering in DuckDB) reads only these
declarations, so each resource of the API is a declaration, not a copy of code. A declaration is
checked when it is made (`Resource.__post_init__`): a key, filter or item column that is not a column
of the schema of the right type, a path template that does not use exactly the keys, or a parameter
name that collides or is a reserved word in SQL fails at import, not mid-query.

A request is validated once, at the edge, into a `Request` (path and query parameters) that the engine
trusts; nothing downstream checks ids or options again. The rows the API answers are held to the
request (`Request.conform`): every row must belong to the keys asked for, and a filter the server
ignored cannot let a row of another value through.

>>> from duckdb_openai.resources.run_steps import RUN_STEPS
>>> request = RUN_STEPS.bind_list({"thread_id": "thread_a", "run_id": "run_b"}, {"sort": "desc"})
>>> request.path, request.order, request.params
('threads/thread_a/runs/run_b/steps', 'desc', ())
>>> RUN_STEPS.bind_item({"thread_id": "thread_a", "run_id": "run_b"}, "step_c").path
'threads/thread_a/runs/run_b/steps/step_c'
"""

from __future__ import annotations

import logging
import string
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal, TypeVar
from urllib.parse import quote

import pyarrow as pa
import pyarrow.compute as pc

from duckdb_openai.errors import ConfigurationError, FetchError, ResponseFormatError
from duckdb_openai.resources.paging import CURSOR_PAGING, Paging
from duckdb_openai.resources.params import (
    ENGINE_OPTIONS,
    ID_PATTERN,
    SQL_RESERVED,
    Filter,
    Key,
    Option,
    OptionValue,
    check_id,
    sort_option,
)

__all__ = [
    "ENGINE_OPTIONS",
    "ID_PATTERN",
    "PLAIN",
    "SQL_RESERVED",
    "CacheMode",
    "Family",
    "Filter",
    "Key",
    "Lifecycle",
    "Option",
    "OptionValue",
    "Parent",
    "Request",
    "Resource",
    "check_id",
    "check_relations",
    "sort_option",
]

_log = logging.getLogger("duckdb_openai")

Order = Literal["asc", "desc"]
_Rows = TypeVar("_Rows", pa.RecordBatch, pa.Table)
#: A query's use of the cache (`cache.py`): read and fill it, bypass it, or fetch everything and replace.
CacheMode = Literal["on", "off", "refresh"]
#: A filter the server ignored is logged at most this often (seconds) per resource and filter.
IGNORED_FILTER_INTERVAL = 60.0
_ignored_at: dict[tuple[str, str], float] = {}


@dataclass(frozen=True)
class Family:
    """What every request of one API family shares: the headers it needs, the credential it is sent with,
    and what its errors add. The engine names no family; it reads these.

    `credential` is 'api_key' (the project key, or a token from token_provider=) or 'admin_key' (the
    organization's admin key: usage, costs, audit logs); `retired_at_default` is added to a 404's
    message when base_url is OpenAI's default, where the family's API was shut down; `auth_advice` to
    a 401's or 403's."""

    name: str
    headers: tuple[tuple[str, str], ...] = ()
    credential: Literal["api_key", "admin_key"] = "api_key"
    retired_at_default: str | None = None
    auth_advice: str | None = None


@dataclass(frozen=True)
class Lifecycle:
    """How an object's status column tells that it is finished (what the cache may keep; `cache.py`).

    `frozen`: a finished object never changes at all (no endpoint modifies a run step), so it may be
    served from the cache forever. Otherwise (a run takes metadata updates) only its status is final:
    the object itself is fetched again, but a finished parent proves its children's list complete.
    """

    column: str
    terminal: frozenset[str]
    frozen: bool
    #: The creation-time column: how old the newest object of a list is.
    created: str = "created_at"


@dataclass(frozen=True)
class Parent:
    """The resource whose one object owns each list of this resource, and how the keys map to it.

    Run steps' keys (thread_id, run_id) are a runs row's (thread_id, id): a finished run gets no new
    steps. `columns` pairs each key of this resource with the parent's column, in the order of the
    parent's keys then its item column.
    """

    resource: str
    columns: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Request:
    """One validated request: which resource, its keys, the path and query, the order (lists only).

    Built by `Resource.bind_list` / `bind_item` from user input; the engine trusts it as it is.
    """

    resource: Resource
    keys: Mapping[str, str]
    path: str
    #: Query parameters other than the order, the page size and the cursor.
    params: tuple[tuple[str, str], ...]
    #: The asked order of a list; None for an item (and for a list with one order only).
    order: Order | None
    #: The item's id, for an item request.
    item_id: str | None = None
    #: This row's `on_error` when it differs from the query's (a LATERAL row may set its own).
    on_error: str | None = None
    #: This row's use of the cache; None: the client's setting ('on' unless the cache is off).
    cache: CacheMode | None = None
    #: Start the list after this object id (an incremental read: what came since); None: from the start.
    #: Such a list is paged from its start only, in the asked order, and never served from the cache.
    after: str | None = None
    #: The options' checked values (every option, defaults filled in).
    options: Mapping[str, OptionValue] = field(default_factory=dict)
    #: Per selecting filter given: its column and the values a row's column may hold.
    selects: tuple[tuple[str, str, frozenset[object]], ...] = ()
    #: Per map filter given: its column and the key/value pairs a row's map must hold.
    selects_pairs: tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...] = ()
    #: A filter value no object can hold was given: the request is not sent and gives no rows.
    nothing: bool = False

    @property
    def is_item(self) -> bool:
        return self.item_id is not None

    def describe(self) -> str:
        """`thread_id='..', run_id='..'` (and the item id): what an error names."""
        parts = [f"{name}={value!r}" for name, value in self.keys.items()]
        if self.item_id is not None:
            parts.append(f"{self.resource.item_key.name}={self.item_id!r}")
        elif not parts:
            # A list without keys (stored chat completions): its filters say which list it was.
            parts = [f"{name}={value!r}" for name, value in self.params] or ["the whole list"]
        return ", ".join(parts)

    @property
    def name(self) -> str:
        """The SQL name of what was asked for: the list (`runs`) or the item (`run`)."""
        return self.resource.item_name if self.is_item else self.resource.name

    def empty(self) -> pa.Table:
        """No rows, in the resource's schema."""
        return self.resource.schema.empty_table()

    def conform(self, rows: _Rows, *, received_at: float | None = None) -> _Rows:
        """`rows` as answers to this request: every key column holds the request's key (filled where
        NULL; another value is a ResponseFormatError: a row of another thread or run is a broken
        contract), option columns hold the option's value, rows whose filter columns do not match what
        was asked are dropped (a server may ignore a filter; the rows must still be what was asked), and
        the resource's unfinished-row flag is set from `received_at` (seconds since the epoch).

        Some lists' objects do not carry their parent's id (a response's input items have no
        `response_id`): the key column is then filled from the request, so every row says whose it is
        and the catalog's `response_id = '..'` holds on the rows it returns. Costs nothing when the
        columns hold what was asked (run steps carry their keys)."""
        if rows.num_rows == 0:
            return rows
        for name, value in [*self.keys.items(), *self._option_columns()]:
            rows = _pin(rows, name, value, self)
        keep: pa.ChunkedArray | pa.Array | None = None
        for filter_name, column, allowed in self.selects:
            matches = pc.is_in(rows.column(column), value_set=pa.array(list(allowed)))
            keep = _and(keep, pc.fill_null(matches, False), self, filter_name, allowed)
        for filter_name, column, pairs in self.selects_pairs:
            keep = _and(keep, _holds_pairs(rows.column(column), pairs), self, filter_name, dict(pairs))
        if keep is not None and not pc.all(keep).as_py():
            rows = rows.filter(keep)
        flag = self.resource.unfinished
        if flag is not None and received_at is not None:
            name, end = flag
            index = rows.schema.get_field_index(name)
            now = pa.scalar(int(received_at * 1_000_000), rows.schema.field(end).type)
            still_open = pc.fill_null(pc.greater(rows.column(end), now), False)
            rows = rows.set_column(index, rows.schema.field(index), still_open)
        return rows

    def _option_columns(self) -> list[tuple[str, OptionValue]]:
        return [
            (o.column, self.options[o.name])
            for o in self.resource.options
            if o.column is not None and o.name in self.options
        ]

    def with_keys(self, rows: _Rows) -> _Rows:
        """`rows` with this request's keys (see `conform`)."""
        return self.conform(rows)


def _pin(rows: _Rows, name: str, value: object, request: Request) -> _Rows:
    """`rows` with column `name` holding `value` on every row: NULLs filled, another value refused."""
    index = rows.schema.get_field_index(name)
    column = rows.column(index)
    if column.null_count < rows.num_rows:
        wrong = pc.fill_null(pc.not_equal(column, pa.scalar(value, column.type)), False)
        if pc.any(wrong).as_py():
            other = column.filter(wrong)[0].as_py()
            raise ResponseFormatError(
                f"the API answered {request.name} for {request.describe()} with a row whose {name} is "
                f"{other!r}; a row of another {name} is a broken contract"
            )
    if column.null_count:
        rows = rows.set_column(index, rows.schema.field(index), pc.fill_null(column, value))
    return rows


def _and(
    keep: pa.Array | pa.ChunkedArray | None,
    matches: pa.Array | pa.ChunkedArray,
    request: Request,
    filter_name: str,
    asked: object,
) -> pa.Array | pa.ChunkedArray:
    dropped = len(matches) - pc.sum(pc.cast(matches, pa.int64())).as_py()
    if dropped:
        key = (request.resource.name, filter_name)
        now = time.monotonic()
        if now - _ignored_at.get(key, -IGNORED_FILTER_INTERVAL) >= IGNORED_FILTER_INTERVAL:
            _ignored_at[key] = now
            shown = sorted(asked) if isinstance(asked, frozenset) else asked
            _log.warning(
                "%s: the server ignored the filter %s=%r (%s): %d rows that do not match were dropped",
                request.resource.name,
                filter_name,
                shown,
                request.describe(),
                dropped,
            )
    return matches if keep is None else pc.and_(keep, matches)


def _holds_pairs(column: pa.Array | pa.ChunkedArray, pairs: tuple[tuple[str, str], ...]) -> pa.Array:
    """Whether each row's MAP holds every key/value pair."""
    values = column.to_pylist()
    return pa.array(
        [value is not None and all((k, v) in value for k, v in pairs) for value in values], pa.bool_()
    )


def _placeholders(template: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]


#: A resource's requests when no family is declared (tests' own declarations).
PLAIN = Family("plain")


@dataclass(frozen=True)
class Resource:
    """A resource of the API: an optional list endpoint, an item endpoint, and the Arrow schema of one
    object (one row).

    `keys` are the parent ids both endpoints need (thread_id and run_id for run steps; none for
    assistants); `item_key` is the id of one object on the item endpoint. A resource the API cannot list
    (threads) has `path=None` and only its item form; one it cannot retrieve one by one (a response's
    input items) has `item_path_template=None` and only its list form. `paging` is how its list pages
    (`resources/paging.py`); rows without ids (usage results) have `item_column=None`.
    """

    name: str
    item_name: str
    #: Path template of the list endpoint, relative to the base URL; None if the API cannot list it.
    path: str | None
    keys: tuple[Key, ...]
    #: The key of one object on the item endpoint, and its path template (None: no item endpoint).
    item_key: Key
    item_path_template: str | None
    schema: pa.Schema
    options: tuple[Option, ...] = ()
    filters: tuple[Filter, ...] = ()
    #: The column holding each object's id (pages' cursors and the catalog's `id =`); None: no ids.
    item_column: str | None = "id"
    #: The option that holds the sort order ("asc"/"desc"); None: the list has one order only.
    order_option: str | None = "sort"
    paging: Paging = CURSOR_PAGING
    family: Family = PLAIN
    #: The StackQL form's table: `openai.<catalog_schema>.<catalog_table>` (the table defaults to `name`).
    catalog_schema: str = "assistants"
    catalog_table: str = ""
    doc: str = ""
    #: Which status ends an object's changes (None: the cache never keeps this resource's rows).
    lifecycle: Lifecycle | None = None
    #: The resource owning each list (run steps: runs), whose finished status proves the list complete.
    parent: Parent | None = None
    #: The error naming a failed list or item of this resource (RunFetchError for run steps).
    fetch_error: type[FetchError] = FetchError
    #: What a fan-out's progress bar counts: the lists (or items) fetched, and the rows.
    progress_units: tuple[str, str] = ("lists", "rows")
    #: (flag column, end column): the flag is true on rows whose end column was still in the future
    #: when the page arrived (a usage bucket that had not ended: its sums may still grow).
    unfinished: tuple[str, str] | None = None
    #: The `choices` filter that groups rows by dimension columns (usage's group_by): a dimension a
    #: filter selects on is grouped by too, so every row says which value it is of and is checked.
    grouping: str | None = None
    options_by_name: Mapping[str, Option] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "options_by_name", {o.name: o for o in self.options})
        if not self.catalog_table:
            object.__setattr__(self, "catalog_table", self.name)
        self._check()

    def __hash__(self) -> int:
        return hash(self.name)

    # -- the declaration's own checks ---------------------------------------------------------------------

    def _check(self) -> None:
        def fail(problem: str) -> None:
            raise TypeError(f"resource {self.name!r} is declared wrong: {problem}")

        names = self.schema.names

        def string_column(column: str, what: str) -> None:
            if column not in names:
                fail(f"{column!r} is not a column of its schema ({what})")
            if not pa.types.is_string(self.schema.field(column).type):
                fail(f"column {column!r} must be a string column to hold ids ({what})")

        for key in self.keys:
            string_column(key.name, "a key")
        if self.item_column is not None:
            string_column(self.item_column, "the item column")
        elif self.retrievable or self.paging.has_ids:
            fail("it has no item column, yet its item endpoint or its paging needs ids")
        for f in self.filters:
            target = f.target
            if target is not None and target not in names:
                fail(f"{target!r} (the column of filter {f.name!r}) is not a column of its schema")
            if f.kind in ("id", "ids") and target is not None:
                string_column(target, f"filter {f.name!r}")
        for option in self.options:
            if option.column is not None and option.column not in names:
                fail(
                    f"{option.column!r} (the column of option {option.name!r}) is not a column of its schema"
                )
        key_names = [k.name for k in self.keys]
        if self.path is not None and _placeholders(self.path) != key_names:
            fail(f"its list path {self.path!r} must use exactly the keys {key_names}")
        if self.path is None and self.item_path_template is None:
            fail("it has neither a list nor an item endpoint")
        if self.item_path_template is not None and _placeholders(self.item_path_template) != [
            *key_names,
            self.item_key.name,
        ]:
            fail(f"its item path must use the keys then {self.item_key.name!r}")
        parameters = [
            *key_names,
            self.item_key.name,
            *(o.name for o in self.options),
            *(f.name for f in self.filters),
            *(name for name, _ in ENGINE_OPTIONS),
        ]
        repeated = sorted({p for p in parameters if parameters.count(p) > 1})
        if repeated:
            fail(f"parameter names are used twice: {repeated}")
        reserved = sorted(p for p in parameters if p.lower() in SQL_RESERVED)
        if reserved:
            fail(f"parameter names {reserved} are reserved words in SQL")
        if self.path is not None and self.order_option not in (None, *self.options_by_name):
            fail(f"its order option {self.order_option!r} is not one of its options")
        if self.paging.reversible and self.order_option is None:
            fail("its paging reads lists from both ends, which needs an order option")
        for column in (*self.paging.records.copied, *filter(None, [self.paging.records.ascending])):
            if column not in names:
                fail(f"{column!r} (a field its records copy) is not a column of its schema")
        if self.unfinished is not None:
            flag, end = self.unfinished
            if flag not in names or not pa.types.is_boolean(self.schema.field(flag).type):
                fail(f"its unfinished flag {flag!r} is not a boolean column of its schema")
            if end not in names or not pa.types.is_timestamp(self.schema.field(end).type):
                fail(f"its end column {end!r} is not a timestamp column of its schema")
        if self.grouping is not None:
            by_name = {f.name: f for f in self.filters}
            if self.grouping not in by_name or by_name[self.grouping].kind != "choices":
                fail(f"its grouping {self.grouping!r} is not one of its `choices` filters")
            missing = [c for c in by_name[self.grouping].choices if c not in names]
            if missing:
                fail(f"its grouping's dimensions {missing} are not columns of its schema")
        if self.lifecycle is not None:
            column = self.lifecycle.column
            if column not in names or not pa.types.is_string(self.schema.field(column).type):
                fail(f"its lifecycle's status column {column!r} is not a string column of its schema")
            if not self.lifecycle.terminal:
                fail("its lifecycle names no terminal status")
            created = self.lifecycle.created
            if created not in names or not pa.types.is_timestamp(self.schema.field(created).type):
                fail(f"its lifecycle's creation column {created!r} is not a timestamp column of its schema")
        if self.parent is not None and [k for k, _ in self.parent.columns] != key_names:
            fail(f"its parent relation must map exactly its keys {key_names}, in order")

    # -- binding user input -------------------------------------------------------------------------------

    @property
    def listable(self) -> bool:
        return self.path is not None

    @property
    def retrievable(self) -> bool:
        return self.item_path_template is not None

    @property
    def required(self) -> tuple[Filter, ...]:
        """The filters a list request must be given (usage's start_time), in declared order."""
        return tuple(f for f in self.filters if f.required)

    def _key_values(self, keys: Mapping[str, object]) -> dict[str, str]:
        return {k.name: check_id(k, keys.get(k.name)) for k in self.keys}

    def check_options(self, options: Mapping[str, object], *, item: bool = False) -> dict[str, OptionValue]:
        """Every option with its default filled in; unknown names and bad values raise ConfigurationError.

        For an item, only the options the item endpoint takes are allowed.
        """
        allowed = [o for o in self.options if o.on_item or not item]
        by_name = {o.name: o for o in allowed}
        filters = {} if item else {f.name: f for f in self.filters}
        unknown = sorted(set(options) - set(by_name) - set(filters))
        if unknown:
            names = ", ".join([*by_name, *filters]) or "none"
            what = self.item_name if item else self.name
            raise ConfigurationError(f"unknown option {unknown[0]!r} for {what}; its options are {names}")
        return {o.name: o.check(options.get(o.name, o.default)) for o in allowed}

    def bind_list(
        self,
        keys: Mapping[str, object],
        options: Mapping[str, object] | None = None,
        *,
        after: str | None = None,
    ) -> Request:
        """The list request for these keys and options (filters among them: None leaves one out).

        `after`: an object id of the list; the request reads only what comes after it in the asked order
        (the API's `after` cursor), for incremental reads."""
        if self.path is None:
            raise ConfigurationError(
                f"the API cannot list {self.name}: use {self.item_name}("
                f"{', '.join([*(k.name for k in self.keys), self.item_key.name])}) with known ids"
            )
        options = dict(options or {})
        filter_values = {f.name: options.pop(f.name, None) for f in self.filters}
        values = self._key_values(keys)
        checked = self.check_options(options)
        for f in self.required:
            if filter_values[f.name] is None:
                raise ConfigurationError(
                    f"{self.name} needs {f.name} (such as {f.example}): {f.doc or 'a required parameter'}"
                )
        self._group_selected(filter_values)
        params: list[tuple[str, str]] = []
        selects: list[tuple[str, str, frozenset[object]]] = []
        selects_pairs: list[tuple[str, str, tuple[tuple[str, str], ...]]] = []
        nothing = False
        for f in self.filters:
            value = filter_values[f.name]
            if value is None:
                continue
            encoded = f.encode(value)
            if encoded is None:
                nothing = True
                continue
            params.extend(encoded)
            allowed = f.selects(value)
            if allowed is not None and f.target is not None:
                selects.append((f.name, f.target, allowed))
            elif f.kind == "map" and f.target is not None:
                selects_pairs.append((f.name, f.target, tuple(f.pairs(value))))
        for option in self.options:
            if option.name != self.order_option:
                params.extend(option.encode(checked[option.name]))
        order: Order | None = None
        if self.order_option is not None:
            order = "desc" if checked[self.order_option] == "desc" else "asc"
        path = self.path.format(**{name: quote(value, safe="") for name, value in values.items()})
        start = None if after is None else check_id(Key("after", self.item_key.example), after)
        return Request(
            self,
            values,
            path,
            tuple(params),
            order,
            after=start,
            options=checked,
            selects=tuple(selects),
            selects_pairs=tuple(selects_pairs),
            nothing=nothing,
        )

    def _group_selected(self, filter_values: dict[str, object]) -> None:
        """Add the dimensions that given filters select on to the grouping filter's value (in place)."""
        if self.grouping is None:
            return
        grouping = next(f for f in self.filters if f.name == self.grouping)
        chosen = filter_values.get(self.grouping)
        dims = list(grouping._list(chosen)) if chosen is not None else []
        for f in self.filters:
            if (
                filter_values.get(f.name) is not None
                and f.target in grouping.choices
                and f.target not in dims
            ):
                dims.append(f.target)
        if dims:
            filter_values[self.grouping] = dims

    def bind_item(
        self, keys: Mapping[str, object], item_id: object, options: Mapping[str, object] | None = None
    ) -> Request:
        """The item request for these keys, item id and options."""
        if self.item_path_template is None:
            raise ConfigurationError(
                f"the API cannot retrieve one of {self.name} by id: read {self.name}("
                f"{', '.join(k.name for k in self.keys)}) and filter it"
            )
        values = self._key_values(keys)
        item = check_id(self.item_key, item_id)
        checked = self.check_options(options or {}, item=True)
        params = [p for o in self.options if o.on_item for p in o.encode(checked[o.name])]
        segments = {name: quote(value, safe="") for name, value in values.items()}
        segments[self.item_key.name] = quote(item, safe="")
        path = self.item_path_template.format(**segments)
        return Request(self, values, path, tuple(params), None, item_id=item, options=checked)


def check_relations(resources: Iterable[Resource]) -> None:
    """Check that each parent relation names a resource of `resources` whose keys and item column are
    the relation's columns, in order; TypeError naming the mismatch. (A parent not among them is
    allowed: its statuses are then only learned once it is declared.)"""
    by_name = {r.name: r for r in resources}
    for resource in by_name.values():
        parent = resource.parent
        if parent is None or parent.resource not in by_name:
            continue
        owner = by_name[parent.resource]
        expected = [*(k.name for k in owner.keys), owner.item_column]
        if [column for _, column in parent.columns] != expected:
            raise TypeError(
                f"resource {resource.name!r} is declared wrong: its parent {owner.name!r} is identified by "
                f"{expected}, not {[c for _, c in parent.columns]}"
            )
        if owner.lifecycle is None:
            raise TypeError(f"resource {owner.name!r} is a parent, so it needs a lifecycle")
