"""The ASGI application: OpenAI's Assistants GET endpoints over a :class:`Dataset`, plus controls.

Routes (each also under Azure's prefixes ``/openai`` and ``/openai/v1``), with their ``/_emulator/stats``
bucket::

    GET /v1/threads/{thread_id}/runs/{run_id}/steps              list          (cursor pages)
    GET /v1/threads/{thread_id}/runs/{run_id}/steps/{step_id}    retrieve
    GET /v1/threads/{thread_id}/runs                             runs.list
    GET /v1/threads/{thread_id}/runs/{run_id}                    runs.retrieve
    GET /v1/threads/{thread_id}/messages[?run_id=...]            messages.list
    GET /v1/threads/{thread_id}/messages/{message_id}            messages.retrieve
    GET /v1/threads/{thread_id}                                  threads.retrieve
    GET /v1/assistants                                           assistants.list
    GET /v1/assistants/{assistant_id}                            assistants.retrieve
    GET /v1/responses/..., /v1/conversations/..., /v1/chat/completions...   see :mod:`.successors`
    GET /v1/organization/...  (usage, costs, audit logs, projects, users)   see :mod:`.organization_routes`
    GET  /_emulator/stats | /_emulator/requests?limit=N | /_emulator/faults | /_emulator/health
    POST /_emulator/faults | /_emulator/reset
    GET  /_emulator/live | POST /_emulator/live {"advance_s": X}    the live runs (:mod:`.live`)

The run-steps buckets keep their names ``list`` and ``retrieve``; any other path is ``other``. Runs,
messages, assistants and threads come from :class:`~.family.Family`, derived from the same runs and
steps. Every list pages the same way (``limit`` 1 to 100, default 20; ``order`` default ``desc``;
``after``/``before``; ``first_id``, ``last_id``, ``has_more``).

Every API request first waits ``latency_ms`` (and ``slow_ms`` if a slow fault hit it),
then passes these checks in order, like the real API; the first failing one answers:

1. an injected error fault: 500/502/503/408/409 (scripted first, else the seeded draw);
2. authentication, 401: ``Authorization: Bearer <key>``, or Azure's ``api-key`` header (with
   ``admin_key`` set, only it opens ``/v1/organization/...`` and it opens nothing else:
   :func:`~.organization_routes.key_error`);
3. Azure's ``api-version`` query parameter when ``api-key`` was used, 400 (not under ``/openai/v1``,
   Azure's v1 API, which takes no version);
4. the rate limit, 429 (an injected 429 fault answers here too);
5. the route: 404 for an unknown path, 405 for a method other than GET;
6. the ``OpenAI-Beta: assistants=v2`` header, 400 ``invalid_beta``;
7. the query parameters ``limit``, ``order`` (lists), ``include[]`` (steps), 400 with ``param`` set;
8. existence of the thread (or assistant), then the run within it, then the step or message, 404;
9. the ``after``/``before`` cursors, 400.

A ``drop`` fault lets the request run and cuts its response. Every response carries
``x-request-id`` and ``openai-processing-ms``; those that got to step 4 also carry
``x-ratelimit-limit-requests``, ``-remaining-requests`` and ``-reset-requests``.

Choices where the public spec is silent:

* An ``after``/``before`` cursor that is not an object of the list (a step of the run, a run
  or message of the thread, an assistant) is a 400 ``invalid_request_error`` with ``param``
  ``"after"``/``"before"`` and a message naming the id -- an error rather than a silently
  empty page, so a client bug shows up. With ``run_id``, the list is that run's messages.
* ``run_id`` on messages filters: a run that created no message of the thread (or no run at
  all) gives an empty list, as a filter would.
* A missing key answers with ``code: null`` (as OpenAI does), a wrong key with
  ``code: "invalid_api_key"`` and the key masked; the log never holds a key.
* A ``drop`` fault sends the status line and headers (with the true ``content-length``)
  and half of the body, then closes the connection: the client sees an incomplete
  response, as when a connection dies mid-transfer. The data itself is never altered.
* Latency and ``slow`` faults are ``asyncio.sleep``, so they do not block other requests.
* ``/_emulator/*`` requests are never faulted, rate limited, counted or logged. With an ``api_key``
  they need it as the API paths do (``Authorization: Bearer`` or ``api-key``; 401 otherwise), since
  they show the request log and change the server's behaviour; ``/_emulator/health``, which shows
  nothing, stays open. Without one they are open, as the API paths take any key.
"""

