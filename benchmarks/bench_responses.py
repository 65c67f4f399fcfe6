"""Fetching many responses through DuckDB: ours against the ideal and the official SDK.

    python -m benchmarks.bench_responses [--quick] [--responses 1000] [--repeats 2]

An emulator in process mode serves its Responses-era population (`emulator.successors`; the default
seed holds 1,008 responses) at 200 ms latency. The user's log of calls is a local table
`my_calls(response_id, conversation_id, customer)`, and each side fetches every response in it with
concurrency 32:

(a) ours: `SELECT count(*), sum(r.usage.total_tokens) FROM my_calls c, response(c.response_id) r`,
    on a fresh connection each round (setup untimed);
(b) the SDK written as an expert would: AsyncOpenAI, `responses.retrieve` per id under asyncio.gather
    with a Semaphore(32), `model_dump()`s into a DuckDB table via pyarrow, then the same two sums.

Prints ours / ideal (ceil(responses / 32) x 200 ms; target <= 1.15x) and ours / SDK (target <= 1.0x),
checks that both sides got every response and the same token total, and, for information, how many
responses per second ours decodes and registers with no latency at all (the Python decode path: a
response's output items keep their JSON text).
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import duckdb
import openai
import pyarrow as pa

import duckdb_openai
from duckdb_openai.emulator import Emulator
from duckdb_openai.emulator.successors import ResponseInfo, Successors

from ._common import API_KEY, HTTP_TIMEOUT, Watchdog, emulator, info, parser, ratio, timed

__all__ = ["main"]

SEED = 7
CONCURRENCY = 32
LATENCY = 0.2
QUERY = "SELECT count(*), sum(r.usage.total_tokens) FROM my_calls c, response(c.response_id) r"


def load_calls(con: duckdb.DuckDBPyConnection, calls: list[ResponseInfo]) -> None:
    """The user's local log of model calls, as a DuckDB table `my_calls`."""
    table = pa.table(
        {
            "response_id": [c.response_id for c in calls],
            "conversation_id": [c.conversation_id for c in calls],
            "customer": [c.customer for c in calls],
        }
    )
    con.register("_bench_calls", table)
    con.execute("CREATE OR REPLACE TABLE my_calls AS SELECT * FROM _bench_calls")
    con.unregister("_bench_calls")


def ours(emu: Emulator, calls: list[ResponseInfo]) -> tuple[float, tuple[int, int]]:
    """Seconds of the LATERAL query on a fresh connection and client (setup untimed), and its answer."""
    con = duckdb.connect()
    load_calls(con, calls)
    registration = duckdb_openai.register(
        con,
        api_key=API_KEY,
        base_url=emu.base_url,
        max_concurrency=CONCURRENCY,
        progress=False,
        timeout=HTTP_TIMEOUT,
    )
    try:
        seconds, rows = timed(lambda: con.execute(QUERY).fetchall())
    finally:
        registration.close()
        con.close()
    count, tokens = rows[0]
    return seconds, (int(count), int(tokens or 0))


def sdk_expert(emu: Emulator, calls: list[ResponseInfo]) -> tuple[float, tuple[int, int]]:
    """The official SDK as an expert would use it: seconds until the responses are a DuckDB table."""

    async def fetch() -> list[dict[str, Any]]:
        client = openai.AsyncOpenAI(
            base_url=emu.base_url, api_key=API_KEY, max_retries=2, timeout=HTTP_TIMEOUT
        )
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(call: ResponseInfo) -> dict[str, Any]:
            async with gate:
                response = await client.responses.retrieve(call.response_id)
            return response.model_dump()

        try:
            return await asyncio.gather(*(one(call) for call in calls))
        finally:
            await client.close()

    con = duckdb.connect()

    def run() -> None:
        sdk_responses = pa.Table.from_pylist(asyncio.run(fetch()))  # noqa: F841  (DuckDB's replacement scan)
        con.execute("CREATE OR REPLACE TABLE sdk_responses AS SELECT * FROM sdk_responses")

    try:
        seconds, _ = timed(run)
        count, tokens = con.execute("SELECT count(*), sum(usage.total_tokens) FROM sdk_responses").fetchall()[
            0
        ]
    finally:
        con.close()
    return seconds, (int(count), int(tokens or 0))


def warm_up(emu: Emulator, calls: list[ResponseInfo]) -> None:
    """The emulator builds its population on the first request: make that request now, untimed."""
    client = openai.OpenAI(base_url=emu.base_url, api_key=API_KEY, timeout=HTTP_TIMEOUT)
    try:
        client.responses.retrieve(calls[0].response_id)
    finally:
        client.close()
    emu.reset()


def main(argv: list[str] | None = None) -> int:
    args_parser = parser("bench_responses", __doc__)
    args_parser.add_argument("--responses", type=int, help="responses to fetch (default 1000; quick 300)")
    args_parser.add_argument("--repeats", type=int, help="timed rounds, best of (default 2; quick 1)")
    args = args_parser.parse_args(argv)
    n = args.responses or (300 if args.quick else 1000)
    repeats = args.repeats or (1 if args.quick else 2)
    population = Successors(SEED).infos
    if n > len(population):
        args_parser.error(f"the emulator's seed {SEED} holds {len(population):,} responses; ask for fewer")
    calls = list(population[:n])

    with Watchdog(300 if args.quick else 600, "bench_responses"):
        print(
            f"bench_responses: {n:,} responses, {LATENCY * 1000:.0f} ms latency, concurrency "
            f"{CONCURRENCY}, best of {repeats}"
        )
        ours_times: list[float] = []
        sdk_times: list[float] = []
        answers: set[tuple[str, tuple[int, int]]] = set()
        with emulator(seed=SEED, latency_ms=LATENCY * 1000) as emu:
            warm_up(emu, calls)
            for _ in range(repeats):  # interleaved, so drift on a shared machine hits both alike
                seconds, answer = ours(emu, calls)
                ours_times.append(seconds)
                answers.add(("ours", answer))
                seconds, answer = sdk_expert(emu, calls)
                sdk_times.append(seconds)
                answers.add(("sdk", answer))
        zero_times: list[float] = []
        with emulator(seed=SEED) as emu:  # no latency: what decoding and registering cost
            warm_up(emu, calls)
            for _ in range(repeats):
                seconds, answer = ours(emu, calls)
                zero_times.append(seconds)
                answers.add(("ours, 0 ms", answer))
        decode_seconds = min(zero_times)

        ideal = math.ceil(n / CONCURRENCY) * LATENCY
        best_ours, best_sdk = min(ours_times), min(sdk_times)
        info("ideal: ceil(responses / 32) x latency", f"{ideal:8.2f} s")
        info(f"ours (best of {repeats})", f"{best_ours:8.2f} s")
        info(f"SDK, async expert (best of {repeats})", f"{best_sdk:8.2f} s")
        info(
            f"ours at 0 ms latency (info, best of {repeats})",
            f"{decode_seconds:8.2f} s, {n / decode_seconds:,.0f} responses/s",
        )
        ratio("ours / ideal", best_ours / ideal, 1.15)
        ratio("ours / SDK async expert", best_ours / best_sdk, 1.0)
        values = {answer for _, answer in answers}
        ok = len(values) == 1 and next(iter(values))[0] == n
        count, tokens = next(iter(values)) if len(values) == 1 else (0, 0)
        info(
            "rows (ours, SDK expert, ours at 0 ms)",
            f"PASS: {count:,} responses, {tokens:,} tokens on every side"
            if ok
            else f"FAIL: {sorted(answers)} (want {n:,} responses on every side)",
        )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
