"""`register(con)`: every resource as DuckDB table macros over vectorized Python functions.

DuckDB 2.0 has no public Python table-function API, so each table is a TEMP table macro over a
`type='arrow'` scalar function that returns, per input row, the LIST of that row's objects; the macro
unnests it into rows and columns. DuckDB hands the function up to 2,048 input rows at a time, which is
where the concurrency across a LATERAL join comes from. For each resource (see `resources/__init__.py`)::

    <name>(keys..., filters := NULL, options := defaults, on_error := NULL, max_concurrency := NULL,
           progress := NULL, cache := NULL)                   the list, if the API can list it
    <item_name>(keys..., item_id, item options, on_error := NULL, cache := NULL)   one object

e.g. `run_steps(thread_id, run_id, sort := 'asc', include_content := false)`, `runs(thread_id)`,
`messages(thread_id, run_id := NULL)`, `thread(thread_id)`.

Every argument may differ from row to row of a LATERAL join (each row's `on_error` is its own), except
`max_concurrency` and `progress`, which govern the whole call and must be the same in every row.
`cache` is 'on' (NULL: the default), 'off' or 'refresh' (`cache.py`); `register(con, cache=False)`
turns the cache off whatever a query asks.

A macro's call with constant arguments still fetches the whole list before the first row: DuckDB
expands a macro before it plans, so the macro cannot tell a constant argument from a column, and a
scalar function returns whole lists. The catalog form (`openai.assistants.run_steps WHERE ...`)
streams, so `LIMIT 5` there makes one request.

The macros hold no secret: the key lives only in the Python function's closure, never in SQL text,
so `duckdb_functions()`, `duckdb_views()` and EXPLAIN cannot show it. Function names are unique per
registration, so any number of connections and cursors of one database may be registered at once.
"""

from __future__ import annotations

import contextlib
import inspect
import itertools
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import duckdb
import duckdb.func as duckdb_func
import pyarrow as pa

from duckdb_openai.client import Client, check_keywords
from duckdb_openai.config import check_on_error
from duckdb_openai.engine.cache import check_cache_mode
from duckdb_openai.errors import ConfigurationError
from duckdb_openai.resources import RESOURCES
from duckdb_openai.resources.base import ENGINE_OPTIONS, Request, Resource
from duckdb_openai.schema import duckdb_type

__all__ = ["Registration", "register"]

_serial = itertools.count(1)
#: The registration of each connection, so registering again replaces it.
_registered: weakref.WeakKeyDictionary[duckdb.DuckDBPyConnection, Registration] = weakref.WeakKeyDictionary()


@dataclass
class Registration:
    """What `register` made: the client (close it to free its thread and sockets) and the SQL names."""

    client: Client
    #: The Python functions behind the macros (unique to this registration).
    functions: list[str] = field(default_factory=list)
    #: The table macros, e.g. run_steps, run_step, runs, ...
    macros: list[str] = field(default_factory=list)
    #: The catalog tables (`openai.assistants.runs`, ...) and their sources; empty where DuckDB lacks
    #: the source protocol.
    sources: dict[str, Any] = field(default_factory=dict)

    def close(self) -> None:
        self.client.close()


def _list_array(tables: Sequence[pa.Table | None], list_type: pa.ListType) -> pa.Array:
    """One LIST per input row (empty for None) over the concatenated rows."""
    offsets = [0]
    present = [t for t in tables if t is not None and t.num_rows]
    for table in tables:
        offsets.append(offsets[-1] + (table.num_rows if table is not None else 0))
    row_type = list_type.value_type
    if present:
        rows = pa.concat_tables(present).combine_chunks().to_struct_array()
        values = rows.chunk(0) if isinstance(rows, pa.ChunkedArray) and rows.num_chunks == 1 else rows
        if isinstance(values, pa.ChunkedArray):
            values = pa.concat_arrays(values.chunks)
        values = values.cast(row_type) if values.type != row_type else values
    else:
        values = pa.array([], row_type)
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), values, type=list_type)


def _with_arity(function: Callable[..., pa.Array], names: Sequence[str]) -> Callable[..., pa.Array]:
    """`function` with an explicit signature of `names`: DuckDB counts a UDF's parameters from it."""

    def call(*arrays: pa.Array) -> pa.Array:
        return function(*arrays)

    call.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(name, inspect.Parameter.POSITIONAL_ONLY) for name in names]
    )
    return call


