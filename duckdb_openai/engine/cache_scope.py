"""Whose data the cache holds: a name for a client's credential that cannot be turned back into it.

An entry is served only to the credential that fetched it. On disk, each base URL, organization, project
and credential identity has its own folder (`scope_of`); in memory, a client keeps the entries of the
identity it is sending requests as, and starts afresh when that identity changes.

- An API key is named by PBKDF2-HMAC-SHA256 of the key with a fixed package salt (`KEY_ROUNDS` rounds,
  about 30 ms, once per client with a `cache_dir`): the folder name is a hash of that, so checking a
  guessed key against it costs as much, and nothing in the folder holds the key.
- A token from `token_provider=` (Microsoft Entra ID) changes every hour, so it is named by the identity
  it names: its JWT claims `tid` and `oid` (a tenant and a user, managed identity or service principal),
  else `iss` and `sub`, else `iss` and `appid`. The claims are read without verifying the signature: the
  server verifies it, and the cache only needs a stable name for whom the server answered. A token that
  is not a JWT naming an identity has no stable name: its rows are kept in memory only, per token.

>>> token_identity(_jwt({"tid": "t1", "oid": "o1", "exp": 1}))
'tid=t1&oid=o1'
>>> token_identity("an-opaque-token") is None
True
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from urllib.parse import urlencode

__all__ = ["KEY_ROUNDS", "key_identity", "opaque_identity", "scope_of", "token_identity"]

#: PBKDF2 rounds for a key's name: slow enough that a folder name is no cheap test of a guessed key,
#: fast enough to be paid once per client (30 ms measured).
KEY_ROUNDS = 100_000
_KEY_SALT = b"duckdb-openai cache scope, v1"
#: Claims naming who a token speaks for, in order of preference (the first pair the token has).
_IDENTITY_CLAIMS = (("tid", "oid"), ("iss", "sub"), ("iss", "appid"))
#: A JWT larger than this is not read (a header value this large is not a token we can name).
_MAX_TOKEN_CHARS = 64 * 1024


def key_identity(key: str) -> str:
    """The name of an API key: `key:` and PBKDF2-HMAC-SHA256 of the key (hex)."""
    derived = hashlib.pbkdf2_hmac("sha256", key.encode(), _KEY_SALT, KEY_ROUNDS)
    return f"key:{derived.hex()}"


def token_identity(token: str) -> str | None:
    """The identity a JWT names (`tid=...&oid=...`), or None when the token is not a JWT naming one."""
    parts = token.split(".")
    if len(parts) != 3 or len(token) > _MAX_TOKEN_CHARS:
        return None
    payload = parts[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, binascii.Error, RecursionError):
        return None
    if not isinstance(claims, dict):
        return None
    for names in _IDENTITY_CLAIMS:
        values = [claims.get(name) for name in names]
        if all(isinstance(value, str) and value for value in values):
            return urlencode(list(zip(names, values, strict=True)))
    return None


def opaque_identity(token: str) -> str:
    """The name of a token that names no identity: a hash of the token (for the memory cache only)."""
    return f"token:{hashlib.sha256(token.encode()).hexdigest()}"


def scope_of(base_url: str, organization: str | None, project: str | None, identity: str) -> str:
    """The folder name of one credential's data at one API account: a hash of all four."""
    text = "\n".join([base_url.rstrip("/"), organization or "", project or "", identity])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _jwt(claims: dict[str, object]) -> str:
    """A token shaped like a JWT with these claims (for examples and tests; not signed)."""

    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none'})}.{part(claims)}.signature"
