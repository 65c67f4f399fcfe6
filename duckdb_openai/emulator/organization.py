"""The organization behind the emulated API: its projects, users, API keys, service accounts, audit
log and usage, served at ``/v1/organization/...`` (:mod:`.organization_routes`) to an admin key.

Everything derives from the seed and the Responses-era population (:mod:`.successors`), whose span it
shares:

* six projects: "Support Assistant" (the responses of conversations whose ``channel`` is ``web`` or
  ``app``), "Email Triage" (``channel`` ``email``), "Chat Support" (stored chat completions whose
  ``feature`` is ``support`` or ``triage``; renamed from "Chat Support (beta)" on day 30),
  "Search & Summaries" (``search``, ``summaries``), "Data Platform" (created on day 20 of the
  population) and "Legacy Assistants" (archived on day 60);
* ten users (two owners, eight readers; one reader made owner on day 100), four to five members per
  project; a project's API keys: in the first four projects one per customer (``acme-corp-prod``,
  ...), owned by the project's members in turn, in the other two a few named ones; and in every
  project a service account with a key of its own;
* completions usage: every stored response and chat completion is one model request of its project,
  of its customer's key there and of that key's owner (:meth:`Organization.attribution`), at its
  ``created_at``, with the tokens its ``usage`` reports (``input_cached_tokens`` from the cached-token
  details, all tokens text, ``batch`` false, ``service_tier`` ``"default"`` as the objects say), so
  the completions usage reconciles with those objects to the token;
* the other nine usage endpoints: seeded records on every day of the population (its first to its
  last UTC day with a model call), one to four per endpoint and day, each of a project that exists
  and is not archived that day, one of its keys and that key's owner (``user_id`` null for a service
  account's key); vector stores are one reading per project and day, at midnight UTC;
* costs: each usage record priced on its own by the table of :mod:`.organization_usage`;
* the audit log: ``project.created``, ``user.added``, ``service_account.created``, ``api_key.created``
  before the population (and for "Data Platform" on day 20), then ``login.succeeded``,
  ``login.failed``, ``logout.succeeded``, ``project.updated``, ``api_key.updated`` (by an admin key),
  ``project.archived`` and ``user.updated`` during it.

``now`` is the organization's clock: usage, costs and the audit log are reported only up to it (the
real clock unless set), and a key's ``last_used_at`` is its last use before it. The projects, users,
keys and service accounts are as they are at the end of the population, whatever ``now``.

    >>> org = Organization(seed=7)
    >>> [p["name"] for p in org.projects()][:2]
    ['Support Assistant', 'Email Triage']
    >>> org.usage("completions", 1_727_740_800, 1_727_827_200, group_by=["model"])[0]["results"][0]["model"]
    'gpt-4.1'
"""

from __future__ import annotations

import csv
import random
import threading
import time
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from .data import _CUSTOMERS, _dump, _make_id
from .organization_usage import (
    COSTS,
    KINDS,
    MODELS,
    WIDTHS,
    RecordTable,
    UsageKind,
    aggregate,
    bucket_starts,
    cost_lines,
    costs_result,
    usage_result,
)
from .successors import DEFAULT_DAYS, POPULATION_START, ModelCall, Successors

__all__ = [
    "ORG_MANIFEST_COLUMNS",
    "Attribution",
    "Organization",
    "UsageQuery",
]

ORG_MANIFEST_COLUMNS = ("project_id", "name", "first_day", "last_day")
_DAY = 86_400
_USER_NAMES = (
    "Ada Lovelace",
    "Grace Hopper",
    "Alan Turing",
    "Katherine Johnson",
    "Edsger Dijkstra",
    "Barbara Liskov",
    "Donald Knuth",
    "Frances Allen",
    "Ken Thompson",
    "Margaret Hamilton",
)
#: (name, first name while beta, created on population day, archived on population day, calls it serves)
_PROJECTS: tuple[tuple[str, str | None, int | None, int | None, tuple[tuple[str, str], ...]], ...] = (
    ("Support Assistant", None, None, None, (("response", "web"), ("response", "app"))),
    ("Email Triage", None, None, None, (("response", "email"),)),
    ("Chat Support", "Chat Support (beta)", None, None, (("chat", "support"), ("chat", "triage"))),
    ("Search & Summaries", None, None, None, (("chat", "search"), ("chat", "summaries"))),
    ("Data Platform", None, 20, None, ()),
    ("Legacy Assistants", None, None, 60, ()),
)
_RENAMED_ON_DAY = 30
_PROMOTED_ON_DAY = 100
_PROMOTED = 4  # the reader made owner on that day
_OTHER_KEYS = ("etl-pipeline", "notebooks", "dashboards")
_SERVICE_ACCOUNTS = ("ci-deploy", "batch-jobs", "evals-runner", "ingest-bot", "reporting", "migration")
_SCOPES = (["api.model.request", "api.responses.read"], ["api.model.request"])
_LOGIN_ERRORS = (
    ("invalid_credentials", "The email or password is incorrect."),
    ("mfa_required", "Multi-factor authentication is required."),
)
_SIZES = ("1024x1024", "1024x1024", "1024x1792", "1792x1792", "512x512", "256x256")
_SOURCES = ("image.generation", "image.generation", "image.generation", "image.edit", "image.variation")