from __future__ import annotations

import asyncio
import email.utils
import hmac
import json
import logging
import re
import secrets
import time
from collections.abc import Sequence
from typing import Any

from starlette.datastructures import Headers, QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, Router
from starlette.types import Message, Receive, Scope, Send

from . import errors
from .data import INCLUDE_FILE_SEARCH_CONTENT, Dataset, RunInfo, SerializedRun
from .errors import ApiError
from .family import Family, Listing, ThreadData
from .faults import ERROR_KINDS, Fault, FaultInjector, ScriptedFault
from .live import LiveRuns, parse_advance
from .organization import Organization
from .organization_routes import BUCKETS as ORGANIZATION_BUCKETS
from .organization_routes import key_error
from .organization_routes import routes as organization_routes
from .paging import Order, select_page
from .ratelimit import UNLIMITED_RATE, Decision, TokenBucket
from .settings import EmulatorSettings
from .stats import LOG_SIZE, LOGGED_HEADERS, RequestRecord, StatsRecorder
from .successors import BUCKETS as SUCCESSOR_BUCKETS
from .successors import routes as successor_routes

__all__ = ["API_PREFIXES", "DEFAULT_LIMIT", "MAX_LIMIT", "EmulatorApp", "classify_path", "create_app"]

API_PREFIXES = ("/v1", "/openai", "/openai/v1")
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
_DEFAULT_ORDER: Order = "desc"
_STEPS_PATH = "/threads/{thread_id}/runs/{run_id}/steps"
_RUNS_PATH = "/threads/{thread_id}/runs"
_MESSAGES_PATH = "/threads/{thread_id}/messages"
_ASSISTANTS_PATH = "/assistants"
_ID = "[^/]+"
#: Stats bucket of each API path; the run-steps ones first, as they are the hot path.
_BUCKETS = tuple(
    (re.compile(rf"^/(?:v1|openai|openai/v1)/{pattern}$"), bucket)
    for pattern, bucket in (
        (f"threads/{_ID}/runs/{_ID}/steps", "list"),
        (f"threads/{_ID}/runs/{_ID}/steps/{_ID}", "retrieve"),
        (f"threads/{_ID}/runs", "runs.list"),
        (f"threads/{_ID}/runs/{_ID}", "runs.retrieve"),
        (f"threads/{_ID}/messages", "messages.list"),
        (f"threads/{_ID}/messages/{_ID}", "messages.retrieve"),
        (f"threads/{_ID}", "threads.retrieve"),
        ("assistants", "assistants.list"),
        (f"assistants/{_ID}", "assistants.retrieve"),
        *SUCCESSOR_BUCKETS,
    )
)
#: The same, and the organization's paths (only under /v1).
_EVERY_BUCKET = _BUCKETS + ORGANIZATION_BUCKETS
_LIMIT_RE = re.compile(r"[0-9]+")
_ALLOWED_METHODS = frozenset({"GET", "HEAD"})
_ANY_METHOD = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
_JSON = "application/json"
# uvicorn logs this (at error level) whenever an app stops mid-body, which is exactly
# what a drop fault does on purpose.
_DROP_LOG_MESSAGE = "ASGI callable returned without completing response."


class _SuppressDropNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg != _DROP_LOG_MESSAGE


_DROP_FILTER = _SuppressDropNoise()


def classify_path(path: str) -> str:
    """The stats bucket of a request path: ``"list"`` and ``"retrieve"`` for run steps, ``"runs.list"``,
    ``"messages.retrieve"``... for the rest of the family (see the module docstring), else ``"other"``."""
    for pattern, bucket in _EVERY_BUCKET:
        if pattern.match(path):
            return bucket
    return "other"


def create_app(
    settings: EmulatorSettings | None = None,
    dataset: Dataset | None = None,
    organization: Organization | None = None,
) -> EmulatorApp:
    """Build the app; ``dataset`` and ``organization`` default to the ones the settings describe."""
    settings = settings if settings is not None else EmulatorSettings()
    if dataset is None:
        dataset = Dataset(settings.seed, settings.dataset)
    return EmulatorApp(settings, dataset, organization)


