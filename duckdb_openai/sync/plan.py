"""`dry_run`: what a sync would read, from the target's state and the log alone. It sends no request
and writes nothing (a DuckDB file is opened read-only, a missing one is not created, a Parquet folder
is not locked).

What it cannot know without asking is said as such: how many rows follow a cursor, which chat
completions are new (their messages), which runs end (their steps).
"""

from __future__ import annotations

from datetime import timedelta

from duckdb_openai.sync.growth import Context, Unit, bucket_start, gone, statuses
from duckdb_openai.sync.tables import Buckets, Children, Cursor, Logged, SyncTable, Whole

__all__ = ["plan_unit"]


def _span(width: timedelta) -> str:
    """'1 day', '6 hours', '90 seconds'."""
    seconds = int(width.total_seconds())
    for unit, size in (("day", 86_400), ("hour", 3_600), ("minute", 60)):
        if seconds and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} seconds"


def _child(child: SyncTable) -> str:
    assert isinstance(child.growth, Children)
    which = {"new": "new", "final": "newly final", "open": "new or unfinished"}[child.growth.when]
    return f"then {child.name}: one list (GET /{child.resource.path}) per {which} {child.growth.parent} row"


def _list_plan(ctx: Context, table: SyncTable) -> str:
    growth = table.growth
    path = table.resource.path
    if isinstance(growth, Whole):
        return f"{table.name}: the whole list (GET /{path}), every row compared with the target's"
    if isinstance(growth, Buckets):
        start = bucket_start(ctx, table)
        return (
            f"{table.name}: GET /{path}?{growth.start_filter}={int(start.timestamp())}: the buckets from "
            f"{start.isoformat()} on (the last {growth.reread} ended, then the current one)"
        )
    assert isinstance(growth, Cursor)
    saved = ctx.state.get(table.name) or {}
    after, newest = saved.get("after"), saved.get("newest")
    if growth.order == "asc" and after is not None:
        how = f"GET /{path}?order=asc&after={after}: the rows after it"
    elif growth.order == "asc" and newest is None and ctx.since is None:
        how = f"GET /{path}?order=asc: the whole list (a first sync)"
    elif newest is not None:
        how = f"GET /{path}?order=desc: newest first, down to {_span(growth.window)} before {newest}"
    elif ctx.since is not None:
        how = f"GET /{path}?order=desc: newest first, down to {ctx.since.isoformat()} (since)"
    else:
        how = f"GET /{path}?order=desc: the whole list, newest first"
    if newest is not None and growth.window:
        how += f" (the rows created within {_span(growth.window)} of the newest, {newest}, are read again)"
    return f"{table.name}: {how}"


def _logged_plan(ctx: Context, unit: Unit) -> list[str]:
    top = unit.top
    growth = top.growth
    assert isinstance(growth, Logged)
    if ctx.log is None:
        return [f"{top.name}: skipped, no log given"]
    if not ctx.log.has(growth.column):
        return [f"{top.name}: skipped, the log has no {growth.column} column"]
    since = ""
    if ctx.since is not None:
        since = f" since {ctx.since.isoformat()}" if ctx.log.narrowed else " (since does not narrow it)"
    ids = ctx.log.ids(growth.column)
    lost = gone(ctx, top)
    path = top.resource.path if growth.list else top.resource.item_path_template
    item_key = top.resource.item_key.name
    if growth.list:
        known = statuses(ctx, top, top.resource.keys[0].name, ids)
    if growth.list and ctx.log.has(item_key):
        # A log naming each object (thread_id, run_id): each read by itself, as `growth._logged_runs`.
        pairs = ctx.log.rows([growth.column, item_key])
        todo = [i for _, i in pairs if i not in lost and (i not in known or not known[i].final)]
        held = sum(1 for _, i in pairs if i in known)
        line = (
            f"{top.name}: {len(pairs)} {item_key}s in the log{since}: {len(todo)} to read, one request each "
            f"(GET /{top.resource.item_path_template}); {held} in the target, {len(lost)} the API no "
            "longer has"
        )
    elif growth.list:
        unfinished = sum(1 for row in known.values() if not row.final)
        onward = sum(1 for i in ids if (ctx.state.get(top.name, i) or {}).get("after"))
        line = (
            f"{top.name}: {len(ids)} {growth.column}s in the log{since}: one list each (GET /{path}), "
            f"{onward} of them after their last {top.resource.item_name}; {unfinished} "
            f"{top.name} not final read again (GET /{top.resource.item_path_template})"
        )
    else:
        assert top.resource.item_column is not None  # logged objects are named by their ids
        known = statuses(ctx, top, top.resource.item_column, ids)
        todo = [i for i in ids if i not in lost and (i not in known or (growth.final and not known[i].final))]
        line = (
            f"{top.name}: {len(ids)} {growth.column}s in the log{since}: {len(todo)} to read (GET /{path}); "
            f"{len(known)} in the target, {len(lost)} the API no longer has"
        )
    lines = [line, *(_child(c) for c in unit.member(Children))]
    for member in unit.member(Logged):
        assert isinstance(member.growth, Logged)
        again = "; and those of each run not final, again" if member.growth.reread_open_runs else ""
        lines.append(
            f"then {member.name}: one list per {member.growth.column} (GET /{member.resource.path}), "
            f"from its last object on{again}"
        )
    return lines


def plan_unit(ctx: Context, unit: Unit) -> list[str]:
    """What a sync of `unit` would read, one line per request kind."""
    if isinstance(unit.top.growth, Logged):
        return _logged_plan(ctx, unit)
    return [_list_plan(ctx, unit.top), *(_child(c) for c in unit.member(Children))]
