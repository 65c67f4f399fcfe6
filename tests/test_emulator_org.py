"""The organization endpoints over real HTTP: shapes (against the spec), paging, errors, keys, and the
ledger's sums, reconciled with the emulator's own stored responses and chat completions."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from duckdb_openai.emulator import Attribution, Emulator, Organization
from duckdb_openai.emulator.cli import build_parser, main, settings_from_args
from duckdb_openai.emulator.settings import ADMIN_KEY_ENV, EmulatorSettings
from duckdb_openai.emulator.stats import ENDPOINTS
from tests.conftest import EmulatorFactory

ADMIN_KEY = "sk-admin-0123456789abcdef"
PROJECT_KEY = "sk-proj-0123456789abcdef"
CONTRACT = Path(__file__).parent / "contracts" / "admin.yaml"
DAY = 86_400
#: The session's clock: 2025-04-01T00:00:00Z, after the population's last day (2025-03-29).
NOW = 1_743_465_600
USAGE = (
    "completions",
    "embeddings",
    "moderations",
    "images",
    "audio_speeches",
    "audio_transcriptions",
    "vector_stores",
    "code_interpreter_sessions",
    "file_search_calls",
    "web_search_calls",
)
#: Each usage endpoint's group_by values, as the spec lists them.
GROUPS = {
    "completions": ("project_id", "user_id", "api_key_id", "model", "batch", "service_tier"),
    "images": ("project_id", "user_id", "api_key_id", "model", "size", "source"),
    "vector_stores": ("project_id",),
    "code_interpreter_sessions": ("project_id",),
    "file_search_calls": ("project_id", "user_id", "api_key_id", "vector_store_id"),
    "web_search_calls": ("project_id", "user_id", "api_key_id", "model", "context_level"),
    "costs": ("project_id", "line_item", "api_key_id"),
}
PAGE_TOKEN = re.compile(r"^page_[A-Za-z0-9+/]+=*$")

#: The price table of the emulator's documentation (organization_usage.py), in USD.
PER_MILLION = {
    "gpt-4o": ("2.50", "1.25", "10.00"),
    "gpt-4o-mini": ("0.15", "0.075", "0.60"),
    "gpt-4.1": ("2.00", "0.50", "8.00"),
    "o4-mini": ("1.10", "0.275", "4.40"),
    "gpt-5": ("1.25", "0.125", "10.00"),
    "text-embedding-3-small": ("0.02",),
    "text-embedding-3-large": ("0.13",),
    "tts-1": ("15.00",),
    "tts-1-hd": ("30.00",),
}
PER_UNIT = {
    "gpt-image-1": "0.042",
    "dall-e-3": "0.04",
    "dall-e-2": "0.02",
    "whisper-1": "0.0001",
    "gpt-4o-transcribe": "0.0001",
    "gpt-4o-mini-transcribe": "0.00005",
    "Vector store storage": "0.0000000001",  # per byte-day: 0.10 per 10^9 bytes
    "Code interpreter sessions": "0.03",
    "File search tool calls": "0.0025",
    "Web search tool calls": "0.01",
}


# -- fixtures and helpers ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def org_emu() -> Iterator[Emulator]:
    """One emulator with both keys set, its clock fixed after the population."""
    with Emulator(seed=7, admin_key=ADMIN_KEY, api_key=PROJECT_KEY, now=NOW) as emu:
        yield emu


@pytest.fixture(scope="module")
def admin(org_emu: Emulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=org_emu.organization_url, headers=bearer(ADMIN_KEY), timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def project(org_emu: Emulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=org_emu.base_url, headers=bearer(PROJECT_KEY), timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def org(org_emu: Emulator) -> Organization:
    return org_emu.organization


@pytest.fixture(scope="module")
def span(org: Organization) -> tuple[int, int]:
    """[first day, day after the last) of the population, in Unix seconds."""
    return org.first_day, org.last_day + DAY


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@cache
def spec() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(CONTRACT.read_text(encoding="utf-8"))
    return loaded


@cache
def validator(path: str) -> jsonschema.Draft202012Validator:
    """The validator of the 200 answer of GET ``path`` (a path of the spec), with its $refs resolved
    within admin.yaml."""
    schema = spec()["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    registry: Registry[Any] = Registry().with_resource(
        "urn:admin", Resource.from_contents(spec(), default_specification=DRAFT202012)
    )
    return jsonschema.Draft202012Validator({"$ref": "urn:admin#" + schema["$ref"][1:]}, registry=registry)


@cache
def component_of(result_object: str) -> set[str]:
    """The properties of the spec component whose ``object`` is ``result_object``."""
    for component in spec()["components"]["schemas"].values():
        enum = component.get("properties", {}).get("object", {}).get("enum")
        if enum == [result_object]:
            return set(component["properties"])
    raise AssertionError(f"no component has object {result_object!r}")


def walk(client: httpx.Client, path: str, params: dict[str, Any]) -> tuple[list[dict[str, Any]], list[int]]:
    """Every bucket of a usage or costs query, following next_page; and each page's bucket count."""
    buckets: list[dict[str, Any]] = []
    sizes: list[int] = []
    page: str | None = None
    while True:
        answer = client.get(path, params={**params, **({"page": page} if page else {})})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        buckets += body["data"]
        sizes.append(len(body["data"]))
        if not body["has_more"]:
            assert body["next_page"] is None
            return buckets, sizes
        page = body["next_page"]
        assert isinstance(page, str) and PAGE_TOKEN.fullmatch(page), page


