"""The emulator over plain HTTP: errors, pagination, faults, rate limit, data, lifecycle."""

from __future__ import annotations

import asyncio
import csv
import itertools
import json
import math
import os
import re
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

import duckdb_openai.emulator as emulator_package
from duckdb_openai.emulator import Dataset, DatasetConfig, Emulator, RunInfo
from duckdb_openai.emulator.data import EDGE_STEP_COUNTS, INCLUDE_FILE_SEARCH_CONTENT, RUN_STEP_KEYS
from duckdb_openai.emulator.live import LiveConfig
from duckdb_openai.emulator.paging import select_page
from duckdb_openai.emulator.ratelimit import format_duration
from duckdb_openai.emulator.stats import ENDPOINTS

AUTH = {"Authorization": "Bearer sk-test-0123456789abcdef"}
BETA = {"OpenAI-Beta": "assistants=v2"}
HEADERS = {**AUTH, **BETA}
INCLUDE = {"include[]": INCLUDE_FILE_SEARCH_CONTENT}
EmulatorFactory = Callable[..., Emulator]
DURATION = re.compile(r"^(\d+h)?(\d+m)?(\d+(\.\d+)?s|\d+ms)$")


@pytest.fixture(scope="session")
def api_session(emulator: Emulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emulator.base_url, headers=HEADERS) as client:
        yield client


@pytest.fixture(scope="session")
def bare_session(emulator: Emulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emulator.root_url) as client:
        yield client


@pytest.fixture
def api(emulator: Emulator, api_session: httpx.Client) -> httpx.Client:
    """An authenticated client with the beta header, on fresh counters."""
    emulator.reset()
    return api_session


@pytest.fixture
def bare(emulator: Emulator, bare_session: httpx.Client) -> httpx.Client:
    """A client without credentials or beta header, rooted at the server (no /v1)."""
    emulator.reset()
    return bare_session


def steps_url(run: RunInfo, step_id: str | None = None) -> str:
    url = f"/threads/{run.thread_id}/runs/{run.run_id}/steps"
    return url if step_id is None else f"{url}/{step_id}"


def assert_openai_error(response: httpx.Response, status: int, *, param: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str) and error["message"]
    assert error["param"] == param
    return dict(error)


def test_public_surface() -> None:
    assert sorted(emulator_package.__all__) == [
        "Attribution",
        "Dataset",
        "DatasetConfig",
        "Emulator",
        "EmulatorError",
        "EmulatorSettings",
        "Family",
        "Organization",
        "RunInfo",
    ]


# -- errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("0", "integer_below_min_value"),
        ("-1", "integer_below_min_value"),
        ("101", "integer_above_max_value"),
        ("abc", "invalid_type"),
        ("1.5", "invalid_type"),
        ("", "invalid_type"),
    ],
)
def test_limit_out_of_range_or_not_an_integer(
    api: httpx.Client, emulator: Emulator, value: str, code: str
) -> None:
    run = emulator.dataset.find_run(step_count=101)
    error = assert_openai_error(api.get(steps_url(run), params={"limit": value}), 400, param="limit")
    assert error["type"] == "invalid_request_error"
    assert error["code"] == code


@pytest.mark.parametrize("limit", ["1", "100"])
def test_limit_bounds_are_inclusive(api: httpx.Client, emulator: Emulator, limit: str) -> None:
    run = emulator.dataset.find_run(step_count=101)
    response = api.get(steps_url(run), params={"limit": limit})
    assert response.status_code == 200
    assert len(response.json()["data"]) == int(limit)


@pytest.mark.parametrize("order", ["ASC", "ascending", "", "random"])
def test_bad_order(api: httpx.Client, emulator: Emulator, order: str) -> None:
    run = emulator.dataset.find_run(step_count=1)
    error = assert_openai_error(api.get(steps_url(run), params={"order": order}), 400, param="order")
    assert repr(order) in error["message"] or f"'{order}'" in error["message"]


@pytest.mark.parametrize("cursor", ["after", "before"])
def test_unknown_cursor_is_an_error_naming_it(api: httpx.Client, emulator: Emulator, cursor: str) -> None:
    run = emulator.dataset.find_run(step_count=100)
    other = emulator.dataset.find_run(step_count=101)
    foreign_step = emulator.dataset.steps(other.thread_id, other.run_id)[0]["id"]
    for step_id in ("step_doesnotexist", foreign_step):
        response = api.get(steps_url(run), params={cursor: step_id})
        error = assert_openai_error(response, 400, param=cursor)
        assert error["type"] == "invalid_request_error"
        assert step_id in error["message"]


def test_bad_include_on_list_and_retrieve(api: httpx.Client, emulator: Emulator) -> None:
    run = emulator.dataset.find_run(step_count=1)
    step_id = emulator.dataset.steps(run.thread_id, run.run_id)[0]["id"]
    for url in (steps_url(run), steps_url(run, step_id)):
        response = api.get(url, params=[("include[]", INCLUDE_FILE_SEARCH_CONTENT), ("include[]", "usage")])
        error = assert_openai_error(response, 400, param="include[1]")
        assert "'usage'" in error["message"]


