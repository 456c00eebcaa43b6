"""The encrypted credential store and the master-key check, against a real database."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.credentials.crypto import MasterKey, MasterKeyError
from gateway.credentials.store import CredentialStore, CredentialUnreadable, verify_master_key
from gateway.storage.engine import create_engine
from gateway.storage.models import credentials, keyring
from gateway.storage.repositories import CredentialRepository, KeyringRepository
from tests.contract.builders import add_tenants


def store_with(engine: AsyncEngine, master: MasterKey) -> CredentialStore:
    return CredentialStore(CredentialRepository(engine), master, cache_ttl=0)


async def test_a_stored_credential_resolves_to_its_secret_and_is_stored_only_encrypted(
    engine: AsyncEngine,
) -> None:
    await add_tenants(engine, "acme")
    master, _ = MasterKey.generate()
    store = store_with(engine, master)

    record = await store.set("acme", "openai", "sk-acme-secret")
    resolved = await store.resolve("acme", "openai")

    assert resolved is not None
    assert (resolved.credential_id, resolved.secret.reveal(), resolved.shared) == (
        record.id,
        "sk-acme-secret",
        False,
    )
    async with engine.connect() as connection:
        row = (await connection.execute(select(credentials))).one()
    assert b"sk-acme-secret" not in row.ciphertext + row.wrapped_data_key
    assert row.master_key_id == master.id


async def test_a_tenant_without_its_own_credential_resolves_the_shared_one(engine: AsyncEngine) -> None:
    await add_tenants(engine, "acme")
    master, _ = MasterKey.generate()
    store = store_with(engine, master)
    await store.set(None, "openai", "sk-shared-secret")

    resolved = await store.resolve("acme", "openai")

    assert resolved is not None
    assert (resolved.secret.reveal(), resolved.shared) == ("sk-shared-secret", True)


async def test_a_ciphertext_copied_into_another_tenants_row_fails_to_decrypt(engine: AsyncEngine) -> None:
    await add_tenants(engine, "acme", "globex")
    master, _ = MasterKey.generate()
    store = store_with(engine, master)
    acme = await store.set("acme", "openai", "sk-acme-secret")
    await store.set("globex", "openai", "sk-globex-secret")

    async with engine.begin() as connection:
        await connection.execute(
            update(credentials)
            .where(credentials.c.tenant_id == "globex")
            .values(ciphertext=acme.ciphertext, wrapped_data_key=acme.wrapped_data_key)
        )

    with pytest.raises(CredentialUnreadable):
        await store.resolve("globex", "openai")
    resolved = await store.resolve("acme", "openai")
    assert resolved is not None and resolved.secret.reveal() == "sk-acme-secret"


async def test_a_credential_stored_under_another_master_key_is_unreadable(engine: AsyncEngine) -> None:
    await add_tenants(engine, "acme")
    old_master, _ = MasterKey.generate()
    new_master, _ = MasterKey.generate()
    await store_with(engine, old_master).set("acme", "openai", "sk-acme-secret")

    with pytest.raises(CredentialUnreadable):
        await store_with(engine, new_master).resolve("acme", "openai")


async def test_the_first_master_key_is_recorded_and_accepted_from_then_on(engine: AsyncEngine) -> None:
    master, _ = MasterKey.generate()
    repository = KeyringRepository(engine)

    await verify_master_key(repository, master)
    await verify_master_key(repository, master)

    assert [entry.master_key_id for entry in await repository.entries()] == [master.id]


async def test_replicas_first_started_at_once_with_the_same_master_key_all_start(
    engine: AsyncEngine, database_url: str
) -> None:
    master, _ = MasterKey.generate()
    replicas = [create_engine(database_url) for _ in range(3)]
    try:
        starts = [verify_master_key(KeyringRepository(other), master) for other in replicas]
        outcomes = await asyncio.gather(*starts, return_exceptions=True)
    finally:
        for other in replicas:
            await other.dispose()

    assert outcomes == [None] * len(replicas)
    assert [entry.master_key_id for entry in await KeyringRepository(engine).entries()] == [master.id]


async def test_replicas_first_started_at_once_with_different_master_keys_never_both_start(
    engine: AsyncEngine, database_url: str
) -> None:
    masters = [MasterKey.generate()[0] for _ in range(2)]
    replicas = [create_engine(database_url) for _ in masters]
    try:
        starts = [
            verify_master_key(KeyringRepository(replica), master)
            for replica, master in zip(replicas, masters, strict=True)
        ]
        outcomes = await asyncio.gather(*starts, return_exceptions=True)
    finally:
        for replica in replicas:
            await replica.dispose()

    started = [master.id for master, outcome in zip(masters, outcomes, strict=True) if outcome is None]
    assert all(outcome is None or isinstance(outcome, MasterKeyError) for outcome in outcomes)
    assert len(started) <= 1
    assert [entry.master_key_id for entry in await KeyringRepository(engine).entries()] == started


async def test_a_different_master_key_is_refused_once_one_is_recorded(engine: AsyncEngine) -> None:
    first, _ = MasterKey.generate()
    other, _ = MasterKey.generate()
    repository = KeyringRepository(engine)
    await verify_master_key(repository, first)

    with pytest.raises(MasterKeyError, match="wrong master key"):
        await verify_master_key(repository, other)

    assert [entry.master_key_id for entry in await repository.entries()] == [first.id]


async def test_a_master_key_whose_canary_does_not_decrypt_is_refused(engine: AsyncEngine) -> None:
    master, _ = MasterKey.generate()
    repository = KeyringRepository(engine)
    await verify_master_key(repository, master)
    async with engine.begin() as connection:
        await connection.execute(update(keyring).values(canary=b"\x00" * 54))

    with pytest.raises(MasterKeyError, match="canary"):
        await verify_master_key(repository, master)
