"""The API families: what all requests of a group of resources share (`base.Family`).

- the Assistants API needs `OpenAI-Beta: assistants=v2` and was shut down on api.openai.com (a 404
  there says so and where it still lives);
- responses, conversations and stored chat completions need no extra header;
- the organization's endpoints (usage, costs, audit logs, projects, users) take the admin key, never
  the project key, and their 401 / 403 say that they need one.
"""

from __future__ import annotations

from duckdb_openai.resources.base import Family

__all__ = ["ASSISTANTS_API", "ASSISTANTS_RETIRED", "CHAT_API", "ORGANIZATION_API", "RESPONSES_API"]

#: When the Assistants API stopped answering at OpenAI's default base URL.
ASSISTANTS_RETIRED = "2026-08-26"

ASSISTANTS_API = Family(
    "assistants",
    headers=(("OpenAI-Beta", "assistants=v2"),),
    retired_at_default=(
        f"the Assistants API was retired at https://api.openai.com/v1 on {ASSISTANTS_RETIRED}; set base_url "
        "(or OPENAI_BASE_URL) to a server that keeps it (Azure OpenAI or a compatible server)"
    ),
)
RESPONSES_API = Family("responses")
CHAT_API = Family("chat")
ORGANIZATION_API = Family(
    "organization",
    credential="admin_key",
    auth_advice=(
        "the organization's endpoints (usage, costs, audit logs, projects, users) need an admin key, not a "
        "project key: create one in the organization's settings (Admin keys) and pass admin_key= or set "
        "OPENAI_ADMIN_KEY"
    ),
)