@pytest.mark.parametrize("beta", [None, "", "assistants=v1", "realtime=v1"])
def test_missing_or_wrong_beta_header(bare: httpx.Client, emulator: Emulator, beta: str | None) -> None:
    run = emulator.dataset.find_run(step_count=1)
    headers = dict(AUTH) if beta is None else {**AUTH, "OpenAI-Beta": beta}
    response = bare.get("/v1" + steps_url(run), headers=headers)
    error = assert_openai_error(response, 400)
    assert error["code"] == "invalid_beta"
    assert "OpenAI-Beta: assistants=v2" in error["message"]


def test_beta_header_may_list_several_betas(bare: httpx.Client, emulator: Emulator) -> None:
    run = emulator.dataset.find_run(step_count=1)
    headers = {**AUTH, "OpenAI-Beta": "realtime=v1, assistants=v2"}
    assert bare.get("/v1" + steps_url(run), headers=headers).status_code == 200


@pytest.mark.parametrize("authorization", [None, "", "Bearer", "Basic dXNlcjpwYXNz"])
def test_missing_key(bare: httpx.Client, emulator: Emulator, authorization: str | None) -> None:
    run = emulator.dataset.find_run(step_count=1)
    headers = dict(BETA) if authorization is None else {**BETA, "Authorization": authorization}
    error = assert_openai_error(bare.get("/v1" + steps_url(run), headers=headers), 401)
    assert error["type"] == "invalid_request_error"
    assert error["message"].startswith("You didn't provide an API key")


def test_wrong_key_is_masked(emulator_factory: EmulatorFactory) -> None:
    emu = emulator_factory(api_key="sk-right-key-0000000000")
    run = emu.dataset.find_run(step_count=1)
    wrong = "sk-abcdefghijklmnopqrstuvwxyz"
    headers = {**BETA, "Authorization": f"Bearer {wrong}"}
    error = assert_openai_error(httpx.get(emu.base_url + steps_url(run), headers=headers), 401)
    assert error["code"] == "invalid_api_key"
    assert error["message"].startswith("Incorrect API key provided: sk-ab")
    assert wrong not in error["message"] and "wxyz" in error["message"]
    ok = {**BETA, "Authorization": "Bearer sk-right-key-0000000000"}
    assert httpx.get(emu.base_url + steps_url(run), headers=ok).status_code == 200
    assert "sk-right-key" not in json.dumps(emu.requests())


#: Every control request: method, path and body.
CONTROLS = [
    ("GET", "/_emulator/stats", None),
    ("GET", "/_emulator/requests", None),
    ("GET", "/_emulator/faults", None),
    ("POST", "/_emulator/faults", {"kind": "500", "count": 1, "match": "/nowhere"}),
    ("POST", "/_emulator/reset", None),
    ("GET", "/_emulator/live", None),
    ("POST", "/_emulator/live", {"advance_s": 1}),
]


@pytest.fixture(scope="module")
def keyed() -> Iterator[Emulator]:
    """An emulator that requires a key, with a live run so every control has something to show."""
    with Emulator(
        api_key="sk-control-key-0000000000",
        dataset=DatasetConfig(threads=2),
        live=LiveConfig(runs=1, step_seconds=3600),
    ) as emu:
        yield emu


@pytest.mark.parametrize(("method", "path", "body"), CONTROLS, ids=[f"{m} {p}" for m, p, _ in CONTROLS])
def test_controls_need_the_key_the_api_needs(
    keyed: Emulator, method: str, path: str, body: dict[str, Any] | None
) -> None:
    """With --api-key the controls (the request log, faults, reset, the live clock) answer 401 without
    that key, as the API paths do, and change nothing; with it, in either header, they work."""
    keyed.reset()
    wrong = "sk-abcdefghijklmnopqrstuvwxyz"
    for headers in ({}, {"Authorization": f"Bearer {wrong}"}, {"api-key": wrong}):
        response = httpx.request(method, keyed.root_url + path, json=body, headers=headers)
        error = assert_openai_error(response, 401)
        assert wrong not in error["message"]
    key = "sk-control-key-0000000000"
    pending = httpx.get(keyed.root_url + "/_emulator/faults", headers={"api-key": key}).json()["pending"]
    assert keyed.stats()["requests"] == 0 and pending == []
    for headers in ({"Authorization": f"Bearer {key}"}, {"api-key": key}):
        response = httpx.request(method, keyed.root_url + path, json=body, headers=headers)
        assert response.status_code == 200, response.text


def test_health_stays_open_and_the_helpers_send_the_key(keyed: Emulator) -> None:
    """/_emulator/health shows nothing and answers without a key (a readiness probe); the Emulator's own
    helpers carry the key, so tests and benchmarks use them unchanged on a keyed server."""
    assert httpx.get(keyed.root_url + "/_emulator/health").json() == {"ok": True}
    keyed.reset()
    run = keyed.dataset.find_run(step_count=1)
    keyed.script_faults("503", 1, match="/steps")
    headers = {**BETA, "Authorization": "Bearer sk-control-key-0000000000"}
    assert httpx.get(keyed.base_url + steps_url(run), headers=headers).status_code == 503
    assert httpx.get(keyed.base_url + steps_url(run), headers=headers).status_code == 200
    assert keyed.stats()["requests"] == 2 and [r["status"] for r in keyed.requests()] == [503, 200]
    assert keyed.live(advance_s=1)["runs"]
    keyed.reset()
    assert keyed.stats()["requests"] == 0


