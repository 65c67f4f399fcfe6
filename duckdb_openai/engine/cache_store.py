"""Where the cache keeps what it knows: in memory per client (bounded, least recently used first), or
in a directory that several processes share.

Two kinds of facts are stored (`cache.py` decides what they are):

- entries: rows that can no longer change, as an Arrow table (a run's steps up to the first one still
  moving; one retrieved step), with when they were fetched, whether they were the whole list, and
  whether the list's parent (the run) was seen finished before they were fetched. Whether a list is
  final by `final_after` is decided when it is read, by the reader's setting, from those facts;
- statuses: a parent object (a run) seen in a terminal status, and when that was learned.

In memory (`MemoryStore`), an entry is kept as LZ4-compressed Arrow IPC messages rather than as a table:
what it holds is what it weighs, so `cache_max_bytes` bounds the memory it takes. With a `cache_dir`,
a memory store sits in front of the disk (`LayeredStore`): a process reads each file once.

On disk (`DiskStore`), under `<cache_dir>/cache-v2/<scope>/`, where the scope is a hash of the base URL,
organization, project and the credential's identity (`cache_scope.py`: a key's PBKDF2 hash, or the
identity a token names; never the key or the token)::

    run_steps-<schema hash>/list-<hash of the list key>.arrow    one file per entry
    statuses.log                                                 one line per finished parent

An entry file is written whole to a temporary file and moved over the old one (`os.replace`), so a
reader sees the old file or the new one, never half of one, and a crash leaves the old state. It is a
small envelope (a magic line, a JSON header) around Arrow IPC record batch messages (the rows' own
format, so nothing is converted but decompressed; no schema per file, as the folder's name carries the
schema's hash) compressed with LZ4, ending in a BLAKE2 digest of all before it: a file that is cut,
flipped or not ours fails the check and is dropped, and the rows are fetched again; it can never give
wrong rows. The status log is append-only: each fact is one line written with one `write` on an
`O_APPEND` descriptor and carries its own CRC, so processes appending at once do not lose each other's
lines, and a torn line is ignored. No locks are needed: every fact is either immutable (a status) or
replaced whole by a later, longer one (an entry), so two processes writing the same key at once
write rows that are both right.

Trust: the folders are the cache's only defence against forged rows, so the cache uses a folder only if
no one else can write in it. `cache_dir` itself must be yours (or root's) and not writable by others
unless sticky (as /tmp is); `cache-v2` and the scope folder must be yours and not writable by group or
others. Otherwise the client is refused with a ConfigurationError saying why and what to do. Folders are
created 0700 and files 0600: readable by the user only.

Files are opened without blocking (`O_NONBLOCK`, `O_NOFOLLOW`) and used only if they are regular files,
so a FIFO or a device in the folder is skipped, never waited on. A layered store does all its file work
in one worker thread and waits for it at most `DISK_TIMEOUT_S`: a file on a hung mount costs that wait
once, then the client keeps to memory, with a warning. Writing is best effort: a full disk or a removed
directory costs the saving, never the query. `clear_folder` and `DiskStore.clear` remove only files the
cache writes (their names, places and first bytes), and say what they left.

Why not a library: diskcache (SQLite underneath) would serialize writers and pickle values, and has
had no release since 2023; Arrow IPC is already the rows' format and pyarrow is already a dependency.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import errno
import hashlib
import json
import logging
import os
import queue
import re
import secrets
import stat
import struct
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.ipc as ipc

from duckdb_openai.errors import ConfigurationError

__all__ = [
    "CACHE_FORMAT",
    "DISK_TIMEOUT_S",
    "CacheInfo",
    "Cleared",
    "DiskStore",
    "Entry",
    "LayeredStore",
    "MemoryStore",
    "StoreKey",
    "clear_folder",
    "folder_info",
    "read_entry_file",
]

logger = logging.getLogger("duckdb_openai")

T = TypeVar("T")

#: The folder under `cache_dir` holding this format; a new format gets a new folder, never a misread.
CACHE_FORMAT = "cache-v2"
_MAGIC = b"DOAICACHE2\n"
#: Every format's folder and entry magic, for `clear_folder` (v1: keyless scopes, final stored).
_FORMATS = {"cache-v1": b"DOAICACHE1\n", CACHE_FORMAT: _MAGIC}
_HEADER = struct.Struct("<I")
_DIGEST_SIZE = 16
_STATUS_LOG = "statuses.log"
#: LZ4 (frame): measured on run steps, 9 us to decompress an entry against zstd's 48 us, for files 40%
#: larger. One codec object: making one per call costs as much as decompressing.
_CODEC_NAME = "lz4"
_CODEC = pa.Codec(_CODEC_NAME)
#: What reading a damaged or foreign file may raise; all of it means "drop it and fetch again".
_UNREADABLE = (OSError, ValueError, KeyError, TypeError, pa.ArrowException, UnicodeDecodeError)
#: The longest a layered store waits for one file operation; past it the folder is left for memory.
#: Local files take microseconds: only a hung mount (or a machine stalled for seconds) comes near.
DISK_TIMEOUT_S = 10.0

# The names the cache gives what it writes, below a format's folder (`clear` removes nothing else).
_SCOPE_NAME = re.compile(r"[0-9a-f]{32}\Z")
_NAMESPACE_NAME = re.compile(r"[a-z][a-z0-9_]*-[0-9a-f]{12}\Z")
_ENTRY_NAME = re.compile(r"(?:list|item)-[0-9a-f]{40}\.arrow\Z")
_TEMPORARY_NAME = re.compile(r"\.(?:list|item)-[0-9a-f]{40}\.arrow\.\d+\.[0-9a-f]{8}\.tmp\Z")


@dataclass(frozen=True)
class Entry:
    """Rows that can no longer change, in ascending creation order, and what is known about them."""

    rows: pa.Table
    #: When the request chain that last extended the rows was sent (seconds since the epoch).
    fetched_at: float
    #: Every row that chain saw was in a terminal status: the rows were the whole list then.
    whole: bool
    #: The rows can no longer change as seen, not assumed: the list's parent was seen finished before
    #: they were fetched (an item: the object is terminal). `final_after` is applied when read.
    finished: bool
    #: The compressed record batch messages the rows were read from (a file's payload) and their sizes:
    #: the memory store keeps those as they are instead of encoding the rows again.
    packed: tuple[bytes, tuple[int, ...]] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class StoreKey:
    """An entry's address: the resource's namespace (its name and schema hash) and the key within it."""

    namespace: str
    key: str

    @property
    def file_name(self) -> str:
        kind = self.key.split("?", 1)[0].rsplit("/", 1)[-1]
        return f"{kind}-{hashlib.sha256(self.key.encode()).hexdigest()[:40]}.arrow"


@dataclass(frozen=True)
class CacheInfo:
    """What a store holds, for `duckdb-openai cache info` and `Client.cache.info()`."""

    location: str
    #: Entries (lists and items) kept.
    entries: int
    #: Distinct parents (runs) whose children's list is kept.
    runs: int
    #: Parents known to be finished.
    finished: int
    #: Bytes of Arrow data in memory, or of files on disk.
    bytes: int


@dataclass(frozen=True)
class Cleared:
    """What clearing a cache folder did: the bytes freed, and the files left (not the cache's)."""

    freed: int
    left: tuple[str, ...]


def _parent_of(key: str) -> str:
    """A list key `run_steps/list?<keys>|<params>` without its params: the one parent it belongs to."""
    return key.split("|", 1)[0]


@dataclass(frozen=True)
class _Packed:
    """An entry as the memory store keeps it: its rows as Arrow IPC record batch messages, LZ4-compressed.

    A small run's rows as a table hold about a hundred C++ arrays and buffers, some 30 KB whatever the
    rows; packed they hold about what they weigh (measured with the LATERAL over 20,000 runs of ~5 steps:
    700 MB more peak memory as tables, 140 MB as plain messages, less compressed). Reading one back costs
    ~30 us and gives buffers of its own, which also concatenate faster than slices of a page.
    """

    blob: bytes
    sizes: tuple[int, ...]
    fetched_at: float
    whole: bool
    finished: bool

    @classmethod
    def of(cls, entry: Entry) -> _Packed:
        if entry.packed is not None:
            blob, sizes = entry.packed
            return cls(blob, sizes, entry.fetched_at, entry.whole, entry.finished)
        batches = entry.rows.combine_chunks().to_batches() if entry.rows.num_rows else []
        messages = [b.serialize() for b in batches]
        raw = b"".join(m.to_pybytes() for m in messages)
        blob = _CODEC.compress(raw, asbytes=True) if raw else b""
        return cls(blob, tuple(m.size for m in messages), entry.fetched_at, entry.whole, entry.finished)

    @property
    def size(self) -> int:
        return len(self.blob) + 200  # and the objects that hold it

    def entry(self, schema: pa.Schema) -> Entry:
        rows = _batches(
            self.blob, self.sizes, schema, validate=False
        )  # made in this process, from valid rows
        return Entry(rows, self.fetched_at, self.whole, self.finished)


def _batches(blob: bytes, sizes: Sequence[int], schema: pa.Schema, *, validate: bool = True) -> pa.Table:
    """The rows of compressed record batch messages of `sizes` bytes each (checked with `validate`)."""
    raw = _CODEC.decompress(blob, decompressed_size=sum(sizes)) if sizes else pa.py_buffer(b"")
    batches = []
    offset = 0
    for size in sizes:
        batch = ipc.read_record_batch(raw.slice(offset, size), schema)
        if validate:
            batch.validate()
        batches.append(batch)
        offset += size
    return pa.Table.from_batches(batches, schema=schema)


class MemoryStore:
    """Entries in memory, at most `max_bytes` of Arrow IPC messages, least recently used dropped first."""

    def __init__(self, max_bytes: int) -> None:
        self.location = "memory"
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._entries: OrderedDict[StoreKey, _Packed] = OrderedDict()
        self._bytes = 0
        self._statuses: dict[str, tuple[str, float]] = {}

    def get(self, key: StoreKey, schema: pa.Schema) -> Entry | None:
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                return None
            self._entries.move_to_end(key)
        return found.entry(schema)

    def put(self, key: StoreKey, entry: Entry, *, replace: bool = False) -> None:
        # Serialized, the rows are also copied out of the pages decoded with them: an entry holds only
        # its own rows.
        packed = _Packed.of(entry)
        size = packed.size
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old.size
            if size > self.max_bytes:
                return
            self._entries[key] = packed
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, dropped = self._entries.popitem(last=False)
                self._bytes -= dropped.size

    def status(self, key: str) -> tuple[str, float] | None:
        with self._lock:
            return self._statuses.get(key)

    def learn(self, facts: Iterable[tuple[str, str, float]]) -> None:
        with self._lock:
            for key, status, at in facts:
                self._statuses.setdefault(key, (status, at))

    def info(self) -> CacheInfo:
        with self._lock:
            lists = {_parent_of(k.key) for k in self._entries if "/list?" in k.key}
            return CacheInfo(self.location, len(self._entries), len(lists), len(self._statuses), self._bytes)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._statuses.clear()
            self._bytes = 0


class DiskStore:
    """Entries and statuses in `<root>/cache-v2/<scope>/` (see the module docstring). Its methods do
    blocking file work: a `LayeredStore` calls them from its worker thread.

    Raises ConfigurationError if a folder others can write is in the way, OSError if one cannot be made.
    """

    def __init__(self, root: str | os.PathLike[str], scope: str) -> None:
        self.root = Path(root).expanduser().absolute()
        self.folder = self.root / CACHE_FORMAT / scope
        self.location = str(self.folder)
        self.open_root(self.root)
        with contextlib.suppress(FileExistsError):
            self.folder.mkdir(mode=0o700)
        _check_folder(self.folder, shared=False)
        self._lock = threading.Lock()
        self._statuses: dict[str, tuple[str, float]] = {}
        self._log_offset = 0

    @staticmethod
    def open_root(root: str | os.PathLike[str]) -> Path:
        """Make `<root>/cache-v2` and what is missing above it (each new folder 0700), refuse either if
        someone else could write in it (ConfigurationError: why, and what to do); the format's folder."""
        base = Path(root).expanduser().absolute()
        _make_private_dirs(base)
        _check_folder(base, shared=True)
        folder = base / CACHE_FORMAT
        with contextlib.suppress(FileExistsError):
            folder.mkdir(mode=0o700)
        _check_folder(folder, shared=False)
        return folder

    # -- entries -------------------------------------------------------------------------------------

    def _path(self, key: StoreKey) -> Path:
        return self.folder / key.namespace / key.file_name

    def get(self, key: StoreKey, schema: pa.Schema) -> Entry | None:
        path = os.path.join(self.location, key.namespace, key.file_name)  # os.path: a third of Path's cost
        try:
            data = _read_regular(path)
        except OSError:
            return None  # missing, or not a regular file (a FIFO): fetched again, and replaced by put
        try:
            return _decode(data, key.key, schema)
        except _UNREADABLE:
            # Damaged, cut or foreign: drop it so it is fetched and written again.
            with contextlib.suppress(OSError):
                os.unlink(path)
            return None

    def put(self, key: StoreKey, entry: Entry, *, replace: bool = False) -> None:
        """Write the entry, unless (without `replace`) the file already holds as much."""
        path = self._path(key)
        if not replace:
            header = _read_header(path)
            if header is not None and _covers(header, entry):
                return  # another process kept as much already: leave its file
        data = _encode(key.key, entry)
        for _ in range(2):
            try:
                _write_atomically(path, data)
                return
            except FileNotFoundError:
                # The folder was cleared meanwhile (`cache clear`): make it again, once.
                with contextlib.suppress(OSError):
                    _make_private_dirs(path.parent)
            except OSError:
                return

    # -- statuses ------------------------------------------------------------------------------------

    def status(self, key: str) -> tuple[str, float] | None:
        with self._lock:
            found = self._statuses.get(key)
            if found is None:
                self._read_log()
                found = self._statuses.get(key)
            return found

    def learn(self, facts: Iterable[tuple[str, str, float]]) -> None:
        with self._lock:
            self._read_log()
            lines = []
            for key, status, at in facts:
                if key in self._statuses:
                    continue
                self._statuses[key] = (status, at)
                lines.append(_status_line(key, status, at))
            if not lines:
                return
            with contextlib.suppress(OSError):
                try:
                    _append(self.folder / _STATUS_LOG, "".join(lines).encode())
                except FileNotFoundError:  # the folder was cleared meanwhile: make it again, once
                    _make_private_dirs(self.folder)
                    _append(self.folder / _STATUS_LOG, "".join(lines).encode())

    def _read_log(self) -> None:
        try:
            handle = os.fdopen(_open_regular(self.folder / _STATUS_LOG), "rb")
        except OSError:
            return
        with handle:
            size = os.fstat(handle.fileno()).st_size
            if size < self._log_offset:
                self._statuses.clear()  # the log was cleared and begun again
                self._log_offset = 0
            if size == self._log_offset:
                return
            handle.seek(self._log_offset)
            data = handle.read(size - self._log_offset)
        complete = data.rfind(b"\n") + 1  # a line still being written is read next time
        self._log_offset += complete
        for line in data[:complete].splitlines():
            parsed = _parse_status_line(line)
            if parsed is not None:
                self._statuses.setdefault(parsed[0], (parsed[1], parsed[2]))

    # -- the whole store -----------------------------------------------------------------------------

    def info(self) -> CacheInfo:
        return _folder_info(self.folder, self.location)

    def clear(self) -> Cleared:
        """Remove this scope's entries and status log (nothing else in its folder)."""
        with self._lock:
            cleared = _remove_own(self.folder.parent, self.folder, _MAGIC)
            self._statuses.clear()
            self._log_offset = 0
            with contextlib.suppress(OSError):
                _make_private_dirs(self.folder)
            return cleared


class _Worker:
    """One daemon thread doing a disk store's file work, so the event loop never waits on a file (a FIFO
    would block an open, a file on a hung network mount a read). It ends after IDLE_S without work and
    starts again when given some; a daemon, so a thread stuck in the kernel never holds up the exit."""

    IDLE_S = 5.0

    def __init__(self, name: str) -> None:
        self._name = name
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], concurrent.futures.Future[Any]]]
        self._jobs = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._running = False
        #: When the job in progress started (time.monotonic()); None when idle.
        self._started: float | None = None

    def submit(self, job: Callable[[], T]) -> concurrent.futures.Future[T]:
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        with self._lock:
            self._jobs.put((job, future))
            if not self._running:
                self._running = True
                threading.Thread(target=self._main, name=self._name, daemon=True).start()
        return future

    def stuck(self, limit: float) -> bool:
        """Whether the job in progress has run longer than `limit` seconds."""
        started = self._started
        return started is not None and time.monotonic() - started > limit

    def _main(self) -> None:
        while True:
            try:
                job, future = self._jobs.get(timeout=self.IDLE_S)
            except queue.Empty:
                with self._lock:
                    if self._jobs.empty():
                        self._running = False
                        return
                continue
            if not future.set_running_or_notify_cancel():
                continue
            self._started = time.monotonic()
            try:
                result = job()
            except Exception as exc:
                future.set_exception(exc)
            else:
                future.set_result(result)
            finally:
                self._started = None


