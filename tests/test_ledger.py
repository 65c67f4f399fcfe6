"""The organization's ledger as tables, over the emulator: every form's rows equal the API's JSON field
by field, page tokens round-trip, the query's columns choose the group_by, filters and time ranges are
pushed down and hold on the rows, partial buckets are marked, amounts are exact, and each key goes
only where it belongs."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import duckdb
import pytest

import duckdb_openai
from duckdb_openai.emulator import Emulator
from duckdb_openai.resources.usage import USAGE
from duckdb_openai.schema import json_key
from tests.helpers import KEY, api_shape, connect, rows, sparse
from tests.scripted import ScriptedServer

ADMIN = "sk-admin-0123456789abcdefSECRET"
DAY = 86_400
#: Mid-day on 2025-03-20, inside the population (2024-10-01 to 2025-03-29): that day's bucket is partial.
NOW = int(dt.datetime(2025, 3, 20, 12, tzinfo=dt.UTC).timestamp())
START = int(dt.datetime(2024, 10, 1, tzinfo=dt.UTC).timestamp())
RESOURCES = [*USAGE, duckdb_openai.COSTS]


def ts(seconds: int) -> str:
    return f"TIMESTAMPTZ '{dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat()}'"


@pytest.fixture(scope="module")
def org_emu() -> Iterator[Emulator]:
    with Emulator(seed=7, mode="thread", api_key=KEY, admin_key=ADMIN, now=NOW) as emu:
        yield emu


@pytest.fixture
def org(org_emu: Emulator) -> Iterator[tuple[duckdb.DuckDBPyConnection, Emulator]]:
    org_emu.reset()
    con, registration = connect(org_emu.base_url, admin_key=ADMIN)
    con.execute("SET TimeZone = 'UTC'")
    yield con, org_emu
    registration.close()
    con.close()


def endpoint(resource: duckdb_openai.Resource) -> str:
    return "costs" if resource.name == "costs" else resource.name.removeprefix("usage_")


def expected_rows(
    emu: Emulator, resource: duckdb_openai.Resource, start: int, end: int, **query: Any
) -> list[Any]:
    """The API's buckets flattened as the table has them: each result with its bucket's fields."""
    organization = emu.organization
    if resource.name == "costs":
        buckets = organization.costs(start, end, **query)
    else:
        buckets = organization.usage(endpoint(resource), start, end, query.pop("bucket_width", "1d"), **query)
    width = "1d"
    return [
        {**result, "start_time": b["start_time"], "end_time": b["end_time"], "bucket_width": width,
         "partial": b["end_time"] > NOW}
        for b in buckets
        for result in b["results"]
    ]  # fmt: skip


def shaped(resource: duckdb_openai.Resource, row: dict[str, Any]) -> dict[str, Any]:
    out = {f.name: api_shape(row[f.name], f) for f in resource.schema}
    if "amount" in out and out["amount"] is not None:
        out["amount"]["value"] = Decimal(out["amount"]["value"])
    return out


def order(row: dict[str, Any]) -> str:
    return json.dumps(row, sort_keys=True, default=str)


def normal(value: Any) -> Any:
    """A value from the API's JSON as the comparison holds it: amounts as exact decimals."""
    if isinstance(value, dict):
        return {k: normal(v) for k, v in value.items()}
    if isinstance(value, float):
        return Decimal(str(value))
    return value


# -- every function's rows equal the emulator's JSON --------------------------------------------------------