def test_without_a_key_the_controls_stay_open(emulator: Emulator) -> None:
    for method, path, body in CONTROLS[:5]:
        assert httpx.request(method, emulator.root_url + path, json=body).status_code == 200, path
    emulator.reset()


def test_azure_api_key_needs_api_version(bare: httpx.Client, emulator: Emulator) -> None:
    emulator.reset()
    run = emulator.dataset.find_run(step_count=1)
    headers = {**BETA, "api-key": "azure-key-123"}
    for base in ("/openai", "/v1"):
        error = assert_openai_error(
            bare.get(base + steps_url(run), headers=headers), 400, param="api-version"
        )
        assert "api-version" in error["message"]
        response = bare.get(base + steps_url(run), headers=headers, params={"api-version": "2024-10-21"})
        assert response.status_code == 200
    log = emulator.requests()
    assert [entry["auth"] for entry in log] == ["api-key"] * 4
    assert [entry["api_version"] for entry in log] == [None, "2024-10-21", None, "2024-10-21"]


def test_azure_prefix_serves_the_same_data(bare: httpx.Client, api: httpx.Client, emulator: Emulator) -> None:
    run = emulator.dataset.find_run(step_count=101)
    azure = bare.get("/openai" + steps_url(run), headers=HEADERS, params={"limit": 100})
    assert azure.status_code == 200
    assert azure.json() == api.get(steps_url(run), params={"limit": 100}).json()


def test_not_found_thread_run_step(api: httpx.Client, emulator: Emulator) -> None:
    run = emulator.dataset.find_run(step_count=1)
    other = emulator.dataset.find_run(step_count=100)
    assert other.thread_id != run.thread_id
    step_id = emulator.dataset.steps(run.thread_id, run.run_id)[0]["id"]
    cases = [
        (f"/threads/thread_nope/runs/{run.run_id}/steps", "No thread found with id 'thread_nope'."),
        (f"/threads/{run.thread_id}/runs/run_nope/steps", "No run found with id 'run_nope'."),
        # A run that exists, but under another thread.
        (f"/threads/{run.thread_id}/runs/{other.run_id}/steps", f"No run found with id '{other.run_id}'."),
        (
            f"/threads/{other.thread_id}/runs/{run.run_id}/steps/{step_id}",
            f"No run found with id '{run.run_id}'.",
        ),
        (steps_url(run, "step_nope"), "No run step found with id 'step_nope'."),
        (steps_url(other, step_id), f"No run step found with id '{step_id}'."),
    ]
    for url, message in cases:
        error = assert_openai_error(api.get(url), 404)
        assert error["type"] == "invalid_request_error"
        assert error["message"] == message


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_other_methods_are_405(api: httpx.Client, emulator: Emulator, method: str) -> None:
    run = emulator.dataset.find_run(step_count=1)
    step_id = emulator.dataset.steps(run.thread_id, run.run_id)[0]["id"]
    for url in (steps_url(run), steps_url(run, step_id)):
        response = api.request(method, url)
        assert_openai_error(response, 405)
        assert "GET" in response.headers["allow"]


@pytest.mark.parametrize(
    "path", ["/v1/nope", "/v1/threads/t/runs/r/steps/s/extra", "/v1/threads/t/runs/r/steps/", "/"]
)
def test_unknown_paths_are_404_json(bare: httpx.Client, emulator: Emulator, path: str) -> None:
    response = bare.get(path, headers=HEADERS)
    error = assert_openai_error(response, 404)
    assert error["message"].startswith("Invalid URL (GET ")


def test_checks_run_in_the_real_apis_order(bare: httpx.Client, emulator: Emulator) -> None:
    url = "/v1/threads/thread_nope/runs/run_nope/steps"
    bad_params = {"limit": "0", "order": "sideways"}
    # auth before beta before params before existence
    assert bare.get(url, params=bad_params).status_code == 401
    assert bare.get(url, params=bad_params, headers=AUTH).json()["error"]["code"] == "invalid_beta"
    assert bare.get(url, params=bad_params, headers=HEADERS).json()["error"]["param"] == "limit"
    assert bare.get(url, params={"order": "sideways"}, headers=HEADERS).json()["error"]["param"] == "order"
    assert bare.get(url, headers=HEADERS).status_code == 404


def test_every_response_carries_request_id_and_processing_ms(
    bare: httpx.Client, api: httpx.Client, emulator: Emulator
) -> None:
    run = emulator.dataset.find_run(step_count=1)
    responses = [
        api.get(steps_url(run)),
        api.get(steps_url(run), params={"limit": "0"}),
        api.get("/nope"),
        bare.get("/v1" + steps_url(run)),
    ]
    ids = set()
    for response in responses:
        assert re.fullmatch(r"req_[0-9a-f]{32}", response.headers["x-request-id"])
        assert int(response.headers["openai-processing-ms"]) >= 0
        ids.add(response.headers["x-request-id"])
    assert len(ids) == len(responses)


# -- pagination -----------------------------------------------------------------------


