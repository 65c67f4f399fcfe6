"""The Responses era beside the Assistants population: conversations, their responses and items, and
stored chat completions, with the GET endpoints that serve them.

Routes (each also under ``/openai``), with their ``/_emulator/stats`` bucket::

    GET /v1/responses/{response_id}                       responses.retrieve
    GET /v1/responses/{response_id}/input_items           responses.input_items
    GET /v1/conversations/{conversation_id}               conversations.retrieve
    GET /v1/conversations/{conversation_id}/items         conversations.items
    GET /v1/chat/completions[?model=..&metadata[k]=v]     chat.completions.list
    GET /v1/chat/completions/{completion_id}              chat.completions.retrieve
    GET /v1/chat/completions/{completion_id}/messages     chat.completions.messages

The population, drawn from its own RNG streams (``...:successors:conversations`` and
``...:successors:chat``), so the run steps and the Assistants family stay exactly as they are:

* ``conversations`` conversations of a customer, each of 1 to 6 responses chained by
  ``previous_response_id`` (the first has none) and all naming their ``conversation``;
* a response's input items are its turn's new items: the user's message, and the outputs of the
  function calls the previous response made; its output items are some of reasoning, a web search
  call, a file search call, function calls, and the assistant's message; the conversation's items are
  every response's input then output items, in order;
* per-response ``usage``; about 6% of responses ``failed`` (``error`` set, output cut after the tool
  calls) and 6% ``incomplete`` (``incomplete_details``, the message ``incomplete``); some web and file
  searches ``failed``, and some function outputs are errors (``{"error": ...}``);
* ``chat_completions`` stored chat completions of several models and metadata (``customer`` and
  ``feature``), each with its messages (``<id>-0``, ``<id>-1``, ...).

Time: the population starts at ``_EPOCH`` + 30 days (2024-10-01T00:00:00Z) and spans ``days`` days
(default 180): the i-th of n conversations starts in the i-th of n equal slots of the span, at a
seeded point of its first half, and its responses follow a few seconds to minutes apart; stored chat
completions are spread the same way. So a conversation starts on every UTC day of the span as long as
a slot is at most 16 hours (``days`` at most two thirds of the number of conversations). The draws
do not depend on ``days``: only the times change with it.

Every response and chat completion is also a model call the organization is billed for
(:attr:`Successors.calls`, one :class:`ModelCall` each, read by :mod:`.organization`).

Lists page as the spec says: ``limit`` 1 to 100 (default 20), ``after`` (an id not in the list: 400),
``order`` default ``desc`` for items and ``asc`` for chat completions and their messages; the envelope
has ``first_id``, ``last_id`` and ``has_more``. ``model`` and each ``metadata[key]=value`` filter the
chat completions exactly. These endpoints need no ``OpenAI-Beta`` header. Everything is generated on
first use and kept as the JSON bytes the API sends.

    >>> population = Successors(seed=7, conversations=3, chat_completions=2)
    >>> [r.conversation_id == population.infos[0].conversation_id for r in population.infos][:1]
    [True]
"""

from __future__ import annotations

import asyncio
import csv
import json
import random
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import errors
from .data import _APP_VERSIONS, _CUSTOMERS, _EPOCH, _dump, _make_id
from .errors import ApiError
from .family import Listing
from .paging import Order, select_page

__all__ = [
    "BUCKETS",
    "DEFAULT_CHAT_COMPLETIONS",
    "DEFAULT_CONVERSATIONS",
    "DEFAULT_DAYS",
    "POPULATION_START",
    "RESPONSES_MANIFEST_COLUMNS",
    "ModelCall",
    "ResponseInfo",
    "Successors",
    "routes",
]

DEFAULT_CONVERSATIONS = 300
DEFAULT_CHAT_COMPLETIONS = 250
#: How many days the population spans by default.
DEFAULT_DAYS = 180
#: Where the population's clock starts: 2024-10-01T00:00:00Z.
POPULATION_START = _EPOCH + 30 * 86_400
RESPONSES_MANIFEST_COLUMNS = ("response_id", "conversation_id", "customer", "app_version", "started_at")

