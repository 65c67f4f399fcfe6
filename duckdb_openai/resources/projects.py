"""The organization's projects, and a project's API keys and service accounts: Arrow schemas (an admin key).

- GET /organization/projects (and /organization/projects/{project_id}): columns follow the spec's
  `Project`: id, object, name, created_at, archived_at, status, external_key_id, residency. Archived
  projects are listed only with `include_archived=true` (an option, not a filter on `status`).
- GET /organization/projects/{project_id}/api_keys: `project_id` (the list's key, filled from the
  request: a key does not carry its project), then the spec's `ProjectApiKey`: object, redacted_value,
  name, created_at, last_used_at, id, owner_project_access, owner. `owner` holds the owning user or
  service account as structs, one of them set as `owner.type` says. `redacted_value` is the API's own
  redaction (`sk-abc...def`), never the key. The `owner_project_access` parameter ('active',
  'inactive' or 'any') filters on the column of that name, but without it the API applies its
  membership-based visibility, which may leave out enabled keys: only 'any' lists them all.
- GET /organization/projects/{project_id}/service_accounts: `project_id` as above, then the spec's
  `ProjectServiceAccount`: object, id, name, role, created_at. (The API answers 400 for an archived
  project.)

>>> PROJECT_API_KEYS_SCHEMA.names[:2]
['project_id', 'object']

What the schema drops, documented, never an error: any key the API adds to a project, a key, its owner
or a service account.
"""

from __future__ import annotations

import pyarrow as pa

from duckdb_openai.resources.base import Key, Option, Resource
from duckdb_openai.resources.families import ORGANIZATION_API
from duckdb_openai.resources.paging import CursorPaging
from duckdb_openai.schema import field, struct

__all__ = [
    "PROJECTS",
    "PROJECTS_SCHEMA",
    "PROJECT_API_KEYS",
    "PROJECT_API_KEYS_SCHEMA",
    "PROJECT_RESIDENCIES",
    "PROJECT_SERVICE_ACCOUNTS",
    "PROJECT_SERVICE_ACCOUNTS_SCHEMA",
]

#: Where a project's data may be stored and processed (the spec's `PublicProjectResidency`).
PROJECT_RESIDENCIES = (
    "GLOBAL",
    "US_STORAGE_PROCESSING",
    "EU_STORAGE_PROCESSING",
    "JP_STORAGE",
    "KR_STORAGE",
    "CA_STORAGE",
    "SG_STORAGE",
    "IN_STORAGE",
    "AU_STORAGE",
    "GB_STORAGE",
    "AE_STORAGE",
    "AE_STORAGE_PROCESSING",
)

_S = pa.string()
_TS = pa.timestamp("us", tz="UTC")

PROJECTS_SCHEMA: pa.Schema = pa.schema(
    [
        field("id", _S, "Id of the project (`proj_...`)."),
        field("object", _S, "Always 'organization.project'."),
        field("name", _S, "Name of the project, as reports show it."),
        field("created_at", _TS, "When the project was created."),
        field("archived_at", _TS, "When the project was archived; NULL if it is not."),
        field("status", _S, "'active' or 'archived'."),
        field("external_key_id", _S, "External key associated with the project."),
        field(
            "residency",
            _S,
            "Where the project's data is stored and processed: 'GLOBAL', 'EU_STORAGE_PROCESSING', ...",
        ),
    ]
)

_PROJECT_ID = field("project_id", _S, "Project the list was read from (the request's key).")

PROJECT_API_KEYS_SCHEMA: pa.Schema = pa.schema(
    [
        _PROJECT_ID,
        field("object", _S, "Always 'organization.project.api_key'."),
        field("redacted_value", _S, "The key, redacted by the API ('sk-abc...def')."),
        field("name", _S, "Name of the API key."),
        field("created_at", _TS, "When the key was created."),
        field("last_used_at", _TS, "When the key was last used; NULL if never."),
        field("id", _S, "Id of the API key (`key_...`)."),
        field(
            "owner_project_access", _S, "Whether the owner can use the project now: 'active' or 'inactive'."
        ),
        field(
            "owner",
            struct(
                field("type", _S, "'user' or 'service_account'."),
                field(
                    "user",
                    struct(
                        field("id", _S, "Id of the user."),
                        field("email", _S, "Email address of the user."),
                        field("name", _S, "Name of the user."),
                        field("created_at", _TS, "When the user was created."),
                        field("role", _S, "The user's role in the project."),
                    ),
                    "For type 'user': the user owning the key.",
                ),
                field(
                    "service_account",
                    struct(
                        field("id", _S, "Id of the service account."),
                        field("name", _S, "Name of the service account."),
                        field("created_at", _TS, "When the service account was created."),
                        field("role", _S, "The service account's role in the project."),
                    ),
                    "For type 'service_account': the service account owning the key.",
                ),
            ),
            "Who owns the key: a user or a service account.",
        ),
    ]
)

PROJECT_SERVICE_ACCOUNTS_SCHEMA: pa.Schema = pa.schema(
    [
        _PROJECT_ID,
        field("object", _S, "Always 'organization.project.service_account'."),
        field("id", _S, "Id of the service account (`svc_acct_...`)."),
        field("name", _S, "Name of the service account."),
        field("role", _S, "'owner', 'member' or 'none'."),
        field("created_at", _TS, "When the service account was created."),
    ]
)

#: Lists of the organization page by `after` alone: one order (oldest first), so never from both ends.
_ONE_ORDER = CursorPaging(order_param=None)
_PROJECT = Key("project_id", "proj_abc123")

PROJECTS = Resource(
    name="projects",
    item_name="project",
    path="organization/projects",
    keys=(),
    item_key=_PROJECT,
    item_path_template="organization/projects/{project_id}",
    schema=PROJECTS_SCHEMA,
    options=(
        Option(
            "include_archived",
            False,
            "Include archived projects (the API leaves them out by default).",
            (False, True),
            lambda value: [("include_archived", "true")] if value else [],
        ),
    ),
    order_option=None,
    paging=_ONE_ORDER,
    family=ORGANIZATION_API,
    catalog_schema="organization",
    progress_units=("lists", "projects"),
    doc="The organization's projects (an admin key): GET /organization/projects",
)

PROJECT_API_KEYS = Resource(
    name="project_api_keys",
    item_name="project_api_key",
    path="organization/projects/{project_id}/api_keys",
    keys=(_PROJECT,),
    item_key=Key("key_id", "key_abc123"),
    item_path_template=None,
    schema=PROJECT_API_KEYS_SCHEMA,
    order_option=None,
    paging=_ONE_ORDER,
    family=ORGANIZATION_API,
    catalog_schema="organization",
    progress_units=("projects", "keys"),
    doc="A project's API keys (an admin key): GET /organization/projects/{project_id}/api_keys",
)

PROJECT_SERVICE_ACCOUNTS = Resource(
    name="project_service_accounts",
    item_name="project_service_account",
    path="organization/projects/{project_id}/service_accounts",
    keys=(_PROJECT,),
    item_key=Key("service_account_id", "svc_acct_abc123"),
    item_path_template=None,
    schema=PROJECT_SERVICE_ACCOUNTS_SCHEMA,
    order_option=None,
    paging=_ONE_ORDER,
    family=ORGANIZATION_API,
    catalog_schema="organization",
    progress_units=("projects", "service accounts"),
    doc=(
        "A project's service accounts (an admin key): "
        "GET /organization/projects/{project_id}/service_accounts"
    ),
)
