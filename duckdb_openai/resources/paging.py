"""How a list pages, declared as data: what a page request sends, what a page answers with, and where
its rows are. The engine holds a strategy and its state machine; it names no envelope field itself.

Two strategies cover the API:

- `CursorPaging`, the object lists (run steps, runs, chat completions, audit logs, projects)::

      {"object": "list", "data": [{"id": "step_a", ...}, {"id": "step_b", ...}],
       "first_id": "step_a", "last_id": "step_b", "has_more": true}

  The next page is asked with `after=<last id>`, so rows carry ids, which the page must agree with
  (`first_id` / `last_id`, no id twice). With an order parameter (`order=asc|desc`) the list can also
  be read from its far end, backwards, which is what fetching from both ends needs (`reversible`).

- `TokenPaging`, the organization's usage and costs::

      {"object": "page", "data": [{"object": "bucket", "start_time": 1730419200, "end_time": 1730505600,
       "results": [{...}, {...}]}], "has_more": true, "next_page": "page_AAAAAGdGxdEiJdKOAAAAAGcqsYA="}

  The next page is asked with `page=<next_page>`, sent as the server wrote it (the transports
  percent-encode `=`, `+` and `/` in a query value, so the server reads back the same bytes). Rows
  have no ids: a token must not repeat, and buckets must come in time order.

`Records` says where the rows are: the objects of `data`, or the objects of each `data` element's
nested list (a bucket's `results`) with the element's fields copied onto each row (`start_time`,
`end_time`). `Limit` says how large a page may be, which may depend on another parameter (usage: 31
daily buckets, 168 hourly, 1,440 per minute).

A page's state machine (`start()`) is tiny: the parameters of the next request, `advance(page)` with
the page's envelope, and `done`. A page that claims more but gives no cursor, or a cursor that does not
move, is a broken contract: it raises instead of looping forever or stopping short.

>>> state = CursorPaging().start(order="asc")
>>> state.params()
[('order', 'asc')]
>>> state.advance({"has_more": True, "last_id": "step_b"}, rows=2)
>>> state.params(), state.done
([('order', 'asc'), ('after', 'step_b')], False)
>>> state.advance({"has_more": False, "last_id": "step_c"}, rows=1)
>>> state.done
True
>>> token = TokenPaging().start()
>>> token.advance({"has_more": True, "next_page": "page_AAAA+/=="}, rows=7)
>>> token.params()
[('page', 'page_AAAA+/==')]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import pyarrow as pa

from duckdb_openai.errors import ResponseFormatError

__all__ = [
    "CURSOR_PAGING",
    "CursorPaging",
    "CursorState",
    "Limit",
    "PageState",
    "Paging",
    "Records",
    "TokenPaging",
    "TokenState",
    "check_ascending",
    "envelope_of",
]

_STRING = pa.string()


@dataclass(frozen=True)
class Records:
    """Where a page's rows are: the objects of `data`, or, with `nested`, the objects of each `data`
    element's `nested` list, each given the element's `copied` fields (a bucket's start_time and
    end_time on each of its results). With `ascending`, rows must come in ascending order of that
    copied column, page after page (buckets in time order: a page served twice is caught)."""

    nested: str | None = None
    copied: tuple[str, ...] = ()
    ascending: str | None = None


@dataclass(frozen=True)
class Limit:
    """The page size a request asks for: `size`, or `sizes[value]` where `by` names the option whose
    value decides (usage: buckets per page by bucket_width)."""

    size: int = 100
    by: str | None = None
    sizes: Mapping[str, int] = field(default_factory=dict)
    param: str = "limit"

    def value(self, options: Mapping[str, object]) -> int:
        if self.by is not None:
            return self.sizes.get(str(options.get(self.by)), self.size)
        return self.size


class PageState(Protocol):
    """Where one direction of paging stands."""

    done: bool
    pages: int

    def params(self) -> list[tuple[str, str]]: ...

    def advance(self, envelope: Mapping[str, Any], *, rows: int) -> None: ...


class Paging(Protocol):
    """A paging strategy: its envelope, its records, its page size and its state machine."""

    @property
    def records(self) -> Records: ...

    @property
    def limit(self) -> Limit: ...

    @property
    def envelope(self) -> tuple[pa.Field, ...]:
        """The page's fields besides `data`, as the decoder parses them."""
        ...

    @property
    def has_ids(self) -> bool:
        """Rows carry ids, which the page's envelope must agree with."""
        ...

    @property
    def reversible(self) -> bool:
        """The list can be read from its far end too (fetching from both ends)."""
        ...

    def start(self, *, order: str | None = None, after: str | None = None) -> PageState: ...


