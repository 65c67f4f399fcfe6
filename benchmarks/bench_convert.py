"""Decoding list pages to Arrow: ours against pyarrow's C++ JSON reader and the official SDK's models.

    python -m benchmarks.bench_convert [--quick] [--steps 100000] [--repeats 3]

Pages through a few long runs of the emulator (process mode) for `--steps` run steps as list pages of
100, the bytes exactly as the server sends them, then times over all pages (best of `--repeats`):

(a) ours: `PageDecoder(RUN_STEPS_SCHEMA).decode_page` per page, to the fixed schema (timestamps, maps);
(b) the baseline: `pyarrow.json.read_json` per page with default options (types inferred, nothing
    converted): how fast C++ parses this JSON into Arrow at all;
(c) the SDK: `json.loads` per page, `RunStep.model_validate` per step, then one `pandas.DataFrame` of
    the `model_dump()`s. The SDK itself builds response models without validation (`construct_type`);
    that variant is timed too, for information.

Prints ours / pyarrow (target <= 1.5x) and sdk / ours (target >= 5x), and checks that our batches have
RUN_STEPS_SCHEMA and `--steps` rows, and that no page needed the decoder's slow path.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import httpx
import pandas as pd
import pyarrow as pa
import pyarrow.json as pj
from openai.types.beta.threads.runs import RunStep

from duckdb_openai import RUN_STEPS_SCHEMA
from duckdb_openai.emulator import DatasetConfig, Emulator
from duckdb_openai.engine.convert import Page, PageDecoder

from ._common import API_KEY, HTTP_TIMEOUT, Watchdog, best_of, emulator, info, parser, ratio

__all__ = ["fetch_pages", "main"]

PAGE_SIZE = 100
#: A dozen runs of thousands of steps: over 1,100 full pages of 100 with this seed.
LONG_RUNS = DatasetConfig(threads=1, runs_per_thread=12, mean_steps=10_000, edge_runs=False)
SEED = 7


def fetch_pages(emu: Emulator, steps: int) -> list[bytes]:
    """List responses of exactly PAGE_SIZE steps, ascending, until they hold `steps` steps."""
    wanted = -(-steps // PAGE_SIZE)
    pages: list[bytes] = []
    headers = {"Authorization": f"Bearer {API_KEY}", "OpenAI-Beta": "assistants=v2"}
    with httpx.Client(base_url=emu.base_url, headers=headers, timeout=HTTP_TIMEOUT) as client:
        for run in sorted(emu.dataset.runs, key=lambda r: -r.step_count):
            after: str | None = None
            while len(pages) < wanted:
                params: dict[str, Any] = {"limit": PAGE_SIZE, "order": "asc"}
                if after is not None:
                    params["after"] = after
                response = client.get(f"/threads/{run.thread_id}/runs/{run.run_id}/steps", params=params)
                response.raise_for_status()
                document = json.loads(response.content)
                if len(document["data"]) == PAGE_SIZE:
                    pages.append(response.content)
                if not document["has_more"]:
                    break
                after = document["last_id"]
            if len(pages) >= wanted:
                break
    if len(pages) < wanted:
        raise RuntimeError(f"the dataset holds only {len(pages)} full pages, {wanted} wanted")
    last = steps - PAGE_SIZE * (wanted - 1)
    if last < PAGE_SIZE:  # keep exactly `steps` steps: cut the last page down via the SDK's own format
        document = json.loads(pages[-1])
        document["data"] = document["data"][:last]
        document["last_id"] = document["data"][-1]["id"]
        pages[-1] = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
    return pages


def _sdk_construct() -> Callable[[dict[str, Any]], Any] | None:
    """How the SDK itself turns a response into a RunStep (no validation), if this version exposes it."""
    try:
        from openai._models import construct_type
    except ImportError:  # pragma: no cover - depends on the SDK's internals
        return None
    return lambda step: construct_type(type_=RunStep, value=step)


def main(argv: list[str] | None = None) -> int:
    args_parser = parser("bench_convert", __doc__)
    args_parser.add_argument("--steps", type=int, help="run steps to decode (default 100000; quick 20000)")
    args_parser.add_argument("--repeats", type=int, default=3, help="best of this many (default: 3)")
    args = args_parser.parse_args(argv)
    steps = args.steps or (20_000 if args.quick else 100_000)

    with Watchdog(600, "bench_convert"):
        print(f"bench_convert: {steps:,} run steps in list pages of {PAGE_SIZE}, best of {args.repeats}")
        with emulator(seed=SEED, dataset=LONG_RUNS) as emu:
            pages = fetch_pages(emu, steps)
        size = sum(len(p) for p in pages)
        info("input", f"{len(pages)} pages, {size / 2**20:.1f} MiB of JSON from the emulator")

        decoder = PageDecoder(RUN_STEPS_SCHEMA)
        slow_pages = 0
        decode_slowly = decoder._decode_page_slowly

        def counted_slow_path(body: bytes) -> Page:
            nonlocal slow_pages
            slow_pages += 1
            return decode_slowly(body)

        decoder._decode_page_slowly = counted_slow_path  # type: ignore[method-assign]

        def ours() -> list[pa.RecordBatch]:
            return [decoder.decode_page(page).batch for page in pages]

        def pyarrow_reader() -> list[pa.Table]:
            return [pj.read_json(io.BytesIO(page)) for page in pages]

        def sdk() -> pd.DataFrame:
            models = [RunStep.model_validate(step) for page in pages for step in json.loads(page)["data"]]
            return pd.DataFrame([model.model_dump() for model in models])

        t_ours, batches = best_of(args.repeats, ours)
        t_arrow, _ = best_of(args.repeats, pyarrow_reader)
        t_sdk, frame = best_of(args.repeats, sdk)
        construct = _sdk_construct()
        t_construct = None
        if construct is not None:

            def sdk_unvalidated() -> pd.DataFrame:
                models = [construct(step) for page in pages for step in json.loads(page)["data"]]
                return pd.DataFrame([model.model_dump() for model in models])

            t_construct, _ = best_of(args.repeats, sdk_unvalidated)

        rows = sum(b.num_rows for b in batches)
        schema_ok = all(b.schema == RUN_STEPS_SCHEMA for b in batches)
        checks_ok = rows == steps and schema_ok and slow_pages == 0 and len(frame) == steps
        print(f"\n   {'':<44}{'seconds':>8}   {'steps/s':>10}")
        for label, seconds in (
            ("(a) ours: PageDecoder.decode_page", t_ours),
            ("(b) pyarrow.json.read_json (baseline)", t_arrow),
            ("(c) SDK: model_validate + DataFrame", t_sdk),
            ("    SDK: construct_type + DataFrame (info)", t_construct),
        ):
            if seconds is not None:
                print(f"   {label:<44}{seconds:8.3f}   {steps / seconds:10,.0f}")
        print()
        ratio("ours / pyarrow reader", t_ours / t_arrow, 1.5)
        ratio("sdk (model_validate) / ours", t_sdk / t_ours, 5.0, at_least=True)
        if t_construct is not None:
            ratio("sdk (construct_type) / ours, info", t_construct / t_ours)
        info(
            "check",
            f"{'PASS' if checks_ok else 'FAIL'}: {rows:,} rows (want {steps:,}), schema "
            f"{'is' if schema_ok else 'is NOT'} RUN_STEPS_SCHEMA, {slow_pages} pages on the slow path, "
            f"SDK frame {len(frame):,} rows",
        )
    return 0 if checks_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
