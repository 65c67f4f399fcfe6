"""The WHERE clause (and a filter argument) always holds, whatever the server does with the parameters it
was sent; a row of another key is a broken contract; one failure is one error class in every form; and
what each family's requests carry (headers, advice) comes from its declaration."""

from __future__ import annotations

import copy
from typing import Any

import duckdb
import pytest

import duckdb_openai
from duckdb_openai.config import DEFAULT_BASE_URL, Settings
from duckdb_openai.errors import NotFoundError, ResponseFormatError, RunFetchError
from duckdb_openai.http.requester import Requester
from duckdb_openai.http.transport import Reply
from duckdb_openai.resources.families import ASSISTANTS_API, CHAT_API, RESPONSES_API
from tests.helpers import KEY, connect, rows
from tests.netservers import RUN_ID, STEPS, THREAD_ID
from tests.netservers import page as steps_page
from tests.scripted import ScriptedServer


def listing(data: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": False,
    }


def message(i: int, run_id: str | None) -> dict[str, Any]:
    return {"id": f"msg_{i}", "object": "thread.message", "created_at": 1_741_476_000 + i,
            "thread_id": "thread_a", "role": "assistant", "content": [], "run_id": run_id}  # fmt: skip


def completion(i: int, model: str) -> dict[str, Any]:
    return {"id": f"chatcmpl-{i}", "object": "chat.completion", "created": 1_741_476_000 + i, "model": model}


MESSAGES = [message(1, "run_1"), message(2, "run_2"), message(3, None), message(4, "run_1")]
COMPLETIONS = [
    completion(1, "gpt-4o"),
    completion(2, "o3"),
    completion(3, "gpt-4o"),
    completion(4, "gpt-4.1"),
]


# -- a server that ignores the filters it is sent ------------------------------------------------------------


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT id FROM openai.assistants.messages WHERE thread_id = 'thread_a' AND run_id = 'run_1'",
        "SELECT id FROM messages('thread_a', run_id := 'run_1')",
    ],
    ids=["catalog", "function"],
)
def test_messages_of_other_runs_never_pass_a_run_id_filter(sql: str) -> None:
    with ScriptedServer([(200, listing(MESSAGES))]) as server:
        con, registration = connect(server.base_url)
        got = [r["id"] for r in rows(con, sql)]
        registration.close()
    assert "run_id=run_1" in server.requests[0].query  # sent, and ignored by the server
    assert got == ["msg_1", "msg_4"]


def test_read_messages_holds_its_filter_too() -> None:
    with ScriptedServer([(200, listing(MESSAGES))]) as server:
        table = duckdb_openai.read_messages(
            "thread_a", run_id="run_1", api_key=KEY, base_url=server.base_url
        ).read_all()
    assert table.column("id").to_pylist() == ["msg_1", "msg_4"]


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT id FROM openai.chat.completions WHERE model = 'gpt-4o'", ["chatcmpl-1", "chatcmpl-3"]),
        ("SELECT id FROM chat_completions(model := 'gpt-4o')", ["chatcmpl-1", "chatcmpl-3"]),
        # Two requests (model is one value per request), each answered with every row: none twice.
        (
            "SELECT id FROM openai.chat.completions WHERE model IN ('gpt-4o', 'o3') ORDER BY id",
            ["chatcmpl-1", "chatcmpl-2", "chatcmpl-3"],
        ),
        (
            "SELECT id FROM openai.chat.completions WHERE model = 'gpt-4o' OR model = 'gpt-4.1' ORDER BY id",
            ["chatcmpl-1", "chatcmpl-3", "chatcmpl-4"],
        ),
    ],
    ids=["eq-catalog", "eq-function", "in", "or"],
)
def test_chat_completions_of_other_models_never_pass_and_never_repeat(sql: str, expected: list[str]) -> None:
    with ScriptedServer([(200, listing(COMPLETIONS))]) as server:
        con, registration = connect(server.base_url)
        got = [r["id"] for r in rows(con, sql)]
        registration.close()
    assert got == expected
    assert all("model=" in r.query for r in server.requests)


def test_a_metadata_filter_holds_pair_by_pair() -> None:
    tagged = [{**c, "metadata": {"customer": name}} for c, name in zip(COMPLETIONS, "abab", strict=True)]
    with ScriptedServer([(200, listing(tagged))]) as server:
        table = duckdb_openai.read_chat_completions(
            metadata={"customer": "a"}, api_key=KEY, base_url=server.base_url
        ).read_all()
    assert table.column("id").to_pylist() == ["chatcmpl-1", "chatcmpl-3"]


# -- a row of another key is a broken contract -------------------------------------------------------------


def test_a_step_of_another_run_is_a_response_format_error_in_every_form() -> None:
    foreign = copy.deepcopy(STEPS)
    foreign[1]["run_id"] = "run_other"
    sqls = [
        f"SELECT id FROM run_steps('{THREAD_ID}', '{RUN_ID}')",
        f"SELECT id FROM openai.assistants.run_steps WHERE thread_id = '{THREAD_ID}' AND run_id = '{RUN_ID}'",
    ]
    with ScriptedServer([(200, steps_page(foreign))]) as server:
        con, registration = connect(server.base_url)
        for sql in sqls:
            with pytest.raises(
                duckdb.Error, match=r"RunFetchError.*ResponseFormatError.*run_id is 'run_other'"
            ):
                con.execute(sql).fetchall()
        registration.close()
        with pytest.raises(RunFetchError) as info:
            duckdb_openai.read_run_steps(THREAD_ID, RUN_ID, api_key=KEY, base_url=server.base_url).read_all()
    assert isinstance(info.value, ResponseFormatError) and isinstance(info.value.cause, ResponseFormatError)


