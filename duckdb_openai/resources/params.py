"""The parameters a resource's requests take, declared as data: keys (path segments), filters and other
query parameters, and options with fixed choices; and how a value becomes query parameters.

Every value is checked here, once, at the edge (`Resource.bind_list` / `bind_item`), into query
parameters the engine sends as they are. Two rules hold for every kind:

- A key is an id that addresses a path segment: a malformed one is an InvalidIdError (it could change
  which URL is requested), as a missing one would be a NotFoundError.
- A filter selects rows: a value no object can hold (an empty or over-long model name, a malformed run
  id, an empty list) selects nothing, so the request is not sent and gives no rows, as SQL's
  `WHERE model = ''` does. A value of the wrong type (a number where a text is asked) is a
  ConfigurationError naming the filter and the fix.

Filters whose kind names a column are checked again on the rows the API returns (`Request.conform`):
a server that ignores a filter cannot make rows of another model, run or project pass.

>>> Filter("models", "models", "gpt-4o", kind="texts", column="model").encode(["gpt-4o", "", "o3"])
[('models', 'gpt-4o'), ('models', 'o3')]
>>> Filter("model", "model", "gpt-4o", kind="text").encode("") is None
True
>>> Filter("start_time", "start_time", "2026-11-01", kind="time").encode("2026-11-01T00:00:00Z")
[('start_time', '1793491200')]
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from duckdb_openai.errors import ConfigurationError, InvalidIdError

__all__ = [
    "ENGINE_OPTIONS",
    "ID_PATTERN",
    "SQL_RESERVED",
    "Filter",
    "FilterKind",
    "Key",
    "Option",
    "OptionValue",
    "check_id",
    "sort_option",
    "unix_seconds",
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
FilterKind = Literal["id", "text", "map", "ids", "texts", "bool", "time", "choices"]
#: The longest text filter value any object can hold (a model name, an email).
MAX_TEXT = 256
_SQL_TYPES: dict[str, str] = {
    "id": "VARCHAR",
    "text": "VARCHAR",
    "map": "MAP(VARCHAR, VARCHAR)",
    "ids": "VARCHAR[]",
    "texts": "VARCHAR[]",
    "choices": "VARCHAR[]",
    "bool": "BOOLEAN",
    "time": "TIMESTAMP WITH TIME ZONE",
}


@dataclass(frozen=True)
class Key:
    """A key parameter that selects the resource: a path segment of the URL and a column of the table."""

    name: str
    example: str


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


def _is_id(value: str) -> bool:
    return bool(ID_PATTERN.fullmatch(value)) and value.strip(".") != ""


def _is_text(value: str) -> bool:
    return bool(value) and len(value) <= MAX_TEXT and value.isprintable()


def unix_seconds(value: object, *, name: str, upper: bool = False) -> int:
    """`value` (a datetime, a date, an ISO text or Unix seconds) as whole Unix seconds: rounded down
    for a lower bound, up for an upper (exclusive) one, so the range asked of the API holds the range
    given. A datetime without a zone is UTC. ConfigurationError naming `name` for anything else."""
    seconds: float
    if isinstance(value, bool):
        raise ConfigurationError(
            f"{name} must be a time (a TIMESTAMP, a date or Unix seconds), not {value!r}"
        )
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, dt.datetime):
        stamp = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
        seconds = stamp.timestamp()
    elif isinstance(value, dt.date):
        seconds = dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC).timestamp()
    elif isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ConfigurationError(
                f"{name} {value!r} is not a time: pass a TIMESTAMP, a date such as '2026-11-01' or an ISO "
                "time such as '2026-11-01T00:00:00Z'"
            ) from None
        return unix_seconds(parsed, name=name, upper=upper)
    else:
        raise ConfigurationError(
            f"{name} must be a time (a TIMESTAMP, a date or Unix seconds), not a {type(value).__name__}"
        )
    if not math.isfinite(seconds) or not 0 <= seconds < 2**40:
        raise ConfigurationError(f"{name} {value!r} is outside the times the API takes (from 1970 on)")
    return math.ceil(seconds) if upper else math.floor(seconds)


@dataclass(frozen=True)
class Filter:
    """A query parameter of a list beside its keys: a named parameter of the list function and of the
    Python reader, and (for the kinds that select rows) a column of the table, which the catalog form
    pushes down and the engine checks on every row the API returns.

    Kinds:

    - `id`: an id (messages' `run_id := 'run_..'` sends `run_id=run_..`);
    - `text`: a short text without control characters (a model name);
    - `map`: a MAP(VARCHAR, VARCHAR) of key/value pairs, sent as `param[key]=value` (metadata);
    - `ids`, `texts`: a list, each value sent as its own `param=value` (usage's `project_ids`,
      `models`; audit logs spell the parameter `project_ids[]`); selects rows whose column is one of them;
    - `bool`: true or false (usage's `batch`);
    - `time`: a time bound sent as Unix seconds, `bound` says which end (a range, not a row check);
    - `choices`: a list of names among `choices` (usage's `group_by`); selects nothing.

    `column` is the column the filter selects on (default: the filter's own name for `id`, `text` and
    `bool`; none for the others unless given). `required` makes it a positional parameter that must be
    given (usage's `start_time`).
    """

    name: str
    param: str
    example: str
    kind: FilterKind = "id"
    column: str | None = None
    required: bool = False
    bound: Literal["lower", "upper"] = "lower"
    choices: tuple[str, ...] = ()
    doc: str = ""

    @property
    def sql_type(self) -> str:
        return _SQL_TYPES[self.kind]

    @property
    def target(self) -> str | None:
        """The column this filter selects rows on, or None."""
        if self.column is not None:
            return self.column
        return self.name if self.kind in ("id", "text", "bool") else None

    @property
    def is_column(self) -> bool:
        """Whether the filter's own name is a column of the table (`run_id`, `model`)."""
        return self.target == self.name

    @property
    def sql_argument(self) -> str:
        """The SQL expression a table macro passes for this filter: a map filter takes a MAP or a STRUCT
        (`{'topic': 'billing'}`, which is also what a Python dict binds as), read as a MAP via JSON."""
        if self.kind == "map":
            return f"CAST(to_json({self.name}) AS MAP(VARCHAR, VARCHAR))"
        return self.name

    def encode(self, value: object) -> list[tuple[str, str]] | None:
        """The query parameters for `value`, or None when no object can match it (the request is then not
        sent). ConfigurationError naming the filter and the fix for a value of the wrong type."""
        kind = self.kind
        if kind in ("id", "text"):
            if not isinstance(value, str):
                raise ConfigurationError(
                    f"invalid {self.name} {value!r}: pass a text, such as {self.example!r}"
                )
            valid = _is_id(value) if kind == "id" else _is_text(value)
            return [(self.param, value)] if valid else None
        if kind in ("ids", "texts", "choices"):
            values = self._list(value)
            if kind == "choices":
                wrong = [v for v in values if v not in self.choices]
                if wrong:
                    raise ConfigurationError(
                        f"invalid {self.name} value {wrong[0]!r}: choose among {', '.join(self.choices)}"
                    )
                return [(self.param, v) for v in values]
            kept = [v for v in values if (_is_id(v) if kind == "ids" else _is_text(v))]
            return [(self.param, v) for v in kept] if kept else None
        if kind == "bool":
            if not isinstance(value, bool):
                raise ConfigurationError(f"invalid {self.name} {value!r}: pass true or false")
            return [(self.param, "true" if value else "false")]
        if kind == "time":
            return [(self.param, str(unix_seconds(value, name=self.name, upper=self.bound == "upper")))]
        return self._map(value)

    def selects(self, value: object) -> frozenset[object] | None:
        """The values the filter's column may hold on a row for `value`; None when it does not select
        on a column (a map filter is checked pair by pair, see `Request.conform`)."""
        if self.target is None or self.kind in ("map", "time", "choices"):
            return None
        if self.kind in ("ids", "texts"):
            return frozenset(self._list(value))
        return frozenset([value])

    def _list(self, value: object) -> list[str]:
        if isinstance(value, str) or not isinstance(value, Sequence):
            raise ConfigurationError(
                f"invalid {self.name} {value!r}: pass a list of texts, such as [{self.example!r}]"
            )
        out: list[str] = []
        for item in value:
            if not isinstance(item, str):
                raise ConfigurationError(
                    f"invalid {self.name} entry {item!r}: pass texts, such as {self.example!r}"
                )
            if item not in out:
                out.append(item)
        return out

    def _map(self, value: object) -> list[tuple[str, str]]:
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

    def pairs(self, value: object) -> list[tuple[str, str]]:
        """A map filter's key/value pairs (checked as `encode` checks them)."""
        return [(param[len(self.param) + 1 : -1], v) for param, v in self._map(value)]


@dataclass(frozen=True)
class Option:
    """A query option: its SQL and Python name, the API parameter it becomes, and its allowed values.

    `column`: a column of the table that holds the option's value on every row (usage's `bucket_width`:
    the rows do not say which width they are of, the request does)."""

    name: str
    default: OptionValue
    doc: str
    choices: tuple[OptionValue, ...]
    #: The query parameters for a value; an empty list sends nothing.
    encode: Callable[[OptionValue], list[tuple[str, str]]]
    #: Whether the item endpoint takes it too (run steps' include_content does, sort does not).
    on_item: bool = False
    column: str | None = None

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
