"""Configuration: keyword arguments with environment fallbacks, read here and nowhere else.

>>> settings = Settings.resolve(api_key="sk-test", base_url="http://127.0.0.1:8000/v1")
>>> settings.base_url
'http://127.0.0.1:8000/v1'
>>> "sk-test" in repr(settings)
False
"""

from __future__ import annotations

import difflib
import importlib.util
import inspect
import ipaddress
import os
import platform
import ssl
import urllib.request
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, NoReturn, TypeVar
from urllib.parse import urlsplit

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
ENV_ADMIN_KEY = "OPENAI_ADMIN_KEY"
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
    """Whether `host` (a URL's hostname) surely means this machine: a loopback address, or the name
    `localhost`, which resolvers answer from the hosts file. Another name under `.localhost` is not
    trusted by its name: a resolver may send it to the network's DNS, which can answer any address."""
    if host == "localhost":
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
    #: The organization's admin key, sent to the organization's endpoints only (usage, costs, audit logs).
    admin_key: Secret[str] | None = field(default=None, repr=False)
    #: Where the admin key came from, for error messages ("admin_key=", "$OPENAI_ADMIN_KEY").
    admin_key_source: str = "admin_key="
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

    def __post_init__(self) -> None:
        # However the settings are made (resolve, or directly for Client(settings=)), a password in
        # base_url would show in their repr, the client's and every connection error: never hold one.
        _check_no_user_info(self.base_url)

    @classmethod
    def resolve(
        cls,
        *,
        api_key: str | None = None,
        token_provider: TokenProvider | None = None,
        admin_key: str | None = None,
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
        admin_source = "admin_key="
        if admin_key is None:
            admin_key = env.get(ENV_ADMIN_KEY) or None
            admin_source = f"${ENV_ADMIN_KEY}"
        if admin_key is not None:
            if not isinstance(admin_key, str) or not admin_key:
                raise ConfigurationError(f"admin_key must be a non-empty text (from {admin_source})")
            check_credential(admin_key, f"the admin key from {admin_source}")
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
            if not api_key and admin_key is not None:
                api_key = None  # an admin key alone reads the organization's endpoints
                source = "none"
            elif not api_key:
                raise ConfigurationError(
                    f"no API key: pass api_key= (or token_provider= for Microsoft Entra ID) to register() / "
                    f"Client() / read_run_steps(), or set the {ENV_API_KEY} environment variable"
                )
            else:
                check_credential(api_key, f"the API key from {source}")
        base_url = _setting("base_url", base_url, env, ENV_BASE_URL) or DEFAULT_BASE_URL
        _check_base_url(base_url, allow_insecure_http)
        base_url = base_url.rstrip("/")
        organization = _setting("organization", organization, env, ENV_ORGANIZATION)
        project = _setting("project", project, env, ENV_PROJECT)
        api_version = _setting("api_version", api_version, env, ENV_API_VERSION)
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
            admin_key=None if admin_key is None else Secret(admin_key),
            admin_key_source=admin_source,
            base_url=base_url,
            organization=organization,
            project=project,
            api_version=api_version,
            timeout=float(timeout),
            max_retries=max_retries,
            max_concurrency=max_concurrency,
            requests_per_second=requests_per_second,
            http2=_check_http2(http2),
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
        found = [s.reveal() for s in (self.api_key, self.admin_key) if s is not None]
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
        """The headers every request carries, whatever its family: no credential (`credential_headers`
        gives the one a family's request is sent with) and no family's own headers."""
        headers = {"Accept": "application/json", "User-Agent": user_agent()}
        if self.organization:
            headers["OpenAI-Organization"] = self.organization
        if self.project:
            headers["OpenAI-Project"] = self.project
        return headers

    def check_credential(self, kind: str) -> None:
        """Raise ConfigurationError, before anything is sent, when the credential a family's requests
        need (`Family.credential`: 'api_key' or 'admin_key') was not given."""
        if kind == "admin_key" and self.admin_key is None:
            raise ConfigurationError(
                "the organization's endpoints (usage, costs, audit logs, projects, users) need an admin "
                f"key: pass admin_key= to register() / Client(), or set {ENV_ADMIN_KEY}; the project key "
                "is never sent to them"
            )
        if kind == "api_key" and self.api_key is None and self.token_provider is None:
            raise ConfigurationError(
                f"no API key: pass api_key= (or token_provider= for Microsoft Entra ID) to register() / "
                f"Client() / read_run_steps(), or set the {ENV_API_KEY} environment variable (the admin "
                "key is sent to the organization's endpoints only)"
            )

    def credential_headers(self, kind: str) -> dict[str, str]:
        """The credential a family's requests carry (the key included: never log or print these). With
        token_provider=, Requester adds `Authorization: Bearer <token>` to each request instead (Azure's
        api_version form too: a key goes in `api-key`, a token in Authorization)."""
        if kind == "admin_key":
            assert self.admin_key is not None
            return {"Authorization": f"Bearer {self.admin_key.reveal()}"}
        if self.api_key is None:
            return {}
        if self.api_version:
            return {"api-key": self.api_key.reveal()}
        return {"Authorization": f"Bearer {self.api_key.reveal()}"}

    def base_params(self) -> dict[str, str]:
        """Query parameters every request carries (Azure's api-version)."""
        return {"api-version": self.api_version} if self.api_version else {}

    def key_hint(self, kind: str = "api_key") -> str:
        """Where the key (or with 'admin_key', the admin key) came from, for a 401's message."""
        if kind == "admin_key":
            if self.admin_key_source == "admin_key=":
                return "the admin_key= argument"
            return f"the {ENV_ADMIN_KEY} environment variable (or pass admin_key=)"
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
    if value is True or value in ("on", "true"):
        return "on"
    if value is False or value in ("off", "false"):
        return "off"
    if value == "auto":
        return "auto"
    raise ConfigurationError(f"progress must be True, False or 'auto', not {value!r}")


def _setting(name: str, value: str | None, env: Mapping[str, str], env_name: str) -> str | None:
    """A text setting: the keyword, else its environment variable, else None; checked to be text the
    request can carry as it is (a header value, a query parameter, the base URL): visible ASCII."""
    origin = f"{name}="
    if value is None or value == "":
        value, origin = env.get(env_name) or None, f"${env_name}"
    if value is None:
        return None
    if not isinstance(value, str):
        what = "a URL string" if name == "base_url" else "a string"
        raise ConfigurationError(f"{name} must be {what}, not {value!r}")
    # A header value or query parameter must be visible ASCII; a base URL may hold an international
    # domain name, which the transports encode, but no white space or control character.
    ascii_only = name != "base_url"
    found = _first_invisible(value, ascii_only=ascii_only)
    if found is not None:
        position, what = found
        # A value that is fine once stripped is what a secret file or `echo` into a variable gives.
        stripped = value.strip()
        if stripped == value or _first_invisible(stripped, ascii_only=ascii_only) is not None:
            fix = f"{name} must be visible {'ASCII' if ascii_only else 'text'}"
        elif value.rstrip(" \t") != value.rstrip():
            fix = "strip the trailing newline (a value read from a file keeps it: use .strip())"
        else:
            fix = "strip the surrounding white space (use .strip())"
        shown = _without_credentials(value, mark="***@") if name == "base_url" else value
        raise ConfigurationError(
            f"{name} {shown!r} (from {origin}) holds {what} at position {position}, which a request "
            f"cannot carry; {fix}. It is set with {name}= or the {env_name} environment variable"
        )
    return value


def _check_no_user_info(base_url: str) -> None:
    # By text, not urlsplit: a password holding '/', '?' or '#' ends the URL's authority early, and
    # an unparsable URL (`[::1`) must not be shown with its password either.
    if "@" in base_url:
        raise ConfigurationError(
            f"base_url {_without_credentials(base_url, mark='***@')!r} holds user info (user:password@ "
            "before the host), which would be sent instead of the API key and shown in messages: remove "
            f"it from base_url= / {ENV_BASE_URL}, and pass the key as api_key= (or {ENV_API_KEY})"
        )


def _check_base_url(base_url: str, allow_insecure_http: bool) -> None:
    _check_no_user_info(base_url)
    try:
        parts = urlsplit(base_url)
        port = parts.port
    except ValueError as exc:  # an unclosed `[`, a port that is no number or past 65535
        problem = str(exc)
    else:
        problem = "port 0 cannot be connected to" if port == 0 else ""
    if problem:
        raise ConfigurationError(
            f"base_url {base_url!r} is not a valid URL ({problem}); use e.g. {DEFAULT_BASE_URL!r} or "
            "'http://127.0.0.1:PORT/v1' for the emulator"
        )
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
            "https://, or pass allow_insecure_http=True if the network is trusted (plain http is taken "
            "without it only by loopback addresses and the name localhost)"
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


def _first_invisible(value: str, *, ascii_only: bool = True) -> tuple[int, str] | None:
    """The position of the first character of `value` that is not visible ASCII (with `ascii_only`
    False: not visible), and what it is."""
    for position, ch in enumerate(value):
        if "!" <= ch <= "~" or (not ascii_only and ch.isprintable() and not ch.isspace()):
            continue
        if ch == "\n":
            return position, "a newline"
        if ch == "\r":
            return position, "a carriage return"
        if ch.isspace():
            return position, "white space"
        return position, "a non-ASCII character" if ord(ch) > 0x7F else "a control character"
    return None


def check_credential(value: str, what: str) -> None:
    """Refuse a key or token (`what` says which, never the value) that is not visible ASCII."""
    # A header value must be visible ASCII; anything else is refused here, before it could reach a
    # socket or an error text (over HTTP/2, h2 put the whole header into its exception's message).
    found = _first_invisible(value)
    if found is None:
        return
    position, kind = found
    if kind in ("a newline", "a carriage return", "white space"):
        raise ConfigurationError(
            f"{what} contains white space (at position {position}); check how it was set"
        )
    raise ConfigurationError(
        f"{what} contains a control or non-ASCII character (at position {position}); check how it was set"
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


def _without_credentials(url: str, mark: str = "") -> str:
    """`url` without its user info (`user:password@`), replaced by `mark`. By text: everything between
    `://` and the last `@` goes, so a URL too broken to parse is shown safely too."""
    scheme, separator, rest = url.partition("://")
    if not separator:
        scheme, rest = "", url
    if "@" not in rest:
        return url
    return scheme + separator + mark + rest[rest.rindex("@") + 1 :]


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
    try:
        parts = urlsplit(proxy)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:  # an unclosed `[`, a port that is no number or past 65535
        valid = False
    if not valid:
        raise ConfigurationError(
            f"the proxy from {origin} ({_without_credentials(proxy)!r}) is not a valid http(s):// URL, "
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


def _check_http2(http2: object) -> bool:
    """http2 as a bool; ConfigurationError, before anything is sent, when HTTP/2 is asked for without
    the `h2` package (the `[http2]` extra) that httpx needs for it."""
    if not isinstance(http2, bool):
        raise ConfigurationError(f"http2 must be True or False, not {http2!r}")
    if http2 and importlib.util.find_spec("h2") is None:
        raise ConfigurationError(
            "http2=True needs the h2 package: pip install 'duckdb-openai[http2]' (or pass http2=False)"
        )
    return http2


def _check_int(name: str, value: int, *, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigurationError(f"{name} must be a whole number from {low} to {high}, not {value!r}")


def _check_number(name: str, value: float, *, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ConfigurationError(f"{name} must be a number from {low} to {high}, not {value!r}")
