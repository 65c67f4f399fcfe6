"""One error tree for everything the package raises.

::

    DuckDBOpenAIError
    ├── ConfigurationError          bad argument or environment: nothing was sent
    │   └── InvalidIdError          an id that could change the URL or is empty
    ├── APIError                    the API answered with an error status
    │   ├── BadRequestError         400
    │   ├── AuthenticationError     401
    │   ├── PermissionDeniedError   403
    │   ├── NotFoundError           404
    │   ├── RateLimitError          429 (after retries)
    │   └── ServerError             5xx (after retries)
    ├── APIConnectionError          no answer from the base URL
    │   └── APITimeoutError
    ├── ResponseFormatError         an answer that breaks the API contract
    └── FetchError                  one key of a fan-out failed; carries the resource, keys and cause
        └── RunFetchError           ... of run steps (thread_id, run_id)

Messages name the offending value and what to do about it. They never contain the API key: the key
lives only in request headers, every text taken from a response passes through `redact` (whole, before
it is cut), and no error keeps an exception that saw the request (its `__context__` and `__cause__`
hold only other errors of this tree).

Every error survives pickling with its attributes, so a failure inside a `concurrent.futures` or
`multiprocessing` worker reaches the parent as itself:

>>> import pickle
>>> error = pickle.loads(pickle.dumps(NotFoundError("not found (404)", status=404, code="x")))
>>> type(error).__name__, error.status, error.code, str(error)
('NotFoundError', 404, 'x', 'not found (404)')
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ConfigurationError",
    "DuckDBOpenAIError",
    "FetchError",
    "InvalidIdError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "ResponseFormatError",
    "RunFetchError",
    "ServerError",
    "api_error_for_status",
    "redact",
]

#: What a secret is replaced with in any text that can reach a user or a log.
REDACTED = "***"


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every occurrence of each secret replaced by `***`.

    >>> redact("Bearer sk-abc and sk-abc", ["sk-abc"])
    'Bearer *** and ***'
    """
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text


def _unpickle(cls: type[DuckDBOpenAIError], args: tuple[Any, ...], state: dict[str, Any]) -> Any:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class DuckDBOpenAIError(Exception):
    """The base of every error this package raises."""

    def __reduce__(self) -> tuple[Any, ...]:
        # Exception pickles as cls(*args), which subclasses with keyword-only arguments cannot take; a
        # 404 in a process pool then surfaced as BrokenProcessPool. Rebuild from args and attributes.
        return (_unpickle, (type(self), self.args, dict(self.__dict__)))


class ConfigurationError(DuckDBOpenAIError, ValueError):
    """An argument or environment variable is missing or wrong; no request was sent."""


class InvalidIdError(ConfigurationError):
    """An id is empty or holds characters that could change which URL is requested."""


class APIError(DuckDBOpenAIError):
    """The API answered with an error status.

    `status`, `type`, `code` and `param` come from the response; `message` is the API's own text.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.type = type
        self.code = code
        self.param = param
        self.request_id = request_id


class BadRequestError(APIError):
    """400: the API rejected the request's parameters."""


class AuthenticationError(APIError):
    """401: the API key was missing or rejected."""


class PermissionDeniedError(APIError):
    """403: the key may not read this resource."""


class NotFoundError(APIError):
    """404: the thread, run or step does not exist (for this key)."""


class RateLimitError(APIError):
    """429 that outlasted every retry."""


class ServerError(APIError):
    """5xx (or 408/409) that outlasted every retry."""


class APIConnectionError(DuckDBOpenAIError):
    """The base URL did not answer (refused, reset, DNS, TLS)."""

    def __init__(self, message: str, *, base_url: str) -> None:
        super().__init__(message)
        self.base_url = base_url


class APITimeoutError(APIConnectionError):
    """The base URL did not answer within the timeout."""


class ResponseFormatError(DuckDBOpenAIError):
    """A 200 answer whose body breaks the API's contract (not JSON, a cursor that does not advance)."""


class FetchError(DuckDBOpenAIError):
    """Fetching one list or item failed: names the resource (`runs`, `message`, ...) and its keys
    (thread_id, ...; the item's id for a retrieve), and keeps the cause.

    Raised the same way by every form (a table function's LATERAL row, a catalog table, a Python
    reader), as an instance of the cause's class too (`for_cause`): a missing run is a RunFetchError
    and a NotFoundError, so `except NotFoundError` and `except FetchError` both catch it, and `status`,
    `code` and the like are the cause's."""

    def __init__(
        self, message: str, *, resource: str, keys: dict[str, object], cause: DuckDBOpenAIError
    ) -> None:
        super().__init__(message)
        self.resource = resource
        self.keys = keys
        self.cause = cause

    @classmethod
    def for_cause(
        cls, message: str, *, resource: str, keys: dict[str, object], cause: DuckDBOpenAIError
    ) -> FetchError:
        """This error for `cause`, as an instance of both this class and the cause's class."""
        made = _combined(cls, type(cause))
        error = made.__new__(made)
        Exception.__init__(error, message)
        error.__dict__.update(cause.__dict__)  # status, code, param, base_url: the cause's
        if isinstance(error, APIError):
            error.message = message
        error.resource, error.keys, error.cause = resource, keys, cause
        return error

    def __reduce__(self) -> tuple[Any, ...]:
        fetch_class = getattr(type(self), "_fetch_class", type(self))
        cause_class = getattr(type(self), "_cause_class", None)
        return (_unpickle_fetch, (fetch_class, cause_class, self.args, dict(self.__dict__)))


_COMBINED: dict[tuple[type[FetchError], type[DuckDBOpenAIError]], type[FetchError]] = {}


def _combined(fetch_class: type[FetchError], cause_class: type[DuckDBOpenAIError]) -> type[FetchError]:
    """A class deriving from both, named as `fetch_class` (made once per pair)."""
    if issubclass(cause_class, FetchError) or cause_class is DuckDBOpenAIError:
        return fetch_class
    found = _COMBINED.get((fetch_class, cause_class))
    if found is None:
        namespace = {
            "__module__": fetch_class.__module__,
            "__qualname__": fetch_class.__qualname__,
            "__doc__": fetch_class.__doc__,
            "_fetch_class": fetch_class,
            "_cause_class": cause_class,
        }
        found = _COMBINED[(fetch_class, cause_class)] = type(
            fetch_class.__name__, (fetch_class, cause_class), namespace
        )
    return found


def _unpickle_fetch(
    fetch_class: type[FetchError],
    cause_class: type[DuckDBOpenAIError] | None,
    args: tuple[Any, ...],
    state: dict[str, Any],
) -> FetchError:
    made = fetch_class if cause_class is None else _combined(fetch_class, cause_class)
    error = made.__new__(made)
    error.args = args
    error.__dict__.update(state)
    return error


class RunFetchError(FetchError):
    """The run-steps case of FetchError: one run's steps failed (keys thread_id, run_id)."""

    @property
    def thread_id(self) -> object:
        return self.keys.get("thread_id")

    @property
    def run_id(self) -> object:
        return self.keys.get("run_id")


_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    429: RateLimitError,
}


def api_error_for_status(status: int) -> type[APIError]:
    """The APIError subclass for an HTTP status."""
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if status >= 500 or status in (408, 409):
        return ServerError
    return APIError
