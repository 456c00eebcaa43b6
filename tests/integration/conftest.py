"""One real gateway (uvicorn in a subprocess, SQLite) in front of one real fake upstream, shared by the
integration suite, set up entirely through the `tollgate` CLI.

Tenants: `acme` has its own credentials for every provider; `globex` its own OpenAI credential;
`initech` none of its own, so it gets the shared OpenAI credential; `umbrella` has nothing for
Anthropic (no shared one either).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from scripts.fake_upstream import FakeUpstream
from tests.support.gateway import GatewayHarness, free_port

MAX_BODY = 64 * 1024
ADMIN_TOKEN = "admin-token-for-tests-" + "9" * 20
KEY_CACHE_TTL = 1.0

CREDENTIALS = {
    ("acme", "openai"): "sk-acme-openai-0001",
    ("acme", "anthropic"): "sk-ant-acme-0001",
    ("acme", "gemini"): "AIza-acme-gemini-0001",
    ("acme", "azure"): "azure-acme-0001",
    ("acme", "local"): "local-acme-0001",
    ("acme", "slow"): "slow-acme-0001",
    ("acme", "dead"): "dead-acme-0001",
    ("globex", "openai"): "sk-globex-openai-0002",
    (None, "openai"): "sk-shared-openai-0003",
}


@dataclass(frozen=True)
class World:
    gateway: GatewayHarness
    upstream: FakeUpstream
    keys: dict[str, str]

    @property
    def url(self) -> str:
        return self.gateway.url


def providers_for(upstream: FakeUpstream) -> dict[str, dict[str, object]]:
    return {
        "openai": {"type": "openai", "base_url": upstream.url + "/v1"},
        "anthropic": {"type": "anthropic", "base_url": upstream.url},
        "gemini": {"type": "gemini", "base_url": upstream.url},
        "azure": {"type": "azure-openai", "base_url": upstream.url},
        "local": {"type": "openai-compatible", "base_url": upstream.url + "/compat/v1"},
        "slow": {
            "type": "openai-compatible",
            "base_url": upstream.url + "/v1",
            "timeouts": {"connect": 1, "read": 0.5, "total": 5},
        },
        "dead": {"type": "openai-compatible", "base_url": f"http://127.0.0.1:{free_port()}/v1"},
    }


@pytest.fixture(scope="session")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


@pytest.fixture(scope="session")
def world(upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    gateway = GatewayHarness(
        Path(tmp_path_factory.mktemp("gateway")),
        providers_for(upstream),
        overrides={
            "server": {"max_body_bytes": MAX_BODY},
            "auth": {"key_cache_ttl_seconds": KEY_CACHE_TTL},
            "admin": {"token_sha256": hashlib.sha256(ADMIN_TOKEN.encode()).hexdigest()},
        },
    )
    gateway.cli("db", "upgrade")
    for tenant in ("acme", "globex", "initech", "umbrella"):
        gateway.cli("tenant", "create", tenant)
    for (tenant, provider), secret in CREDENTIALS.items():
        owner = ["--shared"] if tenant is None else ["--tenant", tenant]
        gateway.cli("credential", "set", *owner, "--provider", provider, stdin=secret)
    keys = {
        tenant: gateway.create_key(tenant, "--label", f"{tenant} test")
        for tenant in ("acme", "globex", "initech", "umbrella")
    }
    keys["acme-restricted"] = gateway.create_key(
        "acme", "--provider", "openai", "--model", "gpt-4o-mini", "--team", "ml", "--user", "ada@acme.test"
    )
    gateway.start()
    try:
        yield World(gateway, upstream, keys)
    finally:
        gateway.stop()


@pytest.fixture
def fresh(world: World) -> World:
    """The shared world, with the upstream's record of requests emptied."""
    world.upstream.clear()
    return world
