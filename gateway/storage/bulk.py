"""Writing ledger batches through the driver's own bulk path: COPY on PostgreSQL, multi-row INSERT on SQLite.

The ledger writes one row per proxied call, so its insert sits on the gateway's CPU budget. Through
SQLAlchemy's executemany a row cost ~16 µs of CPU on SQLite; handing the driver prepared tuples
costs a fraction of that. On SQLite each statement executed is also a round trip of the interpreter
lock between the event loop and aiosqlite's thread (the driver releases it around every step), which
under load costs the event loop more than the insert itself: so rows go `ROWS_PER_STATEMENT` to a
statement. The rows left over go 10 and then 1 to a statement (`STATEMENT_SIZES`), so that only
three statements are ever prepared: the driver keeps each one it prepares, and a statement for
every length up to 100 rows held ~25 MB more than the gateway needs.

SQLite rows are converted here, column by column, to what SQLAlchemy's bind processors would store
(a test holds the two equal): the UTC timestamp as SQLAlchemy's text, the cost as a double, flags as
0 and 1. Two things make that cheap. The driver binds exact `int`, `float` and `str` values directly
but looks every other value up in its adapter registry first (about as costly as the rest of the row
for a `None`), so no `None` is bound: an empty text column and a negative cost or time to first byte
are bound instead and turned into NULL by the statement's `nullif` (empty texts and negative
amounts are not values the ledger holds). And the timestamp, epoch seconds in the record, becomes
text without a `datetime` per row: the date and time to the second are formatted once per second
of records, the microseconds appended (`datetime.isoformat` alone cost as much as the rest of the
row). PostgreSQL's COPY takes a `datetime`, made per row from the seconds.

On both backends each cost is rounded to the column's 10 places, half to even (`records.COST_CONTEXT`),
and each count kept within `records.bounded`'s bounds as its record becomes a row:
what a broken upstream reported is stored at the bound (its cost unknown) rather than refused, and the
request ids of such records are returned for the caller to log once they are written. The check costs
two comparisons a record: the token counts are non-negative (the extractors count anything else as
0), so their bitwise or is at least the largest of them.

A batch given an id is written once: its id goes into `usage_batches` first, in the batch's
transaction, and an id found there already means the batch is in the ledger (a retry of a write
whose commit's acknowledgement was lost), so its records are not written again. One small statement
a batch; on PostgreSQL it also opens the transaction the COPY then runs in (COPY alone commits on its
own). An id being written by a transaction not yet ended is waited for (at most PostgreSQL's statement
timeout or SQLite's busy timeout, then the database counts as unavailable), so that its outcome decides.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import InvalidOperation
from functools import lru_cache
from typing import Any

import asyncpg
from sqlalchemy import Table, delete
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.storage.errors import StorageRejected, StorageUnavailable
from gateway.storage.models import usage_batches
from gateway.storage.records import (
    COST_CONTEXT,
    COST_QUANTUM,
    MAX_TOKENS,
    MAX_WEB_SEARCHES,
    UsageRecord,
    bounded,
)

COLUMNS = UsageRecord._fields
# A record stored with counts at their bounds: its request id, and the names of those counts.
Bounded = tuple[str, tuple[str, ...]]
# What a database (or its driver, binding the values) raises for values it cannot store, while it is up.
REFUSED_VALUES = (
    InvalidOperation,  # a cost of ten billion dollars or more: past the column's 20 digits once rounded
    asyncpg.DataError,
    asyncpg.IntegrityConstraintViolationError,
    sqlite3.IntegrityError,
    sqlite3.DataError,
    OverflowError,
    UnicodeError,
    ValueError,
    TypeError,
)
# 23 columns x 100 rows stays far below SQLite's limit on bound parameters (32,766 since 3.32).
ROWS_PER_STATEMENT = 100 if sqlite3.sqlite_version_info >= (3, 32) else 40
STATEMENT_SIZES = (ROWS_PER_STATEMENT, 10, 1)  # rows per INSERT, largest first


# SQL that binds the placeholder of each column, in `COLUMNS` order: "" and -1.0 stand for NULL.
_NULL_TEXT = "nullif(?, '')"
_NULL_AMOUNT = "nullif(?, -1.0)"
_SQLITE_PLACEHOLDERS = {"tenant_id": _NULL_TEXT, "team": _NULL_TEXT, "user": _NULL_TEXT}
_SQLITE_PLACEHOLDERS |= {"key_id": _NULL_TEXT, "model": _NULL_TEXT, "service_tier": _NULL_TEXT}
_SQLITE_PLACEHOLDERS |= {"cost_usd": _NULL_AMOUNT, "ttfb_ms": _NULL_AMOUNT}


def utc_moment(seconds: float) -> datetime:
    """The aware UTC `datetime` of epoch `seconds` (to the microsecond, rounded half to even)."""
    return datetime.fromtimestamp(seconds, UTC)


def _utc_second(whole: int) -> str:
    """`YYYY-MM-DD HH:MM:SS` of a whole second since the epoch, in UTC."""
    return utc_moment(whole).isoformat(" ")[:19]


def _within_bounds(record: UsageRecord, out_of_bounds: list[Bounded]) -> UsageRecord:
    kept, counts = bounded(record)
    if counts:
        out_of_bounds.append((record.request_id, counts))
    return kept


def sqlite_values(records: Sequence[UsageRecord], out_of_bounds: list[Bounded]) -> list[Any]:
    """The values SQLite binds for `records`, row after row in column order (see the module's docstring);
    the records whose counts were bounded are noted in `out_of_bounds`."""
    values: list[Any] = []
    extend = values.extend
    second, second_text = None, ""  # the last whole second formatted, and its text
    quantize, quantum = COST_CONTEXT.quantize, COST_QUANTUM
    max_tokens, max_searches = MAX_TOKENS, MAX_WEB_SEARCHES
    for record in records:
        (created_at, request_id, tenant, team, user, key, provider, upstream, model, endpoint, status,
         streamed, input_tokens, output_tokens, cached, cache_write, reasoning, cost, duration, ttfb,
         estimated, tier, searches) = record  # fmt: skip
        if (input_tokens | output_tokens | cached | cache_write | reasoning) > max_tokens or (
            searches > max_searches
        ):  # out of bounds (see the module's docstring): rare
            record = _within_bounds(record, out_of_bounds)
            input_tokens, output_tokens, cached, cache_write, reasoning, cost = record[12:18]
            searches = record.web_searches
        # the microseconds as `datetime.fromtimestamp` rounds them (half to even); before 1970 its own way
        whole = int(created_at)
        micros = round((created_at - whole) * 1e6)
        if micros >= 1_000_000 or created_at < 0:
            stamp = utc_moment(created_at).isoformat(" ", "microseconds")[:26]
        else:
            if whole != second:
                second, second_text = whole, _utc_second(whole)
            stamp = f"{second_text}.{micros:06d}"
        extend((
            stamp, request_id, tenant or "", team or "",
            user or "", key or "", provider, upstream, model or "", endpoint, status, 1 if streamed else 0,
            input_tokens, output_tokens, cached, cache_write, reasoning,
            -1.0 if cost is None else float(quantize(cost, quantum)), duration,
            -1.0 if ttfb is None else ttfb, 1 if estimated else 0, tier or "", searches,
        ))  # fmt: skip
    return values


@lru_cache(maxsize=8)
def _insert_rows_sql(table_name: str, rows: int) -> str:
    placeholders = "(" + ", ".join(_SQLITE_PLACEHOLDERS.get(name, "?") for name in COLUMNS) + ")"
    quoted = ", ".join(f'"{name}"' for name in COLUMNS)
    values = ", ".join(placeholders for _ in range(rows))
    return f"INSERT INTO {table_name} ({quoted}) VALUES {values}"  # noqa: S608 (fixed names)


def postgres_rows(records: Sequence[UsageRecord], out_of_bounds: list[Bounded]) -> list[tuple[Any, ...]]:
    """The rows COPY takes for `records`: the time as a `datetime`, then the record's values."""
    rows = []
    quantize, quantum = COST_CONTEXT.quantize, COST_QUANTUM
    for record in records:
        if (record[12] | record[13] | record[14] | record[15] | record[16]) > MAX_TOKENS or (
            record[22] > MAX_WEB_SEARCHES
        ):
            record = _within_bounds(record, out_of_bounds)
        cost = record[17]
        cost = cost if cost is None else quantize(cost, quantum)
        rows.append((utc_moment(record[0]), *record[1:17], cost, *record[18:]))
    return rows


async def _insert_sqlite(
    driver: Any, table_name: str, records: Sequence[UsageRecord], out_of_bounds: list[Bounded]
) -> None:
    start = 0
    for size in STATEMENT_SIZES:  # as many statements of each size as fit, one `executemany` per size
        end = start + (len(records) - start) // size * size
        if end > start:
            statements = [
                sqlite_values(records[at : at + size], out_of_bounds) for at in range(start, end, size)
            ]
            await driver.executemany(_insert_rows_sql(table_name, size), statements)
            start = end


async def insert_usage(db: AsyncConnection, table: Table, records: Sequence[UsageRecord]) -> list[Bounded]:
    """Insert `records` within `db`'s transaction (COPY on PostgreSQL: atomic on its own); the records
    whose counts were stored at their bounds."""
    raw = await db.get_raw_connection()
    driver: Any = raw.driver_connection
    out_of_bounds: list[Bounded] = []
    try:
        if db.dialect.name == "postgresql":
            rows = postgres_rows(records, out_of_bounds)
            await driver.copy_records_to_table(table.name, records=rows, columns=list(COLUMNS))
        else:
            await _insert_sqlite(driver, table.name, records, out_of_bounds)
    except REFUSED_VALUES as exc:
        raise StorageRejected(f"database refused a value: {type(exc).__name__}") from exc
    except (asyncpg.PostgresError, asyncpg.InterfaceError, sqlite3.Error, OSError) as exc:
        raise StorageUnavailable(f"database error: {type(exc).__name__}") from exc
    return out_of_bounds


async def mark_written(db: AsyncConnection, batch_id: bytes, now: datetime) -> bool:
    """Note batch `batch_id` as written in `db`'s transaction; False when it was written already."""
    dialect_insert = postgresql_insert if db.dialect.name == "postgresql" else sqlite_insert
    statement = dialect_insert(usage_batches).values(id=batch_id, written_at=now).on_conflict_do_nothing()
    return (await db.execute(statement)).rowcount == 1


async def forget_batches(db: AsyncConnection, before: datetime) -> int:
    """Delete the ids of the batches written before `before`; how many were deleted."""
    result = await db.execute(delete(usage_batches).where(usage_batches.c.written_at < before))
    return result.rowcount
