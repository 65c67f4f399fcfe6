"""Whose data the cache holds (issue 15): an entry is served only to the credential that fetched it, a
follow-up page is checked against the kept rows, `cache_dir` is validated and its folders trusted only
when private, `cache clear` removes only the cache's files, `final_after` is decided when an entry is
read, and a file that would block (a FIFO) costs a refetch, never a hang.

Servers here are `ScriptedServer`s answering one run's steps per credential (the emulator serves every
key the same data), or the session emulator."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import stat
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import duckdb
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

import duckdb_openai
from duckdb_openai import ConfigurationError, NotFoundError, Settings
from duckdb_openai.emulator import Emulator
from duckdb_openai.engine import cache_store
from duckdb_openai.engine.cache_store import (
    CACHE_FORMAT,
    DiskStore,
    Entry,
    LayeredStore,
    MemoryStore,
    StoreKey,
)
from duckdb_openai.http import requester
from duckdb_openai.resources.run_steps import RUN_STEPS_SCHEMA
from tests.helpers import KEY, connect, list_requests
from tests.scripted import ScriptedServer
from tests.test_cache import (
    TERMINAL,
    afters,
    learn_statuses,
    load,
    pick_runs,
    statuses,
    steps,
)

THREAD, RUN = "thread_trust", "run_trust"
KEY_A, KEY_B = "sk-test-key-of-A-0123456789", "sk-test-key-of-B-9876543210"
#: Steps from 2024: a run whose steps are all terminal is assumed finished under the default final_after.
EPOCH = 1_725_000_000
ID = RUN_STEPS_SCHEMA.names.index("id")


def step(n: int, status: str = "completed") -> dict[str, Any]:
    """A run step as the API sends it: `step_<n>`, created n seconds after EPOCH."""
    return {
        "id": f"step_{n:03d}",
        "object": "thread.run.step",
        "created_at": EPOCH + n,
        "run_id": RUN,
        "assistant_id": "asst_trust",
        "thread_id": THREAD,
        "type": "message_creation",
        "status": status,
        "cancelled_at": None,
        "completed_at": EPOCH + n + 1 if status == "completed" else None,
        "expired_at": None,
        "failed_at": None,
        "last_error": None,
        "step_details": {"type": "message_creation", "message_creation": {"message_id": f"msg_{n:03d}"}},
        "metadata": {},
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def jwt(**claims: str) -> str:
    """An unsigned-looking JWT naming an identity (the package reads its claims, never its signature)."""

    def part(value: dict[str, str]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.{part({'not': 'a signature'})}"


TOKEN_A1 = jwt(tid="tenant-1", oid="user-A", uti="first")
TOKEN_A2 = jwt(tid="tenant-1", oid="user-A", uti="second")  # A's next token: the same identity
TOKEN_B = jwt(tid="tenant-1", oid="user-B", uti="third")


def credential(request: Request) -> str:
    """Who sent the request: the key, or the `oid` a JWT names."""
    token = request.headers.get("authorization", "").removeprefix("Bearer ")
    if token.count(".") == 2:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return str(claims["oid"])
    return token


class Run:
    """One run's steps as a server holds them, answered to the credentials in `allowed` (others get the
    API's 404), with a chosen fault in how a request sent with `after` is read:
    'inclusive' (the `after` step itself comes back), 'ignores_after', 'ignores_order' (descending)."""

    def __init__(self, steps: list[dict[str, Any]], allowed: set[str], fault: str | None = None) -> None:
        self.steps = steps
        self.allowed = allowed
        self.fault = fault
        self.seen: list[tuple[str, str, dict[str, list[str]]]] = []  # (credential, path, query)

    def requests(self, who: str | None = None) -> int:
        return sum(1 for c, _, _ in self.seen if who is None or c == who)

    def __call__(self, request: Request) -> Response:
        who = credential(request)
        query = parse_qs(request.url.query)
        path = request.url.path
        self.seen.append((who, path, query))
        base = f"/v1/threads/{THREAD}/runs/{RUN}/steps"
        if who not in self.allowed or not path.startswith(base):
            return JSONResponse(
                {"error": {"message": f"No run found with id '{RUN}'.", "type": "invalid_request_error"}},
                status_code=404,
            )
        if path != base:  # a retrieve
            found = [s for s in self.steps if s["id"] == path.rsplit("/", 1)[-1]]
            return JSONResponse(found[0]) if found else JSONResponse({"error": {"message": "no"}}, 404)
        after = query.get("after", [None])[0]
        order = query.get("order", ["desc"])[0]
        limit = int(query.get("limit", ["20"])[0])
        if after is not None and self.fault == "ignores_order":
            order = "desc"
        rows = self.steps if order == "asc" else self.steps[::-1]
        if after is not None and self.fault != "ignores_after":
            index = [s["id"] for s in rows].index(after)
            rows = rows[index:] if self.fault == "inclusive" else rows[index + 1 :]
        page = rows[:limit]
        return JSONResponse(
            {
                "object": "list",
                "data": page,
                "first_id": page[0]["id"] if page else None,
                "last_id": page[-1]["id"] if page else None,
                "has_more": len(rows) > limit,
            }
        )


@pytest.fixture
def serve() -> Iterator[Callable[[Run], ScriptedServer]]:
    servers: list[ScriptedServer] = []

    def start(run: Run) -> ScriptedServer:
        server = ScriptedServer([run]).__enter__()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.__exit__(None, None, None)


def run_steps(con: duckdb.DuckDBPyConnection, cache: str = "on") -> list[str]:
    """The ids of the run's steps, through SQL."""
    found = con.execute("SELECT id FROM run_steps(?, ?, cache := ?)", [THREAD, RUN, cache]).fetchall()
    return [row[0] for row in found]