@dataclass(frozen=True)
class Attribution:
    """Whose a model call is: its project, the API key it used and that key's owner."""

    project_id: str
    api_key_id: str
    user_id: str


@dataclass(frozen=True)
class UsageQuery:
    """A validated usage (or costs) query: ``filters`` maps a dimension to the values it keeps."""

    kind: UsageKind
    start_time: int
    end_time: int | None
    width: int
    group_by: frozenset[str]
    filters: Mapping[str, frozenset[Any]]

    @classmethod
    def build(
        cls,
        kind: str,
        start_time: int,
        end_time: int | None = None,
        bucket_width: str = "1d",
        group_by: Iterable[str] = (),
        **filters: Iterable[str] | bool,
    ) -> UsageQuery:
        """The query, checked: ``kind`` is a usage endpoint's name or ``"costs"``; ``filters`` are the
        endpoint's array parameters (``project_ids=[...]``, ``models=[...]``) and ``batch``."""
        declared = COSTS if kind == "costs" else KINDS.get(kind)
        if declared is None:
            raise ValueError(f"unknown usage endpoint {kind!r}; one of {', '.join(KINDS)} or 'costs'")
        if bucket_width not in WIDTHS or (kind == "costs" and bucket_width != "1d"):
            raise ValueError(f"bucket_width {bucket_width!r} is not one of {kind}'s")
        groups = frozenset(group_by)
        unknown = groups - set(declared.dimensions)
        if unknown:
            raise ValueError(f"{kind} cannot be grouped by {sorted(unknown)}")
        chosen: dict[str, frozenset[Any]] = {}
        for name, values in filters.items():
            if name == "batch" and declared.has_batch and isinstance(values, bool):
                chosen["batch"] = frozenset([values])
            elif name in declared.filters and not isinstance(values, bool):
                chosen[declared.filters[name]] = frozenset(values)
            else:
                raise ValueError(f"{kind} has no filter {name!r}")
        if end_time is not None and end_time <= start_time:
            raise ValueError(f"end_time ({end_time}) must be after start_time ({start_time})")
        return cls(declared, start_time, end_time, WIDTHS[bucket_width], groups, chosen)

    def stop(self, now: int) -> int:
        """Where the served range ends: ``end_time``, cut at ``now``."""
        return now if self.end_time is None else min(self.end_time, now)

    def buckets(self, now: int) -> range:
        """Every bucket the query covers, as start times."""
        return bucket_starts(self.start_time, self.stop(now), self.width)


@dataclass(frozen=True)
class _Population:
    projects: tuple[dict[str, Any], ...]
    users: tuple[dict[str, Any], ...]
    keys: dict[str, tuple[dict[str, Any], ...]]
    service_accounts: dict[str, tuple[dict[str, Any], ...]]
    events: tuple[dict[str, Any], ...]
    event_bodies: dict[str, bytes]
    attribution: dict[str, Attribution]
    usage: dict[str, RecordTable]
    costs: RecordTable
    units: dict[str, str]
    key_uses: dict[str, tuple[int, ...]]
    project_uses: dict[str, tuple[int, ...]]
    first_day: int
    last_day: int


