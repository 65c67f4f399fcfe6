"""A REST resource declared as data: path templates, key parameters, filters, query options and schema.

The engine (paging, retrying, converting, registering in DuckDB) reads only these declarations, so each
resource of the API is a declaration, not a copy of code. A declaration is checked when it is made
(`Resource.__post_init__`): a key, filter or item column that is not a string column of the schema, a
path template that does not use exactly the keys, or a parameter name that collides or is a reserved
word in SQL fails at import, not mid-query.

A request is validated once, at the edge, into a `Request` (path and query parameters) that the engine
trusts; nothing downstream checks ids or options again.

>>> from duckdb_openai.resources.run_steps import RUN_STEPS
>>> request = RUN_STEPS.bind_list({"thread_id": "thread_a", "run_id": "run_b"}, {"sort": "desc"})
>>> request.path, request.order, request.params
('threads/thread_a/runs/run_b/steps', 'desc', ())
>>> RUN_STEPS.bind_item({"thread_id": "thread_a", "run_id": "run_b"}, "step_c").path
'threads/thread_a/runs/run_b/steps/step_c'
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal, TypeVar
from urllib.parse import quote

import pyarrow as pa
import pyarrow.compute as pc

from duckdb_openai.errors import ConfigurationError, InvalidIdError

__all__ = [
    "ENGINE_OPTIONS",
    "ID_PATTERN",
    "SQL_RESERVED",
    "CacheMode",
    "Filter",
    "Key",
    "Lifecycle",
    "Option",
    "Parent",
    "Request",
    "Resource",
    "check_id",
    "check_relations",
    "sort_option",
]

#: Ids are path segments: letters, digits and `_ - . :` only, so no id can add a segment, a query or a
#: fragment, or be percent-decoded into one. Real ids look like `thread_abc123`, `file-abc`, or UUIDs.
ID_PATTERN = re.compile(r"[A-Za-z0-9_\-.:]{1,256}")

#: Named parameters the engine adds to every list function, with their SQL types; NULL means the
#: registration's setting.
ENGINE_OPTIONS: tuple[tuple[str, str], ...] = (
    ("on_error", "VARCHAR"),
    ("max_concurrency", "BIGINT"),
    ("progress", "VARCHAR"),
    ("cache", "VARCHAR"),
)

#: DuckDB's reserved words (`duckdb_keywords()` where keyword_category = 'reserved'; a test keeps this in
#: step): a macro parameter cannot be called one of these without quotes, which is why `sort` is not
#: `order`.
SQL_RESERVED = frozenset(
    [
        "all",
        "analyse",
        "analyze",
        "and",
        "any",
        "array",
        "as",
        "asc",
        "asymmetric",
        "both",
        "case",
        "cast",
        "check",
        "collate",
        "column",
        "constraint",
        "create",
        "default",
        "deferrable",
        "desc",
        "describe",
        "distinct",
        "do",
        "else",
        "end",
        "except",
        "false",
        "fetch",
        "for",
        "foreign",
        "from",
        "group",
        "having",
        "in",
        "initially",
        "intersect",
        "into",
        "lambda",
        "lateral",
        "leading",
        "limit",
        "not",
        "null",
        "offset",
        "on",
        "only",
        "or",
        "order",
        "pivot",
        "pivot_longer",
        "pivot_wider",
        "placing",
        "primary",
        "qualify",
        "references",
        "returning",
        "select",
        "show",
        "some",
        "summarize",
        "symmetric",
        "table",
        "then",
        "to",
        "trailing",
        "true",
        "union",
        "unique",
        "unpivot",
        "using",
        "variadic",
        "when",
        "where",
        "window",
        "with",
    ]
)

OptionValue = str | bool | int
Order = Literal["asc", "desc"]
_Rows = TypeVar("_Rows", pa.RecordBatch, pa.Table)
#: A query's use of the cache (`cache.py`): read and fill it, bypass it, or fetch everything and replace.
CacheMode = Literal["on", "off", "refresh"]


@dataclass(frozen=True)
class Key:
    """A key parameter that selects the resource: a path segment of the URL and a column of the table."""

    name: str
    example: str


@dataclass(frozen=True)
class Filter:
    """An optional filter of a list: a named parameter of the list function, a query parameter of the
    API, and (for `id` and `text` filters) a column of the table, so the catalog form pushes
    `column = '..'` down to the API.

    - `id`: an id, checked like a key: messages' `messages(thread_id, run_id := 'run_..')` sends
      `run_id=run_..`;
    - `text`: any short text without control characters (a model name);
    - `map`: a MAP(VARCHAR, VARCHAR) of key/value pairs, sent as `param[key]=value` (metadata).
    """

    name: str
    param: str
    example: str
    kind: Literal["id", "text", "map"] = "id"

    @property
    def sql_type(self) -> str:
        return "MAP(VARCHAR, VARCHAR)" if self.kind == "map" else "VARCHAR"

    @property
    def is_column(self) -> bool:
        return self.kind != "map"

    @property
    def sql_argument(self) -> str:
        """The SQL expression a table macro passes for this filter: a map filter takes a MAP or a STRUCT
        (`{'topic': 'billing'}`, which is also what a Python dict binds as), read as a MAP via JSON."""
        if self.kind == "map":
            return f"CAST(to_json({self.name}) AS MAP(VARCHAR, VARCHAR))"
        return self.name

    def encode(self, value: object) -> list[tuple[str, str]]:
        """The query parameters for `value`; ConfigurationError naming the filter and the fix."""
        if self.kind == "id":
            return [(self.param, check_id(Key(self.name, self.example), value))]
        if self.kind == "text":
            if not isinstance(value, str) or not value or len(value) > 256 or not value.isprintable():
                raise ConfigurationError(
                    f"invalid {self.name} {value!r}: pass a non-empty text of printable characters, such "
                    f"as {self.example!r}"
                )
            return [(self.param, value)]
        pairs = value.items() if isinstance(value, Mapping) else value
        try:
            raw = [(k, v) for k, v in pairs]  # type: ignore[attr-defined]
        except (TypeError, ValueError):
            raise ConfigurationError(
                f"invalid {self.name} {value!r}: pass key/value pairs, such as {self.example}"
            ) from None
        for k, v in raw:
            if v is None:
                raise ConfigurationError(f"invalid {self.name} entry {k!r}: its value is NULL; give a text")
        items = [(str(k), str(v)) for k, v in raw]
        for k, v in items:
            if not k or not k.isprintable() or not v.isprintable():
                raise ConfigurationError(
                    f"invalid {self.name} entry {k!r}: keys and values must be printable"
                )
        return [(f"{self.param}[{k}]", v) for k, v in items]


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
class Option:
    """A query option: its SQL and Python name, the API parameter it becomes, and its allowed values."""

    name: str
    default: OptionValue
    doc: str
    choices: tuple[OptionValue, ...]
    #: The query parameters for a value; an empty list sends nothing.
    encode: Callable[[OptionValue], list[tuple[str, str]]]
    #: Whether the item endpoint takes it too (run steps' include_content does, sort does not).
    on_item: bool = False

    def check(self, value: object) -> OptionValue:
        """The value if allowed, else a ConfigurationError listing the choices."""
        if (
            isinstance(value, (str, bool, int))
            and value in self.choices
            and type(value) is type(self.default)
        ):
            return value
        allowed = " or ".join(repr(c).lower() if isinstance(c, bool) else repr(c) for c in self.choices)
        raise ConfigurationError(f"{self.name} must be {allowed}, not {value!r}")

    @property
    def sql_type(self) -> str:
        return "BOOLEAN" if isinstance(self.default, bool) else "VARCHAR"


def sort_option(what: str) -> Option:
    """The `sort` option every list has: the API's `order`, a reserved word in SQL, defaulting to 'asc'."""
    return Option(
        "sort",
        "asc",
        f"Row order by creation of the {what}: 'asc' (chronological, the default here) or 'desc' (the "
        "API's default). The API calls it `order`.",
        ("asc", "desc"),
        lambda value: [("order", str(value))],
    )


