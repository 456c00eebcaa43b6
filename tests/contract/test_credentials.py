"""Stored provider credentials: one per tenant and provider, one shared per provider, own before shared."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.storage.errors import UnknownRecord
from gateway.storage.models import credentials
from gateway.storage.repositories import CredentialRepository
from tests.contract.builders import T0, add_tenants, at, count_rows, credential


async def test_a_stored_credential_is_read_back_byte_for_byte(engine: AsyncEngine) -> None:
    await add_tenants(engine, "acme")
    stored = credential("acme", "openai", label="team key")

    await CredentialRepository(engine).replace(stored)

    assert await CredentialRepository(engine).find_for("acme", "openai") == stored


async def test_replacing_keeps_one_credential_per_tenant_and_provider(engine: AsyncEngine) -> None:
    await add_tenants(engine, "acme")
    repository = CredentialRepository(engine)
    newer = credential("acme", "openai", created_at=at(1), updated_at=at(1))

    await repository.replace(credential("acme", "openai"))
    await repository.replace(newer)

    assert await repository.list("acme") == [newer]


async def test_replacing_keeps_one_shared_credential_per_provider(engine: AsyncEngine) -> None:
    repository = CredentialRepository(engine)
    newer = credential(None, "openai", created_at=at(1), updated_at=at(1))

    await repository.replace(credential(None, "openai"))
    await repository.replace(newer)

    assert await repository.list(shared=True) == [newer]


async def test_a_tenant_credential_and_the_shared_one_for_a_provider_coexist(engine: AsyncEngine) -> None:
    await add_tenants(engine, "acme", "globex")
    repository = CredentialRepository(engine)

    for owner in ("acme", "globex", None):
        await repository.replace(credential(owner, "openai"))
    await repository.replace(credential("acme", "anthropic"))

    assert await count_rows(engine, credentials, provider="openai") == 3
    assert await count_rows(engine, credentials, tenant_id="acme") == 2


async def test_find_for_prefers_the_tenants_own_credential_over_the_shared_one(engine: AsyncEngine) -> None:
    await add_tenants(engine, "acme")
    repository = CredentialRepository(engine)
    own = credential("acme", "openai")
    await repository.replace(credential(None, "openai"))
    await repository.replace(own)

    assert await repository.find_for("acme", "openai") == own


async def test_find_for_falls_back_to_the_shared_credential(engine: AsyncEngine) -> None:
    await add_tenants(engine, "acme", "globex")
    repository = CredentialRepository(engine)
    shared = credential(None, "openai")
    await repository.replace(shared)
    await repository.replace(credential("globex", "openai"))

    assert await repository.find_for("acme", "openai") == shared


async def test_find_for_never_returns_another_tenants_credential(engine: AsyncEngine) -> None:
    await add_tenants(engine, "acme", "globex")
    repository = CredentialRepository(engine)
    await repository.replace(credential("globex", "openai"))
    await repository.replace(credential(None, "anthropic"))

    assert await repository.find_for("acme", "openai") is None


async def test_deleting_removes_only_that_owners_credential(engine: AsyncEngine) -> None:
    await add_tenants(engine, "acme", "globex")
    repository = CredentialRepository(engine)
    shared, globex = credential(None, "openai"), credential("globex", "openai")
    for stored in (credential("acme", "openai"), shared, globex):
        await repository.replace(stored)

    assert await repository.delete("acme", "openai") is True

    assert await repository.find_for("acme", "openai") == shared
    assert await repository.list() == [shared, globex]


async def test_deleting_the_shared_credential_leaves_tenant_credentials(engine: AsyncEngine) -> None:
    await add_tenants(engine, "acme")
    repository = CredentialRepository(engine)
    own = credential("acme", "openai")
    await repository.replace(credential(None, "openai"))
    await repository.replace(own)

    assert await repository.delete(None, "openai") is True

    assert await repository.list() == [own]


async def test_deleting_a_credential_that_is_not_there_reports_false(engine: AsyncEngine) -> None:
    await add_tenants(engine, "acme")
    repository = CredentialRepository(engine)
    await repository.replace(credential(None, "openai"))

    assert await repository.delete("acme", "openai") is False
    assert await repository.delete(None, "anthropic") is False
    assert await count_rows(engine, credentials) == 1


async def test_listing_by_tenant_shared_or_all(engine: AsyncEngine) -> None:
    await add_tenants(engine, "acme", "globex")
    repository = CredentialRepository(engine)
    acme_openai, acme_anthropic = credential("acme", "openai"), credential("acme", "anthropic")
    globex_openai = credential("globex", "openai")
    shared_openai, shared_gemini = credential(None, "openai"), credential(None, "gemini")
    for stored in (acme_openai, shared_openai, globex_openai, acme_anthropic, shared_gemini):
        await repository.replace(stored)

    assert await repository.list("acme") == [acme_anthropic, acme_openai]
    assert await repository.list(shared=True) == [shared_gemini, shared_openai]
    assert await repository.list() == [
        shared_gemini,
        shared_openai,
        acme_anthropic,
        acme_openai,
        globex_openai,
    ]


async def test_credentials_of_an_unknown_tenant_raise_unknown_record(engine: AsyncEngine) -> None:
    await add_tenants(engine, "acme")

    with pytest.raises(UnknownRecord):
        await CredentialRepository(engine).replace(credential("globex", "openai"))

    assert await count_rows(engine, credentials) == 0


async def test_credential_timestamps_come_back_in_utc(engine: AsyncEngine) -> None:
    await add_tenants(engine, "acme")
    await CredentialRepository(engine).replace(credential("acme", created_at=T0, updated_at=at(3)))

    found = await CredentialRepository(engine).find_for("acme", "openai")

    assert found is not None
    assert (found.created_at, found.updated_at) == (T0, at(3))
    assert found.created_at.utcoffset() == found.updated_at.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("owner", "asking"), [("Acme", "acme"), ("acme", "acme "), ("acme", "%"), ("a_me", "acme")]
)
async def test_find_for_matches_the_tenant_exactly_never_by_case_pattern_or_padding(
    engine: AsyncEngine, owner: str, asking: str
) -> None:
    await add_tenants(engine, owner, asking)
    await CredentialRepository(engine).replace(credential(owner, "openai"))

    assert await CredentialRepository(engine).find_for(asking, "openai") is None
