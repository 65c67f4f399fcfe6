"""`register(con)`: the resource as DuckDB table macros over vectorized Python functions.

DuckDB 2.0 has no public Python table-function API, so each table is a TEMP table macro over a
`type='arrow'` scalar function that returns, per input row, the LIST of that row's objects; the macro
unnests it into rows and columns. DuckDB hands the function up to 2,048 input rows at a time, which is
where the concurrency across a LATERAL join comes from::

    run_steps(thread_id, run_id, sort := 'asc', include_content := false,
              on_error := NULL, max_concurrency := NULL, progress := NULL)
    run_step(thread_id, run_id, step_id, include_content := false, on_error := NULL)

The macros hold no secret: the key lives only in the Python function's closure, never in SQL text,
so `duckdb_functions()`, `duckdb_views()` and EXPLAIN cannot show it.
"""

from __future__ import annotations

import contextlib
import inspect
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import duckdb.func as duckdb_func
import pyarrow as pa

from duckdb_openai.errors import ConfigurationError
from duckdb_openai.resource import Resource
from duckdb_openai.schema import duckdb_type
from duckdb_openai.session import Client, FanOutRequest

__all__ = ["Registration", "register"]

#: Named parameters the engine adds to every list macro, with their SQL types; NULL means the
#: registration's setting.
ENGINE_OPTIONS = (("on_error", "VARCHAR"), ("max_concurrency", "BIGINT"), ("progress", "VARCHAR"))


@dataclass
class Registration:
    """What `register` made: the client (close it to free its thread and sockets) and the SQL names."""

    client: Client
    list_function: str
    item_function: str
    macros: tuple[str, ...]
    source: Any = None

    def close(self) -> None:
        self.client.close()


def _function_name(resource: Resource, kind: str) -> str:
    return f"_duckdb_openai_{resource.name}_{kind}"


def _columns(arrays: Sequence[pa.Array | pa.ChunkedArray]) -> list[list[Any]]:
    return [a.to_pylist() for a in arrays]


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
    function.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(name, inspect.Parameter.POSITIONAL_ONLY) for name in names]
    )
    return function


