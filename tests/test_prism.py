"""Issue 12's proof against Prism: a mock of the contract in dynamic mode (a new random, spec-valid body for
every request) never makes a query fail with anything but a clear package error, and never returns rows
that are not in the pages it served.

Two Prism servers run (successors.yaml and assistants.yaml), each behind a RecordingProxy that keeps
every body it sent. Every SQL function (and the catalog tables of the Responses era) is queried
ROUNDS times in two modes:

- `raw`: Prism's bodies as they come. Random ids, cursors that name no object, `has_more` that may
  never end: most queries must end as a ResponseFormatError (or the max_pages cap), never anything else.
- `coherent`: the proxy fills in what a generator cannot know and a server always does (a retrieved
  object's id is the one asked for; `first_id` / `last_id` name the page's first and last object), so
  the random objects themselves reach the decoders and most queries end as rows.
- `429`: Prism answers with the spec's rate-limit response (`Prefer: code=429`: a random error body and
  `Retry-After`, mostly of days): every query fails at once as a RateLimitError that says how long the
  server asked to wait, or with `on_error := 'skip'` yields no rows and warns (a few rounds, each on a
  new connection). The chat completion paths declare no 429 and are left out.

Fan-outs (a LATERAL join over several keys, with and without `on_error := 'skip'`) are among the
queries: their pages arrive together and are decoded together.

Each query ends as rows, each of them an object a served body held (its id, its typed scalar fields and
its `json` text match that object), or as a DuckDB error whose cause is a package error class; never a
crash, a traceback, a raw pyarrow or Python error, or a wait past the timeout.

Prism's `--seed` makes every request of an endpoint answer the same body, so the servers run unseeded;
a failing case writes the bodies it was served to a file named in the failure, to replay with a
ScriptedServer (tests/test_prism_findings.py holds the cases found so far).

Slow (Prism takes 3 s to start, the loops under a minute; installing it the first time 10-20 s):
`make test-quick` leaves it out.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import re
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

import duckdb_openai
from duckdb_openai import errors
from duckdb_openai.resources import resource
from duckdb_openai.resources.base import Resource
from duckdb_openai.schema import is_json, is_object_json
from tests.prism import (
    ASSISTANTS,
    KEY,
    LIST_PATH,
    SUCCESSORS,
    PrismServer,
    PrismUnavailable,
    RecordingProxy,
    Served,
)

pytestmark = pytest.mark.slow

#: Queries of each kind per mode: each one gets fresh random bodies (DUCKDB_OPENAI_PRISM_ROUNDS=200 for
#: a longer soak).
ROUNDS = int(os.environ.get("DUCKDB_OPENAI_PRISM_ROUNDS", "30"))
#: Queries of each kind answered with the spec's 429.
RATE_LIMITED_ROUNDS = 5
#: The resources whose paths declare no 429 (Prism answers `Prefer: code=429` there with its own 404).
NO_429 = {"chat_completions", "chat_completion_messages"}
#: A list whose has_more never ends stops here, with a ResponseFormatError.
MAX_PAGES = 6
TIMEOUT = 10.0
#: The longest Retry-After sat out; the spec's 429 asks for 1 second or (from Prism) far more.
MAX_WAIT = 2.0
#: Longer than any query can take within the timeout and the page cap: past it, the query hung.
QUERY_BOUND = 60.0
#: The error classes a query may end with: the package's own, whose messages say what happened.
PACKAGE_ERRORS = {name for name in errors.__all__ if name[0].isupper()}
#: Signs of an error that escaped the package's handling.
RAW_SIGNS = re.compile(
    r"Traceback|Arrow(Invalid|TypeError|NotImplementedError|Exception)|\b(KeyError|TypeError|ValueError|"
    r"IndexError|AttributeError|RecursionError|OverflowError|UnicodeDecodeError|AssertionError|"
    r"JSONDecodeError)\b|Invalid unicode"
)

#: How DuckDB words a package error: a SQL function's FetchError names the resource and its keys, then
#: the cause's class; the catalog form names its hidden source, then the class, whether the first page
#: failed ("exporting a stream ... failed: ") or a later one ("reading the stream ... failed: ").
CAUSE = re.compile(r"(?:failed for .*?|(?:exporting|reading) (?:a |the )?stream .*? failed): (\w+)")
#: How on_error := 'skip' words what it skipped ("skipped 4 of 6 ...: 1 x ResponseFormatError: ...").
CAUSE_IN_WARNING = re.compile(r"skipped \d+ of \d+ .*: \d+ x (" + "|".join(sorted(PACKAGE_ERRORS)) + r"): ")


@dataclass(frozen=True)
class Query:
    server: str  # "successors" or "assistants"
    sql: str
    resource: Resource
    #: Over several keys (a LATERAL join): ids may repeat across keys, as Prism's words do.
    fan_out: bool = False

    @property
    def id(self) -> str:
        return re.sub(r"\W+", "_", self.sql.removeprefix("SELECT * FROM ")).strip("_")[:60]


def _q(server: str, sql: str, name: str) -> Query:
    return Query(server, sql, resource(name), fan_out=" range(" in sql)


QUERIES = [
    _q("successors", "SELECT * FROM response('resp_p1')", "response"),
    _q("successors", "SELECT * FROM response_input_items('resp_p1')", "response_input_items"),
    _q("successors", "SELECT * FROM response_input_items('resp_p1', sort := 'desc')", "response_input_items"),
    _q("successors", "SELECT * FROM conversation('conv_p1')", "conversation"),
    _q("successors", "SELECT * FROM conversation_items('conv_p1')", "conversation_items"),
    _q("successors", "SELECT * FROM chat_completions()", "chat_completions"),
    _q(
        "successors",
        "SELECT * FROM chat_completions(model := 'gpt-4o', metadata := MAP {'topic': 'billing'})",
        "chat_completions",
    ),
    _q("successors", "SELECT * FROM chat_completion('chatcmpl-p1')", "chat_completion"),
    _q("successors", "SELECT * FROM chat_completion_messages('chatcmpl-p1')", "chat_completion_messages"),
    _q("successors", "SELECT * FROM openai.responses.responses WHERE id = 'resp_p2'", "response"),
    _q(
        "successors",
        "SELECT * FROM openai.conversations.items WHERE conversation_id = 'conv_p2'",
        "conversation_items",
    ),
    _q("successors", "SELECT * FROM openai.chat.completions WHERE model = 'gpt-4o'", "chat_completions"),
    _q("successors", "SELECT r.* FROM range(8) t(i), response('resp_f' || i) r", "response"),
    _q(
        "successors",
        "SELECT c.* FROM range(6) t(i), conversation_items('conv_f' || i, on_error := 'skip') c",
        "conversation_items",
    ),
    _q("assistants", "SELECT * FROM run_steps('thread_p1', 'run_p1')", "run_steps"),
    _q(
        "assistants",
        "SELECT s.* FROM range(8) t(i), run_steps('thread_f', 'run_f' || i, on_error := 'skip') s",
        "run_steps",
    ),
    _q("assistants", "SELECT m.* FROM range(6) t(i), message('thread_f', 'msg_f' || i) m", "message"),
    _q("assistants", "SELECT * FROM run_step('thread_p1', 'run_p1', 'step_p1')", "run_step"),
    _q("assistants", "SELECT * FROM runs('thread_p1')", "runs"),
    _q("assistants", "SELECT * FROM run('thread_p1', 'run_p1')", "run"),
    _q("assistants", "SELECT * FROM messages('thread_p1')", "messages"),
    _q("assistants", "SELECT * FROM message('thread_p1', 'msg_p1')", "message"),
    _q("assistants", "SELECT * FROM assistants()", "assistants"),
    _q("assistants", "SELECT * FROM assistant('asst_p1')", "assistant"),
    _q("assistants", "SELECT * FROM thread('thread_p1')", "thread"),
]


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, tuple[RecordingProxy, duckdb.DuckDBPyConnection]]]:
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        try:
            successors = stack.enter_context(PrismServer(SUCCESSORS))
            assistants = stack.enter_context(PrismServer(ASSISTANTS))
        except PrismUnavailable as exc:
            unavailable = str(exc)
        else:
            unavailable = ""
        if unavailable:  # a failure, not a skip: the project runs no skipped checks
            pytest.fail(unavailable, pytrace=False)
        successors_proxy = stack.enter_context(RecordingProxy(successors))
        assistants_proxy = stack.enter_context(RecordingProxy(assistants))
        print(f"Prism up in {time.monotonic() - started:.1f} s")
        made = {"successors": successors_proxy, "assistants": assistants_proxy}
        yield {name: (proxy, stack.enter_context(_connection(proxy))) for name, proxy in made.items()}


@contextlib.contextmanager
def _connection(proxy: RecordingProxy) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection registered against `proxy`, closed afterwards."""
    con = duckdb.connect()
    registration = duckdb_openai.register(
        con,
        api_key=KEY,
        base_url=proxy.base_url,
        timeout=TIMEOUT,
        max_pages=MAX_PAGES,
        max_wait=MAX_WAIT,
        retry_initial_delay=0.01,
        retry_max_delay=0.05,
        progress="off",
        # A mock answers each request with new random objects, so what the API promises never changes
        # (a finished run's steps) does change here: each round must see only what it was served.
        cache=False,
    )
    try:
        yield con
    finally:
        registration.close()
        con.close()


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def served_objects(served: list[Served]) -> dict[str, list[dict[str, Any]]]:
    """Every object the 200 answers held (a list page's `data`, a retrieved object), by id."""
    found: dict[str, list[dict[str, Any]]] = {}
    for answer in served:
        document = answer.document() if answer.status == 200 else None
        if not isinstance(document, dict):
            continue
        objects = document.get("data") if LIST_PATH.search(answer.path) else [document]
        for item in objects if isinstance(objects, list) else []:
            if isinstance(item, dict) and isinstance(item.get("id"), str):
                found.setdefault(item["id"], []).append(item)
    return found


