"""One sync per target at a time: a second one is refused with a message naming the target and the sync
that holds it (or waits for it, with `wait=` seconds).

Who answers, by target:

- a DuckDB database file: DuckDB's own file lock, across processes (`BusyError` translates its
  error, which names the holder's PID); within one process, the registry here, since DuckDB shares one
  open database between a process's connections;
- a Parquet folder: `fcntl.flock` on `DIR/.duckdb_openai_sync.lock`, which the kernel releases when the
  holder dies (`kill -9` included); the holder writes who it is into the file;
- an attached catalog (MotherDuck, DuckLake, Postgres): the registry within a process, and a lease row
  in the target's state table across processes and machines (see `targets.py`).

>>> with held("example-target", "the target example"):  # doctest: +IGNORE_EXCEPTION_DETAIL
...     held("example-target", "the target example").__enter__()
Traceback (most recent call last):
...
duckdb_openai.sync.lock.BusyError: the target example is being synced by another sync of this process ...
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TypeVar

from duckdb_openai.errors import DuckDBOpenAIError

__all__ = ["LOCK_FILE", "BusyError", "FolderLock", "duckdb_lock_holder", "held", "holder", "retrying"]

#: The lock file of a Parquet dataset (not `*.parquet`, so no glob over the dataset reads it).
LOCK_FILE = ".duckdb_openai_sync.lock"
#: How often a waiting sync tries again.
RETRY_S = 0.2

T = TypeVar("T")

_registry: dict[str, str] = {}
_registry_lock = threading.Lock()


class BusyError(DuckDBOpenAIError):
    """Another sync (or another program) holds the target; nothing was written."""


def holder() -> dict[str, object]:
    """Who this sync is: host, process id and when it started (written where a lock can hold it)."""
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def describe_holder(info: dict[str, object] | None) -> str:
    if not info:
        return "another sync"
    return f"the sync of PID {info.get('pid')} on {info.get('host')}, started {info.get('started')}"


@contextlib.contextmanager
def held(key: str, target: str) -> Iterator[None]:
    """Hold `key` within this process for the block; BusyError if another sync of this process does."""
    me = f"thread {threading.current_thread().name!r}, started {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC"
    with _registry_lock:
        other = _registry.get(key)
        if other is not None:
            raise BusyError(
                f"{target} is being synced by another sync of this process ({other}); wait for it to "
                "finish, or pass wait= seconds to wait for it"
            )
        _registry[key] = me
    try:
        yield
    finally:
        with _registry_lock:
            _registry.pop(key, None)


def retrying(attempt: Callable[[], T], wait: float) -> T:
    """`attempt()`, tried again every RETRY_S while it raises BusyError, for up to `wait` seconds."""
    deadline = time.monotonic() + wait
    while True:
        try:
            return attempt()
        except BusyError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(RETRY_S)


class FolderLock:
    """An exclusive `flock` on the lock file of a folder, with the holder's description in it."""

    def __init__(self, folder: Path, target: str) -> None:
        self.path = folder / LOCK_FILE
        self.target = target
        self._handle: IO[str] | None = None

    def acquire(self) -> None:
        handle = self.path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            try:
                info = json.loads(handle.read() or "null")
            except ValueError:
                info = None
            handle.close()
            raise BusyError(
                f"{self.target} is being synced by {describe_holder(info)}; wait for it to finish, or "
                "pass wait= seconds (--wait) to wait for it"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(holder()))
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            # Closing the file drops the lock; the file stays, so no other sync ever locks a stale inode.
            self._handle.close()
            self._handle = None


_LOCK_ERROR = re.compile(
    r"Could not set lock on file .*?Conflicting lock is held in (?P<exe>.+?) \(PID (?P<pid>\d+)\)"
)


def duckdb_lock_holder(error: BaseException) -> str | None:
    """'PID 123 (/usr/bin/python3)' when `error` is DuckDB's refusal to lock a database file, else None."""
    found = _LOCK_ERROR.search(str(error))
    if found is None:
        return None
    return f"PID {found['pid']} ({found['exe']})"
