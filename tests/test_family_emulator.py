"""The emulator's Assistants family (runs, messages, assistants, threads) through the official SDK.

Over real HTTP: the SDK parses every object the emulator serves, the objects agree with the run steps
they derive from, every list pages like run steps, and the package's schemas decode the raw JSON to the
SDK's objects field by field (apart from what the schema modules document as dropped).
"""

from __future__ import annotations

import csv
import json
import math
import signal
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import openai
import pyarrow as pa
import pytest
from openai import BaseModel as SdkModel

from duckdb_openai.emulator import Dataset, DatasetConfig, Emulator, Family
from duckdb_openai.emulator.app import classify_path
from duckdb_openai.emulator.family import THREAD_MANIFEST_COLUMNS
from duckdb_openai.engine.convert import PageDecoder
from duckdb_openai.resources.assistants import ASSISTANTS_SCHEMA
from duckdb_openai.resources.messages import CONTENT_TYPES, MESSAGES_SCHEMA
from duckdb_openai.resources.runs import RUN_STATUSES, RUNS_SCHEMA, TERMINAL_STATUSES
from duckdb_openai.resources.threads import THREADS_SCHEMA
from duckdb_openai.schema import is_json
from tests.helpers import api_shape, sparse
from tests.test_emulator_cli import Served

# The SDK marks the Assistants API deprecated; it still speaks it.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

HEADERS = {"Authorization": "Bearer sk-test", "OpenAI-Beta": "assistants=v2"}
#: Keys the emulator sends that a schema does not hold, as the schema modules document.
DROPPED: dict[str, set[str]] = {"runs": set(), "messages": set(), "assistants": set(), "threads": set()}
SCHEMAS = {
    "runs": RUNS_SCHEMA,
    "messages": MESSAGES_SCHEMA,
    "assistants": ASSISTANTS_SCHEMA,
    "threads": THREADS_SCHEMA,
}


@pytest.fixture(scope="module")
def family(emulator: Emulator) -> Family:
    """Ground truth, generated apart from the server's own copy."""
    return Family(emulator.dataset)


@pytest.fixture
def client(emulator: Emulator) -> Iterator[openai.OpenAI]:
    emulator.reset()
    with openai.OpenAI(base_url=emulator.base_url, api_key="sk-test", max_retries=0) as sdk:
        yield sdk


@pytest.fixture
def api(emulator: Emulator) -> Iterator[httpx.Client]:
    emulator.reset()
    with httpx.Client(base_url=emulator.base_url, headers=HEADERS) as client:
        yield client


def as_json(obj: SdkModel) -> dict[str, Any]:
    """The object as the API sent it (fields the response left out stay out)."""
    return obj.model_dump(mode="json", exclude_unset=True, by_alias=True)


def buckets(emulator: Emulator) -> dict[str, int]:
    return {name: sum(counts.values()) for name, counts in emulator.stats()["by_endpoint"].items() if counts}


# -- the SDK parses every object ---------------------------------------------------------


def test_runs_list_and_retrieve_every_run(client: openai.OpenAI, emulator: Emulator, family: Family) -> None:
    pages = 0
    for thread_id in emulator.dataset.thread_ids:
        runs = list(client.beta.threads.runs.list(thread_id, order="asc", limit=3))  # auto-pagination
        assert [as_json(run) for run in runs] == family.runs(thread_id)
        pages += max(1, math.ceil(len(runs) / 3))
        for run in runs:
            retrieved = client.beta.threads.runs.retrieve(run.id, thread_id=thread_id)
            assert retrieved == run and as_json(retrieved) == family.run(thread_id, run.id)
    assert sum(len(family.runs(t)) for t in emulator.dataset.thread_ids) == len(emulator.dataset.runs)
    assert buckets(emulator) == {"runs.list": pages, "runs.retrieve": len(emulator.dataset.runs)}


