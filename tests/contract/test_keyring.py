"""The keyring: one canary per master key ever used with the database."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.storage.errors import AlreadyExists
from gateway.storage.records import KeyringEntry
from gateway.storage.repositories import KeyringRepository
from tests.contract.builders import at


async def test_a_new_database_has_an_empty_keyring(engine: AsyncEngine) -> None:
    assert await KeyringRepository(engine).entries() == []


async def test_entries_are_read_back_oldest_first(engine: AsyncEngine) -> None:
    keyring = KeyringRepository(engine)
    newer = KeyringEntry("mk-bbbbbbbbbbbbbbbb", b"\x00sealed canary two", at(5))
    older = KeyringEntry("mk-aaaaaaaaaaaaaaaa", b"\x00sealed canary one", at(1))

    await keyring.add(newer)
    await keyring.add(older)

    assert list(await keyring.entries()) == [older, newer]


async def test_adding_a_master_key_twice_raises_already_exists(engine: AsyncEngine) -> None:
    keyring = KeyringRepository(engine)
    first = KeyringEntry("mk-aaaaaaaaaaaaaaaa", b"first canary", at(1))
    await keyring.add(first)

    with pytest.raises(AlreadyExists):
        await keyring.add(KeyringEntry("mk-aaaaaaaaaaaaaaaa", b"second canary", at(2)))

    assert list(await keyring.entries()) == [first]
