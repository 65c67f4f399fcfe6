"""An Arrow C stream of Python batches whose failure reads as the error's class and message, nothing more.

DuckDB reads a catalog table through an Arrow C stream (`ArrowArrayStream`) and, when a pull fails,
reports `reading the stream registered as '...' failed: ` followed by the stream's `get_last_error()`.
pyarrow's stream of a Python iterator (`RecordBatchReader.from_batches`) answers with its whole Status:
a code in front ("Invalid: ", "Unknown error: ") and the Python traceback behind ("Detail: Python
exception: Traceback ..."), for every exception. `arrow_stream` is that same stream with its pull and
its error text replaced, so that an error raised while DuckDB pulls a later page reads
`... failed: FetchError: chat_completions failed for the whole list: ResponseFormatError: ...`.

    >>> schema = pa.schema([("x", pa.int64())])
    >>> capsule = arrow_stream(schema, iter([pa.record_batch([pa.array([1, 2])], schema=schema)]))
    >>> pa.RecordBatchReader._import_from_c_capsule(capsule).read_all().num_rows
    2

How: pyarrow exports a reader over a `_Producer` into a capsule, and two of the stream's callbacks,
`get_next` and `get_last_error`, are replaced by ctypes callbacks that pull from the producer. The
capsule, the struct, `get_schema` and `release` stay pyarrow's C++: a stream nobody read is released
by pyarrow's capsule destructor, and a release runs no Python of ours except the producer's finaliser
(which CPython runs with any pending exception set aside).

What it guarantees:

- A failed pull reads `f"{type(exc).__name__}: {exc}"`, as DuckDB words an exception raised by a
  source's `stream()` itself, for any exception (KeyboardInterrupt from an interrupt included), never
  with a traceback; every later pull fails with the same text.
- The iterator is closed (so a generator's `finally` blocks run and its HTTP request is let go) at its
  end, on its error, or when the consumer releases the stream early (a LIMIT), whichever comes first.
- Pulls are serialised by a lock (the C stream interface does not promise a thread-safe producer) and
  run with the GIL held (ctypes callbacks take it), on whichever thread the consumer pulls from.
- A batch of another schema is an error, never a mismatched array handed to C.
- A pull on a released stream finds no producer and fails (EINVAL) instead of touching freed state.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import threading
import weakref
from collections.abc import Iterator

import pyarrow as pa

__all__ = ["arrow_stream", "error_text"]


class _ArrowArrayStream(ctypes.Structure):
    """`struct ArrowArrayStream` of the Arrow C stream interface, the callbacks as bare addresses."""

    _fields_ = (
        ("get_schema", ctypes.c_void_p),
        ("get_next", ctypes.c_void_p),
        ("get_last_error", ctypes.c_void_p),
        ("release", ctypes.c_void_p),
        ("private_data", ctypes.c_void_p),
    )


#: The size of `struct ArrowArray` (five int64 and five pointers); the end of a stream is one zeroed.
_ARROW_ARRAY_SIZE = 5 * 8 + 5 * ctypes.sizeof(ctypes.c_void_p)
_EIO = errno.EIO
_EINVAL = errno.EINVAL

_capsule_pointer = ctypes.pythonapi.PyCapsule_GetPointer
_capsule_pointer.restype = ctypes.c_void_p
_capsule_pointer.argtypes = (ctypes.py_object, ctypes.c_char_p)
# Through ctypes.pythonapi: called with the GIL held, and it raises nothing once the error is cleared.
_clear_error = ctypes.pythonapi.PyErr_Clear
_clear_error.restype = None
_clear_error.argtypes = ()


def error_text(exc: BaseException) -> str:
    """How a failed pull reads: the exception's class and its message (a NUL, which would end the C text
    early, escaped).

    >>> error_text(ValueError("the API said has_more=true but gave no rows"))
    'ValueError: the API said has_more=true but gave no rows'
    """
    message = str(exc)
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return text.replace("\0", "\\0")


class _Producer:
    """The state behind one stream: the batches until they end, the error once one came."""

    def __init__(self, schema: pa.Schema, batches: Iterator[pa.RecordBatch]) -> None:
        self.schema = schema
        self._batches: Iterator[pa.RecordBatch] | None = batches
        self._lock = threading.Lock()
        self.error: ctypes.Array[ctypes.c_char] | None = None

    def __iter__(self) -> _Producer:
        # pyarrow's reader holds what this returns, which keeps the producer as long as the stream;
        # the reader's own pull is replaced by `_get_next`, so `__next__` is never called.
        return self

    def __next__(self) -> pa.RecordBatch:
        raise StopIteration

    def __del__(self) -> None:
        self._close()

    def export_next(self, out: int) -> int:
        """Write the next batch (or the end) as an ArrowArray at `out`: 0, or EIO with `error` set."""
        with self._lock:
            if self.error is not None:
                return _EIO
            outcome = _export_next(self._batches, self.schema, out)
            if outcome is True:
                return 0
            self._close()
            if outcome is False:
                return 0
            text = error_text(outcome)
            # Only its text goes on. Its traceback holds the frames it passed through and their callers,
            # this one among them, often in a cycle (a generator frame holding the exception it raised):
            # dropped now, so the producer and the pages go when the stream is released, not at the
            # garbage collector's next pass.
            outcome.__traceback__ = None
            del outcome
            self.error = ctypes.create_string_buffer(text.encode("utf-8", "replace"))
            return _EIO

    def _close(self) -> None:
        """Let the batches go now, closing them so their `finally` blocks run at once."""
        batches, self._batches = self._batches, None
        close = getattr(batches, "close", None)
        if callable(close):
            with contextlib.suppress(Exception):  # a failure to clean up is not the stream's error
                close()


def _export_next(
    batches: Iterator[pa.RecordBatch] | None, schema: pa.Schema, out: int
) -> bool | BaseException:
    """Pull the next batch of `batches` and write it at `out` as an ArrowArray: True; False at the end
    (a released array written); or the exception that came instead (KeyboardInterrupt from an interrupt
    too: the caller is C, and nothing may propagate to it)."""
    try:
        batch = None if batches is None else next(batches, None)
        if batch is None:
            ctypes.memset(out, 0, _ARROW_ARRAY_SIZE)
            return False
        if not batch.schema.equals(schema):
            raise TypeError(f"a batch of schema {batch.schema} in a stream of {schema}")
        batch._export_to_c(out)
        return True
    except BaseException as exc:
        return exc


#: The producer of each stream, by the stream's `private_data` (pyarrow's, unique while it lives); an
#: entry goes when pyarrow's release drops the reader holding the producer.
_live: weakref.WeakValueDictionary[int, _Producer] = weakref.WeakValueDictionary()


def _producer(stream: int) -> _Producer | None:
    # A C caller that calls back with its own exception pending would make every line below fail.
    _clear_error()
    key = _ArrowArrayStream.from_address(stream).private_data
    return None if key is None else _live.get(key)


def _get_next(stream: int, out: int) -> int:
    producer = None
    try:
        producer = _producer(stream)
        return _EINVAL if producer is None else producer.export_next(out)
    except BaseException as exc:  # the caller is C: nothing may propagate, and 0 would mean a batch
        # Outside the pull itself: a KeyboardInterrupt while waiting for the lock, say.
        if producer is not None and producer.error is None:
            producer.error = ctypes.create_string_buffer(error_text(exc).encode("utf-8", "replace"))
        return _EIO


def _get_last_error(stream: int) -> int | None:
    try:
        producer = _producer(stream)
        error = None if producer is None else producer.error
        return None if error is None else ctypes.addressof(error)
    except BaseException:
        return None


# The C callbacks, alive as long as the module: the streams hold only their addresses.
_get_next_callback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)(_get_next)
# Returning a bare address, not c_char_p: ctypes would hand C a pointer into a temporary bytes object.
_get_last_error_callback = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p)(_get_last_error)
_GET_NEXT = ctypes.cast(_get_next_callback, ctypes.c_void_p).value
_GET_LAST_ERROR = ctypes.cast(_get_last_error_callback, ctypes.c_void_p).value


def arrow_stream(schema: pa.Schema, batches: Iterator[pa.RecordBatch]) -> object:
    """A PyCapsule ('arrow_array_stream') of an Arrow C stream of `batches`, each of `schema`, whose
    failed pull reads `Class: message` (see the module docstring)."""
    producer = _Producer(schema, batches)
    capsule = pa.RecordBatchReader.from_batches(schema, producer).__arrow_c_stream__()
    stream = _ArrowArrayStream.from_address(_capsule_pointer(capsule, b"arrow_array_stream"))
    _live[stream.private_data] = producer
    stream.get_next = _GET_NEXT
    stream.get_last_error = _GET_LAST_ERROR
    return capsule
