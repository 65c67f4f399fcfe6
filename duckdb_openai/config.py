"""Configuration: keyword arguments with environment fallbacks, read here and nowhere else.

>>> settings = Settings.resolve(api_key="sk-test", base_url="http://127.0.0.1:8000/v1")
>>> settings.base_url
'http://127.0.0.1:8000/v1'
>>> "sk-test" in repr(settings)
False
"""

from __future__ import annotations

import difflib
import inspect
import ipaddress
import os
import platform
import ssl
import urllib.request
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, NoReturn, TypeVar
from urllib.parse import urlsplit, urlunsplit

from duckdb_openai._version import __version__
from duckdb_openai.errors import ConfigurationError

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_CACHE_MAX_BYTES",
    "DEFAULT_FINAL_AFTER",
    "DEFAULT_MAX_CONCURRENCY",
    "DEFAULT_MAX_PAGES",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_MAX_WAIT",
    "DEFAULT_TIMEOUT",
    "OnError",
    "Progress",
    "Settings",
    "TokenProvider",
    "check_credential",
]

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_TIMEOUT = 60.0
#: Bulk workloads meet transient faults; the official SDK's default of 2 is too few for thousands of runs.
DEFAULT_MAX_RETRIES = 6
DEFAULT_MAX_CONCURRENCY = 32
#: Pages one list may request (both ends together): a million objects at 100 a page, far beyond a real
#: run, yet a server that says has_more=true forever is stopped before memory runs out.
DEFAULT_MAX_PAGES = 10_000
MAX_CONCURRENCY_LIMIT = 1024
MAX_RETRIES_LIMIT = 50
#: The longest wait a server may ask for (Retry-After, an empty rate-limit budget) that the client sits
#: out; a longer one fails at once, saying how long was asked. Minutes of silence look like a hang.
DEFAULT_MAX_WAIT = 60.0
#: The most a response may hold once decoded (decompressed). A page of 100 run steps with file-search
#: content is a few MB; this bounds memory against a server sending far more (or a gzip bomb).
DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024
#: The in-memory cache's bound: 1 GiB of Arrow data, least recently used dropped first.
DEFAULT_CACHE_MAX_BYTES = 1 << 30
#: A run whose steps are all terminal, the newest older than this when fetched, is assumed finished.
DEFAULT_FINAL_AFTER = 24 * 3600.0

ENV_API_KEY = "OPENAI_API_KEY"
ENV_BASE_URL = "OPENAI_BASE_URL"
ENV_ORGANIZATION = "OPENAI_ORG_ID"
ENV_PROJECT = "OPENAI_PROJECT_ID"
ENV_API_VERSION = "OPENAI_API_VERSION"
ENV_CA_FILE = "SSL_CERT_FILE"
ENV_CA_DIR = "SSL_CERT_DIR"
ENV_CACHE_DIR = "DUCKDB_OPENAI_CACHE_DIR"

OnError = Literal["raise", "skip"]
Progress = Literal["auto", "on", "off"]
#: token_provider=: returns a bearer token (Microsoft Entra ID and other OAuth servers); may be async.
TokenProvider = Callable[[], str | Awaitable[str]]
T = TypeVar("T")