class Organization:
    """The organization of one seed, over a :class:`Successors` population, generated on first use.

    ``now`` (Unix seconds) fixes the clock; None follows the real one.
    """

    def __init__(
        self,
        seed: int,
        *,
        days: int = DEFAULT_DAYS,
        now: int | None = None,
        successors: Successors | None = None,
    ) -> None:
        self.seed = seed
        self.successors = successors if successors is not None else Successors(seed, days=days)
        if self.successors.seed != seed or self.successors.days != days:
            raise ValueError("the successors population must have the organization's seed and days")
        self.days = days
        self.fixed_now = now
        self._lock = threading.Lock()
        self._built: _Population | None = None

    def __repr__(self) -> str:
        return f"Organization(seed={self.seed}, days={self.days}, now={self.fixed_now})"

    def now(self) -> int:
        """The organization's clock, in Unix seconds."""
        return self.fixed_now if self.fixed_now is not None else int(time.time())

    @property
    def population(self) -> _Population:
        built = self._built
        if built is None:
            with self._lock:
                if self._built is None:
                    self._built = _build(self.seed, self.successors)
                built = self._built
        return built

    @property
    def is_built(self) -> bool:
        return self._built is not None

    # -- the people and things -----------------------------------------------------------------

    def projects(self, include_archived: bool = True) -> list[dict[str, Any]]:
        """The projects as the API sends them, oldest first (archived ones too unless told not to)."""
        return [p for p in self.population.projects if include_archived or p["archived_at"] is None]

    def project(self, project_id: str) -> dict[str, Any] | None:
        return next((p for p in self.population.projects if p["id"] == project_id), None)

    def users(self, emails: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """The users as the API sends them, in the order they were added; ``emails`` filters."""
        wanted = None if emails is None else set(emails)
        return [u for u in self.population.users if wanted is None or u["email"] in wanted]

    def user(self, user_id: str) -> dict[str, Any] | None:
        return next((u for u in self.population.users if u["id"] == user_id), None)

    def api_keys(self, project_id: str) -> list[dict[str, Any]]:
        """A project's API keys as the API sends them (``last_used_at`` as of ``now``), oldest first."""
        now = self.now()
        uses = self.population.key_uses
        return [
            {**key, "last_used_at": _last_before(uses.get(key["id"], ()), now)}
            for key in self.population.keys.get(project_id, ())
        ]

    def service_accounts(self, project_id: str) -> list[dict[str, Any]]:
        """A project's service accounts as the API sends them."""
        return list(self.population.service_accounts.get(project_id, ()))

    def events(self) -> list[dict[str, Any]]:
        """The audit log up to ``now``, oldest first (the API lists it newest first)."""
        now = self.now()
        return [e for e in self.population.events if e["effective_at"] < now]

    def event_body(self, event_id: str) -> bytes:
        """An audit log event as the JSON bytes the API sends."""
        return self.population.event_bodies[event_id]

    def attribution(self, call_id: str) -> Attribution:
        """The project, API key and user a stored response or chat completion is billed to."""
        return self.population.attribution[call_id]

    # -- usage and costs ------------------------------------------------------------------------

    def usage(
        self,
        kind: str,
        start_time: int,
        end_time: int | None = None,
        bucket_width: str = "1d",
        group_by: Iterable[str] = (),
        **filters: Iterable[str] | bool,
    ) -> list[dict[str, Any]]:
        """Every bucket the API would send for this query (over all its pages), as of ``now``.

        ``kind`` is the endpoint's last path segment (``"completions"``, ``"images"``, ...) or
        ``"costs"``; ``filters`` are its array parameters (``project_ids=[...]``, ``models=[...]``,
        ...) and, for completions, ``batch=True|False``.
        """
        query = UsageQuery.build(kind, start_time, end_time, bucket_width, group_by, **filters)
        now = self.now()
        return self.buckets(query, query.buckets(now), now)

    def costs(
        self,
        start_time: int,
        end_time: int | None = None,
        group_by: Iterable[str] = (),
        **filters: Iterable[str],
    ) -> list[dict[str, Any]]:
        """Every daily bucket of ``/v1/organization/costs`` for this query, as of ``now``."""
        return self.usage("costs", start_time, end_time, "1d", group_by, **filters)

    def buckets(self, query: UsageQuery, starts: Sequence[int], now: int) -> list[dict[str, Any]]:
        """The buckets starting at ``starts`` (some of ``query.buckets(now)``), as the API sends them."""
        population = self.population
        kind = query.kind
        is_costs = kind is COSTS
        table = population.costs if is_costs else population.usage[kind.name]
        positions = {name: i for i, name in enumerate(kind.dimensions)}
        filters = {positions[name]: values for name, values in query.filters.items()}
        group = tuple(sorted(positions[name] for name in query.group_by))
        stop = query.stop(now)
        pages = []
        for start in starts:
            sums = aggregate(table, start, query.width, query.start_time, stop, filters, group)
            if is_costs:
                by_item = "line_item" in query.group_by
                results = [costs_result(k, v, by_item, population.units) for k, v in sums.items()]
            else:
                results = [usage_result(kind, k, v) for k, v in sums.items()]
            pages.append(
                {"object": "bucket", "start_time": start, "end_time": start + query.width, "results": results}
            )
        return pages

    # -- the manifest ---------------------------------------------------------------------------

    def project_days(self) -> dict[str, tuple[str, str] | None]:
        """Each project's first and last UTC day with usage before ``now`` (ISO dates), None if none."""
        now = self.now()
        days: dict[str, tuple[str, str] | None] = {}
        for project in self.population.projects:
            uses = [t for t in self.population.project_uses.get(project["id"], ()) if t < now]
            days[project["id"]] = (_iso_day(uses[0]), _iso_day(uses[-1])) if uses else None
        return days

    def write_manifest(self, path: str | Path) -> Path:
        """Write one CSV row per project (ORG_MANIFEST_COLUMNS); days without usage are left empty."""
        target = Path(path)
        spans = self.project_days()
        with target.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(ORG_MANIFEST_COLUMNS)
            for project in self.population.projects:
                span = spans[project["id"]]
                writer.writerow((project["id"], project["name"], *(span if span else ("", ""))))
        return target

    @property
    def first_day(self) -> int:
        """Midnight (Unix seconds) of the population's first UTC day."""
        return self.population.first_day

    @property
    def last_day(self) -> int:
        """Midnight (Unix seconds) of the population's last UTC day."""
        return self.population.last_day


def _last_before(times: Sequence[int], now: int) -> int | None:
    index = bisect_left(times, now)
    return times[index - 1] if index else None


def _iso_day(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, tz=UTC).strftime("%Y-%m-%d")


# -- generation ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Key:
    key_id: str
    name: str
    project: int
    owner: int | None  # a user's index, or None for the project's service account
    created_at: int


def _build(seed: int, successors: Successors) -> _Population:
    rng = random.Random(f"duckdb-openai-emulator:{seed}:organization")
    calls = successors.calls
    first_day = min((c.created_at for c in calls), default=POPULATION_START) // _DAY * _DAY
    last_day = max((c.created_at for c in calls), default=POPULATION_START) // _DAY * _DAY

    users = _users(rng)
    projects, members = _projects(rng)
    accounts = _service_accounts(rng, projects)
    keys = _keys(rng, projects, members, accounts)
    stores = [[_make_id(rng, "vs_") for _ in range(rng.randint(1, 2))] for _ in projects]
    events = _events(rng, first_day, last_day, users, projects, members, accounts, keys)

    records: dict[str, list[tuple[int, tuple[Any, ...], tuple[int, ...]]]] = defaultdict(list)
    attribution = _attribute(calls, projects, users, keys, records["completions"])
    _synthetic(rng, records, first_day, last_day, projects, users, keys, stores)

    usage = {name: RecordTable.of(records[name]) for name in KINDS}
    costs: list[tuple[int, tuple[Any, ...], tuple[Decimal, Decimal]]] = []
    units: dict[str, str] = {}
    key_uses: dict[str, list[int]] = defaultdict(list)
    project_uses: dict[str, list[int]] = defaultdict(list)
    for name, kind in KINDS.items():
        table = usage[name]
        for when, dims, values in zip(table.times, table.dims, table.values, strict=True):
            named = dict(zip(kind.dimensions, dims, strict=True))
            project_uses[named["project_id"]].append(when)
            key_id = named.get("api_key_id")
            if key_id is not None:
                key_uses[key_id].append(when)
            for line in cost_lines(name, named, dict(zip(kind.metrics, values, strict=True))):
                units[line.line_item] = line.unit
                costs.append(
                    (when, (named["project_id"], line.line_item, key_id), (line.amount, line.quantity))
                )
    return _Population(
        projects=tuple(projects),
        users=tuple(users),
        keys={
            p["id"]: tuple(_key_object(k, users, accounts) for k in keys if k.project == i)
            for i, p in enumerate(projects)
        },
        service_accounts={p["id"]: (accounts[i],) for i, p in enumerate(projects)},
        events=tuple(events),
        event_bodies={event["id"]: _dump(event) for event in events},
        attribution=attribution,
        usage=usage,
        costs=RecordTable.of(costs),
        units=units,
        key_uses={k: tuple(sorted(v)) for k, v in key_uses.items()},
        project_uses={k: tuple(sorted(v)) for k, v in project_uses.items()},
        first_day=first_day,
        last_day=last_day,
    )


def _users(rng: random.Random) -> list[dict[str, Any]]:
    users = []
    added = POPULATION_START - 60 * _DAY
    for i, name in enumerate(_USER_NAMES):
        added += rng.randint(3_600, 4 * _DAY)
        users.append(
            {
                "object": "organization.user",
                "id": _make_id(rng, "user-"),
                "name": name,
                "email": name.lower().replace(" ", ".") + "@example.com",
                "role": "owner" if i in (0, 1, _PROMOTED) else "reader",
                "added_at": added,
            }
        )
    return users


def _projects(rng: random.Random) -> tuple[list[dict[str, Any]], list[list[int]]]:
    projects = []
    members = []
    created = POPULATION_START - 25 * _DAY
    for name, _beta, created_on, archived_on, _serves in _PROJECTS:
        created += rng.randint(3_600, 2 * _DAY)
        when = created if created_on is None else _during(rng, created_on)
        archived = None if archived_on is None else _during(rng, archived_on)
        projects.append(
            {
                "id": _make_id(rng, "proj_"),
                "object": "organization.project",
                "name": name,
                "created_at": when,
                "archived_at": archived,
                "status": "active" if archived is None else "archived",
            }
        )
        # The project's owner (one of the two first owners) first, then three or four others.
        owner = rng.choice((0, 1))
        others = rng.sample([u for u in range(len(_USER_NAMES)) if u != owner], rng.randint(3, 4))
        members.append([owner, *others])
    return projects, members


def _during(rng: random.Random, day: int) -> int:
    """A moment of office hours (09:00 to 17:00 UTC) on the population's ``day``-th day."""
    return POPULATION_START + day * _DAY + rng.randint(32_400, 61_200)


def _service_accounts(rng: random.Random, projects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "object": "organization.project.service_account",
            "id": _make_id(rng, "svc_acct_"),
            "name": _SERVICE_ACCOUNTS[i],
            "role": "member",
            "created_at": project["created_at"] + rng.randint(600, 7_200),
        }
        for i, project in enumerate(projects)
    ]