_ID = "[^/]+"
#: Stats bucket of each path of this module (without the /v1 or /openai prefix).
BUCKETS: tuple[tuple[str, str], ...] = (
    (f"responses/{_ID}", "responses.retrieve"),
    (f"responses/{_ID}/input_items", "responses.input_items"),
    (f"conversations/{_ID}", "conversations.retrieve"),
    (f"conversations/{_ID}/items", "conversations.items"),
    ("chat/completions", "chat.completions.list"),
    (f"chat/completions/{_ID}", "chat.completions.retrieve"),
    (f"chat/completions/{_ID}/messages", "chat.completions.messages"),
)

_DEFAULT_LIMIT = 20
_MAX_LIMIT = 100
_LIMIT_RE = re.compile(r"[0-9]+")
_METADATA_RE = re.compile(r"metadata\[(.+)\]")
_JSON = "application/json"
_ALLOWED_METHODS = frozenset({"GET", "HEAD"})
_ANY_METHOD = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

_MODELS = ("gpt-4o", "gpt-4o-mini", "gpt-4.1", "o4-mini", "gpt-5")
_FEATURES = ("support", "search", "summaries", "triage")
_QUESTIONS = (
    "Where is my order ORD-{n}?",
    "Can I get a refund for order ORD-{n}?",
    "What is the weather in Berlin tomorrow?",
    "Do you have a standing desk in stock?",
    "Summarise our refund policy, please.",
    "What does the SLA say about uptime?",
)
_ANSWERS = (
    "Your order has shipped and should arrive within two days.",
    "Refunds are issued within 14 days of the return being received.",
    "Tomorrow in Berlin: 18 °C and clear.",
    "Yes, 12 standing desks are in stock.",
    "Enterprise plans include a 99.9% uptime SLA, measured monthly.",
)
_FUNCTIONS = ("get_order_status", "get_weather", "search_inventory", "create_support_ticket")
_SEARCHES = ("refund policy 2024", "shipping times EU", "standing desk reviews", "uptime SLA")
_FILES = ("refund_policy.pdf", "shipping_faq.md", "sla_terms.pdf")
_ERRORS = (
    ("server_error", "The model failed to generate a response."),
    ("rate_limit_exceeded", "Rate limit reached for tokens per min."),
)


