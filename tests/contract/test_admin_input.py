"""What an operator gives the administrative operations is held alike by every database, or refused
before it reaches one: texts no longer than their columns and without NUL characters (which PostgreSQL
refuses and SQLite would store), an expiry that has a UTC form, a tenant id of the tenant id's shape."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.admin.operations import InvalidInput, create_tenant, issue_key, store_credential
from gateway.credentials.crypto import MasterKey
from gateway.settings.schema import Settings
from gateway.storage.models import credentials, teams, users
from gateway.storage.repositories import KeyRepository, TenantRepository
from tests.contract.builders import add_tenants, count_rows

# Each text an operator names, with the longest its column holds.
KEY_TEXTS = {"label": 200, "team": 200, "user": 320}


@pytest.fixture
def settings() -> Settings:
    return Settings.model_validate({"providers": {"openai": {"type": "openai"}}})


@pytest.fixture
def master() -> MasterKey:
    return MasterKey.generate()[0]


async def test_a_tenant_name_as_long_as_its_column_is_stored_whole(engine: AsyncEngine) -> None:
    tenant = await create_tenant(engine, "acme", "n" * 200)

    assert await TenantRepository(engine).get("acme") == tenant


@pytest.mark.parametrize(
    ("name", "reason"),
    [("n" * 201, "at most 200 characters, got 201"), ("ac\x00me", "NUL")],
    ids=["long", "nul"],
)
async def test_a_tenant_name_no_database_would_hold_alike_is_refused(
    engine: AsyncEngine, name: str, reason: str
) -> None:
    with pytest.raises(InvalidInput, match=reason):
        await create_tenant(engine, "acme", name)

    assert await TenantRepository(engine).list() == []


@pytest.mark.parametrize(("field", "limit"), KEY_TEXTS.items(), ids=list(KEY_TEXTS))
async def test_a_key_text_as_long_as_its_column_is_stored_whole(
    engine: AsyncEngine, settings: Settings, field: str, limit: int
) -> None:
    await add_tenants(engine, "acme")

    issued = await issue_key(engine, settings, tenant_id="acme", **{field: "x" * limit})

    assert await KeyRepository(engine).get(issued.record.id) == issued.record
    assert getattr(issued.record, field) == "x" * limit


@pytest.mark.parametrize(("field", "limit"), KEY_TEXTS.items(), ids=list(KEY_TEXTS))
async def test_a_key_text_longer_than_its_column_is_refused(
    engine: AsyncEngine, settings: Settings, field: str, limit: int
) -> None:
    await add_tenants(engine, "acme")

    with pytest.raises(InvalidInput, match=f"at most {limit} characters, got {limit + 1}"):
        await issue_key(engine, settings, tenant_id="acme", **{field: "x" * (limit + 1)})

    assert await KeyRepository(engine).list() == []


@pytest.mark.parametrize("field", list(KEY_TEXTS))
async def test_a_key_text_with_a_nul_character_is_refused(
    engine: AsyncEngine, settings: Settings, field: str
) -> None:
    await add_tenants(engine, "acme")

    with pytest.raises(InvalidInput, match="NUL"):
        await issue_key(engine, settings, tenant_id="acme", **{field: "lap\x00top"})

    assert await KeyRepository(engine).list() == []


async def test_an_expiry_given_in_another_zone_is_stored_as_the_same_instant_in_utc(
    engine: AsyncEngine, settings: Settings
) -> None:
    await add_tenants(engine, "acme")
    expiry = datetime(2100, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=-1)))

    issued = await issue_key(engine, settings, tenant_id="acme", expires_at=expiry)

    assert issued.record.expires_at == expiry and issued.record.expires_at.tzinfo == UTC
    assert await KeyRepository(engine).get(issued.record.id) == issued.record


async def test_an_expiry_past_the_last_storable_instant_is_refused(
    engine: AsyncEngine, settings: Settings
) -> None:
    await add_tenants(engine, "acme")
    in_year_10000_in_utc = datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-1)))

    with pytest.raises(InvalidInput, match="9999-12-31T23:59:59Z"):
        await issue_key(engine, settings, tenant_id="acme", expires_at=in_year_10000_in_utc)

    assert await KeyRepository(engine).list() == []


@pytest.mark.parametrize("tenant_id", ["a" * 64, "ac\x00me", "Acme"], ids=["long", "nul", "upper-case"])
async def test_a_key_or_credential_for_a_tenant_id_no_tenant_can_have_is_refused(
    engine: AsyncEngine, settings: Settings, master: MasterKey, tenant_id: str
) -> None:
    with pytest.raises(InvalidInput, match="a tenant id is"):
        await issue_key(engine, settings, tenant_id=tenant_id)
    with pytest.raises(InvalidInput, match="a tenant id is"):
        await store_credential(
            engine, settings, master, tenant_id=tenant_id, provider="openai", secret="sk-test-0001"
        )


@pytest.mark.parametrize(
    ("label", "reason"),
    [("l" * 201, "at most 200 characters, got 201"), ("a\x00b", "NUL")],
    ids=["long", "nul"],
)
async def test_a_credential_label_no_database_would_hold_alike_is_refused(
    engine: AsyncEngine, settings: Settings, master: MasterKey, label: str, reason: str
) -> None:
    await add_tenants(engine, "acme")
    arguments: dict[str, Any] = {"tenant_id": "acme", "provider": "openai", "secret": "sk-test-0001"}

    with pytest.raises(InvalidInput, match=reason):
        await store_credential(engine, settings, master, label=label, **arguments)
    await store_credential(engine, settings, master, label="l" * 200, **arguments)

    assert await count_rows(engine, credentials) == 1


@pytest.mark.parametrize(
    "secret",
    ["sk-abc\u200bdef", "sk-abc€def", "sk-abc\u00a0def", "sk-abc\tdef", "sk-abc\x7fdef", "sk-abcédf"],
    ids=["zero-width-space", "euro-sign", "no-break-space", "tab", "del", "accented-letter"],
)
async def test_a_credential_that_is_not_printable_ascii_is_refused_without_being_repeated(
    engine: AsyncEngine, settings: Settings, master: MasterKey, secret: str
) -> None:
    await add_tenants(engine, "acme")

    with pytest.raises(InvalidInput, match="printable ASCII") as refusal:
        await store_credential(engine, settings, master, tenant_id="acme", provider="openai", secret=secret)

    assert f"character 7 of {len(secret)} is not" in str(refusal.value)
    assert "sk-abc" not in str(refusal.value)
    assert await count_rows(engine, credentials) == 0


async def test_a_credential_of_any_printable_ascii_characters_is_stored(
    engine: AsyncEngine, settings: Settings, master: MasterKey
) -> None:
    await add_tenants(engine, "acme")
    every_one = "".join(chr(code) for code in range(0x21, 0x7F))

    await store_credential(
        engine, settings, master, tenant_id="acme", provider="openai", secret=f"sk {every_one}"
    )

    assert await count_rows(engine, credentials) == 1


@pytest.mark.parametrize("field", ["team", "user"])
async def test_a_team_or_user_name_is_stripped_so_that_surrounding_spaces_make_no_second_one(
    engine: AsyncEngine, settings: Settings, field: str
) -> None:
    await add_tenants(engine, "acme")

    issued = [
        await issue_key(engine, settings, tenant_id="acme", **{field: name})
        for name in ("ml", " ml", "ml ", "\tml\n")
    ]

    assert {getattr(key.record, field) for key in issued} == {"ml"}
    table = teams if field == "team" else users
    assert await count_rows(engine, table) == 1


@pytest.mark.parametrize("field", ["team", "user"])
@pytest.mark.parametrize("name", ["", "   "], ids=["empty", "blank"])
async def test_an_empty_or_blank_team_or_user_name_is_refused(
    engine: AsyncEngine, settings: Settings, field: str, name: str
) -> None:
    await add_tenants(engine, "acme")

    with pytest.raises(InvalidInput, match="cannot be empty"):
        await issue_key(engine, settings, tenant_id="acme", **{field: name})

    assert await KeyRepository(engine).list() == []
