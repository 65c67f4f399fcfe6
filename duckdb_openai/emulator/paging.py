"""Cursor pagination over a list (a run's steps, a thread's runs or messages, the assistants), as one
pure function.

Objects are stored ascending (position 0 is the first created). A request views them in its
``order``; ``after=X`` keeps what comes after X in that view, ``before=Y`` what comes
before Y (both exclusive, both may be given). Without ``before`` the page is the first
``limit`` objects of that window; with ``before`` it is the ``limit`` objects nearest to Y,
still listed in the requested order. ``has_more`` is true iff the window holds more
objects beyond the page, in the direction of paging.

    >>> select_page(5, order="desc", limit=2, after=None, before=None)
    Page(indices=[4, 3], has_more=True)
    >>> select_page(5, order="asc", limit=2, after=None, before=3)
    Page(indices=[1, 2], has_more=True)
    >>> select_page(5, order="asc", limit=10, after=1, before=3)
    Page(indices=[2], has_more=False)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["Order", "Page", "select_page"]

Order = Literal["asc", "desc"]


@dataclass(frozen=True)
class Page:
    """Storage positions of the page's objects, in response order, and ``has_more``."""

    indices: list[int]
    has_more: bool


def select_page(count: int, *, order: Order, limit: int, after: int | None, before: int | None) -> Page:
    """Pick the page; ``after``/``before`` are storage positions of the cursor objects."""

    def view(position: int) -> int:  # storage position -> position in the requested order
        return position if order == "asc" else count - 1 - position

    low = view(after) + 1 if after is not None else 0
    high = view(before) if before is not None else count
    if high <= low:
        return Page([], False)
    if before is not None:
        start, stop = max(low, high - limit), high
    else:
        start, stop = low, min(high, low + limit)
    return Page([view(v) for v in range(start, stop)], high - low > limit)