class Secret(Generic[T]):
    """A value (a key; a token provider, whose credential caches tokens) that never shows itself in
    repr, str or f-strings, and is never pickled; `reveal()` is the only way out."""

    __slots__ = ("_value",)

    def __init__(self, value: T) -> None:
        self._value = value

    def reveal(self) -> T:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    # Pickling would write the value in clear (to a file, a process pool's pipe); refuse it, and say how
    # to give another process the key. Copies are the same immutable object.
    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        raise TypeError(
            "a Secret (an API key, a token provider or proxy credentials) cannot be pickled, so Settings "
            f"cannot be either: give the other process its key through {ENV_API_KEY} or api_key= (or its "
            "own token_provider=), and its own settings"
        )

    def __copy__(self) -> Secret[T]:
        return self

    def __deepcopy__(self, memo: Any) -> Secret[T]:
        return self


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

    #: The key, or None when `token_provider` gives bearer tokens instead (Requester asks it).
    api_key: Secret[str] | None = field(repr=False)
    token_provider: Secret[TokenProvider] | None = field(default=None, repr=False)
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
    #: Pages one list may request before it fails with ResponseFormatError (see DEFAULT_MAX_PAGES).
    max_pages: int = DEFAULT_MAX_PAGES
    on_error: OnError = "raise"
    progress: Progress = "auto"
    #: Where the key came from, for error messages ("api_key=", "$OPENAI_API_KEY", "token_provider=").
    api_key_source: str = "api_key="
    #: The shortest and longest pause between retries; tests shorten them, never to zero.
    retry_initial_delay: float = 0.5
    retry_max_delay: float = 8.0
    #: The longest server-requested wait (seconds) sat out; a longer one fails at once.
    max_wait: float = DEFAULT_MAX_WAIT
    #: The most a response may hold once decompressed; past it, ResponseFormatError.
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    #: The proxy every request to base_url goes through (from proxy= or the environment), or None.
    proxy: Secret[str] | None = field(default=None, repr=False)
    #: TLS: False (no verification), a caller's SSLContext, or True with the CA bundle or directory to
    #: trust (None: the system store plus certifi's bundle).
    verify: bool | ssl.SSLContext = True
    ca_file: str | None = None
    ca_dir: str | None = None
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
        token_provider: TokenProvider | None = None,
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
        max_pages: int = DEFAULT_MAX_PAGES,
        on_error: str = "raise",
        progress: bool | str = "auto",
        allow_insecure_http: bool = False,
        retry_initial_delay: float = 0.5,
        retry_max_delay: float = 8.0,
        max_wait: float = DEFAULT_MAX_WAIT,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        proxy: str | bool | None = None,
        verify: bool | str | ssl.SSLContext = True,
        cache: bool = True,
        cache_dir: str | os.PathLike[str] | None = None,
        final_after: float = DEFAULT_FINAL_AFTER,
        cache_max_bytes: int = DEFAULT_CACHE_MAX_BYTES,
        env: Mapping[str, str] | None = None,
        **unknown: Any,
    ) -> Settings:
        """Apply the environment fallbacks and validate; raises ConfigurationError naming the fix.

        `token_provider`: instead of api_key (never both), a callable returning a bearer token, such as
        azure-identity's `get_bearer_token_provider(credential, scope)`; the client asks it as
        `Requester` describes. Neither given: the key is $OPENAI_API_KEY.
        `proxy`: a proxy URL; None (the default) takes HTTPS_PROXY / HTTP_PROXY / ALL_PROXY and NO_PROXY
        from the environment, as httpx and the openai SDK do; False uses no proxy. `verify`: True (the
        default) trusts SSL_CERT_FILE / SSL_CERT_DIR when set, else the system store and certifi's
        bundle; a path trusts that CA bundle (file) or directory; an `ssl.SSLContext` is used as is;
        False turns verification off.
        """
        if unknown:
            _unknown_keyword(sorted(unknown))
        env = os.environ if env is None else env
        source = "api_key="
        if token_provider is not None:
            if api_key is not None:
                raise ConfigurationError(
                    "pass api_key= or token_provider=, not both: a key, or a callable returning bearer "
                    "tokens (Microsoft Entra ID)"
                )
            if not callable(token_provider):
                raise ConfigurationError(
                    "token_provider must be a callable returning a token string, such as "
                    "azure.identity.get_bearer_token_provider(credential, scope), not a "
                    f"{type(token_provider).__name__}; pass a fixed key as api_key="
                )
            source = "token_provider="
        else:
            if api_key is None:
                api_key = env.get(ENV_API_KEY)
                source = f"${ENV_API_KEY}"
            if not api_key:
                raise ConfigurationError(
                    f"no API key: pass api_key= (or token_provider= for Microsoft Entra ID) to register() / "
                    f"Client() / read_run_steps(), or set the {ENV_API_KEY} environment variable"
                )
            check_credential(api_key, f"the API key from {source}")
        base_url = (base_url or env.get(ENV_BASE_URL) or DEFAULT_BASE_URL).rstrip("/")
        organization = organization or env.get(ENV_ORGANIZATION) or None
        project = project or env.get(ENV_PROJECT) or None
        api_version = api_version or env.get(ENV_API_VERSION) or None
        _check_base_url(base_url, allow_insecure_http)
        _check_number("timeout", timeout, low=0.001, high=3600.0)
        _check_int("max_retries", max_retries, low=0, high=MAX_RETRIES_LIMIT)
        _check_int("max_concurrency", max_concurrency, low=1, high=MAX_CONCURRENCY_LIMIT)
        _check_int("max_pages", max_pages, low=1, high=10**9)
        if requests_per_second is not None:
            _check_number("requests_per_second", requests_per_second, low=0.01, high=100_000.0)
        _check_number("retry_initial_delay", retry_initial_delay, low=0.0001, high=60.0)
        _check_number("retry_max_delay", retry_max_delay, low=retry_initial_delay, high=600.0)
        _check_number("max_wait", max_wait, low=0.0, high=86_400.0)
        _check_int("max_response_bytes", max_response_bytes, low=1024, high=2**40)
        ca_file, ca_dir, verify_mode = _resolve_verify(verify, env, base_url)
        if not isinstance(cache, bool):
            raise ConfigurationError(f"cache must be True or False, not {cache!r}")
        folder = _cache_folder(env.get(ENV_CACHE_DIR) if cache_dir is None else cache_dir)
        _check_number("final_after", final_after, low=0.0, high=10 * 365 * 86400.0)
        _check_int("cache_max_bytes", cache_max_bytes, low=0, high=1 << 50)
        return cls(
            api_key=None if api_key is None else Secret(api_key),
            token_provider=None if token_provider is None else Secret(token_provider),
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
            max_pages=max_pages,
            on_error=check_on_error(on_error),
            progress=check_progress(progress),
            api_key_source=source,
            retry_initial_delay=retry_initial_delay,
            retry_max_delay=retry_max_delay,
            max_wait=float(max_wait),
            max_response_bytes=max_response_bytes,
            proxy=_resolve_proxy(proxy, env, base_url),
            verify=verify_mode,
            ca_file=ca_file,
            ca_dir=ca_dir,
            cache=cache,
            cache_dir=folder,
            final_after=float(final_after),
            cache_max_bytes=cache_max_bytes,
        )

    @classmethod
    def names(cls) -> list[str]:
        """The keyword arguments `resolve` takes (what Client, register and read_* accept)."""
        parameters = inspect.signature(cls.resolve).parameters
        return [name for name, p in parameters.items() if p.kind is p.KEYWORD_ONLY and name != "env"]

    def secrets(self) -> list[str]:
        """Every secret text these settings hold (the key; a proxy URL and its credentials), for `redact`;
        Requester adds the tokens it was given."""
        found = [] if self.api_key is None else [self.api_key.reveal()]
        if self.proxy is not None:
            url = self.proxy.reveal()
            parts = urlsplit(url)
            # The password alone too (a server may echo it decoded); not a short one, which would cut
            # random letters out of every message.
            password = parts.password or ""
            found += [url, parts.netloc] + ([password] if len(password) >= 4 else [])
        return found

    def proxy_display(self) -> str | None:
        """The proxy URL without its credentials, for messages."""
        return None if self.proxy is None else _without_credentials(self.proxy.reveal())

    def headers(self) -> dict[str, str]:
        """The headers every request carries, the key included: never log or print these. With
        token_provider=, Requester adds `Authorization: Bearer <token>` to each request (Azure's
        api_version form too: a key goes in `api-key`, a token in Authorization)."""
        headers = {
            "OpenAI-Beta": "assistants=v2",
            "Accept": "application/json",
            "User-Agent": user_agent(),
        }
        if self.api_key is not None and self.api_version:
            headers["api-key"] = self.api_key.reveal()
        elif self.api_key is not None:
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
            f"base_url {base_url!r} would send the API key (or token) unencrypted to {parts.hostname}; use "
            "https://, or pass allow_insecure_http=True if the network is trusted"
        )


