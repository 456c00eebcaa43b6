"""Tollgate keys: stored by digest, with their team and user, allow-lists and lifetimes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.storage.errors import AlreadyExists, StorageRejected, UnknownRecord
from gateway.storage.models import teams, users
from gateway.storage.repositories import KeyRepository
from tests.contract.builders import T0, add_tenants, at, count_rows, digest_of, key_record


async def test_a_created_key_is_found_by_its_digest_together_with_that_digest(engine: AsyncEngine) -> None:
    await add_tenants(engine, "acme")
    record = key_record("acme", label="laptop", team="platform", user="ada@example.com")

    await KeyRepository(engine).create(record, digest_of("secret"))

    assert await KeyRepository(engine).find_by_digest(digest_of("secret")) == (record, digest_of("secret"))


async def test_an_unknown_digest_finds_no_key(engine: AsyncEngine) -> None:
    await add_tenants(engine, "acme")
    await KeyRepository(engine).create(key_record("acme"), digest_of("secret"))

    assert await KeyRepository(engine).find_by_digest(digest_of("guess")) is None


async def test_a_key_is_read_back_by_id_and_an_unknown_id_is_none(engine: AsyncEngine) -> None:
    await add_tenants(engine, "acme")
    record = key_record("acme")
    await KeyRepository(engine).create(record, digest_of("secret"))

    assert await KeyRepository(engine).get(record.id) == record
    assert await KeyRepository(engine).get("key_missing") is None


async def test_a_key_without_team_or_user_creates_neither(engine: AsyncEngine) -> None:
    await add_tenants(engine, "acme")
    record = key_record("acme", team=None, user=None)

    await KeyRepository(engine).create(record, digest_of("secret"))

    stored = await KeyRepository(engine).get(record.id)
    assert stored is not None
    assert (stored.team, stored.user) == (None, None)
    assert await count_rows(engine, teams) == await count_rows(engine, users) == 0


async def test_team_and_user_are_created_on_first_mention_and_reused_by_the_next_key(
    engine: AsyncEngine,
) -> None:
    await add_tenants(engine, "acme")
    keys = KeyRepository(engine)
    first = key_record("acme", team="platform", user="ada@example.com")
    second = key_record("acme", team="platform", user="ada@example.com", created_at=at(1))

    await keys.create(first, digest_of("first"))
    await keys.create(second, digest_of("second"))

    assert await count_rows(engine, teams, tenant_id="acme", name="platform") == 1
    assert await count_rows(engine, users, tenant_id="acme", name="ada@example.com") == 1
    assert [(k.team, k.user) for k in await keys.list("acme")] == [("platform", "ada@example.com")] * 2


async def test_the_same_team_name_in_two_tenants_is_two_teams(engine: AsyncEngine) -> None:
    await add_tenants(engine, "acme", "globex")

    await KeyRepository(engine).create(key_record("acme", team="platform"), digest_of("a"))
    await KeyRepository(engine).create(key_record("globex", team="platform"), digest_of("g"))

    async with engine.connect() as connection:
        owners = (await connection.scalars(select(teams.c.tenant_id).order_by(teams.c.tenant_id))).all()
    assert owners == ["acme", "globex"]


async def test_keys_issued_concurrently_for_a_new_team_share_it(engine: AsyncEngine) -> None:
    await add_tenants(engine, "acme")
    keys = KeyRepository(engine)
    records = [key_record("acme", team="platform", user="ada@example.com") for _ in range(4)]

    await asyncio.gather(*(keys.create(r, digest_of(r.id)) for r in records))

    assert await count_rows(engine, teams) == 1
    assert await count_rows(engine, users) == 1
    assert {k.id for k in await keys.list("acme")} == {r.id for r in records}


async def test_a_key_for_an_unknown_tenant_raises_unknown_record_and_stores_nothing(
    engine: AsyncEngine,
) -> None:
    await add_tenants(engine, "acme")

    with pytest.raises(UnknownRecord):
        await KeyRepository(engine).create(key_record("globex", team="platform"), digest_of("secret"))

    assert await KeyRepository(engine).list() == []
    assert await count_rows(engine, teams) == 0


async def test_a_second_key_with_the_same_digest_raises_already_exists(engine: AsyncEngine) -> None:
    await add_tenants(engine, "acme")
    first = key_record("acme")
    await KeyRepository(engine).create(first, digest_of("secret"))

    with pytest.raises(AlreadyExists):
        await KeyRepository(engine).create(key_record("acme"), digest_of("secret"))

    assert await KeyRepository(engine).list() == [first]


async def test_allow_lists_round_trip_as_frozensets(engine: AsyncEngine) -> None:
    await add_tenants(engine, "acme")
    restricted = key_record(
        "acme", allowed_providers=frozenset({"openai", "anthropic"}), allowed_models=frozenset({"gpt-4o"})
    )
    unrestricted = key_record("acme", allowed_providers=None, allowed_models=None, created_at=at(1))
    await KeyRepository(engine).create(restricted, digest_of("restricted"))
    await KeyRepository(engine).create(unrestricted, digest_of("unrestricted"))

    stored = {record.id: record for record in await KeyRepository(engine).list("acme")}

    assert stored[restricted.id].allowed_providers == frozenset({"anthropic", "openai"})
    assert isinstance(stored[restricted.id].allowed_providers, frozenset)
    assert stored[restricted.id].allowed_models == frozenset({"gpt-4o"})
    assert isinstance(stored[restricted.id].allowed_models, frozenset)
    assert (stored[unrestricted.id].allowed_providers, stored[unrestricted.id].allowed_models) == (None, None)


async def test_timestamps_come_back_as_the_same_instants_in_utc(engine: AsyncEngine) -> None:
    await add_tenants(engine, "acme")
    berlin = timezone(timedelta(hours=2))
    created, expires = T0.astimezone(berlin), (T0 + timedelta(days=30)).astimezone(berlin)
    record = key_record("acme", created_at=created, expires_at=expires)
    await KeyRepository(engine).create(record, digest_of("secret"))

    stored = await KeyRepository(engine).revoke(record.id, at(5).astimezone(berlin))

    for instant, expected in (
        (stored.created_at, T0),
        (stored.expires_at, expires),
        (stored.revoked_at, at(5)),
    ):
        assert instant == expected
        assert instant is not None and instant.tzinfo is not None
        assert instant.utcoffset() == timedelta(0)
        assert instant.tzinfo == UTC


async def test_revoking_a_key_records_when_and_makes_it_unusable_at_any_instant(engine: AsyncEngine) -> None:
    await add_tenants(engine, "acme")
    record = key_record("acme")
    await KeyRepository(engine).create(record, digest_of("secret"))

    revoked = await KeyRepository(engine).revoke(record.id, at(10))

    assert revoked.revoked_at == at(10)
    assert await KeyRepository(engine).get(record.id) == revoked
    # `revoked_at` is the revoking host's clock: a gateway whose clock reads earlier refuses the key too.
    assert not revoked.is_usable_at(at(9))
    assert not revoked.is_usable_at(at(10))
    assert not revoked.is_usable_at(at(11))


async def test_revoking_twice_keeps_the_first_revocation_time(engine: AsyncEngine) -> None:
    await add_tenants(engine, "acme")
    record = key_record("acme")
    await KeyRepository(engine).create(record, digest_of("secret"))
    await KeyRepository(engine).revoke(record.id, at(10))

    again = await KeyRepository(engine).revoke(record.id, at(20))

    assert again.revoked_at == at(10)
    found = await KeyRepository(engine).find_by_digest(digest_of("secret"))
    assert found is not None and found[0].revoked_at == at(10)


async def test_revoking_an_unknown_key_raises_unknown_record(engine: AsyncEngine) -> None:
    await add_tenants(engine, "acme")

    with pytest.raises(UnknownRecord):
        await KeyRepository(engine).revoke("key_missing", at(10))


async def test_keys_are_listed_by_tenant_then_creation_time(engine: AsyncEngine) -> None:
    await add_tenants(engine, "acme", "globex")
    keys = KeyRepository(engine)
    late_acme = key_record("acme", created_at=at(2))
    globex = key_record("globex", created_at=at(0))
    early_acme = key_record("acme", created_at=at(1))
    for record in (late_acme, globex, early_acme):
        await keys.create(record, digest_of(record.id))

    assert [k.id for k in await keys.list("acme")] == [early_acme.id, late_acme.id]
    assert [k.id for k in await keys.list("globex")] == [globex.id]
    assert [k.id for k in await keys.list()] == [early_acme.id, late_acme.id, globex.id]


async def test_a_tenant_without_keys_lists_none(engine: AsyncEngine) -> None:
    await add_tenants(engine, "acme", "globex")
    await KeyRepository(engine).create(key_record("acme"), digest_of("secret"))

    assert await KeyRepository(engine).list("globex") == []


async def test_an_expiry_with_no_utc_form_is_refused_as_a_value_not_reported_as_an_outage(
    engine: AsyncEngine,
) -> None:
    await add_tenants(engine, "acme")
    in_year_10000_in_utc = datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-1)))

    with pytest.raises(StorageRejected, match="the database refused a value"):
        await KeyRepository(engine).create(
            key_record("acme", expires_at=in_year_10000_in_utc), digest_of("k")
        )

    assert await KeyRepository(engine).list() == []


async def test_a_digest_finds_only_its_own_key_never_one_it_is_a_prefix_of(engine: AsyncEngine) -> None:
    await add_tenants(engine, "acme")
    digest = digest_of("the key")
    await KeyRepository(engine).create(key_record(), digest)

    assert await KeyRepository(engine).find_by_digest(digest[:16]) is None
    assert await KeyRepository(engine).find_by_digest(digest + b"\x00") is None