def register(con: duckdb.DuckDBPyConnection, *, client: Client | None = None, **kwargs: Any) -> Registration:
    """Give `con` the table macros `run_steps(...)` and `run_step(...)`, and, where DuckDB's source
    protocol is available, the table `openai.assistants.run_steps`.

    Keyword arguments configure the client (see `Client`); `api_key` falls back to OPENAI_API_KEY.
    Registering again on the same connection replaces the earlier registration.
    """
    owned = client is None
    if client is None:
        client = Client(**kwargs)
    elif kwargs:
        raise ConfigurationError("pass either client= or client settings to register(), not both")
    resource = client.resource
    owner = id(con)
    row_type = pa.struct(list(resource.schema))
    list_type = pa.list_(row_type)
    list_name = _function_name(resource, "list")
    item_name = _function_name(resource, "item")
    option_names = [o.name for o in resource.options]

    def list_rows(*arrays: pa.Array) -> pa.Array:
        columns = _columns(arrays)
        n_keys = len(resource.keys)
        keys_columns = columns[:n_keys]
        option_columns = columns[n_keys : n_keys + len(option_names)]
        on_error, max_concurrency, progress = (
            col[0] if col else None for col in columns[n_keys + len(option_names) :]
        )
        requests: list[FanOutRequest] = []
        for row in range(len(keys_columns[0])):
            keys = {k.name: keys_columns[i][row] for i, k in enumerate(resource.keys)}
            if any(v is None for v in keys.values()):
                requests.append(None)
                continue
            options = {
                name: col[row]
                for name, col in zip(option_names, option_columns, strict=True)
                if col[row] is not None
            }
            resource.list_path(keys)
            resource.check_options(options)
            requests.append((keys, None, options))
        tables = client.fan_out(
            requests,
            on_error=on_error,
            max_concurrency=int(max_concurrency) if max_concurrency is not None else None,
            progress=progress,
            owner=owner,
        )
        return _list_array(tables, list_type)

    def item_rows(*arrays: pa.Array) -> pa.Array:
        columns = _columns(arrays)
        n_keys = len(resource.keys)
        keys_columns, item_column = columns[:n_keys], columns[n_keys]
        option_columns = columns[n_keys + 1 : n_keys + 1 + len(option_names)]
        on_error = columns[-1][0] if columns[-1] else None
        requests: list[FanOutRequest] = []
        for row in range(len(item_column)):
            keys = {k.name: keys_columns[i][row] for i, k in enumerate(resource.keys)}
            item = item_column[row]
            if item is None or any(v is None for v in keys.values()):
                requests.append(None)
                continue
            options = {
                name: col[row]
                for name, col in zip(option_names, option_columns, strict=True)
                if col[row] is not None and name != resource.order_option
            }
            resource.item_path(keys, item)
            resource.check_options(options)
            requests.append((keys, item, options))
        tables = client.fan_out(requests, on_error=on_error, progress="off", owner=owner)
        return _list_array(tables, list_type)

    list_sql_type = duckdb_type(list_type)
    key_types = ["VARCHAR"] * len(resource.keys)
    option_types = [o.sql_type for o in resource.options]
    for name in (list_name, item_name):
        with contextlib.suppress(duckdb.InvalidInputException, duckdb.CatalogException):
            con.remove_function(name)
    list_params = [*(k.name for k in resource.keys), *option_names, *(n for n, _ in ENGINE_OPTIONS)]
    item_params = [*(k.name for k in resource.keys), resource.item_key.name, *option_names, "on_error"]
    con.create_function(
        list_name,
        _with_arity(list_rows, list_params),
        [*key_types, *option_types, *(t for _, t in ENGINE_OPTIONS)],
        list_sql_type,
        type=duckdb_func.ARROW,
        null_handling=duckdb_func.SPECIAL,
        side_effects=True,
    )
    item_options = [o for o in resource.options if o.name != resource.order_option]
    con.create_function(
        item_name,
        _with_arity(item_rows, item_params),
        [*key_types, "VARCHAR", *option_types, "VARCHAR"],
        list_sql_type,
        type=duckdb_func.ARROW,
        null_handling=duckdb_func.SPECIAL,
        side_effects=True,
    )
    key_names = [k.name for k in resource.keys]
    named = [f"{o.name} := {_sql_literal(o.default)}" for o in resource.options]
    engine = [f"{name} := NULL" for name, _ in ENGINE_OPTIONS]
    call_args = ", ".join([*key_names, *option_names, *(n for n, _ in ENGINE_OPTIONS)])
    con.execute(
        f"CREATE OR REPLACE TEMP MACRO {resource.name}({', '.join([*key_names, *named, *engine])}) AS TABLE "
        f"SELECT __row.* FROM (SELECT unnest({list_name}({call_args})) AS __row)"
    )
    item_key = resource.item_key.name
    item_named = [f"{o.name} := {_sql_literal(o.default)}" for o in item_options]
    item_args = ", ".join(
        [
            *key_names,
            item_key,
            *(o.name if o in item_options else _sql_literal(o.default) for o in resource.options),
        ]
    )
    con.execute(
        f"CREATE OR REPLACE TEMP MACRO {resource.item_name}("
        f"{', '.join([*key_names, item_key, *item_named, 'on_error := NULL'])}) AS TABLE "
        f"SELECT __row.* FROM (SELECT unnest({item_name}({item_args}, on_error)) AS __row)"
    )
    registration = Registration(client, list_name, item_name, (resource.name, resource.item_name))
    if owned:
        # The connection owns the client it made: its thread and sockets go when the connection goes.
        weakref.finalize(con, client.close)
    from duckdb_openai.source import attach_catalog

    registration.source = attach_catalog(con, client)
    return registration


def _sql_literal(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"
