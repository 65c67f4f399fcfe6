"""What the package benchmarks share: timing, ratio lines with targets, the runs table, the official
SDK as a baseline, and a watchdog that makes every benchmark stop by itself.

Every figure a benchmark prints is a ratio against a baseline measured in the same process run, so a
slow or noisy machine moves both sides alike.

    >>> verdict(1.2, 1.5)
    'target <= 1.50x: met'
    >>> verdict(4.0, 5.0, at_least=True)
    'target >= 5.00x: MISSED by 20%'
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import aiohttp
import duckdb
import pyarrow as pa

from duckdb_openai.emulator import Emulator, RunInfo

__all__ = [
    "API_KEY",
    "HTTP_TIMEOUT",
    "Watchdog",
    "best_of",
    "emulator",
    "info",
    "load_runs",
    "parser",
    "ratio",
    "sdk_quietly",
    "timed",
    "verdict",
    "warm_up",
]

T = TypeVar("T")

#: The emulator accepts any non-empty key.
API_KEY = "sk-bench"
#: Per-request timeout for every client here (ours and the SDK's), so nothing waits forever.
HTTP_TIMEOUT = 30.0

_live: list[Emulator] = []
_live_lock = threading.Lock()


def parser(prog: str, doc: str | None) -> argparse.ArgumentParser:
    """An argument parser with `--quick`, described by the first line of the module docstring."""
    result = argparse.ArgumentParser(
        prog=f"python -m benchmarks.{prog}", description=(doc or "").split("\n")[0]
    )
    result.add_argument("--quick", action="store_true", help="smaller sizes, for a suite run of minutes")
    return result


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    """Seconds `fn()` took, and what it returned."""
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def best_of(repeats: int, fn: Callable[[], T]) -> tuple[float, T]:
    """The fastest of `repeats` calls (noise on a shared machine only ever adds time)."""
    best: tuple[float, T] | None = None
    for _ in range(max(1, repeats)):
        seconds, result = timed(fn)
        if best is None or seconds < best[0]:
            best = (seconds, result)
    assert best is not None
    return best


def verdict(value: float, target: float, *, at_least: bool = False) -> str:
    """Whether `value` meets `target` (at most, or `at_least`), and by how much it misses."""
    sign = ">=" if at_least else "<="
    met = value >= target if at_least else value <= target
    if met:
        return f"target {sign} {target:.2f}x: met"
    miss = (target - value) / target if at_least else (value - target) / target
    return f"target {sign} {target:.2f}x: MISSED by {miss:.0%}"


def ratio(label: str, value: float, target: float | None = None, *, at_least: bool = False) -> None:
    """Print one ratio line, with its target's verdict when there is one."""
    line = f"   {label:<44}{value:8.2f}x"
    if target is not None:
        line += f"   ({verdict(value, target, at_least=at_least)})"
    print(line, flush=True)


def info(label: str, value: str) -> None:
    print(f"   {label:<44}{value}", flush=True)


def load_runs(con: duckdb.DuckDBPyConnection, runs: list[RunInfo], name: str = "runs") -> None:
    """The user's local records of runs, as a DuckDB table `name(thread_id, run_id)`."""
    table = pa.table(
        {"thread_id": [r.thread_id for r in runs], "run_id": [r.run_id for r in runs]},
    )
    con.register("_bench_runs", table)
    con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM _bench_runs")
    con.unregister("_bench_runs")


@contextlib.contextmanager
def emulator(**kwargs: Any) -> Iterator[Emulator]:
    """An emulator in process mode (its CPU is not this process's GIL), stopped by the Watchdog too."""
    emu = Emulator(mode="process", **kwargs)
    with emu:
        with _live_lock:
            _live.append(emu)
        try:
            yield emu
        finally:
            with _live_lock:
                _live.remove(emu)


def warm_up(emu: Emulator, runs: list[RunInfo], *, concurrency: int = 64) -> None:
    """Make the emulator generate every run's steps now, untimed, so no client pays for it.

    One `limit=1` request per run; the emulator caches a run's steps on first read. aiohttp, like the
    package: httpx's pool costs milliseconds of CPU per request at this concurrency, enough to leave
    connections idle past the server's keep-alive timeout and then fail on reuse.
    """
    headers = {"Authorization": f"Bearer {API_KEY}", "OpenAI-Beta": "assistants=v2"}

    async def go() -> None:
        timeout = aiohttp.ClientTimeout(total=HTTP_TIMEOUT)
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(headers=headers, timeout=timeout, connector=connector) as session:
            queue = iter(runs)

            async def worker() -> None:
                for run in queue:
                    url = f"{emu.base_url}/threads/{run.thread_id}/runs/{run.run_id}/steps"
                    async with session.get(url, params={"limit": "1"}) as response:
                        if response.status != 200:
                            raise RuntimeError(f"warm-up of {run.run_id}: HTTP {response.status}")
                        await response.read()

            await asyncio.gather(*(worker() for _ in range(min(concurrency, len(runs)))))

    asyncio.run(go())
    emu.reset()


@contextlib.contextmanager
def sdk_quietly() -> Iterator[None]:
    """The SDK warns that the Assistants API is deprecated on every call; the benchmark knows."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


class Watchdog:
    """A hard deadline for one benchmark: past it, stop every emulator and exit with status 3.

    The clients' own timeouts bound each request already; this catches anything else (a hang in a
    query, a retry storm) so a benchmark never runs unattended forever and leaves no server behind.
    """

    def __init__(self, seconds: float, name: str) -> None:
        self.seconds = seconds
        self.name = name
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def _expire(self) -> None:
        print(
            f"\n{self.name}: still running after {self.seconds:.0f} s; stopping", file=sys.stderr, flush=True
        )
        with _live_lock:
            live = list(_live)
        for emu in live:
            with contextlib.suppress(Exception):
                emu.stop()
        os._exit(3)

    def __enter__(self) -> Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()