@dataclass(frozen=True)
class ResponseInfo:
    """One response as a user's local log would know it."""

    response_id: str
    conversation_id: str
    customer: str
    app_version: str
    started_at: int

    @property
    def started_at_iso(self) -> str:
        return datetime.fromtimestamp(self.started_at, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class ModelCall:
    """One billed model call: a stored response (``kind="response"``, ``app`` its conversation's
    ``channel``) or a stored chat completion (``kind="chat"``, ``app`` its ``feature``), with the usage
    its JSON reports."""

    call_id: str
    kind: str
    created_at: int
    model: str
    customer: str
    app: str
    input_tokens: int
    cached_tokens: int
    cache_write_tokens: int
    output_tokens: int


@dataclass(frozen=True)
class _Population:
    infos: tuple[ResponseInfo, ...]
    responses: dict[str, bytes]
    input_items: dict[str, Listing]
    conversations: dict[str, bytes]
    conversation_items: dict[str, Listing]
    chat: Listing
    chat_objects: tuple[dict[str, Any], ...]
    chat_messages: dict[str, Listing]
    calls: tuple[ModelCall, ...]


class Successors:
    """The Responses-era population of one seed, spanning ``days`` days, generated on first use."""

    def __init__(
        self,
        seed: int,
        conversations: int = DEFAULT_CONVERSATIONS,
        chat_completions: int = DEFAULT_CHAT_COMPLETIONS,
        days: int = DEFAULT_DAYS,
    ) -> None:
        if conversations < 0 or chat_completions < 0:
            raise ValueError("conversations and chat_completions must be >= 0")
        if days < 1:
            raise ValueError(f"days must be >= 1, got {days}")
        self.seed = seed
        self.conversation_count = conversations
        self.chat_count = chat_completions
        self.days = days
        self._lock = threading.Lock()
        self._built: _Population | None = None

    @property
    def population(self) -> _Population:
        built = self._built
        if built is None:
            with self._lock:
                if self._built is None:
                    self._built = _build(self.seed, self.conversation_count, self.chat_count, self.days)
                built = self._built
        return built

    @property
    def infos(self) -> tuple[ResponseInfo, ...]:
        """Every response, in creation order."""
        return self.population.infos

    @property
    def calls(self) -> tuple[ModelCall, ...]:
        """Every response, then every stored chat completion, as the model call it bills."""
        return self.population.calls

    def write_manifest(self, path: str | Path) -> Path:
        """Write one CSV row per response (RESPONSES_MANIFEST_COLUMNS): the log a user would join against."""
        target = Path(path)
        with target.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(RESPONSES_MANIFEST_COLUMNS)
            for info in self.infos:
                writer.writerow(
                    (
                        info.response_id,
                        info.conversation_id,
                        info.customer,
                        info.app_version,
                        info.started_at_iso,
                    )
                )
        return target

    def chat_listing(self, model: str | None, metadata: dict[str, str]) -> Listing:
        """The stored chat completions the filters select, in creation order."""
        population = self.population
        if model is None and not metadata:
            return population.chat
        chosen = [
            i
            for i, obj in enumerate(population.chat_objects)
            if (model is None or obj["model"] == model)
            and all(obj["metadata"].get(k) == v for k, v in metadata.items())
        ]
        return population.chat.subset(chosen)


# -- generation ------------------------------------------------------------------------------------


def _slot_start(index: int, count: int, days: int, draw: int, draw_max: int) -> int:
    """When the index-th of count objects starts: in the index-th of count equal slots of the span, at
    the point of the slot's first half that ``draw`` (1..draw_max) picks."""
    span = days * 86_400
    return POPULATION_START + (index * span) // count + (draw * (span // count)) // (2 * draw_max)


def _build(seed: int, conversation_count: int, chat_count: int, days: int = DEFAULT_DAYS) -> _Population:
    rng = random.Random(f"duckdb-openai-emulator:{seed}:successors:conversations")
    infos: list[ResponseInfo] = []
    responses: dict[str, bytes] = {}
    input_items: dict[str, Listing] = {}
    conversations: dict[str, bytes] = {}
    conversation_items: dict[str, Listing] = {}
    calls: list[ModelCall] = []
    for index in range(conversation_count):
        clock = _slot_start(index, conversation_count, days, rng.randint(60, 3_600), 3_600)
        conversation_id = _make_id(rng, "conv_")
        customer = rng.choice(_CUSTOMERS)
        app_version = rng.choice(_APP_VERSIONS)
        channel = rng.choice(("web", "email", "app"))
        metadata = {"customer": customer, "channel": channel}
        conversations[conversation_id] = _dump(
            {"id": conversation_id, "object": "conversation", "created_at": clock, "metadata": metadata}
        )
        items: list[dict[str, Any]] = []
        previous: str | None = None
        pending_calls: list[dict[str, Any]] = []
        now = clock
        for turn in range(rng.randint(1, 6)):
            now += rng.randint(5, 600)
            response_id = _make_id(rng, "resp_")
            inputs = [_function_output(rng, call) for call in pending_calls]
            if not pending_calls or rng.random() < 0.3:
                inputs.append(_user_message(rng))
            response, outputs = _response(rng, response_id, conversation_id, previous, now, turn, customer)
            pending_calls = [o for o in outputs if o["type"] == "function_call"]
            responses[response_id] = _dump(response)
            calls.append(
                _call(
                    response_id,
                    "response",
                    now,
                    model=response["model"],
                    customer=customer,
                    app=channel,
                    usage=response["usage"],
                )
            )
            input_items[response_id] = Listing.of(inputs)
            items.extend(inputs)
            items.extend(outputs)
            infos.append(ResponseInfo(response_id, conversation_id, customer, app_version, now))
            previous = response_id
        conversation_items[conversation_id] = Listing.of(items)
    chat_objects, chat_messages = _chat(seed, chat_count, days)
    for obj in chat_objects:
        usage = obj["usage"]
        calls.append(
            ModelCall(
                call_id=obj["id"],
                kind="chat",
                created_at=obj["created"],
                model=obj["model"],
                customer=obj["metadata"]["customer"],
                app=obj["metadata"]["feature"],
                input_tokens=usage["prompt_tokens"],
                cached_tokens=usage["prompt_tokens_details"]["cached_tokens"],
                cache_write_tokens=0,
                output_tokens=usage["completion_tokens"],
            )
        )
    return _Population(
        infos=tuple(infos),
        responses=responses,
        input_items=input_items,
        conversations=conversations,
        conversation_items=conversation_items,
        chat=Listing.of(chat_objects),
        chat_objects=tuple(chat_objects),
        chat_messages=chat_messages,
        calls=tuple(calls),
    )


def _call(
    call_id: str, kind: str, created_at: int, *, model: str, customer: str, app: str, usage: dict[str, Any]
) -> ModelCall:
    return ModelCall(
        call_id=call_id,
        kind=kind,
        created_at=created_at,
        model=model,
        customer=customer,
        app=app,
        input_tokens=usage["input_tokens"],
        cached_tokens=usage["input_tokens_details"]["cached_tokens"],
        cache_write_tokens=usage["input_tokens_details"]["cache_write_tokens"],
        output_tokens=usage["output_tokens"],
    )


def _user_message(rng: random.Random) -> dict[str, Any]:
    text = rng.choice(_QUESTIONS).format(n=rng.randint(10_000, 99_999))
    return {
        "type": "message",
        "id": _make_id(rng, "msg_"),
        "status": "completed",
        "role": "user",
        "content": [{"type": "input_text", "text": text}],
    }


def _function_output(rng: random.Random, call: dict[str, Any]) -> dict[str, Any]:
    if rng.random() < 0.15:
        output = json.dumps({"error": rng.choice(("timeout", "not_found", "upstream 502"))})
    else:
        output = json.dumps({"ok": True, "result": rng.randint(0, 100)})
    return {
        "id": _make_id(rng, "fco_"),
        "type": "function_call_output",
        "call_id": call["call_id"],
        "output": output,
        "status": "completed",
    }


def _response(
    rng: random.Random,
    response_id: str,
    conversation_id: str,
    previous: str | None,
    created_at: int,
    turn: int,
    customer: str,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    model = rng.choice(_MODELS)
    outcome = rng.choices(("completed", "failed", "incomplete"), weights=(88, 6, 6))[0]
    outputs: list[dict[str, Any]] = []
    reasoning_tokens = 0
    if model in ("o4-mini", "gpt-5"):
        reasoning_tokens = rng.randint(64, 2_048)
        outputs.append(
            {
                "id": _make_id(rng, "rs_"),
                "type": "reasoning",
                "summary": [{"type": "summary_text", "text": "Looking up what the customer asked for."}],
            }
        )
    if rng.random() < 0.25:
        query = rng.choice(_SEARCHES)
        outputs.append(
            {
                "id": _make_id(rng, "ws_"),
                "type": "web_search_call",
                "status": "failed" if rng.random() < 0.1 else "completed",
                "action": {"type": "search", "query": query},
            }
        )
    if rng.random() < 0.2:
        outputs.append(
            {
                "id": _make_id(rng, "fs_"),
                "type": "file_search_call",
                "status": "failed" if rng.random() < 0.1 else "completed",
                "queries": [rng.choice(_SEARCHES)],
                "results": None,
            }
        )
    calls = rng.choice((0, 0, 1, 1, 2)) if turn < 5 else 0
    for _ in range(calls):
        name = rng.choice(_FUNCTIONS)
        outputs.append(
            {
                "id": _make_id(rng, "fc_"),
                "type": "function_call",
                "status": "completed",
                "arguments": json.dumps({"order_id": f"ORD-{rng.randint(10_000, 99_999)}"}),
                "call_id": _make_id(rng, "call_"),
                "name": name,
            }
        )
    if outcome == "failed":
        outputs = outputs[: rng.randint(0, len(outputs))]
    elif not calls:
        outputs.append(
            {
                "id": _make_id(rng, "msg_"),
                "type": "message",
                "status": "incomplete" if outcome == "incomplete" else "completed",
                "role": "assistant",
                "content": [
                    {"type": "output_text", "text": rng.choice(_ANSWERS), "annotations": [], "logprobs": []}
                ],
            }
        )
    input_tokens = rng.randint(200, 4_000)
    output_tokens = reasoning_tokens + rng.randint(10, 600)
    usage = {
        "input_tokens": input_tokens,
        "input_tokens_details": {
            "cached_tokens": rng.choice((0, 0, input_tokens // 2)),
            "cache_write_tokens": 0,
        },
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning_tokens},
        "total_tokens": input_tokens + output_tokens,
    }
    error = None
    if outcome == "failed":
        code, message = rng.choice(_ERRORS)
        error = {"code": code, "message": message}
    tools: list[dict[str, Any]] = [
        {
            "type": "function",
            "name": name,
            "description": f"{name.replace('_', ' ')}.",
            "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}},
            "strict": True,
        }
        for name in _FUNCTIONS
    ]
    tools += [{"type": "web_search"}, {"type": "file_search", "vector_store_ids": ["vs_emulator_docs"]}]
    response = {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": outcome,
        "completed_at": created_at + rng.randint(1, 20) if outcome == "completed" else None,
        "error": error,
        "incomplete_details": {"reason": "max_output_tokens"} if outcome == "incomplete" else None,
        "instructions": "You are the support agent of an online shop. Be brief.",
        "max_output_tokens": output_tokens if outcome == "incomplete" else None,
        "model": model,
        "output": outputs,
        "parallel_tool_calls": True,
        "previous_response_id": previous,
        "reasoning": {"effort": "medium" if reasoning_tokens else None, "summary": None},
        "store": True,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": "auto",
        "tools": tools,
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": usage,
        "user": None,
        "metadata": {"customer": customer},
        "conversation": {"id": conversation_id},
        "service_tier": "default",
        "background": False,
        "max_tool_calls": None,
        "safety_identifier": None,
        "prompt_cache_key": None,
    }
    return response, outputs


def _chat(seed: int, count: int, days: int) -> tuple[list[dict[str, Any]], dict[str, Listing]]:
    rng = random.Random(f"duckdb-openai-emulator:{seed}:successors:chat")
    objects: list[dict[str, Any]] = []
    messages: dict[str, Listing] = {}
    for index in range(count):
        clock = _slot_start(index, count, days, rng.randint(30, 1_800), 1_800)
        completion_id = "chatcmpl-" + _make_id(rng, "")
        model = rng.choice(_MODELS)
        question = rng.choice(_QUESTIONS).format(n=rng.randint(10_000, 99_999))
        tool = rng.random() < 0.3
        message: dict[str, Any] = {"role": "assistant", "content": None if tool else rng.choice(_ANSWERS)}
        message["refusal"] = None
        if tool:
            message["tool_calls"] = [
                {
                    "id": _make_id(rng, "call_"),
                    "type": "function",
                    "function": {"name": rng.choice(_FUNCTIONS), "arguments": '{"order_id":"ORD-1"}'},
                }
            ]
        prompt = rng.randint(20, 2_000)
        completion = rng.randint(5, 400)
        objects.append(
            {
                "id": completion_id,
                "object": "chat.completion",
                "created": clock,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "tool_calls" if tool else "stop",
                        "message": message,
                        "logprobs": None,
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt,
                    "completion_tokens": completion,
                    "total_tokens": prompt + completion,
                    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                    "completion_tokens_details": {
                        "reasoning_tokens": 0,
                        "audio_tokens": 0,
                        "accepted_prediction_tokens": 0,
                        "rejected_prediction_tokens": 0,
                    },
                },
                "metadata": {"customer": rng.choice(_CUSTOMERS), "feature": rng.choice(_FEATURES)},
                "service_tier": "default",
                "system_fingerprint": "fp_emulator",
            }
        )
        thread: list[dict[str, Any]] = []
        if rng.random() < 0.5:
            thread.append({"role": "system", "content": "You are the support agent of an online shop."})
        thread.append({"role": "user", "content": question})
        messages[completion_id] = Listing.of(
            [
                {"id": f"{completion_id}-{i}", "name": None, "content_parts": None, **m}
                for i, m in enumerate(thread)
            ]
        )
    return objects, messages


# -- the endpoints ---------------------------------------------------------------------------------


def routes(prefix: str, population: Successors) -> list[Route]:
    """The routes of this module under `prefix` (/v1 or /openai)."""

    def endpoint(handler: Callable[[Request, Successors], Response]) -> Callable[[Request], Any]:
        async def serve(request: Request) -> Response:
            if request.method not in _ALLOWED_METHODS:
                return _error_response(errors.method_not_allowed(request.method, request.url.path))
            if population._built is None:
                # The first request generates the population; keep the loop serving meanwhile.
                await asyncio.to_thread(lambda: population.population)
            return handler(request, population)

        return serve

    return [
        Route(prefix + "/responses/{response_id}", endpoint(_retrieve_response), methods=_ANY_METHOD),
        Route(prefix + "/responses/{response_id}/input_items", endpoint(_input_items), methods=_ANY_METHOD),
        Route(
            prefix + "/conversations/{conversation_id}", endpoint(_retrieve_conversation), methods=_ANY_METHOD
        ),
        Route(
            prefix + "/conversations/{conversation_id}/items",
            endpoint(_conversation_items),
            methods=_ANY_METHOD,
        ),
        Route(prefix + "/chat/completions", endpoint(_list_chat), methods=_ANY_METHOD),
        Route(prefix + "/chat/completions/{completion_id}", endpoint(_retrieve_chat), methods=_ANY_METHOD),
        Route(
            prefix + "/chat/completions/{completion_id}/messages",
            endpoint(_chat_messages),
            methods=_ANY_METHOD,
        ),
    ]


def _retrieve_response(request: Request, population: Successors) -> Response:
    response_id = request.path_params["response_id"]
    body = population.population.responses.get(response_id)
    if body is None:
        return _error_response(errors.api_error(404, f"Response with id '{response_id}' not found."))
    return Response(body, media_type=_JSON)


def _input_items(request: Request, population: Successors) -> Response:
    response_id = request.path_params["response_id"]
    listing = population.population.input_items.get(response_id)
    if listing is None:
        return _error_response(errors.api_error(404, f"Response with id '{response_id}' not found."))
    return _list_response(request, listing, "desc", "item", f"in the input of response '{response_id}'")


def _retrieve_conversation(request: Request, population: Successors) -> Response:
    conversation_id = request.path_params["conversation_id"]
    body = population.population.conversations.get(conversation_id)
    if body is None:
        return _error_response(errors.api_error(404, f"Conversation with id '{conversation_id}' not found."))
    return Response(body, media_type=_JSON)


def _conversation_items(request: Request, population: Successors) -> Response:
    conversation_id = request.path_params["conversation_id"]
    listing = population.population.conversation_items.get(conversation_id)
    if listing is None:
        return _error_response(errors.api_error(404, f"Conversation with id '{conversation_id}' not found."))
    return _list_response(request, listing, "desc", "item", f"in conversation '{conversation_id}'")


def _list_chat(request: Request, population: Successors) -> Response:
    metadata: dict[str, str] = {}
    for name, value in request.query_params.multi_items():
        found = _METADATA_RE.fullmatch(name)
        if found is not None:
            metadata[found.group(1)] = value
    listing = population.chat_listing(request.query_params.get("model"), metadata)
    return _list_response(request, listing, "asc", "chat completion", "among the stored chat completions")


def _retrieve_chat(request: Request, population: Successors) -> Response:
    completion_id = request.path_params["completion_id"]
    chat = population.population.chat
    position = chat.positions.get(completion_id)
    if position is None:
        return _error_response(errors.api_error(404, f"Chat completion '{completion_id}' not found."))
    return Response(chat.bodies[position], media_type=_JSON)


def _chat_messages(request: Request, population: Successors) -> Response:
    completion_id = request.path_params["completion_id"]
    listing = population.population.chat_messages.get(completion_id)
    if listing is None:
        return _error_response(errors.api_error(404, f"Chat completion '{completion_id}' not found."))
    return _list_response(request, listing, "asc", "message", f"in chat completion '{completion_id}'")


def _list_response(
    request: Request, listing: Listing, default_order: Order, noun: str, where: str
) -> Response:
    params = request.query_params
    raw = params.get("limit")
    limit = _DEFAULT_LIMIT
    if raw is not None:
        if not (_LIMIT_RE.fullmatch(raw) and 1 <= int(raw) <= _MAX_LIMIT):
            return _error_response(errors.bad_limit(raw, 1, _MAX_LIMIT))
        limit = int(raw)
    order = params.get("order", default_order)
    if order not in ("asc", "desc"):
        return _error_response(errors.bad_order(order))
    after = params.get("after")
    position: int | None = None
    if after is not None:
        position = listing.positions.get(after)
        if position is None:
            return _error_response(errors.bad_object_cursor("after", after, noun, where))
    page = select_page(
        len(listing.ids), order="asc" if order == "asc" else "desc", limit=limit, after=position, before=None
    )
    return Response(_list_body(listing.ids, listing.bodies, page.indices, page.has_more), media_type=_JSON)


def _list_body(ids: Sequence[str], bodies: Sequence[bytes], indices: list[int], has_more: bool) -> bytes:
    first = json.dumps(ids[indices[0]]) if indices else "null"
    last = json.dumps(ids[indices[-1]]) if indices else "null"
    return b"".join(
        (
            b'{"object":"list","data":[',
            b",".join(bodies[i] for i in indices),
            f'],"first_id":{first},"last_id":{last},"has_more":{"true" if has_more else "false"}}}'.encode(),
        )
    )


def _error_response(error: ApiError) -> Response:
    return Response(error.body, status_code=error.status, headers=error.headers, media_type=_JSON)