def _same(column: pa.Field, value: Any, sent: Any) -> bool:
    """Whether a row's `value` in a top-level column matches what the API `sent` in that field, where it
    is exact to compare: strings, whole numbers, booleans, timestamps from whole seconds, JSON texts,
    and a list of items (a response's `output`) by each item's `json`."""
    t = column.type
    if is_json(column):
        return bool(value == _dumps(sent))
    if pa.types.is_string(t) and isinstance(sent, str):
        return bool(value == sent)
    if pa.types.is_boolean(t) and isinstance(sent, bool):
        return bool(value == sent)
    if pa.types.is_integer(t) and isinstance(sent, int) and not isinstance(sent, bool):
        return bool(value == sent)
    if pa.types.is_timestamp(t) and isinstance(sent, int) and not isinstance(sent, bool):
        return bool(value == datetime.datetime.fromtimestamp(sent, datetime.UTC))
    if pa.types.is_list(t) and pa.types.is_struct(t.value_type) and isinstance(sent, list):
        json_fields = [f.name for f in t.value_type if is_object_json(f)]
        if json_fields and isinstance(value, list):
            return len(value) == len(sent) and all(
                v[json_fields[0]] == _dumps(s) for v, s in zip(value, sent, strict=True)
            )
    return True


def _differs(column: pa.Field, row: dict[str, Any], sent: dict[str, Any]) -> bool:
    if is_object_json(column):  # the whole object, as it was sent
        return bool(row.get(column.name) != _dumps(sent))
    if sent.get(column.name) is None:
        return False
    return not _same(column, row.get(column.name), sent[column.name])


