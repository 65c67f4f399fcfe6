"""The audit logs' Arrow schema, filter parameters and `effective_at` range parameters (an admin key).

GET /organization/audit_logs lists events (paged by `after`, `first_id` / `last_id` / `has_more`):

    {"id": "audit_log-xxx_yyyymmdd", "type": "project.archived", "effective_at": 1722461446,
     "actor": {"type": "api_key", "api_key": {"type": "user", "user": {"id": "user-xxx", ...}}},
     "project.archived": {"id": "proj_abc"}}

Columns: the fields every event has, typed, in the order of the spec's `AuditLog`: id, type,
effective_at, project, actor; then `details`, the JSON text of the event's own object. The engine
fills `details` from the key named by the event's `type` (`"project.archived": {"id": "proj_abc"}`
gives `details = '{"id":"proj_abc"}'`), so the spec's one key per event type (55 of its 145 types
declare an object) is one column, read with DuckDB's `->>` and `json_*` functions; an event without
that key has NULL `details`.

`actor.session` holds what the spec's `AuditLogActorSession` declares (user, ip_address) and what the
spec's examples show of a session besides (user_agent, ja3, ja4, and ip_address_details as JSON text:
country, city, region, region_code, asn, latitude, longitude, as the API sends them).

`AUDIT_LOGS_FILTERS` are the spec's array parameters, sent repeated (`event_types[]=a&event_types[]=b`),
each with the column it filters exactly, or None where no one column holds what it matches: an actor id
is a user, service account or API key id, an actor email a session's or an API key's user, and a
resource id sits in `details`. `AUDIT_LOGS_EFFECTIVE_AT` maps a comparison on `effective_at` to its
parameter (`effective_at[gte]=1722461446`); the API takes whole Unix seconds, and `effective_at` is
whole seconds, so a bound with a fraction stays exact rounded down for `>` and `<=`, up for `>=` and `<`.

>>> dict(AUDIT_LOGS_EFFECTIVE_AT)[">="]
'effective_at[gte]'

Not filters: `tenant_only` (tenant-scoped events only; required for those types) is an option, and
`before` a cursor.

What the schema drops, documented, never an error: any key the API adds to an event outside the one
named by its `type`, and to `project`, `actor` and their nested objects outside `ip_address_details`.
"""

from __future__ import annotations

import pyarrow as pa

from duckdb_openai.resources.base import Filter, Key, Resource
from duckdb_openai.resources.families import ORGANIZATION_API
from duckdb_openai.resources.paging import CursorPaging
from duckdb_openai.schema import field, json_field, keyed_json_field, struct

__all__ = ["ACTOR", "AUDIT_LOGS", "AUDIT_LOGS_EFFECTIVE_AT", "AUDIT_LOGS_FILTERS", "AUDIT_LOGS_SCHEMA"]

_S = pa.string()
_TS = pa.timestamp("us", tz="UTC")

_USER = struct(field("id", _S, "Id of the user."), field("email", _S, "Email of the user."))

#: Who performed an audit-logged action: a session (a user, signed in) or an API key.
ACTOR = struct(
    field("type", _S, "'session' or 'api_key'."),
    field(
        "session",
        struct(
            field("user", _USER, "The user signed in."),
            field("ip_address", _S, "IP address the action came from."),
            field("user_agent", _S, "User agent of the browser or client."),
            field("ja3", _S, "JA3 fingerprint of the client's TLS handshake."),
            field("ja4", _S, "JA4 fingerprint of the client's TLS handshake."),
            json_field(
                "ip_address_details",
                "Where the IP address is, JSON text: country, city, region, region_code, asn, latitude, "
                "longitude.",
            ),
        ),
        "For type 'session': the session the action was performed in.",
    ),
    field(
        "api_key",
        struct(
            field("id", _S, "Tracking id of the API key."),
            field("type", _S, "'user' or 'service_account': who owns the key."),
            field("user", _USER, "For type 'user': the user owning the key."),
            field(
                "service_account",
                struct(field("id", _S, "Id of the service account.")),
                "For type 'service_account': the service account owning the key.",
            ),
        ),
        "For type 'api_key': the API key used.",
    ),
)

AUDIT_LOGS_SCHEMA: pa.Schema = pa.schema(
    [
        field("id", _S, "Id of the event (`audit_log-...`)."),
        field("type", _S, "Event type, e.g. 'api_key.created', 'login.succeeded', 'project.archived'."),
        field("effective_at", _TS, "When the event took effect."),
        field(
            "project",
            struct(field("id", _S, "Id of the project."), field("name", _S, "Title of the project.")),
            "Project the action was scoped to (an admin key's actions: the default project); NULL if none.",
        ),
        field("actor", ACTOR, "Who performed the action."),
        keyed_json_field(
            "details",
            "type",
            "The event's own object, JSON text: the value of the event's key named by its type (for "
            "'project.archived', '{\"id\":\"proj_abc\"}'); NULL where the event has none.",
        ),
    ]
)

#: The spec's array filters, in its order, each with the column it filters exactly (None: no one column).
AUDIT_LOGS_FILTERS: tuple[tuple[str, str | None], ...] = (
    ("project_ids[]", "project.id"),
    ("event_types[]", "type"),
    ("actor_ids[]", None),
    ("actor_emails[]", None),
    ("resource_ids[]", None),
)
#: A comparison on `effective_at` and the parameter that asks the API for it (Unix seconds).
AUDIT_LOGS_EFFECTIVE_AT: tuple[tuple[str, str], ...] = (
    (">", "effective_at[gt]"),
    (">=", "effective_at[gte]"),
    ("<", "effective_at[lt]"),
    ("<=", "effective_at[lte]"),
)

_TIME_EXAMPLE = "TIMESTAMPTZ '2026-11-01 00:00:00+00'"

AUDIT_LOGS = Resource(
    name="audit_logs",
    item_name="audit_log",
    path="organization/audit_logs",
    keys=(),
    item_key=Key("audit_log_id", "audit_log-abc_20261101"),
    item_path_template=None,
    schema=AUDIT_LOGS_SCHEMA,
    filters=(
        Filter("start_time", "effective_at[gte]", _TIME_EXAMPLE, kind="time", column="effective_at",
               bound="lower", doc="Events from this time on (inclusive)."),
        Filter("end_time", "effective_at[lt]", _TIME_EXAMPLE, kind="time", column="effective_at",
               bound="upper", doc="Events before this time (exclusive)."),
        Filter("event_types", "event_types[]", "project.archived", kind="texts", column="type",
               doc="Only events of these types."),
        Filter("project_ids", "project_ids[]", "proj_abc", kind="ids", doc="Only events of these projects."),
        Filter("actor_ids", "actor_ids[]", "user-abc", kind="ids",
               doc="Only events by these actors (user, service account or API key ids)."),
        Filter("actor_emails", "actor_emails[]", "ada@example.com", kind="texts",
               doc="Only events by users with these emails."),
        Filter("resource_ids", "resource_ids[]", "proj_abc", kind="ids",
               doc="Only events on these resources (a project, a key, ...)."),
    ),
    order_option=None,
    paging=CursorPaging(order_param=None),
    family=ORGANIZATION_API,
    catalog_schema="organization",
    progress_units=("lists", "events"),
    doc="The organization's audit log, newest first (an admin key): GET /organization/audit_logs",
)  # fmt: skip