def walk_after(api: httpx.Client, run: RunInfo, order: str, limit: int) -> list[str]:
    ids: list[str] = []
    params: dict[str, Any] = {"order": order, "limit": limit}
    while True:
        page = api.get(steps_url(run), params=params).json()
        assert page["object"] == "list"
        ids += [step["id"] for step in page["data"]]
        if page["data"]:
            assert (page["first_id"], page["last_id"]) == (page["data"][0]["id"], page["data"][-1]["id"])
        else:
            assert page["first_id"] is None and page["last_id"] is None
        if not page["has_more"]:
            return ids
        params["after"] = page["last_id"]


def walk_before(api: httpx.Client, run: RunInfo, order: str, limit: int, start: str) -> list[str]:
    """Pages before ``start`` (exclusive), backwards; returns them in the requested order."""
    ids: list[str] = []
    cursor = start
    while True:
        page = api.get(steps_url(run), params={"order": order, "limit": limit, "before": cursor}).json()
        ids = [step["id"] for step in page["data"]] + ids
        if not page["has_more"]:
            return ids
        cursor = page["first_id"]


@pytest.mark.parametrize("count", [0, 1, 100, 101, 200])
@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize("limit", [1, 20, 100])
def test_after_pagination_is_exact(
    api: httpx.Client, emulator: Emulator, count: int, order: str, limit: int
) -> None:
    run = emulator.dataset.find_run(step_count=count)
    expected = [step["id"] for step in emulator.dataset.steps(run.thread_id, run.run_id)]
    if order == "desc":
        expected.reverse()
    emulator.reset()
    assert walk_after(api, run, order, limit) == expected
    assert emulator.stats()["by_endpoint"]["list"] == {"200": max(1, math.ceil(count / limit))}


@pytest.mark.parametrize("count", [1, 100, 101, 200])
@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize("limit", [20, 100])
def test_before_pagination_is_exact(
    api: httpx.Client, emulator: Emulator, count: int, order: str, limit: int
) -> None:
    run = emulator.dataset.find_run(step_count=count)
    expected = [step["id"] for step in emulator.dataset.steps(run.thread_id, run.run_id)]
    if order == "desc":
        expected.reverse()
    emulator.reset()
    assert walk_before(api, run, order, limit, start=expected[-1]) == expected[:-1]
    assert emulator.stats()["by_endpoint"]["list"] == {"200": max(1, math.ceil((count - 1) / limit))}


def test_before_page_is_the_limit_nearest_the_cursor(api: httpx.Client, emulator: Emulator) -> None:
    run = emulator.dataset.find_run(step_count=101)
    ids = [step["id"] for step in emulator.dataset.steps(run.thread_id, run.run_id)]
    page = api.get(steps_url(run), params={"order": "asc", "limit": 3, "before": ids[50]}).json()
    assert [step["id"] for step in page["data"]] == ids[47:50]
    assert page["has_more"] is True
    page = api.get(steps_url(run), params={"order": "desc", "limit": 3, "before": ids[50]}).json()
    assert [step["id"] for step in page["data"]] == [ids[53], ids[52], ids[51]]
    page = api.get(steps_url(run), params={"order": "asc", "limit": 3, "before": ids[2]}).json()
    assert [step["id"] for step in page["data"]] == ids[0:2]
    assert page["has_more"] is False


def test_after_and_before_combined(api: httpx.Client, emulator: Emulator) -> None:
    run = emulator.dataset.find_run(step_count=101)
    ids = [step["id"] for step in emulator.dataset.steps(run.thread_id, run.run_id)]

    def page(**params: Any) -> tuple[list[str], bool]:
        body = api.get(steps_url(run), params=params).json()
        return [step["id"] for step in body["data"]], body["has_more"]

    assert page(order="asc", after=ids[10], before=ids[15], limit=100) == (ids[11:15], False)
    assert page(order="asc", after=ids[10], before=ids[15], limit=2) == (ids[13:15], True)
    assert page(order="desc", after=ids[15], before=ids[10], limit=100) == (ids[14:10:-1], False)
    assert page(order="asc", after=ids[15], before=ids[10]) == ([], False)
    assert page(order="asc", after=ids[10], before=ids[11]) == ([], False)


@pytest.mark.parametrize("count", [1, 100, 101, 200])
def test_has_more_is_exact_at_the_boundary(api: httpx.Client, emulator: Emulator, count: int) -> None:
    run = emulator.dataset.find_run(step_count=count)
    for limit in {count, count - 1, 100}:
        if not 1 <= limit <= 100:
            continue
        body = api.get(steps_url(run), params={"limit": limit}).json()
        assert len(body["data"]) == min(limit, count)
        assert body["has_more"] is (count > limit)


def test_after_the_last_step_is_an_empty_page(api: httpx.Client, emulator: Emulator) -> None:
    run = emulator.dataset.find_run(step_count=100)
    last = emulator.dataset.steps(run.thread_id, run.run_id)[-1]["id"]
    body = api.get(steps_url(run), params={"order": "asc", "after": last}).json()
    assert body == {"object": "list", "data": [], "first_id": None, "last_id": None, "has_more": False}


def test_default_page_is_twenty_newest_first(api: httpx.Client, emulator: Emulator) -> None:
    run = emulator.dataset.find_run(step_count=101)
    steps = emulator.dataset.steps(run.thread_id, run.run_id)
    body = api.get(steps_url(run)).json()
    assert body["data"] == steps[::-1][:20]
    assert body["has_more"] is True


