"""The rest of the Assistants family, derived from the run-step population: assistants, threads, runs,
messages.

The run table and the steps (:mod:`.data`) are the ground truth and stay exactly as they are; every
object here is derived from them, and whatever else is random is drawn from its own RNG stream (per
assistant set, per thread, per run), so adding these objects changes no step. The derivation keeps the
family consistent:

* a run's status follows its last step: completed, failed, cancelled or expired alike; an in-progress
  last step makes the run ``in_progress``, or ``requires_action`` when it waits for function outputs
  (``required_action`` lists those calls); a run without steps is ``queued``; a few completed runs are
  ``incomplete``, their token limit set to exactly what they used;
* a run's ``usage`` is the sum of its steps' usage once the run is terminal (NULL before, as the API does);
  its end timestamps and ``last_error`` are its last step's;
* each message_creation step's ``message_id`` is an assistant message of the thread with that ``run_id``
  (status and timestamps from the step); before each run, the thread has the user's message
  (``run_id`` NULL); messages list in creation order;
* a run's ``tools``, ``instructions`` and (mostly) ``model`` are its assistant's; every assistant has the
  tools the steps call (code interpreter, file search and the five functions).

Everything is generated per thread on first use and kept as the JSON bytes the API sends, in a bounded
cache, like the steps.

    >>> from duckdb_openai.emulator.data import Dataset
    >>> family = Family(Dataset(seed=7))
    >>> thread_id = family.dataset.thread_ids[0]
    >>> [run["status"] for run in family.runs(thread_id)][:2]
    ['completed', 'completed']
"""

from __future__ import annotations

import csv
import json
import random
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .data import _CUSTOMERS, _EPOCH, _METADATA, Dataset, RunInfo, _dump, _make_id

__all__ = ["THREAD_MANIFEST_COLUMNS", "Family", "Listing", "ThreadData", "assemble_thread"]

THREAD_MANIFEST_COLUMNS = ("thread_id", "customer", "created_at")