@pytest.mark.slow
def test_messages_list_filter_and_retrieve(client: openai.OpenAI, emulator: Emulator, family: Family) -> None:
    total = 0
    for thread_id in emulator.dataset.thread_ids:
        messages = list(client.beta.threads.messages.list(thread_id, order="asc", limit=100))
        assert [as_json(message) for message in messages] == family.messages(thread_id)
        total += len(messages)
        for run in emulator.dataset.thread_runs(thread_id):
            created = client.beta.threads.messages.list(thread_id, run_id=run.run_id, limit=100)  # desc
            assert [as_json(message) for message in created] == family.messages(thread_id, run.run_id)[::-1]
        for message in messages[:2] + messages[-2:]:
            retrieved = client.beta.threads.messages.retrieve(message.id, thread_id=thread_id)
            assert retrieved == message and as_json(retrieved) == family.message(thread_id, message.id)
    assert total > 4_000


def test_assistants_and_threads(client: openai.OpenAI, emulator: Emulator, family: Family) -> None:
    assistants = list(client.beta.assistants.list(limit=2))  # default order: newest first
    assert [as_json(a) for a in assistants] == family.assistants()[::-1]
    assert sorted(a.id for a in assistants) == sorted(emulator.dataset.assistant_ids)
    for assistant in assistants:
        retrieved = client.beta.assistants.retrieve(assistant.id)
        assert retrieved == assistant and as_json(retrieved) == family.assistant(assistant.id)
    for thread_id in emulator.dataset.thread_ids:
        assert as_json(client.beta.threads.retrieve(thread_id)) == family.thread(thread_id)
    assert buckets(emulator) == {
        "assistants.list": 3,
        "assistants.retrieve": 5,
        "threads.retrieve": len(emulator.dataset.thread_ids),
    }


def test_unknown_ids_are_the_sdks_not_found(client: openai.OpenAI, emulator: Emulator) -> None:
    thread_id = emulator.dataset.thread_ids[0]
    cases: list[tuple[Callable[[], Any], str]] = [
        (lambda: client.beta.threads.retrieve("thread_nope"), "No thread found with id 'thread_nope'."),
        (lambda: client.beta.threads.runs.list("thread_nope"), "No thread found with id 'thread_nope'."),
        (lambda: client.beta.threads.runs.retrieve("run_nope", thread_id=thread_id), "No run found"),
        (lambda: client.beta.threads.messages.retrieve("msg_nope", thread_id=thread_id), "No message found"),
        (lambda: client.beta.assistants.retrieve("asst_nope"), "No assistant found with id 'asst_nope'."),
    ]
    for call, message in cases:
        with pytest.raises(openai.NotFoundError) as caught:
            call()
        assert message in caught.value.message


# -- one consistent population ------------------------------------------------------------


def test_the_run_step_population_is_unchanged(emulator: Emulator, family: Family) -> None:
    assert len(emulator.dataset.runs) == 246
    assert sum(run.step_count for run in emulator.dataset.runs) == 13_380


