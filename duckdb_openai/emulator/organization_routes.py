"""The organization endpoints over HTTP (an admin key's), and the rule of which key opens which path.

Routes (under ``/v1`` only; Azure has no organization endpoints), with their ``/_emulator/stats``
bucket::

    GET /v1/organization/usage/{completions, embeddings, moderations, images, audio_speeches,
        audio_transcriptions, vector_stores, code_interpreter_sessions, file_search_calls,
        web_search_calls}                                    organization.usage.<name>
    GET /v1/organization/costs                               organization.costs
    GET /v1/organization/audit_logs                          organization.audit_logs
    GET /v1/organization/projects                            organization.projects.list
    GET /v1/organization/projects/{project_id}               organization.projects.retrieve
    GET /v1/organization/projects/{project_id}/api_keys      organization.projects.api_keys.list
    GET /v1/organization/projects/{project_id}/service_accounts
                                                             organization.projects.service_accounts.list
    GET /v1/organization/users                               organization.users.list
    GET /v1/organization/users/{user_id}                     organization.users.retrieve

Keys (:func:`key_error`): with an admin key set (``--admin-key``), the organization paths accept only
it and the other paths never do; without one, the organization paths accept any non-empty key.

Usage and costs pages: ``start_time`` (required), ``end_time`` (exclusive), ``bucket_width`` (``1m``,
``1h``, ``1d``; costs only ``1d``), ``group_by`` and the array filters repeated
(``group_by=model&group_by=project_id``), ``batch=true|false`` (completions), ``limit`` buckets (1 to
31, default 7 at ``1d``; 168 and 24 at ``1h``; 1,440 and 60 at ``1m``; costs 1 to 180, default 7),
``page`` = the previous page's ``next_page``. A page token is ``page_`` and the standard base64 of the
next bucket's start and a MAC of the query, so it holds ``=`` (and often ``+`` or ``/``): a token
that was altered, belongs to another query, or lost a ``+`` to a space on the way is a 400 with
``param`` ``"page"``. Wrong input is a 400 ``invalid_request_error`` naming the parameter: a missing or
non-integer ``start_time``, ``end_time`` not after it, an unknown width, a ``group_by`` value the
endpoint does not have, a value outside a filter's enumeration, ``batch`` not a boolean, ``limit`` out
of range. Other query parameters are ignored, as the API ignores them.

Lists (audit logs, projects, users, a project's keys and service accounts) page by ``after`` (and
``before`` for audit logs) with ``first_id``/``last_id``/``has_more``, ``limit`` 1 to 100 (default
20); audit logs newest first, the others oldest first. Audit logs filter by ``effective_at[gt]``,
``[gte]``, ``[lt]``, ``[lte]``, ``project_ids[]``, ``event_types[]`` (values of the spec's
enumeration), ``actor_ids[]`` (a user, service account or API key id), ``actor_emails[]``,
``resource_ids[]`` (the id of the event's object) and ``tenant_only`` (no event of this organization is
tenant-scoped); users by ``emails`` (also spelled ``emails[]``); projects by ``include_archived``
(default false); a project's keys by ``owner_project_access`` (``active``, ``inactive``, ``any``:
every key's owner is active). An unknown project or user is a 404; an archived project's service
accounts a 400.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import errors
from .errors import ApiError
from .family import Listing
from .organization import Organization, UsageQuery
from .organization_usage import COSTS, COSTS_LIMITS, KINDS, LIMITS, WIDTHS, UsageKind
from .paging import Order, select_page
from .settings import EmulatorSettings

__all__ = ["AUDIT_LOG_EVENT_TYPES", "BUCKETS", "PREFIX", "is_organization_path", "key_error", "routes"]

PREFIX = "/v1/organization"
_ID = "[^/]+"
#: Stats bucket of each organization path.
BUCKETS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(rf"^{PREFIX}/{pattern}$"), bucket)
    for pattern, bucket in (
        *((f"usage/{name}", f"organization.usage.{name}") for name in KINDS),
        ("costs", "organization.costs"),
        ("audit_logs", "organization.audit_logs"),
        ("projects", "organization.projects.list"),
        (f"projects/{_ID}", "organization.projects.retrieve"),
        (f"projects/{_ID}/api_keys", "organization.projects.api_keys.list"),
        (f"projects/{_ID}/service_accounts", "organization.projects.service_accounts.list"),
        ("users", "organization.users.list"),
        (f"users/{_ID}", "organization.users.retrieve"),
    )
)
_EVENT_TYPES = """
api_key.created api_key.updated api_key.deleted certificate.created certificate.updated
certificate.deleted certificates.activated certificates.deactivated checkpoint.permission.created
checkpoint.permission.deleted external_key.registered external_key.removed group.created
group.updated group.deleted invite.sent invite.accepted invite.deleted ip_allowlist.created
ip_allowlist.updated ip_allowlist.deleted ip_allowlist.config.activated
ip_allowlist.config.deactivated login.succeeded login.failed logout.succeeded logout.failed
organization.updated project.created project.updated project.archived project.deleted
rate_limit.updated rate_limit.deleted resource.deleted tunnel.created tunnel.updated tunnel.deleted
workload_identity_provider.created workload_identity_provider.updated
workload_identity_provider.deleted workload_identity_provider_mapping.created
workload_identity_provider_mapping.updated workload_identity_provider_mapping.deleted role.created
role.updated role.deleted role.assignment.created role.assignment.deleted role.bound_to_resource
role.unbound_from_resource scim.enabled scim.disabled service_account.created
service_account.updated service_account.deleted user.added user.updated user.deleted
tenant.metadata.updated tenant.microsoft_entra_mapping.upserted
tenant.microsoft_entra_mapping.deleted tenant.workload_identity.provider.created
tenant.workload_identity.provider.updated tenant.workload_identity.provider.archived
tenant.workload_identity.mapping.created tenant.workload_identity.mapping.updated
tenant.workload_identity.mapping.archived tenant.workload_identity.binding.created
tenant.workload_identity.principal.provisioned tenant.workload_identity.access_token.issued
tenant.admin_api_key.created tenant.admin_api_key.updated tenant.admin_api_key.deleted
tenant.project_api_key.created tenant.chatgpt_access_token.revoked tenant.migration.completed
tenant.sso.migrated tenant.domains.migrated tenant.sso_connection.created
tenant.sso_connection.updated tenant.sso_connection.deleted tenant.sso_connection.setup.started
tenant.policy.created tenant.policy.updated tenant.policy.deleted tenant.policy.attached
tenant.policy.detached tenant.principal_authentication_policy.resolved tenant.scim.setup.started
tenant.scim.deletion.requested tenant.scim.directory.created tenant.product_access_policy.updated
tenant.resource_share_grant.created tenant.resource_share_grant.updated
tenant.resource_share_grant.accepted tenant.resource_share_grant.declined
tenant.resource_share_grant.revoked tenant.resource_share_grant.deleted
tenant.service_account.updated tenant.service_account.deleted tenant.service_account.token.revoked
tenant.billing.overage_limit.updated tenant.billing.alerts.updated tenant.billing.info.updated
tenant.usage_limit.workspace.updated tenant.usage_limit.group.updated
tenant.usage_limit.user.updated tenant.usage_limit.increase_request.updated
tenant.usage_limit.increase_request.resolved tenant.group.created tenant.group.updated
tenant.group.deleted tenant.group.member.added tenant.group.member.removed
tenant.migration_rollout.status.updated tenant.migration_rollout.tier.updated
tenant.role.metadata.updated tenant.custom_role.created tenant.custom_role.updated
tenant.custom_role.deleted tenant.role_assignment.created tenant.role_assignment.deleted
tenant.resource_role_assignment.created tenant.resource_role_assignment.deleted
tenant.resource_access.updated tenant.resource_access.deleted
tenant.ads_account.onboarding.redemption tenant.session_policy.created
tenant.session_policy.updated tenant.session_policy.deleted tenant.session_revocation.started
tenant.third_party_app_policy.updated tenant.user.added tenant.user.updated tenant.user.removed
tenant.user.looked_up tenant.user.invited tenant.membership.revoked
tenant.api_organization_invite.upserted tenant.api_organization_invite.deleted
tenant.chatgpt_workspace_invite.upserted tenant.membership.accepted tenant.membership.declined
tenant.workspace_invite_email_settings.updated
"""
#: The values ``event_types[]`` accepts: the spec's AuditLogEventType.
AUDIT_LOG_EVENT_TYPES = frozenset(_EVENT_TYPES.split())
_TENANT_SCOPED_ROLES = ("role.bound_to_resource", "role.unbound_from_resource")
_LIST_DEFAULT = 20
_LIST_MAX = 100
_INTEGER = re.compile(r"-?[0-9]+")
_LIMIT = re.compile(r"[0-9]+")
_BOOLEANS = {"true": True, "false": False}
_BOUNDS = ("gt", "gte", "lt", "lte")
_OWNER_ACCESS = ("active", "inactive", "any")
_JSON = "application/json"
_ALLOWED_METHODS = frozenset({"GET", "HEAD"})
_ANY_METHOD = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
_TOKEN_PREFIX = "page_"

Handler = Callable[[Request, Organization], Awaitable[Response]]


def is_organization_path(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


def key_error(settings: EmulatorSettings, path: str, key: str) -> ApiError | None:
    """The 401 a (non-empty) key gets on ``path``, or None when it may pass.

    With ``settings.admin_key`` the organization paths take only it, and the other paths never do;
    without it the organization paths take any key. The other paths take ``settings.api_key`` (any
    key when None).
    """
    admin = settings.admin_key
    if is_organization_path(path):
        expected = admin
    elif admin is not None and _same(key, admin):
        return errors.invalid_api_key(key)
    else:
        expected = settings.api_key
    if expected is not None and not _same(key, expected):
        return errors.invalid_api_key(key)
    return None


def _same(key: str, expected: str) -> bool:
    return hmac.compare_digest(key.encode(), expected.encode())


def routes(organization: Organization) -> list[Route]:
    """The organization endpoints, serving ``organization``."""
    secret = hashlib.sha256(f"duckdb-openai-emulator:{organization.seed}:pages".encode()).digest()

    def endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def serve(request: Request) -> Response:
            if request.method not in _ALLOWED_METHODS:
                return _error_response(errors.method_not_allowed(request.method, request.url.path))
            if not organization.is_built:
                # The first request generates the organization; keep the loop serving meanwhile.
                await asyncio.to_thread(lambda: organization.population)
            return await handler(request, organization)

        return serve

    def usage_endpoint(kind: UsageKind) -> Handler:
        async def serve(request: Request, org: Organization) -> Response:
            return _usage_page(request, org, kind, secret)

        return serve

    return [
        *(
            Route(f"{PREFIX}/usage/{name}", endpoint(usage_endpoint(kind)), methods=_ANY_METHOD)
            for name, kind in KINDS.items()
        ),
        Route(f"{PREFIX}/costs", endpoint(usage_endpoint(COSTS)), methods=_ANY_METHOD),
        Route(f"{PREFIX}/audit_logs", endpoint(_audit_logs), methods=_ANY_METHOD),
        Route(f"{PREFIX}/projects", endpoint(_projects), methods=_ANY_METHOD),
        Route(f"{PREFIX}/projects/{{project_id}}", endpoint(_project), methods=_ANY_METHOD),
        Route(f"{PREFIX}/projects/{{project_id}}/api_keys", endpoint(_api_keys), methods=_ANY_METHOD),
        Route(
            f"{PREFIX}/projects/{{project_id}}/service_accounts",
            endpoint(_service_accounts),
            methods=_ANY_METHOD,
        ),
        Route(f"{PREFIX}/users", endpoint(_users), methods=_ANY_METHOD),
        Route(f"{PREFIX}/users/{{user_id}}", endpoint(_user), methods=_ANY_METHOD),
    ]


# -- usage and costs -------------------------------------------------------------------------------


def _usage_page(request: Request, org: Organization, kind: UsageKind, secret: bytes) -> Response:
    params = request.query_params
    checked = _usage_query(params, kind)
    if isinstance(checked, ApiError):
        return _error_response(checked)
    query, limit = checked
    now = org.now()
    buckets = query.buckets(now)
    first = 0
    token = params.get("page")
    if token is not None:
        next_start = _read_token(token, secret, query)
        if next_start is None:
            return _error_response(
                errors.api_error(
                    400,
                    f"Invalid 'page': '{token}' is not a page token of this query; pass the previous "
                    "page's next_page unchanged (percent-encoded), with the same parameters.",
                    param="page",
                    code="invalid_value",
                )
            )
        first = (next_start - buckets.start) // query.width
    chosen = buckets[first : first + limit]
    has_more = first + limit < len(buckets)
    next_page = _make_token(buckets[first + limit], secret, query) if has_more else None
    body = {
        "object": "page",
        "data": org.buckets(query, chosen, now),
        "has_more": has_more,
        "next_page": next_page,
    }
    return Response(json.dumps(body, separators=(",", ":")).encode(), media_type=_JSON)


def _usage_query(params: QueryParams, kind: UsageKind) -> tuple[UsageQuery, int] | ApiError:
    """The query and its limit, or the 400 that answers them."""
    raw_start = params.get("start_time")
    if raw_start is None:
        return errors.api_error(
            400,
            "Missing required parameter: 'start_time'.",
            param="start_time",
            code="missing_required_parameter",
        )
    times: dict[str, int | None] = {"start_time": None, "end_time": None}
    for name in times:
        raw = params.get(name)
        if raw is None:
            continue
        if not _INTEGER.fullmatch(raw):
            return _bad_type(name, raw, "an integer")
        times[name] = int(raw)
    start_time, end_time = times["start_time"], times["end_time"]
    assert start_time is not None
    if end_time is not None and end_time <= start_time:
        return errors.api_error(
            400,
            f"Invalid 'end_time': {end_time} is not after start_time {start_time}.",
            param="end_time",
            code="invalid_value",
        )
    widths = ("1d",) if kind is COSTS else tuple(WIDTHS)
    width = params.get("bucket_width", "1d")
    if width not in widths:
        return _bad_value("bucket_width", width, widths)
    group_by = params.getlist("group_by")
    for value in group_by:
        if value not in kind.dimensions:
            return _bad_value("group_by", value, kind.dimensions)
    filters: dict[str, frozenset[Any]] = {}
    for name, dimension in kind.filters.items():
        values = params.getlist(name)
        allowed = kind.enums.get(name)
        for value in values:
            if allowed is not None and value not in allowed:
                return _bad_value(name, value, allowed)
        if values:
            filters[dimension] = frozenset(values)
    if kind.has_batch and "batch" in params:
        raw = params["batch"]
        if raw not in _BOOLEANS:
            return _bad_type("batch", raw, "a boolean")
        filters["batch"] = frozenset([_BOOLEANS[raw]])
    default, maximum = COSTS_LIMITS if kind is COSTS else LIMITS[width]
    limit = params.get("limit")
    if limit is not None and not (_LIMIT.fullmatch(limit) and 1 <= int(limit) <= maximum):
        return errors.bad_limit(limit, 1, maximum)
    query = UsageQuery(kind, start_time, end_time, WIDTHS[width], frozenset(group_by), filters)
    return query, default if limit is None else int(limit)


def _fingerprint(query: UsageQuery) -> bytes:
    parts = [
        query.kind.name,
        str(query.start_time),
        str(query.end_time),
        str(query.width),
        ",".join(sorted(query.group_by)),
        *(f"{name}={','.join(sorted(map(str, values)))}" for name, values in sorted(query.filters.items())),
    ]
    return "\n".join(parts).encode()


def _make_token(next_start: int, secret: bytes, query: UsageQuery) -> str:
    payload = next_start.to_bytes(8, "big", signed=True)
    mac = hmac.new(secret, _fingerprint(query) + payload, hashlib.sha256).digest()[:8]
    return _TOKEN_PREFIX + base64.b64encode(payload + mac).decode()


def _read_token(token: str, secret: bytes, query: UsageQuery) -> int | None:
    """The next bucket's start a token of this query holds, or None if it is not one."""
    if not token.startswith(_TOKEN_PREFIX):
        return None
    try:
        raw = base64.b64decode(token[len(_TOKEN_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(raw) != 16:
        return None
    payload, mac = raw[:8], raw[8:]
    expected = hmac.new(secret, _fingerprint(query) + payload, hashlib.sha256).digest()[:8]
    if not hmac.compare_digest(mac, expected):
        return None
    return int.from_bytes(payload, "big", signed=True)


# -- lists and objects -----------------------------------------------------------------------------


async def _audit_logs(request: Request, org: Organization) -> Response:
    params = request.query_params
    bounds: dict[str, int] = {}
    for bound in _BOUNDS:
        name = f"effective_at[{bound}]"
        raw = params.get(name)
        if raw is None:
            continue
        if not _INTEGER.fullmatch(raw):
            return _error_response(_bad_type(name, raw, "an integer"))
        bounds[bound] = int(raw)
    event_types = params.getlist("event_types[]")
    for index, value in enumerate(event_types):
        if value not in AUDIT_LOG_EVENT_TYPES:
            return _error_response(_bad_value(f"event_types[{index}]", value, ()))
    tenant_only = params.get("tenant_only", "false")
    if tenant_only not in _BOOLEANS:
        return _error_response(_bad_type("tenant_only", tenant_only, "a boolean"))
    if _BOOLEANS[tenant_only]:
        for index, value in enumerate(event_types):
            if not _tenant_scoped(value):
                return _error_response(
                    errors.api_error(
                        400,
                        f"Invalid value: '{value}': with tenant_only=true every event type must be "
                        "tenant-scoped.",
                        param=f"event_types[{index}]",
                        code="invalid_value",
                    )
                )
    wanted = {
        name: set(params.getlist(f"{name}[]"))
        for name in ("project_ids", "actor_ids", "actor_emails", "resource_ids")
    }
    chosen = [
        event
        for event in org.events()
        if _tenant_scoped(event["type"]) == _BOOLEANS[tenant_only]
        and _in_bounds(event["effective_at"], bounds)
        and (not event_types or event["type"] in event_types)
        and (not wanted["project_ids"] or event.get("project", {}).get("id") in wanted["project_ids"])
        and (not wanted["actor_ids"] or not wanted["actor_ids"].isdisjoint(_actor_ids(event)))
        and (not wanted["actor_emails"] or not wanted["actor_emails"].isdisjoint(_actor_emails(event)))
        and (not wanted["resource_ids"] or event[event["type"]].get("id") in wanted["resource_ids"])
    ]
    ids = tuple(event["id"] for event in chosen)
    listing = Listing(ids, {event_id: i for i, event_id in enumerate(ids)}, tuple(map(org.event_body, ids)))
    return _list_response(params, listing, "desc", "audit log event", allow_before=True)


def _tenant_scoped(event_type: str) -> bool:
    return event_type.startswith("tenant.") or event_type in _TENANT_SCOPED_ROLES


def _in_bounds(when: int, bounds: dict[str, int]) -> bool:
    return (
        ("gt" not in bounds or when > bounds["gt"])
        and ("gte" not in bounds or when >= bounds["gte"])
        and ("lt" not in bounds or when < bounds["lt"])
        and ("lte" not in bounds or when <= bounds["lte"])
    )


def _actor_ids(event: dict[str, Any]) -> set[str]:
    actor = event.get("actor") or {}
    session = actor.get("session") or {}
    api_key = actor.get("api_key") or {}
    found = {
        session.get("user", {}).get("id"),
        api_key.get("id"),
        api_key.get("user", {}).get("id"),
        api_key.get("service_account", {}).get("id"),
    }
    return {value for value in found if value}


def _actor_emails(event: dict[str, Any]) -> set[str]:
    actor = event.get("actor") or {}
    found = {
        (actor.get("session") or {}).get("user", {}).get("email"),
        (actor.get("api_key") or {}).get("user", {}).get("email"),
    }
    return {value for value in found if value}


async def _projects(request: Request, org: Organization) -> Response:
    raw = request.query_params.get("include_archived", "false")
    if raw not in _BOOLEANS:
        return _error_response(_bad_type("include_archived", raw, "a boolean"))
    listing = _listing(org.projects(include_archived=_BOOLEANS[raw]))
    return _list_response(request.query_params, listing, "asc", "project")


async def _project(request: Request, org: Organization) -> Response:
    project_id = request.path_params["project_id"]
    project = org.project(project_id)
    if project is None:
        return _error_response(_not_found("project", project_id))
    return _object_response(project)


async def _api_keys(request: Request, org: Organization) -> Response:
    project_id = request.path_params["project_id"]
    if org.project(project_id) is None:
        return _error_response(_not_found("project", project_id))
    access = request.query_params.get("owner_project_access")
    if access is not None and access not in _OWNER_ACCESS:
        return _error_response(_bad_value("owner_project_access", access, _OWNER_ACCESS))
    keys = [
        key
        for key in org.api_keys(project_id)
        if access in (None, "any") or key["owner_project_access"] == access
    ]
    where = f"in project '{project_id}'"
    return _list_response(request.query_params, _listing(keys), "asc", "API key", where=where)


async def _service_accounts(request: Request, org: Organization) -> Response:
    project_id = request.path_params["project_id"]
    project = org.project(project_id)
    if project is None:
        return _error_response(_not_found("project", project_id))
    if project["archived_at"] is not None:
        return _error_response(
            errors.api_error(
                400,
                f"Project '{project_id}' is archived: its service accounts cannot be listed.",
                code="project_archived",
            )
        )
    listing = _listing(org.service_accounts(project_id))
    where = f"in project '{project_id}'"
    return _list_response(request.query_params, listing, "asc", "service account", where=where)


async def _users(request: Request, org: Organization) -> Response:
    params = request.query_params
    emails = params.getlist("emails") + params.getlist("emails[]")
    listing = _listing(org.users(emails or None))
    return _list_response(params, listing, "asc", "user")


async def _user(request: Request, org: Organization) -> Response:
    user_id = request.path_params["user_id"]
    user = org.user(user_id)
    if user is None:
        return _error_response(_not_found("user", user_id))
    return _object_response(user)


# -- shared ----------------------------------------------------------------------------------------


def _listing(objects: Iterable[dict[str, Any]]) -> Listing:
    return Listing.of(list(objects))


def _list_response(
    params: QueryParams,
    listing: Listing,
    order: Order,
    noun: str,
    *,
    where: str = "",
    allow_before: bool = False,
) -> Response:
    raw = params.get("limit")
    limit = _LIST_DEFAULT
    if raw is not None:
        if not (_LIMIT.fullmatch(raw) and 1 <= int(raw) <= _LIST_MAX):
            return _error_response(errors.bad_limit(raw, 1, _LIST_MAX))
        limit = int(raw)
    positions: dict[str, int | None] = {"after": None, "before": None}
    for name in ("after", "before") if allow_before else ("after",):
        cursor = params.get(name)
        if cursor is None:
            continue
        position = listing.positions.get(cursor)
        if position is None:
            return _error_response(errors.bad_object_cursor(name, cursor, noun, where))
        positions[name] = position
    page = select_page(
        len(listing.ids), order=order, limit=limit, after=positions["after"], before=positions["before"]
    )
    first = json.dumps(listing.ids[page.indices[0]]) if page.indices else "null"
    last = json.dumps(listing.ids[page.indices[-1]]) if page.indices else "null"
    more = "true" if page.has_more else "false"
    body = b"".join(
        (
            b'{"object":"list","data":[',
            b",".join(listing.bodies[i] for i in page.indices),
            f'],"first_id":{first},"last_id":{last},"has_more":{more}}}'.encode(),
        )
    )
    return Response(body, media_type=_JSON)


def _object_response(obj: dict[str, Any]) -> Response:
    return Response(json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode(), media_type=_JSON)


def _not_found(noun: str, object_id: str) -> ApiError:
    return errors.api_error(404, f"No {noun} found with id '{object_id}'.")


def _bad_type(name: str, raw: str, expected: str) -> ApiError:
    return errors.api_error(
        400,
        f"Invalid type for '{name}': expected {expected}, but got a string instead ({raw!r}).",
        param=name,
        code="invalid_type",
    )


def _bad_value(name: str, raw: str, supported: Iterable[str]) -> ApiError:
    options = list(supported)
    if options:
        listed = ", ".join(f"'{o}'" for o in options[:-1])
        listed = f"{listed} and '{options[-1]}'" if listed else f"'{options[-1]}'"
        hint = f" Supported values are: {listed}."
    else:
        hint = " See the audit log object's documentation for the supported values."
    return errors.api_error(400, f"Invalid value: '{raw}'.{hint}", param=name, code="invalid_value")


def _error_response(error: ApiError) -> Response:
    return Response(error.body, status_code=error.status, headers=error.headers, media_type=_JSON)