def row_problem(row: dict[str, Any], query: Query, objects: dict[str, list[dict[str, Any]]]) -> str | None:
    """Why `row` is not one of the served objects, or None."""
    row_id = row.get(query.resource.item_column)
    if row_id not in objects:
        return f"row id {row_id!r} is in no body that was served"
    wrong: list[str] = []
    for candidate in objects[row_id]:
        wrong = [f.name for f in query.resource.schema if _differs(f, row, candidate)]
        if not wrong:
            return None
    return f"row {row_id!r} differs from every served object of that id in {wrong}"


def error_problem(message: str, query: Query) -> str | None:
    """Why an error message is not a clear package error, or None."""
    if RAW_SIGNS.search(message):
        return "a raw error escaped"
    cause = CAUSE.search(message)
    if cause is None or cause.group(1) not in PACKAGE_ERRORS:
        return "the cause is not a package error"
    names = (query.resource.name, query.resource.item_name, query.resource.catalog_table)
    if not any(name in message for name in names):
        return "the message does not name the resource"
    return None


def run_rounds(
    servers: dict[str, tuple[RecordingProxy, duckdb.DuckDBPyConnection]],
    query: Query,
    *,
    coherent: bool,
    prefer: str | None = None,
    rounds: int = ROUNDS,
    fresh: bool = False,
) -> tuple[dict[str, int], list[str]]:
    """Run `query` `rounds` times (each on a new connection if `fresh`); the tally of outcomes and the
    problems found."""
    proxy, shared = servers[query.server]
    proxy.coherent, proxy.prefer = coherent, prefer
    tally: dict[str, int] = {}
    problems: list[str] = []
    keep: Path | None = None  # made at the first problem, for the bodies that showed it
    for round_ in range(rounds):
        with contextlib.ExitStack() as stack:
            con = stack.enter_context(_connection(proxy)) if fresh else shared
            outcome, problem = _one_round(proxy, con, query)
        tally[outcome] = tally.get(outcome, 0) + 1
        if problem:
            keep = keep or Path(tempfile.mkdtemp(prefix="prism-findings-"))
            saved = keep / f"round{round_}.json"
            served = [
                {"path": s.path, "query": s.query, "status": s.status, "body": s.body.decode()}
                for s in proxy.served
            ]
            saved.write_text(json.dumps(served))
            problems.append(f"{problem} (bodies served: {saved})")
    return tally, problems


