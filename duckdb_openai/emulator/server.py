"""Running the emulator: in a background thread, as a subprocess, or in the foreground (CLI).

    >>> with Emulator(seed=7) as emu:  # doctest: +SKIP
    ...     client = openai.OpenAI(base_url=emu.base_url, api_key="sk-test")
    ...     run = emu.dataset.find_run(step_count=101)
    ...     steps = list(client.beta.threads.runs.steps.list(run.run_id, thread_id=run.thread_id))
    ...     emu.stats()["by_endpoint"]["list"]
    {'200': 6}

``mode="thread"`` serves from a uvicorn server in a daemon thread of this process, on a
socket bound here (fast to start, for tests). ``mode="process"`` runs
``python -m duckdb_openai.emulator`` and reads its URL line (for benchmarks: the server
then does not compete with the client for this process's GIL). Either way ``stop()``
leaves no thread, subprocess or listening socket behind.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Generator
from datetime import datetime
from types import TracebackType
from typing import Any, Literal

import httpx
import uvicorn

from .app import create_app
from .data import Dataset, DatasetConfig
from .live import LiveConfig
from .organization import Organization
from .settings import (
    ADMIN_KEY_ENV,
    API_KEY_ENV,
    DEFAULT_HOST,
    DEFAULT_SEED,
    DEFAULT_SLOW_MS,
    EmulatorSettings,
)
from .successors import DEFAULT_DAYS

__all__ = ["Emulator", "EmulatorError", "Mode", "bind_socket", "serve"]

Mode = Literal["thread", "process"]
STARTUP_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
# In-flight requests (a slow fault, say) get this long to finish when the server stops.
_GRACEFUL_SHUTDOWN_S = 2


class EmulatorError(RuntimeError):
    """The emulator could not start, or was used before it started."""


class _Server(uvicorn.Server):
    """uvicorn's server, reporting readiness and treating SIGINT/SIGTERM as a clean stop."""

    def __init__(self, config: uvicorn.Config, on_ready: Callable[[], None] | None = None) -> None:
        super().__init__(config)
        self._on_ready = on_ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started and self._on_ready is not None:
            self._on_ready()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # uvicorn re-raises a captured signal after shutting down, so SIGTERM would still
        # kill the process; here a signal only means "stop serving", and the CLI exits 0.
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: any free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _uvicorn_config(
    settings: EmulatorSettings,
    dataset: Dataset | None,
    *,
    quiet_logging: bool,
    organization: Organization | None = None,
) -> uvicorn.Config:
    return uvicorn.Config(
        create_app(settings, dataset, organization),
        interface="asgi3",
        lifespan="off",
        access_log=False,
        log_level="warning",
        # The app sends the Date header itself, from the emulator's clock (--now).
        date_header=False,
        # In-process (thread mode) the host application owns logging configuration.
        log_config=None if quiet_logging else uvicorn.config.LOGGING_CONFIG,
        timeout_graceful_shutdown=_GRACEFUL_SHUTDOWN_S,
    )


def serve(
    settings: EmulatorSettings,
    *,
    host: str,
    port: int,
    on_ready: Callable[[str], None],
    organization: Organization | None = None,
) -> None:
    """Serve in the foreground until SIGINT/SIGTERM; ``on_ready(base_url)`` once listening."""
    sock = bind_socket(host, port)
    bound_port = sock.getsockname()[1]
    base_url = f"http://{_url_host(host)}:{bound_port}/v1"
    config = _uvicorn_config(settings, None, quiet_logging=False, organization=organization)
    server = _Server(config, on_ready=lambda: on_ready(base_url))
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()


