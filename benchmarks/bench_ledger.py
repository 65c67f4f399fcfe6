"""The organization's ledger: 180 days of usage through DuckDB, against the floor, StackQL and the SDK.

    python -m benchmarks.bench_ledger [--quick] [--repeats N] [--latency-ms 200]

An emulator in process mode serves the organization of seed 7 at 200 ms per page, its clock half a day
past the range, so every bucket of the 180 days from 2024-10-01 has ended. Its counters give each
side's requests (and the most it had in flight at once); its `organization` ground truth gives the
rows each side must get, checked every round. Rounds are interleaved, best of N.

a. Ours: `CREATE TABLE ours AS SELECT * FROM usage_completions(start, end_time := end, group_by :=
   ['project_id', 'model'])`, on a new client each round (its registration untimed): 6 pages of 31
   daily buckets, one after another (each page's token comes from the page before). Against the floor,
   6 x the latency (target <= 1.5x), and against a measured one: a bare httpx loop reading the same 6
   pages. For information: the same at 0 ms latency through SQL, through the Python reader and by the
   bare loop (what the client costs a page), and the process's first query, untimed: it pays once
   for what pyarrow imports on first use (pandas, when installed), so a warm-up query runs first.
b. The 10 usage endpoints and costs over the same days in one query: a UNION ALL of `count(*)`s over
   the table functions and over the catalog tables, each at DuckDB's default threads and with one
   thread per endpoint (`SET threads = 11`), and the 11 Python readers on one client in 11 threads.
   Target: at most 61 requests (6 per usage endpoint, 1 for costs). Wall times against the floor of
   the 11 read at once (6 x latency) and one after another (61 x latency).
c. StackQL's default: its admin provider sends no `limit`, so a page holds the API's default of 7 daily
   buckets: ceil(180 / 7) = 26 pages, one after another. A hand-written httpx loop that does so,
   flattening the buckets into rows and a DuckDB table via pyarrow; ours against it.
d. The official SDK written by hand: `client.admin.organization.usage.completions(..., limit=31,
   page=...)` looping on `next_page`, each result `model_dump()`ed with its bucket's times into a
   DuckDB table via pyarrow (an SDK without that method: `client.get(path, cast_to=object, ...)`).
   The SDK sends arrays as `group_by[]=`; the emulator reads only the repeated `group_by=` of the
   spec, so an httpx request hook renames the key (nothing else changes).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, cast

import duckdb
import httpx
import openai
import pyarrow as pa

import duckdb_openai
from duckdb_openai.emulator import Emulator
from duckdb_openai.emulator.successors import POPULATION_START
from duckdb_openai.resources.usage import USAGE, USAGE_COMPLETIONS_SCHEMA, WIDTH_LIMITS

from ._common import API_KEY, HTTP_TIMEOUT, Watchdog, emulator, info, parser, ratio, timed

__all__ = ["main"]

SEED = 7
ADMIN_KEY = "sk-admin-bench"
DAY = 86_400
DAYS = 180
START = POPULATION_START  # 2024-10-01T00:00:00Z, the population's first day
END = START + DAYS * DAY
#: Half a day past the range: every bucket has ended, so none is partial and the ground truth is fixed.
NOW = END + DAY // 2
GROUP_BY = ("project_id", "model")
PATH = "/organization/usage/completions"
#: The most daily buckets a page may hold (what we send) and the API's default (what StackQL gets).
OUR_LIMIT = WIDTH_LIMITS["1d"]
DEFAULT_LIMIT = 7
PAGES = math.ceil(DAYS / OUR_LIMIT)
STACKQL_PAGES = math.ceil(DAYS / DEFAULT_LIMIT)
#: The ten usage functions and costs, with the emulator's name for each.
LEDGER = {**{r.name: r.name.removeprefix("usage_") for r in USAGE}, "costs": "costs"}
#: 6 pages of 31 days for each usage endpoint, one page of 180 days for costs.
MOST_REQUESTS = PAGES * len(USAGE) + 1


def ts(seconds: int) -> str:
    return f"TIMESTAMPTZ '{datetime.fromtimestamp(seconds, UTC).isoformat()}'"


RANGE = f"{ts(START)}, end_time := {ts(END)}"
OURS = f"SELECT * FROM usage_completions({RANGE}, group_by := {list(GROUP_BY)})"


# -- the rows every side must get ------------------------------------------------------------------------


def result_fields(emu: Emulator) -> list[str]:
    """The result fields the emulator sends that the table has, in its schema's order."""
    sent = {key for bucket in truth_buckets(emu) for r in bucket["results"] for key in r}
    return [name for name in USAGE_COMPLETIONS_SCHEMA.names if name in sent]