def walk_list(client: httpx.Client, path: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every object of a list, following ``after``."""
    found: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        answer = client.get(path, params={**(params or {}), **({"after": after} if after else {})})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        found += body["data"]
        if body["data"]:
            assert (body["first_id"], body["last_id"]) == (body["data"][0]["id"], body["data"][-1]["id"])
        if not body["has_more"]:
            return found
        after = body["last_id"]


def assert_error(answer: httpx.Response, status: int, param: str | None) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    error: dict[str, Any] = answer.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error" and error["message"]
    assert error["param"] == param
    return error


def day_of(timestamp: int) -> int:
    return timestamp - timestamp % DAY


def iso_day(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, tz=UTC).strftime("%Y-%m-%d")


# -- the spec's shapes -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", [*USAGE, "costs"])
def test_usage_and_costs_pages_are_the_specs(admin: httpx.Client, span: tuple[int, int], name: str) -> None:
    path = "/costs" if name == "costs" else f"/usage/{name}"
    groups = GROUPS.get(name, ("project_id", "user_id", "api_key_id", "model"))
    for group_by in ((), groups):
        answer = admin.get(path, params={"start_time": span[0], "limit": 5, "group_by": list(group_by)})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        validator(f"/organization{path}").validate(body)
        assert body["object"] == "page" and body["has_more"] is True
        assert len(body["data"]) == 5
        results = [r for bucket in body["data"] for r in bucket["results"]]
        assert results, "five days of usage hold some results"
        for result in results:
            assert set(result) == component_of(result["object"])  # every field of the component
            for dimension in groups:
                grouped = result[dimension] is not None
                # A service account's key has no user; vector storage and sessions have no key.
                if dimension in group_by and dimension not in ("user_id", "api_key_id"):
                    assert grouped, (dimension, result)
                if dimension not in group_by:
                    assert not grouped, (dimension, result)
        if not group_by:  # one result per bucket when nothing is grouped
            assert all(len(bucket["results"]) == 1 for bucket in body["data"])


def test_lists_and_objects_are_the_specs(admin: httpx.Client, org: Organization) -> None:
    projects = admin.get("/projects", params={"include_archived": "true", "limit": 100}).json()
    validator("/organization/projects").validate(projects)
    assert len(projects["data"]) == 6
    for listed in projects["data"]:
        one = admin.get(f"/projects/{listed['id']}").json()
        validator("/organization/projects/{project_id}").validate(one)
        assert one == listed
        keys = admin.get(f"/projects/{listed['id']}/api_keys", params={"limit": 100}).json()
        validator("/organization/projects/{project_id}/api_keys").validate(keys)
        assert keys["data"] and not keys["has_more"]
        if listed["archived_at"] is None:
            accounts = admin.get(f"/projects/{listed['id']}/service_accounts").json()
            validator("/organization/projects/{project_id}/service_accounts").validate(accounts)
            assert accounts["data"]
    users = admin.get("/users", params={"limit": 100}).json()
    validator("/organization/users").validate(users)
    assert len(users["data"]) == 10
    for listed in users["data"]:
        one = admin.get(f"/users/{listed['id']}").json()
        validator("/organization/users/{user_id}").validate(one)
        assert one == listed
    events = admin.get("/audit_logs", params={"limit": 100}).json()
    validator("/organization/audit_logs").validate(events)
    for event in events["data"]:
        assert event["type"] in event  # the event's own object, under the key its type names


def test_errors_are_the_specs(admin: httpx.Client) -> None:
    registry: Registry[Any] = Registry().with_resource(
        "urn:admin", Resource.from_contents(spec(), default_specification=DRAFT202012)
    )
    schema = {"$ref": "urn:admin#/components/schemas/ErrorResponse"}
    check = jsonschema.Draft202012Validator(schema, registry=registry)
    for answer in (admin.get("/usage/completions"), admin.get("/projects/proj_nope")):
        check.validate(answer.json())


# -- usage and costs paging ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "width", "hours", "limit", "default"),
    [
        ("/usage/completions", "1d", 45 * 24, None, 7),
        ("/usage/completions", "1d", 45 * 24, "1", 1),
        ("/usage/completions", "1d", 45 * 24, "31", 31),
        ("/usage/embeddings", "1h", 96, None, 24),
        ("/usage/embeddings", "1h", 96, "50", 50),
        ("/usage/web_search_calls", "1h", 200, "168", 168),
        ("/usage/completions", "1m", 24, None, 60),
        ("/usage/completions", "1m", 24, "1440", 1440),
        ("/usage/images", "1m", 2, "7", 7),
        ("/costs", "1d", 150 * 24, None, 7),
        ("/costs", "1d", 150 * 24, "180", 180),
        ("/costs", "1d", 150 * 24, "29", 29),
    ],
)
def test_walking_next_page_gives_every_bucket_once(
    admin: httpx.Client,
    org: Organization,
    span: tuple[int, int],
    path: str,
    width: str,
    hours: int,
    limit: str | None,
    default: int,
) -> None:
    seconds = {"1d": DAY, "1h": 3_600, "1m": 60}[width]
    start, end = span[0] + 13 * DAY, span[0] + 13 * DAY + hours * 3_600
    params = {"start_time": start, "end_time": end, "bucket_width": width, "group_by": ["project_id"]}
    if limit is not None:
        params["limit"] = limit
    buckets, sizes = walk(admin, path, params)
    assert [b["start_time"] for b in buckets] == list(range(start, end, seconds))
    assert all(b["end_time"] == b["start_time"] + seconds for b in buckets)
    assert sizes[:-1] == [default] * (len(sizes) - 1) and 1 <= sizes[-1] <= default
    kind = path.rsplit("/", 1)[1]
    assert buckets == org.usage(kind, start, end, width, group_by=["project_id"])  # paging changes nothing


def test_a_token_read_with_a_space_for_its_plus_is_a_400(admin: httpx.Client, span: tuple[int, int]) -> None:
    """A client that does not percent-encode the token sends '+', which a server reads as a space."""
    for offset in range(200):
        params = {"start_time": span[0] + offset * 60, "limit": 1, "bucket_width": "1m"}
        token = admin.get("/usage/completions", params=params).json()["next_page"]
        if "+" in token:
            break
    else:
        pytest.fail("no token with a '+' among 200 queries")
    assert token.endswith("=")
    raw = f"/usage/completions?start_time={params['start_time']}&limit=1&bucket_width=1m&page={token}"
    assert_error(admin.get(raw), 400, "page")
    encoded = admin.get("/usage/completions", params={**params, "page": token})  # %2B: the same token
    assert encoded.status_code == 200
    assert encoded.json()["data"][0]["start_time"] == params["start_time"] - params["start_time"] % 60 + 60


def test_altered_or_foreign_page_tokens_are_a_400(admin: httpx.Client, span: tuple[int, int]) -> None:
    params = {"start_time": span[0], "limit": 2}
    token = admin.get("/usage/completions", params=params).json()["next_page"]
    body = token[len("page_") :]
    flipped = body[:3] + ("A" if body[3] != "A" else "B") + body[4:]
    for bad in (
        "page_" + flipped,
        token[:-4] + "====",
        "nope",
        body,
        token + "A",
        "page_AAAAAGdGxdEiJdKOAAAAAGcqsYA=",
    ):
        error = assert_error(admin.get("/usage/completions", params={**params, "page": bad}), 400, "page")
        assert bad in error["message"]
    # The token of one query does not page another (here: another endpoint, another grouping).
    assert_error(admin.get("/usage/embeddings", params={**params, "page": token}), 400, "page")
    grouped = {**params, "group_by": "model", "page": token}
    assert_error(admin.get("/usage/completions", params=grouped), 400, "page")
    # A different limit is not a different query.
    assert admin.get("/usage/completions", params={**params, "limit": 5, "page": token}).status_code == 200


@pytest.mark.parametrize(
    ("path", "width", "maximum"),
    [
        ("/usage/completions", "1d", 31),
        ("/usage/completions", "1h", 168),
        ("/usage/moderations", "1m", 1440),
        ("/usage/vector_stores", "1d", 31),
        ("/costs", "1d", 180),
    ],
)
def test_limits_above_the_maximum_are_a_400(
    admin: httpx.Client, span: tuple[int, int], path: str, width: str, maximum: int
) -> None:
    params = {"start_time": span[0], "bucket_width": width}
    for limit in (maximum + 1, 0, -1):
        error = assert_error(admin.get(path, params={**params, "limit": limit}), 400, "limit")
        assert str(limit) in error["message"]
    assert_error(admin.get(path, params={**params, "limit": "x"}), 400, "limit")
    answer = admin.get(path, params={**params, "limit": maximum})
    assert answer.status_code == 200 and len(answer.json()["data"]) == maximum


@pytest.mark.parametrize(
    ("path", "params", "param"),
    [
        ("/usage/completions", {}, "start_time"),
        ("/usage/completions", {"start_time": "yesterday"}, "start_time"),
        ("/usage/completions", {"start_time": 10, "end_time": "soon"}, "end_time"),
        ("/usage/completions", {"start_time": 10, "end_time": 10}, "end_time"),
        ("/usage/completions", {"start_time": 10, "bucket_width": "2d"}, "bucket_width"),
        ("/costs", {"start_time": 10, "bucket_width": "1h"}, "bucket_width"),
        ("/usage/completions", {"start_time": 10, "group_by": ["model", "size"]}, "group_by"),
        ("/usage/vector_stores", {"start_time": 10, "group_by": "model"}, "group_by"),
        ("/usage/embeddings", {"start_time": 10, "group_by": "batch"}, "group_by"),
        ("/costs", {"start_time": 10, "group_by": "model"}, "group_by"),
        ("/usage/images", {"start_time": 10, "sizes": "huge"}, "sizes"),
        ("/usage/images", {"start_time": 10, "sources": "image.paint"}, "sources"),
        ("/usage/web_search_calls", {"start_time": 10, "context_levels": "max"}, "context_levels"),
        ("/usage/completions", {"start_time": 10, "batch": "maybe"}, "batch"),
        ("/projects", {"include_archived": "maybe"}, "include_archived"),
        ("/projects", {"after": "proj_nope"}, "after"),
        ("/users", {"limit": 101}, "limit"),
        ("/audit_logs", {"effective_at[gte]": "today"}, "effective_at[gte]"),
        ("/audit_logs", {"event_types[]": ["login.succeeded", "login.maybe"]}, "event_types[1]"),
        ("/audit_logs", {"before": "audit_log-nope"}, "before"),
        ("/audit_logs", {"tenant_only": "true", "event_types[]": "login.succeeded"}, "event_types[0]"),
    ],
)
def test_wrong_input_is_a_400_naming_the_parameter(
    admin: httpx.Client, path: str, params: dict[str, Any], param: str
) -> None:
    assert_error(admin.get(path, params=params), 400, param)


def test_unknown_projects_and_users_are_404_and_archived_service_accounts_400(
    admin: httpx.Client, org: Organization
) -> None:
    for path in (
        "/projects/proj_nope",
        "/projects/proj_nope/api_keys",
        "/projects/proj_nope/service_accounts",
        "/users/user-nope",
    ):
        error = assert_error(admin.get(path), 404, None)
        assert "nope" in error["message"]
    archived = next(p for p in org.projects() if p["archived_at"] is not None)
    assert_error(admin.get(f"/projects/{archived['id']}/service_accounts"), 400, None)
    assert admin.get(f"/projects/{archived['id']}/api_keys").status_code == 200


def test_a_missing_end_time_ends_at_now_and_buckets_are_utc_aligned(
    admin: httpx.Client, span: tuple[int, int]
) -> None:
    buckets, _ = walk(admin, "/usage/completions", {"start_time": span[0] + 5 * 3_600, "limit": 31})
    assert buckets[0]["start_time"] == span[0]  # the day holding start_time, from midnight
    assert buckets[-1]["end_time"] == NOW  # the last day before the clock
    assert all(b["start_time"] % DAY == 0 for b in buckets)
    after = admin.get("/usage/completions", params={"start_time": NOW + DAY}).json()
    assert (after["data"], after["has_more"], after["next_page"]) == ([], False, None)


# -- reconciliation with the stored responses and chat completions -----------------------------------


@pytest.fixture(scope="module")
def calls(
    org_emu: Emulator, project: httpx.Client, tmp_path_factory: pytest.TempPathFactory
) -> list[dict[str, Any]]:
    """Every model call as the API shows it: the responses by id (from the responses manifest), the
    chat completions from their list; each with its customer and app (a response's conversation's
    ``channel``, a chat completion's ``feature``)."""
    manifest = org_emu.organization.successors.write_manifest(tmp_path_factory.mktemp("org") / "calls.csv")
    with manifest.open(newline="") as handle:
        logged = [(row["response_id"], row["conversation_id"]) for row in csv.DictReader(handle)]
    channels: dict[str, str] = {}
    found = []
    for response_id, conversation_id in logged:
        if conversation_id not in channels:
            conversation = project.get(f"/conversations/{conversation_id}").json()
            channels[conversation_id] = conversation["metadata"]["channel"]
        body = project.get(f"/responses/{response_id}").json()
        usage = body["usage"]
        found.append(
            {
                "id": response_id,
                "customer": body["metadata"]["customer"],
                "app": ("response", channels[conversation_id]),
                "at": body["created_at"],
                "model": body["model"],
                "input": usage["input_tokens"],
                "cached": usage["input_tokens_details"]["cached_tokens"],
                "output": usage["output_tokens"],
            }
        )
    for chat in walk_list(project, "/chat/completions", {"limit": 100}):
        usage = chat["usage"]
        found.append(
            {
                "id": chat["id"],
                "customer": chat["metadata"]["customer"],
                "app": ("chat", chat["metadata"]["feature"]),
                "at": chat["created"],
                "model": chat["model"],
                "input": usage["prompt_tokens"],
                "cached": usage["prompt_tokens_details"]["cached_tokens"],
                "output": usage["completion_tokens"],
            }
        )
    assert len(found) == len(set(c["id"] for c in found)) > 1_000
    return found


def sums(calls: list[dict[str, Any]], key: Any) -> dict[Any, tuple[int, int, int, int]]:
    totals: dict[Any, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for call in calls:
        total = totals[key(call)]
        total[0] += call["input"]
        total[1] += call["cached"]
        total[2] += call["output"]
        total[3] += 1
    return {k: (a, b, c, d) for k, (a, b, c, d) in totals.items()}


def usage_sums(buckets: list[dict[str, Any]], *fields: str) -> dict[Any, tuple[int, int, int, int]]:
    found = {}
    for bucket in buckets:
        for r in bucket["results"]:
            key = (bucket["start_time"], *(r[f] for f in fields))
            assert key not in found
            found[key] = (
                r["input_tokens"],
                r["input_cached_tokens"],
                r["output_tokens"],
                r["num_model_requests"],
            )
            assert r["input_uncached_tokens"] == r["input_tokens"] - r["input_cached_tokens"]
            assert (r["input_text_tokens"], r["output_text_tokens"]) == (
                r["input_tokens"],
                r["output_tokens"],
            )
    return found


def test_completions_per_day_and_model_are_the_stored_calls_sums(
    admin: httpx.Client, calls: list[dict[str, Any]], span: tuple[int, int]
) -> None:
    buckets, _ = walk(
        admin,
        "/usage/completions",
        {"start_time": span[0], "end_time": span[1], "limit": 31, "group_by": "model"},
    )
    want = sums(calls, lambda c: (day_of(c["at"]), c["model"]))
    assert usage_sums(buckets, "model") == want
    days = {day for day, _ in want}
    assert len(days) == (span[1] - span[0]) // DAY == 180  # a model call on every day of the population
    total, _ = walk(admin, "/usage/completions", {"start_time": span[0], "end_time": span[1], "limit": 31})
    assert usage_sums(total) == sums(calls, lambda c: (day_of(c["at"]),))


def test_completions_per_project_key_and_user_are_the_stored_calls_sums(
    admin: httpx.Client, org: Organization, calls: list[dict[str, Any]], span: tuple[int, int]
) -> None:
    """The documented attribution, read from the API alone: the project serving the call's app, that
    project's key named for the call's customer, and that key's owner."""
    fields = ("project_id", "api_key_id", "user_id", "model")
    params = {"start_time": span[0], "end_time": span[1], "limit": 31, "group_by": list(fields)}
    buckets, _ = walk(admin, "/usage/completions", params)
    projects = {p["name"]: p["id"] for p in walk_list(admin, "/projects", {"include_archived": "true"})}
    serving = {
        ("response", "web"): "Support Assistant",
        ("response", "app"): "Support Assistant",
        ("response", "email"): "Email Triage",
        ("chat", "support"): "Chat Support",
        ("chat", "triage"): "Chat Support",
        ("chat", "search"): "Search & Summaries",
        ("chat", "summaries"): "Search & Summaries",
    }
    keys = {
        (project_id, key["name"]): (key["id"], key["owner"]["user"]["id"])
        for project_id in projects.values()
        for key in walk_list(admin, f"/projects/{project_id}/api_keys")
        if key["owner"]["type"] == "user"
    }

    def owner(call: dict[str, Any]) -> tuple[Any, ...]:
        project_id = projects[serving[call["app"]]]
        key_id, user_id = keys[(project_id, call["customer"].lower().replace(" ", "-") + "-prod")]
        assert org.attribution(call["id"]) == Attribution(
            project_id, key_id, user_id
        )  # the ground truth agrees
        return (day_of(call["at"]), project_id, key_id, user_id, call["model"])

    assert usage_sums(buckets, *fields) == sums(calls, owner)
    for result in (r for b in buckets for r in b["results"]):
        assert (result["batch"], result["service_tier"]) == (None, None)


@pytest.mark.parametrize(("width", "seconds", "hours"), [("1h", 3_600, 72), ("1m", 60, 6)])
def test_completions_per_hour_and_minute_are_the_stored_calls_sums(
    admin: httpx.Client,
    calls: list[dict[str, Any]],
    span: tuple[int, int],
    width: str,
    seconds: int,
    hours: int,
) -> None:
    start = span[0] + 40 * DAY + 7 * 3_600
    end = start + hours * 3_600
    params = {
        "start_time": start,
        "end_time": end,
        "bucket_width": width,
        "group_by": "model",
        "limit": 1440 if width == "1m" else 168,
    }
    buckets, _ = walk(admin, "/usage/completions", params)
    inside = [c for c in calls if start <= c["at"] < end]
    assert inside
    assert usage_sums(buckets, "model") == sums(inside, lambda c: (c["at"] - c["at"] % seconds, c["model"]))


def test_filters_keep_exactly_their_usage(
    admin: httpx.Client, org: Organization, calls: list[dict[str, Any]], span: tuple[int, int]
) -> None:
    base = {"start_time": span[0], "end_time": span[0] + 31 * DAY, "limit": 31}
    first_31 = [c for c in calls if c["at"] < base["end_time"]]
    models = ["gpt-4o", "gpt-5"]
    answer = admin.get("/usage/completions", params={**base, "models": models, "group_by": "model"}).json()
    want = sums([c for c in first_31 if c["model"] in models], lambda c: (day_of(c["at"]), c["model"]))
    assert usage_sums(answer["data"], "model") == want
    chosen = org.projects()[0]["id"]
    answer = admin.get("/usage/completions", params={**base, "project_ids": chosen}).json()
    mine = [c for c in first_31 if org.attribution(c["id"]).project_id == chosen]
    assert usage_sums(answer["data"]) == sums(mine, lambda c: (day_of(c["at"]),))
    every = admin.get("/usage/completions", params=base).json()["data"]
    assert admin.get("/usage/completions", params={**base, "batch": "false"}).json()["data"] == every
    assert all(
        not b["results"]
        for b in admin.get("/usage/completions", params={**base, "batch": "true"}).json()["data"]
    )
    # An array filter of an endpoint with enumerated values.
    sized = admin.get("/usage/images", params={**base, "sizes": "1024x1024", "group_by": "size"}).json()[
        "data"
    ]
    assert {r["size"] for b in sized for r in b["results"]} == {"1024x1024"}


def test_ungrouped_is_the_sum_of_grouped_on_every_endpoint(
    admin: httpx.Client, span: tuple[int, int]
) -> None:
    params = {"start_time": span[0] + 60 * DAY, "limit": 10}
    for name in USAGE:
        path = f"/usage/{name}"
        groups = GROUPS.get(name, ("project_id", "user_id", "api_key_id", "model"))
        whole = admin.get(path, params=params).json()["data"]
        parts = admin.get(path, params={**params, "group_by": list(groups)}).json()["data"]
        assert [b["start_time"] for b in whole] == [b["start_time"] for b in parts]
        for one, many in zip(whole, parts, strict=True):
            assert one["results"], f"{name} has usage on every day"
            (total,) = one["results"]
            for field, value in total.items():
                if isinstance(value, int) and not isinstance(value, bool):
                    assert value == sum(r[field] for r in many["results"]), (name, field)


# -- costs -----------------------------------------------------------------------------------------


def expected_costs(admin: httpx.Client, start: int, end: int) -> dict[tuple[int, str], Decimal]:
    """The price table applied to the usage the usage endpoints report, per day and line item."""
    want: dict[tuple[int, str], Decimal] = defaultdict(Decimal)
    params = {"start_time": start, "end_time": end, "limit": 31}

    def each(name: str, group_by: str | None) -> Iterator[tuple[int, dict[str, Any]]]:
        buckets, _ = walk(admin, f"/usage/{name}", {**params, **({"group_by": group_by} if group_by else {})})
        for bucket in buckets:
            for result in bucket["results"]:
                yield bucket["start_time"], result

    million = Decimal(1_000_000)
    for day, r in each("completions", "model"):
        price_in, price_cached, price_out = map(Decimal, PER_MILLION[r["model"]])
        want[(day, f"{r['model']}, input")] += (
            (r["input_tokens"] - r["input_cached_tokens"]) * price_in / million
        )
        want[(day, f"{r['model']}, cached input")] += r["input_cached_tokens"] * price_cached / million
        want[(day, f"{r['model']}, output")] += r["output_tokens"] * price_out / million
    for day, r in each("embeddings", "model"):
        want[(day, r["model"])] += r["input_tokens"] * Decimal(PER_MILLION[r["model"]][0]) / million
    for day, r in each("audio_speeches", "model"):
        want[(day, r["model"])] += r["characters"] * Decimal(PER_MILLION[r["model"]][0]) / million
    for day, r in each("images", "model"):
        want[(day, f"{r['model']}, images")] += r["images"] * Decimal(PER_UNIT[r["model"]])
    for day, r in each("audio_transcriptions", "model"):
        want[(day, r["model"])] += r["seconds"] * Decimal(PER_UNIT[r["model"]])
    for day, r in each("vector_stores", None):
        want[(day, "Vector store storage")] += r["usage_bytes"] * Decimal(PER_UNIT["Vector store storage"])
    for day, r in each("code_interpreter_sessions", None):
        want[(day, "Code interpreter sessions")] += r["num_sessions"] * Decimal(
            PER_UNIT["Code interpreter sessions"]
        )
    for day, r in each("file_search_calls", None):
        want[(day, "File search tool calls")] += r["num_requests"] * Decimal(
            PER_UNIT["File search tool calls"]
        )
    for day, r in each("web_search_calls", None):
        want[(day, "Web search tool calls")] += r["num_requests"] * Decimal(PER_UNIT["Web search tool calls"])
    for _day, r in each("moderations", None):
        assert r["input_tokens"] > 0  # used, and free: no line item
    return {k: v for k, v in want.items() if v}


def test_costs_are_the_price_table_applied_to_the_usage(admin: httpx.Client, span: tuple[int, int]) -> None:
    start, end = span[0] + 50 * DAY, span[0] + 80 * DAY
    buckets, _ = walk(
        admin, "/costs", {"start_time": start, "end_time": end, "limit": 180, "group_by": "line_item"}
    )
    got = {}
    for bucket in buckets:
        for r in bucket["results"]:
            assert r["amount"]["currency"] == "usd" and r["quantity"] is not None and r["quantity_unit"]
            got[(bucket["start_time"], r["line_item"])] = Decimal(str(r["amount"]["value"]))
    want = expected_costs(admin, start, end)
    assert got.keys() == want.keys()
    for key, amount in want.items():
        assert abs(got[key] - amount) < Decimal("0.005"), key  # to the cent
        assert got[key] == amount, key  # and, as the JSON text reads, exactly
    daily = {
        b["start_time"]: Decimal(str(b["results"][0]["amount"]["value"]))
        for b in walk(admin, "/costs", {"start_time": start, "end_time": end, "limit": 180})[0]
    }
    for day, total in daily.items():
        assert total == sum(v for (d, _), v in want.items() if d == day)


def test_costs_by_project_and_key_add_up_and_quantity_needs_line_item(
    admin: httpx.Client, org: Organization, span: tuple[int, int]
) -> None:
    params = {"start_time": span[0] + 10 * DAY, "end_time": span[0] + 40 * DAY, "limit": 30}
    whole = admin.get("/costs", params=params).json()["data"]
    split = admin.get("/costs", params={**params, "group_by": ["project_id", "api_key_id"]}).json()["data"]
    projects = {p["id"] for p in org.projects()}
    keys = {k["id"] for p in projects for k in org.api_keys(p)}
    for one, many in zip(whole, split, strict=True):
        (total,) = one["results"]
        assert Decimal(str(total["amount"]["value"])) == sum(
            Decimal(str(r["amount"]["value"])) for r in many["results"]
        )
        for r in many["results"]:
            assert r["project_id"] in projects and (r["api_key_id"] is None or r["api_key_id"] in keys)
            assert (r["line_item"], r["quantity"], r["quantity_unit"]) == (None, None, None)
    chosen = org.projects()[1]["id"]
    mine = admin.get("/costs", params={**params, "project_ids": chosen, "group_by": "project_id"}).json()[
        "data"
    ]
    assert {r["project_id"] for b in mine for r in b["results"]} == {chosen}


# -- audit logs and the other lists ----------------------------------------------------------------


def test_audit_log_pages_newest_first_and_is_consistent(admin: httpx.Client, org: Organization) -> None:
    events = walk_list(admin, "/audit_logs", {"limit": 100})
    assert len(events) == len({e["id"] for e in events}) > 500
    assert [e["effective_at"] for e in events] == sorted((e["effective_at"] for e in events), reverse=True)
    assert all(e["effective_at"] < NOW for e in events)
    by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        by_type[event["type"]].append(event)
    projects = org.projects()
    assert {e["project.created"]["id"] for e in by_type["project.created"]} == {p["id"] for p in projects}
    assert {e["user.added"]["id"] for e in by_type["user.added"]} == {u["id"] for u in org.users()}
    keys = {k["id"] for p in projects for k in org.api_keys(p["id"])}
    assert {e["api_key.created"]["id"] for e in by_type["api_key.created"]} == keys
    accounts = {a["id"] for p in projects for a in org.service_accounts(p["id"])}
    assert {e["service_account.created"]["id"] for e in by_type["service_account.created"]} == accounts
    archived = [p["id"] for p in projects if p["archived_at"] is not None]
    assert [e["project.archived"]["id"] for e in by_type["project.archived"]] == archived
    assert by_type["login.succeeded"] and by_type["login.failed"] and by_type["project.updated"]
    # The objects are as the log leaves them: each user's latest role, each project's latest title.
    roles = {e["user.added"]["id"]: e["user.added"]["data"]["role"] for e in by_type["user.added"]}
    for event in reversed(by_type["user.updated"]):  # oldest first
        roles[event["user.updated"]["id"]] = event["user.updated"]["changes_requested"]["role"]
    assert roles == {u["id"]: u["role"] for u in org.users()}
    assert len(set(roles.values())) == 2 and by_type["user.updated"]
    titles = {
        e["project.created"]["id"]: e["project.created"]["data"]["name"] for e in by_type["project.created"]
    }
    for event in reversed(by_type["project.updated"]):
        titles[event["project.updated"]["id"]] = event["project.updated"]["changes_requested"]["title"]
    assert titles == {p["id"]: p["name"] for p in projects}
    emails = {u["email"] for u in org.users()}
    for event in events:
        actor = event["actor"]
        person = actor["session"]["user"] if actor["type"] == "session" else actor["api_key"]["user"]
        assert person["email"] in emails
    # `before` pages back towards the newest.
    middle = events[250]["id"]
    newer = admin.get("/audit_logs", params={"before": middle, "limit": 10}).json()
    assert [e["id"] for e in newer["data"]] == [e["id"] for e in events[240:250]] and newer["has_more"]


def test_audit_log_filters(admin: httpx.Client, org: Organization) -> None:
    events = walk_list(admin, "/audit_logs", {"limit": 100})
    project = org.projects()[2]
    user = org.users()[3]
    key = org.api_keys(project["id"])[0]
    middle = events[300]["effective_at"]
    cases: list[tuple[dict[str, Any], Any]] = [
        ({"project_ids[]": project["id"]}, lambda e: e.get("project", {}).get("id") == project["id"]),
        (
            {"event_types[]": ["login.failed", "project.updated"]},
            lambda e: e["type"] in ("login.failed", "project.updated"),
        ),
        ({"actor_ids[]": user["id"]}, lambda e: user["id"] in json.dumps(e["actor"])),
        ({"actor_emails[]": user["email"]}, lambda e: user["email"] in json.dumps(e["actor"])),
        ({"resource_ids[]": key["id"]}, lambda e: e[e["type"]].get("id") == key["id"]),
        ({"effective_at[gte]": middle}, lambda e: e["effective_at"] >= middle),
        ({"effective_at[gt]": middle}, lambda e: e["effective_at"] > middle),
        (
            {"effective_at[lt]": middle, "effective_at[gte]": middle - 30 * DAY},
            lambda e: middle - 30 * DAY <= e["effective_at"] < middle,
        ),
        ({"effective_at[lte]": middle}, lambda e: e["effective_at"] <= middle),
    ]
    for params, keep in cases:
        got = walk_list(admin, "/audit_logs", {**params, "limit": 100})
        want = [e for e in events if keep(e)]
        assert want, params
        assert got == want, params
    assert walk_list(admin, "/audit_logs", {"tenant_only": "true"}) == []


def test_lists_page_by_after_exactly_once(admin: httpx.Client, org: Organization) -> None:
    projects = org.projects()
    assert walk_list(admin, "/projects", {"limit": 1}) == [p for p in projects if p["archived_at"] is None]
    assert walk_list(admin, "/projects", {"limit": 4, "include_archived": "true"}) == projects
    assert walk_list(admin, "/users", {"limit": 3}) == org.users()
    for p in projects:
        keys = walk_list(admin, f"/projects/{p['id']}/api_keys", {"limit": 2})
        assert keys == org.api_keys(p["id"]) and len(keys) >= 4
        assert walk_list(admin, f"/projects/{p['id']}/api_keys", {"owner_project_access": "any"}) == keys
        assert walk_list(admin, f"/projects/{p['id']}/api_keys", {"owner_project_access": "inactive"}) == []
    default = admin.get("/audit_logs").json()
    assert len(default["data"]) == 20 and default["has_more"]
    chosen = [u["email"] for u in org.users()[2:4]]
    for name in ("emails", "emails[]"):
        assert [u["email"] for u in walk_list(admin, "/users", {name: chosen})] == chosen


def test_keys_name_their_owners_and_were_last_used_before_now(admin: httpx.Client, org: Organization) -> None:
    users = {u["id"]: u for u in org.users()}
    for p in org.projects():
        accounts = {a["id"] for a in org.service_accounts(p["id"])}
        for key in walk_list(admin, f"/projects/{p['id']}/api_keys"):
            owner = key["owner"]
            if owner["type"] == "user":
                assert owner["user"]["email"] == users[owner["user"]["id"]]["email"]
            else:
                assert owner["service_account"]["id"] in accounts
            assert key["created_at"] >= p["created_at"]
            assert key["last_used_at"] is None or key["created_at"] < key["last_used_at"] < NOW


# -- the clock ------------------------------------------------------------------------------------


def test_usage_stops_at_now_and_the_current_bucket_is_partial(emulator_factory: EmulatorFactory) -> None:
    probe = Organization(seed=7)
    tenth = sorted(
        c.created_at for c in probe.successors.calls if day_of(c.created_at) == probe.first_day + 10 * DAY
    )
    now = tenth[len(tenth) // 2]  # a call's own second: it is not before now, the one before it is
    emu = emulator_factory(seed=7, now=datetime.fromtimestamp(now, tz=UTC))
    calls = emu.organization.successors.calls
    with httpx.Client(base_url=emu.organization_url, headers=bearer("sk-any")) as client:
        start = probe.first_day + 8 * DAY
        days = client.get(
            "/usage/completions", params={"start_time": start, "end_time": start + 10 * DAY}
        ).json()
        assert [b["start_time"] for b in days["data"]] == [start, start + DAY, start + 2 * DAY]
        assert not days["has_more"]
        today = days["data"][-1]["results"][0]
        before = [c for c in calls if day_of(now) <= c.created_at < now]
        assert before and any(
            day_of(now) <= c.created_at < day_of(now) + DAY for c in calls if c.created_at >= now
        )
        assert today["num_model_requests"] == len(before)
        assert today["output_tokens"] == sum(c.output_tokens for c in before)
        minutes = client.get(
            "/usage/completions", params={"start_time": now - 3 * 3_600, "bucket_width": "1m", "limit": 1440}
        ).json()
        assert minutes["data"][-1]["start_time"] == now - now % 60 and not minutes["has_more"]
        # A start_time inside a bucket counts from there: the first day holds only what came after it.
        late = client.get("/usage/completions", params={"start_time": start + 12 * 3_600, "limit": 1}).json()
        after_noon = [c for c in calls if start + 12 * 3_600 <= c.created_at < start + DAY]
        assert late["data"][0]["start_time"] == start
        assert late["data"][0]["results"][0]["num_model_requests"] == len(after_noon)
        events = walk_list(client, "/audit_logs", {"limit": 100})
        assert events and max(e["effective_at"] for e in events) < now
        for p in emu.organization.projects():
            for key in walk_list(client, f"/projects/{p['id']}/api_keys"):
                assert key["last_used_at"] is None or key["last_used_at"] < now
    # Without a clock of its own the emulator follows the real one (after the population).
    assert Organization(seed=7).now() > probe.last_day


# -- keys ----------------------------------------------------------------------------------------


def test_each_key_opens_only_its_own_endpoints(org_emu: Emulator, org: Organization) -> None:
    response_id = org.successors.infos[0].response_id
    organization = org_emu.organization_url + "/projects"
    api = org_emu.base_url + f"/responses/{response_id}"
    with httpx.Client() as client:
        assert client.get(organization, headers=bearer(ADMIN_KEY)).status_code == 200
        assert client.get(api, headers=bearer(PROJECT_KEY)).status_code == 200
        for url, key in (
            (organization, PROJECT_KEY),
            (api, ADMIN_KEY),
            (organization, "sk-other"),
            (api, "sk-other"),
        ):
            answer = client.get(url, headers=bearer(key))
            error = assert_error(answer, 401, None)
            assert error["code"] == "invalid_api_key" and key not in answer.text
        assert assert_error(client.get(organization), 401, None)["code"] is None
        threads = org_emu.base_url + "/threads/thread_x"
        refused = client.get(threads, headers={**bearer(ADMIN_KEY), "OpenAI-Beta": "assistants=v2"})
        assert refused.status_code == 401
    assert ADMIN_KEY not in json.dumps(org_emu.requests()) and ADMIN_KEY not in repr(org_emu.settings)


def test_the_admin_key_is_refused_even_where_any_other_key_passes(emulator_factory: EmulatorFactory) -> None:
    emu = emulator_factory(admin_key=ADMIN_KEY)  # no project key: the API paths take any other key
    response_id = emu.organization.successors.infos[0].response_id
    with httpx.Client(base_url=emu.base_url) as client:
        assert client.get(f"/responses/{response_id}", headers=bearer("sk-any")).status_code == 200
        assert_error(client.get(f"/responses/{response_id}", headers=bearer(ADMIN_KEY)), 401, None)
        assert client.get("/organization/users", headers=bearer(ADMIN_KEY)).status_code == 200
        assert_error(client.get("/organization/users", headers=bearer("sk-any")), 401, None)


def test_without_an_admin_key_any_key_opens_the_organization(emu: Emulator) -> None:
    with httpx.Client(base_url=emu.organization_url) as client:
        assert client.get("/projects", headers=bearer("sk-whatever")).status_code == 200
        assert client.get("/users").status_code == 401  # no key at all


# -- the gateway's knobs, stats and the request log ---------------------------------------------------


def test_faults_rate_limit_headers_and_stats_apply(
    org_emu: Emulator, admin: httpx.Client, span: tuple[int, int]
) -> None:
    org_emu.reset()
    org_emu.script_faults("503", count=1, match="/organization/costs")
    params = {"start_time": span[0], "limit": 1}
    assert admin.get("/costs", params=params).status_code == 503
    ok = admin.get("/costs", params=params)
    assert (
        ok.status_code == 200 and "x-ratelimit-limit-requests" in ok.headers and "x-request-id" in ok.headers
    )
    admin.get("/usage/images", params=params)
    admin.get("/projects")
    projects = admin.get("/projects").json()["data"]
    admin.get(f"/projects/{projects[0]['id']}")
    admin.get(f"/projects/{projects[0]['id']}/api_keys")
    admin.get(f"/projects/{projects[0]['id']}/service_accounts")
    admin.get("/users/user-nope")
    admin.get("/audit_logs", params={"limit": 1})
    stats = org_emu.stats()
    assert {name: counts for name, counts in stats["by_endpoint"].items() if counts} == {
        "organization.costs": {"503": 1, "200": 1},
        "organization.usage.images": {"200": 1},
        "organization.projects.list": {"200": 2},
        "organization.projects.retrieve": {"200": 1},
        "organization.projects.api_keys.list": {"200": 1},
        "organization.projects.service_accounts.list": {"200": 1},
        "organization.users.retrieve": {"404": 1},
        "organization.audit_logs": {"200": 1},
    }
    assert {f"organization.usage.{name}" for name in USAGE} <= set(ENDPOINTS)
    logged = org_emu.requests(1)[0]
    assert logged["path"] == "/v1/organization/audit_logs" and logged["endpoint"] == "organization.audit_logs"
    assert admin.post("/projects").status_code == 405


def test_rate_limit_applies_to_the_organization(emulator_factory: EmulatorFactory) -> None:
    emu = emulator_factory(rate_limit=1, admin_key=ADMIN_KEY)
    with httpx.Client(base_url=emu.organization_url, headers=bearer(ADMIN_KEY)) as client:
        answers = [client.get("/projects").status_code for _ in range(5)]
    assert answers[0] == 200 and 429 in answers


# -- the manifest and the command line -------------------------------------------------------------


def test_org_manifest_days_are_the_first_and_last_with_usage(tmp_path: Path) -> None:
    manifest = tmp_path / "projects.csv"
    env = {**os.environ, ADMIN_KEY_ENV: ADMIN_KEY}
    command = [
        sys.executable,
        "-m",
        "duckdb_openai.emulator",
        "--port",
        "0",
        "--quiet",
        "--now",
        "2025-04-01T00:00:00Z",
        "--org-manifest",
        str(manifest),
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().decode().strip()
        assert base_url.startswith("http://127.0.0.1:")
        with manifest.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        assert list(rows[0]) == ["project_id", "name", "first_day", "last_day"]
        days: dict[str, set[int]] = defaultdict(set)
        with httpx.Client(
            base_url=base_url + "/organization", headers=bearer(ADMIN_KEY), timeout=30
        ) as client:
            assert client.get("/projects", headers=bearer("sk-other")).status_code == 401
            start = int(datetime(2024, 9, 1, tzinfo=UTC).timestamp())
            for name in USAGE:
                buckets, _ = walk(
                    client, f"/usage/{name}", {"start_time": start, "limit": 31, "group_by": "project_id"}
                )
                for bucket in buckets:
                    for result in bucket["results"]:
                        days[result["project_id"]].add(bucket["start_time"])
            names = {p["id"]: p["name"] for p in walk_list(client, "/projects", {"include_archived": "true"})}
    finally:
        process.terminate()
        process.communicate(timeout=30)
    assert {row["project_id"]: row["name"] for row in rows} == names
    for row in rows:
        seen = days[row["project_id"]]
        assert (row["first_day"], row["last_day"]) == (iso_day(min(seen)), iso_day(max(seen)))
    spans = Counter((row["first_day"], row["last_day"]) for row in rows)
    assert len(spans) >= 3  # projects created later and archived earlier have days of their own


def test_cli_options_round_trip_and_are_documented(capsys: pytest.CaptureFixture[str]) -> None:
    settings = EmulatorSettings(seed=5, days=30, now=1_730_000_000, admin_key="sk-admin-x")
    args = build_parser().parse_args(settings.to_argv())
    assert settings_from_args(args) == EmulatorSettings(seed=5, days=30, now=1_730_000_000)  # keys go by env
    assert "sk-admin-x" not in " ".join(settings.to_argv())
    parsed = build_parser().parse_args(["--now", "2024-10-31T00:00:00Z", "--admin-key", "k", "--days", "9"])
    assert (parsed.now, parsed.admin_key, parsed.days) == (1_730_332_800, "k", 9)
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    for option in ("--admin-key", "--days", "--now", "--org-manifest"):
        assert option in out
    for argv in (["--days", "0"], ["--now", "soon"]):
        with pytest.raises(SystemExit) as exited:
            main(argv)
        assert exited.value.code == 2
    with pytest.raises(ValueError, match="differ"):
        EmulatorSettings(api_key="same", admin_key="same")


def test_days_spreads_the_same_population() -> None:
    short, long = Organization(seed=7, days=20), Organization(seed=7)
    assert [(c.call_id, c.model, c.output_tokens) for c in short.successors.calls] == [
        (c.call_id, c.model, c.output_tokens) for c in long.successors.calls
    ]
    assert (short.last_day - short.first_day) // DAY == 19
    assert (long.last_day - long.first_day) // DAY == 179
    assert [p["id"] for p in short.projects()] == [p["id"] for p in long.projects()]
    short_days = {c.created_at // DAY for c in short.successors.calls}
    assert len(short_days) == 20


def test_the_readme_block_runs_as_written() -> None:
    text = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    (code,) = [b for b in re.findall(r"^```python\n(.*?)^```$", text, re.M | re.S) if "org.attribution(" in b]
    namespace: dict[str, Any] = {}
    exec(compile(code, "README.md", "exec"), namespace)
    org = namespace["org"]
    assert len(namespace["days"]) == 180 and all(b["results"] for b in namespace["days"])
    assert namespace["who"].project_id in {p["id"] for p in org.projects()}
    assert {r["project_id"] for b in namespace["costs"] for r in b["results"]} == {None}
    assert sum(len(b["results"]) for b in namespace["costs"]) > 180
