"""The usage ledger writer: batches off the hot path, waits out a database outage, loses nothing it
can keep, and says so when it must drop."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from gateway.metering.ledger import UsageLedger
from gateway.storage.errors import StorageUnavailable
from gateway.storage.records import UsageRecord


def usage_record(number: int) -> UsageRecord:
    return UsageRecord(
        created_at=datetime(2026, 11, 26, tzinfo=UTC).timestamp(),
        request_id=f"req-{number}",
        tenant_id="acme",
        team=None,
        user=None,
        key_id="key_1",
        provider="openai",
        upstream="api.openai.com",
        model="gpt-4o",
        endpoint="chat.completions",
        status=200,
        streamed=False,
        input_tokens=number,
        output_tokens=1,
        cached_input_tokens=0,
        cache_write_tokens=0,
        reasoning_tokens=0,
        cost_usd=None,
        duration_ms=1.0,
        ttfb_ms=None,
        estimated=False,
    )


class FakeStore:
    """An in-memory ledger table that can be taken down and can refuse particular records."""

    def __init__(self) -> None:
        self.rows: list[UsageRecord] = []
        self.batches: list[int] = []
        self.down = False
        self.poison: set[str] = set()

    async def insert_many(self, records: Sequence[UsageRecord]) -> None:
        await asyncio.sleep(0)
        if self.down:
            raise StorageUnavailable("database error: OperationalError")
        if any(record.request_id in self.poison for record in records):
            raise StorageUnavailable("database error: DataError")
        self.batches.append(len(records))
        self.rows.extend(records)


class Drops:
    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def __call__(self, reason: str, count: int) -> None:
        self.counts[reason] = self.counts.get(reason, 0) + count


def ledger_over(store: FakeStore, drops: Drops | None = None, capacity: int = 1000) -> UsageLedger:
    return UsageLedger(
        store,
        capacity=capacity,
        batch_size=100,
        flush_interval=0.01,
        retry_max=0.02,
        on_drop=drops or Drops(),
    )


async def test_records_reach_the_store_in_batches_and_close_drains_the_rest() -> None:
    store = FakeStore()
    ledger = ledger_over(store)
    ledger.start()

    for number in range(250):
        assert ledger.record(usage_record(number))
    lost = await ledger.close(grace=5)

    assert lost == 0
    assert [row.request_id for row in store.rows] == [f"req-{n}" for n in range(250)]
    assert max(store.batches) <= 100
    assert ledger.depth == 0


async def test_records_wait_while_the_database_is_down_and_are_written_when_it_returns() -> None:
    store = FakeStore()
    store.down = True
    ledger = ledger_over(store)
    ledger.start()

    for number in range(30):
        ledger.record(usage_record(number))
    await asyncio.sleep(0.1)
    waiting = ledger.depth
    store.down = False
    lost = await ledger.close(grace=5)

    assert waiting == 30
    assert lost == 0
    assert sorted(row.input_tokens for row in store.rows) == list(range(30))


async def test_a_full_buffer_drops_new_records_and_counts_them() -> None:
    store = FakeStore()
    store.down = True
    drops = Drops()
    ledger = ledger_over(store, drops, capacity=10)
    ledger.start()

    accepted = [ledger.record(usage_record(number)) for number in range(15)]
    store.down = False
    await ledger.close(grace=5)

    assert accepted == [True] * 10 + [False] * 5
    assert drops.counts == {"buffer_full": 5}
    assert len(store.rows) == 10


async def test_a_record_the_database_rejects_is_dropped_alone_and_the_rest_written() -> None:
    store = FakeStore()
    store.poison = {"req-3"}
    drops = Drops()
    ledger = ledger_over(store, drops)
    ledger.start()

    for number in range(8):
        ledger.record(usage_record(number))
    await ledger.close(grace=5)

    assert sorted(row.request_id for row in store.rows) == [f"req-{n}" for n in range(8) if n != 3]
    assert drops.counts == {"rejected": 1}


async def test_what_cannot_be_written_within_the_grace_period_is_counted_as_lost(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = FakeStore()
    store.down = True
    drops = Drops()
    ledger = ledger_over(store, drops)
    ledger.start()

    for number in range(5):
        ledger.record(usage_record(number))
    lost = await ledger.close(grace=0.1)

    assert lost == 5
    assert drops.counts == {"shutdown": 5}
    assert "usage records lost at shutdown" in caplog.text


async def test_nothing_is_accepted_after_close() -> None:
    store = FakeStore()
    drops = Drops()
    ledger = ledger_over(store, drops)
    ledger.start()
    await ledger.close(grace=1)

    assert ledger.record(usage_record(1)) is False
    assert drops.counts == {"closed": 1}