def truth_buckets(emu: Emulator) -> list[dict[str, Any]]:
    return emu.organization.usage("completions", START, END, "1d", group_by=GROUP_BY)


def flatten(buckets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each result of each bucket as one row with its bucket's times (what a hand-written client does)."""
    return [
        {"start_time": b["start_time"], "end_time": b["end_time"], **result}
        for b in buckets
        for result in b["results"]
    ]


def keyed(rows: list[dict[str, Any]], fields: list[str]) -> list[tuple[Any, ...]]:
    return sorted((tuple(row[f] for f in ("start_time", "end_time", *fields)) for row in rows), key=repr)


def table_rows(con: duckdb.DuckDBPyConnection, table: str, fields: list[str]) -> list[tuple[Any, ...]]:
    """A DuckDB table's rows as the comparison holds them: times as Unix seconds."""
    kinds = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {table})").fetchall())
    times = [
        f"epoch({c})::BIGINT" if kinds[c].startswith("TIMESTAMP") else c for c in ("start_time", "end_time")
    ]
    cursor = con.execute(f"SELECT {', '.join([*times, *fields])} FROM {table}")
    return sorted((tuple(row) for row in cursor.fetchall()), key=repr)


# -- the sides -------------------------------------------------------------------------------------------


def counted(emu: Emulator, fn: Callable[[], Any]) -> tuple[float, Any, dict[str, Any]]:
    """Seconds and result of `fn()`, and the emulator's counters for it."""
    emu.reset()
    seconds, result = timed(fn)
    return seconds, result, emu.stats()


def connect(
    emu: Emulator, con: duckdb.DuckDBPyConnection | None = None
) -> tuple[duckdb.DuckDBPyConnection, duckdb_openai.Registration]:
    """`con` (or a new connection) registered against `emu` with a new client."""
    con = con if con is not None else duckdb.connect()
    registration = duckdb_openai.register(
        con,
        api_key=API_KEY,
        admin_key=ADMIN_KEY,
        base_url=emu.base_url,
        progress=False,
        timeout=HTTP_TIMEOUT,
        cache=False,  # every round measures fetching
    )
    return con, registration


def ours(emu: Emulator, con: duckdb.DuckDBPyConnection) -> tuple[float, dict[str, Any]]:
    """Seconds of the SQL into table `ours`, on a new client (its registration untimed)."""
    _, registration = connect(emu, con)
    try:
        seconds, _, stats = counted(emu, lambda: con.execute(f"CREATE OR REPLACE TABLE ours AS {OURS}"))
    finally:
        registration.close()
    return seconds, stats


def reader(emu: Emulator) -> tuple[float, dict[str, Any]]:
    """Seconds of the Python reader on a fresh client (no DuckDB at all)."""
    client = duckdb_openai.Client(
        api_key=API_KEY, admin_key=ADMIN_KEY, base_url=emu.base_url, timeout=HTTP_TIMEOUT, cache=False
    )
    try:
        seconds, _, stats = counted(
            emu,
            lambda: duckdb_openai.read_usage_completions(
                START, end_time=END, group_by=list(GROUP_BY), client=client
            ).read_all(),
        )
    finally:
        client.close()
    return seconds, stats


def bare_pages(emu: Emulator, limit: int | None, con: duckdb.DuckDBPyConnection | None = None) -> float:
    """A hand-written httpx loop on `next_page`, one page after another.

    With `con`, each page's buckets are flattened into rows, then the DuckDB table `stackql` (StackQL's
    work); without, each page is only parsed for its token (the floor a client can reach)."""
    params: list[tuple[str, str | int | float | bool | None]] = [("start_time", START), ("end_time", END)]
    params += [("group_by", g) for g in GROUP_BY]
    if limit is not None:
        params.append(("limit", limit))
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    with httpx.Client(base_url=emu.base_url, headers=headers, timeout=HTTP_TIMEOUT) as client:

        def run() -> None:
            rows: list[dict[str, Any]] = []
            token: str | None = None
            while True:
                response = client.get(PATH, params=params + ([("page", token)] if token else []))
                response.raise_for_status()
                body = response.json()
                if con is not None:
                    rows += flatten(body["data"])
                token = body["next_page"] if body["has_more"] else None
                if token is None:
                    break
            if con is not None:
                into_duckdb(con, "stackql", rows)

        seconds, _ = timed(run)
    return seconds


