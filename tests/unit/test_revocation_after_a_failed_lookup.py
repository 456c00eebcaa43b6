"""The revocation bound holds after the database failed a lookup once and answers again: without a lookup
of its own, a key is served past its cache TTL only when the database was found unreachable after that TTL
passed, or by a lookup of that key itself.

A lookup that failed earlier for some other key (an unknown one, during a moment's outage) says nothing
about whether this key has been revoked since: it is looked up, not accepted as it was last found. During
an outage found since, a key found before is served at once, its callers not kept waiting."""

from __future__ import annotations

import asyncio

import pytest

from gateway.auth.keys import KeyAuthenticator, Principal, generate_key
from gateway.errors import AuthError, ServiceUnavailable
from gateway.storage.errors import StorageUnavailable
from tests.fakes import FakeClock, FakeKeyRepository, Gate

TTL = 5.0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def repository() -> FakeKeyRepository:
    return FakeKeyRepository()


@pytest.fixture
def authenticator(repository: FakeKeyRepository, clock: FakeClock) -> KeyAuthenticator:
    return KeyAuthenticator(repository, ttl=TTL, size=100, clock=clock, now=clock.utcnow)


async def unknown_key_fails_during_a_moments_outage(
    authenticator: KeyAuthenticator, repository: FakeKeyRepository
) -> None:
    repository.failure = StorageUnavailable("database error: OperationalError")
    with pytest.raises(ServiceUnavailable):
        await authenticator.authenticate(generate_key())
    repository.failure = None


async def served_without_waiting(authenticator: KeyAuthenticator, key: str) -> Principal:
    """The key's principal; the database hangs, so waiting for it would never end (the timeout is only a
    guard against hanging the suite)."""
    return await asyncio.wait_for(authenticator.authenticate(key), timeout=5)


async def test_a_key_revoked_while_another_keys_lookup_failed_is_refused_once_its_ttl_has_passed(
    authenticator: KeyAuthenticator, repository: FakeKeyRepository, clock: FakeClock
) -> None:
    key, record = repository.issue()
    await authenticator.authenticate(key)
    clock.advance(1)
    await unknown_key_fails_during_a_moments_outage(authenticator, repository)
    await repository.revoke(record.id, clock.utcnow())

    clock.advance(TTL)

    with pytest.raises(AuthError, match="revoked"):
        await authenticator.authenticate(key)


async def test_a_key_whose_own_lookup_found_the_database_down_is_still_served_at_once_during_the_outage(
    authenticator: KeyAuthenticator, repository: FakeKeyRepository, clock: FakeClock
) -> None:
    key, record = repository.issue()
    await authenticator.authenticate(key)
    repository.failure = StorageUnavailable("down")
    clock.advance(TTL)
    await authenticator.authenticate(key)  # its own lookup fails: served stale from now on
    repository.gate = Gate()  # the database now hangs as well

    clock.advance(TTL)
    principals = [await served_without_waiting(authenticator, key) for _ in range(3)]

    assert [principal.key_id for principal in principals] == [record.id] * 3
    repository.gate.open()
    await asyncio.sleep(0)  # the background lookup ends (and fails) before the test does


async def test_a_busy_keys_failed_early_reload_lets_it_be_served_at_once_past_its_ttl(
    authenticator: KeyAuthenticator, repository: FakeKeyRepository, clock: FakeClock
) -> None:
    key, record = repository.issue()
    await authenticator.authenticate(key)
    repository.failure = StorageUnavailable("down")
    clock.advance(TTL * 0.75)
    await authenticator.authenticate(key)  # fresh, and reloaded in the background: that fails
    await asyncio.sleep(0)
    repository.gate = Gate()

    clock.advance(TTL * 0.5)
    principal = await served_without_waiting(authenticator, key)

    assert principal.key_id == record.id
    repository.gate.open()
    await asyncio.sleep(0)


async def test_once_a_lookup_has_found_the_database_down_past_a_keys_ttl_that_key_is_served_at_once_too(
    authenticator: KeyAuthenticator, repository: FakeKeyRepository, clock: FakeClock
) -> None:
    idle, record = repository.issue()
    busy, _ = repository.issue()
    await authenticator.authenticate(idle)
    await authenticator.authenticate(busy)
    repository.failure = StorageUnavailable("down")
    clock.advance(TTL)
    await authenticator.authenticate(busy)  # its lookup, past both TTLs, finds the database down
    repository.gate = Gate()  # and the database now hangs as well

    principal = await served_without_waiting(authenticator, idle)

    assert principal.key_id == record.id
    repository.gate.open()
    await asyncio.sleep(0)
