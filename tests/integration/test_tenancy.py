"""Each tenant's key reaches its own credential, never another tenant's."""

from __future__ import annotations

import openai
import pytest

from tests.integration.conftest import CREDENTIALS, World


def credential_used_by(world: World, tenant: str) -> str | None:
    world.upstream.clear()
    with openai.OpenAI(base_url=f"{world.url}/openai/v1", api_key=world.keys[tenant], max_retries=0) as api:
        api.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    [request] = world.upstream.requests
    return request.header("authorization")


@pytest.mark.parametrize(
    ("tenant", "credential"),
    [
        ("acme", CREDENTIALS[("acme", "openai")]),
        ("globex", CREDENTIALS[("globex", "openai")]),
        ("initech", CREDENTIALS[(None, "openai")]),
    ],
)
def test_each_tenant_reaches_its_own_credential_or_the_shared_one(
    world: World, tenant: str, credential: str
) -> None:
    assert credential_used_by(world, tenant) == f"Bearer {credential}"


def test_interleaved_calls_of_two_tenants_never_cross(world: World) -> None:
    for _ in range(5):
        assert credential_used_by(world, "globex") == f"Bearer {CREDENTIALS[('globex', 'openai')]}"
        assert credential_used_by(world, "acme") == f"Bearer {CREDENTIALS[('acme', 'openai')]}"