@pytest.mark.parametrize("resource", RESOURCES, ids=[r.name for r in RESOURCES])
def test_each_usage_and_cost_function_equals_the_apis_results(
    org: tuple[duckdb.DuckDBPyConnection, Emulator], resource: duckdb_openai.Resource
) -> None:
    con, emu = org
    grouping = next(f for f in resource.filters if f.name == "group_by")
    dims = list(grouping.choices)
    start, end = START, START + 40 * DAY
    got = rows(
        con,
        f"SELECT * FROM {resource.name}({ts(start)}, end_time := {ts(end)}, group_by := ?) ORDER BY ALL",
        [dims],
    )
    want = expected_rows(emu, resource, start, end, group_by=dims)
    assert len(got) == len(want) > 0
    assert sorted((sparse(normal(shaped(resource, r))) for r in got), key=order) == sorted(
        (sparse(normal(w)) for w in want), key=order
    )
    # Every row carries its bucket: 40 daily buckets of the range, no other.
    starts = {r["start_time"] for r in got}
    assert starts <= {dt.datetime.fromtimestamp(start + d * DAY, dt.UTC) for d in range(40)}
    assert {r["bucket_width"] for r in got} == {"1d"} and not any(r["partial"] for r in got)


def test_types_are_the_schemas_timestamps_and_exact_money(
    org: tuple[duckdb.DuckDBPyConnection, Emulator],
) -> None:
    con, emu = org
    kinds = dict(
        con.execute(
            "SELECT column_name, column_type "
            "FROM (DESCRIBE SELECT * FROM costs(?, group_by := ['line_item']))",
            [dt.datetime.fromtimestamp(START, dt.UTC)],
        ).fetchall()
    )
    assert kinds["start_time"] == "TIMESTAMP WITH TIME ZONE" and kinds["partial"] == "BOOLEAN"
    assert kinds["amount"] == 'STRUCT("value" DECIMAL(38,12), currency VARCHAR)'
    # Summed in DuckDB to the cent of the emulator's own decimals, never through a float.
    [(total,)] = con.execute(
        f"SELECT sum(amount.value) FROM costs({ts(START)}, end_time := {ts(START + 90 * DAY)})"
    ).fetchall()
    buckets = emu.organization.costs(START, START + 90 * DAY)
    assert total == sum(Decimal(str(r["amount"]["value"])) for b in buckets for r in b["results"])


def test_180_days_of_daily_usage_is_six_requests_and_costs_one(
    org: tuple[duckdb.DuckDBPyConnection, Emulator],
) -> None:
    con, emu = org
    start = START
    con.execute(f"SELECT count(*) FROM usage_completions({ts(start)}, end_time := {ts(start + 180 * DAY)})")
    con.execute(f"SELECT count(*) FROM costs({ts(start)}, end_time := {ts(start + 180 * DAY)})")
    by = emu.stats()["by_endpoint"]
    assert sum(by["organization.usage.completions"].values()) == 6  # ceil(180 / 31) pages of 31 buckets
    assert sum(by["organization.costs"].values()) == 1  # 180 buckets a page
    # Each page after the first asked with the previous page's token, byte for byte (they hold + / =).
    tokens = [
        r["query"].get("page") for r in emu.requests() if r["endpoint"] == "organization.usage.completions"
    ]
    assert tokens[0] is None and all(t is not None and t[0].endswith("=") for t in tokens[1:])
    assert [r["query"]["limit"] for r in emu.requests() if "usage" in r["endpoint"]] == [["31"]] * 6


def test_hourly_and_minute_buckets_page_by_their_own_limit(
    org: tuple[duckdb.DuckDBPyConnection, Emulator],
) -> None:
    con, emu = org
    day = START + 10 * DAY
    [(hours,)] = con.execute(
        f"SELECT count(DISTINCT start_time) FROM usage_embeddings({ts(day)}, "
        f"end_time := {ts(day + 7 * DAY)}, bucket_width := '1h')"
    ).fetchall()
    want = expected_rows(emu, duckdb_openai.USAGE_EMBEDDINGS, day, day + 7 * DAY, bucket_width="1h")
    assert hours == len({r["start_time"] for r in want})
    assert sum(emu.stats()["by_endpoint"]["organization.usage.embeddings"].values()) == 1  # 168 hours a page


# -- the catalog: pushdown, derived group_by, the WHERE clause holds -----------------------------------------


def logged(emu: Emulator, name: str) -> list[dict[str, list[str]]]:
    return [r["query"] for r in emu.requests() if r["endpoint"] == name]


