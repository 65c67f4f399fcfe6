"""Compaction of a DuckDB target after a sync (`duckdb_openai/sync/compact.py`), over real HTTP: a file
with free blocks is rewritten without them and holds the same rows, state, tables and views; what a
copy might not keep, another open connection, `compact=False` and a stop midway all leave the file as
it was; bad values are refused before any request."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest

import duckdb_openai
from duckdb_openai.emulator import Emulator
from duckdb_openai.errors import ConfigurationError
from duckdb_openai.sync.compact import FILE_BLOCK_SIZE, MIN_BYTES, SHARE, Space, should_compact
from tests.helpers import KEY
from tests.sync_helpers import quick, state_rows, table_rows

compact_module = importlib.import_module("duckdb_openai.sync.compact")

TABLES = ["chat_completions", "chat_completion_messages"]


def synced(path: Path, emu: Emulator, **kwargs: Any) -> duckdb_openai.SyncResult:
    return duckdb_openai.sync(path, TABLES, **quick(emu.base_url), **kwargs)


def free_space(path: Path) -> tuple[int, int, int]:
    """(block size, total blocks, free blocks) of the file."""
    with duckdb.connect(str(path), read_only=True) as con:
        row = con.execute(
            "SELECT block_size, total_blocks, free_blocks FROM pragma_database_size() "
            "WHERE database_name = current_database()"
        ).fetchall()[0]
    return int(row[0]), int(row[1]), int(row[2])


def churn(path: Path, rows: int = 128_000, name: str = "marker") -> None:
    """Leave free blocks inside the file (a few MB for the default `rows`), as a day's rewritten row
    groups do: a table written and dropped, and one written after it (a free end is truncated away)."""
    with duckdb.connect(str(path)) as con:
        con.execute(
            f"CREATE TABLE junk AS SELECT md5(i::VARCHAR) || md5((i + 1)::VARCHAR) AS s "
            f"FROM range({rows}) t(i)"
        )
        con.execute("CHECKPOINT")
        # After the free blocks the file had: more than they hold.
        con.execute(
            f"CREATE TABLE {name} AS SELECT md5(i::VARCHAR) AS s FROM range({rows // 8 + 20_000}) t(i)"
        )
        con.execute("CHECKPOINT")
        con.execute("DROP TABLE junk")
        con.execute("CHECKPOINT")


def contents(path: Path) -> dict[str, Any]:
    return {
        "rows": {t: table_rows(path, t) for t in TABLES},
        "state": state_rows(path),
    }


def notes(result: duckdb_openai.SyncResult) -> list[str]:
    return [n for n in result.notes if "compact" in n]


def test_the_rule() -> None:
    assert should_compact(Space(file_bytes=10 * MIN_BYTES, free_bytes=int(10 * MIN_BYTES * SHARE)), None)
    assert not should_compact(
        Space(file_bytes=10 * MIN_BYTES, free_bytes=int(10 * MIN_BYTES * SHARE) - 1), None
    )
    assert not should_compact(Space(file_bytes=MIN_BYTES, free_bytes=MIN_BYTES - 1), None)
    assert should_compact(Space(file_bytes=MIN_BYTES, free_bytes=0), True)
    assert not should_compact(Space(file_bytes=10 * MIN_BYTES, free_bytes=9 * MIN_BYTES), False)


def test_free_blocks_are_given_back_and_everything_kept(emu: Emulator, tmp_path: Path) -> None:
    path = tmp_path / "h.duckdb"
    first = synced(path, emu)
    assert notes(first) == []  # a new file has no free blocks
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE VIEW big AS SELECT id, model FROM chat_completions WHERE model LIKE 'gpt%'")
        con.execute("CREATE SCHEMA mine")
        con.execute("CREATE TABLE mine.labels AS SELECT id, 'x' AS label FROM chat_completions LIMIT 7")
        con.execute("COMMENT ON TABLE mine.labels IS 'my labels'")
        views = con.execute("SELECT count(*) FROM big").fetchall()
    before = contents(path)
    churn(path)
    bloated = path.stat().st_size
    _, total, free = free_space(path)
    assert (total - free) * FILE_BLOCK_SIZE < bloated * (1 - SHARE)

    emu.reset()
    second = synced(path, emu)
    assert second.rows_written == 0
    assert len(notes(second)) == 1 and notes(second)[0].startswith("compacted h.duckdb: "), second.notes
    assert path.stat().st_size < bloated * (1 - SHARE)
    block_size, _, free = free_space(path)
    assert (block_size, free) == (FILE_BLOCK_SIZE, 0)
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM marker").fetchall() == [(128_000 // 8 + 20_000,)]
    assert contents(path) == before
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM big").fetchall() == views
        assert con.execute("SELECT count(*) FROM mine.labels").fetchall() == [(7,)]
        assert con.execute("SELECT comment FROM duckdb_tables() WHERE table_name = 'labels'").fetchall() == [
            ("my labels",)
        ]
    assert not list(tmp_path.glob(".*.tmp*"))

    third = synced(path, emu)  # and a sync after it finds its state where it was
    assert (third.rows_written, notes(third)) == (0, [])


def test_the_new_file_keeps_the_old_ones_permissions_and_a_link_stays_a_link(
    emu: Emulator, tmp_path: Path
) -> None:
    real = tmp_path / "data" / "h.duckdb"
    real.parent.mkdir()
    synced(real, emu)
    churn(real)
    os.chmod(real, 0o640)
    link = tmp_path / "h.duckdb"
    link.symlink_to(real)
    said = notes(synced(link, emu))
    assert said and said[0].startswith("compacted h.duckdb: "), said
    assert link.is_symlink() and free_space(real)[2] == 0
    assert real.stat().st_mode & 0o777 == 0o640
    assert not list(real.parent.glob(".*.tmp")) and not list(tmp_path.glob(".*.tmp"))


def test_compact_false_leaves_the_file_and_true_always_compacts(emu: Emulator, tmp_path: Path) -> None:
    path = tmp_path / "h.duckdb"
    synced(path, emu)
    churn(path)
    size, inode = path.stat().st_size, path.stat().st_ino
    assert notes(synced(path, emu, compact=False)) == []
    assert (path.stat().st_size, path.stat().st_ino) == (size, inode)
    assert notes(synced(path, emu))[0].startswith("compacted h.duckdb: ")

    churn(path, rows=3000, name="marker2")  # a few free blocks: under the rule, compacted with True
    _, total, free = free_space(path)
    assert 0 < path.stat().st_size - (total - free) * FILE_BLOCK_SIZE < MIN_BYTES
    inode = path.stat().st_ino
    assert notes(synced(path, emu)) == []
    assert path.stat().st_ino == inode
    assert notes(synced(path, emu, compact=True))[0].startswith("compacted h.duckdb: ")
    assert path.stat().st_ino != inode
    assert free_space(path)[2] == 0


def test_what_a_copy_might_not_keep_leaves_the_file_as_it_is(emu: Emulator, tmp_path: Path) -> None:
    path = tmp_path / "h.duckdb"
    synced(path, emu)
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE SEQUENCE ticket START 100")
        con.execute("SELECT nextval('ticket')")
    churn(path)
    inode = path.stat().st_ino
    said = notes(synced(path, emu))
    assert len(said) == 1 and "was not compacted" in said[0] and "it holds 1 sequence, " in said[0], said
    assert "COPY FROM DATABASE" in said[0]
    assert path.stat().st_ino == inode
    with duckdb.connect(str(path)) as con:
        assert con.execute("SELECT nextval('ticket')").fetchall() == [(101,)]


def test_another_connection_of_the_process_keeps_it_as_it_is(emu: Emulator, tmp_path: Path) -> None:
    path = tmp_path / "h.duckdb"
    synced(path, emu)
    churn(path)
    inode = path.stat().st_ino
    with duckdb.connect(str(path)) as mine:
        said = notes(synced(path, emu))
        assert len(said) == 1 and "another connection of this process has it open" in said[0], said
        assert mine.execute("SELECT count(*) FROM chat_completions").fetchall()[0][0] > 0
        mine.execute("BEGIN TRANSACTION")  # writing, uncommitted: no checkpoint can run
        mine.execute("CREATE TABLE mine AS SELECT 1 AS i")
        assert notes(synced(path, emu)) == []
        mine.execute("COMMIT")
    assert path.stat().st_ino == inode
    assert notes(synced(path, emu))[0].startswith("compacted")  # once it is closed


class _Killed(BaseException):
    """Stands for SIGKILL at a point of the compaction (no cleanup runs)."""


@pytest.mark.parametrize("where", ["copy", "replace"])
def test_a_stop_midway_leaves_the_old_file_whole(
    emu: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    path = tmp_path / "h.duckdb"
    synced(path, emu)
    churn(path)
    before = contents(path)
    size = path.stat().st_size

    def stop(*args: Any, **kwargs: Any) -> Any:
        raise _Killed

    if where == "replace":
        monkeypatch.setattr(compact_module, "replace", stop)
    else:
        monkeypatch.setattr(compact_module, "catalog_of", stop)
    with pytest.raises(_Killed):
        synced(path, emu)
    monkeypatch.undo()
    assert path.stat().st_size == size
    assert contents(path) == before
    if where == "replace":
        assert len(list(tmp_path.glob(".h.duckdb.compact-*.tmp"))) == 1  # the copy, left as a kill would

    assert notes(synced(path, emu))[0].startswith("compacted")
    assert contents(path) == before
    assert not list(tmp_path.glob(".h.duckdb.compact-*"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"compact": "yes"}, "compact must be True, False or None"),
        ({"compact": True, "parquet": "ds"}, "compact=True applies to a DuckDB file"),
    ],
)
def test_bad_compact_values_fail_before_any_request(
    emu: Emulator, tmp_path: Path, kwargs: dict[str, Any], message: str
) -> None:
    target = {} if "parquet" in kwargs else {"target": tmp_path / "h.duckdb"}
    if "parquet" in kwargs:
        kwargs = {**kwargs, "parquet": tmp_path / kwargs["parquet"]}
    with pytest.raises(ConfigurationError, match=message):
        duckdb_openai.sync(tables=TABLES, **target, **kwargs, **quick(emu.base_url))
    assert emu.stats()["requests"] == 0
    assert not os.listdir(tmp_path)


def test_the_cli_compacts_with_compact_and_not_with_no_compact(emu: Emulator, tmp_path: Path) -> None:
    path = tmp_path / "h.duckdb"
    synced(path, emu)
    churn(path)
    env = {**os.environ, "OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": emu.base_url}
    command = [sys.executable, "-m", "duckdb_openai.cli", "sync", str(path), "--progress", "off"]
    command += [arg for table in TABLES for arg in ("--table", table)]
    size = path.stat().st_size
    kept = subprocess.run([*command, "--no-compact"], env=env, capture_output=True, text=True, timeout=120)
    assert kept.returncode == 0, kept.stderr
    assert "note: compacted" not in kept.stdout and path.stat().st_size == size
    done = subprocess.run([*command, "--compact"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "note: compacted h.duckdb: " in done.stdout
    assert path.stat().st_size < size


@pytest.mark.parametrize("when", ["during the copy", "right after the replace"])
def test_a_write_of_another_connection_meanwhile_is_never_lost(
    emu: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, when: str
) -> None:
    """A connection of this process that joins while the file is copied, or in the instant of the
    replace, and commits: the old file is kept (restored), with its write."""
    path = tmp_path / "h.duckdb"
    synced(path, emu)
    churn(path)
    (first,) = table_rows(path, "chat_completions", ["id"])[0]
    done: list[bool] = []

    def write() -> None:
        if not done:
            done.append(True)
            with duckdb.connect(str(path)) as other:
                other.execute("UPDATE chat_completions SET model = 'EDITED' WHERE id = ?", [first])

    if when == "during the copy":
        original_catalog = compact_module.catalog_of

        def meddle(con: Any, catalog: str) -> Any:
            write()
            return original_catalog(con, catalog)

        monkeypatch.setattr(compact_module, "catalog_of", meddle)
    else:
        original_replace = compact_module.replace

        def meddle_replace(temporary: Path, final: Path) -> None:
            original_replace(temporary, final)
            write()

        monkeypatch.setattr(compact_module, "replace", meddle_replace)
    said = notes(synced(path, emu))
    assert len(said) == 1 and "another connection of this process opened or wrote it meanwhile" in said[0], (
        said
    )
    assert table_rows(path, "chat_completions", ["model"]).count(("EDITED",)) == 1
    assert not list(tmp_path.glob(".h.duckdb.compact-*"))[1:]  # at most the restored file's old name
    monkeypatch.undo()
    assert notes(synced(path, emu))[0].startswith("compacted")  # once nothing else writes
    assert table_rows(path, "chat_completions", ["model"]).count(("EDITED",)) == 1
    assert not list(tmp_path.glob(".h.duckdb.compact-*"))


def test_owner_group_storage_version_and_a_small_block_size_are_kept(emu: Emulator, tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    with duckdb.connect() as maker:  # a file an older DuckDB made: its storage version, 16 KiB blocks
        maker.execute(f"ATTACH '{path}' AS old (STORAGE_VERSION 'v1.0.0', BLOCK_SIZE 16384)")
        maker.execute("CREATE TABLE old.mine AS SELECT 1 AS i")
    synced(path, emu)
    churn(path)
    owner = (12345, 12345) if os.geteuid() == 0 else (os.geteuid(), os.getegid())
    os.chown(path, *owner)
    said = notes(synced(path, emu))
    assert said and said[0].startswith("compacted old.duckdb: "), said
    assert (path.stat().st_uid, path.stat().st_gid) == owner
    with duckdb.connect(str(path), read_only=True) as con:
        tags, block_size = con.execute(
            "SELECT b.tags, d.block_size FROM duckdb_databases() b JOIN pragma_database_size() d "
            "USING (database_name) WHERE database_name = 'old'"
        ).fetchall()[0]
    assert (tags["storage_version"], block_size) == ("v1.0.0+", 16384)


def test_leftovers_are_removed_before_anything_else_and_only_this_files(
    emu: Emulator, tmp_path: Path
) -> None:
    path = tmp_path / "h[1].duckdb"
    synced(path, emu)
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE SEQUENCE ticket")  # so the file itself is never compacted
    token = "0123456789abcdef" * 2
    mine = [tmp_path / f".h[1].duckdb.compact-{token}.{end}" for end in ("tmp", "tmp.wal", "old")]
    others = [tmp_path / f".h1.duckdb.compact-{token}.tmp", tmp_path / ".h[1].duckdb.compact-notes.txt"]
    for leftover in [*mine, *others]:
        leftover.write_bytes(b"x" * 10)
    churn(path)
    said = notes(synced(path, emu))
    assert len(said) == 1 and "it holds 1 sequence, " in said[0], said
    assert not [p for p in mine if p.exists()]
    assert all(p.exists() for p in others)


def test_a_dry_run_says_it_compacts_nothing(emu: Emulator, tmp_path: Path) -> None:
    path = tmp_path / "h.duckdb"
    synced(path, emu)
    churn(path)
    size = path.stat().st_size
    plan = duckdb_openai.sync(path, TABLES, dry_run=True, compact=True, **quick(emu.base_url))
    assert "compact=True: a dry run compacts nothing" in plan.notes
    assert path.stat().st_size == size


def test_an_owner_this_user_cannot_keep_leaves_the_file(
    emu: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another user's file this user may write (a shared folder): compacting it would make it this
    user's, so it is left as it is, saying why. As root, the file is given to another user and `chown`
    refused, as it is to anyone else; otherwise the file is this user's own, and its owner is kept."""
    path = tmp_path / "h.duckdb"
    synced(path, emu)
    churn(path)
    if os.geteuid() != 0:
        assert notes(synced(path, emu))[0].startswith("compacted")
        assert path.stat().st_uid == os.geteuid()
        return
    os.chown(path, 12345, 12345)
    inode = path.stat().st_ino

    def refused(*args: Any) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "chown", refused)
    said = notes(synced(path, emu))
    assert len(said) == 1 and "h.duckdb was not compacted" in said[0], said
    assert "its owner and group (uid 12345, gid 12345) could not be kept by this user" in said[0]
    assert (path.stat().st_ino, path.stat().st_uid) == (inode, 12345)
    assert not list(tmp_path.glob(".h.duckdb.compact-*"))
