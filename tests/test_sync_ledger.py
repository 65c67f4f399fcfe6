"""The organization's ledger synced into a DuckDB file and a Parquet dataset, over the emulator: every usage
and costs table equals the API's buckets (grouped by every dimension), the open day is kept flagged
`partial` and replaced when it ends, a rerun reads one request per table and writes nothing, audit logs
grow newest-first, and the dimension tables refresh whole."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

import duckdb_openai
from duckdb_openai.emulator import Emulator
from duckdb_openai.resources.usage import USAGE
from tests.helpers import KEY
from tests.sync_helpers import quick

ADMIN = "sk-admin-sync-0123456789SECRET"
DAY = 86_400
#: Mid-day on 2025-03-20, inside the population: that day's buckets are open.
NOW = int(dt.datetime(2025, 3, 20, 12, tzinfo=dt.UTC).timestamp())
SINCE = "2025-02-01"
LEDGER = [*(r.name for r in USAGE), "costs", "audit_logs", "projects", "users"]


def emulator(now: int) -> Emulator:
    return Emulator(seed=7, mode="thread", api_key=KEY, admin_key=ADMIN, now=now)


@pytest.fixture(scope="module")
def org_emu() -> Iterator[Emulator]:
    with emulator(NOW) as emu:
        yield emu


def settings(emu: Emulator) -> dict[str, Any]:
    return quick(emu.base_url, admin_key=ADMIN)


def want_rows(emu: Emulator, name: str, start: int) -> list[tuple[Any, ...]]:
    """(start_time, every dimension, the first count) of every result the API gives from `start` on,
    grouped by every dimension: what the target's table holds."""
    resource = next(r for r in [*USAGE, duckdb_openai.COSTS] if r.name == name)
    dims = list(next(f for f in resource.filters if f.name == "group_by").choices)
    org = emu.organization
    if name == "costs":
        buckets = org.costs(start, None, group_by=dims)
    else:
        buckets = org.usage(name.removeprefix("usage_"), start, None, "1d", group_by=dims)
    measure = "amount" if name == "costs" else _measure(resource)
    out = []
    for bucket in buckets:
        for result in bucket["results"]:
            value = result[measure]
            if measure == "amount":
                value = Decimal(str(value["value"])).quantize(Decimal("1e-12"))
            out.append((bucket["start_time"], *(result[d] for d in dims), value))
    return sorted(out, key=repr)


def _measure(resource: duckdb_openai.Resource) -> str:
    numbers = [f.name for f in resource.schema if f.type == "int64" and f.name not in ("start_time",)]
    return numbers[0]


def got_rows(path: Path, name: str) -> list[tuple[Any, ...]]:
    resource = next(r for r in [*USAGE, duckdb_openai.COSTS] if r.name == name)
    dims = list(next(f for f in resource.filters if f.name == "group_by").choices)
    measure = "amount.value" if name == "costs" else _measure(resource)
    columns = ", ".join(["epoch(start_time)::BIGINT", *(f'"{d}"' for d in dims), measure])
    with duckdb.connect(str(path), read_only=True) as con:
        return sorted(con.execute(f"SELECT {columns} FROM {name}").fetchall(), key=repr)


def test_the_ledger_synced_equals_the_api_and_a_rerun_writes_nothing(
    org_emu: Emulator, tmp_path: Path
) -> None:
    path = tmp_path / "ledger.duckdb"
    org_emu.reset()
    first = duckdb_openai.sync(path, LEDGER, since=SINCE, **settings(org_emu))
    start = int(dt.datetime.fromisoformat(SINCE).replace(tzinfo=dt.UTC).timestamp())
    for name in [*(r.name for r in USAGE), "costs"]:
        assert got_rows(path, name) == want_rows(org_emu, name, start), name
        assert first.table(name).counts.new == len(want_rows(org_emu, name, start))
    with duckdb.connect(str(path), read_only=True) as con:
        # The open day is kept, flagged: a sum over whole days leaves it out.
        day = "TIMESTAMPTZ '2025-03-20 00:00+00'"
        assert con.execute(
            f"SELECT DISTINCT partial FROM usage_completions WHERE start_time = {day}"
        ).fetchall() == [(True,)]
        assert con.execute(
            f"SELECT count(*) FROM usage_completions WHERE partial AND start_time < {day}"
        ).fetchone() == (0,)
        events = con.execute("SELECT count(*), count(DISTINCT id) FROM audit_logs").fetchone()
        projects = con.execute("SELECT count(*) FROM projects").fetchone()
    org = org_emu.organization
    since = [e for e in org.events() if e["effective_at"] >= start]  # since bounds the first backfill
    assert events == (len(since), len(since)) and 0 < len(since) < len(org.events())
    assert projects == (len(org.projects(include_archived=True)),)

    org_emu.reset()
    again = duckdb_openai.sync(path, LEDGER, **settings(org_emu))
    assert again.rows_written == 0
    by = org_emu.stats()["by_endpoint"]
    # One page per bucket table (the last ended day and the open one), one per list.
    for name in [*(r.name for r in USAGE)]:
        assert sum(by[f"organization.usage.{name.removeprefix('usage_')}"].values()) == 1, name
    assert sum(by["organization.costs"].values()) == 1
    assert sum(by["organization.audit_logs"].values()) == 1
    # Read at once (each on a client of its own), yet each table's summary counts its own request.
    assert {name: again.table(name).requests for name in LEDGER} == dict.fromkeys(LEDGER, 1)