def test_group_by_is_derived_from_the_columns_the_query_reads(
    org: tuple[duckdb.DuckDBPyConnection, Emulator],
) -> None:
    con, emu = org
    got = rows(
        con,
        "SELECT start_time, model, sum(input_tokens) AS tokens FROM openai.organization.usage_completions "
        f"WHERE start_time >= {ts(START)} AND start_time < {ts(START + 30 * DAY)} GROUP BY ALL ORDER BY ALL",
    )
    [query] = logged(emu, "organization.usage.completions")
    assert query["group_by"] == ["model"] and query["start_time"] == [str(START)]
    assert query["end_time"] == [str(START + 30 * DAY)]
    want = expected_rows(emu, duckdb_openai.USAGE_COMPLETIONS, START, START + 30 * DAY, group_by=["model"])
    assert len(got) == len(want)  # one row per bucket and model
    assert sum(r["tokens"] for r in got) == sum(w["input_tokens"] for w in want)
    emu.reset()
    con.execute(
        f"SELECT sum(input_tokens) FROM openai.organization.usage_completions WHERE start_time >= {ts(START)}"
    ).fetchall()
    assert "group_by" not in logged(emu, "organization.usage.completions")[0]  # no dimension read


def test_filters_in_one_request_and_the_where_clause_holds(
    org: tuple[duckdb.DuckDBPyConnection, Emulator],
) -> None:
    con, emu = org
    projects = [p["id"] for p in emu.organization.projects()][:2]
    got = rows(
        con,
        "SELECT project_id, model, input_tokens, start_time FROM openai.organization.usage_completions "
        f"WHERE start_time >= {ts(START)} AND start_time <= {ts(START + 20 * DAY)} "
        "AND project_id IN (?, ?) AND model = 'gpt-4o' AND bucket_width = '1d'",
        projects,
    )
    [query] = logged(emu, "organization.usage.completions")  # an IN list is one request
    assert query["project_ids"] == projects and query["models"] == ["gpt-4o"]
    assert sorted(query["group_by"]) == ["model", "project_id"]
    assert query["end_time"] == [str(START + 20 * DAY + 1)]  # <= : the bucket starting there included
    assert got and {r["project_id"] for r in got} <= set(projects) and {r["model"] for r in got} == {"gpt-4o"}
    assert max(r["start_time"] for r in got) <= dt.datetime.fromtimestamp(START + 20 * DAY, dt.UTC)


def test_a_query_without_a_lower_bound_is_refused_saying_so(
    org: tuple[duckdb.DuckDBPyConnection, Emulator],
) -> None:
    con, emu = org
    with pytest.raises(
        duckdb.Error, match=r"needs a lower bound on start_time.*WHERE start_time >= TIMESTAMPTZ"
    ):
        con.execute("SELECT * FROM openai.organization.costs WHERE start_time < now()").fetchall()
    assert emu.stats()["requests"] == 0


def test_rows_of_a_server_that_ignores_the_filters_and_the_range_are_dropped() -> None:
    # A hostile server answers every usage request with the same page, whatever was asked.
    def result(model: str, project: str) -> dict[str, Any]:
        return {"object": "organization.usage.completions.result", "input_tokens": 5, "model": model,
                "project_id": project, "num_model_requests": 1}  # fmt: skip

    page = {
        "object": "page",
        "data": [
            {"object": "bucket", "start_time": START - DAY, "end_time": START,
             "results": [result("gpt-4o", "p1")]},
            {"object": "bucket", "start_time": START, "end_time": START + DAY,
             "results": [result("gpt-4o", "p1"), result("o3", "p1"), result("gpt-4o", "p2")]},
        ],
        "has_more": False,
        "next_page": None,
    }  # fmt: skip
    with ScriptedServer([(200, page)]) as server:
        con, registration = connect(server.base_url, admin_key=ADMIN)
        catalog = rows(
            con,
            "SELECT project_id, model, start_time FROM openai.organization.usage_completions "
            f"WHERE start_time >= {ts(START)} AND model = 'gpt-4o' AND project_id = 'p1'",
        )
        function = rows(
            con,
            f"SELECT project_id, model FROM usage_completions({ts(START)}, models := ['gpt-4o'], "
            "project_ids := ['p1'])",
        )
        registration.close()
    start = dt.datetime.fromtimestamp(START, dt.UTC)
    assert [(r["project_id"], r["model"], r["start_time"]) for r in catalog] == [("p1", "gpt-4o", start)]
    # The table function asks for a range and gets the API's buckets, but never another model or project.
    assert {(r["project_id"], r["model"]) for r in function} == {("p1", "gpt-4o")}


