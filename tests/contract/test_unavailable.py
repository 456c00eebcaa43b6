"""A database that cannot be used (unreachable, not a database, or no longer answering) raises
`StorageUnavailable`, which the request path answers with 503, within bounded time."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from gateway.auth.keys import KeyAuthenticator, generate_key
from gateway.credentials.crypto import MasterKey
from gateway.credentials.store import CredentialStore
from gateway.errors import ServiceUnavailable
from gateway.storage.engine import CLOSE_TIMEOUT, COMMAND_TIMEOUT, CONNECT_TIMEOUT, create_engine
from gateway.storage.errors import StorageUnavailable
from gateway.storage.repositories import CredentialRepository, KeyRepository, TenantRepository
from tests.contract.builders import T0, digest_of
from tests.support.silence import PausableRelay, SilentPort


@pytest.fixture
def unusable_url(backend: str, tmp_path: Path) -> str:
    if backend == "sqlite":
        path = tmp_path / "tollgate.db"
        path.write_bytes(b"this is not a SQLite database" * 100)
        return f"sqlite:///{path}"
    return "postgresql://postgres@127.0.0.1:1/tollgate"


async def test_reads_and_writes_on_an_unusable_database_raise_storage_unavailable(
    unusable_url: str,
) -> None:
    engine = create_engine(unusable_url)
    try:
        with pytest.raises(StorageUnavailable):
            await TenantRepository(engine).create("acme", "Acme", T0)
        with pytest.raises(StorageUnavailable):
            await KeyRepository(engine).find_by_digest(digest_of("secret"))
    finally:
        await engine.dispose()


async def test_a_postgresql_server_that_never_answers_is_unavailable_within_the_connect_timeout() -> None:
    with SilentPort() as port:
        engine = create_engine(f"postgresql://postgres@127.0.0.1:{port}/tollgate")
        authenticator = KeyAuthenticator(KeyRepository(engine), ttl=5, size=10)
        started = time.monotonic()
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT + 5):  # the old driver default was 60 s
                with pytest.raises(ServiceUnavailable, match="the key store is unavailable"):
                    await authenticator.authenticate(generate_key())
        finally:
            await engine.dispose()

    assert time.monotonic() - started < CONNECT_TIMEOUT + 1


@pytest.mark.postgres
async def test_a_postgresql_server_that_stops_answering_fails_lookups_within_the_statement_timeout(
    postgres_migrated: str,
) -> None:
    target = make_url(postgres_migrated)
    with PausableRelay(target.port or 5432) as relay:
        engine = create_engine(target.set(port=relay.port).render_as_string(hide_password=False))
        keys = KeyAuthenticator(KeyRepository(engine), ttl=5, size=10)
        credentials = CredentialStore(CredentialRepository(engine), MasterKey.generate()[0])
        try:
            await KeyRepository(engine).find_by_digest(digest_of("warm"))  # a pooled connection
            relay.pause()
            started = time.monotonic()
            async with asyncio.timeout(COMMAND_TIMEOUT + 10):  # without bounds: forever
                key_lookup, credential_lookup = await asyncio.gather(
                    keys.authenticate(generate_key()),
                    credentials.resolve("acme", "openai"),
                    return_exceptions=True,
                )
            elapsed = time.monotonic() - started
        finally:
            relay.resume()
            await engine.dispose()

    assert isinstance(key_lookup, ServiceUnavailable)
    assert "the key store is unavailable" in str(key_lookup)
    assert isinstance(credential_lookup, StorageUnavailable)  # the credential stage's 503
    assert elapsed < COMMAND_TIMEOUT + CLOSE_TIMEOUT + 1  # the pre-ping's statement, then dropping it


@pytest.mark.postgres
async def test_a_pool_of_connections_to_a_server_that_stopped_answering_closes_a_second_a_connection(
    postgres_migrated: str,
) -> None:
    target = make_url(postgres_migrated)
    with PausableRelay(target.port or 5432) as relay:
        engine = create_engine(target.set(port=relay.port).render_as_string(hide_password=False))
        try:
            keys = KeyRepository(engine)
            await asyncio.gather(*(keys.find_by_digest(digest_of(f"warm-{n}")) for n in range(3)))
            relay.pause()
            started = time.monotonic()
            async with asyncio.timeout(3 * COMMAND_TIMEOUT + 10):  # each waited for the statement timeout
                await engine.dispose()  # as a shutdown does
            elapsed = time.monotonic() - started
        finally:
            relay.resume()

    assert elapsed < 3 * CLOSE_TIMEOUT + 1