def test_select_page_matches_slicing_for_every_window() -> None:
    count = 7
    for order in ("asc", "desc"):
        view = list(range(count)) if order == "asc" else list(range(count))[::-1]
        for limit in (1, 2, 3, 10):
            for after in [None, *range(count)]:
                for before in [None, *range(count)]:
                    low = view.index(after) + 1 if after is not None else 0
                    high = view.index(before) if before is not None else count
                    window = view[low:high] if high > low else []
                    expected = window[-limit:] if before is not None else window[:limit]
                    page = select_page(count, order=order, limit=limit, after=after, before=before)
                    assert page.indices == expected
                    assert page.has_more is (len(window) > limit)


# -- include and the data itself ------------------------------------------------------


def find_step_with_file_search_results(dataset: Dataset) -> tuple[RunInfo, int]:
    for run in dataset.runs:
        if run.step_count > 200:
            continue
        for position, step in enumerate(dataset.steps(run.thread_id, run.run_id, include_content=True)):
            calls = step["step_details"].get("tool_calls", [])
            if any(call["type"] == "file_search" and call["file_search"]["results"] for call in calls):
                return run, position
    raise AssertionError("no file search results in the dataset")


def search_results(step: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        result
        for call in step["step_details"]["tool_calls"]
        if call["type"] == "file_search"
        for result in call["file_search"]["results"]
    ]


def test_include_adds_file_search_content(api: httpx.Client, emulator: Emulator) -> None:
    run, position = find_step_with_file_search_results(emulator.dataset)
    step_id = emulator.dataset.steps(run.thread_id, run.run_id)[position]["id"]
    plain = api.get(steps_url(run, step_id)).json()
    full = api.get(steps_url(run, step_id), params=INCLUDE).json()
    assert all("content" not in result for result in search_results(plain))
    assert all(result["content"][0]["type"] == "text" for result in search_results(full))
    assert all(isinstance(result["content"][0]["text"], str) for result in search_results(full))
    assert plain == emulator.dataset.step(run.thread_id, run.run_id, step_id)
    assert full == emulator.dataset.step(run.thread_id, run.run_id, step_id, include_content=True)
    listed = api.get(steps_url(run), params={"order": "asc", "limit": 100, **INCLUDE}).json()["data"]
    assert listed == emulator.dataset.steps(run.thread_id, run.run_id, include_content=True)[:100]


def test_retrieve_equals_the_listed_step(api: httpx.Client, emulator: Emulator) -> None:
    run = emulator.dataset.find_run(step_count=101)
    listed = api.get(steps_url(run), params={"limit": 100}).json()["data"]
    for step in listed[:10]:
        assert api.get(steps_url(run, step["id"])).json() == step


def test_steps_look_like_the_real_api(emulator: Emulator) -> None:
    id_shape = {
        "id": r"step_[A-Za-z0-9]{24}",
        "run_id": r"run_[A-Za-z0-9]{24}",
        "thread_id": r"thread_[A-Za-z0-9]{24}",
        "assistant_id": r"asst_[A-Za-z0-9]{24}",
    }
    seen_statuses, seen_tools, seen_outputs, metadata_kinds = set(), set(), set(), set()
    multi_call_steps = ties = 0
    for run in emulator.dataset.runs:
        if run.step_count > 200:
            continue
        steps = emulator.dataset.steps(run.thread_id, run.run_id, include_content=True)
        assert len(steps) == run.step_count
        created = [step["created_at"] for step in steps]
        assert created == sorted(created)
        ties += sum(a == b for a, b in itertools.pairwise(created))  # position, not time, orders ties
        for step in steps:
            assert list(step) == list(RUN_STEP_KEYS)
            for key, pattern in id_shape.items():
                assert re.fullmatch(pattern, step[key]), (key, step[key])
            assert (step["run_id"], step["thread_id"], step["assistant_id"]) == (
                run.run_id,
                run.thread_id,
                run.assistant_id,
            )
            assert step["object"] == "thread.run.step"
            status = step["status"]
            seen_statuses.add(status)
            ends = {key: step[key] for key in ("cancelled_at", "completed_at", "expired_at", "failed_at")}
            if status == "in_progress":
                assert step["usage"] is None and set(ends.values()) == {None}
            else:
                assert step["usage"]["total_tokens"] == (
                    step["usage"]["prompt_tokens"] + step["usage"]["completion_tokens"]
                )
                assert {k for k, v in ends.items() if v is not None} == {f"{status}_at"}
                assert ends[f"{status}_at"] >= step["created_at"]
            assert (step["last_error"] is not None) is (status == "failed")
            if step["last_error"]:
                assert step["last_error"]["code"] in ("server_error", "rate_limit_exceeded")
            metadata_kinds.add(bool(step["metadata"]))
            details = step["step_details"]
            assert details["type"] == step["type"]
            if step["type"] == "message_creation":
                assert re.fullmatch(r"msg_[A-Za-z0-9]{24}", details["message_creation"]["message_id"])
                continue
            multi_call_steps += len(details["tool_calls"]) > 1
            for call in details["tool_calls"]:
                seen_tools.add(call["type"])
                assert re.fullmatch(r"call_[A-Za-z0-9]{24}", call["id"])
                if call["type"] == "function":
                    json.loads(call["function"]["arguments"])
                    seen_outputs.add(call["function"]["output"] is None)
                elif call["type"] == "code_interpreter":
                    for output in call["code_interpreter"]["outputs"]:
                        assert output["type"] in ("logs", "image")
                        if output["type"] == "image":
                            assert re.fullmatch(r"file-[A-Za-z0-9]{24}", output["image"]["file_id"])
                else:
                    options = call["file_search"]["ranking_options"]
                    assert options["ranker"] in ("auto", "default_2024_08_21")
                    assert 0 <= options["score_threshold"] <= 1
                    for result in call["file_search"]["results"]:
                        assert set(result) == {"file_id", "file_name", "score", "content"}
                        assert 0 <= result["score"] <= 1
    assert seen_statuses == {"completed", "failed", "cancelled", "expired", "in_progress"}
    assert seen_tools == {"function", "code_interpreter", "file_search"}
    assert seen_outputs == {True, False}
    assert metadata_kinds == {True, False}
    assert multi_call_steps > 0 and ties > 0