def test_a_bucket_that_has_not_ended_is_partial(org: tuple[duckdb.DuckDBPyConnection, Emulator]) -> None:
    con, _ = org
    got = rows(
        con,
        f"SELECT DISTINCT start_time, partial FROM usage_completions({ts(NOW - 3 * DAY)}) ORDER BY ALL",
    )
    today = dt.datetime.fromtimestamp(NOW - NOW % DAY, dt.UTC)
    assert [r["partial"] for r in got] == [r["start_time"] == today for r in got]
    assert got[-1]["start_time"] == today and got[-1]["partial"]


# -- audit logs and the dimension tables ------------------------------------------------------------------


def test_audit_logs_equal_the_apis_events_with_their_own_object_as_json(
    org: tuple[duckdb.DuckDBPyConnection, Emulator],
) -> None:
    con, emu = org
    events = list(reversed(emu.organization.events()))  # the API lists newest first
    got = rows(con, "SELECT * FROM audit_logs()")
    assert [r["id"] for r in got] == [e["id"] for e in events]
    schema = duckdb_openai.AUDIT_LOGS_SCHEMA
    for row, event in zip(got, events, strict=True):
        own = event.get(event["type"])
        assert row["details"] == (None if own is None else json.dumps(own, separators=(",", ":")))
        assert json_key(schema.field("details")) == "type"
        typed = {f.name: api_shape(row[f.name], f) for f in schema if f.name != "details"}
        expected = {k: v for k, v in event.items() if k in typed}
        session = (expected.get("actor") or {}).get("session") or {}
        if "ip_address_details" in session:
            session["ip_address_details"] = json.loads(json.dumps(session["ip_address_details"]))
        assert sparse(typed) == sparse(expected)


