"""What the Prism mock of the contracts (tests/test_prism.py) found, each case reduced to the body that
showed it and served by a ScriptedServer, so it runs fast and without Prism.

- The spec types a response's `created_at` and `completed_at` as a number (`format: unixtime`), and
  Prism sends fractions of a second: every `response(...)` failed with "created_at holds 76032155.98
  where the schema has a whole number". Now kept to the microsecond; a run step's integer `created_at`
  with a fraction is still an error (tests/test_hostile_pages.py).
- An error after the first page of a catalog table (`openai.chat.completions`) reached SQL as
  "Unknown error: ... Detail: Python exception: Traceback ...": pyarrow's batch reader attaches the
  traceback to any exception raised while DuckDB pulls a later batch. The catalog now streams through
  its own Arrow C stream (sql/stream.py), whose error is one line: "failed: FetchError: ...:
  ResponseFormatError: ..." (tests/test_stream.py holds the other pages, thread counts and interrupts).
"""

from __future__ import annotations

import datetime
import re
from typing import Any

import duckdb
import pytest

from tests.helpers import KEY, connect, rows
from tests.scripted import ScriptedServer

UTC = datetime.UTC


def response(**fields: Any) -> dict[str, Any]:
    """A small completed response."""
    body = {
        "id": "resp_1",
        "object": "response",
        "created_at": 1_741_476_777,
        "status": "completed",
        "model": "gpt-4o",
        "output": [],
    }
    body.update(fields)
    return body


def completion(i: int) -> dict[str, Any]:
    return {"id": f"chatcmpl-{i}", "object": "chat.completion", "created": 1_741_476_777 + i, "model": "m"}


def listing(data: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    ids = [d["id"] for d in data]
    return {
        "object": "list",
        "data": data,
        "first_id": ids[0] if ids else None,
        "last_id": ids[-1] if ids else None,
        "has_more": has_more,
    }


def error_of(con: duckdb.DuckDBPyConnection, sql: str) -> str:
    with pytest.raises(duckdb.Error) as info:
        con.execute(sql).fetchall()
    return str(info.value)


def test_a_response_time_with_a_fraction_of_a_second_is_kept_to_the_microsecond() -> None:
    body = response(created_at=1_741_476_777.25, completed_at=1_741_476_778.1234567)
    with ScriptedServer([(200, body)]) as server:
        con, registration = connect(server.base_url)
        got = rows(con, "SELECT created_at, completed_at FROM response('resp_1')")
        registration.close()
    start = datetime.datetime(2025, 3, 8, 23, 32, 57, tzinfo=UTC)
    assert got == [
        {
            "created_at": start + datetime.timedelta(microseconds=250_000),
            "completed_at": start + datetime.timedelta(seconds=1, microseconds=123_457),
        }
    ]


@pytest.mark.parametrize(
    ("created_at", "says"),
    [
        (True, "created_at holds True, which does not fit the schema"),
        ("2025-03-08", "created_at holds '2025-03-08', which does not fit the schema"),
        (1e300, "created_at holds 1e+300 seconds, which does not fit the schema's timestamp"),
    ],
)
def test_a_response_time_that_is_no_time_is_a_response_format_error(created_at: Any, says: str) -> None:
    with ScriptedServer([(200, response(created_at=created_at))]) as server:
        con, registration = connect(server.base_url)
        message = error_of(con, "SELECT id FROM response('resp_1')")
        registration.close()
    assert "ResponseFormatError" in message and says in message, message
    assert "Traceback" not in message and KEY not in message


def test_an_error_after_the_first_page_of_a_catalog_table_is_a_clear_package_error() -> None:
    script = [
        (200, listing([completion(1), completion(2)], has_more=True)),
        (200, listing([], has_more=True)),  # more to come, yet no cursor to continue from
    ]
    with ScriptedServer(script) as server:
        con, registration = connect(server.base_url)
        message = error_of(con, "SELECT id FROM openai.chat.completions")
        registration.close()
    assert "has_more=true but gave no rows" in message, message
    assert "ResponseFormatError" in message and "Traceback" not in message, message


def test_an_error_after_the_first_page_of_a_catalog_table_is_one_line_naming_its_class() -> None:
    """DuckDB's words, then the package error as DuckDB words one raised by the source itself: no code
    in front ("Invalid: "), no detail behind ("Detail: Python exception: Traceback ...")."""
    script = [
        (200, listing([completion(1), completion(2)], has_more=True)),
        (200, listing([], has_more=True)),
    ]
    with ScriptedServer(script) as server:
        con, registration = connect(server.base_url)
        message = error_of(con, "SELECT id FROM openai.chat.completions")
        registration.close()
    hidden = "openai.chat.completions source (made by duckdb_openai.register on this connection or cursor)"
    assert re.fullmatch(
        f"Invalid Input Error: reading the stream registered as '{re.escape(hidden)}' failed: "
        "FetchError: chat_completions failed for the whole list: ResponseFormatError: the API said "
        r"has_more=true but gave no rows or no last_id \(after='chatcmpl-2'\); [^\n]*",
        message,
    ), message
    assert "Detail" not in message and KEY not in message
