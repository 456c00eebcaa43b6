"""The usage ledger writer: batches off the hot path, waits out a database outage, loses nothing it
can keep, and says so when it must drop."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from gateway.metering.ledger import UsageLedger
from gateway.storage.errors import StorageRejected, StorageUnavailable
from gateway.storage.records import UsageRecord
from tests.support.metering import usage_record as a_usage_record


def usage_record(number: int) -> UsageRecord:
    return a_usage_record(f"req-{number}", input_tokens=number)


class FakeStore:
    """An in-memory ledger table that can be taken down, can refuse particular records (and, as
    PostgreSQL does, any text holding a NUL), can fail as a bug would, can hang (before or after its
    commit), and can lose the acknowledgement of a commit. As the database's, it writes a batch id
    once: a batch whose id it holds is not written again."""

    def __init__(self) -> None:
        self.rows: list[UsageRecord] = []
        self.batches: list[int] = []
        self.down = False
        self.poison: set[str] = set()
        self.broken: set[str] = set()  # records whose writing raises what no database would
        self.hang = False
        self.hang_once_written = False  # the next write commits, then its acknowledgement never comes
        self.down_after_writes: int | None = None  # goes down after this many more writes
        self.unacknowledged = 0  # the next writes commit, then fail as a connection lost before the ack
        self.batch_ids: set[bytes] = set()

    async def insert_many(self, records: Sequence[UsageRecord], *, batch_id: bytes) -> None:
        await asyncio.sleep(0)
        if batch_id in self.batch_ids:
            return
        if self.hang:
            await asyncio.sleep(3600)
        if self.down_after_writes is not None and self.down_after_writes <= 0:
            self.down = True
        if self.down:
            raise StorageUnavailable("database error: OperationalError")
        if any(record.request_id in self.broken for record in records):
            raise RuntimeError("a bug")
        if any(record.request_id in self.poison or "\x00" in (record.model or "") for record in records):
            raise StorageRejected("database refused a value: DataError")
        self.batches.append(len(records))
        self.rows.extend(records)
        self.batch_ids.add(batch_id)
        if self.hang_once_written:
            self.hang_once_written = False
            await asyncio.sleep(3600)
        if self.down_after_writes is not None:
            self.down_after_writes -= 1
        if self.unacknowledged > 0:
            self.unacknowledged -= 1
            raise StorageUnavailable("database error: ConnectionDoesNotExistError")


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


async def test_a_batch_of_refused_records_never_holds_up_the_records_after_it() -> None:
    store = FakeStore()
    store.poison = {f"req-{n}" for n in range(100)}  # a whole batch, first and last records included
    drops = Drops()
    ledger = ledger_over(store, drops)
    ledger.start()

    for number in range(150):
        ledger.record(usage_record(number))
    lost = await ledger.close(grace=5)

    assert lost == 0
    assert sorted(row.input_tokens for row in store.rows) == list(range(100, 150))
    assert drops.counts == {"rejected": 100}


async def test_a_single_refused_record_is_dropped_not_retried_forever() -> None:
    store = FakeStore()
    store.poison = {"req-0"}
    drops = Drops()
    ledger = ledger_over(store, drops)
    ledger.start()

    ledger.record(usage_record(0))
    await asyncio.sleep(0.1)
    ledger.record(usage_record(1))
    lost = await ledger.close(grace=5)

    assert (lost, [row.request_id for row in store.rows]) == (0, ["req-1"])
    assert drops.counts == {"rejected": 1}


async def test_a_record_refused_for_what_its_texts_hold_is_written_without_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = FakeStore()
    drops = Drops()
    ledger = ledger_over(store, drops)
    ledger.start()

    ledger.record(usage_record(1)._replace(model="gpt-4o\x00"))  # as a caller may name a model
    ledger.record(usage_record(2))
    await ledger.close(grace=5)

    assert [(row.request_id, row.model) for row in store.rows] == [("req-1", "gpt-4o"), ("req-2", "gpt-4o")]
    assert drops.counts == {}
    assert "usage record written without what the database refused" in caplog.text


async def test_an_unexpected_error_drops_that_record_alone_and_the_writer_carries_on() -> None:
    store = FakeStore()
    store.broken = {"req-2"}
    drops = Drops()
    ledger = ledger_over(store, drops)
    ledger.start()

    for number in range(5):
        ledger.record(usage_record(number))
    await asyncio.sleep(0.1)
    for number in range(5, 8):
        ledger.record(usage_record(number))
    lost = await ledger.close(grace=5)

    assert lost == 0
    assert sorted(row.input_tokens for row in store.rows) == [0, 1, 3, 4, 5, 6, 7]
    assert drops.counts == {"rejected": 1}


async def test_an_outage_while_a_refused_batch_is_written_one_by_one_keeps_the_rest_waiting() -> None:
    store = FakeStore()
    store.poison = {"req-0"}
    store.down_after_writes = 2  # the database goes down after two of the records written alone
    drops = Drops()
    ledger = ledger_over(store, drops)
    ledger.start()

    for number in range(10):
        ledger.record(usage_record(number))
    await asyncio.sleep(0.1)
    waiting = ledger.depth
    store.down_after_writes, store.down = None, False
    lost = await ledger.close(grace=5)

    assert waiting == 7  # req-0 refused, req-1 and req-2 written, the rest waiting: none dropped
    assert lost == 0
    assert sorted(row.input_tokens for row in store.rows) == list(range(1, 10))
    assert drops.counts == {"rejected": 1}


async def test_a_batch_committed_but_not_acknowledged_is_not_written_again() -> None:
    store = FakeStore()
    store.unacknowledged = 1
    drops = Drops()
    ledger = ledger_over(store, drops)
    ledger.start()

    for number in range(30):
        ledger.record(usage_record(number))
    lost = await ledger.close(grace=5)

    assert lost == 0
    assert [row.input_tokens for row in store.rows] == list(range(30))
    assert ledger.written == 30
    assert drops.counts == {}


async def test_a_batch_is_retried_as_it_was_though_more_records_came_meanwhile() -> None:
    store = FakeStore()
    store.unacknowledged = 1
    store.down_after_writes = 1  # down once the first batch is in, its acknowledgement lost
    ledger = ledger_over(store)
    ledger.start()

    for number in range(30):
        ledger.record(usage_record(number))
    await asyncio.sleep(0.1)  # the batch of 30 is in the database; the ledger waits to write it again
    for number in range(30, 50):
        ledger.record(usage_record(number))
    store.down_after_writes, store.down = None, False
    lost = await ledger.close(grace=5)

    assert lost == 0
    assert sorted(row.input_tokens for row in store.rows) == list(range(50))
    assert ledger.written == 50


async def test_a_record_written_alone_whose_commit_was_not_acknowledged_is_not_written_again() -> None:
    store = FakeStore()
    store.poison = {"req-0"}  # the batch is refused, and its records written one by one
    drops = Drops()
    ledger = ledger_over(store, drops)
    ledger.start()

    for number in range(5):
        ledger.record(usage_record(number))
    store.unacknowledged = 1  # the first record written alone (req-1) is in, its acknowledgement lost
    lost = await ledger.close(grace=5)

    assert lost == 0
    assert [row.input_tokens for row in store.rows] == [1, 2, 3, 4]
    assert ledger.written == 4
    assert drops.counts == {"rejected": 1}


async def test_close_cuts_a_long_back_off_short_and_writes_to_a_database_that_is_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("gateway.metering.ledger._FIRST_BACKOFF", 60.0)  # as after a long outage
    store = FakeStore()
    store.down = True
    ledger = ledger_over(store)
    ledger.start()

    for number in range(20):
        ledger.record(usage_record(number))
    await asyncio.sleep(0.1)  # the first write failed: the writer backs off for a minute
    store.down = False
    lost = await ledger.close(grace=1)

    assert lost == 0
    assert len(store.rows) == 20


async def test_a_batch_still_being_written_when_the_grace_period_ends_is_counted_as_lost() -> None:
    store = FakeStore()
    store.hang = True
    drops = Drops()
    ledger = ledger_over(store, drops)
    ledger.start()

    for number in range(120):
        ledger.record(usage_record(number))
    await asyncio.sleep(0.1)  # a batch of 100 is being written
    lost = await ledger.close(grace=0.1)

    assert lost == 120
    assert drops.counts == {"shutdown": 120}


def forced_exit() -> None:
    """What a forced exit does (uvicorn's second Ctrl-C): every task left is cancelled at once."""
    for task in asyncio.all_tasks():
        if task is not asyncio.current_task():
            task.cancel()


async def test_records_queued_when_a_forced_exit_cancels_the_writer_are_written_by_close() -> None:
    store = FakeStore()
    drops = Drops()
    ledger = ledger_over(store, drops)
    ledger.start()

    for number in range(150):
        ledger.record(usage_record(number))
    forced_exit()
    lost = await ledger.close(grace=5)

    assert lost == 0
    assert sorted(row.input_tokens for row in store.rows) == list(range(150))
    assert drops.counts == {}


async def test_a_batch_a_forced_exit_cut_short_is_written_by_the_writer_that_replaces_it() -> None:
    store = FakeStore()
    store.hang = True
    drops = Drops()
    ledger = ledger_over(store, drops)
    ledger.start()

    for number in range(120):
        ledger.record(usage_record(number))
    await asyncio.sleep(0.1)  # a batch of 100 is being written
    forced_exit()
    store.hang = False
    lost = await ledger.close(grace=5)

    assert lost == 0
    assert [row.input_tokens for row in store.rows] == list(range(120))
    assert drops.counts == {}


async def test_a_batch_in_the_database_when_a_forced_exit_cut_its_write_short_is_not_written_again() -> None:
    store = FakeStore()
    store.hang_once_written = True
    drops = Drops()
    ledger = ledger_over(store, drops)
    ledger.start()

    for number in range(120):
        ledger.record(usage_record(number))
    await asyncio.sleep(0.1)  # a batch of 100 is in, its acknowledgement still awaited
    forced_exit()
    lost = await ledger.close(grace=5)

    assert lost == 0
    assert [row.input_tokens for row in store.rows] == list(range(120))
    assert drops.counts == {}


async def test_what_cannot_be_written_after_a_forced_exit_within_the_grace_period_is_counted_as_lost(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = FakeStore()
    store.down = True
    drops = Drops()
    ledger = ledger_over(store, drops)
    ledger.start()

    for number in range(5):
        ledger.record(usage_record(number))
    forced_exit()
    lost = await ledger.close(grace=0.1)

    assert lost == 5
    assert drops.counts == {"shutdown": 5}
    assert "usage records lost at shutdown" in caplog.text


async def test_a_close_cancelled_itself_still_counts_and_logs_what_it_leaves_unwritten(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = FakeStore()
    store.down = True
    drops = Drops()
    ledger = ledger_over(store, drops)
    ledger.start()

    for number in range(5):
        ledger.record(usage_record(number))
    closing = asyncio.create_task(ledger.close(grace=60))
    await asyncio.sleep(0.05)
    closing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await closing

    assert drops.counts == {"shutdown": 5}
    assert "usage records lost at shutdown" in caplog.text