def test_an_item_of_another_conversation_is_a_response_format_error() -> None:
    item = {"id": "msg_1", "type": "message", "role": "user", "content": [], "conversation_id": "conv_other"}
    with ScriptedServer([(200, listing([item]))]) as server:
        con, registration = connect(server.base_url)
        with pytest.raises(duckdb.Error, match="conversation_id is 'conv_other'"):
            con.execute("SELECT * FROM conversation_items('conv_a')").fetchall()
        # The catalog's on_error-free form and a LATERAL with on_error := 'skip' agree on the class.
        with pytest.warns(
            RuntimeWarning, match="skipped 1 of 1 conversation_items requests.*ResponseFormatError"
        ):
            assert rows(con, "SELECT * FROM conversation_items('conv_a', on_error := 'skip')") == []
        registration.close()


# -- one failure, one error class, in every form -----------------------------------------------------------


def test_a_missing_run_is_the_same_error_in_every_form(emu: Any) -> None:
    con, registration = connect(emu.base_url)
    thread = emu.dataset.thread_ids[0]
    forms = [
        f"SELECT * FROM run_steps('{thread}', 'run_missing')",
        f"SELECT * FROM openai.assistants.run_steps WHERE thread_id = '{thread}' AND run_id = 'run_missing'",
        f"SELECT s.* FROM (SELECT '{thread}' AS t, 'run_missing' AS r) x, run_steps(x.t, x.r) s",
    ]
    for sql in forms:
        with pytest.raises(duckdb.Error) as info:
            con.execute(sql).fetchall()
        assert "RunFetchError: run_steps failed for thread_id=" in str(info.value), sql
        assert "NotFoundError: not found (404" in str(info.value), sql
    registration.close()
    with pytest.raises(RunFetchError) as raised:
        duckdb_openai.read_run_steps(thread, "run_missing", api_key=KEY, base_url=emu.base_url).read_all()
    # One class in Python too: a RunFetchError that is also the NotFoundError it wraps.
    assert isinstance(raised.value, NotFoundError) and raised.value.status == 404
    assert raised.value.keys == {"thread_id": thread, "run_id": "run_missing"}
    with pytest.raises(NotFoundError):
        duckdb_openai.read_run(thread, "run_missing", api_key=KEY, base_url=emu.base_url)


# -- what each family's requests carry ---------------------------------------------------------------------


def test_only_assistants_requests_carry_the_beta_header() -> None:
    response = {"id": "resp_1", "object": "response", "created_at": 1, "status": "completed", "output": []}
    script = [(200, steps_page(STEPS)), (200, response), (200, listing([]))]
    with ScriptedServer(script) as server:
        con, registration = connect(server.base_url)
        con.execute(f"SELECT * FROM run_steps('{THREAD_ID}', '{RUN_ID}')").fetchall()
        con.execute("SELECT * FROM response('resp_1')").fetchall()
        con.execute("SELECT * FROM chat_completions()").fetchall()
        registration.close()
    beta = [r.headers.get("openai-beta") for r in server.requests]
    assert beta == ["assistants=v2", None, None]
    assert all(r.headers["authorization"] == f"Bearer {KEY}" for r in server.requests)


def test_the_retired_advice_is_for_the_assistants_paths_only() -> None:
    requester = Requester.__new__(Requester)
    requester.settings = Settings.resolve(api_key=KEY, env={})
    requester._static_secrets, requester._tokens = [KEY], None
    assert requester.settings.base_url == DEFAULT_BASE_URL
    reply = Reply(404, "Not Found", {"content-type": "application/json"},
                  b'{"error": {"message": "No such thing", "type": "invalid_request_error"}}')  # fmt: skip
    assistants = str(requester._api_error(reply, ASSISTANTS_API))
    assert "the Assistants API was retired at https://api.openai.com/v1" in assistants
    for family in (RESPONSES_API, CHAT_API):
        assert str(requester._api_error(reply, family)) == "not found (404): No such thing"


def test_the_progress_bar_counts_what_the_resource_declares(
    emu: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    with duckdb_openai.Client(api_key=KEY, base_url=emu.base_url, progress="on", cache=False) as client:
        threads = emu.dataset.thread_ids[:3]
        client.fan_out([duckdb_openai.MESSAGES.bind_list({"thread_id": t}) for t in threads])
    err = capsys.readouterr().err
    assert "threads: 100%" in err and "messages=" in err and "steps=" not in err


def test_progress_true_binds_in_sql(emu: Any) -> None:
    con, registration = connect(emu.base_url)
    thread = emu.dataset.thread_ids[0]
    assert con.execute(f"SELECT count(*) FROM runs('{thread}', progress := true)").fetchone()[0] > 0
    assert con.execute(f"SELECT count(*) FROM runs('{thread}', progress := false)").fetchone()[0] > 0
    registration.close()
