"""Administrative operations validate their input before anything reaches the database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.admin.operations import InvalidInput, create_tenant, issue_key, revoke_key, store_credential
from gateway.auth.keys import key_digest
from gateway.credentials.crypto import MasterKey, MasterKeyError
from gateway.credentials.store import CredentialStore
from gateway.settings.schema import Settings
from gateway.storage.errors import AlreadyExists, UnknownRecord
from gateway.storage.models import credentials
from gateway.storage.repositories import CredentialRepository, KeyRepository, TenantRepository
from tests.contract.builders import add_tenants, count_rows

INVALID_TENANT_IDS = {
    "empty": "",
    "upper-case": "Acme",
    "leading-dash": "-acme",
    "leading-underscore": "_acme",
    "space": "ac me",
    "slash": "acme/x",
    "non-ascii": "acmé",
    "64-characters": "a" * 64,
    "trailing-newline": "acme\n",
}


@pytest.fixture
def settings() -> Settings:
    return Settings.model_validate(
        {"providers": {"openai": {"type": "openai"}, "anthropic": {"type": "anthropic"}}}
    )


@pytest.fixture
def master() -> MasterKey:
    return MasterKey.generate()[0]


async def test_a_tenant_is_named_after_its_id_unless_given_a_name(engine: AsyncEngine) -> None:
    plain = await create_tenant(engine, "acme")
    named = await create_tenant(engine, "globex", "Globex Corporation")

    assert (plain.display_name, named.display_name) == ("acme", "Globex Corporation")
    assert await TenantRepository(engine).list() == [plain, named]


@pytest.mark.parametrize("tenant_id", INVALID_TENANT_IDS.values(), ids=list(INVALID_TENANT_IDS))
async def test_an_invalid_tenant_id_is_refused(engine: AsyncEngine, tenant_id: str) -> None:
    with pytest.raises(InvalidInput):
        await create_tenant(engine, tenant_id)

    assert await TenantRepository(engine).list() == []


async def test_a_tenant_id_of_63_characters_is_accepted(engine: AsyncEngine) -> None:
    tenant = await create_tenant(engine, "a" * 63)

    assert await TenantRepository(engine).get(tenant.id) == tenant


async def test_creating_an_existing_tenant_raises_already_exists(engine: AsyncEngine) -> None:
    await create_tenant(engine, "acme")

    with pytest.raises(AlreadyExists):
        await create_tenant(engine, "acme")


async def test_an_issued_key_is_stored_by_its_digest_only(engine: AsyncEngine, settings: Settings) -> None:
    await add_tenants(engine, "acme")
    expiry = datetime.now(UTC) + timedelta(days=30)

    issued = await issue_key(
        engine,
        settings,
        tenant_id="acme",
        label="laptop",
        team="platform",
        user="ada@example.com",
        expires_at=expiry,
        providers=[" openai ", "anthropic"],
        models=["gpt-4o"],
    )

    found = await KeyRepository(engine).find_by_digest(key_digest(issued.key))
    assert found == (issued.record, key_digest(issued.key))
    assert issued.key.startswith(issued.record.prefix)
    assert (issued.record.team, issued.record.user) == ("platform", "ada@example.com")
    assert issued.record.expires_at == expiry
    assert issued.record.allowed_providers == frozenset({"openai", "anthropic"})
    assert issued.record.allowed_models == frozenset({"gpt-4o"})


async def test_a_key_expiring_in_the_past_is_refused(engine: AsyncEngine, settings: Settings) -> None:
    await add_tenants(engine, "acme")
    a_second_ago = datetime.now(UTC) - timedelta(seconds=1)

    with pytest.raises(InvalidInput, match="future"):
        await issue_key(engine, settings, tenant_id="acme", expires_at=a_second_ago)

    assert await KeyRepository(engine).list() == []


async def test_a_key_expiry_without_a_time_zone_is_refused(engine: AsyncEngine, settings: Settings) -> None:
    await add_tenants(engine, "acme")
    naive = datetime.now(UTC).replace(tzinfo=None) + timedelta(days=1)

    with pytest.raises(InvalidInput, match="time zone"):
        await issue_key(engine, settings, tenant_id="acme", expires_at=naive)

    assert await KeyRepository(engine).list() == []


async def test_a_key_allowing_an_unconfigured_provider_is_refused(
    engine: AsyncEngine, settings: Settings
) -> None:
    await add_tenants(engine, "acme")

    with pytest.raises(InvalidInput, match="gemini"):
        await issue_key(engine, settings, tenant_id="acme", providers=["openai", "gemini"])

    assert await KeyRepository(engine).list() == []


async def test_an_allow_list_naming_nothing_is_refused(engine: AsyncEngine, settings: Settings) -> None:
    await add_tenants(engine, "acme")

    with pytest.raises(InvalidInput):
        await issue_key(engine, settings, tenant_id="acme", models=[" ", ""])

    assert await KeyRepository(engine).list() == []


async def test_a_key_for_an_unknown_tenant_is_refused(engine: AsyncEngine, settings: Settings) -> None:
    with pytest.raises(UnknownRecord):
        await issue_key(engine, settings, tenant_id="acme")


async def test_revoking_a_key_through_the_operation_marks_it_revoked(
    engine: AsyncEngine, settings: Settings
) -> None:
    await add_tenants(engine, "acme")
    issued = await issue_key(engine, settings, tenant_id="acme")

    revoked = await revoke_key(engine, issued.record.id)

    assert revoked.revoked_at is not None
    assert not revoked.is_usable_at(datetime.now(UTC))
    with pytest.raises(UnknownRecord):
        await revoke_key(engine, "key_missing")


async def test_a_stored_credential_resolves_to_the_trimmed_secret(
    engine: AsyncEngine, settings: Settings, master: MasterKey
) -> None:
    await add_tenants(engine, "acme")

    await store_credential(
        engine, settings, master, tenant_id="acme", provider="openai", secret=" sk-acme \n"
    )

    resolved = await CredentialStore(CredentialRepository(engine), master).resolve("acme", "openai")
    assert resolved is not None and resolved.secret.reveal() == "sk-acme"


@pytest.mark.parametrize(
    "secret",
    ["", "  \n", "sk-\x00acme", "sk-ac\tme", "sk-acme\x7f"],
    ids=["empty", "blank", "nul", "tab", "del"],
)
async def test_an_empty_or_control_character_credential_is_refused(
    engine: AsyncEngine, settings: Settings, master: MasterKey, secret: str
) -> None:
    await add_tenants(engine, "acme")

    with pytest.raises(InvalidInput):
        await store_credential(engine, settings, master, tenant_id="acme", provider="openai", secret=secret)

    assert await count_rows(engine, credentials) == 0


async def test_a_credential_for_an_unconfigured_provider_is_refused(
    engine: AsyncEngine, settings: Settings, master: MasterKey
) -> None:
    with pytest.raises(InvalidInput, match="gemini"):
        await store_credential(engine, settings, master, tenant_id=None, provider="gemini", secret="key")

    assert await count_rows(engine, credentials) == 0


async def test_a_credential_is_not_stored_under_a_wrong_master_key(
    engine: AsyncEngine, settings: Settings, master: MasterKey
) -> None:
    await store_credential(engine, settings, master, tenant_id=None, provider="openai", secret="sk-shared")
    other, _ = MasterKey.generate()

    with pytest.raises(MasterKeyError):
        await store_credential(engine, settings, other, tenant_id=None, provider="anthropic", secret="sk-ant")

    assert await count_rows(engine, credentials) == 1
