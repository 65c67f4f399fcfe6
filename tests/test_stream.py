"""The catalog's stream (duckdb_openai/sql/stream.py): an error on a later page reaches SQL as one line
naming its class, at any thread count, with no traceback and never the key; LIMIT, interrupts and many
failing queries leave no request, thread or stream behind. Each catalog case runs over real HTTP on
loopback (a ScriptedServer); the stream's own guarantees are checked with pyarrow and DuckDB reading it.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import gc
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs

import duckdb
import pyarrow as pa
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from duckdb_openai.client import Client
from duckdb_openai.sql import stream
from duckdb_openai.sql.stream import arrow_stream, error_text
from tests.helpers import KEY, connect
from tests.scripted import ScriptedServer

SQL = "SELECT id FROM openai.chat.completions"
HIDDEN = "openai.chat.completions source (made by duckdb_openai.register on this connection or cursor)"
#: How DuckDB words a failed pull of the catalog's stream; the package error follows on the same line.
PULL_FAILED = f"Invalid Input Error: reading the stream registered as '{HIDDEN}' failed: "
PAGE = 20


def completion(i: int) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{i:04d}",
        "object": "chat.completion",
        "created": 1_741_476_777 + i,
        "model": "m",
    }


def listing(data: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    ids = [d["id"] for d in data]
    return {
        "object": "list",
        "data": data,
        "first_id": ids[0] if ids else None,
        "last_id": ids[-1] if ids else None,
        "has_more": has_more,
    }


def long_list(
    count: int, *, fail_from: int | None = None, failure: Response | None = None
) -> Callable[[Request], Response]:
    """The chat completions list of `count` objects, paged by `after` in pages of PAGE like the API.
    From page `fail_from` on (0 is the first), and for the far end the client also reads (order=desc),
    the answer is `failure`, so the error is the same whichever side meets it first."""
    objects = [completion(i) for i in range(count)]
    ids = [o["id"] for o in objects]

    def answer(request: Request) -> Response:
        query = parse_qs(request.url.query)
        start = ids.index(query["after"][0]) + 1 if "after" in query else 0
        failing = fail_from is not None and (start // PAGE >= fail_from or query.get("order") == ["desc"])
        if failure is not None and failing:
            return failure
        chunk = objects[start : start + PAGE]
        return JSONResponse(listing(chunk, has_more=start + PAGE < count))

    return answer


def error_of(con: duckdb.DuckDBPyConnection, sql: str = SQL) -> str:
    with pytest.raises(duckdb.Error) as info:
        con.execute(sql).fetchall()
    return str(info.value)


def assert_one_clean_line(message: str) -> None:
    assert "\n" not in message and "Traceback" not in message and "Detail" not in message, message
    assert KEY not in message and KEY[:12] not in message, message


NO_ROWS = JSONResponse(listing([], has_more=True))
NOT_FOUND = JSONResponse(
    {"error": {"message": "No such page", "type": "invalid_request_error", "code": None}}, status_code=404
)
FAILURES = {
    "contract": (
        NO_ROWS,
        r"FetchError: chat_completions failed for the whole list: ResponseFormatError: the API said "
        r"has_more=true but gave no rows or no last_id \(after=[^)]*\); refusing to guess [^\n]*",
    ),
    "404": (NOT_FOUND, r"FetchError: chat_completions failed for the whole list: NotFoundError: [^\n]*"),
}


@pytest.mark.parametrize("threads", [1, 8])
@pytest.mark.parametrize("fail_from", [1, 2], ids=["second page", "third page"])
@pytest.mark.parametrize("failure", sorted(FAILURES))
def test_an_error_on_a_later_page_is_one_line_at_every_thread_count(
    threads: int, fail_from: int, failure: str
) -> None:
    answer, expected = FAILURES[failure]
    with ScriptedServer([long_list(200, fail_from=fail_from, failure=answer)]) as server:
        con, registration = connect(server.base_url)
        con.execute(f"SET threads = {threads}")
        message = error_of(con)
        asked = [parse_qs(r.query).get("after", [None])[0] for r in server.requests]
        registration.close()
    assert re.fullmatch(re.escape(PULL_FAILED) + expected, message), message
    assert_one_clean_line(message)
    # The pages before the failing one were read: the error came while DuckDB pulled, not at the start.
    assert f"chatcmpl-{fail_from * PAGE - 1:04d}" in asked, asked


def test_an_error_echoing_the_key_on_a_later_page_does_not_show_it() -> None:
    def echo(request: Request) -> Response:
        header = request.headers.get("authorization", "")
        body = {"error": {"message": f"bad cursor; you sent {header}", "type": "invalid_request_error"}}
        return JSONResponse(body, status_code=400)

    first = JSONResponse(listing([completion(i) for i in range(PAGE)], has_more=True))
    with ScriptedServer([first, echo]) as server:  # `echo` answers every request after the first
        con, registration = connect(server.base_url)
        message = error_of(con)
        got_key = any(KEY in r.headers.get("authorization", "") for r in server.requests)
        registration.close()
    assert got_key  # the server did have the key to echo
    assert message.startswith(PULL_FAILED + "FetchError: chat_completions failed for the whole list: "), (
        message
    )
    assert "BadRequestError" in message and "bad cursor" in message, message
    assert_one_clean_line(message)


@pytest.mark.parametrize("threads", [1, 8])
def test_limit_1_makes_one_request_and_closes_the_stream(
    threads: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stream is released and its page generator closed once LIMIT has its row: the client, no
    longer busy, closes its loop thread after its idle time (shortened here)."""
    monkeypatch.setattr(Client, "IDLE_CLOSE_S", 0.05)
    with ScriptedServer([long_list(10_000)]) as server:
        con, registration = connect(server.base_url)
        con.execute(f"SET threads = {threads}")
        before = set(threading.enumerate())
        assert con.execute(f"{SQL} LIMIT 1").fetchall() == [("chatcmpl-0000",)]
        requests = len(server.requests)
        loops = [t for t in set(threading.enumerate()) - before if t.name == "duckdb-openai"]
        deadline = time.monotonic() + 10
        while any(t.is_alive() for t in loops) and time.monotonic() < deadline:
            time.sleep(0.02)
        idled_out = not any(t.is_alive() for t in loops)
        registration.close()
    assert requests == 1
    assert loops and idled_out