def test_runs_and_messages_agree_with_the_steps(emulator: Emulator, family: Family) -> None:
    dataset = emulator.dataset
    assistants = {a["id"]: a for a in family.assistants()}
    statuses: Counter[str] = Counter()
    for thread_id in dataset.thread_ids:
        thread = family.thread(thread_id)
        messages = family.messages(thread_id)
        by_id = {message["id"]: message for message in messages}
        assert all(thread["created_at"] <= message["created_at"] for message in messages)
        assert [m["created_at"] for m in messages] == sorted(m["created_at"] for m in messages)
        for run in family.runs(thread_id):
            statuses[run["status"]] += 1
            steps = dataset.steps(thread_id, run["id"])
            last = steps[-1] if steps else None
            # Status and timestamps follow the last step.
            if run["status"] == "queued":
                assert last is None and run["started_at"] is None
            elif run["status"] in ("in_progress", "requires_action"):
                assert last is not None and last["status"] == "in_progress"
                waiting = [
                    c["id"] for c in last["step_details"].get("tool_calls", []) if c["type"] == "function"
                ]
                action = run["required_action"]
                asked = [c["id"] for c in action["submit_tool_outputs"]["tool_calls"]] if action else []
                assert asked == waiting and (run["status"] == "requires_action") is bool(waiting)
            else:
                assert last is not None
                step_status = "completed" if run["status"] == "incomplete" else run["status"]
                assert last["status"] == step_status and all(s["status"] == "completed" for s in steps[:-1])
            if run["status"] == "failed":
                assert last is not None and run["last_error"] == last["last_error"] is not None
                assert run["failed_at"] == last["failed_at"]
            if run["status"] == "completed":
                assert last is not None and run["completed_at"] == last["completed_at"]
            # Usage is the steps' sum once the run is terminal.
            if run["status"] in TERMINAL_STATUSES:
                assert run["usage"] == {
                    key: sum(s["usage"][key] for s in steps)
                    for key in ("prompt_tokens", "completion_tokens", "total_tokens")
                }
            else:
                assert run["usage"] is None and run["expires_at"] == run["created_at"] + 600
            # Every message a step created is the thread's, with the run's id; the user asked first.
            created = [
                s["step_details"]["message_creation"]["message_id"]
                for s in steps
                if s["type"] == "message_creation"
            ]
            assert [m["id"] for m in family.messages(thread_id, run["id"])] == created
            assert all(by_id[m]["run_id"] == run["id"] and by_id[m]["role"] == "assistant" for m in created)
            assert any(
                m["role"] == "user" and m["run_id"] is None and m["created_at"] <= run["created_at"]
                for m in messages
            )
            assistant = assistants[run["assistant_id"]]
            assert (run["tools"], run["instructions"]) == (assistant["tools"], assistant["instructions"])
    assert set(statuses) == set(RUN_STATUSES) - {"cancelling"}


def test_messages_cover_every_content_and_annotation_kind(emulator: Emulator, family: Family) -> None:
    kinds: Counter[str] = Counter()
    for thread_id in emulator.dataset.thread_ids:
        for message in family.messages(thread_id):
            kinds[f"status:{message['status']}"] += 1
            kinds[f"attachments:{bool(message['attachments'])}"] += 1
            for part in message["content"]:
                kinds[part["type"]] += 1
                if part["type"] == "text":
                    kinds.update(a["type"] for a in part["text"]["annotations"])
    assert set(CONTENT_TYPES) | {"file_citation", "file_path"} <= set(kinds)
    assert {"status:completed", "status:incomplete", "status:in_progress", "attachments:True"} <= set(kinds)


# -- every list pages like run steps ---------------------------------------------------------


def lists(emulator: Emulator, family: Family) -> dict[str, tuple[str, dict[str, str], list[str]]]:
    """(path, extra params, ids ascending) of the longest list of each kind."""
    dataset = emulator.dataset
    runs_thread = max(dataset.thread_ids, key=lambda t: len(dataset.thread_runs(t)))
    long_run = dataset.find_run(step_count=200)
    busy = max(
        dataset.thread_runs(long_run.thread_id), key=lambda r: len(family.messages(r.thread_id, r.run_id))
    )
    return {
        "runs": (f"/threads/{runs_thread}/runs", {}, [r["id"] for r in family.runs(runs_thread)]),
        "messages": (
            f"/threads/{long_run.thread_id}/messages",
            {},
            [m["id"] for m in family.messages(long_run.thread_id)],
        ),
        "messages of a run": (
            f"/threads/{busy.thread_id}/messages",
            {"run_id": busy.run_id},
            [m["id"] for m in family.messages(busy.thread_id, busy.run_id)],
        ),
        "assistants": ("/assistants", {}, [a["id"] for a in family.assistants()]),
    }


KINDS = ["runs", "messages", "messages of a run", "assistants"]


