"""gateway.credentials.store: credentials stored encrypted, bound to their owner, resolved through a cache."""

from __future__ import annotations

from dataclasses import replace

import pytest

from gateway.credentials.crypto import MasterKey, MasterKeyError
from gateway.credentials.store import CredentialStore, CredentialUnreadable, verify_master_key
from gateway.storage.errors import StorageUnavailable
from gateway.storage.records import StoredCredential
from tests.fakes import FakeClock, FakeCredentialRepository, FakeKeyringRepository

TTL = 30.0


@pytest.fixture
def master_text() -> str:
    return MasterKey.generate()[1]


@pytest.fixture
def master(master_text: str) -> MasterKey:
    return MasterKey.from_text(master_text)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def repository() -> FakeCredentialRepository:
    return FakeCredentialRepository()


@pytest.fixture
def store(repository: FakeCredentialRepository, master: MasterKey, clock: FakeClock) -> CredentialStore:
    return CredentialStore(repository, master, cache_ttl=TTL, cache_size=100, clock=clock)


def flip_last_byte(data: bytes) -> bytes:
    return data[:-1] + bytes([data[-1] ^ 1])


# -- storing and resolving ----------------------------------------------------------------------------


async def test_a_stored_credential_resolves_to_its_secret(store: CredentialStore) -> None:
    record = await store.set("acme", "openai", "sk-acme", label="prod")

    resolved = await store.resolve("acme", "openai")

    assert resolved is not None
    assert resolved.secret.reveal() == "sk-acme"
    assert (resolved.credential_id, resolved.kind, resolved.shared) == (record.id, "api_key", False)


async def test_the_secret_is_stored_only_encrypted(store: CredentialStore, master: MasterKey) -> None:
    record = await store.set("acme", "openai", "sk-acme-very-secret")

    assert b"sk-acme-very-secret" not in record.ciphertext + record.wrapped_data_key
    assert record.master_key_id == master.id


async def test_an_empty_secret_is_refused(store: CredentialStore) -> None:
    with pytest.raises(ValueError, match="empty"):
        await store.set("acme", "openai", "")


async def test_no_credential_resolves_to_none(store: CredentialStore) -> None:
    assert await store.resolve("acme", "openai") is None


async def test_a_shared_credential_serves_every_tenant(store: CredentialStore) -> None:
    await store.set(None, "openai", "sk-shared")

    resolved = await store.resolve("acme", "openai")

    assert resolved is not None
    assert (resolved.secret.reveal(), resolved.shared) == ("sk-shared", True)


async def test_the_tenants_own_credential_is_preferred_over_the_shared_one(store: CredentialStore) -> None:
    await store.set(None, "openai", "sk-shared")
    await store.set("acme", "openai", "sk-acme")

    acme = await store.resolve("acme", "openai")
    globex = await store.resolve("globex", "openai")

    assert acme is not None and globex is not None
    assert (acme.secret.reveal(), acme.shared) == ("sk-acme", False)
    assert (globex.secret.reveal(), globex.shared) == ("sk-shared", True)


async def test_a_credential_serves_only_its_provider(store: CredentialStore) -> None:
    await store.set("acme", "openai", "sk-acme")

    assert await store.resolve("acme", "anthropic") is None


# -- caching ------------------------------------------------------------------------------------------


async def test_a_resolved_credential_is_cached_for_its_ttl(
    store: CredentialStore, repository: FakeCredentialRepository, clock: FakeClock
) -> None:
    await store.set("acme", "openai", "sk-acme")

    await store.resolve("acme", "openai")
    clock.advance(TTL - 1)
    await store.resolve("acme", "openai")
    assert repository.lookups == 1

    clock.advance(1)
    await store.resolve("acme", "openai")
    assert repository.lookups == 2


async def test_a_change_made_by_another_worker_is_seen_once_the_ttl_passes(
    store: CredentialStore, repository: FakeCredentialRepository, master: MasterKey, clock: FakeClock
) -> None:
    other_worker = CredentialStore(repository, master, cache_ttl=TTL, clock=clock)
    await store.set("acme", "openai", "sk-old")
    await store.resolve("acme", "openai")

    await other_worker.set("acme", "openai", "sk-new")
    before = await store.resolve("acme", "openai")
    clock.advance(TTL)
    after = await store.resolve("acme", "openai")

    assert before is not None and after is not None
    assert (before.secret.reveal(), after.secret.reveal()) == ("sk-old", "sk-new")


async def test_setting_a_credential_is_seen_at_once_by_the_same_store(store: CredentialStore) -> None:
    await store.set(None, "openai", "sk-shared")
    assert await store.resolve("acme", "openai") is not None
    assert await store.resolve("acme", "anthropic") is None

    await store.set("acme", "openai", "sk-acme")
    await store.set(None, "anthropic", "sk-ant")
    openai, anthropic = await store.resolve("acme", "openai"), await store.resolve("acme", "anthropic")

    assert openai is not None and anthropic is not None
    assert (openai.secret.reveal(), anthropic.secret.reveal()) == ("sk-acme", "sk-ant")


# -- owner binding, tampering, wrong master key -------------------------------------------------------


