"""Tenants: created once, listed by id, and taking everything they own with them when deleted."""

from __future__ import annotations

import pytest
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.storage.errors import AlreadyExists, StorageRejected
from gateway.storage.models import api_keys, credentials, teams, tenants, users
from gateway.storage.records import Tenant
from gateway.storage.repositories import CredentialRepository, KeyRepository, TenantRepository
from tests.contract.builders import T0, add_tenants, at, count_rows, credential, digest_of, key_record


async def test_a_created_tenant_is_read_back_as_created(engine: AsyncEngine) -> None:
    repository = TenantRepository(engine)

    created = await repository.create("acme", "Acme Corp", T0)

    assert created == Tenant("acme", "Acme Corp", T0)
    assert await repository.get("acme") == created


async def test_creating_an_existing_tenant_raises_already_exists_and_keeps_the_original(
    engine: AsyncEngine,
) -> None:
    repository = TenantRepository(engine)
    await repository.create("acme", "Acme Corp", T0)

    with pytest.raises(AlreadyExists):
        await repository.create("acme", "Impostor", at(1))

    assert await repository.get("acme") == Tenant("acme", "Acme Corp", T0)


async def test_tenants_are_listed_in_id_order(engine: AsyncEngine) -> None:
    repository = TenantRepository(engine)
    for tenant_id, minute in (("globex", 0), ("acme", 1), ("initech", 2)):
        await repository.create(tenant_id, tenant_id, at(minute))

    assert [tenant.id for tenant in await repository.list()] == ["acme", "globex", "initech"]


async def test_no_tenants_list_as_empty(engine: AsyncEngine) -> None:
    assert await TenantRepository(engine).list() == []


async def test_an_unknown_tenant_is_none(engine: AsyncEngine) -> None:
    await add_tenants(engine, "acme")

    assert await TenantRepository(engine).get("globex") is None


async def test_deleting_a_tenant_row_deletes_its_teams_users_keys_and_credentials(
    engine: AsyncEngine,
) -> None:
    await add_tenants(engine, "acme", "globex")
    keys = KeyRepository(engine)
    for tenant_id in ("acme", "globex"):
        record = key_record(tenant_id, team="platform", user="ada@example.com")
        await keys.create(record, digest_of(tenant_id))
        await CredentialRepository(engine).replace(credential(tenant_id, "openai"))
    await CredentialRepository(engine).replace(credential(None, "openai"))

    async with engine.begin() as connection:
        await connection.execute(delete(tenants).where(tenants.c.id == "acme"))

    for table in (teams, users, api_keys, credentials):
        assert await count_rows(engine, table, tenant_id="acme") == 0, table.name
        assert await count_rows(engine, table, tenant_id="globex") == 1, table.name
    assert [c.tenant_id for c in await CredentialRepository(engine).list(shared=True)] == [None]


async def test_a_naive_timestamp_is_refused_as_a_bad_argument_not_reported_as_an_outage(
    engine: AsyncEngine,
) -> None:
    with pytest.raises(ValueError, match="naive"):
        await TenantRepository(engine).create("acme", "Acme", T0.replace(tzinfo=None))

    assert await TenantRepository(engine).list() == []


@pytest.mark.parametrize("backend", [pytest.param("postgresql", marks=pytest.mark.postgres)])
@pytest.mark.parametrize("name", ["n" * 201, "Ac\x00me"], ids=["longer-than-its-column", "nul"])
async def test_a_text_postgresql_cannot_hold_is_refused_as_a_value_not_reported_as_an_outage(
    engine: AsyncEngine, name: str
) -> None:
    with pytest.raises(StorageRejected, match="the database refused a value"):
        await TenantRepository(engine).create("acme", name, T0)

    assert await TenantRepository(engine).list() == []
