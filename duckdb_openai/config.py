"""Configuration: keyword arguments with environment fallbacks, read here and nowhere else.

>>> settings = Settings.resolve(api_key="sk-test", base_url="http://127.0.0.1:8000/v1")
>>> settings.base_url
'http://127.0.0.1:8000/v1'
>>> "sk-test" in repr(settings)
False
"""

from __future__ import annotations

import ipaddress
import os
import platform
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

from duckdb_openai._version import __version__
from duckdb_openai.errors import ConfigurationError

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_CACHE_MAX_BYTES",
    "DEFAULT_FINAL_AFTER",
    "DEFAULT_MAX_CONCURRENCY",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_TIMEOUT",
    "OnError",
    "Progress",
    "Settings",
]

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_TIMEOUT = 60.0
#: Bulk workloads meet transient faults; the official SDK's default of 2 is too few for thousands of runs.
DEFAULT_MAX_RETRIES = 6
DEFAULT_MAX_CONCURRENCY = 32
MAX_CONCURRENCY_LIMIT = 1024
MAX_RETRIES_LIMIT = 50
#: The in-memory cache's bound: 1 GiB of Arrow data, least recently used dropped first.
DEFAULT_CACHE_MAX_BYTES = 1 << 30
#: A run whose steps are all terminal, the newest older than this when fetched, is assumed finished.
DEFAULT_FINAL_AFTER = 24 * 3600.0

ENV_API_KEY = "OPENAI_API_KEY"
ENV_BASE_URL = "OPENAI_BASE_URL"
ENV_ORGANIZATION = "OPENAI_ORG_ID"
ENV_PROJECT = "OPENAI_PROJECT_ID"
ENV_API_VERSION = "OPENAI_API_VERSION"
ENV_CACHE_DIR = "DUCKDB_OPENAI_CACHE_DIR"

OnError = Literal["raise", "skip"]
Progress = Literal["auto", "on", "off"]