@pytest.mark.parametrize("kind", KINDS)
def test_lists_page_like_run_steps(api: httpx.Client, emulator: Emulator, family: Family, kind: str) -> None:
    path, extra, ids = lists(emulator, family)[kind]
    assert len(ids) >= 5
    first = api.get(path, params=extra).json()  # defaults: limit 20, newest first
    assert [o["id"] for o in first["data"]] == ids[::-1][:20]
    assert (first["first_id"], first["last_id"]) == (first["data"][0]["id"], first["data"][-1]["id"])
    assert first["has_more"] is (len(ids) > 20)
    for order, expected in (("asc", ids), ("desc", ids[::-1])):
        seen: list[str] = []
        params: dict[str, Any] = {**extra, "order": order, "limit": 3}
        while True:
            page = api.get(path, params=params).json()
            seen += [o["id"] for o in page["data"]]
            if not page["has_more"]:
                break
            params["after"] = page["last_id"]
        assert seen == expected
        before = api.get(path, params={**extra, "order": order, "limit": 2, "before": expected[-1]}).json()
        assert [o["id"] for o in before["data"]] == expected[-3:-1] and before["has_more"] is (len(ids) > 3)
    for bad, param in (({"limit": "0"}, "limit"), ({"limit": "101"}, "limit"), ({"order": "up"}, "order")):
        response = api.get(path, params={**extra, **bad})
        assert response.status_code == 400 and response.json()["error"]["param"] == param
    response = api.get(path, params={**extra, "after": "obj_nope"})
    assert response.status_code == 400
    assert (
        response.json()["error"]["param"] == "after" and "'obj_nope'" in response.json()["error"]["message"]
    )


def test_messages_of_an_unknown_run_are_an_empty_list(api: httpx.Client, emulator: Emulator) -> None:
    thread_id = emulator.dataset.thread_ids[0]
    body = api.get(f"/threads/{thread_id}/messages", params={"run_id": "run_nope"}).json()
    assert body == {"object": "list", "data": [], "first_id": None, "last_id": None, "has_more": False}


def test_beta_header_and_method_are_checked_everywhere(emulator: Emulator) -> None:
    thread_id = emulator.dataset.thread_ids[0]
    with httpx.Client(base_url=emulator.base_url, headers={"Authorization": "Bearer sk-test"}) as bare:
        for path in (f"/threads/{thread_id}", f"/threads/{thread_id}/runs", "/assistants"):
            response = bare.get(path)
            assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_beta"
            assert bare.post(path, headers={"OpenAI-Beta": "assistants=v2"}).status_code == 405


def test_stats_buckets(api: httpx.Client, emulator: Emulator, family: Family) -> None:
    run = emulator.dataset.find_run(step_count=1)
    message_id = family.messages(run.thread_id)[0]["id"]
    assistant_id = emulator.dataset.assistant_ids[0]
    paths = {
        "list": f"/threads/{run.thread_id}/runs/{run.run_id}/steps",
        "runs.list": f"/threads/{run.thread_id}/runs",
        "runs.retrieve": f"/threads/{run.thread_id}/runs/{run.run_id}",
        "messages.list": f"/threads/{run.thread_id}/messages",
        "messages.retrieve": f"/threads/{run.thread_id}/messages/{message_id}",
        "threads.retrieve": f"/threads/{run.thread_id}",
        "assistants.list": "/assistants",
        "assistants.retrieve": f"/assistants/{assistant_id}",
    }
    for bucket, path in paths.items():
        assert api.get(path).status_code == 200
        assert classify_path("/v1" + path) == classify_path("/openai" + path) == bucket
    stats = emulator.stats()["by_endpoint"]
    assert {name: counts for name, counts in stats.items() if counts} == {name: {"200": 1} for name in paths}
    assert classify_path("/v1/threads/t/runs/r/steps/s") == "retrieve"
    assert classify_path("/v1/threads/t/files") == classify_path("/v1/assistants/a/b") == "other"


# -- the schemas decode the raw JSON to the SDK's objects -------------------------------------


def assert_rows_equal(
    kind: str, batch: pa.RecordBatch, objects: list[Any], raw: list[dict[str, Any]]
) -> None:
    schema = SCHEMAS[kind]
    assert batch.schema == schema
    rows = batch.to_pylist()
    assert len(rows) == len(objects) == len(raw)
    for row, obj, sent in zip(rows, objects, raw, strict=True):
        expected = as_json(obj)
        assert set(expected) - set(schema.names) == DROPPED[kind]
        for name in DROPPED[kind]:
            del expected[name]
        assert sparse({f.name: api_shape(row[f.name], f) for f in schema}) == sparse(expected)
        for f in schema:  # the JSON text is exactly the compact text of what was sent
            if is_json(f):
                compact = json.dumps(sent[f.name], separators=(",", ":"), ensure_ascii=False)
                assert row[f.name] == (None if sent[f.name] is None else compact)


