"""Throwaway PostgreSQL databases for tests: one per test session (or per test), dropped afterwards.

The server is the one at `$TOLLGATE_TEST_POSTGRES_URL` (default: the local `postgres` maintenance
database). Where it cannot be reached, tests that need it are skipped with the reason, except under
`CI=true`, where a missing server fails the run instead of silently testing less.

    admin = postgres_admin_url()
    require_postgres(admin)                       # skip (or fail under CI) when unreachable
    with temporary_database(admin, migrated=True) as url:
        engine = create_engine(url)               # gateway.storage.engine
        ...

The helpers are blocking: each runs its own event loop on a worker thread, so they can be called
from synchronous fixtures and from inside a running event loop alike.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from gateway.storage.engine import redacted
from gateway.storage.migrate import upgrade

ADMIN_URL_VARIABLE = "TOLLGATE_TEST_POSTGRES_URL"
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DATABASE_PREFIX = "tollgate_test"
CONNECT_TIMEOUT_SECONDS = 5.0

T = TypeVar("T")


def postgres_admin_url() -> str:
    """The maintenance connection used to create and drop test databases."""
    return os.environ.get(ADMIN_URL_VARIABLE) or DEFAULT_ADMIN_URL


def running_in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def in_thread(function: Callable[[], T]) -> T:
    """Call `function` on a worker thread, out of reach of any event loop running here."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="postgres-support") as pool:
        return pool.submit(function).result()


def run_blocking(work: Callable[[], Awaitable[T]]) -> T:
    """Run `work()` to completion on a fresh event loop in a worker thread."""

    async def main() -> T:
        return await work()

    return in_thread(lambda: asyncio.run(main()))


def _libpq_url(url: str) -> str:
    """`url` as asyncpg takes it: plain `postgresql://`, whatever driver suffix it was given with."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _connect(url: str) -> asyncpg.Connection:
    return await asyncpg.connect(_libpq_url(url), timeout=CONNECT_TIMEOUT_SECONDS)


def unreachable_reason(admin_url: str) -> str | None:
    """Why the server at `admin_url` cannot be used, or None when it answers."""

    async def probe() -> None:
        connection = await _connect(admin_url)
        try:
            await connection.fetchval("SELECT 1")
        finally:
            await connection.close()

    try:
        run_blocking(probe)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def require_postgres(admin_url: str) -> None:
    """Skip the calling test (fail it under CI=true) when the server cannot be reached."""
    reason = unreachable_reason(admin_url)
    if reason is None:
        return
    message = f"PostgreSQL unreachable at {redacted(admin_url)}: {reason}"
    if running_in_ci():
        pytest.fail(f"{message} (CI=true: a PostgreSQL server is required)", pytrace=False)
    pytest.skip(message)


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def create_database(admin_url: str) -> str:
    """Create an empty database with a unique name; returns its URL."""
    name = f"{DATABASE_PREFIX}_{os.getpid()}_{secrets.token_hex(4)}"

    async def create() -> None:
        connection = await _connect(admin_url)
        try:
            await connection.execute(f"CREATE DATABASE {_quoted(name)}")
        finally:
            await connection.close()

    run_blocking(create)
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_database(admin_url: str, url: str) -> None:
    """Drop the database `url` names, closing any connection still open to it."""
    name = make_url(url).database
    if not name or not name.startswith(DATABASE_PREFIX):
        raise ValueError(f"refusing to drop {name!r}: not a test database")

    async def drop() -> None:
        connection = await _connect(admin_url)
        try:
            await connection.execute(f"DROP DATABASE IF EXISTS {_quoted(name)} WITH (FORCE)")
        finally:
            await connection.close()

    run_blocking(drop)


@contextmanager
def temporary_database(admin_url: str, *, migrated: bool) -> Iterator[str]:
    """A fresh database (migrated to head when asked) for the duration of the block, then dropped."""
    url = create_database(admin_url)
    try:
        if migrated:
            in_thread(lambda: upgrade(url))
        yield url
    finally:
        drop_database(admin_url, url)


def set_connections_allowed(admin_url: str, url: str, allowed: bool) -> None:
    """Take a test database down (refuse and cut every connection) or bring it back: an outage on demand."""
    name = make_url(url).database
    assert name is not None and name.startswith(DATABASE_PREFIX), "only test databases go down"

    async def switch() -> None:
        connection = await _connect(admin_url)
        try:
            await connection.execute(
                f"ALTER DATABASE {_quoted(name)} WITH ALLOW_CONNECTIONS {str(allowed).lower()}"
            )
            if not allowed:
                await connection.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
                )
        finally:
            await connection.close()

    run_blocking(switch)
