"""The usage ledger's table: batched inserts from the ledger writer, aggregations for reports."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.storage.models import usage_records
from gateway.storage.records import UsageRecord
from gateway.storage.repositories import transaction


class UsageRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def insert_many(self, records: Sequence[UsageRecord]) -> None:
        """Write a batch in one transaction: all of it, or (raising) none of it."""
        if not records:
            return
        async with transaction(self._engine) as db:
            await db.execute(insert(usage_records), [asdict(record) for record in records])