def run_step(con: duckdb.DuckDBPyConnection, step_id: str) -> list[str]:
    found = con.execute("SELECT id FROM run_step(?, ?, ?)", [THREAD, RUN, step_id]).fetchall()
    return [row[0] for row in found]


# -- 1. an entry is served only to the credential that fetched it ------------------------------------


def test_a_key_never_reads_what_another_key_fetched(serve: Any, tmp_path: Path) -> None:
    run = Run([step(1), step(2), step(3)], allowed={KEY_A})
    server = serve(run)
    con_a, reg_a = connect(server.base_url, api_key=KEY_A, cache=True, cache_dir=tmp_path)
    assert run_steps(con_a) == ["step_001", "step_002", "step_003"]
    assert run_step(con_a, "step_002") == ["step_002"]
    assert run_steps(con_a) == ["step_001", "step_002", "step_003"]  # finished (assumed): kept, final
    assert run.requests(KEY_A) == 1
    reg_a.close()

    # Key B, on the same base URL and folder, is answered 404 for this run: it must ask, and fail.
    con_b, reg_b = connect(server.base_url, api_key=KEY_B, cache=True, cache_dir=tmp_path)
    with pytest.raises(duckdb.Error, match=r"RunFetchError.*not found"):
        run_steps(con_b)
    assert run.requests(KEY_B) == 1
    with pytest.raises(duckdb.Error, match="not found"):
        run_step(con_b, "step_002")
    assert run.requests(KEY_B) == 2
    with pytest.raises(NotFoundError):
        duckdb_openai.read_run_step(
            THREAD, RUN, "step_001", api_key=KEY_B, base_url=server.base_url, cache_dir=tmp_path
        )
    assert run.requests(KEY_B) == 3
    reg_b.close()

    # A, in a new client, still reads its own entries: 0 requests.
    con_a2, reg_a2 = connect(server.base_url, api_key=KEY_A, cache=True, cache_dir=tmp_path)
    assert run_steps(con_a2) == ["step_001", "step_002", "step_003"]
    assert run.requests(KEY_A) == 1
    reg_a2.close()
    # Two folders, neither named after (nor holding) either key.
    scopes = [p for p in (tmp_path / CACHE_FORMAT).iterdir() if p.is_dir()]
    assert len(scopes) == 2
    for path in [*tmp_path.rglob("*")]:
        assert KEY_A not in path.name and KEY_B not in path.name
        if path.is_file():
            assert KEY_A.encode() not in path.read_bytes() and KEY_B.encode() not in path.read_bytes()


def provider(tokens: list[str]) -> Callable[[], str]:
    """A token provider giving tokens[0] (the test changes it, as a credential rotating would)."""
    return lambda: tokens[0]