def into_duckdb(con: duckdb.DuckDBPyConnection, name: str, rows: list[dict[str, Any]]) -> None:
    """Rows of dicts as the DuckDB table `name`, via pyarrow."""
    con.register("_bench_rows", pa.Table.from_pylist(rows))
    con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM _bench_rows")
    con.unregister("_bench_rows")


def _sdk_arrays(request: Any) -> None:
    """Send `group_by=a&group_by=b` for the SDK's `group_by[]=a&group_by[]=b` (see the docstring)."""
    pairs = [(key.removesuffix("[]"), value) for key, value in request.url.params.multi_items()]
    request.url = request.url.copy_with(params=pairs)


def sdk_expert(emu: Emulator, con: duckdb.DuckDBPyConnection) -> float:
    """The official SDK written by hand: sequential pages of 31 buckets into a DuckDB table `sdk`."""
    http_client = openai.DefaultHttpxClient(event_hooks={"request": [_sdk_arrays]})
    client = openai.OpenAI(
        base_url=emu.base_url,
        api_key=ADMIN_KEY,
        admin_api_key=ADMIN_KEY,
        max_retries=2,
        timeout=HTTP_TIMEOUT,
        http_client=http_client,
    )
    usage = getattr(getattr(getattr(client, "admin", None), "organization", None), "usage", None)

    def page_of(token: str | None) -> dict[str, Any]:
        query: dict[str, Any] = {"start_time": START, "end_time": END, "group_by": list(GROUP_BY)}
        query["limit"] = OUR_LIMIT
        if token is not None:
            query["page"] = token
        if usage is not None:  # the typed method of recent SDKs
            page = usage.completions(**query)
            return {
                "data": [
                    {"start_time": b.start_time, "end_time": b.end_time,
                     "results": [r.model_dump() for r in b.results]}
                    for b in page.data
                ],
                "has_more": page.has_more,
                "next_page": page.next_page,
            }  # fmt: skip
        body: dict[str, Any] = client.get(
            PATH, cast_to=cast(Any, object), options=cast(Any, {"params": query})
        )
        return body

    def run() -> None:
        rows: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            page = page_of(token)
            rows += flatten(page["data"])
            token = page["next_page"] if page["has_more"] else None
            if token is None:
                break
        into_duckdb(con, "sdk", rows)

    try:
        seconds, _ = timed(run)
    finally:
        client.close()
    return seconds


# -- b: the whole ledger in one query ----------------------------------------------------------------------


def union_sql(catalog: bool) -> str:
    def source(name: str) -> str:
        if catalog:
            where = f"start_time >= {ts(START)} AND start_time < {ts(END)}"
            return f"openai.organization.{name} WHERE {where}"
        return f"{name}({RANGE})"

    return " UNION ALL ".join(
        f"SELECT '{name}' AS name, count(*) AS n FROM {source(name)}" for name in LEDGER
    )


def ledger_truth(emu: Emulator) -> dict[str, int]:
    """Results per function over the range, ungrouped (what a count(*) reads)."""
    return {
        name: sum(len(b["results"]) for b in emu.organization.usage(kind, START, END))
        for name, kind in LEDGER.items()
    }


def whole_ledger(emu: Emulator, form: str) -> tuple[float, dict[str, int], dict[str, Any]]:
    """Seconds, counts per function and the emulator's counters of one form of reading all 11."""
    con, registration = connect(emu)
    try:
        if form == "readers":
            client = registration.client

            def one(name: str) -> int:
                read = getattr(duckdb_openai, f"read_{name}")
                return int(read(START, end_time=END, client=client).read_all().num_rows)

            def run() -> dict[str, int]:
                with ThreadPoolExecutor(len(LEDGER)) as pool:
                    return dict(zip(LEDGER, pool.map(one, LEDGER), strict=True))

            return counted(emu, run)
        if form.endswith("a thread each"):
            con.execute(f"SET threads = {len(LEDGER)}")
        sql = union_sql(catalog=form.startswith("catalog tables"))
        seconds, rows, stats = counted(emu, lambda: con.execute(sql).fetchall())
        return seconds, {name: int(n) for name, n in rows}, stats
    finally:
        registration.close()
        con.close()