@pytest.mark.parametrize("threads", [1, 8])
def test_interrupt_during_a_slow_later_page_ends_the_query(threads: int) -> None:
    released = threading.Event()

    async def slow(request: Request) -> Response:
        for _ in range(2_000):  # 20 s, unless the test is over
            if released.is_set():
                break
            await asyncio.sleep(0.01)
        return JSONResponse(listing([completion(999)], has_more=False))

    first = JSONResponse(listing([completion(i) for i in range(PAGE)], has_more=True))
    with ScriptedServer([first, slow]) as server:
        con, registration = connect(server.base_url)
        con.execute(f"SET threads = {threads}")
        outcome: list[BaseException | None] = []

        def query() -> None:
            try:
                con.execute("SELECT count(*) FROM openai.chat.completions").fetchall()
                outcome.append(None)
            except BaseException as exc:
                outcome.append(exc)

        worker = threading.Thread(target=query)
        worker.start()
        deadline = time.monotonic() + 10
        while len(server.requests) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)  # the second page's request is in flight
        con.interrupt()
        worker.join(timeout=10)  # the page would take 20 s: only an interrupted pull ends sooner
        alive = worker.is_alive()
        released.set()
        after = con.execute("SELECT 42").fetchall()
        registration.close()
    assert not alive
    assert outcome and isinstance(outcome[0], duckdb.Error), outcome
    message = str(outcome[0])
    # DuckDB may see its interrupt flag before the failed pull, or the failed pull first.
    assert message in ("INTERRUPT Error: Interrupted!", PULL_FAILED + "KeyboardInterrupt: interrupted"), (
        message
    )
    assert after == [(42,)]


@pytest.mark.slow
def test_many_failing_queries_leave_no_thread_or_stream_behind() -> None:
    def python_threads() -> list[threading.Thread]:
        # Not DuckDB's own threads, which Python lists (as dummies) once they first call into it.
        return [t for t in threading.enumerate() if not isinstance(t, threading._DummyThread)]

    def rss_kib() -> int:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * 4096 // 1024

    with ScriptedServer([long_list(200, fail_from=1, failure=NO_ROWS)]) as server:
        con, registration = connect(server.base_url)

        def failing(i: int) -> str:
            con.execute(f"SET threads = {8 if i % 2 else 1}")
            return error_of(con)

        for i in range(20):  # warm up: the client's loop, DuckDB's threads, caches
            failing(i)
        gc.collect()
        threads, memory = len(python_threads()), rss_kib()
        messages = {failing(i) for i in range(200)}
        assert not stream._live  # every stream was released at once, its producer gone without a GC pass
        gc.collect()
        deadline = time.monotonic() + 5  # a cancelled idle timer's thread may take a moment to end
        while len(python_threads()) > threads and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(python_threads()) <= threads, python_threads()
        assert rss_kib() - memory < 32 * 1024, (memory, rss_kib())
        registration.close()
    assert len(messages) == 1
    assert_one_clean_line(messages.pop())


# -- the stream itself -----------------------------------------------------------------------------------

SCHEMA = pa.schema([("x", pa.int64())])


class Batches:
    """Batches of SCHEMA, then optionally an error; records whether it was closed."""

    def __init__(self, count: int, error: BaseException | None = None) -> None:
        self.count, self.error, self.pulled, self.closed = count, error, 0, False

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        return self

    def __next__(self) -> pa.RecordBatch:
        if self.pulled == self.count:
            if self.error is not None:
                raise self.error
            raise StopIteration
        self.pulled += 1
        return pa.record_batch([pa.array([self.pulled] * 3)], schema=SCHEMA)

    def close(self) -> None:
        self.closed = True