def _one_round(proxy: RecordingProxy, con: duckdb.DuckDBPyConnection, query: Query) -> tuple[str, str | None]:
    """Run `query` once: its outcome for the tally, and what went wrong, if anything."""
    proxy.served.clear()
    started = time.monotonic()
    problem: str | None = None
    try:
        # on_error := 'skip' warns of the keys it skipped: their causes must be as clear as errors.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = con.execute(query.sql)
            names = [d[0] for d in result.description]
            rows = [dict(zip(names, r, strict=True)) for r in result.fetchall()]
    except duckdb.Error as exc:
        message = str(exc)
        outcome = _outcome(message)
        problem = error_problem(message, query)
        if problem:
            problem += f": {message[:600]}"
    else:
        outcome = "rows" if rows else "no rows"
        skipped = [str(w.message) for w in caught if "skipped" in str(w.message)]
        if skipped:
            outcome += ", keys skipped"
            if RAW_SIGNS.search(" ".join(skipped)) or not CAUSE_IN_WARNING.search(skipped[0]):
                problem = f"an unclear warning: {skipped[0][:600]}"
        objects = served_objects(proxy.served)
        ids = [r[query.resource.item_column] for r in rows]
        if len(set(ids)) != len(ids) and not query.fan_out:
            problem = f"an id came back twice: {ids}"
        for row in rows:
            problem = problem or row_problem(row, query, objects)
    elapsed = time.monotonic() - started
    if elapsed > QUERY_BOUND:
        problem = f"took {elapsed:.0f} s"
    return outcome, problem


def _outcome(message: str) -> str:
    """An error message shortened to its kind, for the tally: values and numbers left out."""
    cause = CAUSE.search(message)
    text = message[cause.start(1) :] if cause else message
    return re.sub(r"'[^']*'|-?\d[\d.e+-]*", "…", text.split(". Detail:", 1)[0])[:100]


