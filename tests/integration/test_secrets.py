"""No secret, neither a Tollgate key nor a provider credential, ever appears in the gateway's logs or in
the error bodies it writes, whatever happens to the request."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from scripts.fake_upstream import FakeUpstream
from tests.integration.conftest import CREDENTIALS, World
from tests.support.gateway import GatewayHarness, wait_until
from tests.support.postgres import (
    postgres_admin_url,
    require_postgres,
    set_connections_allowed,
    temporary_database,
)

CANARY_CREDENTIAL = "sk-CANARY-credential-6b1f0e"
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def test_canary_key_and_credential_never_reach_logs_or_error_bodies(world: World) -> None:
    gateway = world.gateway
    gateway.cli("tenant", "create", "canary")
    stored = gateway.cli(
        "credential", "set", "--tenant", "canary", "--provider", "openai", stdin=CANARY_CREDENTIAL
    )
    gateway.cli("credential", "set", "--tenant", "canary", "--provider", "dead", stdin=CANARY_CREDENTIAL)
    key = gateway.create_key("canary", "--label", "canary")
    revoked = gateway.create_key("canary", "--label", "canary revoked")
    gateway.cli("key", "revoke", gateway.key_id(revoked))
    bearer = {"authorization": f"Bearer {key}"}
    url = world.url

    bodies = [
        httpx.post(f"{url}/openai/v1/chat/completions", json=CHAT, headers=bearer),
        httpx.post(
            f"{url}/openai/v1/chat/completions", json=CHAT, headers={**bearer, "x-fake-status": "500"}
        ),
        httpx.post(f"{url}/openai/v1/chat/completions?key={key}", json=CHAT),
        httpx.post(f"{url}/gemini/v1beta/models/g:generateContent?key={key}", json={}),
        httpx.post(f"{url}/anthropic/v1/messages", json={}, headers={"x-api-key": key}),
        httpx.post(f"{url}/dead/v1/chat/completions", json=CHAT, headers=bearer),
        httpx.post(
            f"{url}/openai/v1/chat/completions", json=CHAT, headers={"authorization": f"Bearer {revoked}"}
        ),
        httpx.post(
            f"{url}/openai/v1/chat/completions",
            json=CHAT,
            headers={"authorization": f"Bearer {CANARY_CREDENTIAL}"},
        ),
        httpx.get(f"{url}/openai/v1/%2f%2e%2e/x?key={key}", headers=bearer),
        httpx.post(f"{url}/openai/v1/chat/completions", content=b"x" * 70_000, headers=bearer),
    ]
    # each access-log line is written a moment after its response: wait for every one of them
    request_ids = {response.headers["x-request-id"] for response in bodies}
    wait_until(lambda: request_ids <= {record["request_id"] for record in gateway.access_records()})

    statuses = [response.status_code for response in bodies]
    assert statuses == [200, 500, 200, 403, 403, 502, 401, 401, 400, 413]
    for response in bodies[1:]:
        assert key not in response.text
        assert CANARY_CREDENTIAL not in response.text
    logs = gateway.logs()
    assert "tollgate.access" in logs
    assert key not in logs and revoked not in logs
    assert CANARY_CREDENTIAL not in logs
    assert CANARY_CREDENTIAL not in stored.stdout + stored.stderr
    listing = gateway.cli("key", "list").stdout + gateway.cli("credential", "list", "--json").stdout
    assert key not in listing and CANARY_CREDENTIAL not in listing


def test_an_upstream_that_echoes_the_request_never_hands_the_provider_credential_to_the_caller(
    world: World,
) -> None:
    gateway = world.gateway
    gateway.cli("tenant", "create", "echoed")
    gateway.cli("credential", "set", "--tenant", "echoed", "--provider", "openai", stdin=CANARY_CREDENTIAL)
    gateway.cli("credential", "set", "--tenant", "echoed", "--provider", "anthropic", stdin=CANARY_CREDENTIAL)
    key = gateway.create_key("echoed", "--label", "echoed")
    echo = {"authorization": f"Bearer {key}", "x-fake-echo-headers": "1"}
    message = {"model": "claude-haiku-4-5", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}

    responses = [
        httpx.post(
            f"{world.url}/openai/v1/chat/completions", json=CHAT, headers={**echo, "x-fake-status": "401"}
        ),
        httpx.post(
            f"{world.url}/anthropic/v1/messages", json=message, headers={**echo, "x-fake-status": "500"}
        ),
        httpx.post(
            f"{world.url}/openai/v1/chat/completions",
            json=CHAT,
            headers={**echo, "x-fake-redirect": "https://elsewhere.example/"},
        ),
    ]

    assert [response.status_code for response in responses] == [401, 500, 302]
    assert "you sent" in responses[0].text and "[redacted]" in responses[0].text  # echoed, then cleaned
    for response in responses:
        assert CANARY_CREDENTIAL not in response.text
        assert all(CANARY_CREDENTIAL not in value for value in response.headers.values())
        assert key not in response.text  # never sent upstream in the first place


PRESENTATIONS = {  # where a provider reads its credential: the caller's own goes in each, the gateway's wins
    "openai": ("authorization", "Bearer {}"),
    "anthropic": ("x-api-key", "{}"),
    "gemini": ("x-goog-api-key", "{}"),
    "azure": ("api-key", "{}"),
}
PATHS = {
    "openai": "/openai/v1/chat/completions",
    "anthropic": "/anthropic/v1/messages",
    "gemini": "/gemini/v1beta/models/gemini-2.5-flash:generateContent",
    "azure": "/azure/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21",
}


def test_a_key_sent_in_every_place_at_once_never_reaches_the_provider_and_only_the_tenants_credential_does(
    fresh: World,
) -> None:
    key = fresh.keys["acme"]
    callers_own = "sk-callers-own-0009"
    headers = {
        "authorization": f"Bearer {key}",
        "x-api-key": key,
        "x-goog-api-key": key,
        "api-key": callers_own,
        "proxy-authorization": f"Bearer {key}",
        "cookie": f"session={key}",
    }

    statuses = {}
    for provider, path in PATHS.items():
        joiner = "&" if "?" in path else "?"
        url = f"{fresh.url}{path}{joiner}key={key}&KEY={key}&Key={key}&alt=json"
        statuses[provider] = httpx.post(url, json=CHAT, headers=headers).status_code

    assert statuses == {provider: 200 for provider in PATHS}
    requests = fresh.upstream.requests
    assert len(requests) == len(PATHS)
    for request, provider in zip(requests, PATHS, strict=True):
        assert key not in request.target
        assert "alt=json" in request.query
        assert all(key not in value for _, value in request.headers)
        assert callers_own not in str(request.headers)
        header, scheme = PRESENTATIONS[provider]
        expected = scheme.format(CREDENTIALS[("acme", provider)])
        assert [value for name, value in request.headers if name == header] == [expected]


def test_a_bearer_token_of_the_clients_own_beside_the_tollgate_key_neither_hides_the_key_nor_goes_upstream(
    fresh: World,
) -> None:
    key = fresh.keys["acme"]
    own_token = "sk-ant-oat01-callers-own-0010"  # e.g. added by a tool's custom headers
    headers = {"authorization": f"Bearer {own_token}", "x-api-key": key}

    response = httpx.post(fresh.url + PATHS["anthropic"], json=CHAT, headers=headers)

    assert response.status_code == 200
    [request] = fresh.upstream.requests
    assert all(key not in value and own_token not in value for _, value in request.headers)
    assert request.header("x-api-key") == CREDENTIALS[("acme", "anthropic")]


DATABASE_PASSWORD = "pg-CANARY-password-41d7"  # the test server trusts every login: any password will do


@pytest.fixture
def database_url() -> Iterator[str]:
    """A PostgreSQL database of this test's own, its URL holding a password, dropped afterwards."""
    admin = postgres_admin_url()
    require_postgres(admin)
    with temporary_database(admin, migrated=False) as url:
        yield make_url(url).set(password=DATABASE_PASSWORD).render_as_string(hide_password=False)


