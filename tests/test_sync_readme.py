"""The README's sync section, run as written: its Python and SQL blocks against the emulator, in a
working directory of their own, with the key and base URL in the environment as a user has them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import duckdb
import pytest

import duckdb_openai
from duckdb_openai.emulator.successors import Successors
from tests.helpers import KEY

README = Path(__file__).resolve().parent.parent / "README.md"


def section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("## Sync: a history that outlives the API")
    return text[start : text.index("\n## ", start + 3)]


def blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", section(), re.M | re.S)


def test_the_sync_examples_run_as_written(emu: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", emu.base_url)
    Successors(7, conversations=3).write_manifest("calls.csv")  # a log: response_id, conversation_id, ...
    (python,) = blocks("python")
    printed: list[str] = []
    namespace: dict[str, Any] = {"print": lambda *args: printed.append(" ".join(map(str, args)))}
    exec(compile(python, "README sync block", "exec"), namespace)
    result = namespace["result"]
    assert isinstance(result, duckdb_openai.SyncResult)
    assert {"chat_completions", "responses", "conversation_items"} <= set(result.tables)
    assert printed[0].startswith("synced the DuckDB database openai_history.duckdb")

    attach, parquet = blocks("sql")
    rows = duckdb.connect().execute(attach).fetchall()
    completions = sum(row[1] for row in rows)
    assert completions == result.table("chat_completions").counts.new == 250

    duckdb_openai.sync(parquet="history/", log="calls.csv", progress="off")
    days = duckdb.connect().execute(parquet).fetchall()
    assert sum(count for _, count in days) == 250
    assert [day for day, _ in days] == sorted(day for day, _ in days)


def test_the_tables_the_readme_lists_are_the_declared_ones() -> None:
    from duckdb_openai.sync import TABLES

    listed = re.findall(r"^\| `(\w+)` \| (.+?) \|", section(), re.M)
    assert [name for name, _ in listed] == [t.name for t in TABLES]
    for (name, key), table in zip(listed, TABLES, strict=True):
        assert key == ", ".join(f"`{k}`" for k in table.key), name