@dataclass(frozen=True)
class _Job:
    """One file operation of a layered store: what to do, what to answer without a disk, and where."""

    work: Callable[[DiskStore], Any]
    default: Any
    future: asyncio.Future[Any]


def _settle(done: list[tuple[_Job, Any, Exception | None]]) -> None:
    """Give a batch's results to their waiters (on the loop; a waiter given up on is skipped)."""
    for job, result, error in done:
        if job.future.done():
            continue
        if error is not None:
            job.future.set_exception(error)
        else:
            job.future.set_result(result)


class LayeredStore:
    """The store a `Cache` uses: a memory store, with a disk store behind it when there is one (a
    process then reads each entry from disk once).

    The disk's file work runs in a worker thread, waited for at most DISK_TIMEOUT_S: past that (a hung
    mount), the disk store is dropped and the client keeps to memory, with a warning. The front may hold
    less than the disk (another process extended an entry since): that costs one `after=` request,
    never a wrong row, as a kept prefix stays a prefix."""

    def __init__(self, front: MemoryStore, back: DiskStore | None = None) -> None:
        self.front = front
        self.back = back
        self._worker = _Worker("duckdb-openai-cache")
        #: Jobs of the current turn of the event loop, sent to the worker together (`_off_loop`).
        self._pending: list[_Job] = []

    @property
    def location(self) -> str:
        back = self.back
        return self.front.location if back is None else back.location

    async def get(self, key: StoreKey, schema: pa.Schema) -> Entry | None:
        found = self.front.get(key, schema)
        if found is None:
            found = await self._off_loop(lambda disk: disk.get(key, schema), None)
            if found is not None:
                self.front.put(key, found)
        return found

    async def put(self, key: StoreKey, entry: Entry, *, replace: bool = False) -> None:
        self.front.put(key, entry)
        await self._off_loop(lambda disk: disk.put(key, entry, replace=replace), None)

    async def status(self, key: str) -> tuple[str, float] | None:
        found = self.front.status(key)
        if found is None:
            found = await self._off_loop(lambda disk: disk.status(key), None)
            if found is not None:
                self.front.learn([(key, *found)])
        return found

    async def learn(self, facts: Iterable[tuple[str, str, float]]) -> None:
        listed = list(facts)
        self.front.learn(listed)
        await self._off_loop(lambda disk: disk.learn(listed), None)

    def info(self) -> CacheInfo:
        return self._blocking(lambda disk: disk.info(), None) or self.front.info()

    def clear(self) -> Cleared:
        self.front.clear()
        return self._blocking(lambda disk: disk.clear(), None) or Cleared(0, ())

    # -- the worker ----------------------------------------------------------------------------------

    async def _off_loop(self, job: Callable[[DiskStore], T], default: T) -> T:
        """`job`'s result, run on the worker; `default` when there is no disk or it is stuck. The jobs of
        one turn of the loop (a fan-out's thousands of reads) go to the worker as one batch: one
        thread hop and one wake-up for them all, where one each cost 25 us a read."""
        back = self.back
        if back is None:
            return default
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append(_Job(job, default, future))
        if len(self._pending) == 1:
            loop.call_soon(self._flush, back, loop)
        result: T = await future
        return result

    def _flush(self, back: DiskStore, loop: asyncio.AbstractEventLoop) -> None:
        batch, self._pending = self._pending, []

        def run() -> None:
            done: list[tuple[_Job, Any, Exception | None]] = []
            for job in batch:
                try:
                    done.append((job, job.work(back), None))
                except Exception as exc:
                    done.append((job, None, exc))
            loop.call_soon_threadsafe(_settle, done)

        self._worker.submit(run)
        # The watch holds the waiters only, not the jobs (whose closures hold rows) for its 10 s.
        waiters = [(job.future, job.default) for job in batch]

        def watch() -> None:
            # Still waiting after the timeout: stuck only if the batch in hand has run that long (a long
            # queue of batches is not stuck).
            waiting = [(future, default) for future, default in waiters if not future.done()]
            if not waiting:
                return
            if not self._worker.stuck(DISK_TIMEOUT_S):
                loop.call_later(DISK_TIMEOUT_S, watch)
                return
            self._leave(back)
            for future, default in waiting:
                if not future.done():
                    future.set_result(default)

        loop.call_later(DISK_TIMEOUT_S, watch)

    def _blocking(self, job: Callable[[DiskStore], T], default: T) -> T:
        back = self.back
        if back is None:
            return default
        future = self._worker.submit(lambda: job(back))
        while True:
            try:
                return future.result(timeout=DISK_TIMEOUT_S)
            except concurrent.futures.TimeoutError:
                if self._worker.stuck(DISK_TIMEOUT_S):
                    self._leave(back)
                    return default

    def _leave(self, back: DiskStore) -> None:
        if self.back is back:
            self.back = None
            logger.warning(
                "the cache folder %s did not answer within %gs (a file on a hung mount?): this client "
                "keeps its cache in memory from now on",
                back.location,
                DISK_TIMEOUT_S,
            )


