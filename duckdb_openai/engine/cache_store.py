"""Where the cache keeps what it knows: in memory per client (bounded, least recently used first), or
in a directory that several processes share.

Two kinds of facts are stored (`cache.py` decides what they are):

- entries: rows that can no longer change, as an Arrow table (a run's steps up to the first one still
  moving; one retrieved step), with when they were fetched and whether the list is final;
- statuses: a parent object (a run) seen in a terminal status, and when that was learned.

In memory (`MemoryStore`), an entry is kept as LZ4-compressed Arrow IPC messages rather than as a table:
what it holds is what it weighs, so `cache_max_bytes` bounds the memory it takes. With a `cache_dir`,
a memory store sits in front of the disk (`LayeredStore`): a process reads each file once.

On disk (`DiskStore`), under `<cache_dir>/cache-v1/<scope>/`, where the scope is a hash of the base URL,
organization and project (never of the key)::

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

Files are created 0600 and directories 0700: readable by the user only. Writing is best effort: a
full disk or a removed directory costs the saving, never the query.

Why not a library: diskcache (SQLite underneath) would serialize writers and pickle values, and has
had no release since 2023; Arrow IPC is already the rows' format and pyarrow is already a dependency.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import struct
import threading
import zlib
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pyarrow as pa
import pyarrow.ipc as ipc

__all__ = [
    "CACHE_FORMAT",
    "CacheInfo",
    "DiskStore",
    "Entry",
    "LayeredStore",
    "MemoryStore",
    "Store",
    "StoreKey",
    "clear_folder",
    "folder_info",
    "read_entry_file",
    "scope_of",
]

#: The folder under `cache_dir` holding this format; a new format gets a new folder, never a misread.
CACHE_FORMAT = "cache-v1"
_MAGIC = b"DOAICACHE1\n"
_HEADER = struct.Struct("<I")
_DIGEST_SIZE = 16
_STATUS_LOG = "statuses.log"
#: LZ4 (frame): measured on run steps, 9 us to decompress an entry against zstd's 48 us, for files 40%
#: larger. One codec object: making one per call costs as much as decompressing.
_CODEC_NAME = "lz4"
_CODEC = pa.Codec(_CODEC_NAME)
#: What reading a damaged or foreign file may raise; all of it means "drop it and fetch again".
_UNREADABLE = (OSError, ValueError, KeyError, TypeError, pa.ArrowException, UnicodeDecodeError)


@dataclass(frozen=True)
class Entry:
    """Rows that can no longer change, in ascending creation order, and what is known about them."""

    rows: pa.Table
    #: When the request chain that last extended the rows was sent (seconds since the epoch).
    fetched_at: float
    #: Every row that chain saw was in a terminal status: the rows were the whole list then.
    whole: bool
    #: The list can no longer change (its parent was finished before it was fetched, or assumed to be).
    final: bool


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


class Store(Protocol):
    """What the cache policy needs from a store; both stores are safe to use from several threads."""

    location: str

    def get(self, key: StoreKey, schema: pa.Schema) -> Entry | None: ...

    def put(self, key: StoreKey, entry: Entry, *, replace: bool = False) -> None: ...

    def status(self, key: str) -> tuple[str, float] | None: ...

    def learn(self, facts: Iterable[tuple[str, str, float]]) -> None: ...

    def info(self) -> CacheInfo: ...

    def clear(self) -> None: ...


def scope_of(base_url: str, organization: str | None, project: str | None) -> str:
    """The folder name of one API account's data: a hash of where the data comes from, not of the key."""
    text = "\n".join([base_url.rstrip("/"), organization or "", project or ""])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


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
    final: bool

    @classmethod
    def of(cls, entry: Entry) -> _Packed:
        batches = entry.rows.combine_chunks().to_batches() if entry.rows.num_rows else []
        messages = [b.serialize() for b in batches]
        raw = b"".join(m.to_pybytes() for m in messages)
        blob = _CODEC.compress(raw, asbytes=True) if raw else b""
        return cls(blob, tuple(m.size for m in messages), entry.fetched_at, entry.whole, entry.final)

    @property
    def size(self) -> int:
        return len(self.blob) + 200  # and the objects that hold it

    def entry(self, schema: pa.Schema) -> Entry:
        rows = _batches(
            self.blob, self.sizes, schema, validate=False
        )  # made in this process, from valid rows
        return Entry(rows, self.fetched_at, self.whole, self.final)


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
    """Entries and statuses in `<root>/cache-v1/<scope>/` (see the module docstring)."""

    def __init__(self, root: str | os.PathLike[str], scope: str) -> None:
        self.root = Path(root).expanduser().absolute()
        self.folder = self.root / CACHE_FORMAT / scope
        self.location = str(self.folder)
        _make_private_dirs(self.folder)
        self._lock = threading.Lock()
        self._statuses: dict[str, tuple[str, float]] = {}
        self._log_offset = 0

    # -- entries -------------------------------------------------------------------------------------

    def _path(self, key: StoreKey) -> Path:
        return self.folder / key.namespace / key.file_name

    def get(self, key: StoreKey, schema: pa.Schema) -> Entry | None:
        path = os.path.join(self.location, key.namespace, key.file_name)  # os.path: a third of Path's cost
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except OSError:
            return None
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
        path = self.folder / _STATUS_LOG
        try:
            size = path.stat().st_size
            if size < self._log_offset:
                self._statuses.clear()  # the log was cleared and begun again
                self._log_offset = 0
            if size == self._log_offset:
                return
            with path.open("rb") as handle:
                handle.seek(self._log_offset)
                data = handle.read(size - self._log_offset)
        except OSError:
            return
        complete = data.rfind(b"\n") + 1  # a line still being written is read next time
        self._log_offset += complete
        for line in data[:complete].splitlines():
            parsed = _parse_status_line(line)
            if parsed is not None:
                self._statuses.setdefault(parsed[0], (parsed[1], parsed[2]))

    # -- the whole store -----------------------------------------------------------------------------

    def info(self) -> CacheInfo:
        return _folder_info(self.folder, self.location)

    def clear(self) -> None:
        with self._lock:
            shutil.rmtree(self.folder, ignore_errors=True)
            self._statuses.clear()
            self._log_offset = 0
            with contextlib.suppress(OSError):
                _make_private_dirs(self.folder)


