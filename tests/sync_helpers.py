"""Shared by the sync tests: comparing a target's tables with plain reads of the API, reading a target's
state, and a fake API (over `ScriptedServer`) whose objects a test can add and change.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

import duckdb_openai
from duckdb_openai.emulator.successors import Successors
from duckdb_openai.sync.parquet import STATE_FILE
from duckdb_openai.sync.state import LEASE_SCOPE, STATE_TABLE
from tests.helpers import KEY

__all__ = [
    "FakeApi",
    "differences",
    "parquet_state",
    "quick",
    "registered",
    "state_rows",
    "table_rows",
]


def quick(base_url: str, **kwargs: Any) -> dict[str, Any]:
    """The settings every sync test passes: the emulator, short backoff, no bars."""
    return {
        "api_key": KEY,
        "base_url": base_url,
        "retry_initial_delay": 0.01,
        "retry_max_delay": 0.05,
        "progress": "off",
        **kwargs,
    }


def registered(base_url: str) -> duckdb.DuckDBPyConnection:
    """A connection with the package registered against `base_url` (the plain reads to compare with)."""
    con = duckdb.connect()
    duckdb_openai.register(con, **quick(base_url, cache=False))
    return con


def differences(con: duckdb.DuckDBPyConnection, left: str, right: str) -> tuple[int, int, int]:
    """(rows only in `left`, rows only in `right`, rows in `left`), multisets compared."""
    only_left, only_right, total = con.execute(
        f"SELECT (SELECT count(*) FROM ({left} EXCEPT ALL {right})), "
        f"(SELECT count(*) FROM ({right} EXCEPT ALL {left})), (SELECT count(*) FROM ({left}))"
    ).fetchall()[0]
    return only_left, only_right, total


def table_rows(path: Path | str, table: str, columns: Sequence[str] | None = None) -> list[tuple[Any, ...]]:
    """Every row of `table` in the DuckDB file `path`, sorted, as tuples of its columns."""
    with duckdb.connect(str(path), read_only=True) as con:
        names = ", ".join(f'"{c}"' for c in columns) if columns else "*"
        return sorted(con.execute(f"SELECT {names} FROM {table}").fetchall(), key=repr)


def state_rows(
    path: Path | str, catalog_con: duckdb.DuckDBPyConnection | None = None
) -> list[tuple[str, str, Any]]:
    """The state entries of a DuckDB target (the lease left out), values decoded, sorted."""
    if catalog_con is None:
        with duckdb.connect(str(path), read_only=True) as con:
            found = con.execute(f"SELECT * FROM {STATE_TABLE}").fetchall()
    else:
        found = catalog_con.execute(f"SELECT * FROM {path}.{STATE_TABLE}").fetchall()
    return sorted((t, s, json.loads(v)) for t, s, v in found if not (t == "" and s == LEASE_SCOPE))


def parquet_state(folder: Path) -> list[list[Any]]:
    document = json.loads((folder / STATE_FILE).read_text())
    return sorted(document["entries"], key=repr)


def _error(status: int, message: str, param: str | None = None) -> Response:
    body = {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": None}}
    return JSONResponse(body, status_code=status)


def page(request: Request, items: Sequence[dict[str, Any]], default_order: str = "asc") -> Response:
    """One page of `items` (in creation order) as the API pages a list: limit, order, after."""
    query = request.query_params
    limit = int(query.get("limit", "20"))
    ordered = list(items) if query.get("order", default_order) == "asc" else list(reversed(items))
    ids = [item["id"] for item in ordered]
    start = 0
    after = query.get("after")
    if after is not None:
        if after not in ids:
            return _error(400, f"No object found with id '{after}' in the list.", "after")
        start = ids.index(after) + 1
    data = ordered[start : start + limit]
    return JSONResponse(
        {
            "object": "list",
            "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": start + limit < len(ordered),
        }
    )


class FakeApi:
    """Stored chat completions (with messages), responses and any extra lists, held as Python objects a
    test changes between syncs; served through `ScriptedServer` as its one (repeated) answer.

    Seeded from the emulator's population, so every object has the shape the package reads."""

    def __init__(self, completions: int = 12, responses: int = 3) -> None:
        population = Successors(7, conversations=3, chat_completions=completions).population
        self.completions: list[dict[str, Any]] = [dict(o) for o in population.chat_objects]
        self.messages: dict[str, list[dict[str, Any]]] = {
            cid: [json.loads(b) for b in listing.bodies] for cid, listing in population.chat_messages.items()
        }
        self.responses: dict[str, dict[str, Any]] = {}
        for info in population.infos[:responses]:
            self.responses[info.response_id] = json.loads(population.responses[info.response_id])
        self.input_items: dict[str, list[dict[str, Any]]] = {
            rid: [json.loads(b) for b in population.input_items[rid].bodies] for rid in self.responses
        }
        #: Extra list endpoints: path (without /v1/) -> a function of the request answering it.
        self.routes: dict[str, Callable[[Request], Response]] = {}

    def __call__(self, request: Request) -> Response:
        path = request.url.path.removeprefix("/v1/")
        if path in self.routes:
            return self.routes[path](request)
        parts = path.split("/")
        if parts == ["chat", "completions"]:
            return page(request, self.completions)
        if parts[:2] == ["chat", "completions"] and len(parts) == 4 and parts[3] == "messages":
            if parts[2] not in self.messages:
                return _error(404, f"Chat completion '{parts[2]}' not found.")
            return page(request, self.messages[parts[2]])
        if parts[0] == "responses" and len(parts) == 2:
            found = self.responses.get(parts[1])
            return JSONResponse(found) if found else _error(404, f"Response with id '{parts[1]}' not found.")
        if parts[0] == "responses" and len(parts) == 3:
            if parts[1] not in self.responses:
                return _error(404, f"Response with id '{parts[1]}' not found.")
            return page(request, self.input_items[parts[1]], "desc")
        return _error(404, f"Invalid URL (GET /v1/{path})")


def arrow(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows)
