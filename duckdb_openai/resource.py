"""A REST list resource declared as data: path templates, key parameters, query options and schema.

The engine (paging, retrying, converting, registering in DuckDB) reads only these declarations, so a
second resource of the same API shape is a declaration, not a copy of code.

>>> from duckdb_openai.run_steps import RUN_STEPS
>>> RUN_STEPS.list_path({"thread_id": "thread_a", "run_id": "run_b"})
'threads/thread_a/runs/run_b/steps'
>>> RUN_STEPS.query({"sort": "desc", "include_content": True})
[('order', 'desc'), ('include[]', 'step_details.tool_calls[*].file_search.results[*].content')]
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import quote

import pyarrow as pa

from duckdb_openai.errors import ConfigurationError, InvalidIdError

__all__ = ["ID_PATTERN", "Key", "Option", "Resource", "check_id"]

#: Ids are path segments: letters, digits and `_ - . :` only, so no id can add a segment, a query or a
#: fragment, or be percent-decoded into one. Real ids look like `thread_abc123`, `file-abc`, or UUIDs.
ID_PATTERN = re.compile(r"[A-Za-z0-9_\-.:]{1,256}")

OptionValue = str | bool | int


@dataclass(frozen=True)
class Key:
    """A key parameter that selects the resource: a path segment of the URL and a column of the table."""

    name: str
    example: str


@dataclass(frozen=True)
class Option:
    """A query option: its SQL and Python name, the API parameter it becomes, and its allowed values."""

    name: str
    default: OptionValue
    doc: str
    choices: tuple[OptionValue, ...]
    #: The query parameters for a value; an empty list sends nothing.
    encode: Callable[[OptionValue], list[tuple[str, str]]]

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


@dataclass(frozen=True)
class Resource:
    """A list endpoint with cursor pagination and an item endpoint, and the Arrow schema of one object."""

    name: str
    item_name: str
    #: Path template of the list endpoint, relative to the base URL.
    path: str
    keys: tuple[Key, ...]
    #: The key of one object on the item endpoint (`{path}/{item_key}`), and the column it fills.
    item_key: Key
    item_column: str
    options: tuple[Option, ...]
    schema: pa.Schema
    #: The option that holds the sort order ("asc"/"desc"), for fetching from both ends.
    order_option: str
    #: The API's name for the order parameter.
    order_param: str = "order"
    #: The largest page the API serves.
    page_limit: int = 100
    doc: str = ""
    options_by_name: Mapping[str, Option] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "options_by_name", {o.name: o for o in self.options})

    def list_path(self, keys: Mapping[str, object]) -> str:
        """The list endpoint's path for these key values, each checked by `check_id`."""
        values = {k.name: quote(check_id(k, keys.get(k.name)), safe="") for k in self.keys}
        return self.path.format(**values)

    def item_path(self, keys: Mapping[str, object], item_id: object) -> str:
        """The item endpoint's path for these key values and item id."""
        return f"{self.list_path(keys)}/{quote(check_id(self.item_key, item_id), safe='')}"

    def check_options(self, options: Mapping[str, object]) -> dict[str, OptionValue]:
        """Every option with its default filled in; unknown names and bad values raise ConfigurationError."""
        unknown = sorted(set(options) - set(self.options_by_name))
        if unknown:
            names = ", ".join(self.options_by_name)
            raise ConfigurationError(
                f"unknown option {unknown[0]!r} for {self.name}; the options are {names}"
            )
        return {o.name: o.check(options.get(o.name, o.default)) for o in self.options}

    def query(self, options: Mapping[str, object], *, exclude: Sequence[str] = ()) -> list[tuple[str, str]]:
        """The query parameters for these options (checked, defaults filled in)."""
        checked = self.check_options(options)
        params: list[tuple[str, str]] = []
        for option in self.options:
            if option.name not in exclude:
                params.extend(option.encode(checked[option.name]))
        return params


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
