"""Opening the database: a URL scheme picks the async driver, and SQLite gets sane pragmas.

`sqlite:///path.db` runs on aiosqlite (the embedded default), `postgresql://...` on asyncpg.
PostgreSQL is given bounded time: a server that stops answering (a network partition, a hung server)
fails the call that needs it, as a refused one does, instead of stalling it and the shutdown behind it.
"""

from __future__ import annotations

import contextlib
import sqlite3
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


# PostgreSQL's bounds, in seconds: to connect, for each statement (a pooled connection's pre-ping
# included), to wait for a pooled connection, and for the server to see a closed connection go. Past the
# first three, asyncpg raises TimeoutError (an OSError) or the pool SQLAlchemy's TimeoutError, both
# translated to `StorageUnavailable` where they enter (`repositories.transaction`).
CONNECT_TIMEOUT = 5.0
COMMAND_TIMEOUT = 10.0
POOL_TIMEOUT = 5.0
CLOSE_TIMEOUT = 1.0
_SQLITE_BUSY_TIMEOUT_MS = 5000  # how long SQLite waits for another connection's write lock


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


def create_engine(
    url: str, pool_size: int = 10, *, statement_timeout: float | None = COMMAND_TIMEOUT
) -> AsyncEngine:
    """An async engine for `url`; SQLite gets WAL, a busy timeout and enforced foreign keys, PostgreSQL
    the time bounds above: `statement_timeout` None for work that may rightly take longer (migrations
    over a large ledger, reports run from the command line)."""
    target = async_url(url)
    if target.get_backend_name() == "sqlite":
        engine = create_async_engine(target, pool_pre_ping=True)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_async_engine(
        target,
        pool_pre_ping=True,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=POOL_TIMEOUT,
        connect_args={"timeout": CONNECT_TIMEOUT, "command_timeout": statement_timeout},
    )
    event.listen(engine.sync_engine, "close", _close_within_bounds)
    return engine


def _close_within_bounds(dbapi_connection: Any, _record: Any) -> None:
    """Close a pooled PostgreSQL connection waiting at most `CLOSE_TIMEOUT` for the server to see it go
    (then dropping it): a hung server would otherwise hold each close for the statement timeout, and a
    shutdown closes the whole pool one connection after another."""
    # Past the timeout asyncpg drops the connection and raises; whatever this close meets (a connection
    # already broken), SQLAlchemy's own close follows, and a close must never fail the pool's work.
    with contextlib.suppress(Exception):
        dbapi_connection.run_async(lambda connection: connection.close(timeout=CLOSE_TIMEOUT))


def _sqlite_pragmas(dbapi_connection: Any, record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    read_only = _opened_read_only(cursor)
    cursor.close()
    if read_only:  # it serves this checkout's reads; the next one opens the file again
        record.invalidate(soft=True)


def _opened_read_only(cursor: Any) -> bool:
    """Whether SQLite opened the file read-only, as it silently does when it cannot open it for writing
    (a read-only file or file system, an immutable file). Such a connection refuses every write for as
    long as it lives, even once the file is writable again, so the pool must not keep it. A write rolled
    back tells: SQLite refuses it as read-only before taking any lock, and is busy, not read-only, when
    another connection is writing (no writer is waited for)."""
    cursor.execute("PRAGMA busy_timeout=0")
    cursor.execute("BEGIN")
    try:
        cursor.execute("PRAGMA user_version")
        (version,) = cursor.fetchone()
        cursor.execute(f"PRAGMA user_version={int(version)}")  # the value it has: a write, undone below
    except sqlite3.OperationalError as exc:
        return exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_READONLY  # extended codes keep it below
    finally:
        cursor.execute("ROLLBACK")
        cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_TIMEOUT_MS}")
    return False