def folder_info(root: str | os.PathLike[str]) -> CacheInfo:
    """What a cache directory holds over every scope (every base URL, organization, project and
    credential)."""
    folder = Path(root).expanduser().absolute() / CACHE_FORMAT
    return _folder_info(folder, str(Path(root).expanduser().absolute()))


def clear_folder(root: str | os.PathLike[str]) -> Cleared:
    """Remove every file the cache wrote under `root` (this format's and the previous one's), and
    nothing else: the bytes freed and the files left."""
    base = Path(root).expanduser().absolute()
    freed, left = 0, list[str]()
    for name, magic in _FORMATS.items():
        if (base / name).is_dir():
            cleared = _remove_own(base / name, base / name, magic)
            freed += cleared.freed
            left += cleared.left
    return Cleared(freed, tuple(left))


def _folder_info(folder: Path, location: str) -> CacheInfo:
    entries = 0
    size = 0
    parents: set[str] = set()
    finished: set[str] = set()
    for path in _files(folder):
        with contextlib.suppress(OSError):
            if not stat.S_ISREG(path.lstat().st_mode):
                continue  # a FIFO or a link: not the cache's, and never opened
            size += path.stat().st_size
            if path.name == _STATUS_LOG:
                for line in _read_regular(path).splitlines():
                    parsed = _parse_status_line(line)
                    if parsed is not None:
                        finished.add(parsed[0])
            elif path.suffix == ".arrow":
                entries += 1
                header = _read_header(path)
                if header is not None and "/list?" in str(header.get("key", "")):
                    parents.add(_parent_of(str(header["key"])))
    return CacheInfo(location, entries, len(parents), len(finished), size)


