"""The usage ledger writer: records queue in memory and reach the database in batches, off the hot path.

`record()` never waits: it appends to a bounded in-memory buffer. A background task writes batches
of up to `batch_size` records, at least every `flush_interval` seconds. While the database refuses
writes, records wait and the batch is retried with exponential backoff; only when the buffer is
full are new records dropped, each drop counted and logged. Each batch is written once: it has an id,
written with it in its transaction, and is retried as it was formed, under that id, so that a batch whose
commit reached the database though its acknowledgement did not (the connection lost in between) is
found there and not written again (`LedgerStore`). A batch the database refuses while it is
up (`StorageRejected`: a value it cannot store) is written record by record: a refused record is
written as the database can hold it (`records.storable`: no NUL in its texts, counts within 64 bits),
else dropped as rejected (counted and logged); the others are written. `close()` drains the buffer
before returning, for up to a grace period: it cuts a back-off short, and a batch still being written
when the grace period ends is counted among the records lost. A writer cancelled from outside (a
forced exit cancels every task) is replaced for the rest of the grace period, and the replacement
writes the batch it was writing again under its id: once, whether or not the cut-short write reached
the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from gateway.storage.errors import StorageError, StorageRejected
from gateway.storage.records import UsageRecord, storable

logger = logging.getLogger("tollgate.ledger")
_FIRST_BACKOFF = 0.05
_DROP_LOG_INTERVAL = 10.0
_CLOSING_RETRY = 0.25  # seconds between writes to a database still down while closing


class LedgerStore(Protocol):
    async def insert_many(self, records: Sequence[UsageRecord], *, batch_id: bytes) -> None:
        """Write `records` in one transaction, all or none; nothing when a batch of `batch_id` was
        written already (the id is checked before any record is written, so a batch refused leaves its
        id free). Raises `StorageRejected` for a value the database cannot hold, another
        `StorageError` when the database is unavailable."""
        ...


@dataclass(frozen=True, slots=True)
class Batch:
    """Records written together under an id: a batch retried keeps both, and so is written once."""

    id: bytes
    records: list[UsageRecord]


def new_batch(records: list[UsageRecord]) -> Batch:
    return Batch(secrets.token_bytes(16), records)


class DropCounter(Protocol):
    def __call__(self, reason: str, count: int) -> None: ...


def _ignore_drops(reason: str, count: int) -> None:
    return None


class UsageLedger:
    def __init__(
        self,
        store: LedgerStore,
        *,
        capacity: int,
        batch_size: int,
        flush_interval: float,
        retry_max: float,
        on_drop: DropCounter = _ignore_drops,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._capacity = capacity
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._retry_max = retry_max
        self._on_drop = on_drop
        self._clock = clock
        self._buffer: deque[UsageRecord] = deque()
        self._taken: Batch | None = None  # out of the buffer: being written, or to be written again
        self._wake = asyncio.Event()
        self._closed = asyncio.Event()  # set by close(): cuts a back-off short
        self._closing = False
        self._writer: asyncio.Task[None] | None = None
        self._last_drop_log = float("-inf")
        self._unlogged_drops = 0
        self.written = 0

    @property
    def depth(self) -> int:
        """Records not yet in the database (waiting or being written)."""
        return len(self._buffer) + (0 if self._taken is None else len(self._taken.records))

    def start(self) -> None:
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._run(), name="usage-ledger")

    def record(self, record: UsageRecord) -> bool:
        """Queue a record; False (and the drop counted and logged) when the buffer is full."""
        taken = self._taken  # `depth`, inline
        if self._closing or len(self._buffer) + (len(taken.records) if taken else 0) >= self._capacity:
            self._dropped("buffer_full" if not self._closing else "closed", 1)
            return False
        self._buffer.append(record)
        if len(self._buffer) >= self._batch_size:
            self._wake.set()
        return True

    async def close(self, grace: float) -> int:
        """Write what is queued, waiting at most `grace` seconds; returns how many records were lost.

        A writer cancelled from outside (a forced exit cancels every task at once) is replaced for the
        rest of the grace period. Should `close` itself be cancelled, it stops the writer and still
        counts and logs what it leaves unwritten."""
        self._closing = True
        self._wake.set()
        self._closed.set()
        try:
            await self._drain(grace)
        finally:
            lost = self.depth
            if lost:
                self._dropped("shutdown", lost)
                logger.error("usage records lost at shutdown", extra={"fields": {"lost": lost}})
            self._buffer.clear()
            self._taken = None
        return lost

    async def _drain(self, grace: float) -> None:
        """Let the writer empty the buffer for at most `grace` seconds, then stop it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while self._writer is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._writer), max(0.0, deadline - loop.time()))
                return
            except TimeoutError:
                break
            except asyncio.CancelledError:
                if not self._writer.cancelled():  # close itself was cancelled
                    await self._stop_writer()
                    raise
                self._writer = loop.create_task(self._run(), name="usage-ledger")
        await self._stop_writer()

    async def _stop_writer(self) -> None:
        if self._writer is not None:
            self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)

    async def _run(self) -> None:
        backoff = _FIRST_BACKOFF
        while True:
            if not self._buffer and self._taken is None:
                if self._closing:
                    return
                await self._wait(self._flush_interval)
                continue
            if self._taken is None and len(self._buffer) < self._batch_size and not self._closing:
                await self._wait(self._flush_interval)
            if await self._write_batch():
                backoff = _FIRST_BACKOFF
            else:
                await self._back_off(backoff)
                backoff = min(backoff * 2, self._retry_max)

    async def _wait(self, seconds: float) -> None:
        """Until `seconds` pass or a full batch (or closing) wakes the writer."""
        if self._closing:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)
        self._wake.clear()

    async def _back_off(self, seconds: float) -> None:
        """Wait `seconds` before writing to a database that was down; `close()` cuts the wait short (the
        database may be back, and the grace period is short), and once closing the retries come at
        most `_CLOSING_RETRY` apart."""
        if self._closing:
            await asyncio.sleep(min(seconds, _CLOSING_RETRY))
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closed.wait(), seconds)

    def _take(self) -> Batch:
        """The batch to write: the one a failed write left (the same id, the same records), else the
        oldest records, as a new batch."""
        if self._taken is None:
            count = min(self._batch_size, len(self._buffer))
            self._taken = new_batch([self._buffer.popleft() for _ in range(count)])
        return self._taken

    async def _write_batch(self) -> bool:
        """Write the oldest batch; False when the database is down and the batch must wait."""
        batch = self._take()
        try:
            await self._store.insert_many(batch.records, batch_id=batch.id)
        except StorageRejected:
            return await self._write_one_by_one(batch.records)
        except StorageError as exc:  # the batch stays taken, to be written again as it is
            self._wait_again(exc)
            return False
        except Exception:  # a bug, not the database: the writer carries on, record by record
            logger.exception(
                "usage ledger write failed unexpectedly", extra={"fields": {"records": len(batch.records)}}
            )
            return await self._write_one_by_one(batch.records)
        self._taken = None
        self.written += len(batch.records)
        return True

    async def _write_one_by_one(self, batch: list[UsageRecord]) -> bool:
        """Write a batch the database refused record by record, each a batch of its own: a record it
        refuses is written again as it can hold it (`storable`), else dropped as rejected. Should the
        database turn out to be down, the record being written waits under its batch id, and those
        after it wait as records never written (False)."""
        rejected = 0
        for index, record in enumerate(batch):
            alone = new_batch([record])
            try:
                accepted = await self._write_one(alone)
            except StorageError as exc:
                self._cut_short(batch, index, rejected, alone)
                self._wait_again(exc)
                return False
            except asyncio.CancelledError:  # the writer that replaces this one goes on from `alone`
                self._cut_short(batch, index, rejected, alone)
                raise
            rejected += not accepted
        self._taken = None
        self.written += len(batch) - rejected
        if rejected:
            self._dropped("rejected", rejected)
        return True

    async def _write_one(self, alone: Batch) -> bool:
        """Write the one record of `alone`, or what of it the database can hold, under `alone`'s id (a
        refused write leaves the id free); False if refused either way. Raises `StorageError` when the
        database is down."""
        [record] = alone.records
        cleaned = storable(record)
        for attempt in (record, cleaned) if cleaned is not record else (record,):
            try:
                await self._store.insert_many([attempt], batch_id=alone.id)
            except StorageRejected:
                continue
            except StorageError:
                raise
            except Exception:  # a bug: this record is not written, the others may be
                logger.exception("usage record write failed unexpectedly")
                continue
            if attempt is cleaned and cleaned is not record:
                logger.warning(
                    "usage record written without what the database refused",
                    extra={"fields": {"request_id": cleaned.request_id}},
                )
            return True
        return False

    def _cut_short(self, batch: list[UsageRecord], index: int, rejected: int, alone: Batch) -> None:
        """Account for a batch written one by one up to `index`, `rejected` of its records refused: keep
        `alone`, the batch of its record at `index` (perhaps written), to be written first, as it is,
        and put the records after it, never tried alone, back at the head of the queue."""
        self.written += index - rejected
        if rejected:
            self._dropped("rejected", rejected)
        self._taken = alone
        self._buffer.extendleft(reversed(batch[index + 1 :]))

    def _wait_again(self, error: Exception) -> None:
        """Say that the batch taken waits, the database being down."""
        logger.warning(
            "usage ledger write failed; will retry",
            extra={"fields": {"error": str(error), "waiting": self.depth}},
        )

    def _dropped(self, reason: str, count: int) -> None:
        self._on_drop(reason, count)
        self._unlogged_drops += count
        now = self._clock()
        if now - self._last_drop_log >= _DROP_LOG_INTERVAL:
            logger.error(
                "usage records dropped",
                extra={
                    "fields": {"reason": reason, "dropped": self._unlogged_drops, "capacity": self._capacity}
                },
            )
            self._last_drop_log = now
            self._unlogged_drops = 0
