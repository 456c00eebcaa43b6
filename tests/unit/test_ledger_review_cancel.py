"""A refused batch cut short while written record by record: every record is accounted for.

`tollgate_ledger_records_dropped_total` must add up: each record queued is written, or dropped with
its reason. A record the database refused, met before a shutdown's grace period ran out on the next
one, was neither written nor counted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from gateway.metering.ledger import UsageLedger
from gateway.storage.errors import StorageRejected
from gateway.storage.records import UsageRecord
from tests.support.metering import usage_record


class RefusingStore:
    """Refuses any batch holding `refused`; a write holding `stalled` never ends."""

    def __init__(self, refused: str, stalled: str) -> None:
        self.refused, self.stalled = refused, stalled
        self.rows: list[UsageRecord] = []

    async def insert_many(self, records: Sequence[UsageRecord], *, batch_id: bytes) -> None:
        await asyncio.sleep(0)
        if any(record.request_id == self.refused for record in records):
            raise StorageRejected("database refused a value: DataError")
        if len(records) == 1 and records[0].request_id == self.stalled:
            await asyncio.sleep(3600)
        self.rows.extend(records)


async def test_a_refused_record_is_counted_when_the_shutdown_cuts_its_batch_short() -> None:
    drops: dict[str, int] = {}
    store = RefusingStore(refused="req-0", stalled="req-1")
    ledger = UsageLedger(
        store,
        capacity=100,
        batch_size=100,
        flush_interval=0.01,
        retry_max=0.02,
        on_drop=lambda reason, count: drops.__setitem__(reason, drops.get(reason, 0) + count),
    )
    ledger.start()
    for number in range(3):
        ledger.record(usage_record(f"req-{number}"))

    lost = await ledger.close(grace=0.2)  # req-0 refused, req-1 still being written when it ends

    assert store.rows == []
    assert lost == 2  # req-1, perhaps written, and req-2, never tried
    assert drops == {"rejected": 1, "shutdown": 2}