@pytest.mark.parametrize(
    "moved", [{"tenant_id": "globex"}, {"tenant_id": None}, {"provider": "anthropic"}, {"id": "cred_other"}]
)
async def test_a_ciphertext_copied_to_another_owner_or_row_is_unreadable(
    store: CredentialStore, repository: FakeCredentialRepository, moved: dict[str, str | None]
) -> None:
    original = await store.set("acme", "openai", "sk-acme")
    copy = replace(original, **moved)  # type: ignore[arg-type]
    await repository.replace(copy)

    with pytest.raises(CredentialUnreadable, match="altered or moved"):
        await store.resolve(copy.tenant_id or "globex", copy.provider)


@pytest.mark.parametrize("part", ["ciphertext", "wrapped_data_key"])
async def test_a_tampered_credential_is_unreadable(store: CredentialStore, part: str) -> None:
    record = await store.set("acme", "openai", "sk-acme")
    tampered: StoredCredential = replace(record, **{part: flip_last_byte(getattr(record, part))})  # type: ignore[arg-type]

    with pytest.raises(CredentialUnreadable):
        store.decrypt(tampered)


async def test_a_credential_under_another_master_key_is_unreadable_and_says_which(
    store: CredentialStore, repository: FakeCredentialRepository, master: MasterKey
) -> None:
    await store.set("acme", "openai", "sk-acme")
    other = MasterKey.generate()[0]
    restarted_with_wrong_key = CredentialStore(repository, other)

    with pytest.raises(CredentialUnreadable) as error:
        await restarted_with_wrong_key.resolve("acme", "openai")

    assert master.id in str(error.value)
    assert other.id in str(error.value)


async def test_a_forged_master_key_id_does_not_make_a_credential_readable(
    store: CredentialStore, master: MasterKey
) -> None:
    record = await store.set("acme", "openai", "sk-acme")
    other = MasterKey.generate()[0]

    with pytest.raises(CredentialUnreadable, match="failed authentication"):
        CredentialStore(FakeCredentialRepository(), other).decrypt(replace(record, master_key_id=other.id))


async def test_an_unreadable_credential_is_not_cached(
    store: CredentialStore, repository: FakeCredentialRepository
) -> None:
    record = await store.set("acme", "openai", "sk-acme")
    await repository.replace(replace(record, ciphertext=flip_last_byte(record.ciphertext)))

    for _ in range(2):
        with pytest.raises(CredentialUnreadable):
            await store.resolve("acme", "openai")

    assert repository.lookups == 2


# -- verify_master_key --------------------------------------------------------------------------------


async def test_the_first_start_records_a_canary_for_the_master_key(master: MasterKey) -> None:
    keyring = FakeKeyringRepository()

    await verify_master_key(keyring, master)

    entries = await keyring.entries()
    assert [entry.master_key_id for entry in entries] == [master.id]


async def test_a_later_start_with_the_same_key_passes(master: MasterKey, master_text: str) -> None:
    keyring = FakeKeyringRepository()
    await verify_master_key(keyring, master)
    restarted = MasterKey.from_text(master_text)

    await verify_master_key(keyring, restarted)

    assert [entry.master_key_id for entry in await keyring.entries()] == [restarted.id]


async def test_a_start_with_another_key_is_refused_naming_both_key_ids(master: MasterKey) -> None:
    keyring = FakeKeyringRepository()
    await verify_master_key(keyring, master)
    other = MasterKey.generate()[0]

    with pytest.raises(MasterKeyError, match="wrong master key") as error:
        await verify_master_key(keyring, other)

    assert master.id in str(error.value)
    assert other.id in str(error.value)
    assert len(await keyring.entries()) == 1


async def test_a_canary_that_does_not_decrypt_is_refused(master: MasterKey) -> None:
    keyring = FakeKeyringRepository()
    await verify_master_key(keyring, master)
    [entry] = await keyring.entries()
    forged = FakeKeyringRepository()
    await forged.add(replace(entry, canary=flip_last_byte(entry.canary)))

    with pytest.raises(MasterKeyError, match="canary"):
        await verify_master_key(forged, master)


# -- a database outage: credentials found are served stale for a bounded time ---------------------------

STALE = 300.0


async def test_a_credential_found_is_served_past_its_ttl_while_the_database_is_unavailable(
    store: CredentialStore, repository: FakeCredentialRepository, clock: FakeClock
) -> None:
    await store.set("acme", "openai", "sk-acme")
    await store.resolve("acme", "openai")
    repository.failure = StorageUnavailable("database error: OperationalError")

    clock.advance(TTL + STALE - 0.1)
    resolved = await store.resolve("acme", "openai")

    assert resolved is not None and resolved.secret.reveal() == "sk-acme"
    clock.advance(0.1)
    with pytest.raises(StorageUnavailable):
        await store.resolve("acme", "openai")


async def test_no_credential_found_is_not_extended_during_an_outage(
    store: CredentialStore, repository: FakeCredentialRepository, clock: FakeClock
) -> None:
    assert await store.resolve("acme", "openai") is None
    repository.failure = StorageUnavailable("down")

    clock.advance(TTL)

    with pytest.raises(StorageUnavailable):
        await store.resolve("acme", "openai")


async def test_a_zero_stale_if_error_ends_a_credential_at_its_ttl_during_an_outage(
    repository: FakeCredentialRepository, master: MasterKey, clock: FakeClock
) -> None:
    store = CredentialStore(repository, master, cache_ttl=TTL, clock=clock, stale_if_error=0)
    await store.set("acme", "openai", "sk-acme")
    await store.resolve("acme", "openai")
    repository.failure = StorageUnavailable("down")

    clock.advance(TTL)

    with pytest.raises(StorageUnavailable):
        await store.resolve("acme", "openai")
