"""Helpers shared by the tests: comparing Arrow rows with the API's JSON objects."""

from __future__ import annotations

import datetime
import json
from typing import Any

import duckdb
import pyarrow as pa

import duckdb_openai
from duckdb_openai.schema import is_json

KEY = "sk-test-0123456789abcdefSECRET"


def sparse(value: Any) -> Any:
    """JSON-like data with NULL/absent fields dropped and timestamps as Unix seconds, so an Arrow row and
    the API's object compare equal when they hold the same information."""
    if isinstance(value, dict):
        return {k: sparse(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [sparse(v) for v in value]
    if isinstance(value, datetime.datetime):
        return int(value.timestamp())
    return value


def api_shape(value: Any, f: pa.Field) -> Any:
    """A decoded Arrow value back in the API's shape: JSON text parsed, maps as objects, seconds."""
    if value is None:
        return None
    if is_json(f):
        return json.loads(value)
    t = f.type
    if pa.types.is_map(t):
        return dict(value)
    if pa.types.is_struct(t):
        return {child.name: api_shape(value[child.name], child) for child in t}
    if pa.types.is_list(t):
        return [api_shape(item, t.value_field) for item in value]
    if pa.types.is_timestamp(t):
        return int(value.timestamp())
    return value


def api_row(row: dict[str, Any]) -> dict[str, Any]:
    """An Arrow/DuckDB row of RUN_STEPS_SCHEMA in the API's shape (metadata back to an object)."""
    row = dict(row)
    if isinstance(row.get("metadata"), list):
        row["metadata"] = dict(row["metadata"])
    return sparse(row)  # type: ignore[no-any-return]


def connect(base_url: str, **kwargs: Any) -> tuple[duckdb.DuckDBPyConnection, duckdb_openai.Registration]:
    con = duckdb.connect()
    settings: dict[str, Any] = {
        "api_key": KEY,
        "base_url": base_url,
        "retry_initial_delay": 0.01,
        "retry_max_delay": 0.05,
        "progress": "off",
        # These tests measure fetching; tests/test_cache.py turns the cache on.
        "cache": False,
    }
    settings.update(kwargs)
    return con, duckdb_openai.register(con, **settings)


def rows(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    result = con.execute(sql, params or [])
    names = [d[0] for d in result.description]
    return [dict(zip(names, r, strict=True)) for r in result.fetchall()]


def list_requests(emu: Any) -> int:
    return sum(emu.stats()["by_endpoint"]["list"].values())  # type: ignore[no-any-return]


def all_requests(emu: Any) -> int:
    return emu.stats()["requests"]  # type: ignore[no-any-return]
