"""The StackQL form: the resource as a table in a catalog, its keys given in WHERE.

After `register(con)`::

    SELECT id, status, usage.total_tokens
    FROM openai.assistants.run_steps
    WHERE thread_id = 'thread_abc123' AND run_id = 'run_abc123';

DuckDB 2.0's internal source protocol (`duckdb._sources`) lets a Python object be scanned like an Arrow
table while it sees the query's projection and filters. `ResourceSource` is such an object for one
`Resource`. DuckDB offers it each conjunct of the WHERE clause (`accepts`), and, because DuckDB does not
apply an accepted filter again, it accepts only what it applies exactly:

- `key = 'value'` for each key column (thread_id, run_id): the keys of the list endpoint;
- `key IN ('a', 'b')` or `key = 'a' OR key = 'b'`: one list per combination of key values;
- `id = 'value'` or `id IN (...)` on the item column: the item endpoint, one request per id;
- an AND of these that arrives as one predicate (`run_id = 'a' AND run_id = 'b'` is empty: no request).

Everything else (`status = 'failed'`, `created_at > ...`, `run_id LIKE ...`, a collated comparison) is
declined, and DuckDB applies it above the scan. EXPLAIN shows both: the accepted filters under the
Python Arrow Scan's "Filters", next to its "Projections", and the rest in a Filter above it. A query
that does not pin every key column fails with a ConfigurationError showing the required form; to read
the runs listed in a table, use the table macro with a LATERAL join instead.

Reading: one key combination streams page by page (`Client.read`), so `LIMIT 5` stops after the first
page. Several combinations are fetched concurrently (`Client.fan_out`), a window of `max_concurrency`
at a time, in the order of the IN lists. Only the asked columns are returned.

Errors read alike on any page: the first page's error is raised by `stream()` ("exporting a stream from
the object registered as '...' failed: FetchError: ..."), and a later page's error, raised while DuckDB
pulls, is the stream's own error text ("reading the stream registered as '...' failed: FetchError:
..."), without the Python traceback pyarrow's stream would add (`sql/stream.py`).

LIMIT and DuckDB's threads: a LIMIT directly over the scan pulls exactly one batch. A LIMIT above a
filter DuckDB applies itself (`... AND status = 'completed' LIMIT 5`) runs on all of DuckDB's threads,
and each thread pulls batches until it alone holds the LIMIT's rows, so a stream of whole pages would
cost a request per thread. The first page is therefore handed out in slices of `FIRST_PAGE_SLICE`
rows, which the threads share before any of them asks for the second page: one request as long as
threads x max(LIMIT, FIRST_PAGE_SLICE) rows fit in a page (measured with LIMIT 5 and a 100-row page:
one request at 1 to 12 threads, 8 at 16). Later pages stay whole, so full scans keep full vectors.

Options: the table's columns are the resource's fields only, so this form uses every option's default
(for run steps: sort 'asc', include_content false); the table macro takes the others, e.g.
`run_steps(thread_id, run_id, sort := 'desc', include_content := true)`.

The key never reaches SQL: the hidden view scans this Python object, and the catalog's view is just
`SELECT * FROM` that hidden view. Being internal, the protocol is feature-detected (`scan_protocol`):
where it is missing, `attach_catalog` returns None and the table macros still work.
"""

from __future__ import annotations

import functools
import importlib
import itertools
import time
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any, cast

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from duckdb_openai.client import Client
from duckdb_openai.errors import ConfigurationError
from duckdb_openai.resources import RESOURCES
from duckdb_openai.resources.base import Request, Resource
from duckdb_openai.sql.pushdown import ColumnKind, Constraint, intersect, row_mask, translate
from duckdb_openai.sql.stream import arrow_stream

__all__ = [
    "CATALOG",
    "FIRST_PAGE_SLICE",
    "ResourceSource",
    "ScanPlan",
    "attach_catalog",
    "scan_protocol",
]

