"""The tables a sync can write, declared as data: each is a resource, a primary key, the column that
dates a row, and how the table grows (its growth kind).

Growth kinds (what a sync reads each time, and what it keeps in the state table):

- `Whole`: the whole list, every sync (small dimension tables: assistants; later projects and users).
  Nothing in the state.
- `Cursor`: a list ordered by a creation-time column, read onward from an object id (the API's `after`
  cursor), re-reading a `window` of the newest rows (updates to their metadata). State: the cursor id
  and the newest time seen. `order='desc'` is the same growth for a newest-first list (read until a
  row is older than the newest seen minus the window): audit logs' kind of list.
- `Buckets`: time buckets by their start (`start_time`), from a start filter: each sync re-reads the
  last `reread` ended buckets (late data) and the bucket that has not ended, which is stored with
  `is_final = false` and replaced when it ends. Rows of a re-read bucket that the API no longer gives
  are removed (delete-insert per bucket). State: where the ended buckets stop.
- `Logged`: the objects whose ids are in the user's log (a table or file of response, conversation or
  thread ids): one object per id (`list=False`: responses, conversations), or a list per id read onward
  from a cursor per id (`list=True`: a conversation's items, a thread's runs and messages). An object in
  a terminal status (`final`) is never fetched again; one that is not is fetched each sync; one the API
  no longer has (404: stored responses are kept 30 days) stays in the target and is not asked again.
  State: the cursor of each id's list, and the ids the API no longer has.
- `Children`: a list per row of the parent table, fetched in the same commit as its parent:
  `when='new'` for parents new to the target (a stored chat completion's messages never change),
  `'final'` when the parent is fetched in a terminal status (a response's input items), `'open'` for
  each parent fetched while it was not final in the target (a run's steps: again until the run ends).

A table's rows and its state change are committed together, children before their parent, so a
target never holds a final parent without its children.

>>> TABLES_BY_NAME["run_steps"].key, TABLES_BY_NAME["run_steps"].growth
(('id',), Children(parent='runs', keys=(('thread_id', 'thread_id'), ('run_id', 'id')), when='open'))
>>> [t.name for t in TABLES if isinstance(t.growth, Whole)]
['assistants']

The organization ledger (usage, costs, audit logs, projects, users) is a declaration each once its
resources exist: `SyncTable("usage_completions", USAGE_COMPLETIONS, key=("start_time", "project_id",
...), time="start_time", growth=Buckets())`, `SyncTable("audit_logs", AUDIT_LOGS, key=("id",),
time="effective_at", growth=Cursor("effective_at", order="desc"))`, `SyncTable("projects", PROJECTS,
key=("id",), time="created_at", growth=Whole())`; add them to `TABLES`.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

import pyarrow as pa

from duckdb_openai.errors import ConfigurationError
from duckdb_openai.resources.assistants import ASSISTANTS
from duckdb_openai.resources.audit_logs import AUDIT_LOGS
from duckdb_openai.resources.base import Resource
from duckdb_openai.resources.chat_completions import CHAT_COMPLETION_MESSAGES, CHAT_COMPLETIONS
from duckdb_openai.resources.conversations import CONVERSATION_ITEMS, CONVERSATIONS
from duckdb_openai.resources.costs import COSTS
from duckdb_openai.resources.messages import MESSAGES
from duckdb_openai.resources.projects import PROJECTS
from duckdb_openai.resources.responses import RESPONSE_INPUT_ITEMS, RESPONSES
from duckdb_openai.resources.run_steps import RUN_STEPS
from duckdb_openai.resources.runs import RUNS, TERMINAL_STATUSES
from duckdb_openai.resources.usage import USAGE
from duckdb_openai.resources.users import USERS
from duckdb_openai.schema import field as doc_field

__all__ = [
    "DEFAULT_CHAT_WINDOW",
    "RESPONSE_TERMINAL",
    "TABLES",
    "TABLES_BY_NAME",
    "Buckets",
    "Children",
    "Cursor",
    "Growth",
    "Logged",
    "SyncTable",
    "Whole",
    "resolve_tables",
]

#: How much of the newest stored chat completions each sync reads again, for updates to their metadata.
DEFAULT_CHAT_WINDOW = timedelta(days=1)
#: A response in one of these changes no more (`queued` and `in_progress` do).
RESPONSE_TERMINAL = frozenset({"completed", "failed", "cancelled", "incomplete"})


@dataclass(frozen=True)
class Whole:
    """Read whole at every sync; rows the API stops listing are kept (the history outlives the API).
    `options`: of the request (projects' include_archived)."""

    options: tuple[tuple[str, object], ...] = ()


@dataclass(frozen=True)
class Cursor:
    """Read onward from the last object id; the rows created within `window` of the newest are read
    again (their metadata may have changed). `time` is the list's creation-time column (its order).

    `order='asc'` reads with `after=<cursor>`; `'desc'` (a newest-first list) reads from the newest
    until a row is older than the newest seen minus the window."""

    time: str
    window: timedelta = timedelta(0)
    order: Literal["asc", "desc"] = "asc"


@dataclass(frozen=True)
class Buckets:
    """Time buckets from a start: the last `reread` ended buckets and the one not ended are read
    again each sync; `final_column` says whether a row's bucket had ended when it was read.

    `start_filter` is the list's filter taking the first bucket's start (Unix seconds); `backfill` how far
    back the first sync reads without `since`."""

    start: str = "start_time"
    end: str = "end_time"
    start_filter: str = "start_time"
    width: timedelta = timedelta(days=1)
    reread: int = 1
    backfill: timedelta = timedelta(days=180)
    #: A column the sync adds saying whether a row's bucket had ended (None: the resource's own flag,
    #: `Resource.unfinished`, such as usage's `partial`, says it: nothing is added).
    final_column: str | None = "is_final"
    #: Options and filters of every request (the ledger's `group_by`: every dimension, the finest rows).
    options: tuple[tuple[str, object], ...] = ()


@dataclass(frozen=True)
class Logged:
    """The objects named by the user's log: `column` is the log's column of ids (and the list's key).

    `list=False`: one object per id (`resource.bind_item`); `list=True`: the list of each id, read onward
    from the last object id of that list. `final`: the statuses after which an object is never fetched
    again (empty: fetched once, when new, for objects without a status)."""

    column: str
    list: bool = False
    final: frozenset[str] = frozenset()
    #: For a list per thread whose objects of an unfinished run change (messages): re-read the messages
    #: of each run that was not final in the target, with the list's `run_id` filter.
    reread_open_runs: bool = False


@dataclass(frozen=True)
class Children:
    """A list per parent row, fetched with it: `keys` maps each key of this list to the parent's column.

    `when`: 'new' (parents new to the target), 'final' (parents fetched in a terminal status), 'open'
    (parents fetched while not final in the target: again at each sync until they end)."""

    parent: str
    keys: tuple[tuple[str, str], ...]
    when: Literal["new", "final", "open"]


Growth = Whole | Cursor | Buckets | Logged | Children


@dataclass(frozen=True)
class SyncTable:
    """A table of the target: the resource it holds, its primary key, the column dating a row (the
    Parquet target's day partitions; None: the parent row's day) and how it grows."""

    name: str
    resource: Resource
    key: tuple[str, ...]
    growth: Growth
    time: str | None
    doc: str = ""
    #: The table whose row each row belongs to, and the column pairs (this table's, the parent's) that
    #: join them: the Parquet target files a row under its parent's day when it has no time of its own.
    parent: str | None = None
    parent_key: tuple[tuple[str, str], ...] = ()
    #: Status column and terminal statuses of the rows (a run's, a response's), if they finish.
    status: str | None = None
    terminal: frozenset[str] = field(default_factory=frozenset)
    #: The column saying when an unfinished row expires (a run's `expires_at`): one that expired more
    #: than `final_after` ago counts as final, as the package's cache assumes.
    expires: str | None = None

    def __post_init__(self) -> None:
        names = self.resource.schema.names

        def fail(problem: str) -> None:
            raise TypeError(f"sync table {self.name!r} is declared wrong: {problem}")

        for column in self.key:
            if column not in names:
                fail(f"its key column {column!r} is not a column of {self.resource.name}")
        if self.time is not None and not pa.types.is_timestamp(self.resource.schema.field(self.time).type):
            fail(f"its time column {self.time!r} is not a timestamp column")
        if self.time is None and self.parent is None:
            fail("it needs a time column or a parent whose day it takes")
        if isinstance(self.growth, Children) and self.growth.parent != self.parent:
            fail("its growth's parent is not its parent")
        if isinstance(self.growth, Cursor | Buckets) and self.resource.path is None:
            fail(f"{self.resource.name} has no list endpoint to read onward")
        if self.status is not None and self.status not in names:
            fail(f"its status column {self.status!r} is not a column")
        if self.expires is not None and not pa.types.is_timestamp(
            self.resource.schema.field(self.expires).type
        ):
            fail(f"its expiry column {self.expires!r} is not a timestamp column")

    @property
    def schema(self) -> pa.Schema:
        """The target table's columns: the resource's, and the growth's own (a bucket's `is_final`)."""
        schema = self.resource.schema
        if isinstance(self.growth, Buckets) and self.growth.final_column is not None:
            schema = schema.append(
                doc_field(
                    self.growth.final_column,
                    pa.bool_(),
                    "Whether the bucket had ended when it was read; false for the current bucket, "
                    "which the next sync replaces.",
                )
            )
        return schema

    @property
    def is_final_column(self) -> str | None:
        return self.growth.final_column if isinstance(self.growth, Buckets) else None

    @property
    def unfinished_flag(self) -> str | None:
        """The resource's own column flagging a row whose bucket had not ended (usage's `partial`)."""
        flag = self.resource.unfinished
        return flag[0] if isinstance(self.growth, Buckets) and flag is not None else None


def _ledger(resource: Resource) -> SyncTable:
    """A usage or costs endpoint: its buckets grouped by every dimension (the finest rows, so any sum is
    a query over the target), keyed by the bucket and the dimensions; the last ended bucket and the one
    still open are read again each sync (late data), the open one flagged by the rows' `partial`."""
    grouping = next(f for f in resource.filters if f.name == resource.grouping)
    return SyncTable(
        resource.name,
        resource,
        key=("start_time", *grouping.choices),
        growth=Buckets(final_column=None, options=(("group_by", list(grouping.choices)),)),
        time="start_time",
        doc=f"{resource.doc.split(':')[0]}, daily, by every dimension; the open day flagged `partial`.",
    )


TABLES: tuple[SyncTable, ...] = (
    SyncTable(
        "assistants",
        ASSISTANTS,
        key=("id",),
        growth=Whole(),
        time="created_at",
        doc="Every assistant, refreshed whole.",
    ),
    SyncTable(
        "chat_completions",
        CHAT_COMPLETIONS,
        key=("id",),
        growth=Cursor("created", window=DEFAULT_CHAT_WINDOW),
        time="created",
        doc="Stored chat completions by `created`, the last day's read again (metadata updates).",
    ),
    SyncTable(
        "chat_completion_messages",
        CHAT_COMPLETION_MESSAGES,
        key=("completion_id", "id"),
        growth=Children("chat_completions", (("completion_id", "id"),), when="new"),
        time=None,
        parent="chat_completions",
        parent_key=(("completion_id", "id"),),
        doc="The messages of each chat completion new to the target (they never change).",
    ),
    SyncTable(
        "responses",
        RESPONSES,
        key=("id",),
        growth=Logged("response_id", final=RESPONSE_TERMINAL),
        time="created_at",
        status="status",
        terminal=RESPONSE_TERMINAL,
        doc="Each response of the log until it is final; one the API no longer has is kept.",
    ),
    SyncTable(
        "response_input_items",
        RESPONSE_INPUT_ITEMS,
        key=("response_id", "id"),
        growth=Children("responses", (("response_id", "id"),), when="final"),
        time=None,
        parent="responses",
        parent_key=(("response_id", "id"),),
        doc="The input items of each response, read once when it is final.",
    ),
    SyncTable(
        "conversations",
        CONVERSATIONS,
        key=("id",),
        growth=Logged("conversation_id"),
        time="created_at",
        doc="Each conversation of the log, read once.",
    ),
    SyncTable(
        "conversation_items",
        CONVERSATION_ITEMS,
        key=("conversation_id", "id"),
        growth=Logged("conversation_id", list=True),
        time=None,
        parent="conversations",
        parent_key=(("conversation_id", "id"),),
        doc="The items of each conversation of the log, read onward from the last one.",
    ),
    SyncTable(
        "runs",
        RUNS,
        key=("id",),
        growth=Logged("thread_id", list=True, final=frozenset(TERMINAL_STATUSES)),
        time="created_at",
        status="status",
        terminal=frozenset(TERMINAL_STATUSES),
        expires="expires_at",
        doc="The runs of each thread of the log (or each run, if the log has run_id), read onward; "
        "a run not finished is read again until it is (or until a day past its expiry).",
    ),
    SyncTable(
        "run_steps",
        RUN_STEPS,
        key=("id",),
        growth=Children("runs", (("thread_id", "thread_id"), ("run_id", "id")), when="open"),
        time="created_at",
        parent="runs",
        parent_key=(("run_id", "id"),),
        doc="The steps of each run, read until the run is finished, then never again.",
    ),
    SyncTable(
        "messages",
        MESSAGES,
        key=("id",),
        growth=Logged("thread_id", list=True, reread_open_runs=True),
        time="created_at",
        parent="runs",
        doc="The messages of each thread of the log, read onward; those of a run not finished are read "
        "again until it is.",
    ),
    # The organization's ledger (an admin key).
    *(_ledger(resource) for resource in (*USAGE, COSTS)),
    SyncTable(
        "audit_logs",
        AUDIT_LOGS,
        key=("id",),
        growth=Cursor("effective_at", window=timedelta(hours=1), order="desc"),
        time="effective_at",
        doc="The audit log, newest first down to an hour before the newest event already kept.",
    ),
    SyncTable(
        "projects",
        PROJECTS,
        key=("id",),
        growth=Whole(options=(("include_archived", True),)),
        time="created_at",
        doc="Every project, archived ones too, refreshed whole (names change).",
    ),
    SyncTable(
        "users",
        USERS,
        key=("id",),
        growth=Whole(),
        time="added_at",
        doc="Every user of the organization, refreshed whole (roles change).",
    ),
)

TABLES_BY_NAME = {t.name: t for t in TABLES}


def _parents(table: SyncTable, by_name: dict[str, SyncTable]) -> list[SyncTable]:
    if table.parent is None:
        return []
    parent = by_name.get(table.parent)
    if parent is None:
        raise ConfigurationError(f"sync table {table.name!r} needs its parent {table.parent!r}, not declared")
    return [*_parents(parent, by_name), parent]


def resolve_tables(
    asked: Iterable[str | SyncTable] | None, *, declared: Sequence[SyncTable] = TABLES
) -> tuple[list[SyncTable], list[str]]:
    """The tables to sync for `asked` (names or declarations; None: every declared table), each parent
    a table needs added before it, in declaration order; and a note per table added that way.

    >>> tables, notes = resolve_tables(["run_steps"])
    >>> [t.name for t in tables], notes
    (['runs', 'run_steps'], ['runs (needed by run_steps)'])
    """
    by_name = {t.name: t for t in declared}
    chosen: list[SyncTable] = []
    for item in declared if asked is None else asked:
        if isinstance(item, SyncTable):
            by_name[item.name] = item
            chosen.append(item)
            continue
        found = by_name.get(item) if isinstance(item, str) else None
        if found is None:
            known = ", ".join(t.name for t in declared)
            close = difflib.get_close_matches(item, list(by_name), n=1) if isinstance(item, str) else []
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigurationError(f"no sync table {item!r}; {hint}the tables are {known}")
        chosen.append(found)
    names = {t.name for t in chosen}
    notes: list[str] = []
    result: list[SyncTable] = []
    for table in chosen:
        for parent in _parents(table, by_name):
            if parent.name not in names:
                names.add(parent.name)
                notes.append(f"{parent.name} (needed by {table.name})")
                result.append(parent)
        if table not in result:
            result.append(table)
    order = {name: index for index, name in enumerate(by_name)}
    deduped = list({t.name: t for t in result}.values())
    return sorted(deduped, key=lambda t: order[t.name]), notes