# Past this many cached runs and messages, the least recently used threads are dropped and regenerated
# (identically) when asked for again.
_CACHE_MAX_OBJECTS = 200_000
_EXPIRY_SECONDS = 600  # an unfinished run expires ten minutes after it was created
_TERMINAL = {"completed", "failed", "cancelled", "expired", "incomplete"}
_MODELS = ("gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4-turbo", "o3-mini")
_NAMES = ("Support Agent", "Billing Assistant", "Data Analyst", "Shipping Helper", "Onboarding Guide")
_DESCRIPTIONS = (
    "Answers customer questions about orders, refunds and shipping.",
    None,
    "Explores order data with the code interpreter and charts it.",
    None,
    "Walks new customers through setup.",
)
_INSTRUCTIONS = (
    "You are a friendly support agent for an online shop. Look orders up before answering; "
    "never promise a refund the policy does not allow.",
    "You help customers with invoices and payments. Be precise about amounts and dates.",
    "You are a data analyst. Write and run Python to answer questions about the uploaded data.",
    "You track parcels and explain delivery times. Check the weather on the route for delays.",
    "You guide new customers through account setup, one step at a time.",
)
_FUNCTIONS: tuple[dict[str, Any], ...] = (
    {
        "name": "get_order_status",
        "description": "Look up the status of an order.",
        "parameters": {
            "type": "object",
            "properties": {"order_id": {"type": "string", "description": "Order number, ORD-12345."}},
            "required": ["order_id"],
            "additionalProperties": False,
        },
        "strict": True,
    },
    {
        "name": "get_weather",
        "description": "Current weather at a location (for delivery estimates).",
        "parameters": {
            "type": "object",
            "properties": {
                "location": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["location"],
        },
        "strict": False,
    },
    {
        "name": "search_inventory",
        "description": "Search the product catalogue.",
        "parameters": {
            "type": "object",
            "properties": {"query": {"type": "string"}, "limit": {"type": "integer", "minimum": 1}},
            "required": ["query"],
        },
    },
    {
        "name": "create_support_ticket",
        "description": "Open a ticket for a human agent – use when you cannot help.",
        "parameters": {
            "type": "object",
            "properties": {
                "subject": {"type": "string"},
                "priority": {"type": "string", "enum": ["low", "high"]},
            },
            "required": ["subject", "priority"],
        },
        "strict": False,
    },
    {
        "name": "lookup_customer",
        "parameters": {"type": "object", "properties": {"email": {"type": "string"}}},
    },
)
_RESPONSE_FORMATS: tuple[Any, ...] = (
    "auto",
    "auto",
    {"type": "text"},
    {"type": "json_object"},
    {
        "type": "json_schema",
        "json_schema": {
            "name": "ticket_summary",
            "description": "A summary of the conversation for the ticket system.",
            "schema": {
                "type": "object",
                "properties": {"summary": {"type": "string"}, "urgent": {"type": "boolean"}},
                "required": ["summary", "urgent"],
                "additionalProperties": False,
            },
            "strict": True,
        },
    },
)
_TOOL_CHOICES: tuple[tuple[Any, int], ...] = (
    ("auto", 80),
    ("required", 6),
    ("none", 4),
    ({"type": "file_search"}, 5),
    ({"type": "function", "function": {"name": "get_order_status"}}, 5),
)
_QUESTIONS = (
    "Where is my order ORD-48213? It was supposed to arrive yesterday.",
    "Can I still return the standing desk I bought three weeks ago?",
    "Please summarise last month's orders by region.",
    "Wie hoch sind die Versandkosten nach Österreich?",
    "My invoice shows €59.22 but I expected €49.90 – why?",
    "Is the USB-C cable in stock in Toronto?",
    "何日で届きますか？",
)
_REPLIES = (
    "Your order has shipped and should arrive within two business days.",
    "Yes – returns are accepted within 30 days, and refunds are issued within 14 days of receipt.",
    "Here is the breakdown by region: EU 41%, North America 37%, APAC 22%.",
    "Der Versand nach Österreich kostet €9,90; ab €50 ist er kostenlos.",
    "The difference is the 19% VAT, which your first quote did not include.",
    "I have opened ticket SUP-4821 so a colleague can follow up.",
)
_REFUSAL = "I'm sorry, but I can't help with that request."
_INCOMPLETE_REASON = {"failed": "run_failed", "cancelled": "run_cancelled", "expired": "run_expired"}
_STEP_END = {
    "completed": "completed_at",
    "failed": "failed_at",
    "cancelled": "cancelled_at",
    "expired": "expired_at",
}


@dataclass(frozen=True)
class Listing:
    """The objects of one list endpoint in ascending order, as the JSON bytes the API sends."""

    ids: tuple[str, ...]
    positions: dict[str, int]
    bodies: tuple[bytes, ...]

    @classmethod
    def of(cls, objects: Sequence[dict[str, Any]]) -> Listing:
        ids = tuple(obj["id"] for obj in objects)
        return cls(ids, {object_id: i for i, object_id in enumerate(ids)}, tuple(_dump(o) for o in objects))

    def subset(self, indices: Sequence[int]) -> Listing:
        ids = tuple(self.ids[i] for i in indices)
        bodies = tuple(self.bodies[i] for i in indices)
        return Listing(ids, {object_id: i for i, object_id in enumerate(ids)}, bodies)


@dataclass(frozen=True)
class ThreadData:
    """One thread's runs and messages (all, and by the run that created them)."""

    runs: Listing
    messages: Listing
    messages_by_run: dict[str, Listing]

    @property
    def size(self) -> int:
        return len(self.runs.ids) + len(self.messages.ids)

    def messages_of(self, run_id: str | None) -> Listing:
        """All messages, or those ``run_id`` created (none if it created none, or is no run)."""
        if run_id is None:
            return self.messages
        return self.messages_by_run.get(run_id, _NO_MESSAGES)


_NO_MESSAGES = Listing((), {}, ())


class Family:
    """Assistants, threads, runs and messages over a :class:`Dataset`'s runs and steps.

    Thread-safe like the dataset: concurrent first reads of a thread generate it once.
    """

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self._lock = threading.Lock()
        self._assistants: Listing | None = None
        self._assistant_objects: dict[str, dict[str, Any]] = {}
        self._threads: dict[str, bytes] = {}
        self._cache: OrderedDict[str, ThreadData] = OrderedDict()
        self._cached_objects = 0
        self._generating: dict[str, threading.Lock] = {}

    # -- assistants -------------------------------------------------------------------

    def assistant_listing(self) -> Listing:
        with self._lock:
            if self._assistants is None:
                objects = _assistants(self.dataset.seed, self.dataset.assistant_ids)
                self._assistant_objects = {obj["id"]: obj for obj in objects}
                self._assistants = Listing.of(objects)
            return self._assistants

    def assistants(self) -> list[dict[str, Any]]:
        """Every assistant, ascending by creation, exactly as the API returns them (fresh objects)."""
        return [json.loads(body) for body in self.assistant_listing().bodies]

    def assistant(self, assistant_id: str) -> dict[str, Any]:
        listing = self.assistant_listing()
        return json.loads(listing.bodies[listing.positions[assistant_id]])  # type: ignore[no-any-return]

    # -- threads ----------------------------------------------------------------------

    def thread_body(self, thread_id: str) -> bytes | None:
        """The thread object's JSON bytes, or None if there is no such thread (cheap: no steps needed)."""
        if not self.dataset.has_thread(thread_id):
            return None
        with self._lock:
            body = self._threads.get(thread_id)
        if body is None:
            body = _dump(_thread(self.dataset.seed, thread_id, self.dataset.thread_runs(thread_id)))
            with self._lock:
                self._threads[thread_id] = body
        return body

    def thread(self, thread_id: str) -> dict[str, Any]:
        body = self.thread_body(thread_id)
        if body is None:
            raise KeyError(f"no thread {thread_id!r}")
        return json.loads(body)  # type: ignore[no-any-return]

    def write_threads_manifest(self, path: str | Path) -> Path:
        """Write one CSV row per thread: its id, its customer (that of its first run) and creation time."""
        target = Path(path)
        with target.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(THREAD_MANIFEST_COLUMNS)
            for thread_id in self.dataset.thread_ids:
                thread = self.thread(thread_id)
                writer.writerow(
                    (thread_id, _thread_customer(self.dataset, thread_id), _iso(thread["created_at"]))
                )
        return target

    # -- runs and messages --------------------------------------------------------------

    def is_cached(self, thread_id: str) -> bool:
        with self._lock:
            return thread_id in self._cache

    def thread_data(self, thread_id: str) -> ThreadData:
        """The thread's runs and messages, generated on first use (with its runs' steps) and cached."""
        with self._lock:
            hit = self._hit(thread_id)
            if hit is not None:
                return hit
            generating = self._generating.setdefault(thread_id, threading.Lock())
        with generating:
            with self._lock:
                hit = self._hit(thread_id)
            if hit is not None:
                return hit
            runs = self.dataset.thread_runs(thread_id)
            self.assistant_listing()
            result = _thread_data(self.dataset, self._assistant_objects, thread_id, runs)
            with self._lock:
                self._cache[thread_id] = result
                self._cached_objects += result.size
                while self._cached_objects > _CACHE_MAX_OBJECTS and len(self._cache) > 1:
                    _, evicted = self._cache.popitem(last=False)
                    self._cached_objects -= evicted.size
                self._generating.pop(thread_id, None)
        return result

    def _hit(self, thread_id: str) -> ThreadData | None:
        hit = self._cache.get(thread_id)
        if hit is not None:
            self._cache.move_to_end(thread_id)
        return hit

    def runs(self, thread_id: str) -> list[dict[str, Any]]:
        """The thread's runs, ascending, exactly as the API returns them."""
        return [json.loads(body) for body in self.thread_data(thread_id).runs.bodies]

    def run(self, thread_id: str, run_id: str) -> dict[str, Any]:
        listing = self.thread_data(thread_id).runs
        return json.loads(listing.bodies[listing.positions[run_id]])  # type: ignore[no-any-return]

    def messages(self, thread_id: str, run_id: str | None = None) -> list[dict[str, Any]]:
        """The thread's messages (only those of ``run_id``, if given), ascending, as the API sends them."""
        return [json.loads(body) for body in self.thread_data(thread_id).messages_of(run_id).bodies]

    def message(self, thread_id: str, message_id: str) -> dict[str, Any]:
        listing = self.thread_data(thread_id).messages
        return json.loads(listing.bodies[listing.positions[message_id]])  # type: ignore[no-any-return]


# -- generation -----------------------------------------------------------------------


def _rng(seed: int, stream: str) -> random.Random:
    return random.Random(f"duckdb-openai-emulator:{seed}:{stream}")


def _iso(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _assistants(seed: int, assistant_ids: Sequence[str]) -> list[dict[str, Any]]:
    rng = _rng(seed, "assistants")
    objects = []
    for k, assistant_id in enumerate(assistant_ids):
        file_search: dict[str, Any] = {"type": "file_search"}
        if rng.random() < 0.6:
            file_search["file_search"] = {
                "max_num_results": rng.choice((5, 10, 20)),
                "ranking_options": {
                    "ranker": rng.choice(("auto", "default_2024_08_21")),
                    "score_threshold": 0.0,
                },
            }
        functions = [{"type": "function", "function": dict(f)} for f in _FUNCTIONS]
        resources: dict[str, Any] = {}
        if rng.random() < 0.7:
            resources["code_interpreter"] = {
                "file_ids": [_make_id(rng, "file-") for _ in range(rng.randint(0, 3))]
            }
        if rng.random() < 0.7:
            resources["file_search"] = {"vector_store_ids": [_make_id(rng, "vs_")]}
        created = _EPOCH - rng.randint(1, 90) * 86_400 + rng.randint(0, 86_399)
        objects.append(
            {
                "id": assistant_id,
                "object": "assistant",
                "created_at": created,
                "name": _NAMES[k % len(_NAMES)] if rng.random() < 0.9 else None,
                "description": _DESCRIPTIONS[k % len(_DESCRIPTIONS)],
                "model": _MODELS[k % len(_MODELS)],
                "instructions": _INSTRUCTIONS[k % len(_INSTRUCTIONS)],
                "tools": [{"type": "code_interpreter"}, file_search, *functions],
                "tool_resources": resources,
                "metadata": dict(rng.choice(_METADATA)) if rng.random() < 0.5 else {},
                "temperature": rng.choice((1.0, 0.2, 0.7)),
                "top_p": rng.choice((1.0, 1.0, 0.9)),
                "response_format": _RESPONSE_FORMATS[k % len(_RESPONSE_FORMATS)],
            }
        )
    objects.sort(key=lambda obj: (obj["created_at"], obj["id"]))
    return objects


def _thread_created_at(rng: random.Random, runs: Sequence[RunInfo]) -> int:
    # Well before the first run's user message (which comes at most ~25 s before the run starts).
    if runs:
        return runs[0].started_at - 120 - rng.randint(0, 600)
    return _EPOCH + rng.randint(0, 86_400)


def _thread(seed: int, thread_id: str, runs: Sequence[RunInfo]) -> dict[str, Any]:
    rng = _rng(seed, f"thread:{thread_id}")
    created = _thread_created_at(rng, runs)
    resources: dict[str, Any] = {}
    draw = rng.random()
    if draw < 0.2:
        resources = {"code_interpreter": {"file_ids": [_make_id(rng, "file-")]}}
    elif draw < 0.35:
        resources = {"file_search": {"vector_store_ids": [_make_id(rng, "vs_")]}}
    return {
        "id": thread_id,
        "object": "thread",
        "created_at": created,
        "metadata": dict(rng.choice(_METADATA)) if rng.random() < 0.5 else {},
        "tool_resources": resources,
    }


def _thread_customer(dataset: Dataset, thread_id: str) -> str:
    runs = dataset.thread_runs(thread_id)
    if runs:
        return runs[0].customer
    return _rng(dataset.seed, f"thread-customer:{thread_id}").choice(_CUSTOMERS)


@dataclass
class _RunSummary:
    """What a run object and the thread's messages take from the run's steps."""

    last: dict[str, Any] | None
    usage: list[int]  # prompt, completion, total
    created: list[tuple[dict[str, Any], tuple[str, ...], tuple[str, ...]]]  # step, files cited, images


def _summarize(steps: Sequence[dict[str, Any]]) -> _RunSummary:
    usage = [0, 0, 0]
    files: list[str] = []
    images: list[str] = []
    created = []
    for step in steps:
        if step["usage"] is not None:
            usage[0] += step["usage"]["prompt_tokens"]
            usage[1] += step["usage"]["completion_tokens"]
            usage[2] += step["usage"]["total_tokens"]
        details = step["step_details"]
        if details["type"] == "message_creation":
            created.append((step, tuple(files[-2:]), tuple(images[-1:])))
            continue
        for call in details["tool_calls"]:
            if call["type"] == "file_search":
                files.extend(result["file_id"] for result in call["file_search"]["results"])
            elif call["type"] == "code_interpreter":
                images.extend(
                    out["image"]["file_id"]
                    for out in call["code_interpreter"]["outputs"]
                    if out["type"] == "image"
                )
    return _RunSummary(steps[-1] if steps else None, usage, created)


def _run_object(seed: int, run: RunInfo, summary: _RunSummary, assistant: dict[str, Any]) -> dict[str, Any]:
    rng = _rng(seed, f"run-object:{run.run_id}")
    last = summary.last
    queue = rng.randint(0, 2)
    model = assistant["model"] if rng.random() < 0.85 else rng.choice(_MODELS)
    incomplete_draw = rng.random()
    reason = rng.choice(("max_prompt_tokens", "max_completion_tokens"))
    limits = (rng.choice((None, None, None, 50_000, 100_000)), rng.choice((None, None, None, 4_096, 16_384)))
    truncation = (
        {"type": "auto", "last_messages": None}
        if rng.random() < 0.8
        else {"type": "last_messages", "last_messages": rng.choice((5, 10, 20))}
    )
    tool_choice = rng.choices([c for c, _ in _TOOL_CHOICES], weights=[w for _, w in _TOOL_CHOICES])[0]
    parallel = rng.random() < 0.9
    metadata = dict(rng.choice(_METADATA)) if rng.random() < 0.4 else {}

    timestamps: dict[str, int | None] = {"cancelled_at": None, "failed_at": None, "completed_at": None}
    required_action = None
    last_error = None
    incomplete = None
    expires_at: int | None = None
    created_at = run.started_at - queue if last is not None else run.started_at
    if last is None:
        status = "queued"
    elif last["status"] == "in_progress":
        pending = [
            {
                "id": c["id"],
                "type": "function",
                "function": {"name": c["function"]["name"], "arguments": c["function"]["arguments"]},
            }
            for c in last["step_details"].get("tool_calls", [])
            if c["type"] == "function"
        ]
        status = "requires_action" if pending else "in_progress"
        if pending:
            required_action = {"type": "submit_tool_outputs", "submit_tool_outputs": {"tool_calls": pending}}
    else:
        status = last["status"]
        if status == "expired":
            expires_at = last["expired_at"]
        else:
            timestamps[_STEP_END[status]] = last[_STEP_END[status]]
        last_error = last["last_error"]
    usage = None
    max_prompt, max_completion = limits
    if status in _TERMINAL:
        prompt, completion, total = summary.usage
        usage = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": total}
        # A limit never sits below what the run used; a few completed runs hit theirs exactly.
        if max_prompt is not None and max_prompt < prompt:
            max_prompt = None
        if max_completion is not None and max_completion < completion:
            max_completion = None
        if status == "completed" and incomplete_draw < 0.04:
            used = prompt if reason == "max_prompt_tokens" else completion
            if used >= 256:
                status, timestamps["completed_at"] = "incomplete", None
                incomplete = {"reason": reason}
                if reason == "max_prompt_tokens":
                    max_prompt = used
                else:
                    max_completion = used
    if status not in _TERMINAL:
        expires_at = created_at + _EXPIRY_SECONDS
    return {
        "id": run.run_id,
        "object": "thread.run",
        "created_at": created_at,
        "assistant_id": run.assistant_id,
        "thread_id": run.thread_id,
        "status": status,
        "started_at": run.started_at if last is not None else None,
        "expires_at": expires_at,
        **timestamps,
        "required_action": required_action,
        "last_error": last_error,
        "model": model,
        "instructions": assistant["instructions"],
        "incomplete_details": incomplete,
        "tools": assistant["tools"],
        # Sent as the API's examples show, though the spec does not declare it (the schema keeps it).
        "tool_resources": assistant["tool_resources"],
        "metadata": metadata,
        "usage": usage,
        "temperature": assistant["temperature"],
        "top_p": assistant["top_p"],
        "max_prompt_tokens": max_prompt,
        "max_completion_tokens": max_completion,
        "truncation_strategy": truncation,
        "response_format": assistant["response_format"],
        "tool_choice": tool_choice,
        "parallel_tool_calls": parallel,
    }


def _message(
    message_id: str,
    thread_id: str,
    created_at: int,
    role: str,
    content: list[dict[str, Any]],
    *,
    status: str = "completed",
    completed_at: int | None = None,
    incomplete: tuple[str, int] | None = None,
    assistant_id: str | None = None,
    run_id: str | None = None,
    attachments: list[dict[str, Any]] | None = None,
    metadata: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "id": message_id,
        "object": "thread.message",
        "created_at": created_at,
        "assistant_id": assistant_id,
        "thread_id": thread_id,
        "run_id": run_id,
        "role": role,
        "content": content,
        "attachments": attachments or [],
        "metadata": metadata or {},
        "status": status,
        "incomplete_details": None if incomplete is None else {"reason": incomplete[0]},
        "completed_at": completed_at,
        "incomplete_at": None if incomplete is None else incomplete[1],
    }


def _text(value: str, annotations: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"type": "text", "text": {"value": value, "annotations": annotations or []}}


def _user_message(rng: random.Random, run: RunInfo, created_at: int) -> dict[str, Any]:
    message_id = _make_id(rng, "msg_")
    content = [_text(rng.choice(_QUESTIONS))]
    draw = rng.random()
    if draw < 0.06:
        content.insert(
            0, {"type": "image_file", "image_file": {"file_id": _make_id(rng, "file-"), "detail": "auto"}}
        )
    elif draw < 0.11:
        url = f"https://example.com/uploads/{rng.randint(1000, 9999)}.png"
        content.insert(
            0, {"type": "image_url", "image_url": {"url": url, "detail": rng.choice(("low", "high"))}}
        )
    attachments = []
    if rng.random() < 0.15:
        tool = rng.choice(("file_search", "code_interpreter"))
        attachments.append({"file_id": _make_id(rng, "file-"), "tools": [{"type": tool}]})
    metadata = dict(rng.choice(_METADATA)) if rng.random() < 0.3 else {}
    return _message(
        message_id, run.thread_id, created_at, "user", content, attachments=attachments, metadata=metadata
    )


def _assistant_message(
    rng: random.Random, run: RunInfo, step: dict[str, Any], files: tuple[str, ...], images: tuple[str, ...]
) -> dict[str, Any]:
    message_id = step["step_details"]["message_creation"]["message_id"]
    status = step["status"]
    reply = rng.choice(_REPLIES)
    content: list[dict[str, Any]]
    if status == "in_progress":
        content = [_text(reply[: rng.randint(0, len(reply) // 2)])]
    elif status == "completed" and rng.random() < 0.03:
        content = [{"type": "refusal", "refusal": _REFUSAL}]
    else:
        annotations = []
        if files and rng.random() < 0.7:
            for k, file_id in enumerate(files):
                marker = f"【{4 + k}:{k}†source】"
                annotations.append(
                    {
                        "type": "file_citation",
                        "text": marker,
                        "file_citation": {"file_id": file_id},
                        "start_index": len(reply),
                        "end_index": len(reply) + len(marker),
                    }
                )
                reply += marker
        content = [_text(reply, annotations)]
        if images and rng.random() < 0.25:
            link = "sandbox:/mnt/data/chart.png"
            value = f"Here is the chart: [chart.png]({link})"
            start = value.index(link)
            path = {
                "type": "file_path",
                "text": link,
                "file_path": {"file_id": images[0]},
                "start_index": start,
                "end_index": start + len(link),
            }
            content = [
                {"type": "image_file", "image_file": {"file_id": images[0]}},
                _text(value, [path]),
                *content,
            ]
    ended: int = step[_STEP_END[status]] if status in _STEP_END else 0
    return _message(
        message_id,
        run.thread_id,
        step["created_at"],
        "assistant",
        content,
        status="completed"
        if status == "completed"
        else "in_progress"
        if status == "in_progress"
        else "incomplete",
        completed_at=ended if status == "completed" else None,
        incomplete=(_INCOMPLETE_REASON[status], ended) if status in _INCOMPLETE_REASON else None,
        assistant_id=run.assistant_id,
        run_id=run.run_id,
    )


def _thread_data(
    dataset: Dataset, assistants: dict[str, dict[str, Any]], thread_id: str, runs: Sequence[RunInfo]
) -> ThreadData:
    seed = dataset.seed
    rng = _rng(seed, f"messages:{thread_id}")
    run_objects = []
    messages: list[tuple[int, int, dict[str, Any]]] = []  # (created_at, sequence, message)
    for run in runs:
        summary = _summarize(dataset.steps(run.thread_id, run.run_id))
        run_object = _run_object(seed, run, summary, assistants[run.assistant_id])
        run_objects.append(run_object)
        asked = run_object["created_at"] - rng.randint(1, 20)
        messages.append((asked, len(messages), _user_message(rng, run, asked)))
        for step, files, images in summary.created:
            messages.append(
                (step["created_at"], len(messages), _assistant_message(rng, run, step, files, images))
            )
    return assemble_thread(run_objects, messages)


def assemble_thread(
    run_objects: Sequence[dict[str, Any]], messages: list[tuple[int, int, dict[str, Any]]]
) -> ThreadData:
    """A thread's listings from its runs and its (created_at, order, message) triples: the messages in
    creation order, and each run's own."""
    messages.sort(key=lambda item: (item[0], item[1]))
    ordered = [message for _, _, message in messages]
    listing = Listing.of(ordered)
    by_run: dict[str, list[int]] = {}
    for position, message in enumerate(ordered):
        if message["run_id"] is not None:
            by_run.setdefault(message["run_id"], []).append(position)
    return ThreadData(
        runs=Listing.of(run_objects),
        messages=listing,
        messages_by_run={run_id: listing.subset(indices) for run_id, indices in by_run.items()},
    )