# -- the benchmark ---------------------------------------------------------------------------------------


def warm_up(emu: Emulator) -> None:
    """The emulator builds the organization on the first request: make that request now, untimed."""
    with httpx.Client(timeout=HTTP_TIMEOUT) as client:
        response = client.get(
            emu.base_url + PATH,
            params={"start_time": START, "end_time": START + DAY},
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        )
        response.raise_for_status()
    emu.reset()


def differences(got: list[tuple[Any, ...]], want: list[tuple[Any, ...]]) -> str | None:
    """None when `got` holds exactly the rows of `want`, else how it differs."""
    if got == want:
        return None
    return f"{len(got):,} rows, {len(set(got) - set(want))} unexpected, {len(set(want) - set(got))} missing"


def part_a_c_d(repeats: int, latency: float) -> bool:
    print(
        f"\na, c, d. {DAYS} days of daily usage_completions grouped by {', '.join(GROUP_BY)}, "
        f"{latency * 1000:.0f} ms per page, best of {repeats}"
    )
    times: dict[str, list[float]] = {"ours": [], "bare": [], "stackql": [], "sdk": []}
    con = duckdb.connect()
    wrong: list[str] = []
    with emulator(seed=SEED, latency_ms=latency * 1000, admin_key=ADMIN_KEY, now=NOW) as emu:
        warm_up(emu)
        # The process's first query pays once for what pyarrow imports on first use (pandas, when it is
        # installed): not a cost of paging, and whichever side came first would carry it.
        first, _ = ours(emu, con)
        fields = result_fields(emu)
        want = keyed(flatten(truth_buckets(emu)), fields)
        for _ in range(repeats):  # interleaved, so drift on a shared machine hits every side alike
            seconds, stats = ours(emu, con)
            times["ours"].append(seconds)
            ours_requests = int(stats["requests"])
            times["bare"].append(bare_pages(emu, OUR_LIMIT))
            emu.reset()
            times["stackql"].append(bare_pages(emu, None, con))
            stackql_requests = int(emu.stats()["requests"])
            emu.reset()
            times["sdk"].append(sdk_expert(emu, con))
            sdk_requests = int(emu.stats()["requests"])
            for table in ("ours", "stackql", "sdk"):
                problem = differences(table_rows(con, table, fields), want)
                if problem is not None:
                    wrong.append(f"{table}: {problem}")
    at_zero: dict[str, float] = {}
    with emulator(seed=SEED, admin_key=ADMIN_KEY, now=NOW) as emu:
        warm_up(emu)
        rounds = max(3, repeats)
        at_zero["ours"] = min(ours(emu, con)[0] for _ in range(rounds))
        at_zero["reader"] = min(reader(emu)[0] for _ in range(rounds))
        at_zero["bare"] = min(bare_pages(emu, OUR_LIMIT) for _ in range(rounds))
    con.close()

    best = {side: min(values) for side, values in times.items()}
    floor = PAGES * latency
    ok = not wrong
    info(
        "rows = truth, every side, every round",
        f"PASS: {len(want):,} results of {DAYS} daily buckets" if ok else f"FAIL: {'; '.join(wrong)}",
    )
    info(f"floor: {PAGES} pages x latency", f"{floor:8.2f} s")
    info(f"bare httpx loop, the same {PAGES} pages", f"{best['bare']:8.2f} s")
    info("ours: usage_completions(...)", f"{best['ours']:8.2f} s, {ours_requests} requests (target {PAGES})")
    info(
        f"StackQL default: {DEFAULT_LIMIT} buckets a page",
        f"{best['stackql']:8.2f} s, {stackql_requests} requests",
    )
    info("SDK written by hand: limit=31", f"{best['sdk']:8.2f} s, {sdk_requests} requests")
    spread = ", ".join(f"{min(v):.2f}-{max(v):.2f}" for v in times.values())
    info("spread of rounds (ours, bare, StackQL, SDK)", f"{spread} s")
    ratio(f"ours / floor ({PAGES} x latency)", best["ours"] / floor, 1.5)
    ratio("ours / bare httpx loop (measured floor)", best["ours"] / best["bare"])
    ratio("ours / StackQL default", best["ours"] / best["stackql"])
    ratio("ours / SDK written by hand", best["ours"] / best["sdk"])
    requests_ok = (ours_requests, stackql_requests, sdk_requests) == (PAGES, STACKQL_PAGES, PAGES)
    ok &= requests_ok
    info(
        "requests (ours, StackQL, SDK)",
        f"{'PASS' if requests_ok else 'FAIL'}: {ours_requests}, {stackql_requests}, {sdk_requests} "
        f"(want {PAGES}, {STACKQL_PAGES}, {PAGES})",
    )
    per_page = (at_zero["ours"] - at_zero["bare"]) / PAGES * 1000
    info(
        "at 0 ms (info): SQL, reader, bare loop",
        f"{at_zero['ours']:.3f}, {at_zero['reader']:.3f}, {at_zero['bare']:.3f} s",
    )
    info("ours' own cost a page at 0 ms: SQL - bare loop", f"{per_page:8.1f} ms")
    info("the process's first query (untimed, info)", f"{first:8.2f} s, {first - best['ours']:+.2f} s")
    return ok