CATALOG = "openai"
#: Rows per slice of the first page: DuckDB's threads share the first page before one asks for the next.
FIRST_PAGE_SLICE = 8


def scan_protocol(con: object) -> ModuleType | None:
    """`duckdb._sources` when this DuckDB offers the source protocol on `con`, else None."""
    try:
        sources = importlib.import_module("duckdb._sources")
    except ImportError:
        return None
    base = getattr(sources, "ArrowScanSource", None)
    nodes = getattr(sources, "nodes", None)
    if not isinstance(base, type) or nodes is None:
        return None
    if not all(isinstance(getattr(nodes, name, None), type) for name in ("Binary", "Col", "Lit", "In")):
        return None
    if not callable(getattr(con, "_register_arrow_source", None)):
        return None
    return sources


@dataclass(frozen=True)
class ScanPlan:
    """What a scan fetches: validated requests, all lists or all items, in the order of the IN lists;
    and the accepted predicates, applied again to every row returned (an item endpoint does not
    filter, and a server may ignore a parameter: the WHERE clause holds all the same)."""

    requests: tuple[Request, ...]
    predicates: tuple[Any, ...] = ()

    @property
    def items(self) -> bool:
        return bool(self.requests) and self.requests[0].is_item


def _slice_first(batches: Iterable[pa.RecordBatch], size: int) -> Iterator[pa.RecordBatch]:
    """The batches, the first one cut into slices of `size` rows."""
    iterator = iter(batches)
    first = next(iterator, None)
    if first is None:
        return
    for start in range(0, max(first.num_rows, 1), size):
        yield first.slice(start, size)
    yield from iterator


