"""The ledger's SQLite rows hold exactly what SQLAlchemy's own bind processors would store."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy.dialects import sqlite

from gateway.storage.bulk import COLUMNS, STATEMENT_SIZES, _insert_sqlite, sqlite_values
from gateway.storage.models import usage_records
from gateway.storage.records import MAX_TOKENS, MAX_WEB_SEARCHES, UsageRecord

FULL = UsageRecord(
    datetime(2026, 3, 1, 12, 30, 5, 7, tzinfo=UTC).timestamp(), "req-1", "acme", "ml", "ada", "key_1",
    "openai", "api.openai.com", "gpt-4o", "chat.completions", 200, True, 120, 30, 20, 0, 5,
    Decimal("0.0001234567"), 812.25, 95.5, False, "flex",
)  # fmt: skip
SPARSE = FULL._replace(
    created_at=datetime(2026, 3, 1, 14, 0, tzinfo=timezone(timedelta(hours=2))).timestamp(),
    tenant_id=None, team=None, user=None, key_id=None, model=None, cost_usd=None, ttfb_ms=None,
    streamed=False, estimated=True, service_tier=None,
)  # fmt: skip


NULL_STAND_INS = {"tenant_id": "", "team": "", "user": "", "key_id": "", "model": "", "service_tier": ""}
NULL_STAND_INS["cost_usd"] = -1.0
NULL_STAND_INS["ttfb_ms"] = -1.0


def through_sqlalchemy(record: UsageRecord) -> list[Any]:
    """What SQLAlchemy would bind for `record` on SQLite, its time as an aware UTC `datetime`."""
    dialect = sqlite.dialect()
    values = []
    moment = datetime.fromtimestamp(record.created_at, UTC)
    for name, value in zip(COLUMNS, (moment, *record[1:]), strict=True):
        processor = usage_records.c[name].type._cached_bind_processor(dialect)
        values.append(processor(value) if processor is not None else value)
    return values


@pytest.mark.parametrize("record", [FULL, SPARSE], ids=["every-field", "nulls"])
def test_values_are_sqlalchemys_with_empty_text_and_minus_one_standing_for_null(record: UsageRecord) -> None:
    ours = sqlite_values([record], [])
    theirs = through_sqlalchemy(record)

    expected = [
        NULL_STAND_INS[name] if value is None else value
        for name, value in zip(COLUMNS, theirs, strict=True)
    ]
    assert ours == expected
    assert all(type(value) in (str, int, float) for value in ours)  # bound directly by the driver


# Times whose microseconds round (half to even, up into the next second), whole seconds, before 1970.
AWKWARD_TIMES = [
    1772368205.0000005, 1772368205.0000015, 1772368205.9999996, 1772368205.9999994, 1772368205.0,
    1772368205, 1772368205.123456, 1772368205.1234565, 0.0, 0.5e-6, 1.5e-6, -1.5, -0.0000005, -86400.25,
    253402300799.5,  # within the last second of year 9999
]


def test_every_time_is_written_as_sqlalchemy_writes_its_datetime() -> None:
    records = [FULL._replace(created_at=moment) for moment in AWKWARD_TIMES]
    random_times = random.Random(7).sample(range(0, 4_102_444_800_000_000, 7_919), 2_000)
    records += [FULL._replace(created_at=micros / 1e6 + 1e-7 * (micros % 10)) for micros in random_times]

    ours = sqlite_values(records, [])[:: len(COLUMNS)]

    assert ours == [through_sqlalchemy(record)[0] for record in records]


def test_consecutive_records_in_one_second_and_the_next_keep_their_own_times() -> None:
    times = [1772368205.25, 1772368205.5, 1772368206.000001, 1772368205.75]

    ours = sqlite_values([FULL._replace(created_at=moment) for moment in times], [])[:: len(COLUMNS)]

    assert ours == [
        "2026-03-01 12:30:05.250000",
        "2026-03-01 12:30:05.500000",
        "2026-03-01 12:30:06.000001",
        "2026-03-01 12:30:05.750000",
    ]


def test_counts_past_the_ledgers_bounds_are_written_at_them_with_the_cost_unknown_and_noted() -> None:
    record = FULL._replace(input_tokens=2**70, reasoning_tokens=MAX_TOKENS + 1, web_searches=2**31)
    noted: list[tuple[str, tuple[str, ...]]] = []

    ours = dict(zip(COLUMNS, sqlite_values([record], noted), strict=True))

    assert ours["input_tokens"] == ours["reasoning_tokens"] == MAX_TOKENS
    assert ours["web_searches"] == MAX_WEB_SEARCHES
    assert ours["output_tokens"] == FULL.output_tokens and ours["cost_usd"] == -1.0  # NULL: unknown
    assert noted == [("req-1", ("input_tokens", "reasoning_tokens", "web_searches"))]


def test_counts_at_the_bounds_are_written_as_they_are_and_not_noted() -> None:
    # Their bitwise or is past the bound (the quick check's false alarm): each one is within it.
    record = FULL._replace(input_tokens=MAX_TOKENS, output_tokens=1, web_searches=MAX_WEB_SEARCHES)
    noted: list[tuple[str, tuple[str, ...]]] = []

    assert sqlite_values([record], noted) == through_sqlalchemy(record)
    assert noted == []


class StatementLog:
    """A stand-in for the driver that notes each statement's number of rows and executions."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    async def executemany(self, sql: str, statements: list[list[Any]]) -> None:
        rows = sql.count("), (") + 1
        assert all(len(values) == rows * len(COLUMNS) for values in statements)
        self.calls.append((rows, len(statements)))


@pytest.mark.parametrize("count", [1, 9, 10, 99, 100, 237, 1000])
async def test_any_batch_is_written_with_three_statement_shapes_at_most(count: int) -> None:
    driver = StatementLog()

    await _insert_sqlite(driver, "usage_records", [FULL] * count, [])

    assert {rows for rows, _ in driver.calls} <= set(STATEMENT_SIZES)  # the driver prepares no others
    assert sum(rows * executions for rows, executions in driver.calls) == count