class Secret:
    """A string that never shows itself in repr, str or f-strings; `reveal()` is the only way out."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Settings:
    """Everything a client needs, resolved and validated once.

    Build it with `Settings.resolve(...)`, which applies the environment fallbacks; the key is a
    `Secret` so the settings can be printed safely.
    """

    api_key: Secret = field(repr=False)
    base_url: str = DEFAULT_BASE_URL
    organization: str | None = None
    project: str | None = None
    api_version: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    max_retries: int = DEFAULT_MAX_RETRIES
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY
    requests_per_second: float | None = None
    http2: bool = False
    #: Page long lists from both ends at once (halves their latency; may cost one or two requests more).
    both_ends: bool = True
    on_error: OnError = "raise"
    progress: Progress = "auto"
    #: Where the key came from, for error messages ("api_key=" or "$OPENAI_API_KEY").
    api_key_source: str = "api_key="
    #: The shortest and longest pause between retries; tests shorten them, never to zero.
    retry_initial_delay: float = 0.5
    retry_max_delay: float = 8.0
    #: Keep what can no longer change (`cache.py`); in memory, or in `cache_dir` when set.
    cache: bool = True
    cache_dir: str | None = None
    #: Seconds after which a run whose steps are all terminal is assumed finished; 0: never assume.
    final_after: float = DEFAULT_FINAL_AFTER
    cache_max_bytes: int = DEFAULT_CACHE_MAX_BYTES

    @classmethod
    def resolve(
        cls,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        organization: str | None = None,
        project: str | None = None,
        api_version: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        requests_per_second: float | None = None,
        http2: bool = False,
        both_ends: bool = True,
        on_error: str = "raise",
        progress: bool | str = "auto",
        allow_insecure_http: bool = False,
        retry_initial_delay: float = 0.5,
        retry_max_delay: float = 8.0,
        cache: bool = True,
        cache_dir: str | os.PathLike[str] | None = None,
        final_after: float = DEFAULT_FINAL_AFTER,
        cache_max_bytes: int = DEFAULT_CACHE_MAX_BYTES,
        env: Mapping[str, str] | None = None,
    ) -> Settings:
        """Apply the environment fallbacks and validate; raises ConfigurationError naming the fix."""
        env = os.environ if env is None else env
        source = "api_key="
        if api_key is None:
            api_key = env.get(ENV_API_KEY)
            source = f"${ENV_API_KEY}"
        if not api_key:
            raise ConfigurationError(
                f"no API key: pass api_key= to register() / read_run_steps(), or set the {ENV_API_KEY} "
                "environment variable"
            )
        if any(ch.isspace() for ch in api_key):
            raise ConfigurationError(f"the API key from {source} contains white space; check how it was set")
        base_url = (base_url or env.get(ENV_BASE_URL) or DEFAULT_BASE_URL).rstrip("/")
        organization = organization or env.get(ENV_ORGANIZATION) or None
        project = project or env.get(ENV_PROJECT) or None
        api_version = api_version or env.get(ENV_API_VERSION) or None
        _check_base_url(base_url, allow_insecure_http)
        _check_number("timeout", timeout, low=0.001, high=3600.0)
        _check_int("max_retries", max_retries, low=0, high=MAX_RETRIES_LIMIT)
        _check_int("max_concurrency", max_concurrency, low=1, high=MAX_CONCURRENCY_LIMIT)
        if requests_per_second is not None:
            _check_number("requests_per_second", requests_per_second, low=0.01, high=100_000.0)
        _check_number("retry_initial_delay", retry_initial_delay, low=0.0001, high=60.0)
        _check_number("retry_max_delay", retry_max_delay, low=retry_initial_delay, high=600.0)
        if not isinstance(cache, bool):
            raise ConfigurationError(f"cache must be True or False, not {cache!r}")
        if cache_dir is None:
            cache_dir = env.get(ENV_CACHE_DIR) or None
        if cache_dir is not None and not isinstance(cache_dir, (str, os.PathLike)):
            raise ConfigurationError(f"cache_dir must be a path, not {cache_dir!r}")
        folder = None if cache_dir is None else os.path.abspath(os.path.expanduser(os.fspath(cache_dir)))
        _check_number("final_after", final_after, low=0.0, high=10 * 365 * 86400.0)
        _check_int("cache_max_bytes", cache_max_bytes, low=0, high=1 << 50)
        return cls(
            api_key=Secret(api_key),
            base_url=base_url,
            organization=organization,
            project=project,
            api_version=api_version,
            timeout=float(timeout),
            max_retries=max_retries,
            max_concurrency=max_concurrency,
            requests_per_second=requests_per_second,
            http2=http2,
            both_ends=bool(both_ends),
            on_error=check_on_error(on_error),
            progress=check_progress(progress),
            api_key_source=source,
            retry_initial_delay=retry_initial_delay,
            retry_max_delay=retry_max_delay,
            cache=cache,
            cache_dir=folder,
            final_after=float(final_after),
            cache_max_bytes=cache_max_bytes,
        )

    def headers(self) -> dict[str, str]:
        """The headers every request carries, the key included: never log or print these."""
        headers = {
            "OpenAI-Beta": "assistants=v2",
            "Accept": "application/json",
            "User-Agent": user_agent(),
        }
        if self.api_version:
            headers["api-key"] = self.api_key.reveal()
        else:
            headers["Authorization"] = f"Bearer {self.api_key.reveal()}"
        if self.organization:
            headers["OpenAI-Organization"] = self.organization
        if self.project:
            headers["OpenAI-Project"] = self.project
        return headers

    def base_params(self) -> dict[str, str]:
        """Query parameters every request carries (Azure's api-version)."""
        return {"api-version": self.api_version} if self.api_version else {}

    def key_hint(self) -> str:
        """Where the key came from, for a 401's message."""
        if self.api_key_source == "api_key=":
            return "the api_key= argument"
        return f"the {ENV_API_KEY} environment variable (or pass api_key=)"


def user_agent() -> str:
    import duckdb

    return f"duckdb-openai/{__version__} (python {platform.python_version()}; duckdb {duckdb.__version__})"


def check_on_error(value: str) -> OnError:
    if value == "raise":
        return "raise"
    if value == "skip":
        return "skip"
    raise ConfigurationError(f"on_error must be 'raise' or 'skip', not {value!r}")


def check_progress(value: bool | str) -> Progress:
    if value is True or value == "on":
        return "on"
    if value is False or value == "off":
        return "off"
    if value == "auto":
        return "auto"
    raise ConfigurationError(f"progress must be True, False or 'auto', not {value!r}")


def _check_base_url(base_url: str, allow_insecure_http: bool) -> None:
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(
            f"base_url {base_url!r} is not an http(s) URL; use e.g. {DEFAULT_BASE_URL!r} or "
            "'http://127.0.0.1:PORT/v1' for the emulator"
        )
    if parts.query or parts.fragment:
        raise ConfigurationError(f"base_url {base_url!r} must not carry a query or fragment")
    if parts.scheme == "http" and not _is_loopback(parts.hostname) and not allow_insecure_http:
        raise ConfigurationError(
            f"base_url {base_url!r} would send the API key unencrypted to {parts.hostname}; use https://, "
            "or pass allow_insecure_http=True if the network is trusted"
        )


def _check_int(name: str, value: int, *, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigurationError(f"{name} must be a whole number from {low} to {high}, not {value!r}")


def _check_number(name: str, value: float, *, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ConfigurationError(f"{name} must be a number from {low} to {high}, not {value!r}")