def test_default_population_has_every_edge_run() -> None:
    dataset = Dataset(seed=7)
    counts = [run.step_count for run in dataset.runs]
    for count in EDGE_STEP_COUNTS:
        assert dataset.find_run(step_count=count).step_count == count
    assert len(dataset.runs) == 60 * 4 + len(EDGE_STEP_COUNTS)
    assert len(dataset.thread_ids) == 60
    regular = sorted(counts)[: 60 * 4]
    assert 8 <= sum(regular) / len(regular) <= 16
    long_run = dataset.find_run(step_count=10_000)
    assert len(dataset.steps(long_run.thread_id, long_run.run_id)) == 10_000
    with pytest.raises(LookupError):
        dataset.find_run(step_count=12_345)


def test_dataset_is_sized_by_config_and_lazy() -> None:
    small = Dataset(seed=1, config=DatasetConfig(threads=3, runs_per_thread=2, mean_steps=5, edge_runs=False))
    assert len(small.runs) == 6 and len(small.thread_ids) == 3
    big = Dataset(seed=1, config=DatasetConfig(threads=5_000, runs_per_thread=4))
    assert len(big.runs) == 20_006
    assert not any(big.is_cached(run) for run in big.runs[:100])
    run = big.runs[12_345]
    assert len(big.steps(run.thread_id, run.run_id)) == run.step_count
    assert big.is_cached(run)


def test_same_seed_same_data_other_seed_other_data() -> None:
    first, second, other = Dataset(seed=11), Dataset(seed=11), Dataset(seed=12)
    assert first.runs == second.runs
    assert [run.run_id for run in first.runs] != [run.run_id for run in other.runs]
    # Generation order must not matter: read runs in opposite orders.
    picks = [first.runs[i] for i in (0, 17, 42, -1, -3)]
    expected = [first.steps(run.thread_id, run.run_id, include_content=True) for run in picks]
    actual = [second.steps(run.thread_id, run.run_id, include_content=True) for run in reversed(picks)]
    assert expected == actual[::-1]


def test_manifest(tmp_path: Path) -> None:
    dataset = Dataset(seed=7)
    path = dataset.write_manifest(tmp_path / "runs.csv")
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["thread_id", "run_id", "customer", "app_version", "started_at"]
    assert [(row["thread_id"], row["run_id"]) for row in rows] == [
        (run.thread_id, run.run_id) for run in dataset.runs
    ]
    assert 3 <= len({row["customer"] for row in rows}) <= 10
    for row, run in zip(rows, dataset.runs, strict=True):
        started = datetime.fromisoformat(row["started_at"].replace("Z", "+00:00"))
        assert int(started.timestamp()) == run.started_at
        assert row["app_version"] == run.app_version and row["customer"] == run.customer


# -- faults ---------------------------------------------------------------------------

RETRYABLE = {408, 409, 429, 500, 502, 503}


def get_with_retries(client: httpx.Client, url: str, attempts: int = 6, **kwargs: Any) -> httpx.Response:
    for _ in range(attempts):
        try:
            response = client.get(url, **kwargs)
        except httpx.TransportError:
            continue
        if response.status_code not in RETRYABLE:
            return response
    raise AssertionError("no success after retries")


@pytest.mark.parametrize("kind", ["500", "502", "503", "408", "409", "429", "drop"])
@pytest.mark.parametrize("failures", [1, 3])
def test_scripted_faults_then_the_right_page(
    api: httpx.Client, emulator: Emulator, kind: str, failures: int
) -> None:
    run = emulator.dataset.find_run(step_count=101)
    params = {
        "order": "asc",
        "limit": 50,
        "after": emulator.dataset.steps(run.thread_id, run.run_id)[9]["id"],
    }
    expected = api.get(steps_url(run), params=params).json()
    emulator.reset()
    emulator.script_faults(kind, failures)
    response = get_with_retries(api, steps_url(run), params=params)
    assert response.status_code == 200
    assert response.json() == expected
    stats = emulator.stats()
    assert stats["requests"] == failures + 1
    assert stats["faults"] == {kind: failures}
    failed_as = "drop" if kind == "drop" else kind
    assert stats["by_endpoint"]["list"] == {failed_as: failures, "200": 1}


