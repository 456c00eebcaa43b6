"""Every contract test runs once per storage backend, each time on a migrated database of its own.

SQLite: a copy, per test, of a database file migrated once per session. PostgreSQL: one database
per session (created on the server at `$TOLLGATE_TEST_POSTGRES_URL`, dropped at the end), its tables
emptied before each test. PostgreSQL tests carry the `postgres` marker; they are skipped with the
reason when the server is unreachable, and fail instead under `CI=true`.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from gateway.admin.http import AdminAPI
from gateway.storage.engine import create_engine
from gateway.storage.migrate import upgrade
from gateway.storage.models import metadata
from tests.support.postgres import in_thread, postgres_admin_url, require_postgres, temporary_database

ADMIN_TOKEN = "admin-token-of-the-contract-tests"

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database migrated to head once; each test gets a copy of it."""
    folder = tmp_path_factory.mktemp("sqlite-template")
    in_thread(lambda: upgrade(f"sqlite:///{folder / 'tollgate.db'}"))
    return folder


@pytest.fixture(scope="session")
def postgres_admin() -> str:
    admin = postgres_admin_url()
    require_postgres(admin)
    return admin


@pytest.fixture(scope="session")
def postgres_migrated(postgres_admin: str) -> Iterator[str]:
    with temporary_database(postgres_admin, migrated=True) as url:
        yield url


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a database at head (for PostgreSQL shared by the session: see `engine`)."""
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        for file in template.iterdir():  # the database and any WAL sidecar files
            shutil.copyfile(file, tmp_path / file.name)
        return f"sqlite:///{tmp_path / 'tollgate.db'}"
    url: str = request.getfixturevalue("postgres_migrated")
    return url


@pytest.fixture
async def engine(database_url: str, backend: str) -> AsyncIterator[AsyncEngine]:
    """An engine on a migrated database holding no rows."""
    engine = create_engine(database_url)
    if backend == "postgresql":  # DELETE beats TRUNCATE by far on tables this small
        async with engine.begin() as connection:
            for table in reversed(metadata.sorted_tables):
                await connection.execute(table.delete())
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
def empty_database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a database with nothing in it, not even the migrations table."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    admin: str = request.getfixturevalue("postgres_admin")
    with temporary_database(admin, migrated=False) as url:
        yield url


@pytest.fixture
async def admin(engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the admin API over `engine`'s ledger, presenting the admin token."""
    api = AdminAPI(hashlib.sha256(ADMIN_TOKEN.encode()).hexdigest(), lambda: engine)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=Starlette(routes=api.routes())),
        base_url="http://gateway",
        headers={"authorization": f"Bearer {ADMIN_TOKEN}"},
    ) as client:
        yield client
