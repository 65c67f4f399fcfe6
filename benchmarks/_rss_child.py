"""The child process of bench_fanout's memory part: its peak RSS is the query's alone.

    python -m benchmarks._rss_child baseline
    python -m benchmarks._rss_child query RUNS.parquet BASE_URL

`baseline` only imports duckdb, pyarrow and duckdb_openai; `query` also counts the LATERAL join of the
runs in RUNS.parquet with `run_steps`. Either prints one JSON line: peak RSS in MiB, rows, seconds.
"""

from __future__ import annotations

import json
import resource
import sys
import time

import duckdb
import pyarrow  # noqa: F401  (part of the baseline: what any user of the package has loaded)

import duckdb_openai

__all__ = ["main"]

QUERY = "SELECT count(*) FROM runs r, run_steps(r.thread_id, r.run_id) s"


def peak_rss_mib() -> float:
    """This process's peak RSS in MiB.

    VmHWM, not ru_maxrss: Linux carries ru_maxrss across fork and exec, so a child started by a
    big parent reports the parent's size (both children read 411.6 MiB after parts a-c). VmHWM is
    the high-water mark of the address space this process got at exec.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    # No /proc (macOS): ru_maxrss, which macOS reports in bytes.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1024 * 1024)


def main(argv: list[str]) -> int:
    rows, seconds = 0, 0.0
    if argv[0] == "query":
        runs_file, base_url = argv[1], argv[2]
        con = duckdb.connect()
        con.execute("CREATE TABLE runs AS SELECT thread_id, run_id FROM read_parquet(?)", [runs_file])
        registration = duckdb_openai.register(
            con, api_key="sk-bench", base_url=base_url, max_concurrency=32, progress=False, timeout=30.0
        )
        started = time.perf_counter()
        result = con.execute(QUERY).fetchone()
        seconds = time.perf_counter() - started
        rows = int(result[0]) if result is not None else 0
        registration.close()
    elif argv[0] != "baseline":
        raise SystemExit(f"unknown mode {argv[0]!r}: use baseline or query")
    print(json.dumps({"peak_rss_mib": peak_rss_mib(), "rows": rows, "seconds": seconds}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
