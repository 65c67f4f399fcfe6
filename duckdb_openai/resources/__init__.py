"""Every resource the package serves, in the order they are registered and documented.

Adding a resource is adding its declaration (its module: schema, paths, keys, options) to `RESOURCES`,
and its data to the emulator; `register`, the catalog, the Python readers' lookup and the README's column
reference all derive from this tuple.
"""

from __future__ import annotations

from duckdb_openai.resources.assistants import ASSISTANTS
from duckdb_openai.resources.audit_logs import AUDIT_LOGS
from duckdb_openai.resources.base import Resource, check_relations
from duckdb_openai.resources.chat_completions import CHAT_COMPLETION_MESSAGES, CHAT_COMPLETIONS
from duckdb_openai.resources.conversations import CONVERSATION_ITEMS, CONVERSATIONS
from duckdb_openai.resources.costs import COSTS
from duckdb_openai.resources.messages import MESSAGES
from duckdb_openai.resources.projects import PROJECT_API_KEYS, PROJECT_SERVICE_ACCOUNTS, PROJECTS
from duckdb_openai.resources.responses import RESPONSE_INPUT_ITEMS, RESPONSES
from duckdb_openai.resources.run_steps import RUN_STEPS
from duckdb_openai.resources.runs import RUNS
from duckdb_openai.resources.threads import THREADS
from duckdb_openai.resources.usage import USAGE
from duckdb_openai.resources.users import USERS

__all__ = ["RESOURCES", "resource"]

RESOURCES: tuple[Resource, ...] = (
    RUN_STEPS,
    RUNS,
    MESSAGES,
    ASSISTANTS,
    THREADS,
    # The Responses era, after the Assistants family.
    RESPONSES,
    RESPONSE_INPUT_ITEMS,
    CONVERSATIONS,
    CONVERSATION_ITEMS,
    CHAT_COMPLETIONS,
    CHAT_COMPLETION_MESSAGES,
    # The organization's ledger (an admin key): usage and costs by time bucket, audit logs, and the
    # projects, users, keys and service accounts that give their ids names.
    *USAGE,
    COSTS,
    AUDIT_LOGS,
    PROJECTS,
    USERS,
    PROJECT_API_KEYS,
    PROJECT_SERVICE_ACCOUNTS,
)
check_relations(RESOURCES)  # a parent relation that does not fit its parent fails at import

_BY_NAME = {r.name: r for r in RESOURCES} | {r.item_name: r for r in RESOURCES}


def resource(name: str) -> Resource:
    """The resource called `name` (its list or its item name), or a ConfigurationError listing them."""
    from duckdb_openai.errors import ConfigurationError

    found = _BY_NAME.get(name)
    if found is None:
        names = ", ".join(r.name for r in RESOURCES)
        raise ConfigurationError(f"no resource {name!r}; the resources are {names}")
    return found
