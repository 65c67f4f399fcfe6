"""The Python readers: every resource as pyarrow data, equal to its SQL form, keys checked before any
request is sent."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pytest

import duckdb_openai
from duckdb_openai.emulator import Emulator
from duckdb_openai.emulator.successors import Successors
from duckdb_openai.errors import ConfigurationError, InvalidIdError
from tests.helpers import KEY, rows


def ids(data: pa.Table | pa.RecordBatchReader) -> list[str]:
    table = data.read_all() if isinstance(data, pa.RecordBatchReader) else data
    return [str(v) for v in table.column("id").to_pylist()]


def cases(emu: Emulator) -> list[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any], str, pa.Schema]]:
    run = emu.dataset.find_run(step_count=101)
    population = Successors(emu.dataset.seed)
    response = population.infos[3]
    completion = rows_of(emu, "SELECT id FROM chat_completions() LIMIT 1")[0]
    return [
        (duckdb_openai.read_runs, (run.thread_id,), {"sort": "desc"},
         f"runs('{run.thread_id}', sort := 'desc')", duckdb_openai.RUNS_SCHEMA),
        (duckdb_openai.read_messages, (run.thread_id,), {"run_id": run.run_id},
         f"messages('{run.thread_id}', run_id := '{run.run_id}')", duckdb_openai.MESSAGES_SCHEMA),
        (duckdb_openai.read_assistants, (), {}, "assistants()", duckdb_openai.ASSISTANTS_SCHEMA),
        (duckdb_openai.read_thread, (run.thread_id,), {}, f"thread('{run.thread_id}')",
         duckdb_openai.THREADS_SCHEMA),
        (duckdb_openai.read_run, (run.thread_id, run.run_id), {}, f"run('{run.thread_id}', '{run.run_id}')",
         duckdb_openai.RUNS_SCHEMA),
        (duckdb_openai.read_response, (response.response_id,), {}, f"response('{response.response_id}')",
         duckdb_openai.RESPONSES_SCHEMA),
        (duckdb_openai.read_response_input_items, (response.response_id,), {},
         f"response_input_items('{response.response_id}')", duckdb_openai.RESPONSE_INPUT_ITEMS_SCHEMA),
        (duckdb_openai.read_conversation, (response.conversation_id,), {},
         f"conversation('{response.conversation_id}')", duckdb_openai.CONVERSATIONS_SCHEMA),
        (duckdb_openai.read_conversation_items, (response.conversation_id,), {"sort": "desc"},
         f"conversation_items('{response.conversation_id}', sort := 'desc')",
         duckdb_openai.CONVERSATION_ITEMS_SCHEMA),
        (duckdb_openai.read_chat_completions, (), {"metadata": {"customer": "Globex"}, "model": "gpt-4.1"},
         "chat_completions(model := 'gpt-4.1', metadata := MAP {'customer': 'Globex'})",
         duckdb_openai.CHAT_COMPLETIONS_SCHEMA),
        (duckdb_openai.read_chat_completion, (completion,), {}, f"chat_completion('{completion}')",
         duckdb_openai.CHAT_COMPLETIONS_SCHEMA),
        (duckdb_openai.read_chat_completion_messages, (completion,), {},
         f"chat_completion_messages('{completion}')", duckdb_openai.CHAT_COMPLETION_MESSAGES_SCHEMA),
    ]  # fmt: skip


def rows_of(emu: Emulator, sql: str) -> list[str]:
    import duckdb

    con = duckdb.connect()
    registration = duckdb_openai.register(con, api_key=KEY, base_url=emu.base_url, progress="off")
    try:
        return [str(r["id"]) for r in rows(con, sql)]
    finally:
        registration.close()


def test_every_reader_equals_its_sql_form(emu: Emulator) -> None:
    with duckdb_openai.Client(api_key=KEY, base_url=emu.base_url, progress="off") as client:
        for reader, args, options, sql, schema in cases(emu):
            got = reader(*args, client=client, **options)
            table = got.read_all() if isinstance(got, pa.RecordBatchReader) else got
            assert table.schema == schema, reader.__name__
            expected = rows_of(emu, f"SELECT id FROM {sql}")
            assert ids(table) == expected and expected, reader.__name__


def test_a_reader_makes_and_closes_its_own_client(emu: Emulator) -> None:
    run = emu.dataset.find_run(step_count=1)
    table = duckdb_openai.read_runs(run.thread_id, api_key=KEY, base_url=emu.base_url).read_all()
    assert run.run_id in ids(table)


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda: duckdb_openai.read_runs("thread/../x"), InvalidIdError),
        (lambda: duckdb_openai.read_chat_completions(model=4), ConfigurationError),
        (lambda: duckdb_openai.read_response_input_items("resp_a", sort="newest"), ConfigurationError),
    ],
)
def test_bad_input_fails_before_any_request(emu: Emulator, call: Callable[[], Any], error: type) -> None:
    emu.reset()
    with pytest.raises(error):
        call()
    assert emu.stats()["requests"] == 0


@pytest.mark.parametrize(
    "call",
    [
        lambda url: duckdb_openai.read_messages("thread_a", run_id="run?x=1", api_key=KEY, base_url=url),
        lambda url: duckdb_openai.read_chat_completions(model="gpt\n4o", api_key=KEY, base_url=url),
        lambda url: duckdb_openai.read_chat_completions(model="x" * 300, api_key=KEY, base_url=url),
    ],
)
def test_a_filter_value_no_object_can_hold_selects_nothing_and_sends_nothing(
    emu: Emulator, call: Callable[[str], pa.RecordBatchReader]
) -> None:
    # A filter selects: as SQL's WHERE model = '' gives no rows, so does a value no object can hold.
    emu.reset()
    table = call(emu.base_url).read_all()
    assert table.num_rows == 0 and table.schema.names[0] == "id"
    assert emu.stats()["requests"] == 0


@pytest.mark.parametrize("sort", ["asc", "desc"])
def test_a_list_read_after_an_id_gives_exactly_what_follows_it(emu: Emulator, sort: str) -> None:
    # The incremental read a sync makes: everything after the last id it has, in one chain of pages.
    with duckdb_openai.Client(api_key=KEY, base_url=emu.base_url, cache=False) as client:
        whole = ids(client.read(duckdb_openai.CHAT_COMPLETIONS.bind_list({}, {"sort": sort})))
        assert len(whole) > 200  # several pages, so both ends would be used without `after`
        emu.reset()
        request = duckdb_openai.CHAT_COMPLETIONS.bind_list({}, {"sort": sort}, after=whole[150])
        assert ids(client.read(request)) == whole[151:]
        # ceil(rest / 100) pages, and every one asked after the previous page's last id, from the start.
        stats = emu.stats()["by_endpoint"]["chat.completions.list"]
        assert sum(stats.values()) == -(-(len(whole) - 151) // 100)
        with pytest.raises(InvalidIdError, match="after"):
            duckdb_openai.CHAT_COMPLETIONS.bind_list({}, {}, after="x/../y")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda c: duckdb_openai.read_run_steps("thread_a", "run_b", sortt="desc", api_key=KEY),
            "unknown option 'sortt': did you mean 'sort'? read_run_steps() takes sort, include_content, "
            "client, and the settings: api_key,",
        ),
        (
            lambda c: duckdb_openai.read_run_step("thread_a", "run_b", "step_c", include_contnet=True),
            "unknown option 'include_contnet': did you mean 'include_content'? read_run_step() takes",
        ),
        (
            lambda c: duckdb_openai.read_messages("thread_a", runid="run_b", client=c),
            "unknown option 'runid': did you mean 'run_id'? read_messages() takes run_id, sort, client",
        ),
        (
            lambda c: duckdb_openai.read_chat_completions(modle="gpt-4o", client=c),
            "unknown option 'modle': did you mean 'model'?",
        ),
        (
            lambda c: duckdb_openai.read_runs("thread_a", client=c, timeout=5),
            "pass either client= or settings (timeout) to read_runs(), not both",
        ),
        (
            lambda c: duckdb_openai.Client(setings=c.settings),
            "unknown setting 'setings': did you mean 'settings'? Client() takes settings, and the "
            "settings: api_key",
        ),
        (
            lambda c: duckdb_openai.Client(settings=c.settings, timeout=5),
            "pass either settings= or the settings as keywords (timeout) to Client(), not both",
        ),
    ],
)
def test_a_misspelled_option_names_the_closest_and_sends_nothing(
    emu: Emulator, call: Callable[[duckdb_openai.Client], Any], message: str
) -> None:
    """A misspelled option of a reader is no setting either: a ConfigurationError naming the closest of
    the reader's own options and the settings, not one naming only settings, and never ignored beside
    `client=` (whose settings are its own)."""
    with duckdb_openai.Client(api_key=KEY, base_url=emu.base_url) as client:
        emu.reset()
        with pytest.raises(ConfigurationError) as raised:
            call(client)
        assert message in str(raised.value)
        assert emu.stats()["requests"] == 0