@dataclass(frozen=True)
class Request:
    """One validated request: which resource, its keys, the path and query, the order (lists only).

    Built by `Resource.bind_list` / `bind_item` from user input; the engine trusts it as it is.
    """

    resource: Resource
    keys: Mapping[str, str]
    path: str
    #: Query parameters other than the order and the cursor.
    params: tuple[tuple[str, str], ...]
    #: The asked order of a list; None for an item.
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

    def with_keys(self, rows: _Rows) -> _Rows:
        """`rows` with NULLs in each key column replaced by this request's key.

        Some lists' objects do not carry their parent's id (a response's input items have no
        `response_id`): the key column is then filled from the request, so every row says whose it is
        and the catalog's `response_id = '..'` holds on the rows it returns. A value the API did send
        is kept as it is. Costs nothing when no key column holds a NULL (run steps carry their keys).
        """
        for name, value in self.keys.items():
            index = rows.schema.get_field_index(name)
            column = rows.column(index)
            if column.null_count:
                rows = rows.set_column(index, rows.schema.field(index), pc.fill_null(column, value))
        return rows


def _placeholders(template: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]


@dataclass(frozen=True)
class Resource:
    """A resource of the API: an optional list endpoint with cursor pagination, an item endpoint, and the
    Arrow schema of one object.

    `keys` are the parent ids both endpoints need (thread_id and run_id for run steps; none for
    assistants); `item_key` is the id of one object on the item endpoint. A resource the API cannot list
    (threads) has `path=None` and only its item form; one it cannot retrieve one by one (a response's
    input items) has `item_path_template=None` and only its list form.
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
    #: The column holding each object's id (pages' cursors and the catalog's `id =`).
    item_column: str = "id"
    #: The option that holds the sort order ("asc"/"desc"), for fetching from both ends.
    order_option: str = "sort"
    #: The largest page the API serves.
    page_limit: int = 100
    #: The StackQL form's table: `openai.<catalog_schema>.<catalog_table>` (the table defaults to `name`).
    catalog_schema: str = "assistants"
    catalog_table: str = ""
    doc: str = ""
    #: Which status ends an object's changes (None: the cache never keeps this resource's rows).
    lifecycle: Lifecycle | None = None
    #: The resource owning each list (run steps: runs), whose finished status proves the list complete.
    parent: Parent | None = None
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
        columns = [*(k.name for k in self.keys), *(f.name for f in self.filters if f.is_column)]
        for column in [*columns, self.item_column]:
            if column not in names:
                fail(f"{column!r} is not a column of its schema")
            if not pa.types.is_string(self.schema.field(column).type):
                fail(f"column {column!r} must be a string column to hold ids")
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
        if self.path is not None and self.order_option not in self.options_by_name:
            fail(f"its order option {self.order_option!r} is not one of its options")
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
        params: list[tuple[str, str]] = []
        for f in self.filters:
            value = filter_values[f.name]
            if value is not None:
                params.extend(f.encode(value))
        for option in self.options:
            if option.name != self.order_option:
                params.extend(option.encode(checked[option.name]))
        order: Order = "desc" if checked[self.order_option] == "desc" else "asc"
        path = self.path.format(**{name: quote(value, safe="") for name, value in values.items()})
        start = None if after is None else check_id(Key("after", f"{self.item_key.example}"), after)
        return Request(self, values, path, tuple(params), order, after=start)

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
        return Request(self, values, path, tuple(params), None, item_id=item)


def check_id(key: Key, value: object) -> str:
    """`value` if it is a well-formed id, else InvalidIdError naming the key, the value and the fix."""
    if isinstance(value, str) and ID_PATTERN.fullmatch(value) and value.strip(".") != "":
        return value
    if value is None or value == "":
        problem = "is empty"
    elif not isinstance(value, str):
        problem = f"is a {type(value).__name__}, not a string"
    elif len(value) > 256:
        problem = "is longer than 256 characters"
    else:
        problem = "holds characters an id cannot have (only letters, digits and _ - . : are allowed)"
    shown = repr(value) if not isinstance(value, str) or len(value) <= 80 else repr(value[:80] + "...")
    raise InvalidIdError(f"invalid {key.name} {shown}: it {problem}; pass an id such as {key.example!r}")


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
