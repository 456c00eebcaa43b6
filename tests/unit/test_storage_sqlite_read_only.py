"""A SQLite database file that cannot be written when a connection opens it (a read-only file or file
system, an immutable file) is read from meanwhile and written again once it can be: the pool keeps no
connection that SQLite opened read-only, as it would refuse every write for as long as it lived."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.storage.engine import create_engine
from gateway.storage.errors import StorageUnavailable
from gateway.storage.migrate import upgrade
from gateway.storage.models import usage_records
from gateway.storage.repositories import KeyRepository
from gateway.storage.usage import UsageRepository
from tests.contract.builders import digest_of
from tests.support.metering import usage_record
from tests.support.postgres import in_thread


@contextmanager
def unwritable(path: Path) -> Iterator[None]:
    """`path` cannot be opened for writing during the block: immutable for root (whom file modes do
    not stop), mode 0444 for anyone else."""
    if os.geteuid() != 0:
        mode = path.stat().st_mode
        path.chmod(0o444)
        try:
            yield
        finally:
            path.chmod(mode)
        return
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", path]).returncode != 0:
        pytest.skip("root, and no `chattr +i` here to make a file unwritable")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", path], check=True)


async def test_a_database_opened_while_unwritable_is_read_meanwhile_and_written_once_writable(
    tmp_path: Path,
) -> None:
    path = tmp_path / "tollgate.db"
    in_thread(lambda: upgrade(f"sqlite:///{path}"))
    engine = create_engine(f"sqlite:///{path}")
    ledger = UsageRepository(engine)
    try:
        with unwritable(path):
            found = await KeyRepository(engine).find_by_digest(digest_of("tg-unknown"))
            with pytest.raises(StorageUnavailable):
                await ledger.insert_many([usage_record("while-unwritable")])
        await ledger.insert_many([usage_record("once-writable")])  # as the ledger's next retry
        async with engine.connect() as connection:
            written = (await connection.execute(select(usage_records.c.request_id))).scalars().all()
    finally:
        await engine.dispose()

    assert found is None
    assert written == ["once-writable"]
