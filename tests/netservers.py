"""Servers for the network tests: real run steps to answer with, and a TLS server on loopback that
speaks HTTP/2 to a client offering it (hypercorn, with a certificate from a `trustme` CA).

    >>> with TlsServer(tmp_path) as server:                       # doctest: +SKIP
    ...     server.base_url, server.ca_path, server.requests       # requests: (http_version, headers)
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import trustme
from hypercorn.asyncio import serve
from hypercorn.config import Config
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from duckdb_openai.emulator.data import Dataset

__all__ = ["RUN_ID", "STEP", "THREAD_ID", "TlsServer", "page"]

_DATASET = Dataset(seed=7)
_RUN = _DATASET.find_run(step_count=3)
THREAD_ID, RUN_ID = _RUN.thread_id, _RUN.run_id
#: Real run steps, exactly as the API returns them.
STEPS: list[dict[str, Any]] = _DATASET.steps(THREAD_ID, RUN_ID)
STEP = STEPS[0]


def page(steps: list[dict[str, Any]], has_more: bool = False) -> dict[str, Any]:
    """A list response holding `steps`."""
    return {
        "object": "list",
        "data": steps,
        "first_id": steps[0]["id"] if steps else None,
        "last_id": steps[-1]["id"] if steps else None,
        "has_more": has_more,
    }


class TlsServer:
    """HTTPS on 127.0.0.1 with a certificate signed by a fresh CA (written to `ca_path`); answers every
    GET with one run step, or with what `answer` makes of the request, and records (http_version,
    headers) of each request."""

    def __init__(self, directory: Path, answer: Callable[[Request], Response] | None = None) -> None:
        self._make = answer
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1")
        self.ca_path = str(directory / "ca.pem")
        ca.cert_pem.write_to_path(self.ca_path)
        chain = directory / "server.pem"
        cert.private_key_and_cert_chain_pem.write_to_path(str(chain))
        self.requests: list[tuple[str, dict[str, str]]] = []
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)  # connections made before the server thread runs wait in the backlog
        self.base_url = f"https://127.0.0.1:{self._sock.getsockname()[1]}/v1"
        config = Config()
        # hypercorn takes ownership of (and closes) the descriptor it is given: give it its own.
        config.bind = [f"fd://{os.dup(self._sock.fileno())}"]
        config.certfile = config.keyfile = str(chain)
        config.alpn_protocols = ["h2", "http/1.1"]
        config.loglevel = "WARNING"
        self._config = config
        self._app = Starlette(routes=[Route("/{path:path}", self._answer, methods=["GET"])])
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="tls-server")

    async def _answer(self, request: Request) -> Response:
        self.requests.append((request.scope["http_version"], dict(request.headers)))
        return JSONResponse(STEP) if self._make is None else self._make(request)

    def _run(self) -> None:
        self._loop.run_until_complete(serve(self._app, self._config, shutdown_trigger=self._stop.wait))

    def __enter__(self) -> TlsServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        self._sock.close()