FORMS = (
    "functions",
    "functions, a thread each",
    "catalog tables",
    "catalog tables, a thread each",
    "readers",
)


def part_b(repeats: int, latency: float) -> bool:
    threads = duckdb.connect().execute("SELECT current_setting('threads')").fetchall()[0][0]
    print(
        f"\nb. the {len(LEDGER)} usage and cost endpoints over {DAYS} days in one query, "
        f"{latency * 1000:.0f} ms per page, best of {repeats} (DuckDB's default threads here: {threads})"
    )
    results: dict[str, list[tuple[float, dict[str, Any]]]] = {form: [] for form in FORMS}
    counts_ok = True
    with emulator(seed=SEED, latency_ms=latency * 1000, admin_key=ADMIN_KEY, now=NOW) as emu:
        warm_up(emu)
        truth = ledger_truth(emu)
        for _ in range(repeats):
            for form in FORMS:
                seconds, counts, stats = whole_ledger(emu, form)
                results[form].append((seconds, stats))
                if counts != truth:
                    counts_ok = False
                    info(f"counts, {form}", f"FAIL: {counts} (truth {truth})")
    at_once, one_by_one = PAGES * latency, MOST_REQUESTS * latency
    info(
        "floors: all 11 at once, one after another",
        f"{at_once:8.2f} s ({PAGES} x latency), {one_by_one:.2f} s ({MOST_REQUESTS} x latency)",
    )
    requests_ok = True
    for form in FORMS:
        seconds, stats = min(results[form], key=lambda r: r[0])
        requests = max(s["requests"] for _, s in results[form])
        requests_ok &= requests <= MOST_REQUESTS
        spread = f"{min(s for s, _ in results[form]):.2f}-{max(s for s, _ in results[form]):.2f}"
        info(
            form,
            f"{seconds:8.2f} s ({spread}), {requests} requests, at most {stats['max_in_flight']} in flight",
        )
    for form in FORMS:
        seconds = min(s for s, _ in results[form])
        ratio(f"{form} / all at once", seconds / at_once)
    info(
        f"requests (target <= {MOST_REQUESTS}: {PAGES} x {len(USAGE)} + 1)",
        "PASS: every form" if requests_ok else "FAIL: a form made more",
    )
    info(
        "counts per endpoint = truth, each form",
        f"PASS: {sum(truth.values()):,} results" if counts_ok else "FAIL (above)",
    )
    return requests_ok and counts_ok


def main(argv: list[str] | None = None) -> int:
    args_parser = parser("bench_ledger", __doc__)
    args_parser.add_argument("--repeats", type=int, help="timed rounds, best of (default 3; quick 1)")
    args_parser.add_argument("--latency-ms", type=float, default=200.0, help="per page (default 200)")
    args = args_parser.parse_args(argv)
    repeats = args.repeats or (1 if args.quick else 3)
    latency = args.latency_ms / 1000
    print(f"bench_ledger: emulator in process mode, seed {SEED}, {DAYS} days from 2024-10-01")
    with Watchdog(300 if args.quick else 600, "bench_ledger"):
        ok = part_a_c_d(repeats, latency)
        ok &= part_b(repeats, latency)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
