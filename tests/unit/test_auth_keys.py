"""gateway.auth.keys: the key format, and resolving a presented key to its principal."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from datetime import timedelta

import pytest

from gateway.auth.keys import (
    KEY_PREFIX,
    KeyAuthenticator,
    Principal,
    display_prefix,
    generate_key,
    key_digest,
    looks_like_key,
)
from gateway.errors import AuthError, MissingKey, ServiceUnavailable
from gateway.storage.errors import StorageRejected, StorageUnavailable
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


# -- the key format -----------------------------------------------------------------------------------


def test_a_key_is_the_prefix_and_32_random_bytes_in_urlsafe_base64() -> None:
    key = generate_key()

    assert key.startswith(KEY_PREFIX)
    body = key.removeprefix(KEY_PREFIX)
    assert len(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))) >= 32
    assert set(body) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_every_generated_key_is_different() -> None:
    assert len({generate_key() for _ in range(100)}) == 100


def test_a_generated_key_looks_like_a_key() -> None:
    assert looks_like_key(generate_key())


def test_the_digest_is_the_sha256_of_the_key() -> None:
    key = generate_key()

    assert key_digest(key) == hashlib.sha256(key.encode()).digest()
    assert key_digest(key) != key_digest(generate_key())


def test_the_display_prefix_shows_only_the_start_of_a_key() -> None:
    key = generate_key()

    assert key.startswith(display_prefix(key))
    assert len(display_prefix(key)) < len(key) // 2


# -- authenticate -------------------------------------------------------------------------------------


async def test_a_valid_key_resolves_to_its_principal(
    authenticator: KeyAuthenticator, repository: FakeKeyRepository
) -> None:
    key, record = repository.issue()

    principal = await authenticator.authenticate(key)

    assert principal == Principal(
        tenant_id=record.tenant_id,
        key_id=record.id,
        team=None,
        user=None,
        label=record.label,
        allowed_providers=None,
        allowed_models=None,
    )


@pytest.mark.parametrize("presented", [None, ""])
async def test_no_key_is_a_missing_key_error(
    authenticator: KeyAuthenticator, repository: FakeKeyRepository, presented: str | None
) -> None:
    with pytest.raises(MissingKey):
        await authenticator.authenticate(presented)

    assert repository.lookups == 0


@pytest.mark.parametrize("presented", ["sk-proj-abc123", "Bearer tg-x", "TG-abc", "tg-" + "a" * 300])
async def test_a_malformed_key_is_refused_without_asking_the_repository(
    authenticator: KeyAuthenticator, repository: FakeKeyRepository, presented: str
) -> None:
    with pytest.raises(AuthError) as error:
        await authenticator.authenticate(presented)

    assert not isinstance(error.value, MissingKey)
    assert repository.lookups == 0


async def test_an_unknown_key_is_refused(
    authenticator: KeyAuthenticator, repository: FakeKeyRepository
) -> None:
    repository.issue()

    with pytest.raises(AuthError, match="invalid Tollgate key"):
        await authenticator.authenticate(generate_key())

    assert repository.lookups == 1


async def test_a_revoked_key_is_refused(
    authenticator: KeyAuthenticator, repository: FakeKeyRepository, clock: FakeClock
) -> None:
    key, _ = repository.issue(revoked_at=clock.utcnow() - timedelta(minutes=1))

    with pytest.raises(AuthError, match="revoked or has expired"):
        await authenticator.authenticate(key)


async def test_a_revoked_key_is_refused_by_a_gateway_whose_clock_is_behind_the_revoking_host(
    authenticator: KeyAuthenticator, repository: FakeKeyRepository, clock: FakeClock
) -> None:
    key, _ = repository.issue(revoked_at=clock.utcnow() + timedelta(minutes=2))

    with pytest.raises(AuthError, match="revoked or has expired"):
        await authenticator.authenticate(key)


async def test_an_expired_key_is_refused(
    authenticator: KeyAuthenticator, repository: FakeKeyRepository, clock: FakeClock
) -> None:
    key, _ = repository.issue(expires_at=clock.utcnow() - timedelta(seconds=1))

    with pytest.raises(AuthError, match="revoked or has expired"):
        await authenticator.authenticate(key)


async def test_a_key_stops_working_when_it_expires_even_while_cached(
    authenticator: KeyAuthenticator, repository: FakeKeyRepository, clock: FakeClock
) -> None:
    key, _ = repository.issue(expires_at=clock.utcnow() + timedelta(seconds=2))
    await authenticator.authenticate(key)

    clock.advance(2)

    with pytest.raises(AuthError, match="revoked or has expired"):
        await authenticator.authenticate(key)
    assert repository.lookups == 1


async def test_a_known_key_is_served_from_the_cache_within_the_ttl(
    authenticator: KeyAuthenticator, repository: FakeKeyRepository, clock: FakeClock
) -> None:
    key, _ = repository.issue()

    await authenticator.authenticate(key)
    clock.advance(TTL - 0.1)
    await authenticator.authenticate(key)

    assert repository.lookups == 1


async def test_a_revoked_key_keeps_working_until_the_cache_ttl_passes_and_is_refused_after(
    authenticator: KeyAuthenticator, repository: FakeKeyRepository, clock: FakeClock
) -> None:
    key, record = repository.issue()
    await authenticator.authenticate(key)

    await repository.revoke(record.id, clock.utcnow())
    clock.advance(TTL - 0.1)
    still_working = await authenticator.authenticate(key)
    clock.advance(0.1)

    assert still_working.key_id == record.id
    with pytest.raises(AuthError, match="revoked"):
        await authenticator.authenticate(key)


async def test_an_unknown_key_stays_refused_from_the_cache(
    authenticator: KeyAuthenticator, repository: FakeKeyRepository
) -> None:
    unknown = generate_key()

    for _ in range(3):
        with pytest.raises(AuthError):
            await authenticator.authenticate(unknown)

    assert repository.lookups == 1


async def test_concurrent_lookups_of_one_key_share_one_repository_call(
    authenticator: KeyAuthenticator, repository: FakeKeyRepository
) -> None:
    key, record = repository.issue()
    repository.gate = Gate()

    callers = [asyncio.create_task(authenticator.authenticate(key)) for _ in range(5)]
    await repository.gate.arrived.wait()
    repository.gate.open()
    principals = await asyncio.gather(*callers)

    assert [p.key_id for p in principals] == [record.id] * 5
    assert repository.lookups == 1


async def test_an_unavailable_repository_is_service_unavailable_and_not_cached(
    authenticator: KeyAuthenticator, repository: FakeKeyRepository
) -> None:
    key, record = repository.issue()
    repository.failure = StorageUnavailable("database error: OperationalError")

    with pytest.raises(ServiceUnavailable):
        await authenticator.authenticate(key)

    repository.failure = None
    assert (await authenticator.authenticate(key)).key_id == record.id
    assert repository.lookups == 2


async def test_a_repository_failure_reaches_every_concurrent_caller(
    authenticator: KeyAuthenticator, repository: FakeKeyRepository
) -> None:
    key, _ = repository.issue()
    repository.gate = Gate()
    repository.failure = StorageUnavailable("down")

    callers = [asyncio.create_task(authenticator.authenticate(key)) for _ in range(3)]
    await repository.gate.arrived.wait()
    repository.gate.open()
    outcomes = await asyncio.gather(*callers, return_exceptions=True)

    assert [type(outcome) for outcome in outcomes] == [ServiceUnavailable] * 3
    assert repository.lookups == 1


# -- a database outage: keys found are served stale for a bounded time --------------------------------

STALE = 300.0


async def test_a_key_found_keeps_working_past_its_ttl_while_the_database_is_unavailable(
    authenticator: KeyAuthenticator, repository: FakeKeyRepository, clock: FakeClock
) -> None:
    key, record = repository.issue()
    await authenticator.authenticate(key)
    repository.failure = StorageUnavailable("database error: OperationalError")

    clock.advance(TTL + STALE - 0.1)

    assert (await authenticator.authenticate(key)).key_id == record.id


async def test_a_key_is_served_stale_no_longer_than_stale_if_error_past_its_expiry(
    authenticator: KeyAuthenticator, repository: FakeKeyRepository, clock: FakeClock
) -> None:
    key, _ = repository.issue()
    await authenticator.authenticate(key)
    repository.failure = StorageUnavailable("down")

    clock.advance(TTL + STALE)

    with pytest.raises(ServiceUnavailable):
        await authenticator.authenticate(key)


async def test_a_key_never_seen_is_service_unavailable_while_the_database_is_unavailable(
    authenticator: KeyAuthenticator, repository: FakeKeyRepository
) -> None:
    key, _ = repository.issue()
    repository.failure = StorageUnavailable("down")

    with pytest.raises(ServiceUnavailable):
        await authenticator.authenticate(key)


async def test_an_unknown_key_is_not_refused_from_a_stale_answer_but_service_unavailable(
    authenticator: KeyAuthenticator, repository: FakeKeyRepository, clock: FakeClock
) -> None:
    unknown = generate_key()
    with pytest.raises(AuthError, match="invalid"):
        await authenticator.authenticate(unknown)
    repository.failure = StorageUnavailable("down")

    clock.advance(TTL)

    with pytest.raises(ServiceUnavailable):
        await authenticator.authenticate(unknown)


async def test_a_key_revoked_before_the_outage_stays_refused_during_it(
    authenticator: KeyAuthenticator, repository: FakeKeyRepository, clock: FakeClock
) -> None:
    key, record = repository.issue()
    await authenticator.authenticate(key)
    await repository.revoke(record.id, clock.utcnow())
    clock.advance(TTL)
    with pytest.raises(AuthError, match="revoked"):
        await authenticator.authenticate(key)
    repository.failure = StorageUnavailable("down")

    clock.advance(TTL)

    with pytest.raises(AuthError, match="revoked"):
        await authenticator.authenticate(key)


async def test_a_failure_other_than_unavailable_is_not_answered_stale(
    authenticator: KeyAuthenticator, repository: FakeKeyRepository, clock: FakeClock
) -> None:
    key, _ = repository.issue()
    await authenticator.authenticate(key)
    repository.failure = StorageRejected("the database refused a value")

    clock.advance(TTL)

    with pytest.raises(ServiceUnavailable):
        await authenticator.authenticate(key)


async def test_a_zero_stale_if_error_ends_a_key_at_its_ttl_during_an_outage(
    repository: FakeKeyRepository, clock: FakeClock
) -> None:
    authenticator = KeyAuthenticator(
        repository, ttl=TTL, size=100, clock=clock, now=clock.utcnow, stale_if_error=0
    )
    key, _ = repository.issue()
    await authenticator.authenticate(key)
    repository.failure = StorageUnavailable("down")

    clock.advance(TTL)

    with pytest.raises(ServiceUnavailable):
        await authenticator.authenticate(key)


# -- unknown keys cannot push real ones out of the cache -------------------------------------------------


async def test_a_flood_of_unknown_keys_does_not_evict_a_key_in_use(
    repository: FakeKeyRepository, clock: FakeClock
) -> None:
    authenticator = KeyAuthenticator(repository, ttl=TTL, size=10, clock=clock, now=clock.utcnow)
    key, record = repository.issue()
    await authenticator.authenticate(key)

    for _ in range(100):
        with pytest.raises(AuthError, match="invalid"):
            await authenticator.authenticate(generate_key())
    lookups = repository.lookups

    assert (await authenticator.authenticate(key)).key_id == record.id
    assert repository.lookups == lookups


async def test_during_an_outage_callers_of_a_key_found_do_not_wait_and_share_one_lookup(
    authenticator: KeyAuthenticator, repository: FakeKeyRepository, clock: FakeClock
) -> None:
    key, record = repository.issue()
    await authenticator.authenticate(key)
    repository.failure = StorageUnavailable("down")
    clock.advance(TTL)
    await authenticator.authenticate(key)  # its lookup fails: served stale, the outage is known
    assert repository.lookups == 2
    repository.gate = Gate()  # the database now hangs as well

    clock.advance(TTL / 2)  # time to look again
    principals = [await authenticator.authenticate(key) for _ in range(5)]
    await asyncio.wait_for(repository.gate.arrived.wait(), timeout=5)  # (only a guard against hanging)

    assert [p.key_id for p in principals] == [record.id] * 5
    assert repository.lookups == 3
    repository.gate.open()
    await asyncio.sleep(0)  # the lookup ends (and fails) before the test does


# -- the revocation bound after a failed lookup ------------------------------------------------------
# Without a lookup of its own, a key is served past its cache TTL only when the database was found
# unreachable after that TTL passed, or by a lookup of that key itself. A lookup that failed earlier for
# some other key (an unknown one, in a moment's outage) says nothing about whether this key has been
# revoked since: it is looked up again. During an outage found since, a key found before is served at
# once, its callers not kept waiting.


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
