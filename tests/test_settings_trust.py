"""Settings that would reach the wire broken are refused before anything is sent: header values
(organization, project) and api_version with a newline, a control or a non-ASCII character, a base_url
that cannot be parsed, that trusts a name as loopback, or that carries a password. Each case is tried
against a ScriptedServer on 127.0.0.1, which must get no request."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import duckdb_openai
from duckdb_openai import ConfigurationError
from duckdb_openai.config import Secret, Settings
from tests.helpers import KEY
from tests.netservers import RUN_ID, STEP, THREAD_ID
from tests.scripted import ScriptedServer

TRANSPORTS = [pytest.param(False, id="aiohttp"), pytest.param(True, id="httpx-http2")]
FAST = {"api_key": KEY, "retry_initial_delay": 0.01, "retry_max_delay": 0.05, "max_retries": 1}


@pytest.fixture(scope="module")
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer([(200, STEP)]) as s:
        yield s


def read_step(base_url: str, **settings: Any) -> Any:
    return duckdb_openai.read_run_step(
        THREAD_ID, RUN_ID, STEP["id"], base_url=base_url, **{**FAST, **settings}
    )


def refused(server: ScriptedServer, **settings: Any) -> str:
    """The ConfigurationError's message for `settings`, checking that nothing was sent."""
    before = len(server.requests)
    with pytest.raises(ConfigurationError) as info:
        read_step(server.base_url, **settings)
    assert len(server.requests) == before, "a request was sent"
    assert info.value.__context__ is None or isinstance(info.value.__context__, ConfigurationError)
    return str(info.value)


# -- header values and api_version ------------------------------------------------------------------------

SETTINGS = [
    pytest.param("organization", "OPENAI_ORG_ID", id="organization"),
    pytest.param("project", "OPENAI_PROJECT_ID", id="project"),
    pytest.param("api_version", "OPENAI_API_VERSION", id="api_version"),
]
#: (value, what the message says is in it). A trailing newline is what a secret file gives.
BAD_VALUES = [
    pytest.param("org-abc\n", "a newline", id="trailing-newline"),
    pytest.param("org-abc\r\nX-Injected: 1", "a carriage return", id="crlf"),
    pytest.param("org-abcé", "a non-ASCII character", id="non-ascii"),
    pytest.param("org-abc\x00", "a control character", id="nul"),
    pytest.param(" org-abc", "white space", id="leading-space"),
]


#: Each bad value from the keyword and from the environment (which cannot hold a NUL).
SOURCES = [
    pytest.param(*case.values, from_env, id=f"{'environment' if from_env else 'keyword'}-{case.id}")
    for case in BAD_VALUES
    for from_env in (False, True)
    if not (from_env and "\x00" in case.values[0])
]


@pytest.mark.parametrize(("value", "says", "from_env"), SOURCES)
@pytest.mark.parametrize(("setting", "env_name"), SETTINGS)
def test_a_value_no_request_can_carry_is_refused_naming_the_setting(
    server: ScriptedServer,
    setting: str,
    env_name: str,
    value: str,
    says: str,
    from_env: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Before: a raw ValueError on HTTP/1.1, six retries then "Illegal header value" on HTTP/2, a raw
    # UnicodeEncodeError for non-ASCII; api_version was sent percent-encoded, newline and all.
    for name in ("OPENAI_ORG_ID", "OPENAI_PROJECT_ID", "OPENAI_API_VERSION"):
        monkeypatch.delenv(name, raising=False)
    if from_env:
        monkeypatch.setenv(env_name, value)
        message = refused(server)
        assert f"from ${env_name}" in message, message
    else:
        message = refused(server, **{setting: value})
        assert f"from {setting}=" in message, message
    assert setting in message and env_name in message and repr(value) in message, message
    assert says in message, message
    if value.strip() != value and value.strip().isascii() and value.strip().isprintable():
        assert "strip" in message, message  # the fix, when the value is fine without its white space


@pytest.mark.parametrize("http2", TRANSPORTS)
def test_clean_header_values_are_sent(server: ScriptedServer, http2: bool) -> None:
    read_step(server.base_url, http2=http2, organization="org-abc", project="proj_1")
    assert server.requests[-1].headers["openai-organization"] == "org-abc"
    assert server.requests[-1].headers["openai-project"] == "proj_1"


def test_a_header_value_that_is_not_text_is_refused() -> None:
    with pytest.raises(ConfigurationError, match=r"organization must be a string, not 12"):
        Settings.resolve(api_key=KEY, organization=12)  # type: ignore[arg-type]


# -- base_url --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "base_url",
    [
        "http://127.0.0.1:99999/v1",
        "http://127.0.0.1:0/v1",
        "http://[::1/v1",
        "http://[::1]:70000/v1",
        "http://127.0.0.1:port/v1",
    ],
)
def test_a_base_url_that_cannot_be_parsed_is_a_configuration_error_naming_it(base_url: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        duckdb_openai.Client(api_key=KEY, base_url=base_url)
    assert repr(base_url) in str(info.value) and "base_url" in str(info.value)


def test_a_base_url_that_is_not_text_is_refused() -> None:
    with pytest.raises(ConfigurationError, match=r"base_url must be a URL string, not 8000"):
        Settings.resolve(api_key=KEY, base_url=8000)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "base_url",
    ["http://localhost:9/v1", "http://127.0.0.1:9/v1", "http://127.9.9.9:9/v1", "http://[::1]:9/v1"],
)
def test_loopback_addresses_and_localhost_take_plain_http(base_url: str) -> None:
    assert Settings.resolve(api_key=KEY, base_url=base_url).base_url == base_url


