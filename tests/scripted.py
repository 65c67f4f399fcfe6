"""A real HTTP server on loopback that answers from a script and records every request it got.

For the cases the emulator cannot produce (a server echoing the key, a 400 with a chosen message, a
page that succeeds then a page that keeps failing) and for hostile servers: a script entry is either
`(status, JSON body)`, a ready starlette `Response` (raw bytes, a gzip bomb, chosen headers), or a
callable taking the `Request` and returning a `Response` (sync or async; a `StreamingResponse` sends a
body slowly or without end).

    >>> with ScriptedServer([(200, {"object": "list", ...})]) as server:  # doctest: +SKIP
    ...     server.base_url, server.requests
"""

from __future__ import annotations

import inspect
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from duckdb_openai.emulator.server import bind_socket

__all__ = ["Recorded", "ScriptedServer"]


@dataclass(frozen=True)
class Recorded:
    path: str
    query: str
    headers: dict[str, str]
    #: time.monotonic() when the request arrived.
    received: float = 0.0


#: One answer of a script: (status, JSON body), a Response, or a callable making one from the request.
Answer = tuple[int, Any] | Response | Callable[[Request], Any]


class ScriptedServer:
    """Answers request i with script[i]; past the end, repeats the last answer."""

    def __init__(self, script: list[Answer]) -> None:
        self.script = script
        self.requests: list[Recorded] = []
        app = Starlette(routes=[Route("/{path:path}", self._answer, methods=["GET"])])
        self._sock = bind_socket("127.0.0.1", 0)
        self.base_url = f"http://127.0.0.1:{self._sock.getsockname()[1]}/v1"
        config = uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True, name="scripted-server"
        )

    async def _answer(self, request: Request) -> Response:
        self.requests.append(
            Recorded(request.url.path, request.url.query, dict(request.headers), time.monotonic())
        )
        answer = self.script[min(len(self.requests), len(self.script)) - 1]
        if isinstance(answer, Response):
            return answer
        if callable(answer):
            made = answer(request)
            return await made if inspect.isawaitable(made) else made  # type: ignore[no-any-return]
        status, body = answer
        return JSONResponse(body, status_code=status)

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the scripted server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        self._sock.close()