def raw_pages(call: Callable[..., Any], **params: Any) -> Iterator[tuple[bytes, list[Any]]]:
    """Each page of a list as (the body's bytes, the SDK's objects), following `after`."""
    while True:
        response = call(**params)
        page = response.parse()
        yield response.http_response.content, page.data
        if not page.has_more:
            return
        params["after"] = page.data[-1].id


@pytest.mark.slow
def test_schemas_decode_what_the_sdk_parses(client: openai.OpenAI, emulator: Emulator) -> None:
    beta = client.beta.with_raw_response
    threads = client.beta.threads.with_raw_response
    counts: Counter[str] = Counter()
    for kind, call, params in [
        ("assistants", beta.assistants.list, {"limit": 2}),
        *[
            (kind, call, {"thread_id": thread_id, "limit": 100, "order": "asc"})
            for thread_id in emulator.dataset.thread_ids
            for kind, call in (("runs", threads.runs.list), ("messages", threads.messages.list))
        ],
    ]:
        decoder = PageDecoder(SCHEMAS[kind])
        for body, objects in raw_pages(call, **params):
            page = decoder.decode_page(body)
            assert_rows_equal(kind, page.batch, objects, json.loads(body)["data"])
            counts[kind] += page.batch.num_rows
            if objects:
                assert (page.first_id, page.last_id) == (objects[0].id, objects[-1].id)
    assert counts["runs"] == len(emulator.dataset.runs) and counts["messages"] > 4_000


def test_schemas_decode_single_objects(client: openai.OpenAI, emulator: Emulator, family: Family) -> None:
    thread_id = emulator.dataset.find_run(step_count=101).thread_id
    run_ids = [run["id"] for run in family.runs(thread_id)]
    message_ids = [message["id"] for message in family.messages(thread_id)][:50]
    raw = client.beta.threads.with_raw_response
    calls: list[tuple[str, Any]] = [
        ("threads", raw.retrieve(thread_id)),
        *[("runs", raw.runs.retrieve(run_id, thread_id=thread_id)) for run_id in run_ids],
        *[("messages", raw.messages.retrieve(m, thread_id=thread_id)) for m in message_ids],
        *[
            ("assistants", client.beta.with_raw_response.assistants.retrieve(a))
            for a in emulator.dataset.assistant_ids
        ],
    ]
    for kind, response in calls:
        body = response.http_response.content
        batch = PageDecoder(SCHEMAS[kind]).decode_object(body)
        assert_rows_equal(kind, batch, [response.parse()], [json.loads(body)])


# -- the threads manifest ---------------------------------------------------------------------


def test_threads_manifest(tmp_path: Path) -> None:
    path = tmp_path / "threads.csv"
    config = ["--seed", "3", "--threads", "4", "--runs-per-thread", "2", "--mean-steps", "3"]
    served = Served(["--port", "0", *config, "--threads-manifest", str(path)])
    try:
        dataset = Dataset(3, DatasetConfig(threads=4, runs_per_thread=2, mean_steps=3))
        with path.open(newline="") as handle:
            reader = csv.reader(handle)
            assert tuple(next(reader)) == THREAD_MANIFEST_COLUMNS
            rows = list(reader)
        assert [row[0] for row in rows] == dataset.thread_ids
        assert [row[1] for row in rows] == [dataset.thread_runs(t)[0].customer for t in dataset.thread_ids]
        family = Family(dataset)
        with httpx.Client(base_url=served.base_url, headers=HEADERS) as api:
            for thread_id, _, created_at in rows:
                thread = api.get(f"/threads/{thread_id}").json()
                assert thread == family.thread(thread_id)
                assert (
                    datetime.fromisoformat(created_at.replace("Z", "+00:00")).timestamp()
                    == thread["created_at"]
                )
    finally:
        code, _, err = served.stop(signal.SIGTERM)
    assert code == 0, err