def _one_value(name: str, column: list[Any]) -> Any:
    """The one value a whole-call setting has in every row; a ConfigurationError when rows differ."""
    values = set(column)
    if len(values) > 1:
        shown = ", ".join(sorted(repr(v) for v in values))
        raise ConfigurationError(
            f"{name} governs the whole call and must be the same in every row, not {shown}; "
            "pass it as a constant"
        )
    return column[0] if column else None


class _Binder:
    """The functions and macros of one resource on one connection, derived from its declaration."""

    def __init__(self, resource: Resource, client: Client, owner: int, serial: int) -> None:
        self.resource = resource
        self.client = client
        self.owner = owner
        self.list_type = pa.list_(pa.struct(list(resource.schema)))
        self.keys = [k.name for k in resource.keys]
        self.filters = [f.name for f in resource.filters]
        self.options = [o.name for o in resource.options]
        self.item_options = [o.name for o in resource.options if o.on_item]
        self.list_function = f"_duckdb_openai_{serial}_{resource.name}"
        self.item_function = f"_duckdb_openai_{serial}_{resource.item_name}"

    # -- what DuckDB calls -------------------------------------------------------------------------------

    def list_rows(self, *arrays: pa.Array) -> pa.Array:
        columns = [a.to_pylist() for a in arrays]
        keys_columns = columns[: len(self.keys)]
        rest = columns[len(self.keys) :]
        filter_columns, rest = rest[: len(self.filters)], rest[len(self.filters) :]
        option_columns, (on_error, max_concurrency, progress, cache) = (
            rest[: len(self.options)],
            rest[len(self.options) :],
        )
        rows = len(columns[0]) if columns else 0
        requests: list[Request | None] = []
        for row in range(rows):
            keys = {name: column[row] for name, column in zip(self.keys, keys_columns, strict=True)}
            if any(v is None for v in keys.values()):
                requests.append(None)
                continue
            options = {
                name: column[row]
                for name, column in zip(
                    [*self.filters, *self.options], [*filter_columns, *option_columns], strict=True
                )
                if column[row] is not None
            }
            request = self.resource.bind_list(keys, options)
            requests.append(_with_row_options(request, on_error[row], cache[row]))
        limit = _one_value("max_concurrency", max_concurrency)
        tables = self.client.fan_out(
            requests,
            max_concurrency=int(limit) if limit is not None else None,
            progress=_one_value("progress", progress),
            owner=self.owner,
        )
        return _list_array(tables, self.list_type)

    def item_rows(self, *arrays: pa.Array) -> pa.Array:
        columns = [a.to_pylist() for a in arrays]
        keys_columns = columns[: len(self.keys)]
        item_column = columns[len(self.keys)]
        option_columns = columns[len(self.keys) + 1 : -2]
        on_error, cache = columns[-2], columns[-1]
        requests: list[Request | None] = []
        for row in range(len(item_column)):
            keys = {name: column[row] for name, column in zip(self.keys, keys_columns, strict=True)}
            item = item_column[row]
            if item is None or any(v is None for v in keys.values()):
                requests.append(None)
                continue
            options = {
                name: column[row]
                for name, column in zip(self.item_options, option_columns, strict=True)
                if column[row] is not None
            }
            request = self.resource.bind_item(keys, item, options)
            requests.append(_with_row_options(request, on_error[row], cache[row]))
        tables = self.client.fan_out(requests, progress="off", owner=self.owner)
        return _list_array(tables, self.list_type)

    # -- declaring them ----------------------------------------------------------------------------------

    def create(self, con: duckdb.DuckDBPyConnection) -> tuple[list[str], list[str]]:
        """Create the functions and macros on `con`; their names."""
        resource = self.resource
        list_sql_type = duckdb_type(self.list_type)
        by_name = resource.options_by_name
        functions: list[str] = []
        macros: list[str] = []
        if resource.listable:
            params = [*self.keys, *self.filters, *self.options, *(n for n, _ in ENGINE_OPTIONS)]
            types = [
                *(["VARCHAR"] * len(self.keys)),
                *(f.sql_type for f in resource.filters),
                *(by_name[o].sql_type for o in self.options),
                *(t for _, t in ENGINE_OPTIONS),
            ]
            self._function(con, self.list_function, self.list_rows, params, types, list_sql_type)
            required = [f.name for f in resource.required]
            named = [
                *(f"{f.name} := NULL" for f in resource.filters if not f.required),
                *(f"{name} := {_sql_literal(by_name[name].default)}" for name in self.options),
                *(f"{name} := NULL" for name, _ in ENGINE_OPTIONS),
            ]
            arguments = [
                *self.keys,
                *(f.sql_argument for f in resource.filters),
                *self.options,
                *(_engine_argument(n) for n, _ in ENGINE_OPTIONS),
            ]
            self._macro(con, resource.name, [*self.keys, *required, *named], self.list_function, arguments)
            functions.append(self.list_function)
            macros.append(resource.name)
        if not resource.retrievable:
            return functions, macros
        item_key = resource.item_key.name
        params = [*self.keys, item_key, *self.item_options, "on_error", "cache"]
        types = [
            *(["VARCHAR"] * (len(self.keys) + 1)),
            *(by_name[o].sql_type for o in self.item_options),
            "VARCHAR",
            "VARCHAR",
        ]
        self._function(con, self.item_function, self.item_rows, params, types, list_sql_type)
        named = [
            *(f"{o} := {_sql_literal(by_name[o].default)}" for o in self.item_options),
            "on_error := NULL",
            "cache := NULL",
        ]
        self._macro(con, resource.item_name, [*self.keys, item_key, *named], self.item_function, params)
        functions.append(self.item_function)
        macros.append(resource.item_name)
        return functions, macros

    @staticmethod
    def _function(
        con: duckdb.DuckDBPyConnection,
        name: str,
        function: Callable[..., pa.Array],
        params: list[str],
        types: list[str],
        returns: str,
    ) -> None:
        con.create_function(
            name,
            _with_arity(function, params),
            list[Any](types),
            returns,
            type=duckdb_func.ARROW,
            null_handling=duckdb_func.SPECIAL,
            side_effects=True,
        )

    @staticmethod
    def _macro(
        con: duckdb.DuckDBPyConnection, name: str, signature: list[str], function: str, args: list[str]
    ) -> None:
        con.execute(
            f"CREATE OR REPLACE TEMP MACRO {name}({', '.join(signature)}) AS TABLE "
            f"SELECT __row.* FROM (SELECT unnest({function}({', '.join(args)})) AS __row)"
        )


