"""What a 200 body must be before a parser sees it, and what a decoded list page must say of itself.

pyarrow's JSON reader trusts its input: a body that is `null` crashes the process, an array nested a
few thousand deep costs it seconds, tens of thousands overflow its stack (a segmentation fault), and
Python's `json` raises RecursionError on those. `check_body` refuses such bodies with a
ResponseFormatError in a few vectorized passes over the bytes (about 2% of the reader's own time),
before any parser runs:

- the body is one JSON object, `{...}`, with nothing but white space around it;
- objects and arrays nest at most MAX_DEPTH deep (a run step's deepest value is 10 deep);
- the bytes are UTF-8, as RFC 8259 requires: the reader copies invalid bytes into string columns,
  which DuckDB rejects much later ("Invalid unicode ... segment statistics") and the Python reader
  hands on as an invalid Arrow table. They are an error, not replaced with U+FFFD: a replaced
  character would be a silent change of the data.

`check_ids` holds a page to the list contract: every object has a non-empty string id, no id comes
twice, and `first_id` / `last_id`, when given, are the first and the last object's ids (a `last_id`
that is not the last id makes the next page start in the wrong place: rows repeated or lost).

>>> check_body(b'{"data": [[1], {"a": "[[["}]}')
>>> check_body(b'null')
Traceback (most recent call last):
...
duckdb_openai.errors.ResponseFormatError: expected a JSON object, got 'null'
>>> check_ids(["a", "b"], first_id="a", last_id="a")
Traceback (most recent call last):
...
duckdb_openai.errors.ResponseFormatError: the list response says last_id='a', but its last object is 'b'
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from duckdb_openai.errors import ResponseFormatError

__all__ = ["MAX_DEPTH", "check_body", "check_ids", "preview"]

#: The deepest nesting of objects and arrays a body may have, its own braces included. A list page of
#: run steps reaches 11; pyarrow's reader slows down past a few hundred (0.2 s for one value 1,000 deep,
#: 30 s at 8,000) and crashes in the tens of thousands; 128 leaves room for free JSON (a function's
#: parameter schema) without coming near either.
MAX_DEPTH = 128

_SPACE = re.compile(rb"[ \t\r\n]*")
_QUOTE, _BACKSLASH = ord('"'), ord("\\")
# `[` and `]` (0x5B, 0x5D) differ from `{` and `}` (0x7B, 0x7D) only in bit 0x20: or-ing it in folds
# each pair onto one value, so two comparisons find all four brackets.
_OPENING, _CLOSING = ord("{"), ord("}")


def preview(body: bytes) -> str:
    """The start of a body for an error message, as a quoted string."""
    text = body[:200].decode("utf-8", "replace")
    return repr(text + ("..." if len(body) > 200 else ""))


def check_body(body: bytes) -> None:
    """Raise ResponseFormatError unless `body` is one JSON object of bounded depth in UTF-8 (see the
    module docstring). Valid JSON inside the object is left to the parser."""
    start = _SPACE.match(body)
    first = start.end() if start else 0
    if body[first : first + 1] != b"{":
        raise ResponseFormatError(f"expected a JSON object, got {preview(body)}")
    depth, where = _depths(body)
    deepest = int(depth.max())
    if deepest > MAX_DEPTH:
        raise ResponseFormatError(
            f"the response nests objects and arrays {deepest} deep, more than the {MAX_DEPTH} a response "
            f"of this API can need; refusing to parse it: {preview(body)}"
        )
    if not body.isascii():
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ResponseFormatError(
                f"the response is not valid UTF-8 (byte {exc.start}: {body[exc.start : exc.start + 4]!r}); "
                f"JSON must be UTF-8: {preview(body)}"
            ) from None
    # Anything after the object would reach the reader as a row of its own (`null` crashes it). A body
    # that never closes its object is left to the parser, which reports where it ends.
    closed = np.flatnonzero(depth == 0)
    if len(closed) and (closed[0] != len(depth) - 1 or not _is_space(body, int(where[-1]) + 1)):
        raise ResponseFormatError(f"expected one JSON object, got more after it: {preview(body)}")


def _is_space(body: bytes, start: int) -> bool:
    found = _SPACE.match(body, start)
    return found is not None and found.end() == len(body)


def _depths(body: bytes) -> tuple[np.ndarray, np.ndarray]:
    """The nesting depth after each bracket outside strings, and the brackets' byte positions."""
    b = np.frombuffer(body, dtype=np.uint8)
    folded = b | 0x20
    opening = folded == _OPENING
    special = opening | (folded == _CLOSING) | (b == _QUOTE) | (b == _BACKSLASH)
    # From here on only the special bytes (a sixth of a page), in order: `pos` are their offsets.
    pos = np.flatnonzero(special)
    kind = b[pos]
    quotes = kind == _QUOTE
    backslashes = kind == _BACKSLASH
    # A quote is escaped when an odd run of backslashes ends right before it. Bytes adjacent in the
    # body are adjacent here too; runs longer than one are rare, so each round follows the remaining
    # runs one backslash further left.
    candidates = np.flatnonzero(quotes[1:] & backslashes[:-1]) + 1
    candidates = candidates[pos[candidates] - pos[candidates - 1] == 1]
    escaped = np.ones(len(candidates), dtype=bool)
    live = np.arange(len(candidates))
    length = 1
    while len(live):
        leftmost = candidates[live] - length
        live, leftmost = live[leftmost > 0], leftmost[leftmost > 0]
        longer = backslashes[leftmost - 1] & (pos[leftmost] - pos[leftmost - 1] == 1)
        live = live[longer]
        escaped[live] ^= True
        length += 1
    quotes[candidates[escaped]] = False
    # A bracket is inside a string when an odd number of (unescaped) quotes comes before it.
    outside = np.flatnonzero(~quotes & ~backslashes & (np.cumsum(quotes, dtype=np.int32) & 1 == 0))
    # `[` and `{` (0x5B, 0x7B) have bit 0x02 set, `]` and `}` (0x5D, 0x7D) do not: +1 and -1.
    steps = (kind[outside] & 0x02).astype(np.int8) - 1
    return np.cumsum(steps, dtype=np.int32), pos[outside]


def check_ids(ids: Sequence[str | None], *, first_id: str | None, last_id: str | None) -> None:
    """Raise ResponseFormatError unless every id is a non-empty string, none repeats, and `first_id` /
    `last_id` (None: not given) name the first and the last of them."""
    for position, value in enumerate(ids):
        if not value:
            raise ResponseFormatError(
                f"object {position} of the list response has no id ({value!r}); an object without an "
                "id cannot be told apart from a missing one"
            )
    seen: set[str | None] = set()
    for value in ids:
        if value in seen:
            raise ResponseFormatError(f"the list response holds the id {value!r} twice")
        seen.add(value)
    if not ids:
        return
    if first_id is not None and first_id != ids[0]:
        raise ResponseFormatError(
            f"the list response says first_id={first_id!r}, but its first object is {ids[0]!r}"
        )
    if last_id is not None and last_id != ids[-1]:
        raise ResponseFormatError(
            f"the list response says last_id={last_id!r}, but its last object is {ids[-1]!r}"
        )
