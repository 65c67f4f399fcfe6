"""Every benchmark in turn, each in its own process: ``make bench`` (or ``python -m benchmarks``).

    python -m benchmarks [--quick] [--only emulator,convert,fanout,responses,cache,ledger,sync]

Each benchmark prints ratios against a baseline it measures in the same run, and stops by itself
(a watchdog ends a hung one). The exit status is non-zero if any benchmark's checks failed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["main"]

BENCHMARKS = {
    "emulator": ("bench_emulator", ["--requests", "1000", "--rounds", "3"]),
    "convert": ("bench_convert", ["--quick"]),
    "fanout": ("bench_fanout", ["--quick"]),
    "responses": ("bench_responses", ["--quick"]),
    "cache": ("bench_cache", ["--quick"]),
    "ledger": ("bench_ledger", ["--quick"]),
    "sync": ("bench_sync", ["--quick"]),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="smaller sizes: minutes instead of a quarter hour"
    )
    parser.add_argument(
        "--only", default=",".join(BENCHMARKS), help="comma-separated subset (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")

    failed: list[str] = []
    for name in chosen:
        module, quick_args = BENCHMARKS[name]
        command = [sys.executable, "-m", f"benchmarks.{module}", *(quick_args if args.quick else [])]
        print(f"\n=== {name}: {' '.join(command[1:])}", flush=True)
        started = time.perf_counter()
        code = subprocess.call(command, cwd=Path(__file__).resolve().parent.parent)
        print(f"=== {name}: exit {code} after {time.perf_counter() - started:.0f} s", flush=True)
        if code != 0:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