def read_entry_file(path: str | os.PathLike[str], schema: pa.Schema) -> tuple[str, Entry]:
    """The key and entry an entry file holds (for tests and inspection); ValueError if it is damaged."""
    data = _read_regular(path)
    header = _header_of(data)
    return str(header["key"]), _decode(data, str(header["key"]), schema)


def _files(folder: Path) -> Iterator[Path]:
    if not folder.is_dir():
        return
    for directory, _, names in os.walk(folder):
        for name in names:
            yield Path(directory) / name


# -- folders: trusted only when private ------------------------------------------------------------------


def _current_uid() -> int:
    return os.geteuid()


def _check_folder(path: Path, *, shared: bool) -> None:
    """Refuse a folder another user owns or could write in: they could plant rows the cache would serve
    as the API's. `shared`: the user's cache_dir itself, which may be root's, or a sticky folder like
    /tmp, where others can add files but not move or remove yours."""
    info = os.stat(path)
    if not stat.S_ISDIR(info.st_mode):
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(path))
    mode = stat.S_IMODE(info.st_mode)
    me = _current_uid()
    if info.st_uid != me and not (shared and info.st_uid == 0):
        raise ConfigurationError(
            f"the cache folder {path} is owned by another user (uid {info.st_uid}), who could plant rows "
            "the cache would serve as the API's, so it is not used; pass a cache_dir of your own (or "
            "cache_dir=None for memory)"
        )
    sticky = bool(mode & stat.S_ISVTX)
    if mode & 0o022 and not (shared and sticky):
        raise ConfigurationError(
            f"the cache folder {path} is writable by others (mode {mode:04o}), who could plant rows the "
            f"cache would serve as the API's, so it is not used; run `chmod go-w {path}` or pass "
            "another cache_dir"
        )