@pytest.mark.parametrize("kind", ["500", "502", "503", "408", "409"])
def test_error_faults_are_openai_shaped(api: httpx.Client, emulator: Emulator, kind: str) -> None:
    emulator.script_faults(kind)
    error = assert_openai_error(api.get("/threads/t/runs/r/steps"), int(kind))
    assert error["type"] == "server_error"


def test_scripted_429_headers(api: httpx.Client, emulator: Emulator) -> None:
    run = emulator.dataset.find_run(step_count=1)
    emulator.script_faults("429", 1, retry_after_ms=75)
    response = api.get(steps_url(run))
    error = assert_openai_error(response, 429)
    assert (error["type"], error["code"]) == ("requests", "rate_limit_exceeded")
    assert response.headers["retry-after-ms"] == "75"
    assert int(response.headers["retry-after"]) >= 1
    assert response.headers["x-ratelimit-remaining-requests"] == "0"
    assert response.headers["x-ratelimit-reset-requests"] == "75ms"
    assert api.get(steps_url(run)).status_code == 200


def test_drop_cuts_the_connection_mid_body(api: httpx.Client, emulator: Emulator) -> None:
    run = emulator.dataset.find_run(step_count=101)
    emulator.script_faults("drop", 1)
    with pytest.raises(httpx.RemoteProtocolError, match=r"incomplete|without sending complete"):
        api.get(steps_url(run), params={"limit": 100})
    assert emulator.requests(1)[0]["status"] == "drop"


def test_slow_fault_returns_the_right_data(api: httpx.Client, emulator: Emulator) -> None:
    run = emulator.dataset.find_run(step_count=101)
    expected = api.get(steps_url(run)).json()
    emulator.script_faults("slow", 2, slow_ms=20)
    assert [api.get(steps_url(run)).json() for _ in range(3)] == [expected] * 3
    assert emulator.stats()["faults"] == {"slow": 2}
    assert [entry["fault"] for entry in emulator.requests(3)] == ["slow", "slow", None]


def test_fault_match_picks_requests_by_path(api: httpx.Client, emulator: Emulator) -> None:
    run = emulator.dataset.find_run(step_count=1)
    step_id = emulator.dataset.steps(run.thread_id, run.run_id)[0]["id"]
    emulator.script_faults("503", 1, match="/steps/")
    assert api.get(steps_url(run)).status_code == 200
    assert api.get(steps_url(run, step_id)).status_code == 503
    assert api.get(steps_url(run, step_id)).status_code == 200


def test_fault_script_validation(emulator: Emulator) -> None:
    with pytest.raises(ValueError, match="kind"):
        emulator.script_faults("418")
    with pytest.raises(ValueError, match="count"):
        emulator.script_faults("500", 0)
    response = httpx.post(emulator.root_url + "/_emulator/faults", content=b"not json")
    assert response.status_code == 400


def test_reset_clears_counters_log_and_scripted_faults(api: httpx.Client, emulator: Emulator) -> None:
    run = emulator.dataset.find_run(step_count=1)
    emulator.script_faults("500", 5)
    assert api.get(steps_url(run)).status_code == 500
    emulator.reset()
    assert emulator.stats() == {
        "requests": 0,
        "by_endpoint": {name: {} for name in ENDPOINTS},
        "faults": {},
        "max_in_flight": 0,
        "in_flight": 0,
    }
    assert emulator.requests() == []
    assert api.get(steps_url(run)).status_code == 200


def test_random_faults_are_seeded_and_never_corrupt_data(emulator_factory: EmulatorFactory) -> None:
    sequences = []
    for _ in range(2):
        emu = emulator_factory(seed=3, fault_rate=0.4, slow_ms=5)
        run = emu.dataset.find_run(step_count=200)
        expected = emu.dataset.steps(run.thread_id, run.run_id)
        with httpx.Client(base_url=emu.base_url, headers=HEADERS) as client:
            ids: list[dict[str, Any]] = []
            params: dict[str, Any] = {"order": "asc", "limit": 7}
            while True:
                page = get_with_retries(client, steps_url(run), attempts=30, params=params).json()
                ids += page["data"]
                if not page["has_more"]:
                    break
                params["after"] = page["last_id"]
            # Control endpoints are never faulted.
            for _ in range(20):
                emu.stats()
        assert ids == expected
        log = emu.requests()
        sequences.append([entry["fault"] for entry in log])
        assert set(emu.stats()["faults"]) <= {"500", "502", "503", "drop", "slow"}
    assert sequences[0] == sequences[1]
    assert len({kind for kind in sequences[0] if kind}) >= 3


# -- rate limit, latency, stats, request log ------------------------------------------