def _keys(
    rng: random.Random,
    projects: list[dict[str, Any]],
    members: list[list[int]],
    accounts: list[dict[str, Any]],
) -> list[_Key]:
    """Each project's keys: its members' (one per customer where it serves model calls), then its
    service account's."""
    keys = []
    for i, project in enumerate(projects):
        developers = members[i][1:]
        names = (
            [c.lower().replace(" ", "-") + "-prod" for c in _CUSTOMERS] if _PROJECTS[i][4] else _OTHER_KEYS
        )
        when = project["created_at"]
        for n, name in enumerate(names):
            when += rng.randint(600, 21_600)
            keys.append(_Key(_key_id(rng), name, i, developers[n % len(developers)], when))
        account = accounts[i]
        when = account["created_at"] + rng.randint(60, 600)
        keys.append(_Key(_key_id(rng), f"svc-{account['name']}", i, None, when))
    return keys


def _key_id(rng: random.Random) -> str:
    return _make_id(rng, "key_")[:20]


def _key_object(key: _Key, users: list[dict[str, Any]], accounts: list[dict[str, Any]]) -> dict[str, Any]:
    owner: dict[str, Any]
    if key.owner is None:
        account = accounts[key.project]
        owner = {
            "type": "service_account",
            "service_account": {
                "id": account["id"],
                "name": account["name"],
                "created_at": account["created_at"],
                "role": account["role"],
            },
        }
    else:
        user = users[key.owner]
        owner = {
            "type": "user",
            "user": {
                "id": user["id"],
                "email": user["email"],
                "name": user["name"],
                "created_at": user["added_at"],
                "role": "member",
            },
        }
    return {
        "object": "organization.project.api_key",
        "redacted_value": f"sk-proj-{key.key_id[4:7]}...{key.key_id[-4:]}",
        "name": key.name,
        "created_at": key.created_at,
        "last_used_at": None,
        "id": key.key_id,
        "owner_project_access": "active",
        "owner": owner,
    }


