"""How much load the emulator takes, so other benchmarks know it is not their bottleneck.

    python -m benchmarks.bench_emulator [--requests 3000] [--concurrency 32] [--burst 500]

Starts ``python -m duckdb_openai.emulator`` as a subprocess (process mode) and prints:

1. Throughput: list requests for 20-step pages, no added latency, over httpx with
   bounded concurrency. On a small machine the httpx client, not the server, is the
   bottleneck, so the server's CPU time per request (from ``/proc``) is printed too,
   with the request rate one core of server time would sustain.
2. Concurrency: the wall time of ``--burst`` simultaneous requests with
   ``--latency-ms 50``, as a ratio to 50 ms. A baseline burst against a server without
   latency is measured in the same run: its time is what the client and server spend
   anyway, so (latency burst - baseline) / 50 ms near 1.0 means the 500 waits overlapped
   (the latency is asynchronous) rather than queueing (which would give about 500);
   below 1.0 means part of the wait hid behind the client's own work of sending.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform

from duckdb_openai.emulator import Emulator, RunInfo

from ._emulator import burst, throughput

__all__ = ["main"]

PAGE = 20
LATENCY_MS = 50.0


def _runs(emu: Emulator) -> list[RunInfo]:
    """Runs with at least one full page, so every response carries ``PAGE`` steps."""
    return [run for run in emu.dataset.runs if PAGE <= run.step_count <= 200]


def _row(label: str, value: str) -> None:
    print(f"   {label:<28}{value}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_emulator", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--requests", type=int, default=3000, help="throughput requests (default: %(default)s)"
    )
    parser.add_argument(
        "--concurrency", type=int, default=32, help="throughput concurrency (default: %(default)s)"
    )
    parser.add_argument("--burst", type=int, default=500, help="simultaneous requests (default: %(default)s)")
    parser.add_argument(
        "--rounds", type=int, default=5, help="timed bursts per server (default: %(default)s)"
    )
    args = parser.parse_args(argv)

    python = f"{platform.python_implementation()} {platform.python_version()}"
    print(f"emulator benchmark: {python}, {os.cpu_count()} CPUs, server in a subprocess (process mode)\n")

    with Emulator(mode="process") as emu:
        result = asyncio.run(
            throughput(emu, _runs(emu), requests=args.requests, concurrency=args.concurrency, limit=PAGE)
        )
    print(
        f"1. throughput: {result.requests} list requests for {PAGE}-step pages "
        f"({result.bytes_per_response / 1024:.1f} KiB each), {args.concurrency} concurrent, httpx, no latency"
    )
    _row("served:", f"{result.per_second:8.0f} requests/s")
    _row("client CPU:", f"{result.client_cpu_seconds / result.seconds:8.0%} of a core")
    if result.server_cpu_seconds is not None and result.server_cpu_seconds > 0:
        per_request_ms = result.server_cpu_seconds / result.requests * 1000
        _row("server CPU:", f"{result.server_cpu_seconds / result.seconds:8.0%} of a core")
        _row("server CPU per request:", f"{per_request_ms:8.3f} ms")
        _row("server capacity, one core:", f"{1000 / per_request_ms:8.0f} requests/s")

    medians: dict[float, float] = {}
    peaks: dict[float, int] = {}
    for latency in (0.0, LATENCY_MS):
        with Emulator(mode="process", latency_ms=latency) as emu:
            bursts = asyncio.run(burst(emu, _runs(emu), requests=args.burst, rounds=args.rounds, limit=PAGE))
            medians[latency] = bursts.median * 1000
            peaks[latency] = emu.stats()["max_in_flight"]
    baseline, delayed = medians[0.0], medians[LATENCY_MS]
    print(
        f"\n2. concurrency: {args.burst} simultaneous list requests, one connection each, "
        f"median of {args.rounds} bursts"
    )
    _row("baseline, no latency:", f"{baseline:8.1f} ms")
    _row(
        f"--latency-ms {LATENCY_MS:g}:", f"{delayed:8.1f} ms = {delayed / LATENCY_MS:.2f} x {LATENCY_MS:g} ms"
    )
    added = delayed - baseline
    _row(
        "added by the latency:",
        f"{added:8.1f} ms = {added / LATENCY_MS:.2f} x {LATENCY_MS:g} ms (<= 1: the waits overlap)",
    )
    _row("peak requests in flight:", f"{peaks[LATENCY_MS]:8d} of {args.burst}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