def _make_private_dirs(folder: Path) -> None:
    """Make `folder` and its missing parents, each new one 0700 (umask can only take bits away)."""
    missing = []
    current = folder
    while not current.exists():
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):
            directory.mkdir(mode=0o700)


# -- files: regular ones only, opened without blocking ----------------------------------------------------


def _open_regular(path: str | os.PathLike[str], flags: int = os.O_RDONLY) -> int:
    """A descriptor of the regular file at `path`, opened without blocking and without following a
    link; OSError for anything else (a FIFO would block an open or a read, a device never ends)."""
    fd = os.open(path, flags | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"not a regular file: {os.fspath(path)!r}")
    except BaseException:
        os.close(fd)
        raise
    return fd


def _read_regular(path: str | os.PathLike[str], limit: int = -1) -> bytes:
    """The bytes of the regular file at `path` (at most `limit`); OSError for anything else."""
    with os.fdopen(_open_regular(path), "rb") as handle:
        return handle.read(limit)


def _remove_own(base: Path, start: Path, magic: bytes) -> Cleared:
    """Remove, below `start` (in a format's folder `base`), the files the cache writes there and the
    folders left empty of them; leave and list every other file."""
    freed = 0
    left: list[str] = []
    if not start.is_dir():
        return Cleared(0, ())
    for directory, folders, names in os.walk(start, topdown=False):
        here = Path(directory)
        for name in names:
            path = here / name
            try:
                size = path.lstat().st_size
                if _written_by_cache(path, path.relative_to(base).parts, magic):
                    path.unlink()
                    freed += size
                    continue
            except OSError:
                pass
            left.append(str(path))
        left.extend(str(here / name) for name in folders if (here / name).is_symlink())
        parts = here.relative_to(base).parts
        if _is_cache_folder(parts):
            with contextlib.suppress(OSError):
                here.rmdir()  # only if empty
    return Cleared(freed, tuple(sorted(left)))


