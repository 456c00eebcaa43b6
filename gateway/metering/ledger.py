"""The usage ledger writer: records queue in memory and reach the database in batches, off the hot path.

`record()` never waits: it appends to a bounded in-memory buffer. A background task writes batches
of up to `batch_size` records, at least every `flush_interval` seconds. While the database refuses
writes, records wait and the batch is retried with exponential backoff; only when the buffer is
full are new records dropped, each drop counted and logged. A batch that keeps failing while the
database accepts single records holds a record the database rejects: the batch is then written
record by record and only the rejected ones are dropped (counted and logged). `close()` drains the
buffer before returning, for up to a grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Protocol

from gateway.storage.errors import StorageError
from gateway.storage.records import UsageRecord

logger = logging.getLogger("tollgate.ledger")
_FIRST_BACKOFF = 0.05
_DROP_LOG_INTERVAL = 10.0


class LedgerStore(Protocol):
    async def insert_many(self, records: Sequence[UsageRecord]) -> None: ...


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
        self._in_flight = 0
        self._wake = asyncio.Event()
        self._closing = False
        self._writer: asyncio.Task[None] | None = None
        self._last_drop_log = float("-inf")
        self._unlogged_drops = 0
        self.written = 0

    @property
    def depth(self) -> int:
        """Records not yet in the database (waiting or being written)."""
        return len(self._buffer) + self._in_flight

    def start(self) -> None:
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._run(), name="usage-ledger")

    def record(self, record: UsageRecord) -> bool:
        """Queue a record; False (and the drop counted and logged) when the buffer is full."""
        if self._closing or len(self._buffer) + self._in_flight >= self._capacity:  # `depth`, inline
            self._dropped("buffer_full" if not self._closing else "closed", 1)
            return False
        self._buffer.append(record)
        if len(self._buffer) >= self._batch_size:
            self._wake.set()
        return True

    async def close(self, grace: float) -> int:
        """Write what is queued, waiting at most `grace` seconds; returns how many records were lost."""
        self._closing = True
        self._wake.set()
        if self._writer is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._writer), grace)
            except TimeoutError:
                self._writer.cancel()
                await asyncio.gather(self._writer, return_exceptions=True)
        lost = self.depth
        if lost:
            self._dropped("shutdown", lost)
            logger.error("usage records lost at shutdown", extra={"fields": {"lost": lost}})
        self._buffer.clear()
        return lost

    async def _run(self) -> None:
        backoff = _FIRST_BACKOFF
        while True:
            if not self._buffer:
                if self._closing:
                    return
                await self._wait(self._flush_interval)
                continue
            if len(self._buffer) < self._batch_size and not self._closing:
                await self._wait(self._flush_interval)
            if await self._write_batch():
                backoff = _FIRST_BACKOFF
            else:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._retry_max)

    async def _wait(self, seconds: float) -> None:
        """Until `seconds` pass or a full batch (or closing) wakes the writer."""
        if self._closing:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)
        self._wake.clear()

    async def _write_batch(self) -> bool:
        """Write the oldest batch; False when the database refused it and it must wait."""
        batch = [self._buffer.popleft() for _ in range(min(self._batch_size, len(self._buffer)))]
        self._in_flight = len(batch)
        try:
            await self._store.insert_many(batch)
        except StorageError as exc:
            written = await self._write_one_by_one(batch) if len(batch) > 1 else None
            if written is None:
                self._buffer.extendleft(reversed(batch))
                logger.warning(
                    "usage ledger write failed; will retry",
                    extra={"fields": {"error": str(exc), "waiting": self.depth}},
                )
                return False
            self.written += written
            return True
        finally:
            self._in_flight = 0
        self.written += len(batch)
        return True

    async def _write_one_by_one(self, batch: list[UsageRecord]) -> int | None:
        """Tell a rejected record from an unavailable database; None: the database looks down.

        The first and the last record are tried alone: if both fail, the database is taken to be
        down (two probes, not one per record). Otherwise every record is written on its own, those
        refused get one more try, and those refused twice are dropped as rejected.
        """
        first, last = await self._accepts(batch[0]), await self._accepts(batch[-1])
        if not first and not last:
            return None
        refused = [record for record, ok in ((batch[0], first), (batch[-1], last)) if not ok]
        for record in batch[1:-1]:
            if not await self._accepts(record):
                refused.append(record)
        rejected = [record for record in refused if not await self._accepts(record)]
        if rejected:
            self._dropped("rejected", len(rejected))
        return len(batch) - len(rejected)

    async def _accepts(self, record: UsageRecord) -> bool:
        try:
            await self._store.insert_many([record])
        except StorageError:
            return False
        return True

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