@dataclass
class CursorState:
    """One direction of cursor paging: its order, its `after` cursor, and whether it is done."""

    order: str | None
    order_param: str | None = "order"
    after: str | None = None
    done: bool = False
    pages: int = 0
    _seen: set[str] = field(default_factory=set, repr=False)

    def params(self) -> list[tuple[str, str]]:
        params = [] if self.order_param is None or self.order is None else [(self.order_param, self.order)]
        if self.after is not None:
            params.append(("after", self.after))
        return params

    def advance(self, envelope: Mapping[str, Any], *, rows: int) -> None:
        """Take in a page's `has_more` and `last_id` and its row count."""
        self.pages += 1
        if not envelope.get("has_more"):
            self.done = True
            return
        last_id = envelope.get("last_id")
        if rows == 0 or not last_id:
            raise ResponseFormatError(
                f"the API said has_more=true but gave no rows or no last_id (after={self.after!r}); "
                "refusing to guess where the list continues"
            )
        if last_id == self.after or last_id in self._seen:
            raise ResponseFormatError(
                f"the list cursor did not advance (last_id={last_id!r} again); stopping rather than looping"
            )
        self._seen.add(last_id)
        self.after = last_id


@dataclass(frozen=True)
class CursorPaging:
    """`after=<last id>` paging over objects with ids (see the module docstring). `order_param` is the
    API's order parameter (None: the list has one order only, so it cannot be read from both ends)."""

    order_param: str | None = "order"
    limit: Limit = field(default_factory=Limit)
    records: Records = field(default_factory=Records)

    @property
    def envelope(self) -> tuple[pa.Field, ...]:
        return (pa.field("has_more", pa.bool_()), pa.field("first_id", _STRING), pa.field("last_id", _STRING))

    @property
    def has_ids(self) -> bool:
        return True

    @property
    def reversible(self) -> bool:
        return self.order_param is not None

    def start(self, *, order: str | None = None, after: str | None = None) -> CursorState:
        return CursorState(order, self.order_param, after=after)


@dataclass
class TokenState:
    """Token paging's state: the next page's token, and the tokens already sent."""

    param: str
    token: str | None = None
    done: bool = False
    pages: int = 0
    _seen: set[str] = field(default_factory=set, repr=False)

    def params(self) -> list[tuple[str, str]]:
        return [] if self.token is None else [(self.param, self.token)]

    def advance(self, envelope: Mapping[str, Any], *, rows: int) -> None:
        """Take in a page's `has_more` and `next_page`."""
        self.pages += 1
        if not envelope.get("has_more"):
            self.done = True
            return
        token = envelope.get("next_page")
        if not isinstance(token, str) or not token:
            raise ResponseFormatError(
                "the API said has_more=true but gave no next_page token; refusing to guess where the "
                "list continues"
            )
        if token in self._seen:
            raise ResponseFormatError(
                f"the API gave the page token {token!r} twice; stopping rather than looping"
            )
        self._seen.add(token)
        self.token = token


@dataclass(frozen=True)
class TokenPaging:
    """`page=<next_page>` paging (see the module docstring): rows without ids, one direction only."""

    param: str = "page"
    limit: Limit = field(default_factory=Limit)
    records: Records = field(default_factory=Records)

    @property
    def envelope(self) -> tuple[pa.Field, ...]:
        return (pa.field("has_more", pa.bool_()), pa.field("next_page", _STRING))

    @property
    def has_ids(self) -> bool:
        return False

    @property
    def reversible(self) -> bool:
        return False

    def start(self, *, order: str | None = None, after: str | None = None) -> TokenState:
        if after is not None:
            raise ValueError("token paging cannot start after an id")
        return TokenState(self.param)


#: The paging of the API's object lists: `after` cursors, `order`, pages of up to 100.
CURSOR_PAGING = CursorPaging()


def envelope_of(document: Mapping[str, Any], paging: Paging) -> dict[str, Any]:
    """The envelope fields of a parsed page (the Python path), checked for their JSON types."""
    values: dict[str, Any] = {}
    for f in paging.envelope:
        value = document.get(f.name)
        if pa.types.is_boolean(f.type):
            if not isinstance(value, bool):
                raise ResponseFormatError(f'the list response has no boolean "{f.name}"')
        elif value is not None and not isinstance(value, str):
            raise ResponseFormatError(f"the list response's {f.name} is not a string: {value!r}")
        values[f.name] = value
    return values


def check_ascending(values: Sequence[Any], after: Any, what: str) -> Any:
    """The last of `values` (or `after` when empty) if they ascend (equal neighbours allowed) and start
    after `after`; else ResponseFormatError naming `what`."""
    previous = after
    for value in values:
        if value is None or (previous is not None and value < previous):
            raise ResponseFormatError(
                f"the page's {what} values do not follow the previous ones ({value!r} after {previous!r}); "
                "a page served twice or out of order would repeat or lose rows"
            )
        previous = value
    if values and after is not None and values[0] == after:
        raise ResponseFormatError(
            f"the page starts at the {what} {after!r} where the previous page ended; a page served twice "
            "would repeat rows"
        )
    return previous
