"""What a sync picks up when the API's data changes between two syncs, over a real loopback server whose
objects a test adds, changes and deletes (`FakeApi` on `ScriptedServer`): a new chat completion, a
metadata update inside and outside the re-read window, a cursor whose object was deleted, a response
the API no longer has, and time buckets (the ledger's growth) whose current bucket ends."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from starlette.requests import Request
from starlette.responses import Response

import duckdb_openai
from duckdb_openai.resources.base import Filter, Key, Resource, sort_option
from duckdb_openai.sync import TABLES_BY_NAME, Buckets, Cursor, SyncTable
from tests.scripted import ScriptedServer
from tests.sync_helpers import FakeApi, page, quick, state_rows, table_rows

#: The chat completions declaration with its window narrowed to an hour (12 completions span hours).
HOURLY = dataclasses.replace(
    TABLES_BY_NAME["chat_completions"], growth=Cursor("created", window=timedelta(hours=1))
)


@pytest.fixture
def fake() -> Iterator[tuple[FakeApi, ScriptedServer]]:
    api = FakeApi(completions=12, responses=3)
    with ScriptedServer([api]) as server:
        yield api, server


def paths(server: ScriptedServer) -> list[str]:
    return [r.path.removeprefix("/v1/") for r in server.requests]


def sync(path: Path, server: ScriptedServer, tables: list[Any], **kwargs: Any) -> duckdb_openai.SyncResult:
    server.requests.clear()
    return duckdb_openai.sync(path, tables, **quick(server.base_url), **kwargs)


def test_a_new_chat_completion_is_picked_up_with_its_messages(
    fake: tuple[FakeApi, ScriptedServer], tmp_path: Path
) -> None:
    api, server = fake
    path = tmp_path / "h.duckdb"
    tables = ["chat_completions", "chat_completion_messages"]
    assert sync(path, server, tables).table("chat_completions").counts.new == 12
    newest = copy.deepcopy(api.completions[-1])
    newest["id"] = "chatcmpl-new"
    newest["created"] += 60
    api.completions.append(newest)
    api.messages["chatcmpl-new"] = [
        {**m, "id": f"chatcmpl-new-{i}"} for i, m in enumerate(api.messages[api.completions[0]["id"]])
    ]

    result = sync(path, server, tables)
    assert result.table("chat_completions").counts.new == 1
    assert result.table("chat_completion_messages").counts.new == len(api.messages["chatcmpl-new"])
    # One request after the cursor (the window and the new one in it), and the new one's messages.
    assert paths(server) == ["chat/completions", "chat/completions/chatcmpl-new/messages"]
    assert "chatcmpl-new" in {r[0] for r in table_rows(path, "chat_completions", ["id"])}


def test_a_metadata_update_inside_the_window_is_picked_up_one_outside_is_not(
    fake: tuple[FakeApi, ScriptedServer], tmp_path: Path
) -> None:
    api, server = fake
    path = tmp_path / "h.duckdb"
    table = HOURLY
    # The population's completions are hours apart: move the one before the newest into the window.
    api.completions[-2]["created"] = api.completions[-1]["created"] - 600
    sync(path, server, [table])
    newest = api.completions[-1]["created"]
    inside = next(c for c in reversed(api.completions[:-1]) if c["created"] >= newest - 3_600)
    outside = next(c for c in api.completions if c["created"] < newest - 3_600)
    inside["metadata"] = {**inside["metadata"], "reviewed": "yes"}
    outside["metadata"] = {**outside["metadata"], "reviewed": "yes"}

    result = sync(path, server, [table])
    counts = result.table("chat_completions").counts
    assert (counts.new, counts.updated) == (0, 1)
    assert paths(server) == ["chat/completions"]
    metadata = dict(table_rows(path, "chat_completions", ["id", "metadata"]))
    assert dict(metadata[inside["id"]])["reviewed"] == "yes"
    # Older than the window: a sync does not read it again (the README says how wide the window is).
    assert "reviewed" not in dict(metadata[outside["id"]])


def test_a_deleted_cursor_falls_back_to_reading_newest_first(
    fake: tuple[FakeApi, ScriptedServer], tmp_path: Path
) -> None:
    api, server = fake
    path = tmp_path / "h.duckdb"
    sync(path, server, [HOURLY])
    (cursor,) = [v["after"] for t, _, v in state_rows(path) if t == "chat_completions"]
    api.completions = [c for c in api.completions if c["id"] != cursor]
    result = sync(path, server, [HOURLY])
    # The API refuses the cursor (400); the sync reads newest first down to the window instead, and the
    # deleted completion stays in the target (the history outlives the API).
    assert paths(server) == ["chat/completions", "chat/completions"]
    assert server.requests[0].query.endswith(f"after={cursor}")
    assert "order=desc" in server.requests[1].query
    assert result.rows_written == 0
    assert cursor in {r[0] for r in table_rows(path, "chat_completions", ["id"])}
    (value,) = [v for t, _, v in state_rows(path) if t == "chat_completions"]
    assert value["after"] != cursor


def test_a_response_the_api_no_longer_has_keeps_its_row(
    fake: tuple[FakeApi, ScriptedServer], tmp_path: Path
) -> None:
    api, server = fake
    path = tmp_path / "h.duckdb"
    ids = list(api.responses)
    api.responses[ids[0]]["status"] = "in_progress"  # not final: read again at the next sync
    log = pa.table({"response_id": ids})
    first = sync(path, server, ["responses", "response_input_items"], log=log)
    assert first.table("responses").counts.new == 3
    # Input items are read once a response is final: not for the one in progress.
    assert paths(server).count(f"responses/{ids[0]}/input_items") == 0
    assert first.table("response_input_items").requests == 2

    del api.responses[ids[0]]  # stored responses are kept 30 days
    second = sync(path, server, ["responses", "response_input_items"], log=log)
    assert paths(server)[0] == f"responses/{ids[0]}"
    assert second.rows_written == 0
    assert ("responses", ids[0], {"gone": True}) in state_rows(path)
    rows = dict(table_rows(path, "responses", ["id", "status"]))
    assert rows[ids[0]] == "in_progress"  # kept, as last seen

    third = sync(path, server, ["responses", "response_input_items"], log=log)
    assert server.requests == [] and third.requests == 0  # not asked again


def test_whole_keeps_rows_the_api_stopped_listing(tmp_path: Path) -> None:
    assistants = [
        {
            "id": f"asst_{i}",
            "object": "assistant",
            "created_at": 1_725_148_800 + i,
            "name": f"A{i}",
            "model": "gpt-4o",
            "tools": [],
        }
        for i in range(3)
    ]
    with ScriptedServer([lambda request: page(request, assistants)]) as server:
        path = tmp_path / "h.duckdb"
        assert sync(path, server, ["assistants"]).table("assistants").counts.new == 3
        assistants[1]["name"] = "renamed"
        del assistants[2]
        result = sync(path, server, ["assistants"])
    counts = result.table("assistants").counts
    assert (counts.new, counts.updated, counts.unchanged) == (0, 1, 1)
    assert dict(table_rows(path, "assistants", ["id", "name"])) == {
        "asst_0": "A0",
        "asst_1": "renamed",
        "asst_2": "A2",
    }


# -- time buckets: the organization ledger's growth, on a stand-in declaration ---------------------------

_TS = pa.timestamp("us", tz="UTC")
#: A stand-in for a usage resource: one row per bucket and model, with a start_time time filter as the
#: ledger's resources have (tests/test_sync_ledger.py syncs the real ones).
USAGE = Resource(
    name="usage_test",
    item_name="usage_test_row",
    path="organization/usage/test",
    keys=(),
    item_key=Key("row_id", "2024-10-01|gpt-4o"),
    item_path_template=None,
    schema=pa.schema(
        [
            ("id", pa.string()),
            ("start_time", _TS),
            ("end_time", _TS),
            ("model", pa.string()),
            ("requests", pa.int64()),
        ]
    ),
    options=(sort_option("buckets"),),
    filters=(Filter("start_time", "start_time", "2024-10-01", kind="time", column="start_time"),),
    catalog_schema="organization",
)
USAGE_TABLE = SyncTable(
    "usage_test",
    USAGE,
    key=("start_time", "model"),
    growth=Buckets(start_filter="start_time", reread=1, backfill=timedelta(days=3)),
    time="start_time",
)
DAY = 86_400
START = 1_727_740_800  # 2024-10-01T00:00:00Z


class Ledger:
    """Usage rows per day and model; serves those from `start_time` on, and only buckets begun by `now`."""

    def __init__(self) -> None:
        self.rows: dict[tuple[int, str], int] = {}
        self.now = START
        self.starts: list[int] = []

    def __call__(self, request: Request) -> Response:
        start = int(request.query_params["start_time"])
        self.starts.append(start)
        items = [
            {"id": f"{day}|{model}", "start_time": day, "end_time": day + DAY, "model": model, "requests": n}
            for (day, model), n in sorted(self.rows.items())
            if day >= start and day <= self.now
        ]
        return page(request, items)


def test_buckets_reread_recent_ones_and_replace_the_current_one(tmp_path: Path) -> None:
    ledger = Ledger()
    ledger.rows = {
        (START, "gpt-4o"): 5,
        (START + DAY, "gpt-4o"): 7,
        (START + 2 * DAY, "gpt-4o"): 1,
        (START + 2 * DAY, "o3"): 2,
    }
    ledger.now = START + 2 * DAY + 3_600  # an hour into the third day
    path = tmp_path / "h.duckdb"
    with ScriptedServer([ledger]) as server:

        def at(now: int) -> duckdb_openai.SyncResult:
            ledger.now = now
            return sync(path, server, [USAGE_TABLE], now=datetime.fromtimestamp(now, UTC))

        first = at(START + 2 * DAY + 3_600)
        assert first.table("usage_test").counts.new == 4
        assert ledger.starts == [START - DAY]  # the first sync reads the backfill: 3 days back, at midnight
        finals = dict(
            ((r[0].isoformat(), r[1]), r[2])
            for r in table_rows(path, "usage_test", ["start_time", "model", "is_final"])
        )
        assert [v for k, v in sorted(finals.items())] == [True, True, False, False]
        assert ("usage_test", "", {"complete_until": "2024-10-03T00:00:00+00:00"}) in state_rows(path)

        # Late data for the second day, the current bucket grows and loses a model; the day ends.
        ledger.rows[(START + DAY, "gpt-4o")] = 8
        ledger.rows[(START + 2 * DAY, "gpt-4o")] = 9
        del ledger.rows[(START + 2 * DAY, "o3")]
        ledger.starts.clear()
        second = at(START + 3 * DAY + 60)
        assert ledger.starts == [START + DAY]  # one ended bucket again, then the current one
        counts = second.table("usage_test").counts
        assert (counts.new, counts.updated, counts.unchanged, counts.removed) == (0, 2, 0, 1)
        assert "removed" in str(second)
        rows = table_rows(path, "usage_test", ["start_time", "model", "requests", "is_final"])
        assert [(r[0].day, r[1], r[2], r[3]) for r in rows] == [
            (1, "gpt-4o", 5, True),
            (2, "gpt-4o", 8, True),
            (3, "gpt-4o", 9, True),
        ]

        # Nothing new: the re-read bucket and the current (empty) one, no rows written.
        ledger.starts.clear()
        third = at(START + 3 * DAY + 120)
        assert third.rows_written == 0 and len(server.requests) == 1
        assert ledger.starts == [START + 2 * DAY]
