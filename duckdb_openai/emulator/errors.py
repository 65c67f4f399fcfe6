"""OpenAI-shaped error responses, worded like the real API's.

Every error the emulator sends has the body ``{"error": {"message", "type", "param",
"code"}}``::

    >>> json.loads(api_error(404, "No run found with id 'run_x'.").body)["error"]["type"]
    'invalid_request_error'
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

__all__ = [
    "ApiError",
    "api_error",
    "bad_beta",
    "bad_cursor",
    "bad_include",
    "bad_limit",
    "bad_object_cursor",
    "bad_order",
    "invalid_api_key",
    "mask_key",
    "method_not_allowed",
    "missing_api_key",
    "missing_api_version",
    "not_found_path",
    "rate_limited",
    "scripted_error",
]

_INTEGER = re.compile(r"-?[0-9]+")
_KEYS_URL = "https://platform.openai.com/account/api-keys"
_BETA_HINT = "Please try again by setting the header 'OpenAI-Beta: assistants=v2'."


@dataclass(frozen=True)
class ApiError:
    """An error response: status, JSON body bytes and any extra headers."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def api_error(
    status: int,
    message: str,
    *,
    type: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> ApiError:
    payload = {"error": {"message": message, "type": type, "param": param, "code": code}}
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    return ApiError(status, body, dict(headers or {}))


def mask_key(key: str) -> str:
    """Show a key the way OpenAI does in errors: a few characters at each end, never all of it."""
    if len(key) < 12:
        return key[:2] + "*" * 3
    return key[:5] + "*" * max(3, len(key) - 9) + key[-4:]


def missing_api_key() -> ApiError:
    return api_error(
        401,
        "You didn't provide an API key. You need to provide your API key in an Authorization header "
        "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank "
        "username) if you're accessing the API from your browser and are prompted for a username and "
        f"password. You can obtain an API key from {_KEYS_URL}.",
    )


def invalid_api_key(key: str) -> ApiError:
    return api_error(
        401,
        f"Incorrect API key provided: {mask_key(key)}. You can find your API key at {_KEYS_URL}.",
        code="invalid_api_key",
    )


def missing_api_version() -> ApiError:
    return api_error(
        400,
        "Missing required query parameter 'api-version': requests authenticated with an 'api-key' header "
        "(Azure OpenAI) must carry it, e.g. ?api-version=2024-10-21.",
        param="api-version",
        code="missing_required_parameter",
    )


def bad_beta(value: str | None) -> ApiError:
    if value is not None and "assistants=v1" in value:
        message = f"The v1 Assistants API has been deprecated. {_BETA_HINT}"
    else:
        message = f"You must provide the 'OpenAI-Beta' header to access the Assistants API. {_BETA_HINT}"
    return api_error(400, message, code="invalid_beta")


def bad_limit(raw: str, minimum: int, maximum: int) -> ApiError:
    value = int(raw) if _INTEGER.fullmatch(raw) else None
    if value is None:
        return api_error(
            400,
            f"Invalid type for 'limit': expected an integer, but got a string instead ({raw!r}).",
            param="limit",
            code="invalid_type",
        )
    if value < minimum:
        return api_error(
            400,
            f"Invalid 'limit': integer below minimum value. Expected a value >= {minimum}, "
            f"but got {value} instead.",
            param="limit",
            code="integer_below_min_value",
        )
    return api_error(
        400,
        f"Invalid 'limit': integer above maximum value. Expected a value <= {maximum}, "
        f"but got {value} instead.",
        param="limit",
        code="integer_above_max_value",
    )


def bad_order(raw: str) -> ApiError:
    return api_error(
        400,
        f"Invalid value: '{raw}'. Supported values are: 'asc' and 'desc'.",
        param="order",
        code="invalid_value",
    )


def bad_include(raw: str, index: int, supported: str) -> ApiError:
    return api_error(
        400,
        f"Invalid value: '{raw}'. Supported values are: '{supported}'.",
        param=f"include[{index}]",
        code="invalid_value",
    )


def bad_cursor(param: str, step_id: str, run_id: str) -> ApiError:
    return api_error(
        400,
        f"Invalid '{param}': no run step with id '{step_id}' exists in run '{run_id}'.",
        param=param,
        code="invalid_value",
    )


def bad_object_cursor(param: str, object_id: str, noun: str, where: str = "") -> ApiError:
    """A cursor that is not an object of the list: ``noun`` names the kind, ``where`` the list's owner
    (``"in thread 'thread_x'"``), if any."""
    place = f" {where}" if where else ""
    return api_error(
        400,
        f"Invalid '{param}': no {noun} with id '{object_id}' exists{place}.",
        param=param,
        code="invalid_value",
    )


def not_found_path(method: str, path: str) -> ApiError:
    return api_error(404, f"Invalid URL ({method} {path})")


def method_not_allowed(method: str, path: str) -> ApiError:
    return api_error(
        405,
        f"Method not allowed ({method} {path}); this endpoint supports GET.",
        headers={"allow": "GET, HEAD"},
    )


def rate_limited(limit: int, retry_after_ms: int) -> ApiError:
    seconds = retry_after_ms / 1000
    return api_error(
        429,
        f"Rate limit reached for requests in organization org-emulator on requests per second: "
        f"Limit {limit}, Used {limit}, Requested 1. Please try again in {seconds:.3g}s. "
        "Visit https://platform.openai.com/account/rate-limits to learn more.",
        type="requests",
        code="rate_limit_exceeded",
        headers={
            "retry-after": str(max(1, -(-retry_after_ms // 1000))),
            "retry-after-ms": str(retry_after_ms),
        },
    )


_SCRIPTED: dict[str, tuple[str, str, str | None]] = {
    "500": ("The server had an error while processing your request. Sorry about that!", "server_error", None),
    "502": ("Bad gateway.", "server_error", None),
    "503": ("The server is overloaded or not ready yet.", "server_error", None),
    "408": ("Request timed out.", "server_error", "timeout"),
    "409": (
        "The request conflicted with another request in progress. Please retry.",
        "server_error",
        "conflict",
    ),
}


def scripted_error(kind: str) -> ApiError:
    """The error an injected fault of this kind (``"500"``, ``"502"``, ...) answers with."""
    message, type_, code = _SCRIPTED[kind]
    return api_error(int(kind), message, type=type_, code=code)
