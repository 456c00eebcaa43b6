"""Revoking a key: by its id, or by the key itself (what an operator holding a leaked key has), and never
repeating in an error what may be a secret pasted by mistake."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.admin.operations import issue_key, revoke_key
from gateway.auth.keys import generate_key
from gateway.settings.schema import Settings
from gateway.storage.errors import UnknownRecord
from gateway.storage.repositories import KeyRepository
from tests.contract.builders import add_tenants


@pytest.fixture
def settings() -> Settings:
    return Settings.model_validate({"providers": {"openai": {"type": "openai"}}})


async def test_a_key_is_revoked_by_the_key_itself_and_its_neighbour_is_not(
    engine: AsyncEngine, settings: Settings
) -> None:
    await add_tenants(engine, "acme")
    leaked = await issue_key(engine, settings, tenant_id="acme")
    other = await issue_key(engine, settings, tenant_id="acme")

    revoked = await revoke_key(engine, leaked.key)

    assert revoked.id == leaked.record.id and revoked.revoked_at is not None
    kept = await KeyRepository(engine).get(other.record.id)
    assert kept is not None and kept.revoked_at is None


async def test_a_key_is_revoked_by_its_id(engine: AsyncEngine, settings: Settings) -> None:
    await add_tenants(engine, "acme")
    issued = await issue_key(engine, settings, tenant_id="acme")

    assert (await revoke_key(engine, issued.record.id)).revoked_at is not None


@pytest.mark.parametrize(
    "given",
    [generate_key(), "sk-proj-0123456789abcdefSECRET", "tg-short"],
    ids=["unknown-tollgate-key", "a-provider-key", "a-malformed-tollgate-key"],
)
async def test_what_is_neither_a_key_id_nor_a_known_key_is_refused_without_being_repeated(
    engine: AsyncEngine, given: str
) -> None:
    await add_tenants(engine, "acme")

    with pytest.raises(UnknownRecord) as refusal:
        await revoke_key(engine, given)

    assert given not in str(refusal.value)
    assert given[3:] not in str(refusal.value)
