"""Ledger rows written straight into the table, as an older gateway could have left them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.storage.bulk import COLUMNS
from gateway.storage.models import usage_records
from gateway.storage.records import UsageRecord


async def write_as_before_the_bounds(engine: AsyncEngine, records: Sequence[UsageRecord]) -> None:
    """Write `records` as they are, as the ledger did before it bounded counts (clamping them to 64
    bits at most): no bound, no rounding."""
    rows = [dict(zip(COLUMNS, record, strict=True)) for record in records]
    for row in rows:
        row["created_at"] = datetime.fromtimestamp(row["created_at"], UTC)
    async with engine.begin() as connection:
        await connection.execute(usage_records.insert(), rows)
