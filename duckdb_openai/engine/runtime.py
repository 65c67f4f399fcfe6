"""The background event loop a client's requests run on, and cancellation of in-flight work.

DuckDB calls our functions on its own threads and Python callers are synchronous, so each client owns
one daemon thread running an asyncio loop; its connection pool lives there and is kept across calls and
queries. `run()` waits for a coroutine and cancels it when the caller is interrupted: by KeyboardInterrupt
on the waiting thread, by Ctrl-C while DuckDB runs the query on a worker thread, or by
`DuckDBPyConnection.interrupt()`. The last two are seen through hooks installed once (`install_hooks`):
a SIGINT handler that chains to the previous one, and a wrapper around `interrupt`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import signal
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["CancelScope", "LoopThread", "install_hooks", "interrupted"]

T = TypeVar("T")

#: How long a caller waits for cancelled work to unwind before giving up on it.
CANCEL_GRACE = 1.5
_POLL = 0.05

_lock = threading.Lock()
_scopes: dict[int, set[CancelScope]] = {}
_hooks_installed = False


class CancelScope:
    """A flag that interrupt hooks set for work started on behalf of one DuckDB connection (owner id)."""

    def __init__(self, owner: int | None) -> None:
        self.owner = owner
        self.event = threading.Event()

    def __enter__(self) -> CancelScope:
        with _lock:
            _scopes.setdefault(self.owner or 0, set()).add(self)
        return self

    def __exit__(self, *exc: object) -> None:
        with _lock:
            scopes = _scopes.get(self.owner or 0)
            if scopes is not None:
                scopes.discard(self)
                if not scopes:
                    del _scopes[self.owner or 0]


def interrupted(owner: int | None = None) -> None:
    """Set the flag of every scope of `owner` (every scope when None)."""
    with _lock:
        targets = [s for key, scopes in _scopes.items() if owner is None or key == owner for s in scopes]
    for scope in targets:
        scope.event.set()


def install_hooks() -> None:
    """Wrap `DuckDBPyConnection.interrupt` and chain a SIGINT handler (main thread only), once."""
    global _hooks_installed
    with _lock:
        if _hooks_installed:
            return
        _hooks_installed = True
    import duckdb

    original = duckdb.DuckDBPyConnection.interrupt

    def interrupt(self: Any) -> Any:
        interrupted(id(self))
        return original(self)

    interrupt.__doc__ = original.__doc__
    with contextlib.suppress(AttributeError, TypeError):  # a DuckDB build that forbids it keeps its own
        duckdb.DuckDBPyConnection.interrupt = interrupt  # type: ignore[method-assign]
    if threading.current_thread() is threading.main_thread():
        previous = signal.getsignal(signal.SIGINT)
        if previous is signal.default_int_handler:

            def on_sigint(signum: int, frame: Any) -> None:
                interrupted(None)
                signal.default_int_handler(signum, frame)

            signal.signal(signal.SIGINT, on_sigint)


class LoopThread:
    """A daemon thread running an asyncio loop until `close()`."""

    def __init__(self, name: str = "duckdb-openai") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()
        # Let cancelled tasks finish unwinding (closing sockets) before the loop goes.
        pending = asyncio.all_tasks(self.loop)
        for task in pending:
            task.cancel()
        if pending:
            self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T], scope: CancelScope | None = None) -> T:
        """Run `coro` on the loop and wait; on interrupt, cancel it, wait for it to unwind, and raise
        KeyboardInterrupt."""
        if threading.current_thread() is self._thread:
            raise RuntimeError("LoopThread.run called from its own loop")
        finished = threading.Event()

        async def tracked() -> T:
            try:
                return await coro
            finally:
                finished.set()

        future = self.submit(tracked())
        try:
            while True:
                try:
                    return future.result(timeout=_POLL)
                except concurrent.futures.TimeoutError:
                    if scope is not None and scope.event.is_set():
                        raise KeyboardInterrupt("interrupted") from None
        except BaseException:
            future.cancel()
            finished.wait(CANCEL_GRACE)
            raise

    def close(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)
