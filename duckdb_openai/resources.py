"""Every resource the package serves, in the order they are registered and documented.

Adding a resource is adding its declaration (its module: schema, paths, keys, options) to `RESOURCES`,
and its data to the emulator; `register`, the catalog, the Python readers' lookup and the README's column
reference all derive from this tuple.
"""

from __future__ import annotations

from duckdb_openai.cache import check_relations
from duckdb_openai.resource import Resource
from duckdb_openai.run_steps import RUN_STEPS

__all__ = ["RESOURCES", "resource"]

RESOURCES: tuple[Resource, ...] = (RUN_STEPS,)
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
