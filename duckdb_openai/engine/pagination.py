"""Cursor pagination as a tiny state machine.

A list response looks like::

    {"object": "list", "data": [{"id": "step_a", ...}, {"id": "step_b", ...}],
     "first_id": "step_a", "last_id": "step_b", "has_more": true}

The next page is asked for with `after=<last_id>`; paging stops when `has_more` is false. A page that
claims more but gives no cursor, or a cursor that does not move, is a broken contract: it raises
instead of looping forever or silently stopping short.

>>> p = Cursor(order="asc")
>>> p.params()
[('order', 'asc')]
>>> p.advance(has_more=True, last_id="step_b", count=2)
>>> p.params(), p.done
([('order', 'asc'), ('after', 'step_b')], False)
>>> p.advance(has_more=False, last_id="step_c", count=1)
>>> p.done
True
"""

from __future__ import annotations

from dataclasses import dataclass, field

from duckdb_openai.errors import ResponseFormatError

__all__ = ["Cursor", "PageBudget"]


@dataclass
class Cursor:
    """Where one direction of paging stands: its order, its `after` cursor, and whether it is done."""

    order: str
    order_param: str = "order"
    after: str | None = None
    done: bool = False
    pages: int = 0
    _seen: set[str] = field(default_factory=set, repr=False)

    def params(self) -> list[tuple[str, str]]:
        params = [(self.order_param, self.order)]
        if self.after is not None:
            params.append(("after", self.after))
        return params

    def advance(self, *, has_more: bool, last_id: str | None, count: int) -> None:
        """Take in a page's `has_more`, `last_id` and row count."""
        self.pages += 1
        if not has_more:
            self.done = True
            return
        if count == 0 or not last_id:
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


@dataclass
class PageBudget:
    """The pages one list may still request, both of its ends together (`Settings.max_pages`).

    A server that says `has_more: true` forever, with fresh ids each time, would otherwise be paged
    until memory runs out; a LIMIT over the table macro does not stop it, as the macro's function
    fetches whole lists.

    >>> budget = PageBudget(2)
    >>> budget.take(); budget.take()
    >>> budget.take()
    Traceback (most recent call last):
    ...
    duckdb_openai.errors.ResponseFormatError: the list did not end within max_pages=2 pages ...
    """

    limit: int
    used: int = 0

    def take(self) -> None:
        """Count one more page request, or raise ResponseFormatError if the list has used them all."""
        if self.used >= self.limit:
            raise ResponseFormatError(
                f"the list did not end within max_pages={self.limit} pages (the API kept saying "
                "has_more=true); if it really is that long, raise max_pages= (register(), Client(), "
                "read_run_steps())"
            )
        self.used += 1