@pytest.mark.postgres
def test_no_secret_is_written_when_the_provider_refuses_the_credential_or_the_database_goes_down(
    database_url: str, upstream: FakeUpstream, tmp_path: Path
) -> None:
    gateway = GatewayHarness(
        tmp_path,
        {"openai": {"type": "openai", "base_url": upstream.url + "/v1"}},
        database_url=database_url,
        overrides={
            "auth": {"key_cache_ttl_seconds": 0.2},
            "credentials": {"cache_ttl_seconds": 0.2},
            "metering": {"shutdown_grace_seconds": 0.5},  # the ledger cannot be written: do not wait on it
        },
    )
    outputs = [gateway.cli("db", "upgrade"), gateway.cli("tenant", "create", "acme")]
    outputs.append(
        gateway.cli("credential", "set", "--tenant", "acme", "--provider", "openai", stdin=CANARY_CREDENTIAL)
    )
    used, unseen = gateway.create_key("acme"), gateway.create_key("acme")
    chat = f"{gateway.url}/openai/v1/chat/completions"
    refused = {"authorization": f"Bearer {used}", "x-fake-status": "401", "x-fake-echo-headers": "1"}
    admin = postgres_admin_url()
    gateway.start()
    try:
        bodies = [httpx.post(chat, json=CHAT, headers=refused)]
        set_connections_allowed(admin, database_url, allowed=False)
        try:
            wait_until(lambda: httpx.get(f"{gateway.url}/readyz").status_code == 503)
            bodies += [
                httpx.post(f"{chat}?key={key}", json=CHAT, headers={"x-fake-status": "401"})
                for key in (used, unseen)
            ]
            bodies.append(httpx.get(f"{gateway.url}/readyz"))
            outputs += [
                gateway.cli(*command, stdin=CANARY_CREDENTIAL, check=False)
                for command in (
                    ("credential", "set", "--tenant", "acme", "--provider", "openai"),
                    ("key", "list"),
                    ("db", "current"),
                )
            ]
        finally:
            set_connections_allowed(admin, database_url, allowed=True)
    finally:
        gateway.stop()

    assert [response.status_code for response in bodies] == [401, 401, 503, 503]
    written = gateway.logs() + "".join(response.text for response in bodies)
    written += "".join(output.stdout + output.stderr for output in outputs)
    assert "readiness check failed" in written and "tollgate.access" in written
    for secret in (used, unseen, CANARY_CREDENTIAL, DATABASE_PASSWORD):
        assert secret not in written