def test_audit_log_filters_and_ranges(org: tuple[duckdb.DuckDBPyConnection, Emulator]) -> None:
    con, emu = org
    events = emu.organization.events()
    lo, hi = events[len(events) // 3]["effective_at"], events[2 * len(events) // 3]["effective_at"]
    got = rows(
        con,
        "SELECT id FROM openai.organization.audit_logs WHERE type IN ('login.succeeded', 'project.created') "
        f"AND effective_at >= {ts(lo)} AND effective_at < {ts(hi)}",
    )
    kinds = ("login.succeeded", "project.created")
    want = [e["id"] for e in reversed(events) if e["type"] in kinds and lo <= e["effective_at"] < hi]
    assert [r["id"] for r in got] == want and want
    query = logged(emu, "organization.audit_logs")[0]
    assert query["event_types[]"] == ["login.succeeded", "project.created"]
    assert query["effective_at[gte]"] == [str(lo)] and query["effective_at[lt]"] == [str(hi)]


@pytest.mark.parametrize(
    ("sql", "truth"),
    [
        ("SELECT * FROM projects(include_archived := true)", lambda o: o.projects(include_archived=True)),
        ("SELECT * FROM users()", lambda o: o.users()),
    ],
    ids=["projects", "users"],
)
def test_the_dimension_tables_equal_the_apis_objects(
    org: tuple[duckdb.DuckDBPyConnection, Emulator], sql: str, truth: Any
) -> None:
    con, emu = org
    resource = duckdb_openai.PROJECTS if "projects" in sql else duckdb_openai.USERS
    got = [sparse({f.name: api_shape(r[f.name], f) for f in resource.schema}) for r in rows(con, sql)]
    assert got == [sparse(o) for o in truth(emu.organization)]


def test_keys_and_service_accounts_of_every_project(org: tuple[duckdb.DuckDBPyConnection, Emulator]) -> None:
    con, emu = org
    organization = emu.organization
    active = [p["id"] for p in organization.projects(include_archived=False)]
    keys = rows(con, "SELECT k.* FROM projects() p, project_api_keys(p.id) k ORDER BY ALL")
    want = [{**k, "project_id": p} for p in active for k in organization.api_keys(p)]
    schema = duckdb_openai.PROJECT_API_KEYS_SCHEMA
    got = sorted((sparse({f.name: api_shape(r[f.name], f) for f in schema}) for r in keys), key=order)
    assert got == sorted((sparse(w) for w in want), key=order) and len(got) > 10
    accounts = rows(
        con, "SELECT * FROM openai.organization.project_service_accounts WHERE project_id = ?", active[:1]
    )
    assert [a["id"] for a in accounts] == [a["id"] for a in organization.service_accounts(active[0])]
    one = rows(con, "SELECT name FROM project(?)", active[:1])
    assert one == [{"name": organization.project(active[0])["name"]}]


# -- keys: each goes where it belongs, and only there ------------------------------------------------------


def test_the_admin_key_never_reaches_a_project_path_nor_the_project_key_an_organization_path(
    org: tuple[duckdb.DuckDBPyConnection, Emulator],
) -> None:
    # The emulator refuses the admin key on API paths and the project key on organization paths (401):
    # one registration reads both, so each request carried the key its family declares.
    con, emu = org
    response = emu.organization.successors.infos[0].response_id
    assert con.execute("SELECT count(*) FROM response(?)", [response]).fetchone() == (1,)
    assert con.execute(f"SELECT count(*) FROM costs({ts(START)})").fetchone()[0] > 0
    statuses = [r["status"] for r in emu.requests()]
    assert statuses and set(statuses) == {200}


def test_without_an_admin_key_nothing_is_sent_and_the_error_says_what_to_do(org_emu: Emulator) -> None:
    org_emu.reset()
    con, registration = connect(org_emu.base_url)
    with pytest.raises(duckdb.Error, match=r"need an admin key: pass admin_key=.*OPENAI_ADMIN_KEY"):
        con.execute(f"SELECT * FROM costs({ts(START)})").fetchall()
    with pytest.raises(duckdb_openai.ConfigurationError, match="admin key"):
        duckdb_openai.read_projects(api_key=KEY, base_url=org_emu.base_url).read_all()
    registration.close()
    assert org_emu.stats()["requests"] == 0


def test_a_rejected_admin_key_names_it_and_says_these_endpoints_need_one(org_emu: Emulator) -> None:
    with pytest.raises(duckdb_openai.AuthenticationError) as info:
        duckdb_openai.read_projects(
            api_key=KEY, admin_key="sk-admin-wrong", base_url=org_emu.base_url
        ).read_all()
    message = str(info.value)
    assert "the admin key was rejected (401" in message and "admin_key= argument" in message
    assert "need an admin key, not a project key" in message
    assert "sk-admin-wrong" not in message and ADMIN not in message and KEY not in message
    assert isinstance(info.value, duckdb_openai.FetchError) and info.value.resource == "projects"


def test_the_admin_key_is_a_secret_like_the_project_key(org_emu: Emulator) -> None:
    client = duckdb_openai.Client(api_key=KEY, admin_key=ADMIN, base_url=org_emu.base_url)
    con = duckdb.connect()
    duckdb_openai.register(con, client=client)
    catalog = con.execute("SELECT string_agg(macro_definition, ' ') FROM duckdb_functions()").fetchone()[0]
    views = con.execute("SELECT string_agg(sql, ' ') FROM duckdb_views()").fetchone()[0]
    plan = con.execute(
        f"EXPLAIN SELECT * FROM openai.organization.costs WHERE start_time >= {ts(START)}"
    ).fetchall()
    for text in (repr(client), repr(client.settings), catalog, views, str(plan)):
        assert ADMIN not in text
    with pytest.raises(TypeError, match="cannot be pickled"):
        import pickle

        pickle.dumps(client.settings)
    client.close()


def test_python_readers_equal_their_sql_forms(org: tuple[duckdb.DuckDBPyConnection, Emulator]) -> None:
    con, emu = org
    start = dt.datetime.fromtimestamp(START, dt.UTC)
    reader = duckdb_openai.read_usage_completions(
        start, end_time=start + dt.timedelta(days=20), group_by=["model"], models=["gpt-4o"],
        api_key=KEY, admin_key=ADMIN, base_url=emu.base_url,
    )  # fmt: skip
    table = reader.read_all()
    sql = con.sql(
        f"SELECT * FROM usage_completions({ts(START)}, end_time := {ts(START + 20 * DAY)}, "
        "group_by := ['model'], models := ['gpt-4o'])"
    ).to_arrow_table()
    assert table.schema == duckdb_openai.USAGE_COMPLETIONS_SCHEMA
    assert table.to_pylist() == sql.to_pylist() and table.num_rows > 0
    with pytest.raises(duckdb_openai.ConfigurationError, match="group_by"):
        duckdb_openai.read_costs(start, group_by=["model"], admin_key=ADMIN, base_url=emu.base_url)


# -- hostile pages of a token-paged list ------------------------------------------------------------------


def bucket(start: int, *results: dict[str, Any]) -> dict[str, Any]:
    return {"object": "bucket", "start_time": start, "end_time": start + DAY, "results": list(results)}


def usage_page(buckets: list[Any], has_more: bool, token: str | None) -> dict[str, Any]:
    return {"object": "page", "data": buckets, "has_more": has_more, "next_page": token}


ONE = {"object": "organization.usage.completions.result", "input_tokens": 1, "num_model_requests": 1}


@pytest.mark.parametrize(
    ("script", "says"),
    [
        # A token that comes back: the list would never end.
        ([usage_page([bucket(START, ONE)], True, "page_A+/="), usage_page([bucket(START + DAY, ONE)], True,
          "page_A+/=")], "gave the page token 'page_A+/=' twice"),
        # More, but no token to ask for it.
        ([usage_page([bucket(START, ONE)], True, None)], "has_more=true but gave no next_page"),
        # The same page served twice: its buckets do not follow the previous ones.
        ([usage_page([bucket(START, ONE)], True, "page_B=="), usage_page([bucket(START, ONE)], False, None)],
         "page served twice"),
        # Buckets out of time order within a page.
        ([usage_page([bucket(START + DAY, ONE), bucket(START, ONE)], False, None)], "do not follow"),
        ([usage_page([None], False, None)], "not an object with a \"results\" list"),
        ([usage_page([{"object": "bucket", "start_time": START, "end_time": START + DAY}], False, None)],
         "not an object with a \"results\" list"),
        ([{"object": "page", "data": [], "next_page": None}], 'no boolean "has_more"'),
    ],
    ids=["token-twice", "no-token", "page-twice", "out-of-order", "null-bucket", "no-results", "no-has-more"],
)  # fmt: skip
def test_a_token_paged_list_that_breaks_its_contract_is_a_clear_error(script: list[Any], says: str) -> None:
    with ScriptedServer([(200, body) for body in script]) as server:
        con, registration = connect(server.base_url, admin_key=ADMIN)
        with pytest.raises(duckdb.Error) as info:
            con.execute(f"SELECT * FROM usage_completions({ts(START)})").fetchall()
        registration.close()
    message = str(info.value)
    assert "ResponseFormatError" in message and says in message, message
    assert ADMIN not in message and "Traceback" not in message
    assert len(server.requests) <= 2
    # The token went back as the server wrote it: percent-encoded, so + / = arrive as themselves.
    if len(server.requests) == 2 and "page=" in server.requests[1].query:
        assert "page=page_" in server.requests[1].query and "+" not in server.requests[1].query
