"""A database that cannot be used (unreachable, or not a database) raises `StorageUnavailable`."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.storage.engine import create_engine
from gateway.storage.errors import StorageUnavailable
from gateway.storage.repositories import KeyRepository, TenantRepository
from tests.contract.builders import T0, digest_of


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