def test_rate_limit_answers_429_with_headers(emulator_factory: EmulatorFactory) -> None:
    emu = emulator_factory(rate_limit=3)
    run = emu.dataset.find_run(step_count=1)
    with httpx.Client(base_url=emu.base_url, headers=HEADERS) as client:
        responses = [client.get(steps_url(run)) for _ in range(10)]
    statuses = [response.status_code for response in responses]
    assert statuses[:3] == [200, 200, 200]
    assert 429 in statuses
    first_ok, limited = responses[0], responses[statuses.index(429)]
    assert first_ok.headers["x-ratelimit-limit-requests"] == "3"
    assert first_ok.headers["x-ratelimit-remaining-requests"] == "2"
    assert DURATION.match(first_ok.headers["x-ratelimit-reset-requests"])
    error = assert_openai_error(limited, 429)
    assert (error["type"], error["code"]) == ("requests", "rate_limit_exceeded")
    assert int(limited.headers["retry-after"]) >= 1
    assert int(limited.headers["retry-after-ms"]) >= 1
    assert limited.headers["x-ratelimit-remaining-requests"] == "0"
    assert DURATION.match(limited.headers["x-ratelimit-reset-requests"])


def test_ratelimit_headers_without_the_knob(api: httpx.Client, emulator: Emulator) -> None:
    run = emulator.dataset.find_run(step_count=1)
    headers = api.get(steps_url(run)).headers
    assert int(headers["x-ratelimit-limit-requests"]) >= 10_000
    assert int(headers["x-ratelimit-remaining-requests"]) > 0
    assert DURATION.match(headers["x-ratelimit-reset-requests"])


def test_duration_format() -> None:
    assert [format_duration(s) for s in (0.0004, 0.12, 1.0, 2.5, 59.0, 360.0, 3723.0)] == [
        "1ms",
        "120ms",
        "1s",
        "2.5s",
        "59s",
        "6m0s",
        "1h2m3s",
    ]


def test_latency_is_asynchronous(emulator_factory: EmulatorFactory) -> None:
    emu = emulator_factory(latency_ms=800)
    run = emu.dataset.find_run(step_count=1)
    concurrent = 16

    async def fire() -> list[int]:
        limits = httpx.Limits(max_connections=concurrent)
        async with httpx.AsyncClient(base_url=emu.base_url, headers=HEADERS, limits=limits) as client:
            responses = await asyncio.gather(*(client.get(steps_url(run)) for _ in range(concurrent)))
        return [response.status_code for response in responses]

    assert asyncio.run(fire()) == [200] * concurrent
    stats = emu.stats()
    assert stats["max_in_flight"] == concurrent
    assert stats["in_flight"] == 0


def test_request_log_records_headers_but_never_the_key(api: httpx.Client, emulator: Emulator) -> None:
    run = emulator.dataset.find_run(step_count=1)
    extra = {"OpenAI-Organization": "org-123", "OpenAI-Project": "proj_abc", "User-Agent": "tests/1.0"}
    api.get(steps_url(run), params=[("limit", "5"), *INCLUDE.items()], headers=extra)
    api.get("/nope")
    first, second = emulator.requests(2)
    assert first["method"] == "GET" and first["path"] == "/v1" + steps_url(run)
    assert first["query"] == {"limit": ["5"], "include[]": [INCLUDE_FILE_SEARCH_CONTENT]}
    assert (first["status"], first["endpoint"], first["auth"]) == (200, "list", "bearer")
    assert first["headers"] == {
        "openai-beta": "assistants=v2",
        "openai-organization": "org-123",
        "openai-project": "proj_abc",
        "user-agent": "tests/1.0",
    }
    assert (second["status"], second["endpoint"]) == (404, "other")
    assert "sk-test-0123456789abcdef" not in json.dumps(emulator.requests())
    assert len(emulator.requests(1)) == 1


def test_stats_count_by_endpoint_and_status(api: httpx.Client, emulator: Emulator) -> None:
    run = emulator.dataset.find_run(step_count=1)
    step_id = emulator.dataset.steps(run.thread_id, run.run_id)[0]["id"]
    api.get(steps_url(run))
    api.get(steps_url(run), params={"limit": "0"})
    api.get(steps_url(run, step_id))
    api.get("/nope")
    emulator.stats()  # control requests are not counted
    stats = emulator.stats()
    assert stats["requests"] == 4
    assert stats["by_endpoint"] == {
        **{name: {} for name in ENDPOINTS},
        "list": {"200": 1, "400": 1},
        "retrieve": {"200": 1},
        "other": {"404": 1},
    }


# -- lifecycle ------------------------------------------------------------------------


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def port_is_listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize("mode", ["thread", "process"])
def test_stop_leaves_nothing_behind(mode: str) -> None:
    threads_before = set(threading.enumerate())
    fds_before = open_fds()
    emu = Emulator(mode=mode, dataset=DatasetConfig(threads=2, runs_per_thread=2))  # type: ignore[arg-type]
    with emu:
        port = emu.port
        run = emu.dataset.find_run(step_count=101)  # generated off the event loop in a worker thread
        response = httpx.get(emu.base_url + steps_url(run), headers=HEADERS)
        assert response.status_code == 200
        assert port_is_listening(port)
        process = emu._process
    assert not port_is_listening(port)
    assert set(threading.enumerate()) == threads_before
    assert open_fds() <= fds_before
    if process is not None:
        assert process.returncode == 0
    emu.stop()  # idempotent


def test_emulator_refuses_use_before_start() -> None:
    emu = Emulator()
    with pytest.raises(RuntimeError, match="not running"):
        _ = emu.base_url
    with pytest.raises(RuntimeError, match="not running"):
        emu.stats()
