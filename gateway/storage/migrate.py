"""Schema migrations, run programmatically with Alembic (`tollgate db upgrade`)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.storage.engine import async_url

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", async_url(url).render_as_string(hide_password=False))
    return config


def ensure_sqlite_directory(url: str) -> None:
    """Create the parent folder of a SQLite database file, so a fresh checkout just works."""
    target = async_url(url)
    if target.get_backend_name() == "sqlite" and target.database not in (None, "", ":memory:"):
        Path(target.database).parent.mkdir(parents=True, exist_ok=True)


def upgrade(url: str, revision: str = "head") -> None:
    """Apply migrations up to `revision`. Blocking: call from a thread inside an event loop."""
    ensure_sqlite_directory(url)
    command.upgrade(alembic_config(url), revision)


async def upgrade_async(url: str, revision: str = "head") -> None:
    await asyncio.to_thread(upgrade, url, revision)


def head_revision() -> str:
    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    assert head is not None
    return head


def is_known_revision(revision: str) -> bool:
    """Whether `revision` is one of this version's migrations (not one a later version added)."""
    try:
        return ScriptDirectory(str(MIGRATIONS)).get_revision(revision) is not None
    except CommandError:  # alembic's: no such revision
        return False


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at, None for an empty database."""

    def read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with engine.connect() as connection:
        return await connection.run_sync(read)