def test_a_token_identity_never_reads_what_another_fetched(serve: Any, tmp_path: Path) -> None:
    run = Run([step(1), step(2)], allowed={"user-A"})
    server = serve(run)
    con_a, reg_a = connect(
        server.base_url, api_key=None, token_provider=provider([TOKEN_A1]), cache=True, cache_dir=tmp_path
    )
    assert run_steps(con_a) == ["step_001", "step_002"]
    reg_a.close()
    # A's next token (hourly rotation) names the same identity: the same folder, 0 requests.
    con_a2, reg_a2 = connect(
        server.base_url, api_key=None, token_provider=provider([TOKEN_A2]), cache=True, cache_dir=tmp_path
    )
    assert run_steps(con_a2) == ["step_001", "step_002"]
    assert run_step(con_a2, "step_001") == ["step_001"]
    assert run.requests("user-A") == 1
    reg_a2.close()
    con_b, reg_b = connect(
        server.base_url, api_key=None, token_provider=provider([TOKEN_B]), cache=True, cache_dir=tmp_path
    )
    with pytest.raises(duckdb.Error, match=r"RunFetchError.*not found"):
        run_steps(con_b)
    with pytest.raises(duckdb.Error, match="not found"):
        run_step(con_b, "step_001")
    assert run.requests("user-B") == 2
    reg_b.close()
    for path in tmp_path.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert b"user-A" not in data and TOKEN_A1.encode() not in data


@pytest.mark.parametrize("disk", [False, True])
def test_a_client_whose_identity_changes_does_not_serve_the_first_ones_rows(
    serve: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, disk: bool
) -> None:
    monkeypatch.setattr(requester, "TOKEN_REUSE_S", 0.0)  # ask the provider before every request
    run = Run([step(1), step(2)], allowed={"user-A"})
    server = serve(run)
    tokens = [TOKEN_A1]
    con, reg = connect(
        server.base_url,
        api_key=None,
        token_provider=provider(tokens),
        cache=True,
        cache_dir=tmp_path if disk else None,
    )
    assert run_steps(con) == ["step_001", "step_002"]
    assert run_step(con, "step_002") == ["step_002"]
    assert run.requests() == 1
    tokens[0] = TOKEN_B  # the provider now gives another identity's tokens
    with pytest.raises(duckdb.Error, match="not found"):
        run_steps(con)
    with pytest.raises(duckdb.Error, match="not found"):
        run_step(con, "step_002")
    assert run.requests("user-B") == 2
    tokens[0] = TOKEN_A2
    assert run_steps(con) == ["step_001", "step_002"]
    reg.close()


