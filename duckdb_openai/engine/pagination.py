"""The page budget of one list: how many pages it may still request (`Settings.max_pages`).

The paging strategies themselves (which parameters a page request sends, how the next cursor is read
from a page) are declared with each resource: `resources/paging.py`.
"""

from __future__ import annotations

from dataclasses import dataclass

from duckdb_openai.errors import ResponseFormatError

__all__ = ["PageBudget"]


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