class EmulatorApp:
    """ASGI app. All mutable state lives on the event loop that serves it."""

    def __init__(
        self, settings: EmulatorSettings, dataset: Dataset, organization: Organization | None = None
    ) -> None:
        self.settings = settings
        self.dataset = dataset
        self.family = Family(dataset)
        if organization is None:
            organization = Organization(settings.seed, days=settings.days, now=settings.now)
        self.organization = organization
        self.successors = organization.successors
        #: Runs progressing in real time, in a thread of their own (``--live N``); None without.
        self.live = (
            LiveRuns(settings.seed, settings.live, assistant_ids=dataset.assistant_ids)
            if settings.live.runs
            else None
        )
        self.stats = StatsRecorder()
        self.faults = FaultInjector(settings.seed, settings.fault_rate, settings.slow_ms)
        self.bucket = TokenBucket(settings.rate_limit if settings.rate_limit is not None else UNLIMITED_RATE)
        self._latency_s = settings.latency_ms / 1000.0
        self._epoch = time.perf_counter()
        # Every method reaches the endpoint, which answers 405 in OpenAI's error shape.
        self._api = Router(
            [
                route
                for prefix in API_PREFIXES
                for route in (
                    Route(prefix + _STEPS_PATH, self._list_steps, methods=_ANY_METHOD),
                    Route(prefix + _STEPS_PATH + "/{step_id}", self._retrieve_step, methods=_ANY_METHOD),
                    Route(prefix + _RUNS_PATH, self._list_runs, methods=_ANY_METHOD),
                    Route(prefix + _RUNS_PATH + "/{run_id}", self._retrieve_run, methods=_ANY_METHOD),
                    Route(prefix + _MESSAGES_PATH, self._list_messages, methods=_ANY_METHOD),
                    Route(
                        prefix + _MESSAGES_PATH + "/{message_id}", self._retrieve_message, methods=_ANY_METHOD
                    ),
                    Route(prefix + "/threads/{thread_id}", self._retrieve_thread, methods=_ANY_METHOD),
                    Route(prefix + _ASSISTANTS_PATH, self._list_assistants, methods=_ANY_METHOD),
                    Route(
                        prefix + _ASSISTANTS_PATH + "/{assistant_id}",
                        self._retrieve_assistant,
                        methods=_ANY_METHOD,
                    ),
                    *successor_routes(prefix, self.successors),
                )
            ]
            + organization_routes(self.organization),
            redirect_slashes=False,
            default=self._unknown_path,
        )
        self._control = Router(
            [
                Route("/_emulator/health", self._health, methods=["GET"]),
                Route("/_emulator/stats", self._stats, methods=["GET"]),
                Route("/_emulator/requests", self._requests, methods=["GET"]),
                Route("/_emulator/faults", self._faults, methods=["GET", "POST"]),
                Route("/_emulator/reset", self._reset, methods=["POST"]),
                Route("/_emulator/live", self._live, methods=["GET", "POST"]),
            ],
            redirect_slashes=False,
        )
        logging.getLogger("uvicorn.error").addFilter(_DROP_FILTER)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
        elif scope["type"] == "http":
            if scope["path"].startswith("/_emulator/"):
                denied = self._control_denied(scope)
                if denied is None:
                    await self._control(scope, receive, send)
                else:
                    await _error_response(denied)(scope, receive, send)
            else:
                await self._serve_api(scope, receive, send)
        # Anything else (websockets) is refused by returning without accepting.

    # -- the API gateway: faults, auth, rate limit, common headers, stats -------------

    async def _serve_api(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        path: str = scope["path"]
        headers = Headers(scope=scope)
        query = QueryParams(scope["query_string"])
        scheme, key = _credentials(headers)
        fault = self.faults.next(path)
        outcome: dict[str, Any] = {"status": 0, "dropped": False}
        common = {
            "x-request-id": "req_" + secrets.token_hex(16),
            "openai-version": "2020-10-01",
            # The emulator's clock (--now), so a client judges "has this bucket ended" as it would.
            "date": email.utils.formatdate(self.organization.now(), usegmt=True),
        }
        drop = fault is not None and fault.kind == "drop"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                outcome["status"] = message["status"]
                elapsed = str(int((time.perf_counter() - started) * 1000))
                extra = [(k.encode(), v.encode()) for k, v in common.items()]
                extra.append((b"openai-processing-ms", elapsed.encode()))
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            elif message["type"] == "http.response.body" and drop:
                if outcome["dropped"]:
                    return
                body: bytes = message.get("body", b"")
                outcome["dropped"] = True
                message = {"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True}
            await send(message)

        self.stats.begin()
        try:
            if self._latency_s:
                await asyncio.sleep(self._latency_s)
            if fault is not None and fault.kind == "slow":
                await asyncio.sleep(fault.delay_ms / 1000.0)
            error, decision = self._gate(fault, scheme, key, query, path)
            if decision is not None:
                common.update(decision.headers())
            if error is not None:
                await _error_response(error)(scope, receive, send_with_headers)
            else:
                await self._api(scope, receive, send_with_headers)
        finally:
            self.stats.finish(
                RequestRecord(
                    request_id=common["x-request-id"],
                    method=scope["method"],
                    path=path,
                    query={name: query.getlist(name) for name in query},
                    endpoint=classify_path(path),
                    status="drop" if outcome["dropped"] else outcome["status"],
                    auth=scheme,
                    headers={name: headers[name] for name in LOGGED_HEADERS if name in headers},
                    fault=None if fault is None else fault.kind,
                    duration_ms=round((time.perf_counter() - started) * 1000, 3),
                    api_version=query.get("api-version"),
                    received_s=round(started - self._epoch, 6),
                )
            )

    def _control_denied(self, scope: Scope) -> ApiError | None:
        """The 401 that answers a control request without the required key, if one is required."""
        if self.settings.api_key is None or scope["path"] == "/_emulator/health":
            return None
        _, key = _credentials(Headers(scope=scope))
        return errors.missing_api_key() if not key else self._wrong_key(key)

    def _wrong_key(self, key: str) -> ApiError | None:
        expected = self.settings.api_key
        if expected is not None and not hmac.compare_digest(key.encode(), expected.encode()):
            return errors.invalid_api_key(key)
        return None

    def _gate(
        self, fault: Fault | None, scheme: str | None, key: str | None, query: QueryParams, path: str
    ) -> tuple[ApiError | None, Decision | None]:
        """The checks before routing: fault, auth, Azure api-version, rate limit."""
        if fault is not None and fault.kind in ERROR_KINDS:
            return errors.scripted_error(fault.kind), None
        if not key:
            return errors.missing_api_key(), None
        refused = key_error(self.settings, path, key)
        if refused is not None:
            return refused, None
        if scheme == "api-key" and not query.get("api-version") and not path.startswith("/openai/v1/"):
            return errors.missing_api_version(), None
        if fault is not None and fault.kind == "429":
            forced = self.bucket.exhausted(fault.retry_after_ms)
            return errors.rate_limited(forced.limit, forced.retry_after_ms), forced
        decision = self.bucket.take()
        if not decision.allowed:
            return errors.rate_limited(decision.limit, decision.retry_after_ms), decision
        return None, decision

    # -- endpoints ---------------------------------------------------------------------

    async def _list_steps(self, request: Request) -> Response:
        early = _check_method_and_beta(request)
        if early is not None:
            return _error_response(early)
        params = request.query_params
        limit, error = _parse_limit(params.get("limit"))
        if error is not None:
            return _error_response(error)
        order = params.get("order", _DEFAULT_ORDER)
        if order not in ("asc", "desc"):
            return _error_response(errors.bad_order(order))
        include, error = _parse_include(params)
        if error is not None:
            return _error_response(error)
        found = await self._find_run(request)
        if isinstance(found, ApiError):
            return _error_response(found)
        run, data = found
        positions: dict[str, int | None] = {"after": None, "before": None}
        for name in positions:
            cursor = params.get(name)
            if cursor is None:
                continue
            position = data.positions.get(cursor)
            if position is None:
                return _error_response(errors.bad_cursor(name, cursor, run.run_id))
            positions[name] = position
        page = select_page(
            len(data.ids),
            order="asc" if order == "asc" else "desc",
            limit=limit,
            after=positions["after"],
            before=positions["before"],
        )
        bodies = data.with_content if include else data.plain
        return Response(_list_body(data.ids, bodies, page.indices, page.has_more), media_type=_JSON)

    async def _retrieve_step(self, request: Request) -> Response:
        early = _check_method_and_beta(request)
        if early is not None:
            return _error_response(early)
        include, error = _parse_include(request.query_params)
        if error is not None:
            return _error_response(error)
        found = await self._find_run(request)
        if isinstance(found, ApiError):
            return _error_response(found)
        _, data = found
        step_id = request.path_params["step_id"]
        position = data.positions.get(step_id)
        if position is None:
            return _error_response(errors.api_error(404, f"No run step found with id '{step_id}'."))
        return Response(data.body(position, include), media_type=_JSON)

    async def _find_run(self, request: Request) -> tuple[RunInfo, SerializedRun] | ApiError:
        thread_id = request.path_params["thread_id"]
        run_id = request.path_params["run_id"]
        if self.live is not None and self.live.has_thread(thread_id):
            return self.live.find_run(thread_id, run_id)
        if not self.dataset.has_thread(thread_id):
            return errors.api_error(404, f"No thread found with id '{thread_id}'.")
        run = self.dataset.run(thread_id, run_id)
        if run is None:
            return errors.api_error(404, f"No run found with id '{run_id}'.")
        if self.dataset.is_cached(run):
            return run, self.dataset.serialized(run)
        # First read of a long run takes a while to generate; keep the loop serving meanwhile.
        return run, await asyncio.to_thread(self.dataset.serialized, run)

    # -- the rest of the family: runs, messages, threads, assistants -------------------------

    async def _list_runs(self, request: Request) -> Response:
        checked = _check_list_request(request)
        if isinstance(checked, ApiError):
            return _error_response(checked)
        found = await self._thread_data(request)
        if isinstance(found, ApiError):
            return _error_response(found)
        thread_id = request.path_params["thread_id"]
        return _list_response(request, found.runs, checked, "run", f"in thread '{thread_id}'")

    async def _retrieve_run(self, request: Request) -> Response:
        early = _check_method_and_beta(request)
        if early is not None:
            return _error_response(early)
        found = await self._thread_data(request)
        if isinstance(found, ApiError):
            return _error_response(found)
        return _retrieve_response(found.runs, request.path_params["run_id"], "run")

    async def _list_messages(self, request: Request) -> Response:
        checked = _check_list_request(request)
        if isinstance(checked, ApiError):
            return _error_response(checked)
        found = await self._thread_data(request)
        if isinstance(found, ApiError):
            return _error_response(found)
        thread_id = request.path_params["thread_id"]
        run_id = request.query_params.get("run_id")
        where = f"in thread '{thread_id}'"
        if run_id is not None:
            where = f"among the messages of run '{run_id}' {where}"
        return _list_response(request, found.messages_of(run_id), checked, "message", where)

    async def _retrieve_message(self, request: Request) -> Response:
        early = _check_method_and_beta(request)
        if early is not None:
            return _error_response(early)
        found = await self._thread_data(request)
        if isinstance(found, ApiError):
            return _error_response(found)
        return _retrieve_response(found.messages, request.path_params["message_id"], "message")

    async def _retrieve_thread(self, request: Request) -> Response:
        early = _check_method_and_beta(request)
        if early is not None:
            return _error_response(early)
        thread_id = request.path_params["thread_id"]
        if self.live is not None and self.live.has_thread(thread_id):
            return Response(self.live.thread_body(), media_type=_JSON)
        body = self.family.thread_body(thread_id)
        if body is None:
            return _error_response(errors.api_error(404, f"No thread found with id '{thread_id}'."))
        return Response(body, media_type=_JSON)

    async def _list_assistants(self, request: Request) -> Response:
        checked = _check_list_request(request)
        if isinstance(checked, ApiError):
            return _error_response(checked)
        return _list_response(request, self.family.assistant_listing(), checked, "assistant", "")

    async def _retrieve_assistant(self, request: Request) -> Response:
        early = _check_method_and_beta(request)
        if early is not None:
            return _error_response(early)
        return _retrieve_response(
            self.family.assistant_listing(), request.path_params["assistant_id"], "assistant"
        )

    async def _thread_data(self, request: Request) -> ThreadData | ApiError:
        thread_id = request.path_params["thread_id"]
        if self.live is not None and self.live.has_thread(thread_id):
            return self.live.thread_data(self.family)
        if not self.dataset.has_thread(thread_id):
            return errors.api_error(404, f"No thread found with id '{thread_id}'.")
        if self.family.is_cached(thread_id):
            return self.family.thread_data(thread_id)
        # A thread's first read generates its runs' steps; keep the loop serving meanwhile.
        return await asyncio.to_thread(self.family.thread_data, thread_id)

    async def _unknown_path(self, scope: Scope, receive: Receive, send: Send) -> None:
        await _error_response(errors.not_found_path(scope["method"], scope["path"]))(scope, receive, send)

    # -- controls ----------------------------------------------------------------------

    async def _health(self, request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def _stats(self, request: Request) -> Response:
        return JSONResponse(self.stats.snapshot())

    async def _requests(self, request: Request) -> Response:
        raw = request.query_params.get("limit", str(LOG_SIZE))
        if not _LIMIT_RE.fullmatch(raw):
            return JSONResponse({"error": f"limit must be a non-negative integer, got {raw!r}"}, 400)
        return JSONResponse(self.stats.recent(int(raw)))

    async def _faults(self, request: Request) -> Response:
        if request.method == "POST":
            try:
                fault = ScriptedFault.from_json(json.loads(await request.body()))
            except ValueError as exc:  # json.JSONDecodeError is a ValueError
                return JSONResponse({"error": str(exc)}, 400)
            self.faults.schedule(fault)
        return JSONResponse({"pending": self.faults.pending()})

    async def _live(self, request: Request) -> Response:
        if self.live is None:
            return JSONResponse({"error": "no live runs: start the emulator with --live N"}, 404)
        if request.method == "POST":
            try:
                self.live.clock.advance(parse_advance(await request.body()))
            except ValueError as exc:
                return JSONResponse({"error": str(exc)}, 400)
        return JSONResponse(self.live.state())

    async def _reset(self, request: Request) -> Response:
        self.stats.reset()
        self.faults.reset()
        self.bucket.reset()
        return JSONResponse({"ok": True})


def _credentials(headers: Headers) -> tuple[str | None, str | None]:
    """(scheme, key): ``Authorization: Bearer`` first, then Azure's ``api-key`` header."""
    authorization = headers.get("authorization")
    if authorization is not None:
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() == "bearer":
            return "bearer", value.strip() or None
    api_key = headers.get("api-key")
    if api_key is not None:
        return "api-key", api_key.strip() or None
    return ("other", None) if authorization is not None else (None, None)


def _check_method_and_beta(request: Request) -> ApiError | None:
    if request.method not in _ALLOWED_METHODS:
        return errors.method_not_allowed(request.method, request.url.path)
    beta = request.headers.get("openai-beta")
    if beta is None or "assistants=v2" not in (part.strip() for part in beta.split(",")):
        return errors.bad_beta(beta)
    return None


def _parse_limit(raw: str | None) -> tuple[int, ApiError | None]:
    if raw is None:
        return DEFAULT_LIMIT, None
    if _LIMIT_RE.fullmatch(raw) and 1 <= int(raw) <= MAX_LIMIT:
        return int(raw), None
    return 0, errors.bad_limit(raw, 1, MAX_LIMIT)


def _parse_include(params: QueryParams) -> tuple[bool, ApiError | None]:
    values = params.getlist("include[]")
    for index, value in enumerate(values):
        if value != INCLUDE_FILE_SEARCH_CONTENT:
            return False, errors.bad_include(value, index, INCLUDE_FILE_SEARCH_CONTENT)
    return bool(values), None


def _check_list_request(request: Request) -> tuple[int, Order] | ApiError:
    """(limit, order) of a list request other than steps', or the error that answers it."""
    early = _check_method_and_beta(request)
    if early is not None:
        return early
    limit, error = _parse_limit(request.query_params.get("limit"))
    if error is not None:
        return error
    order = request.query_params.get("order", _DEFAULT_ORDER)
    if order not in ("asc", "desc"):
        return errors.bad_order(order)
    return limit, "asc" if order == "asc" else "desc"


def _list_response(
    request: Request, listing: Listing, checked: tuple[int, Order], noun: str, where: str
) -> Response:
    limit, order = checked
    positions: dict[str, int | None] = {"after": None, "before": None}
    for name in positions:
        cursor = request.query_params.get(name)
        if cursor is None:
            continue
        position = listing.positions.get(cursor)
        if position is None:
            return _error_response(errors.bad_object_cursor(name, cursor, noun, where))
        positions[name] = position
    page = select_page(
        len(listing.ids), order=order, limit=limit, after=positions["after"], before=positions["before"]
    )
    return Response(_list_body(listing.ids, listing.bodies, page.indices, page.has_more), media_type=_JSON)


def _retrieve_response(listing: Listing, object_id: str, noun: str) -> Response:
    position = listing.positions.get(object_id)
    if position is None:
        return _error_response(errors.api_error(404, f"No {noun} found with id '{object_id}'."))
    return Response(listing.bodies[position], media_type=_JSON)


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


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