def _is_cache_folder(parts: tuple[str, ...]) -> bool:
    """Whether a folder (its parts below a format's folder) is one the cache makes."""
    if not parts:
        return True
    if not _SCOPE_NAME.match(parts[0]):
        return False
    return len(parts) == 1 or (len(parts) == 2 and bool(_NAMESPACE_NAME.match(parts[1])))


def _written_by_cache(path: Path, parts: tuple[str, ...], magic: bytes) -> bool:
    """Whether the file at `path` (its parts below a format's folder) is one the cache writes: by its
    name and place, and by its first bytes (an entry's magic, a status line)."""
    if len(parts) == 2 and _is_cache_folder(parts[:1]) and parts[1] == _STATUS_LOG:
        head = _read_regular(path, 4096)
        return not head or _parse_status_line(head.split(b"\n", 1)[0]) is not None
    name = parts[-1]
    if (
        len(parts) == 3
        and _is_cache_folder(parts[:2])
        and (_ENTRY_NAME.match(name) or _TEMPORARY_NAME.match(name))
    ):
        head = _read_regular(path, len(magic))
        return not head or head == magic  # empty: cut before its first write
    return False


# -- the entry file format ------------------------------------------------------------------------------


def _encode(key: str, entry: Entry) -> bytes:
    # Record batch messages without a schema: the reader knows the schema (the folder name carries its
    # hash), and parsing a nested schema per entry would cost more than reading the rows.
    messages = [batch.serialize() for batch in entry.rows.combine_chunks().to_batches()]
    raw = b"".join(message.to_pybytes() for message in messages)
    payload = _CODEC.compress(raw, asbytes=True) if raw else b""
    header = json.dumps(
        {
            "key": key,
            "fetched_at": entry.fetched_at,
            "whole": entry.whole,
            "finished": entry.finished,
            "rows": entry.rows.num_rows,
            "codec": _CODEC_NAME,
            "batches": [message.size for message in messages],
        },
        separators=(",", ":"),
    ).encode()
    body = b"".join((_MAGIC, _HEADER.pack(len(header)), header, payload))
    return body + hashlib.blake2b(body, digest_size=_DIGEST_SIZE).digest()