def _attribute(
    calls: Sequence[ModelCall],
    projects: list[dict[str, Any]],
    users: list[dict[str, Any]],
    keys: list[_Key],
    records: list[tuple[int, tuple[Any, ...], tuple[int, ...]]],
) -> dict[str, Attribution]:
    """Bill each model call to the project serving its app, on that project's key of its customer."""
    serving = {(kind, app): i for i, spec in enumerate(_PROJECTS) for kind, app in spec[4]}
    by_customer: dict[tuple[int, str], _Key] = {}
    for project in set(serving.values()):
        own = [k for k in keys if k.project == project and k.owner is not None]
        by_customer.update(((project, customer), own[i]) for i, customer in enumerate(_CUSTOMERS))
    attribution = {}
    for call in calls:
        key = by_customer[(serving[(call.kind, call.app)], call.customer)]
        assert key.owner is not None
        who = Attribution(projects[key.project]["id"], key.key_id, users[key.owner]["id"])
        attribution[call.call_id] = who
        cached, written = call.cached_tokens, call.cache_write_tokens
        values = (
            call.input_tokens,
            cached,
            written,
            call.input_tokens - cached - written,
            call.output_tokens,
            call.input_tokens,  # every token is text
            call.output_tokens,
            cached,
            *(0,) * 6,  # no audio or image tokens
            1,
        )
        dims = (who.project_id, who.user_id, who.api_key_id, call.model, False, "default")
        records.append((call.created_at, dims, values))
    return attribution


