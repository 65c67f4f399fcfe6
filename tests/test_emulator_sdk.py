"""The official ``openai`` SDK as an independent client of the emulator."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import openai
import pytest
from openai.types.beta.threads.runs import FileSearchToolCall, RunStep, RunStepInclude, ToolCallsStepDetails

from duckdb_openai.emulator import Emulator, RunInfo
from duckdb_openai.emulator.data import INCLUDE_FILE_SEARCH_CONTENT

CONTENT: RunStepInclude = "step_details.tool_calls[*].file_search.results[*].content"

# The SDK marks the Assistants API deprecated; it still speaks it.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

EmulatorFactory = Callable[..., Emulator]


@pytest.fixture
def client(emulator: Emulator) -> Iterator[openai.OpenAI]:
    emulator.reset()
    with openai.OpenAI(base_url=emulator.base_url, api_key="sk-test", max_retries=0) as sdk:
        yield sdk


def as_api_json(step: RunStep) -> dict[str, Any]:
    """The step as the API sent it (fields the response left out stay out)."""
    return step.model_dump(mode="json", exclude_unset=True)


def file_search_run(emulator: Emulator) -> tuple[RunInfo, str]:
    for run in emulator.dataset.runs:
        if run.step_count > 200:
            continue
        for step in emulator.dataset.steps(run.thread_id, run.run_id, include_content=True):
            for call in step["step_details"].get("tool_calls", []):
                if call["type"] == "file_search" and call["file_search"]["results"]:
                    return run, step["id"]
    raise AssertionError("no file search results in the dataset")


def test_include_constant_is_the_sdks() -> None:
    assert CONTENT == INCLUDE_FILE_SEARCH_CONTENT


@pytest.mark.slow
def test_auto_pagination_over_ten_thousand_steps(client: openai.OpenAI, emulator: Emulator) -> None:
    run = emulator.dataset.find_run(step_count=10_000)
    steps = list(
        client.beta.threads.runs.steps.list(run.run_id, thread_id=run.thread_id, order="asc", limit=100)
    )
    expected = emulator.dataset.steps(run.thread_id, run.run_id)
    assert len(steps) == 10_000
    assert all(isinstance(step, RunStep) for step in steps)
    assert [as_api_json(step) for step in steps] == expected
    assert len({step.id for step in steps}) == 10_000
    assert emulator.stats()["by_endpoint"]["list"] == {"200": 100}


def test_descending_pages_and_cursors(client: openai.OpenAI, emulator: Emulator) -> None:
    run = emulator.dataset.find_run(step_count=101)
    expected = emulator.dataset.steps(run.thread_id, run.run_id)[::-1]
    page = client.beta.threads.runs.steps.list(run.run_id, thread_id=run.thread_id, limit=20)
    assert [as_api_json(step) for step in page.data] == expected[:20]
    assert page.has_more is True
    following = page.get_next_page()
    assert [as_api_json(step) for step in following.data] == expected[20:40]
    assert [step.id for step in page] == [step["id"] for step in expected]  # iterating auto-paginates


def test_retrieve_returns_the_listed_object(client: openai.OpenAI, emulator: Emulator) -> None:
    run = emulator.dataset.find_run(step_count=100)
    listed = client.beta.threads.runs.steps.list(run.run_id, thread_id=run.thread_id, limit=5).data
    for step in listed:
        retrieved = client.beta.threads.runs.steps.retrieve(
            step.id, thread_id=run.thread_id, run_id=run.run_id
        )
        assert retrieved == step


def test_include_adds_content(client: openai.OpenAI, emulator: Emulator) -> None:
    run, step_id = file_search_run(emulator)
    steps = client.beta.threads.runs.steps
    plain = steps.retrieve(step_id, thread_id=run.thread_id, run_id=run.run_id)
    full = steps.retrieve(step_id, thread_id=run.thread_id, run_id=run.run_id, include=[CONTENT])
    assert as_api_json(plain) == emulator.dataset.step(run.thread_id, run.run_id, step_id)
    assert as_api_json(full) == emulator.dataset.step(
        run.thread_id, run.run_id, step_id, include_content=True
    )
    assert isinstance(full.step_details, ToolCallsStepDetails)
    assert isinstance(plain.step_details, ToolCallsStepDetails)
    calls = [call for call in full.step_details.tool_calls if isinstance(call, FileSearchToolCall)]
    results = [result for call in calls for result in call.file_search.results or []]
    assert results and all(result.content and result.content[0].text for result in results)
    plain_calls = [call for call in plain.step_details.tool_calls if isinstance(call, FileSearchToolCall)]
    assert all(result.content is None for call in plain_calls for result in call.file_search.results or [])
    listed = steps.list(run.run_id, thread_id=run.thread_id, order="asc", limit=100, include=[CONTENT])
    assert [as_api_json(step) for step in listed] == emulator.dataset.steps(
        run.thread_id, run.run_id, include_content=True
    )
    log = emulator.requests()
    assert log[1]["query"] == {"include[]": [INCLUDE_FILE_SEARCH_CONTENT]}
    assert log[0]["headers"]["openai-beta"] == "assistants=v2"


def test_not_found_is_the_sdks_not_found_error(client: openai.OpenAI, emulator: Emulator) -> None:
    run = emulator.dataset.find_run(step_count=1)
    with pytest.raises(openai.NotFoundError) as caught:
        client.beta.threads.runs.steps.retrieve("step_nope", thread_id=run.thread_id, run_id=run.run_id)
    assert caught.value.status_code == 404
    assert caught.value.message.endswith("No run step found with id 'step_nope'.")
    assert caught.value.request_id is not None and caught.value.request_id.startswith("req_")
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.runs.steps.list("run_nope", thread_id=run.thread_id)


def test_bad_request_is_the_sdks_bad_request_error(client: openai.OpenAI, emulator: Emulator) -> None:
    run = emulator.dataset.find_run(step_count=1)
    with pytest.raises(openai.BadRequestError) as caught:
        client.beta.threads.runs.steps.list(run.run_id, thread_id=run.thread_id, limit=0)
    assert caught.value.param == "limit"
    with pytest.raises(openai.BadRequestError) as caught:
        client.beta.threads.runs.steps.list(run.run_id, thread_id=run.thread_id, after="step_nope")
    assert caught.value.param == "after"


def test_wrong_key_is_the_sdks_authentication_error(emulator_factory: EmulatorFactory) -> None:
    emu = emulator_factory(api_key="sk-the-right-one-123456")
    run = emu.dataset.find_run(step_count=1)
    wrong = openai.OpenAI(base_url=emu.base_url, api_key="sk-wrong-key-abcdefgh", max_retries=0)
    with wrong as sdk, pytest.raises(openai.AuthenticationError) as caught:
        sdk.beta.threads.runs.steps.list(run.run_id, thread_id=run.thread_id)
    assert caught.value.code == "invalid_api_key"
    assert "sk-wrong-key-abcdefgh" not in str(caught.value)
    with openai.OpenAI(base_url=emu.base_url, api_key="sk-the-right-one-123456", max_retries=0) as sdk:
        assert len(sdk.beta.threads.runs.steps.list(run.run_id, thread_id=run.thread_id).data) == 1


def test_sdk_retries_a_scripted_429_and_gets_the_page(client: openai.OpenAI, emulator: Emulator) -> None:
    run = emulator.dataset.find_run(step_count=101)
    emulator.script_faults("429", 2, retry_after_ms=10)
    retrying = client.with_options(max_retries=2)
    page = retrying.beta.threads.runs.steps.list(run.run_id, thread_id=run.thread_id, order="asc", limit=100)
    assert [as_api_json(step) for step in page.data] == emulator.dataset.steps(run.thread_id, run.run_id)[
        :100
    ]
    log = emulator.requests()
    assert [entry["status"] for entry in log] == [429, 429, 200]
    assert [entry["headers"].get("x-stainless-retry-count") for entry in log] == ["0", "1", "2"]


def test_azure_client(emulator: Emulator) -> None:
    emulator.reset()
    run = emulator.dataset.find_run(step_count=101)
    with openai.AzureOpenAI(
        azure_endpoint=emulator.azure_endpoint, api_key="azure-key", api_version="2024-10-21", max_retries=0
    ) as azure:
        steps = list(azure.beta.threads.runs.steps.list(run.run_id, thread_id=run.thread_id, order="asc"))
    assert [as_api_json(step) for step in steps] == emulator.dataset.steps(run.thread_id, run.run_id)
    entry = emulator.requests(1)[0]
    assert entry["path"].startswith("/openai/threads/")
    assert (entry["auth"], entry["api_version"]) == ("api-key", "2024-10-21")
