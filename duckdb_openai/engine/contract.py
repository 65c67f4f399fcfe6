"""What a 200 body must be before a parser sees it, and what a decoded list page must say of itself.

pyarrow's JSON reader trusts its input: a body that is `null` crashes the process, an array nested a
few thousand deep costs it seconds, tens of thousands overflow its stack (a segmentation fault), and
Python's `json` raises RecursionError on those. `check_body` refuses such bodies with a
ResponseFormatError before any parser runs, in one C pass that keeps the brackets, quotes and
backslashes (a seventh of a page) and a few vectorized passes over those (about a tenth of the
reader's own time on a page of 100 run steps, 10 us for a small object):

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
_WHITE_SPACE = b" \t\r\n"
_QUOTE, _BACKSLASH = ord('"'), ord("\\")
#: The bytes the depth scan looks at: brackets, quotes and backslashes (about a seventh of a page).
_SPECIAL = b'{}[]"\\'
_NOT_SPECIAL = bytes(c for c in range(256) if c not in _SPECIAL)
_IS_SPECIAL = np.zeros(256, dtype=bool)
_IS_SPECIAL[list(_SPECIAL)] = True
#: How a bracket moves the depth: +1 for `{` and `[`, -1 for `}` and `]`.
_STEP = np.zeros(256, dtype=np.int8)
_STEP[list(b"{[")], _STEP[list(b"}]")] = 1, -1


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
    depth, last = _depths(body)
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
    # that never closes its object is left to the parser, which reports where it ends. Depth starts at 1
    # (the opening brace) and moves by one, so the object closes at its first return to 0, which must
    # be the last bracket outside strings; with no special byte after that bracket, only white space
    # follows it exactly when the body's last other byte is a bracket (then it is that one).
    if int(depth.min()) <= 0 and not (
        depth[-1] == 0
        and (len(depth) == 1 or int(depth[:-1].min()) > 0)
        and last
        and body.rstrip(_WHITE_SPACE)[-1:] in (b"}", b"]")
    ):
        raise ResponseFormatError(f"expected one JSON object, got more after it: {preview(body)}")


def _depths(body: bytes) -> tuple[np.ndarray, bool]:
    """The nesting depth after each bracket outside strings, and whether the last of those brackets is
    the body's last bracket, quote or backslash."""
    # One C pass keeps only the special bytes, in order; everything after works on that short stream.
    stream = body.translate(None, _NOT_SPECIAL)
    s = np.frombuffer(stream, dtype=np.uint8)
    quotes = s == _QUOTE
    other = quotes  # the special bytes that are no bracket
    if _BACKSLASH in stream:
        backslashes = s == _BACKSLASH
        other = quotes | backslashes
        # A backslash escapes the next byte of the body; in the stream, that is the next element only
        # if the byte is special itself (`\"`, `\\`): `glued` marks those backslashes. The body's
        # backslashes are the stream's, in the same order.
        b = np.frombuffer(body, dtype=np.uint8)
        at = np.flatnonzero(b == _BACKSLASH)
        where = np.flatnonzero(backslashes)
        if at[-1] == len(b) - 1:  # a last byte escapes nothing
            at, where = at[:-1], where[:-1]
        where = where[_IS_SPECIAL[b[at + 1]]]
        # A quote is escaped when an odd run of glued backslashes ends right before it.
        candidates = where[quotes[where + 1]]
        if len(candidates):
            glued = np.zeros(len(s), dtype=bool)
            glued[where] = True
            escaped = _odd_runs(glued, candidates)
            quotes[candidates[escaped] + 1] = False
    # A bracket is inside a string when an odd number of (unescaped) quotes comes before it; a running
    # xor is a parity count at a third of cumsum's cost.
    inside = np.bitwise_xor.accumulate(quotes.view(np.uint8)).view(bool)
    outside = np.flatnonzero(~(inside | other))
    last = len(outside) > 0 and int(outside[-1]) == len(s) - 1
    return np.cumsum(_STEP[s[outside]], dtype=np.int32), last


def _odd_runs(glued: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """For each position in `ends` (a glued backslash), whether the run of glued backslashes ending there
    is odd. Runs longer than one are rare, so each round follows the remaining runs one further left."""
    odd = np.ones(len(ends), dtype=bool)
    live = np.flatnonzero(ends > 0)
    live = live[glued[ends[live] - 1]]
    length = 1
    while len(live):
        odd[live] ^= True
        length += 1
        leftmost = ends[live] - length + 1
        live = live[leftmost > 0]
        live = live[glued[ends[live] - length]]
    return odd


def check_ids(ids: Sequence[str | None], *, first_id: str | None, last_id: str | None) -> None:
    """Raise ResponseFormatError unless every id is a non-empty string, none repeats, and `first_id` /
    `last_id` (None: not given) name the first and the last of them."""
    # The common case in two C-speed passes; the loops below only name the culprit.
    if not all(ids):
        position = next(i for i, value in enumerate(ids) if not value)
        raise ResponseFormatError(
            f"object {position} of the list response has no id ({ids[position]!r}); an object without "
            "an id cannot be told apart from a missing one"
        )
    if len(set(ids)) != len(ids):
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