def _synthetic(
    rng: random.Random,
    records: dict[str, list[tuple[int, tuple[Any, ...], tuple[int, ...]]]],
    first_day: int,
    last_day: int,
    projects: list[dict[str, Any]],
    users: list[dict[str, Any]],
    keys: list[_Key],
    stores: list[list[str]],
) -> None:
    """One to four records of every usage endpoint but completions on every day of the population,
    and each active project's vector-store reading at midnight."""
    project_keys = [[k for k in keys if k.project == i] for i in range(len(projects))]
    base_bytes = [rng.randint(50_000_000, 2_000_000_000) for _ in projects]
    for day in range(first_day, last_day + _DAY, _DAY):
        active = [
            i
            for i, p in enumerate(projects)
            if p["created_at"] < day and (p["archived_at"] is None or p["archived_at"] >= day + _DAY)
        ]
        for i in active:
            grown = base_bytes[i] + (day - first_day) // _DAY * rng.randint(0, 20_000_000)
            records["vector_stores"].append((day, (projects[i]["id"],), (grown,)))
        for name in KINDS:
            if name in ("completions", "vector_stores"):
                continue
            for _ in range(rng.randint(1, 4)):
                i = rng.choice(active)
                when = day + rng.randrange(_DAY)
                # A project's service account key is made within hours of the project, before the
                # first day it is active; its other keys may come later that day.
                key = rng.choice([k for k in project_keys[i] if k.created_at < when])
                who = (projects[i]["id"], None if key.owner is None else users[key.owner]["id"], key.key_id)
                records[name].append((when, *_synthetic_record(rng, name, who, stores[i])))


def _synthetic_record(
    rng: random.Random, name: str, who: tuple[str, str | None, str], stores: list[str]
) -> tuple[tuple[Any, ...], tuple[int, ...]]:
    """(dimensions, values) of one seeded usage record of endpoint ``name``."""
    model = rng.choice(MODELS[name]) if name in MODELS else None
    if name == "embeddings":
        return (*who, model), (rng.randint(1_000, 400_000), rng.randint(1, 60))
    if name == "moderations":
        return (*who, model), (rng.randint(200, 80_000), rng.randint(1, 120))
    if name == "images":
        images = rng.randint(1, 8)
        return (rng.choice(_SOURCES), rng.choice(_SIZES), *who, model), (images, rng.randint(1, images))
    if name == "audio_speeches":
        return (*who, model), (rng.randint(200, 30_000), rng.randint(1, 12))
    if name == "audio_transcriptions":
        return (*who, model), (rng.randint(20, 3_600), rng.randint(1, 12))
    if name == "code_interpreter_sessions":
        return (who[0],), (rng.randint(1, 25),)
    if name == "file_search_calls":
        return (*who, rng.choice(stores)), (rng.randint(1, 250),)
    if name == "web_search_calls":
        searches = rng.randint(1, 120)
        return (*who, model, rng.choice(("low", "medium", "medium", "high"))), (
            rng.randint(1, searches),
            searches,
        )
    raise ValueError(f"no synthetic usage for {name!r}")