def _header_of(data: bytes) -> dict[str, object]:
    return _split_header(data)[0]


def _split_header(data: bytes) -> tuple[dict[str, object], int]:
    """The header of an entry file's bytes, and where the payload starts."""
    if not data.startswith(_MAGIC) or len(data) < len(_MAGIC) + _HEADER.size:
        raise ValueError("not a cache entry")
    start = len(_MAGIC) + _HEADER.size
    (length,) = _HEADER.unpack_from(data, len(_MAGIC))
    header = json.loads(data[start : start + length])
    if not isinstance(header, dict):
        raise ValueError("bad header")
    return header, start + length


def _decode(data: bytes, key: str, schema: pa.Schema) -> Entry:
    body, digest = data[:-_DIGEST_SIZE], data[-_DIGEST_SIZE:]
    if len(data) <= _DIGEST_SIZE or hashlib.blake2b(body, digest_size=_DIGEST_SIZE).digest() != digest:
        raise ValueError("checksum mismatch")
    header, start = _split_header(body)
    if header["key"] != key or header.get("codec") != _CODEC_NAME:
        raise ValueError("entry of another key or codec")
    sizes = tuple(int(size) for size in header["batches"])  # type: ignore[attr-defined]
    payload = body[start:]
    rows = _batches(payload, sizes, schema)
    if rows.num_rows != header["rows"]:
        raise ValueError("rows do not match the header")
    return Entry(
        rows,
        float(header["fetched_at"]),  # type: ignore[arg-type]
        bool(header["whole"]),
        bool(header["finished"]),
        packed=(payload, sizes),
    )


