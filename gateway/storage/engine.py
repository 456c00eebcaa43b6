"""Opening the database: a URL scheme picks the async driver, and SQLite gets sane pragmas.

`sqlite:///path.db` runs on aiosqlite (the embedded default), `postgresql://...` on asyncpg.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
}


class DatabaseURLError(ValueError):
    """The database URL names no supported backend."""


def async_url(url: str) -> URL:
    """The SQLAlchemy URL with the async driver for the URL's scheme."""
    supported = "sqlite:///PATH, postgresql://USER@HOST:PORT/DB"
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise DatabaseURLError(f"database.url is not a valid URL ({supported}, PORT a number)") from None
    driver = _DRIVERS.get(parsed.drivername)
    if driver is None:
        raise DatabaseURLError(f"database.url scheme {parsed.drivername!r} is not supported ({supported})")
    return parsed.set(drivername=driver)


def redacted(url: str) -> str:
    """The URL with any password hidden, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "<invalid database url>"


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"


def create_engine(url: str, pool_size: int = 10) -> AsyncEngine:
    """An async engine for `url`; SQLite gets WAL, a busy timeout and enforced foreign keys."""
    target = async_url(url)
    options: dict[str, Any] = {"pool_pre_ping": True}
    if target.get_backend_name() == "postgresql":
        options.update(pool_size=pool_size, max_overflow=pool_size)
    engine = create_async_engine(target, **options)
    if target.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
