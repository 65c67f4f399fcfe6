"""The sync's state: one table in the target (`_duckdb_openai_sync`), or one file of a Parquet dataset,
so a target is self-contained, can be copied, and is resumed from another machine as it is.

Each entry is (table, scope, value): `scope` is '' for the table as a whole (a chat completions cursor)
or an id whose list has its own cursor (a thread's runs); `value` is JSON text. Entries change only in
the commit that writes the rows they describe (`Batch`), so the state never runs ahead of the rows.

The state holds only what the data decides (cursors, the newest time seen, where ended buckets stop,
ids the API no longer has), never when a sync ran, so a sync killed and rerun leaves the same state as
a clean one. The lease of a sync in progress (`LEASE_SCOPE`) is the one exception: it is removed when the
sync ends.

>>> state = State({("chat_completions", ""): {"after": "chatcmpl-9"}})
>>> state.get("chat_completions")
{'after': 'chatcmpl-9'}
>>> batch = Batch()
>>> batch.set_state("runs", "thread_a", {"after": "run_b"})
>>> state.apply(batch.state); state.get("runs", "thread_a")
{'after': 'run_b'}
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyarrow as pa

__all__ = [
    "FORMAT_VERSION",
    "LEASE_SCOPE",
    "STATE_COLUMNS",
    "STATE_TABLE",
    "Batch",
    "State",
    "decode",
    "encode",
]

#: The state table's name in a DuckDB target (and the Parquet state file's stem).
STATE_TABLE = "_duckdb_openai_sync"
STATE_COLUMNS = ("table_name", "scope", "value")
#: The entry (table '', this scope) naming the sync that holds an attached catalog.
LEASE_SCOPE = "lease"
#: The entry ('', 'format') says how the state is laid out; a newer layout is refused by an older sync.
FORMAT_VERSION = 1

Key = tuple[str, str]


def encode(value: Any) -> str:
    """JSON text with sorted keys, so equal state is equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=_default)


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"state values are JSON; got {type(value).__name__}")


def decode(text: str) -> Any:
    return json.loads(text)


class State:
    """What a target's state table holds, read once when a sync starts and kept in step with commits."""

    def __init__(self, entries: Mapping[Key, Any] | None = None) -> None:
        self._entries: dict[Key, Any] = dict(entries or {})

    def get(self, table: str, scope: str = "") -> Any:
        return self._entries.get((table, scope))

    def scopes(self, table: str) -> Iterator[tuple[str, Any]]:
        """Every (scope, value) of `table` but the table-wide one."""
        for (name, scope), value in self._entries.items():
            if name == table and scope:
                yield scope, value

    def apply(self, changes: Mapping[Key, Any]) -> None:
        for key, value in changes.items():
            if value is None:
                self._entries.pop(key, None)
            else:
                self._entries[key] = value

    def items(self) -> list[tuple[Key, Any]]:
        return sorted(self._entries.items())

    def __len__(self) -> int:
        return len(self._entries)


@dataclass
class Batch:
    """What one commit writes: rows per table (children before their parents, in the order added), the
    state entries that change with them (None removes one), and for bucket tables the start from which
    rows not among `rows` are removed (their buckets were read again)."""

    rows: dict[str, pa.Table] = field(default_factory=dict)
    state: dict[Key, Any] = field(default_factory=dict)
    replace_from: dict[str, datetime] = field(default_factory=dict)

    def add(self, table: str, rows: pa.Table | None) -> None:
        if rows is None:
            return
        # An update keeps the table's place: the order rows were added is the order they are written.
        self.rows[table] = pa.concat_tables([self.rows[table], rows]) if table in self.rows else rows

    def set_state(self, table: str, scope: str, value: Any) -> None:
        self.state[(table, scope)] = value

    @property
    def empty(self) -> bool:
        return not self.rows and not self.state and not self.replace_from