class Source(duckdb._sources.ArrowScanSource):
    """A table whose every scan streams `make()` through `arrow_stream`."""

    schema_is_stable = True

    def __init__(self, make: Callable[[], Batches]) -> None:
        super().__init__(None)
        self.make = make
        self.made: list[Batches] = []

    def __arrow_c_schema__(self) -> object:
        return SCHEMA.__arrow_c_schema__()

    def stream(self, columns: Any, filters: Any) -> tuple[object, bool]:
        self.made.append(self.make())
        return arrow_stream(SCHEMA, self.made[-1]), False


def test_a_stream_reads_whole_and_closes_its_batches_at_the_end() -> None:
    batches = Batches(3)
    table = pa.RecordBatchReader._import_from_c_capsule(arrow_stream(SCHEMA, batches)).read_all()
    assert table.column("x").to_pylist() == [1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert batches.closed


def test_a_failed_pull_is_the_error_text_without_a_traceback() -> None:
    batches = Batches(2, ValueError("the third batch broke"))
    reader = pa.RecordBatchReader._import_from_c_capsule(arrow_stream(SCHEMA, batches))
    assert reader.read_next_batch().num_rows == 3
    assert reader.read_next_batch().num_rows == 3
    with pytest.raises(OSError) as info:  # pyarrow's reading of the stream's EIO
        reader.read_next_batch()
    assert str(info.value) == "ValueError: the third batch broke"
    assert batches.closed
    del reader  # released while nothing is pending: the producer goes with it
    gc.collect()
    assert not stream._live


def test_a_reader_dropped_while_its_error_is_raised_releases_the_stream() -> None:
    """pyarrow releases an imported stream while it raises the stream's error: that release runs no
    Python of ours with the error pending (it crashed the process in a draft that did)."""
    with pytest.raises(OSError, match=r"^RuntimeError: boom$"):
        pa.RecordBatchReader._import_from_c_capsule(
            arrow_stream(SCHEMA, Batches(1, RuntimeError("boom")))
        ).read_all()
    gc.collect()
    assert not stream._live


def test_a_batch_of_another_schema_is_an_error_not_a_mismatched_array() -> None:
    other = pa.record_batch([pa.array(["a"])], names=["x"])
    reader = pa.RecordBatchReader._import_from_c_capsule(arrow_stream(SCHEMA, iter([other])))
    with pytest.raises(OSError, match=r"^TypeError: a batch of schema x: string in a stream of x: int64"):
        reader.read_all()


def test_an_unread_capsule_and_an_early_release_close_the_batches() -> None:
    unread = Batches(3)
    capsule = arrow_stream(SCHEMA, unread)
    del capsule
    gc.collect()
    assert unread.closed and unread.pulled == 0
    early = Batches(1000)
    reader = pa.RecordBatchReader._import_from_c_capsule(arrow_stream(SCHEMA, early))
    reader.read_next_batch()
    reader.close()
    assert early.closed and early.pulled == 1
    assert not stream._live


def test_every_pull_after_a_failure_fails_the_same_and_a_released_stream_finds_nothing() -> None:
    """Driving the C struct as a consumer would: get_next, get_last_error, release."""
    capsule = arrow_stream(SCHEMA, Batches(0, KeyError("gone")))
    get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
    get_pointer.restype, get_pointer.argtypes = ctypes.c_void_p, (ctypes.py_object, ctypes.c_char_p)
    address = get_pointer(capsule, b"arrow_array_stream")
    struct = stream._ArrowArrayStream.from_address(address)
    get_next = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)(struct.get_next)
    last_error = ctypes.CFUNCTYPE(ctypes.c_char_p, ctypes.c_void_p)(struct.get_last_error)
    release = ctypes.CFUNCTYPE(None, ctypes.c_void_p)(struct.release)
    out = ctypes.create_string_buffer(80)
    for _ in range(2):
        assert get_next(address, out) == errno.EIO
        assert last_error(address) == b"KeyError: 'gone'"
    private_data = struct.private_data
    release(address)
    assert struct.release is None
    struct.private_data = private_data  # a consumer that kept calling after release
    assert get_next(address, out) == errno.EINVAL
    del capsule


@pytest.mark.parametrize("threads", [1, 8])
def test_duckdb_reads_the_stream_on_many_threads_and_reports_its_error(threads: int) -> None:
    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    good = Source(lambda: Batches(2_000))
    bad = Source(lambda: Batches(50, LookupError("no such page")))
    con._register_arrow_source("good", good)
    con._register_arrow_source("bad", bad)
    assert con.execute("SELECT count(*), sum(x) FROM good WHERE x % 7 = 0").fetchall() == [
        (3 * 285, 3 * 7 * 285 * 286 // 2)
    ]
    assert con.execute("SELECT x FROM good LIMIT 1").fetchall() == [(1,)]
    message = error_of(con, "SELECT count(*) FROM bad")
    assert (
        message
        == "Invalid Input Error: reading the stream registered as 'bad' failed: LookupError: no such page"
    )
    assert all(b.closed for b in good.made + bad.made)
    con.close()


def test_error_text_is_the_class_and_message_on_one_line() -> None:
    assert error_text(KeyboardInterrupt("interrupted")) == "KeyboardInterrupt: interrupted"
    assert error_text(StopAsyncIteration()) == "StopAsyncIteration"
    assert error_text(ValueError("a\0b")) == "ValueError: a\\0b"
