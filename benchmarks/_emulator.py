"""Load generators for the emulator benchmark.

Two clients, because one is not enough on a small machine:

* :func:`throughput` uses httpx's async client with bounded concurrency, the way the
  package itself talks to the API. httpx costs more CPU per request than the server,
  so on two cores the client is the bottleneck; the server's own CPU time per request
  (read from ``/proc``) gives its capacity.
* :func:`burst` opens one plain connection per request first and then fires them all at
  once, speaking HTTP/1.1 through ``h11`` (httpx's own parser). A single httpx pool with
  hundreds of connections spends seconds managing the pool, which would hide the
  server's behaviour under concurrency.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import h11
import httpx

from duckdb_openai.emulator import Emulator, RunInfo

__all__ = ["BurstResult", "ThroughputResult", "burst", "list_path", "process_cpu_seconds", "throughput"]

HEADERS = {"Authorization": "Bearer sk-bench", "OpenAI-Beta": "assistants=v2"}


def list_path(run: RunInfo, limit: int) -> str:
    return f"/v1/threads/{run.thread_id}/runs/{run.run_id}/steps?limit={limit}&order=asc"


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process, or None where ``/proc`` is unavailable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ThroughputResult:
    requests: int
    seconds: float
    bytes_per_response: float
    server_cpu_seconds: float | None
    client_cpu_seconds: float

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds


async def throughput(
    emu: Emulator, runs: list[RunInfo], *, requests: int, concurrency: int, limit: int
) -> ThroughputResult:
    """``requests`` list calls spread over ``runs``, ``concurrency`` at a time, timed after a warm-up."""
    paths = [list_path(runs[i % len(runs)], limit) for i in range(requests)]
    # Several small pools: httpx's pool bookkeeping grows with its connection count.
    pools = max(1, concurrency // 4)
    clients = [
        httpx.AsyncClient(
            base_url=emu.root_url,
            headers=HEADERS,
            limits=httpx.Limits(max_connections=4, max_keepalive_connections=4),
            timeout=60,
        )
        for _ in range(pools)
    ]
    received = 0

    async def run_all() -> None:
        nonlocal received
        queue = iter(paths)

        async def worker(client: httpx.AsyncClient) -> None:
            nonlocal received
            for path in queue:
                response = await client.get(path)
                if response.status_code != 200:
                    raise RuntimeError(f"{path}: {response.status_code} {response.text[:200]}")
                received += len(response.content)

        await asyncio.gather(*(worker(clients[k % pools]) for k in range(concurrency)))

    try:
        await run_all()  # warm-up: connections open, every run's steps generated
        received = 0
        pid = emu.server_pid
        server_before = process_cpu_seconds(pid) if pid is not None else None
        client_before = time.process_time()
        started = time.perf_counter()
        await run_all()
        seconds = time.perf_counter() - started
        client_cpu = time.process_time() - client_before
        server_after = process_cpu_seconds(pid) if pid is not None else None
    finally:
        for client in clients:
            await client.aclose()
    server_cpu = None if server_before is None or server_after is None else server_after - server_before
    return ThroughputResult(requests, seconds, received / requests, server_cpu, client_cpu)


@dataclass(frozen=True)
class BurstResult:
    requests: int
    rounds: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.rounds)


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str) -> None:
        self.reader, self.writer, self.host = reader, writer, host
        self.h11 = h11.Connection(h11.CLIENT)

    async def get(self, path: str) -> int:
        request = h11.Request(method="GET", target=path, headers=[("Host", self.host), *HEADERS.items()])
        self.writer.write(self.h11.send(request) + self.h11.send(h11.EndOfMessage()))
        status = 0
        while True:
            event = self.h11.next_event()
            if event is h11.NEED_DATA:
                self.h11.receive_data(await self.reader.read(65_536))
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.EndOfMessage):
                self.h11.start_next_cycle()
                return status
            elif isinstance(event, h11.ConnectionClosed):
                raise RuntimeError("server closed the connection")

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


async def burst(emu: Emulator, runs: list[RunInfo], *, requests: int, rounds: int, limit: int) -> BurstResult:
    """Wall time of ``requests`` simultaneous list calls, one connection each, per round."""
    host, port = emu.host, emu.port
    connections = []
    for _ in range(requests):
        reader, writer = await asyncio.open_connection(host, port)
        connections.append(_Connection(reader, writer, f"{host}:{port}"))
    paths = [list_path(runs[i % len(runs)], limit) for i in range(requests)]
    walls: list[float] = []
    try:
        for round_ in range(rounds + 1):  # round 0 warms up and is not counted
            started = time.perf_counter()
            statuses = await asyncio.gather(
                *(conn.get(path) for conn, path in zip(connections, paths, strict=True))
            )
            wall = time.perf_counter() - started
            if any(status != 200 for status in statuses):
                raise RuntimeError(f"unexpected statuses: {sorted(set(statuses))}")
            if round_:
                walls.append(wall)
    finally:
        await asyncio.gather(*(conn.close() for conn in connections))
    return BurstResult(requests, walls)