def test_the_open_day_is_replaced_once_it_ends(tmp_path: Path) -> None:
    path = tmp_path / "ledger.duckdb"
    with emulator(NOW) as emu:
        duckdb_openai.sync(path, ["usage_completions"], since="2025-03-15", **settings(emu))
    later = NOW + DAY  # mid-day on the 21st: the 20th has ended
    with emulator(later) as emu:
        duckdb_openai.sync(path, ["usage_completions"], **settings(emu))
        start = int(dt.datetime(2025, 3, 15, tzinfo=dt.UTC).timestamp())
        assert got_rows(path, "usage_completions") == want_rows(emu, "usage_completions", start)
    with duckdb.connect(str(path), read_only=True) as con:
        flags = dict(
            con.execute(
                "SELECT start_time::DATE::VARCHAR, bool_or(partial) FROM usage_completions GROUP BY ALL"
            ).fetchall()
        )
    assert flags["2025-03-20"] is False and flags.get("2025-03-21", True) is True


def test_without_an_admin_key_the_ledger_is_left_out_saying_why(org_emu: Emulator, tmp_path: Path) -> None:
    org_emu.reset()
    result = duckdb_openai.sync(tmp_path / "h.duckdb", dry_run=True, **quick(org_emu.base_url))
    assert "needs an admin key" in str(result)
    assert org_emu.stats()["requests"] == 0


def test_the_ledger_in_parquet_equals_the_duckdb_target(org_emu: Emulator, tmp_path: Path) -> None:
    tables = ["usage_completions", "costs", "projects"]
    duckdb_openai.sync(tmp_path / "h.duckdb", tables, since="2025-03-01", **settings(org_emu))
    duckdb_openai.sync(parquet=tmp_path / "ds", tables=tables, since="2025-03-01", **settings(org_emu))
    con = duckdb.connect()
    con.execute(f"ATTACH '{tmp_path / 'h.duckdb'}' AS h (READ_ONLY)")
    for name in tables:
        glob = tmp_path / "ds" / name / "**" / "*.parquet"
        columns = ", ".join(f'"{c}"' for c in con.sql(f"SELECT * FROM h.{name} LIMIT 0").columns)
        left = f"SELECT {columns} FROM h.{name}"
        right = f"SELECT {columns} FROM read_parquet('{glob}', hive_partitioning = true)"
        only = con.execute(f"SELECT count(*) FROM (({left}) EXCEPT ALL ({right}))").fetchone()
        other = con.execute(f"SELECT count(*) FROM (({right}) EXCEPT ALL ({left}))").fetchone()
        assert only == other == (0,), name


def test_buckets_without_usage_move_the_window_on(tmp_path: Path) -> None:
    # The emulator on the real clock: its usage ended on 2025-03-29, so every day since is empty. A rerun
    # still reads only from the last ended day (the server's clock says which days have ended).
    path = tmp_path / "ledger.duckdb"
    with Emulator(seed=7, mode="thread", api_key=KEY, admin_key=ADMIN) as emu:
        duckdb_openai.sync(path, ["usage_embeddings"], since="2025-03-25", **settings(emu))
        emu.reset()
        again = duckdb_openai.sync(path, ["usage_embeddings"], **settings(emu))
        assert again.rows_written == 0
        assert sum(emu.stats()["by_endpoint"]["organization.usage.embeddings"].values()) == 1
        [query] = [r["query"] for r in emu.requests()]
    yesterday = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).date()
    assert dt.datetime.fromtimestamp(int(query["start_time"][0]), dt.UTC).date() == yesterday
