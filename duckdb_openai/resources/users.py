"""The organization's users: Arrow schema and filter parameters (an admin key).

GET /organization/users (and /organization/users/{user_id}) lists the organization's members, paged by
`after`. Columns follow the spec's `User`: object, id, name, email, role, added_at, is_default, created,
user, is_service_account, is_scale_tier_authorized_purchaser, is_scim_managed, api_key_last_used_at,
technical_level, developer_persona, projects. The API's example sends only the first six; the others
are NULL where it leaves them out. `user` is the account behind the membership, and `projects` keeps
the spec's shape (`unnest(projects.data)`), set only where the API includes it.

`USERS_FILTERS` is the spec's array parameter `emails` (sent repeated) with the column it filters.

>>> USERS_FILTERS
(('emails', 'email'),)

What the schema drops, documented, never an error: any key the API adds to a user or its nested
objects.
"""

from __future__ import annotations

import pyarrow as pa

from duckdb_openai.resources.base import Filter, Key, Resource
from duckdb_openai.resources.families import ORGANIZATION_API
from duckdb_openai.resources.paging import CursorPaging
from duckdb_openai.schema import field, struct

__all__ = ["USERS", "USERS_FILTERS", "USERS_SCHEMA"]

_S = pa.string()
_TS = pa.timestamp("us", tz="UTC")
_B = pa.bool_()

USERS_SCHEMA: pa.Schema = pa.schema(
    [
        field("object", _S, "Always 'organization.user'."),
        field("id", _S, "Id of the user."),
        field("name", _S, "Name of the user."),
        field("email", _S, "Email address of the user."),
        field("role", _S, "Role in the organization: 'owner' or 'reader'."),
        field("added_at", _TS, "When the user was added to the organization."),
        field("is_default", _B, "Whether this is the organization's default user."),
        field("created", _TS, "When the user was created."),
        field(
            "user",
            struct(
                field("object", _S, "Always 'user'."),
                field("id", _S, "Id of the account."),
                field("email", _S, "Email address of the account."),
                field("name", _S, "Name of the account."),
                field("picture", _S, "Picture of the account."),
                field("enabled", _B, "Whether the account is enabled."),
                field("banned", _B, "Whether the account is banned."),
                field("banned_at", _TS, "When the account was banned."),
            ),
            "The account behind the membership.",
        ),
        field("is_service_account", _B, "Whether the user is a service account."),
        field("is_scale_tier_authorized_purchaser", _B, "Whether the user may purchase Scale Tier."),
        field("is_scim_managed", _B, "Whether the user is managed through SCIM."),
        field("api_key_last_used_at", _TS, "When the user's API keys were last used."),
        field("technical_level", _S, "Technical level metadata of the user."),
        field("developer_persona", _S, "Developer persona metadata of the user."),
        field(
            "projects",
            struct(
                field("object", _S, "Always 'list'."),
                field(
                    "data",
                    pa.list_(
                        struct(
                            field("id", _S, "Id of the project."),
                            field("name", _S, "Name of the project."),
                            field("role", _S, "The user's role in the project."),
                        )
                    ),
                    "The projects: `unnest(projects.data)`.",
                ),
            ),
            "Projects the user belongs to, where the API includes them; NULL otherwise.",
        ),
    ]
)

USERS_FILTERS = (("emails", "email"),)

USERS = Resource(
    name="users",
    item_name="user",
    path="organization/users",
    keys=(),
    item_key=Key("user_id", "user-abc123"),
    item_path_template="organization/users/{user_id}",
    schema=USERS_SCHEMA,
    filters=(Filter("emails", "emails", "ada@example.com", kind="texts", column="email",
                    doc="Only users with these emails."),),
    order_option=None,
    paging=CursorPaging(order_param=None),
    family=ORGANIZATION_API,
    catalog_schema="organization",
    progress_units=("lists", "users"),
    doc="The organization's users (an admin key): GET /organization/users",
)  # fmt: skip
