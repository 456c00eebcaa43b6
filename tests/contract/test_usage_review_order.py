"""The order of a report's groups, and so what each page holds, is the same on SQLite and PostgreSQL.

SQLite compares texts by their bytes. A PostgreSQL database sorts by its own collation, which is
often a language's (`en_US.UTF-8`, ICU's `en`: `_b` before `alpha` before `Beta`, case and accents
set aside): the same ledger would then page differently on the two backends. Here PostgreSQL runs
on a database of this test's own whose default collation is ICU's English one.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.storage.engine import create_engine
from gateway.storage.migrate import upgrade
from gateway.storage.usage import Dimension, UsageFilter, UsageRepository
from tests.contract.test_usage import usage
from tests.support.postgres import (
    DATABASE_PREFIX,
    drop_database,
    in_thread,
    postgres_admin_url,
    require_postgres,
    run_blocking,
)

DAY = datetime(2026, 3, 1, tzinfo=UTC)
# In the order of their code points (UTF-8 bytes), which is SQLite's: upper case, then `_`, then lower
# case, then accented letters. An English collation would say _b, alpha, Beta, é, Zeta.
MODELS = ["Beta", "Zeta", "_b", "alpha", "é"]


def _create_database_in_english(admin_url: str) -> str:
    """A database of this run's own, its default collation ICU's English one."""
    name = f"{DATABASE_PREFIX}_{os.getpid()}_{secrets.token_hex(4)}_en"
    libpq = make_url(admin_url).set(drivername="postgresql").render_as_string(hide_password=False)

    async def create() -> None:
        connection = await asyncpg.connect(libpq, timeout=5.0)
        try:
            await connection.execute(
                f"CREATE DATABASE \"{name}\" TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en'"
                " LOCALE 'C.UTF-8'"
            )
        finally:
            await connection.close()

    run_blocking(create)
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql-en", marks=pytest.mark.postgres),
    ]
)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'tollgate.db'}"
        in_thread(lambda: upgrade(url))
        yield url
        return
    admin = postgres_admin_url()
    require_postgres(admin)
    url = _create_database_in_english(admin)
    try:
        in_thread(lambda: upgrade(url))
        yield url
    finally:
        drop_database(admin, url)


@pytest.fixture
async def ledger(database_url: str) -> AsyncIterator[UsageRepository]:
    engine: AsyncEngine = create_engine(database_url)
    repository = UsageRepository(engine)
    await repository.insert_many(
        [
            usage(DAY + timedelta(minutes=n), request_id=f"req-{n}", model=model, user=model)
            for n, model in enumerate(reversed(MODELS))
        ]
    )
    try:
        yield repository
    finally:
        await engine.dispose()


async def test_groups_come_in_the_order_of_their_code_points_on_every_backend(
    ledger: UsageRepository,
) -> None:
    page = await ledger.aggregate([Dimension.MODEL], UsageFilter(), limit=100)

    assert [row.group[Dimension.MODEL] for row in page.rows] == MODELS


async def test_each_page_holds_the_same_groups_on_every_backend(ledger: UsageRepository) -> None:
    pages = [
        await ledger.aggregate([Dimension.DAY, Dimension.USER], UsageFilter(), limit=2, offset=offset)
        for offset in (0, 2, 4)
    ]

    assert [[row.group[Dimension.USER] for row in page.rows] for page in pages] == [
        MODELS[0:2],
        MODELS[2:4],
        MODELS[4:],
    ]
    assert [page.next_offset for page in pages] == [2, 4, None]