@pytest.mark.parametrize(
    "base_url", ["http://api.localhost:9/v1", "http://localhost.:9/v1", "http://evil.localhost/v1"]
)
def test_a_localhost_subdomain_is_not_trusted_as_loopback_by_its_name(base_url: str) -> None:
    # Only the name `localhost` and loopback addresses are trusted: a resolver may send another name
    # under .localhost to the network's DNS, which can answer with any address.
    with pytest.raises(ConfigurationError, match=r"unencrypted .*allow_insecure_http=True"):
        Settings.resolve(api_key=KEY, base_url=base_url)
    assert Settings.resolve(api_key=KEY, base_url=base_url, allow_insecure_http=True).base_url == base_url


# -- a base_url with user:password@ -----------------------------------------------------------------------

PASSWORD = "s3cr3t-pa55"


@pytest.mark.parametrize("http2", TRANSPORTS)
@pytest.mark.parametrize(
    "template",
    [
        "http://user:{pw}@{host}/v1",
        "http://{pw}@{host}/v1",  # a user name alone (a token pasted there)
        "http://user:pa/{pw}@{host}/v1",  # a '/' in the password ends the authority early
        "http://user:{pw}#x@{host}/v1",
        "http://user:{pw}?x@{host}/v1",
        "http://user:{pw}@[::1/v1",
        "https://user:{pw}@api.example.test/v1",
    ],
)
@pytest.mark.parametrize("from_env", [False, True], ids=["keyword", "environment"])
def test_a_base_url_with_credentials_is_refused_without_showing_them(
    server: ScriptedServer, http2: bool, template: str, from_env: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before: a raw error on HTTP/1.1, Basic auth sent instead of the key on HTTP/2, and the password in
    # repr(Settings), repr(Client) and connection errors.
    host = server.base_url.split("/")[2]
    base_url = template.format(pw=PASSWORD, host=host)
    before = len(server.requests)
    with pytest.raises(ConfigurationError) as info:
        if from_env:
            monkeypatch.setenv("OPENAI_BASE_URL", base_url)
            duckdb_openai.read_run_step(THREAD_ID, RUN_ID, STEP["id"], http2=http2, **FAST)
        else:
            read_step(base_url, http2=http2)
    assert len(server.requests) == before
    message = str(info.value)
    assert "user info" in message and "api_key=" in message, message
    assert "***@" in message, message  # where the credentials were, not what they are
    for text in (message, repr(info.value), repr(vars(info.value))):
        assert PASSWORD not in text and "s3cr3t" not in text
    assert info.value.__context__ is None and info.value.__cause__ is None


def test_settings_made_directly_refuse_a_base_url_with_credentials() -> None:
    with pytest.raises(ConfigurationError) as info:
        Settings(api_key=Secret(KEY), base_url=f"https://user:{PASSWORD}@api.example.test/v1")
    assert PASSWORD not in str(info.value)


@pytest.mark.parametrize("proxy", ["http://user:{pw}@[::1", "http://user:{pw}@127.0.0.1:99999"])
def test_a_proxy_that_cannot_be_parsed_is_refused_without_showing_its_password(proxy: str) -> None:
    with pytest.raises(ConfigurationError, match=r"is not a valid http\(s\):// URL") as info:
        Settings.resolve(api_key=KEY, proxy=proxy.format(pw=PASSWORD))
    assert PASSWORD not in str(info.value)


def test_http2_without_its_extra_is_a_configuration_error_before_anything_is_sent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "h2" else real(name, *a)
    )
    with pytest.raises(
        ConfigurationError, match=r"http2=True needs the h2 package: pip install 'duckdb-openai\[http2\]'"
    ):
        Settings.resolve(api_key="sk-test-0123456789", http2=True, env={})
    assert Settings.resolve(api_key="sk-test-0123456789", http2=False, env={}).http2 is False