def _events(
    rng: random.Random,
    first_day: int,
    last_day: int,
    users: list[dict[str, Any]],
    projects: list[dict[str, Any]],
    members: list[list[int]],
    accounts: list[dict[str, Any]],
    keys: list[_Key],
) -> list[dict[str, Any]]:
    """The audit log, oldest first."""
    admin_key = _key_id(rng)
    found: list[dict[str, Any]] = []

    def session(user: int) -> dict[str, Any]:
        person = users[user]
        return {
            "type": "session",
            "session": {
                "user": {"id": person["id"], "email": person["email"]},
                "ip_address": f"203.0.113.{10 + user}",
            },
        }

    def by_admin_key() -> dict[str, Any]:
        person = users[0]
        return {
            "type": "api_key",
            "api_key": {
                "id": admin_key,
                "type": "user",
                "user": {"id": person["id"], "email": person["email"]},
            },
        }

    def project_name(i: int, when: int) -> str:
        name, beta, *_ = _PROJECTS[i]
        return beta if beta is not None and when < renamed_at else name

    def add(kind: str, when: int, actor: dict[str, Any], body: dict[str, Any], project: int | None) -> None:
        event: dict[str, Any] = {"id": _make_id(rng, "audit_log-"), "type": kind, "effective_at": when}
        if project is not None:
            event["project"] = {"id": projects[project]["id"], "name": project_name(project, when)}
        event["actor"] = actor
        event[kind] = body
        found.append(event)

    renamed_at = _during(rng, _RENAMED_ON_DAY)
    for i, user in enumerate(users):
        role = "reader" if i == _PROMOTED else user["role"]
        add("user.added", user["added_at"], session(0), {"id": user["id"], "data": {"role": role}}, None)
    for i, project in enumerate(projects):
        owner = members[i][0]
        name = project_name(i, project["created_at"])
        data = {"name": name, "title": name}
        add("project.created", project["created_at"], session(owner), {"id": project["id"], "data": data}, i)
        account = accounts[i]
        body = {"id": account["id"], "data": {"role": account["role"]}}
        add("service_account.created", account["created_at"], session(owner), body, i)
        if project["archived_at"] is not None:
            add("project.archived", project["archived_at"], session(owner), {"id": project["id"]}, i)
    for key in keys:
        actor = session(members[key.project][0] if key.owner is None else key.owner)
        body = {"id": key.key_id, "data": {"scopes": list(_SCOPES[0])}}
        add("api_key.created", key.created_at, actor, body, key.project)
    renamed = next(i for i, spec in enumerate(_PROJECTS) if spec[1] is not None)
    body = {"id": projects[renamed]["id"], "changes_requested": {"title": _PROJECTS[renamed][0]}}
    add("project.updated", renamed_at, session(members[renamed][0]), body, renamed)
    for day in (45, 120):
        key = rng.choice([k for k in keys if k.owner is not None])
        body = {"id": key.key_id, "changes_requested": {"scopes": list(_SCOPES[1])}}
        add("api_key.updated", _during(rng, day), by_admin_key(), body, key.project)
    body = {"id": users[_PROMOTED]["id"], "changes_requested": {"role": "owner"}}
    add("user.updated", _during(rng, _PROMOTED_ON_DAY), session(0), body, None)
    for day in range(first_day, last_day + _DAY, _DAY):
        for i in range(len(users)):
            if rng.random() >= 0.3:
                continue
            when = day + rng.randint(25_200, 64_800)
            if rng.random() < 0.06:
                code, message = rng.choice(_LOGIN_ERRORS)
                add(
                    "login.failed",
                    when - 90,
                    session(i),
                    {"error_code": code, "error_message": message},
                    None,
                )
            add("login.succeeded", when, session(i), {}, None)
            if rng.random() < 0.5:
                add("logout.succeeded", when + rng.randint(600, 14_400), session(i), {}, None)
    found.sort(key=lambda event: event["effective_at"])
    return found