class ResourceSource:
    """The resource of `client` as a table whose WHERE clause gives the keys (see the module docstring).

    `nodes` is `duckdb._sources.nodes`, the predicate tree's classes. `attach_catalog` makes the instance
    on the protocol's base class; this class holds the behaviour, so it can be tested on its own.
    """

    #: The protocol's attributes: the schema never changes, the scan may be read any number of times,
    #: and pulls need not hold the GIL (the stream's callbacks take it themselves).
    schema_is_stable = True
    one_shot = False
    pull_under_gil = False
    obj: object = None

    def __init__(
        self, client: Client, resource: Resource, nodes: Any, *, table: str, owner: int | None = None
    ) -> None:
        self.client = client
        self.resource = resource
        self.table = table
        self._nodes = nodes
        self._owner = owner
        self._columns = _pushable(resource)

    def __repr__(self) -> str:
        return f"ResourceSource({self.table!r})"

    # -- the protocol -----------------------------------------------------------------------------------

    def __arrow_c_schema__(self) -> object:
        return self.resource.schema.__arrow_c_schema__()

    def rows(self) -> int | None:
        return None

    def accepts(self, predicate: Any) -> bool:
        """Whether the source applies `predicate` exactly (`pushdown.translate`): equality or IN of a key,
        a filter's column, an option's column or the item column; a range of a time filter's column."""
        return translate(predicate, self._nodes, self._columns) is not None

    def stream(self, columns: Sequence[int] | None, filters: Sequence[Any]) -> tuple[object, bool]:
        """A stream of the rows the accepted `filters` select, holding exactly `columns` in order.

        Missing keys and malformed ids raise here, and so does the first response's error, so DuckDB
        reports them without a traceback; the first batch is fetched now, the rest as DuckDB pulls, through
        a stream (`arrow_stream`) whose error is as clean.
        """
        schema = self.resource.schema
        chosen = list(range(len(schema))) if columns is None else list(columns)
        plan = self.plan(filters, None if columns is None else [schema.field(i).name for i in chosen])
        narrowed = pa.schema([schema.field(i) for i in chosen])
        batches = self._checked(plan, self._batches(plan))
        first = next(batches, None)
        ahead = batches if first is None else itertools.chain([first], batches)
        projected = (b.select(chosen) for b in ahead)
        return arrow_stream(narrowed, projected), True

    # -- planning ---------------------------------------------------------------------------------------

    def required_form(self) -> str:
        """The WHERE clause a query needs, e.g. `WHERE thread_id = '...' AND run_id = '...'`, or
        `WHERE start_time >= TIMESTAMPTZ '...'`; empty when the table can be read whole (assistants)."""
        resource = self.resource
        names = [k.name for k in resource.keys]
        if not resource.listable and resource.item_column is not None:
            names.append(resource.item_column)
        parts = [f"{name} = '...'" for name in names]
        parts += [f"{f.target} >= {f.example}" for f in resource.required if f.kind == "time"]
        if not parts:
            return ""
        either = f" (or {names[-1]} IN (...))" if names else ""
        return f"WHERE {' AND '.join(parts)}{either}"

    def plan(self, filters: Sequence[Any], columns: Sequence[str] | None = None) -> ScanPlan:
        """The requests the accepted `filters` call for (`columns`: the columns the query reads, None for
        all); ConfigurationError if a key or a required lower time bound is not given."""
        resource = self.resource
        constraint = Constraint()
        for predicate in filters:
            found = translate(predicate, self._nodes, self._columns)
            if found is None:
                raise ConfigurationError(f"{self.table} was given a filter it did not accept: {predicate!r}")
            constraint = intersect(constraint, found)
        values = constraint.values
        names = [k.name for k in resource.keys]
        item_column = resource.item_column
        items = values.get(item_column) if item_column is not None and resource.retrievable else None
        missing = [name for name in names if name not in values]
        if not resource.listable and items is None and item_column is not None:
            missing.append(item_column)
        missing += [
            f"a lower bound on {f.target}"
            for f in resource.required
            if f.kind == "time" and f.target not in constraint.lower
        ]
        bounds = [f for f in resource.required if f.kind == "time" and f.target not in constraint.lower]
        if bounds and len(missing) == len(bounds):
            f = bounds[0]
            raise ConfigurationError(
                f"{self.table} needs a lower bound on {f.target}, which the API requires: add "
                f"WHERE {f.target} >= {f.example} (or a date, or now() - INTERVAL 30 DAY); "
                f"{f.target} < ... bounds the end"
            )
        if missing:
            why = "" if resource.listable else f" (the API cannot list {resource.name})"
            lateral = ", ".join([*names, resource.item_key.name] if not resource.listable else names)
            name = resource.name if resource.listable else resource.item_name
            hint = f" (for ids listed in a table, join LATERAL {name}({lateral}))" if lateral else ""
            raise ConfigurationError(
                f"{self.table} needs {self.required_form()}, with literals{why}; missing: "
                f"{', '.join(missing)}{hint}"
            )
        predicates = tuple(filters)
        if constraint.empty:
            return ScanPlan((), predicates)
        key_sets = _product({name: values[name] for name in names})
        if items is not None:
            # The item endpoint does not filter: the predicates are applied to its rows.
            requests = [resource.bind_item(keys, item) for keys in key_sets for item in items]
            return ScanPlan(tuple(requests), predicates)
        asked = self._asked(constraint, columns)
        return ScanPlan(
            tuple(resource.bind_list(keys, options) for keys in key_sets for options in asked), predicates
        )

    def _asked(self, constraint: Constraint, columns: Sequence[str] | None) -> list[dict[str, object]]:
        """The options and filters of each list request `constraint` calls for: one per combination of
        single-valued filters and option values; a list filter takes every value in one request; time
        bounds become the range's parameters; the grouping holds the dimensions the query reads."""
        resource = self.resource
        values = constraint.values
        fixed: dict[str, object] = {}
        varying: dict[str, tuple[object, ...]] = {}
        for option in resource.options:
            if option.column is not None and option.column in values:
                varying[option.name] = tuple(v for v in values[option.column] if v in option.choices)
        for f in resource.filters:
            target = f.target
            if target is None:
                continue
            if f.kind in ("ids", "texts") and target in values:
                fixed[f.name] = list(values[target])  # type: ignore[arg-type]
            elif f.kind in ("id", "text", "bool") and target in values:
                varying[f.name] = values[target]
            elif f.kind == "time" and f.bound == "lower" and target in constraint.lower:
                fixed[f.name] = constraint.lower[target][0] / 1e6
            elif f.kind == "time" and f.bound == "upper" and target in constraint.upper:
                micros, inclusive = constraint.upper[target]
                fixed[f.name] = (micros + (1 if inclusive else 0)) / 1e6
        if resource.grouping is not None:
            grouping = next(f for f in resource.filters if f.name == resource.grouping)
            read = set(grouping.choices if columns is None else columns) | set(values)
            dims = [d for d in grouping.choices if d in read]
            if dims:
                fixed[grouping.name] = dims
        return [{**fixed, **chosen} for chosen in _product(varying)]

    # -- reading ----------------------------------------------------------------------------------------

    def _batches(self, plan: ScanPlan) -> Iterator[pa.RecordBatch]:
        """The rows of the plan as batches of the full schema, in request order."""
        if plan.items:
            yield from self._fan_out(plan.requests, "off")
        elif len(plan.requests) == 1:
            yield from _slice_first(self.client.read(plan.requests[0], owner=self._owner), FIRST_PAGE_SLICE)
        else:
            yield from self._fan_out(plan.requests, None)

    def _checked(self, plan: ScanPlan, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        """`batches` holding only the rows every accepted predicate selects: DuckDB does not apply them
        again, and neither an item endpoint nor a server that ignores a parameter filters for us."""
        for batch in batches:
            if plan.predicates and batch.num_rows:
                masks = [row_mask(p, self._nodes, batch) for p in plan.predicates]
                keep = masks[0] if len(masks) == 1 else functools.reduce(pc.and_, masks)
                if not pc.all(keep).as_py():
                    batch = batch.filter(keep)
            yield batch

    def _fan_out(self, requests: Sequence[Request], progress: str | None) -> Iterator[pa.RecordBatch]:
        """Fetch `requests` concurrently, one window of `max_concurrency` at a time, and yield in order."""
        window = self.client.settings.max_concurrency
        for start in range(0, len(requests), window):
            window_requests = requests[start : start + window]
            tables = self.client.fan_out(window_requests, progress=progress, owner=self._owner)
            for table in tables:
                if table is not None:
                    yield from table.to_batches()


def _product(choices: dict[str, tuple[object, ...]]) -> list[dict[str, object]]:
    """Every combination of one value per name (one empty combination for no names)."""
    return [dict(zip(choices, combo, strict=True)) for combo in itertools.product(*choices.values())]


def _pushable(resource: Resource) -> dict[str, ColumnKind]:
    """The columns whose predicates the source applies, and how: keys, the columns of filters and
    options, and the item column."""
    schema = resource.schema
    columns: dict[str, ColumnKind] = {k.name: "value" for k in resource.keys}
    for f in resource.filters:
        target = f.target
        if target is None or f.kind == "map":
            continue
        kind: ColumnKind = "time" if f.kind == "time" else "bool" if f.kind == "bool" else "value"
        columns[target] = kind
    for option in resource.options:
        if option.column is not None:
            columns[option.column] = "value"
    if resource.retrievable and resource.item_column is not None:
        columns[resource.item_column] = "value"
    # Text columns only take text literals: the source compares as the engine compares VARCHARs.
    return {
        name: kind
        for name, kind in columns.items()
        if kind != "value" or pa.types.is_string(schema.field(name).type)
    }


@functools.cache
def _scan_class(base: type) -> type[ResourceSource]:
    """ResourceSource on the protocol's base class, which is known only once the protocol is found."""
    made = type("ResourceArrowSource", (ResourceSource, base), {"__module__": __name__})
    return cast(type[ResourceSource], made)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def attach_catalog(
    con: duckdb.DuckDBPyConnection, client: Client, *, catalog: str = CATALOG
) -> dict[str, ResourceSource]:
    """Make `catalog.<schema>.<resource>` on `con` scan `client`'s resources (`openai.assistants.runs`,
    ...); the tables made, by name. Empty where DuckDB lacks the source protocol, or where a database
    file of the connection is itself called `catalog` (say `openai.duckdb`): the views would be written
    into that file, so the catalog form is left out with a warning, and the table macros still work.

    An in-memory database named `catalog` is reused, else one is attached; views are replaced on each
    call."""
    sources = scan_protocol(con)
    if sources is None:
        return {}
    found = con.execute("SELECT path FROM duckdb_databases() WHERE database_name = ?", [catalog]).fetchall()
    if found and found[0][0] is not None:
        warnings.warn(
            f"the database file {found[0][0]!r} is attached as {catalog!r}, the name of duckdb-openai's "
            f"catalog; {catalog}.assistants.* are left out so nothing is written into that file. Attach "
            "it under another name (ATTACH 'openai.duckdb' AS mine) to use them; the table functions "
            "work as they are",
            RuntimeWarning,
            stacklevel=3,
        )
        return {}
    made: dict[str, ResourceSource] = {}
    views: list[tuple[str, str, str, str]] = []
    for resource in RESOURCES:
        schema = resource.catalog_schema
        table = f"{catalog}.{schema}.{resource.catalog_table}"
        source = _scan_class(sources.ArrowScanSource)(
            client, resource, sources.nodes, table=table, owner=id(con)
        )
        # Named as its own explanation, in words true in both of DuckDB's messages that show it: on a
        # connection or cursor that was not registered, "Table with name <this> does not exist"; a failed
        # scan, "exporting a stream from the object registered as '<this>' failed: ...".
        hidden = f"{table} source (made by duckdb_openai.register on this connection or cursor)"
        # The hidden source is per connection (temp); the views over it are shared by every connection of
        # the database and read `temp`, which is each connection's own.
        con._register_arrow_source(hidden, source)
        needs = source.required_form()
        comment = f"{resource.doc}{' Needs ' + needs + '.' if needs else ''}"
        views.append((schema, resource.catalog_table, f"SELECT * FROM temp.main.{_quote(hidden)}", comment))
        made[table] = source
    _create_views(con, catalog, views)
    return made


#: Registrations of several connections of one database may race to create the shared catalog.
_CATALOG_ATTEMPTS = 20


def _create_views(
    con: duckdb.DuckDBPyConnection, catalog: str, views: Sequence[tuple[str, str, str, str]]
) -> None:
    """Attach the in-memory `catalog` and create each (schema, name, SELECT, comment) view in it, where
    missing.

    The views are the same for every connection, so one made by another connection's registration is
    kept; a write-write conflict with a registration running at the same time is retried.
    """
    for attempt in range(_CATALOG_ATTEMPTS):
        try:
            present = con.execute(
                "SELECT count(*) FROM duckdb_databases() WHERE database_name = ?", [catalog]
            ).fetchone()
            if not present or not present[0]:
                con.execute(f"ATTACH ':memory:' AS {_quote(catalog)}")
            existing = {
                (schema, name)
                for schema, name in con.execute(
                    "SELECT schema_name, view_name FROM duckdb_views() WHERE database_name = ?", [catalog]
                ).fetchall()
            }
            for schema, name, select, comment in views:
                if (schema, name) in existing:
                    continue
                qualified = f"{_quote(catalog)}.{_quote(schema)}"
                view = f"{qualified}.{_quote(name)}"
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {qualified}")
                con.execute(f"CREATE OR REPLACE VIEW {view} AS {select}")
                con.execute(f"COMMENT ON VIEW {view} IS '{comment.replace(chr(39), chr(39) * 2)}'")
            return
        except (duckdb.TransactionException, duckdb.BinderException, duckdb.CatalogException):
            if attempt == _CATALOG_ATTEMPTS - 1:
                raise
            time.sleep(0.01 * (attempt + 1))