def test_opaque_tokens_keep_their_rows_apart(serve: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Tokens that name no identity: the memory cache is per token, so another token never reads them.
    monkeypatch.setattr(requester, "TOKEN_REUSE_S", 0.0)
    run = Run([step(1), step(2)], allowed={"opaque-token-of-A"})
    server = serve(run)
    tokens = ["opaque-token-of-A"]
    con, reg = connect(server.base_url, api_key=None, token_provider=provider(tokens), cache=True)
    assert run_steps(con) == run_steps(con) == ["step_001", "step_002"]
    assert run.requests() == 1
    tokens[0] = "opaque-token-of-B"
    with pytest.raises(duckdb.Error, match="not found"):
        run_steps(con)
    assert run.requests("opaque-token-of-B") == 1
    reg.close()


def test_a_token_that_is_not_a_jwt_keeps_the_cache_in_memory(
    serve: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run = Run([step(1), step(2)], allowed={"opaque-token-of-A"})
    server = serve(run)
    with caplog.at_level(logging.WARNING, logger="duckdb_openai"):
        con, reg = connect(
            server.base_url,
            api_key=None,
            token_provider=provider(["opaque-token-of-A"]),
            cache=True,
            cache_dir=tmp_path,
        )
        assert run_steps(con) == ["step_001", "step_002"]
        assert run_steps(con) == ["step_001", "step_002"]
    assert run.requests() == 1  # kept, in memory
    assert not list(tmp_path.rglob("*.arrow"))
    assert any("not a JWT" in r.getMessage() and "memory" in r.getMessage() for r in caplog.records)
    assert all("opaque-token-of-A" not in r.getMessage() for r in caplog.records)
    reg.close()


# -- 2. the follow-up page must continue the kept rows --------------------------------------------------


@pytest.mark.parametrize("fault", ["inclusive", "ignores_after", "ignores_order"])
def test_a_follow_up_that_does_not_continue_the_kept_rows_is_not_appended(serve: Any, fault: str) -> None:
    run = Run([step(1), step(2), step(3, "in_progress")], allowed={KEY_A}, fault=fault)
    server = serve(run)
    con, reg = connect(server.base_url, api_key=KEY_A, cache=True)
    assert run_steps(con) == ["step_001", "step_002", "step_003"]  # keeps 1 and 2
    run.steps = [step(1), step(2), step(3), step(4)]  # the run went on, and finished
    truth = ["step_001", "step_002", "step_003", "step_004"]
    assert run_steps(con) == truth
    sent = [query.get("after", [None])[0] for _, _, query in run.seen[1:]]
    assert sent[0] == "step_002"  # the follow-up was asked, and its answer refused
    # What was kept is the true list: final now (its steps are old and terminal), served with 0 requests.
    before = run.requests()
    assert run_steps(con) == truth
    assert con.execute(
        "SELECT list(id ORDER BY created_at DESC) FROM run_steps(?, ?, sort := 'desc')", [THREAD, RUN]
    ).fetchone() == (truth[::-1],)
    assert run.requests() == before
    reg.close()


# -- 3. cache_dir values ------------------------------------------------------------------------------


def test_an_empty_cache_dir_means_memory(serve: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings.resolve(api_key=KEY, cache_dir="").cache_dir is None
    assert Settings.resolve(api_key=KEY, env={"DUCKDB_OPENAI_CACHE_DIR": ""}).cache_dir is None
    run = Run([step(1)], allowed={KEY_A})
    server = serve(run)
    monkeypatch.chdir(tmp_path)
    con, reg = connect(server.base_url, api_key=KEY_A, cache=True, cache_dir="")
    assert run_steps(con) == run_steps(con) == ["step_001"]
    assert run.requests() == 1  # kept (in memory)
    assert list(tmp_path.iterdir()) == []  # nothing written where the process runs
    reg.close()


@pytest.mark.parametrize("value", ["cache\x00dir", "bad-\udcff-\ud800"])
def test_an_invalid_cache_dir_is_a_configuration_error(value: str) -> None:
    with pytest.raises(ConfigurationError, match="cache_dir") as caught:
        Settings.resolve(api_key=KEY, cache_dir=value)
    assert repr(value) in str(caught.value)


# -- 4a. a folder others can write is not trusted --------------------------------------------------------


@pytest.mark.parametrize("mode", [0o777, 0o757, 0o775])
def test_a_cache_dir_others_can_write_is_refused(emu: Emulator, tmp_path: Path, mode: int) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(mode)
    with pytest.raises(ConfigurationError, match=r"writable by others.*chmod") as caught:
        connect(emu.base_url, cache=True, cache_dir=shared)
    assert str(shared) in str(caught.value)
    # The cache's own folder below a private one, left writable by others: refused too.
    private = tmp_path / "private"
    (private / CACHE_FORMAT).mkdir(parents=True)
    (private / CACHE_FORMAT).chmod(mode)
    with pytest.raises(ConfigurationError, match="writable by others"):
        connect(emu.base_url, cache=True, cache_dir=private)


def test_a_sticky_shared_folder_is_used(emu: Emulator, tmp_path: Path) -> None:
    # /tmp-like: everyone may create, nobody may remove or rename another's entries; the cache's own
    # folders inside it are private.
    shared = tmp_path / "tmp-like"
    shared.mkdir()
    shared.chmod(0o1777)
    runs = [r for r in pick_runs(emu) if r.step_count > 0][:3]
    con, reg = connect(emu.base_url, cache=True, cache_dir=shared)
    load(con, runs)
    assert steps(con) == steps(con, cache="off")
    assert stat.S_IMODE((shared / CACHE_FORMAT).stat().st_mode) == 0o700
    reg.close()


def test_a_cache_folder_owned_by_another_user_is_refused(
    emu: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = [r for r in pick_runs(emu) if r.step_count > 0][:2]
    con, reg = connect(emu.base_url, cache=True, cache_dir=tmp_path)
    load(con, runs)
    steps(con)
    assert reg.client.cache is not None
    scope = Path(reg.client.cache.info().location)
    reg.close()
    if os.geteuid() == 0:
        os.chown(scope, 65534, -1)  # nobody
    else:  # a user cannot give a folder away: have the check see another owner
        monkeypatch.setattr(cache_store, "_current_uid", lambda: os.geteuid() + 1)
    with pytest.raises(ConfigurationError, match=r"owned by another user"):
        connect(emu.base_url, cache=True, cache_dir=tmp_path)


# -- 4b. cache clear removes only the cache's files -----------------------------------------------------


def test_clear_removes_only_what_the_cache_wrote(emu: Emulator, tmp_path: Path) -> None:
    runs = [r for r in pick_runs(emu) if r.step_count > 0][:4]
    con, reg = connect(emu.base_url, cache=True, cache_dir=tmp_path)
    load(con, runs)
    learn_statuses(reg, runs)
    steps(con)
    assert reg.client.cache is not None
    scope = Path(reg.client.cache.info().location)
    namespace = next(p for p in scope.iterdir() if p.is_dir())
    reg.close()
    foreign = {
        tmp_path / CACHE_FORMAT / "notes.txt": b"mine",
        scope / "README": b"mine too",
        namespace / "list-0123456789abcdef0123456789abcdef01234567.arrow": b"not an entry",
        namespace / "sub" / "kept.bin": b"x",
    }
    for path, data in foreign.items():
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "DUCKDB_OPENAI_"))}
    cleared = subprocess.run(
        [sys.executable, "-m", "duckdb_openai.cli", "cache", "clear", "--cache-dir", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cleared.returncode == 0, cleared.stderr
    for path, data in foreign.items():
        assert path.read_bytes() == data, path
    left = sorted(str(p) for p in tmp_path.rglob("*") if p.is_file())
    assert left == sorted(str(p) for p in foreign)  # every entry and the status log are gone
    assert "left 4 files the cache did not write" in cleared.stdout
    for path in foreign:
        assert str(path) in cleared.stdout
    # An empty --cache-dir is no folder (not the working directory), as an empty variable is.
    empty = subprocess.run(
        [sys.executable, "-m", "duckdb_openai.cli", "cache", "clear", "--cache-dir", ""],
        env={**env, "DUCKDB_OPENAI_CACHE_DIR": ""},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert empty.returncode == 1 and "no cache directory" in empty.stderr


def test_client_cache_clear_removes_only_its_files(emu: Emulator, tmp_path: Path) -> None:
    runs = [r for r in pick_runs(emu) if r.step_count > 0][:3]
    con, reg = connect(emu.base_url, cache=True, cache_dir=tmp_path)
    load(con, runs)
    steps(con)
    assert reg.client.cache is not None
    scope = Path(reg.client.cache.info().location)
    (scope / "notes.txt").write_text("mine")
    reg.client.cache.clear()
    assert [p.name for p in scope.rglob("*") if p.is_file()] == ["notes.txt"]
    assert reg.client.cache.info().entries == 0
    reg.close()


# -- 4c. final_after is decided when an entry is read -----------------------------------------------------


def test_final_after_holds_for_entries_read_from_disk(emu: Emulator, tmp_path: Path) -> None:
    runs = [r for r in pick_runs(emu) if r.step_count > 0]
    status = statuses(emu, runs)
    finished = [r for r in runs if status[r.run_id] in TERMINAL]
    threads = sorted({r.thread_id for r in finished})
    learned = [r for r in finished if r.thread_id in threads[: len(threads) // 2]]
    assumed = [r for r in finished if r not in learned]
    assert learned and assumed
    # The first client learns half the runs' statuses, then keeps every run's steps: the learned half
    # final by observation, the rest assumed final (old and terminal, under the default 24 h).
    con, reg = connect(emu.base_url, cache=True, cache_dir=tmp_path)
    load(con, finished)
    learn_statuses(reg, learned)
    want = steps(con)
    reg.close()
    emu.reset()
    con, reg = connect(emu.base_url, cache=True, cache_dir=tmp_path)  # default final_after: all final
    load(con, finished)
    assert steps(con) == want and list_requests(emu) == 0
    reg.close()
    # A client that assumes nothing: only the runs seen finished are final; the others are asked for
    # what follows their kept steps.
    con, reg = connect(emu.base_url, cache=True, cache_dir=tmp_path, final_after=0)
    load(con, finished)
    emu.reset()
    assert steps(con) == want
    assert list_requests(emu) == len(assumed)
    assert all(after is not None for after in afters(emu))
    reg.close()


# -- 4d. a file that would block --------------------------------------------------------------------------

_READER = textwrap.dedent(
    """
    import sys, duckdb, duckdb_openai
    from duckdb_openai.resources.runs import RUNS
    base_url, folder, *pairs = sys.argv[1:]
    con = duckdb.connect()
    registration = duckdb_openai.register(con, api_key="sk-test-reader", base_url=base_url,
                                          cache_dir=folder, progress=False)
    con.execute("CREATE TABLE my_runs(thread_id VARCHAR, run_id VARCHAR)")
    con.executemany("INSERT INTO my_runs VALUES (?, ?)", [p.split(",") for p in pairs])
    registration.client.fan_out([RUNS.bind_list({"thread_id": p.split(",")[0]}) for p in pairs])
    print(con.execute("SELECT count(*) FROM my_runs r, run_steps(r.thread_id, r.run_id) s").fetchone()[0])
    registration.close()
    """
)


def test_a_fifo_in_the_cache_folder_costs_a_refetch_not_a_hang(emu: Emulator, tmp_path: Path) -> None:
    runs = [r for r in pick_runs(emu) if r.step_count > 0][:3]
    pairs = [f"{r.thread_id},{r.run_id}" for r in runs]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}

    def reader() -> subprocess.CompletedProcess[str]:
        # A subprocess: a hang is a timeout here, not a stuck test run.
        return subprocess.run(
            [sys.executable, "-c", _READER, emu.base_url, str(tmp_path), *pairs],
            env=env,
            capture_output=True,
            text=True,
            timeout=90,
        )

    first = reader()
    assert first.returncode == 0, first.stderr
    entries = sorted(tmp_path.rglob("*.arrow"))
    assert len(entries) == len(runs)
    log = next(tmp_path.rglob("statuses.log"))
    for path in (entries[0], log):
        path.unlink()
        os.mkfifo(path, 0o600)
    emu.reset()
    second = reader()
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == first.stdout.strip() == str(sum(r.step_count for r in runs))
    assert list_requests(emu) == 1  # the run whose entry was a FIFO, fetched again
    assert stat.S_ISREG(entries[0].stat().st_mode)  # and written again, as a file


def test_a_stuck_read_times_out_and_leaves_the_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # A file on a hung mount: reading it never returns. The read is abandoned after the timeout, and the
    # store keeps to memory from then on.
    monkeypatch.setattr(cache_store, "DISK_TIMEOUT_S", 0.2)
    release = threading.Event()
    disk = DiskStore(tmp_path, "scope")
    key = StoreKey("ns", "run_steps/list?run_id=run_1|")
    disk.put(key, Entry(RUN_STEPS_SCHEMA.empty_table(), 0.0, True, True))

    def stuck(key: StoreKey, schema: Any) -> None:
        release.wait(30)

    monkeypatch.setattr(disk, "get", stuck)
    store = LayeredStore(MemoryStore(1 << 20), disk)
    result: list[Any] = []

    def query() -> None:
        async def both() -> list[Any]:
            return [await store.get(key, RUN_STEPS_SCHEMA), await store.get(key, RUN_STEPS_SCHEMA)]

        result.extend(asyncio.run(both()))

    with caplog.at_level(logging.WARNING, logger="duckdb_openai"):
        worker = threading.Thread(target=query, daemon=True)
        worker.start()
        worker.join(20)
    release.set()
    assert not worker.is_alive(), "the read did not time out"
    assert result == [None, None]
    assert any("did not answer" in r.getMessage() for r in caplog.records)