class Emulator:
    """A local OpenAI run-steps API over a deterministic :class:`Dataset`.

    Use as a context manager (or ``start()``/``stop()``). ``base_url`` is the OpenAI base
    URL (``http://127.0.0.1:PORT/v1``), ``azure_endpoint`` the Azure one; ``dataset`` and
    ``organization`` (:class:`~.organization.Organization`: its projects, users, keys, audit log,
    usage and costs, and the Responses-era population as ``organization.successors``) are the
    ground truth the server answers from.

    ``admin_key`` is the only key the organization endpoints accept (and the only one the others
    refuse); ``days`` how many days the Responses-era population and the organization's usage span;
    ``now`` (Unix seconds, or an aware datetime) the organization's clock (the real one when None):
    usage, costs and audit logs are reported up to it.
    """

    def __init__(
        self,
        *,
        seed: int = DEFAULT_SEED,
        dataset: DatasetConfig | None = None,
        latency_ms: float = 0.0,
        rate_limit: float | None = None,
        fault_rate: float = 0.0,
        slow_ms: float = DEFAULT_SLOW_MS,
        api_key: str | None = None,
        mode: Mode = "thread",
        host: str = DEFAULT_HOST,
        port: int = 0,
        startup_timeout: float = STARTUP_TIMEOUT_S,
        live: LiveConfig | None = None,
        admin_key: str | None = None,
        days: int = DEFAULT_DAYS,
        now: int | datetime | None = None,
    ) -> None:
        if mode not in ("thread", "process"):
            raise ValueError(f"mode must be 'thread' or 'process', got {mode!r}")
        if isinstance(now, datetime):
            if now.tzinfo is None:
                raise ValueError("now must be an aware datetime (say tzinfo=UTC) or Unix seconds")
            now = int(now.timestamp())
        self.settings = EmulatorSettings(
            seed=seed,
            dataset=dataset if dataset is not None else DatasetConfig(),
            latency_ms=latency_ms,
            rate_limit=rate_limit,
            fault_rate=fault_rate,
            slow_ms=slow_ms,
            api_key=api_key,
            live=live if live is not None else LiveConfig(),
            admin_key=admin_key,
            days=days,
            now=now,
        )
        self.mode: Mode = mode
        self.host = host
        self._requested_port = port
        self._startup_timeout = startup_timeout
        self.dataset = Dataset(seed, self.settings.dataset)
        self.organization = Organization(seed, days=days, now=self.settings.now)
        self._port: int | None = None
        self._thread: threading.Thread | None = None
        self._server: _Server | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._control: httpx.Client | None = None

    def __repr__(self) -> str:
        where = self.base_url if self._port is not None else "stopped"
        return f"Emulator(mode={self.mode!r}, seed={self.settings.seed}, {where})"

    # -- lifecycle ---------------------------------------------------------------------

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._port is not None

    def start(self) -> Emulator:
        if self.running:
            raise EmulatorError("emulator already started")
        if self.mode == "thread":
            self._port = self._start_thread()
        else:
            self._port = self._start_process()
        # The control endpoints need the key when the server requires one, as the API paths do.
        key = self.settings.api_key
        headers = {"Authorization": f"Bearer {key}"} if key is not None else None
        self._control = httpx.Client(base_url=self.root_url, timeout=10.0, headers=headers)
        return self

    def stop(self) -> None:
        """Stop serving; safe to call twice."""
        if self._control is not None:
            self._control.close()
            self._control = None
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(STOP_TIMEOUT_S)
            if self._thread.is_alive():  # pragma: no cover - only if uvicorn hangs
                self._server.force_exit = True
                self._thread.join(STOP_TIMEOUT_S)
        self._server = None
        self._thread = None
        if self._process is not None:
            _terminate(self._process)
            self._process = None
        self._port = None

    def _start_thread(self) -> int:
        sock = bind_socket(self.host, self._requested_port)
        port: int = sock.getsockname()[1]
        ready = threading.Event()
        config = _uvicorn_config(
            self.settings, self.dataset, quiet_logging=True, organization=self.organization
        )
        server = _Server(config, on_ready=ready.set)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name=f"duckdb-openai-emulator-{port}", daemon=True
        )
        thread.start()
        deadline = time.monotonic() + self._startup_timeout
        while not ready.wait(0.01):
            if not thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                thread.join(STOP_TIMEOUT_S)
                sock.close()
                raise EmulatorError("the emulator thread did not start (see the log above)")
        self._server, self._thread = server, thread
        return port

    def _start_process(self) -> int:
        command = [
            sys.executable,
            "-m",
            "duckdb_openai.emulator",
            "--host",
            self.host,
            "--port",
            str(self._requested_port),
            *self.settings.to_argv(),
            "--quiet",  # the caller reads the URL line; the banner is for people at a terminal
        ]
        env = dict(os.environ)
        env.pop(API_KEY_ENV, None)
        env.pop(ADMIN_KEY_ENV, None)
        if self.settings.api_key is not None:
            env[API_KEY_ENV] = self.settings.api_key
        if self.settings.admin_key is not None:
            env[ADMIN_KEY_ENV] = self.settings.admin_key
        process = subprocess.Popen(command, stdout=subprocess.PIPE, env=env)
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], self._startup_timeout)
        line = process.stdout.readline().decode().strip() if ready else ""
        if not line.startswith("http"):
            _terminate(process)
            raise EmulatorError(
                f"the emulator process did not print its URL within {self._startup_timeout}s "
                f"(exit code {process.returncode}); see its stderr above"
            )
        self._process = process
        return int(line.rsplit(":", 1)[1].split("/", 1)[0])

    # -- addresses ---------------------------------------------------------------------

    @property
    def server_pid(self) -> int | None:
        """The server's process id in process mode (None in thread mode)."""
        return self._process.pid if self._process is not None else None

    @property
    def port(self) -> int:
        if self._port is None:
            raise EmulatorError("the emulator is not running; use it as a context manager or call start()")
        return self._port

    @property
    def root_url(self) -> str:
        """``http://HOST:PORT`` (no path)."""
        return f"http://{_url_host(self.host)}:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI base URL, ``http://HOST:PORT/v1``."""
        return self.root_url + "/v1"

    @property
    def azure_endpoint(self) -> str:
        """For ``AzureOpenAI(azure_endpoint=...)``, which appends ``/openai``."""
        return self.root_url

    @property
    def organization_url(self) -> str:
        """The organization endpoints' root, ``http://HOST:PORT/v1/organization``."""
        return self.base_url + "/organization"

    @property
    def azure_base_url(self) -> str:
        """The Azure-style base URL, ``http://HOST:PORT/openai``."""
        return self.root_url + "/openai"

    # -- controls ----------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Counters: total, by endpoint and status, faults by kind, in-flight peaks."""
        result: dict[str, Any] = self._call("GET", "/_emulator/stats")
        return result

    def requests(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The most recent API requests, oldest first (never including a key)."""
        params = {} if limit is None else {"limit": str(limit)}
        result: list[dict[str, Any]] = self._call("GET", "/_emulator/requests", params=params)
        return result

    def live(self, advance_s: float | None = None) -> dict[str, Any]:
        """The live runs' state (``--live``): the clock and each run's status and step ids; with
        ``advance_s``, after moving the live clock forward that many seconds."""
        if advance_s is None:
            result: dict[str, Any] = self._call("GET", "/_emulator/live")
        else:
            result = self._call("POST", "/_emulator/live", json={"advance_s": advance_s})
        return result

    def reset(self) -> None:
        """Clear counters, the request log and scripted faults; restart the fault sequence."""
        self._call("POST", "/_emulator/reset")

    def script_faults(self, kind: str, count: int = 1, match: str | None = None, **extra: Any) -> None:
        """Make the next ``count`` requests whose path contains ``match`` fail as ``kind``.

        ``kind`` is one of ``"500" "502" "503" "408" "409" "429" "drop" "slow"``; extras are
        ``retry_after_ms`` (429, default 50) and ``slow_ms`` (slow).
        """
        self._call("POST", "/_emulator/faults", json={"kind": kind, "count": count, "match": match, **extra})

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        if self._control is None:
            raise EmulatorError("the emulator is not running; use it as a context manager or call start()")
        response = self._control.request(method, path, **kwargs)
        if response.status_code == 400:
            raise ValueError(response.json()["error"])
        response.raise_for_status()
        return response.json()


def _terminate(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:  # pragma: no cover - only if the server hangs
            process.kill()
            process.wait()
    if process.stdout is not None:
        process.stdout.close()