class LayeredStore:
    """A disk store with a memory store in front: a process reads each entry from disk once.

    The front may hold less than the disk (another process extended an entry since): that costs one
    `after=` request, never a wrong row, as a kept prefix stays a prefix."""

    def __init__(self, front: MemoryStore, back: DiskStore) -> None:
        self.front = front
        self.back = back
        self.location = back.location

    def get(self, key: StoreKey, schema: pa.Schema) -> Entry | None:
        found = self.front.get(key, schema)
        if found is None:
            found = self.back.get(key, schema)
            if found is not None:
                self.front.put(key, found)
        return found

    def put(self, key: StoreKey, entry: Entry, *, replace: bool = False) -> None:
        self.front.put(key, entry)
        self.back.put(key, entry, replace=replace)

    def status(self, key: str) -> tuple[str, float] | None:
        return self.front.status(key) or self.back.status(key)

    def learn(self, facts: Iterable[tuple[str, str, float]]) -> None:
        facts = list(facts)
        self.front.learn(facts)
        self.back.learn(facts)

    def info(self) -> CacheInfo:
        return self.back.info()

    def clear(self) -> None:
        self.front.clear()
        self.back.clear()


def folder_info(root: str | os.PathLike[str]) -> CacheInfo:
    """What a cache directory holds over every scope (every base URL, organization and project)."""
    folder = Path(root).expanduser().absolute() / CACHE_FORMAT
    return _folder_info(folder, str(Path(root).expanduser().absolute()))


def clear_folder(root: str | os.PathLike[str]) -> int:
    """Remove everything the cache keeps under `root` (only its own folder); the bytes freed."""
    folder = Path(root).expanduser().absolute() / CACHE_FORMAT
    freed = _folder_info(folder, str(folder)).bytes
    shutil.rmtree(folder, ignore_errors=True)
    return freed


def _folder_info(folder: Path, location: str) -> CacheInfo:
    entries = 0
    size = 0
    parents: set[str] = set()
    finished: set[str] = set()
    for path in _files(folder):
        with contextlib.suppress(OSError):
            size += path.stat().st_size
            if path.name == _STATUS_LOG:
                for line in path.read_bytes().splitlines():
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
    data = Path(path).read_bytes()
    header = _header_of(data)
    return str(header["key"]), _decode(data, str(header["key"]), schema)


def _files(folder: Path) -> Iterator[Path]:
    if not folder.is_dir():
        return
    for directory, _, names in os.walk(folder):
        for name in names:
            yield Path(directory) / name


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
            "final": entry.final,
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
    sizes = [int(size) for size in header["batches"]]  # type: ignore[attr-defined]
    rows = _batches(body[start:], sizes, schema)
    if rows.num_rows != header["rows"]:
        raise ValueError("rows do not match the header")
    return Entry(rows, float(header["fetched_at"]), bool(header["whole"]), bool(header["final"]))  # type: ignore[arg-type]


def _read_header(path: Path) -> dict[str, object] | None:
    """The header of an entry file without reading its rows; None if missing or unreadable."""
    try:
        with path.open("rb") as handle:
            head = handle.read(4096)
        return _header_of(head)
    except (*_UNREADABLE, struct.error):
        return None


def _covers(header: dict[str, object], entry: Entry) -> bool:
    """Whether an existing file already holds at least what `entry` would write."""
    rows = header.get("rows")
    if not isinstance(rows, int) or rows < entry.rows.num_rows:
        return False
    return bool(header.get("final")) or not entry.final


def _write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise


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
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