def _report(query: Query, mode: str, tally: dict[str, int]) -> None:
    print(f"\n{mode:9} {query.sql}")
    for outcome, count in sorted(tally.items(), key=lambda kv: -kv[1]):
        print(f"  {count:3}  {outcome}")


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: q.id)
def test_raw_prism_bodies_end_as_rows_or_a_package_error(
    servers: dict[str, tuple[RecordingProxy, duckdb.DuckDBPyConnection]], query: Query
) -> None:
    tally, problems = run_rounds(servers, query, coherent=False)
    _report(query, "raw", tally)
    assert not problems, f"{len(problems)} of {ROUNDS} queries went wrong:\n" + "\n".join(problems[:5])


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: q.id)
def test_coherent_prism_bodies_end_as_served_rows_or_a_package_error(
    servers: dict[str, tuple[RecordingProxy, duckdb.DuckDBPyConnection]], query: Query
) -> None:
    tally, problems = run_rounds(servers, query, coherent=True)
    _report(query, "coherent", tally)
    assert not problems, f"{len(problems)} of {ROUNDS} queries went wrong:\n" + "\n".join(problems[:5])


@pytest.mark.parametrize("query", [q for q in QUERIES if q.resource.name not in NO_429], ids=lambda q: q.id)
def test_the_specs_429_ends_as_a_rate_limit_error(
    servers: dict[str, tuple[RecordingProxy, duckdb.DuckDBPyConnection]], query: Query
) -> None:
    """Prism answers every request with the spec's 429 (`Prefer: code=429`): a random error body and a
    random `Retry-After` of at least a second, mostly days. Every query fails at once as a RateLimitError
    naming the wait, or after sitting out a short one."""
    # A fresh connection each time: the client keeps honouring a 429's wait (days) for later queries.
    tally, problems = run_rounds(
        servers, query, coherent=False, prefer="code=429", rounds=RATE_LIMITED_ROUNDS, fresh=True
    )
    _report(query, "429", tally)
    assert not problems, f"{len(problems)} queries went wrong:\n" + "\n".join(problems[:5])
    assert all("RateLimitError: " in outcome or "keys skipped" in outcome for outcome in tally), tally


def test_the_checks_catch_a_row_that_was_not_served_and_a_raw_error() -> None:
    """The checks above, on made-up rows: they must be able to fail."""
    query = next(q for q in QUERIES if q.resource.name == "conversation_items")
    item = {"id": "msg_1", "type": "message", "role": "user", "content": []}
    body = {"object": "list", "data": [item], "first_id": "msg_1", "last_id": "msg_1", "has_more": False}
    objects = served_objects([Served("/conversations/c/items", "", 200, json.dumps(body).encode())])
    row = {"id": "msg_1", "type": "message", "role": "user", "content": [], "json": _dumps(item)}
    assert row_problem(row, query, objects) is None
    assert "in no body" in str(row_problem({**row, "id": "msg_2"}, query, objects))
    assert "['role']" in str(row_problem({**row, "role": "assistant"}, query, objects))
    assert "['json']" in str(row_problem({**row, "json": "{}"}, query, objects))
    udf = "Invalid Input Error: Python exception occurred while executing the UDF: "
    clear = f"{udf}FetchError: conversation_items failed for conversation_id='c': ResponseFormatError: x"
    assert error_problem(clear, query) is None
    assert error_problem(f"{udf}ArrowInvalid: JSON parse error", query) == "a raw error escaped"
    stream = (
        "Invalid Input Error: reading the stream registered as 'openai.conversations.items source (made by "
        "duckdb_openai.register on this connection or cursor)' failed: "
    )
    midstream = f"{stream}FetchError: conversation_items failed for the whole list: ResponseFormatError: x"
    assert error_problem(midstream, query) is None  # a later page's error (sql/stream.py)
    detail = ". Detail: Python exception: Traceback (most recent call last):\n  File ..., in <genexpr>\n"
    traced = f"{stream}Invalid: FetchError: conversation_items failed: x{detail}pyarrow.lib.ArrowInvalid: x"
    assert error_problem(traced, query) == "a raw error escaped"  # as pyarrow's own stream worded it
    raw = f"{stream}Invalid: JSON parse error{detail}pyarrow.lib.ArrowInvalid: JSON parse error"
    assert error_problem(raw, query) == "a raw error escaped"
    assert error_problem(
        f"{udf}FetchError: conversation_items failed for conversation_id='c': Boom: x", query
    )
