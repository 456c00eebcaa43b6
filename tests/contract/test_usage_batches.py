"""Each ledger batch is written once: a batch written again under its id (the ledger's retry of a write
whose commit reached the database but whose acknowledgement never came back) is not stored twice.

The id is written in the batch's own transaction, so a batch refused leaves no id behind, and ids
older than a day (far past any retry) are forgotten, at most once an hour, by the writes themselves.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.metering.ledger import UsageLedger
from gateway.storage.bulk import insert_usage, mark_written
from gateway.storage.errors import StorageRejected, StorageUnavailable
from gateway.storage.models import usage_batches, usage_records
from gateway.storage.records import UsageRecord
from gateway.storage.usage import UsageRepository
from tests.support.metering import usage_record

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


def batch_id() -> bytes:
    return secrets.token_bytes(16)


async def stored_request_ids(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as connection:
        query = select(usage_records.c.request_id).order_by(usage_records.c.id)
        return list((await connection.execute(query)).scalars())


async def remembered_batches(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int((await connection.execute(select(func.count()).select_from(usage_batches))).scalar_one())


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def test_a_batch_written_again_under_its_id_is_stored_once(engine: AsyncEngine) -> None:
    repository = UsageRepository(engine)
    records = [usage_record(f"req-{number}") for number in range(3)]
    same = batch_id()

    await repository.insert_many(records, batch_id=same)
    await repository.insert_many(records, batch_id=same)  # the retry of a write whose ack was lost

    assert await stored_request_ids(engine) == ["req-0", "req-1", "req-2"]


async def test_alike_batches_under_different_ids_are_both_stored(engine: AsyncEngine) -> None:
    repository = UsageRepository(engine)
    records = [usage_record("req-from-the-caller")]  # a request id is the caller's: not unique

    await repository.insert_many(records, batch_id=batch_id())
    await repository.insert_many(records, batch_id=batch_id())

    assert await stored_request_ids(engine) == ["req-from-the-caller", "req-from-the-caller"]


async def test_a_refused_batch_leaves_its_id_free_for_the_records_written_in_its_place(
    engine: AsyncEngine,
) -> None:
    repository = UsageRepository(engine)
    same = batch_id()

    with pytest.raises(StorageRejected):
        await repository.insert_many(
            [usage_record("req-ok"), usage_record("req-bad", status=2**64)], batch_id=same
        )
    await repository.insert_many([usage_record("req-ok")], batch_id=same)

    assert await stored_request_ids(engine) == ["req-ok"]


async def test_batch_ids_older_than_a_day_are_forgotten_at_most_once_an_hour(engine: AsyncEngine) -> None:
    clock = Clock(T0)
    repository = UsageRepository(engine, clock=clock)
    old, recent = batch_id(), batch_id()
    await repository.insert_many([usage_record("req-old")], batch_id=old)  # forgets what is due: nothing
    clock.now = T0 + timedelta(days=1)
    await repository.insert_many(
        [usage_record("req-recent")], batch_id=recent
    )  # forgets what is due: nothing
    clock.now = T0 + timedelta(days=1, minutes=59)
    await repository.insert_many([usage_record("req-a")], batch_id=batch_id())  # within the hour: keeps all
    remembered_within_the_hour = await remembered_batches(engine)

    clock.now = T0 + timedelta(days=1, hours=1)
    await repository.insert_many([usage_record("req-b")], batch_id=batch_id())  # forgets `old`
    await repository.insert_many([usage_record("req-old")], batch_id=old)  # no longer known: written again
    await repository.insert_many([usage_record("req-recent")], batch_id=recent)  # still known: not again

    assert remembered_within_the_hour == 3
    assert await stored_request_ids(engine) == ["req-old", "req-recent", "req-a", "req-b", "req-old"]


async def until_a_write_waits_for_a_lock(engine: AsyncEngine) -> None:
    """Return once some connection to the database waits for a lock another transaction holds."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    for _ in range(500):
        async with engine.connect() as connection:
            if (await connection.execute(query)).scalar_one():
                return
        await asyncio.sleep(0.01)
    raise AssertionError("no write waited for the lock")


POSTGRES_ONLY = pytest.mark.parametrize("backend", [pytest.param("postgresql", marks=pytest.mark.postgres)])


@POSTGRES_ONLY
@pytest.mark.parametrize("first_write_commits", [True, False], ids=["committed", "rolled-back"])
async def test_a_batch_written_again_while_its_first_write_is_still_open_waits_for_that_write(
    engine: AsyncEngine, first_write_commits: bool
) -> None:
    """The server may still be finishing the first write when the retry comes (the client saw the
    connection break first): the retry waits for it, and its outcome decides."""
    records = [usage_record("req-0"), usage_record("req-1")]
    same = batch_id()
    async with engine.connect() as first:
        assert await mark_written(first, same, T0)
        await insert_usage(first, usage_records, records)
        retry = asyncio.create_task(UsageRepository(engine).insert_many(records, batch_id=same))
        await until_a_write_waits_for_a_lock(engine)
        await (first.commit() if first_write_commits else first.rollback())
    await retry

    assert await stored_request_ids(engine) == ["req-0", "req-1"]


class AcknowledgementsLost:
    """The real ledger table behind a connection that breaks after each of the first `times` commits:
    the batch is in the database, but the writer is told the database is unavailable."""

    def __init__(self, repository: UsageRepository, times: int) -> None:
        self.repository = repository
        self.times = times

    async def insert_many(self, records: Sequence[UsageRecord], *, batch_id: bytes) -> None:
        await self.repository.insert_many(records, batch_id=batch_id)
        if self.times > 0:
            self.times -= 1
            raise StorageUnavailable("database error: ConnectionDoesNotExistError")


async def test_the_ledger_stores_each_record_once_when_commits_are_not_acknowledged(
    engine: AsyncEngine,
) -> None:
    store = AcknowledgementsLost(UsageRepository(engine), times=3)
    ledger = UsageLedger(store, capacity=100, batch_size=10, flush_interval=0.01, retry_max=0.02)
    ledger.start()

    for number in range(25):
        ledger.record(usage_record(f"req-{number}"))
    lost = await ledger.close(grace=10)

    assert lost == 0
    assert ledger.written == 25
    assert sorted(await stored_request_ids(engine)) == sorted(f"req-{number}" for number in range(25))