def _unknown_keyword(names: list[str]) -> NoReturn:
    valid = Settings.names()
    name = names[0]
    close = difflib.get_close_matches(name, valid, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise ConfigurationError(
        f"unknown setting {name!r}: {hint}the settings are {', '.join(valid)}"
        + (f" (also unknown: {', '.join(map(repr, names[1:]))})" if names[1:] else "")
    )


def check_credential(value: str, what: str) -> None:
    """Refuse a key or token (`what` says which, never the value) that is not visible ASCII."""
    # A header value must be visible ASCII; anything else is refused here, before it could reach a
    # socket or an error text (over HTTP/2, h2 put the whole header into its exception's message).
    for position, ch in enumerate(value):
        if ch.isspace():
            raise ConfigurationError(
                f"{what} contains white space (at position {position}); check how it was set"
            )
        if not "!" <= ch <= "~":
            raise ConfigurationError(
                f"{what} contains a control or non-ASCII character (at position {position}); check how "
                "it was set"
            )


def _cache_folder(value: object) -> str | None:
    """cache_dir as an absolute path; None (memory) when unset or empty, for the argument as for
    $DUCKDB_OPENAI_CACHE_DIR (an empty path would be the working directory)."""
    if value is None or value == "":
        return None
    if not isinstance(value, (str, os.PathLike)) or not isinstance(os.fspath(value), str):
        raise ConfigurationError(f"cache_dir must be a path (str or pathlib.Path), not {value!r}")
    text = os.fspath(value)
    if "\x00" in text:
        raise ConfigurationError(f"cache_dir {value!r} contains a NUL character, which no path can hold")
    try:
        os.fsencode(text)
    except UnicodeEncodeError as exc:
        raise ConfigurationError(
            f"cache_dir {value!r} has a character the file system cannot name ({exc.reason} at position "
            f"{exc.start}); pass the folder's real path"
        ) from None
    return os.path.abspath(os.path.expanduser(text))


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _env(env: Mapping[str, str], name: str) -> str | None:
    # Lower case first, as curl and urllib read them.
    return env.get(name.lower()) or env.get(name.upper()) or None


def _resolve_proxy(proxy: str | bool | None, env: Mapping[str, str], base_url: str) -> Secret[str] | None:
    """The proxy for base_url: the argument, else the environment's for its scheme unless NO_PROXY
    names its host. A client only ever talks to base_url's host, so this is decided once, here."""
    if proxy is False:
        return None
    if proxy is True or proxy is None:
        target = urlsplit(base_url)
        chosen = _env(env, f"{target.scheme}_proxy") or _env(env, "all_proxy")
        if not chosen:
            return None
        no_proxy = _env(env, "no_proxy")
        host = target.hostname or ""
        # The standard library's NO_PROXY matching (host suffixes, ports, "*"), given our env mapping.
        if no_proxy and urllib.request.proxy_bypass_environment(  # type: ignore[attr-defined]
            f"{host}:{target.port}" if target.port else host, {"no": no_proxy}
        ):
            return None
        origin = "the environment's proxy variable"
        proxy = chosen
    elif isinstance(proxy, str):
        origin = "proxy="
    else:
        raise ConfigurationError(f"proxy must be a URL, None or False, not {type(proxy).__name__}")
    if "://" not in proxy:  # curl and httpx read a bare host:port as an http:// proxy
        proxy = "http://" + proxy
    parts = urlsplit(proxy)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(
            f"the proxy from {origin} ({_without_credentials(proxy)!r}) is not an http(s):// URL, "
            "e.g. 'http://proxy.example:3128'"
        )
    return Secret(proxy)


def _resolve_verify(
    verify: bool | str | ssl.SSLContext, env: Mapping[str, str], base_url: str
) -> tuple[str | None, str | None, bool | ssl.SSLContext]:
    """(CA file, CA directory, verify) for the transports."""
    if isinstance(verify, ssl.SSLContext) or verify is False:
        return None, None, verify
    if verify is True:
        ca_file, ca_dir = env.get(ENV_CA_FILE) or None, env.get(ENV_CA_DIR) or None
        origin_file, origin_dir = f"${ENV_CA_FILE}", f"${ENV_CA_DIR}"
    elif isinstance(verify, (str, os.PathLike)):
        path = os.fspath(verify)
        ca_file, ca_dir = (None, path) if os.path.isdir(path) else (path, None)
        origin_file = origin_dir = "verify="
    else:
        raise ConfigurationError(
            f"verify must be True, False, a CA bundle path or an ssl.SSLContext, not {verify!r}"
        )
    # Only an https base URL uses them; a stale variable must not break the emulator over http.
    if urlsplit(base_url).scheme == "https":
        if ca_file is not None and not os.path.isfile(ca_file):
            raise ConfigurationError(f"the CA bundle {ca_file!r} from {origin_file} is not a file")
        if ca_dir is not None and not os.path.isdir(ca_dir):
            raise ConfigurationError(f"the CA directory {ca_dir!r} from {origin_dir} is not a directory")
    return ca_file, ca_dir, True


def _check_int(name: str, value: int, *, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigurationError(f"{name} must be a whole number from {low} to {high}, not {value!r}")


def _check_number(name: str, value: float, *, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ConfigurationError(f"{name} must be a number from {low} to {high}, not {value!r}")