def _with_row_options(request: Request, on_error: object, cache: object) -> Request:
    """`request` with a row's own on_error and cache mode (None keeps the call's)."""
    if on_error is None and cache is None:
        return request
    return replace(
        request,
        on_error=None if on_error is None else check_on_error(str(on_error)),
        cache=None if cache is None else check_cache_mode(cache),
    )


def register(con: duckdb.DuckDBPyConnection, *, client: Client | None = None, **kwargs: Any) -> Registration:
    """Give `con` a table macro per resource (`run_steps(...)`, `run_step(...)`, `runs(...)`, ...) and,
    where DuckDB's source protocol is available, the catalog tables `openai.assistants.<resource>`.

    Keyword arguments configure the client (see `Client`); `api_key` falls back to OPENAI_API_KEY.
    The client keeps what can no longer change (finished runs' steps) in memory, or in `cache_dir`
    (falling back to DUCKDB_OPENAI_CACHE_DIR); `cache=False` turns that off (`cache.py`).
    Registering again on the same connection replaces the earlier registration. Cursors and other
    connections of the same database can be registered too (each needs its own `register`: DuckDB's
    macros are per connection).
    """
    owned = client is None
    check_keywords(kwargs, own=["client"], where="register()", noun="setting")  # `clinet=` names `client`
    if client is None:
        client = Client(**kwargs)
    elif kwargs:
        raise ConfigurationError("pass either client= or client settings to register(), not both")
    previous = _registered.pop(con, None)
    if previous is not None:
        for name in previous.functions:
            with contextlib.suppress(duckdb.Error):
                con.remove_function(name)
    serial = next(_serial)
    registration = Registration(client)
    for resource in RESOURCES:
        functions, macros = _Binder(resource, client, id(con), serial).create(con)
        registration.functions.extend(functions)
        registration.macros.extend(macros)
    if owned:
        # The connection owns the client it made: its thread and sockets go when the connection goes.
        weakref.finalize(con, client.close)
    from duckdb_openai.sql.catalog import attach_catalog

    registration.sources = attach_catalog(con, client)
    _registered[con] = registration
    return registration


def _engine_argument(name: str) -> str:
    """How a macro passes an engine option to its function: `progress` as text, so `progress := true`
    binds as `'true'` does."""
    return f"CAST({name} AS VARCHAR)" if name == "progress" else name


def _sql_literal(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"
