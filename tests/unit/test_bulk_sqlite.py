"""The ledger's SQLite rows hold exactly what SQLAlchemy's own bind processors would store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy.dialects import sqlite

from gateway.storage.bulk import COLUMNS, sqlite_values
from gateway.storage.models import usage_records
from gateway.storage.records import UsageRecord

FULL = UsageRecord(
    datetime(2026, 3, 1, 12, 30, 5, 7, tzinfo=UTC), "req-1", "acme", "ml", "ada", "key_1", "openai",
    "api.openai.com", "gpt-4o", "chat.completions", 200, True, 120, 30, 20, 0, 5,
    Decimal("0.0001234567"), 812.25, 95.5, False,
)  # fmt: skip
SPARSE = FULL._replace(
    created_at=datetime(2026, 3, 1, 14, 0, tzinfo=timezone(timedelta(hours=2))),  # not UTC: converted
    tenant_id=None, team=None, user=None, key_id=None, model=None, cost_usd=None, ttfb_ms=None,
    streamed=False, estimated=True,
)  # fmt: skip


NULL_STAND_INS = {"tenant_id": "", "team": "", "user": "", "key_id": "", "model": "", "cost_usd": -1.0}
NULL_STAND_INS["ttfb_ms"] = -1.0


def through_sqlalchemy(record: UsageRecord) -> list[Any]:
    """What SQLAlchemy would bind for `record` on SQLite."""
    dialect = sqlite.dialect()
    values = []
    for name, value in zip(COLUMNS, record, strict=True):
        processor = usage_records.c[name].type._cached_bind_processor(dialect)
        values.append(processor(value) if processor is not None else value)
    return values


@pytest.mark.parametrize("record", [FULL, SPARSE], ids=["every-field", "nulls-and-a-zone"])
def test_values_are_sqlalchemys_with_empty_text_and_minus_one_standing_for_null(record: UsageRecord) -> None:
    ours = sqlite_values([record])
    theirs = through_sqlalchemy(record)

    expected = [
        NULL_STAND_INS[name] if value is None else value
        for name, value in zip(COLUMNS, theirs, strict=True)
    ]
    assert ours == expected
    assert all(type(value) in (str, int, float) for value in ours)  # bound directly by the driver


def test_a_naive_timestamp_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        sqlite_values([FULL._replace(created_at=datetime(2026, 3, 1))])