def _read_header(path: Path) -> dict[str, object] | None:
    """The header of an entry file without reading its rows; None if missing or unreadable."""
    try:
        return _header_of(_read_regular(path, 4096))
    except (*_UNREADABLE, struct.error):
        return None


def _covers(header: dict[str, object], entry: Entry) -> bool:
    """Whether an existing file already holds at least what `entry` would write."""
    rows = header.get("rows")
    if not isinstance(rows, int) or rows < entry.rows.num_rows:
        return False
    if entry.finished and not header.get("finished"):
        return False
    if rows == entry.rows.num_rows and entry.whole:
        # The same rows, seen whole by a later fetch: `final_after` may hold from the later time only.
        fetched_at = header.get("fetched_at")
        return (
            bool(header.get("whole"))
            and isinstance(fetched_at, (int, float))
            and (fetched_at >= entry.fetched_at)
        )
    return True


def _write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise


# -- the status log -------------------------------------------------------------------------------------


def _status_line(key: str, status: str, at: float) -> str:
    text = f"{key}\t{status}\t{at:.3f}"
    return f"{text}\t{zlib.crc32(text.encode()):08x}\n"


def _parse_status_line(line: bytes) -> tuple[str, str, float] | None:
    try:
        text, _, crc = line.decode().rpartition("\t")
        if not text or f"{zlib.crc32(text.encode()):08x}" != crc:
            return None
        key, status, at = text.rsplit("\t", 2)
        return key, status, float(at)
    except ValueError:
        return None


def _append(path: Path, data: bytes) -> None:
    fd = _open_regular(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
