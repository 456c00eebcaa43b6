"""Writing ledger batches through the driver's own bulk path: COPY on PostgreSQL, executemany on SQLite.

The ledger writes one row per proxied call, so its insert sits on the gateway's CPU budget. Through
SQLAlchemy's executemany a row cost ~16 µs of CPU on SQLite; handing the driver prepared tuples
costs ~9 µs (SQLite's own work is ~4 µs). Values are converted once, by the same bind processors
SQLAlchemy would apply, so what is stored reads back exactly as through SQLAlchemy.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import fields
from operator import attrgetter
from typing import Any

import asyncpg
from sqlalchemy import Table
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.storage.errors import StorageUnavailable
from gateway.storage.records import UsageRecord

COLUMNS = tuple(field.name for field in fields(UsageRecord))
_values_of = attrgetter(*COLUMNS)
Converter = Callable[[Any], Any]


def _converters(table: Table, dialect: Dialect) -> list[tuple[int, Converter]]:
    """(position, bind processor) for each column whose type converts values for this dialect."""
    found: list[tuple[int, Converter]] = []
    for index, name in enumerate(COLUMNS):
        processor = table.c[name].type._cached_bind_processor(dialect)
        if processor is not None:
            found.append((index, processor))
    return found


def _rows(records: Sequence[UsageRecord], converters: list[tuple[int, Converter]]) -> list[list[Any]]:
    rows = []
    for record in records:
        row = list(_values_of(record))
        for index, convert in converters:
            row[index] = convert(row[index])
        rows.append(row)
    return rows


async def insert_usage(db: AsyncConnection, table: Table, records: Sequence[UsageRecord]) -> None:
    """Insert `records` within `db`'s transaction (COPY on PostgreSQL: atomic on its own)."""
    raw = await db.get_raw_connection()
    driver: Any = raw.driver_connection
    dialect = db.dialect
    try:
        if dialect.name == "postgresql":
            rows = [tuple(_values_of(record)) for record in records]
            await driver.copy_records_to_table(table.name, records=rows, columns=list(COLUMNS))
        else:
            placeholders = ", ".join("?" for _ in COLUMNS)
            quoted = ", ".join(f'"{name}"' for name in COLUMNS)
            sql = f"INSERT INTO {table.name} ({quoted}) VALUES ({placeholders})"  # noqa: S608 (fixed names)
            await driver.executemany(sql, _rows(records, _converters(table, dialect)))
    except (asyncpg.PostgresError, asyncpg.InterfaceError, sqlite3.Error, OSError) as exc:
        raise StorageUnavailable(f"database error: {type(exc).__name__}") from exc
