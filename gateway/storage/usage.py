"""The usage ledger's table: batched inserts from the ledger writer, aggregations for reports.

`aggregate` sums the ledger by any of tenant, team, user, key, model, provider and UTC day, over a
half-open time range [since, until) and equality filters, one page of groups at a time, each page
read up to a ledger position (`snapshot`) so that the pages of one report add up. Sums are
exact: token counts as integers, costs as `Decimal` with the column's 10 decimal places on both
backends. (SQLite keeps the cost column as a double, so there the whole dollars of each cost and its
fraction, rounded back to units of 1e-10 USD, are summed apart as integers and put together here. That
is exact for any one call's cost below $500,000, where a double still holds the 10th decimal, and
neither integer sum overflows short of some 900 million calls at the column's largest cost.)

`insert_many` writes a batch given an id once (see `bulk.mark_written`): written again under the same
id, as the ledger retries a write whose commit's acknowledgement was lost, it is not stored twice. The
ids are kept for `BATCH_MEMORY`, far past any retry; once every `FORGET_EVERY` a batch's transaction
also deletes the older ones (by the index on their time: a day of ids, one row a batch).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Context, Decimal
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from sqlalchemy import ColumnElement, Integer, Label, Row, Select, cast, func, literal_column, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql import operators
from sqlalchemy.sql.expression import UnaryExpression

from gateway.storage.bulk import forget_batches, insert_usage, mark_written
from gateway.storage.errors import StorageError
from gateway.storage.models import usage_records
from gateway.storage.records import COST_QUANTUM, COST_SCALE, UsageRecord
from gateway.storage.repositories import transaction

logger = logging.getLogger("tollgate.ledger")
_WIDE = Context(prec=60)  # room for any sum of the column's 20 digits, to its last place
MAX_OFFSET = 10**12  # groups skipped at most: more than a ledger holds, and what every database binds
MAX_SNAPSHOT = 2**63 - 1  # the largest record id
BATCH_MEMORY = timedelta(days=1)  # how long a written batch's id is known: far past any retry of it
FORGET_EVERY = timedelta(hours=1)  # how often the ids older than that are deleted


class SumOverflow(StorageError):
    """A sum past what the database's integers hold: no answer to this query, though the database is up."""


class Dimension(StrEnum):
    """What usage can be grouped by."""

    TENANT = "tenant"
    TEAM = "team"
    USER = "user"
    KEY = "key"
    MODEL = "model"
    PROVIDER = "provider"
    SERVICE_TIER = "service_tier"  # the processing tier, null for the standard one
    DAY = "day"  # the UTC calendar day of created_at, as YYYY-MM-DD


@dataclass(frozen=True, slots=True)
class UsageFilter:
    """Which records count: created in [since, until), equal to every field given, and written by
    `snapshot` (the id of the last record written when a report's first page was read, see
    `UsagePage.snapshot`)."""

    since: datetime | None = None
    until: datetime | None = None
    tenant: str | None = None
    team: str | None = None
    user: str | None = None
    key: str | None = None
    model: str | None = None
    provider: str | None = None
    snapshot: int | None = None

    def __post_init__(self) -> None:
        for bound in (self.since, self.until):
            if bound is not None and bound.tzinfo is None:
                raise ValueError("usage filters take aware datetimes (UTC), not naive ones")
        for name in FILTERS:
            value = getattr(self, name)
            if value is not None:
                check_filter(name, value)
        if self.snapshot is not None and not 0 <= self.snapshot <= MAX_SNAPSHOT:
            raise ValueError(f"the snapshot is a ledger position, 0..{MAX_SNAPSHOT}")


FILTERS = ("tenant", "team", "user", "key", "model", "provider")  # `UsageFilter`'s equality filters


def check_filter(name: str, value: str) -> None:
    """Refuse (ValueError) a `name` filter that no recorded value can equal, which would select nothing
    and so report a tenant (team, ...) as if it had made no calls."""
    if not value:
        raise ValueError(
            f"the {name} filter is empty, which no recorded value is (leave it out to keep every {name})"
        )
    if "\x00" in value:
        raise ValueError(f"the {name} filter holds a NUL character, which no recorded value does")
    try:
        value.encode()
    except UnicodeEncodeError:  # a lone surrogate: from bytes of another encoding, as argv carries them
        raise ValueError(
            f"the {name} filter is not valid UTF-8 (text in another encoding?), which every recorded value is"
        ) from None


@dataclass(frozen=True, slots=True)
class UsageRow:
    """The sums over one group of records (over all of them, for `totals`)."""

    group: Mapping[Dimension, str | None]  # in the order grouped by; None where the records had none
    requests: int
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int
    web_searches: int  # searches the providers ran for the calls and billed apiece (in cost_usd)
    cost_usd: Decimal  # the sum of the known costs
    unpriced_requests: int  # records whose cost is unknown (null), not in cost_usd
    estimated_requests: int  # records whose tokens were estimated, not reported by the provider


@dataclass(frozen=True, slots=True)
class UsagePage:
    rows: list[UsageRow]
    next_offset: int | None  # the offset of the next page, None when this is the last
    # The ledger position read up to: the id of the last record written then (0 for none), to read the
    # next pages at. A call's record is written when the call ends (a stream, minutes later; a
    # background response, hours later; after an outage), with the time it was received: a window
    # whose end has passed still takes in records, which would shift the groups from page to page.
    snapshot: int | None = None


SUMMED = (  # the columns summed, in the order reports show them
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "web_searches",
)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class UsageRepository:
    def __init__(self, engine: AsyncEngine, *, clock: Callable[[], datetime] = _utc_now) -> None:
        self._engine = engine
        self._clock = clock
        self._forget_at = datetime.min.replace(tzinfo=UTC)  # when old batch ids are next deleted

    async def insert_many(self, records: Sequence[UsageRecord], *, batch_id: bytes | None = None) -> None:
        """Write a batch in one transaction: all of it, or (raising) none of it; under `batch_id`, once
        (nothing is written when a batch of that id was). A record whose counts are past the ledger's
        bounds (`records.bounded`) is written with them at their bounds and its cost unknown, and logged
        (its request id and the counts) once written."""
        if not records:
            return
        async with transaction(self._engine) as db:
            if batch_id is not None and not await self._mark_written(db, batch_id):
                logger.warning(
                    "usage batch written already (its commit's acknowledgement was lost): not written again",
                    extra={"fields": {"batch": batch_id.hex(), "records": len(records)}},
                )
                return
            out_of_bounds = await insert_usage(db, usage_records, records)
        for request_id, counts in out_of_bounds:
            logger.warning(
                "usage record written with counts past the ledger's bounds at their bounds, its cost unknown",
                extra={"fields": {"request_id": request_id, "counts": list(counts)}},
            )

    async def _mark_written(self, db: AsyncConnection, batch_id: bytes) -> bool:
        """Note the batch as written (False when it was already), first deleting the ids older than
        `BATCH_MEMORY` when `FORGET_EVERY` has passed since they last were."""
        now = self._clock()
        if now >= self._forget_at:
            self._forget_at = now + FORGET_EVERY  # a failed deletion is not tried again before then
            await forget_batches(db, now - BATCH_MEMORY)
        return await mark_written(db, batch_id, now)

    async def aggregate(
        self, group_by: Sequence[Dimension], filters: UsageFilter, limit: int, offset: int = 0
    ) -> UsagePage:
        """Sums per group of the records `filters` selects, ordered by the group values (nulls last),
        texts compared by their code points on every backend."""
        if limit < 1 or not 0 <= offset <= MAX_OFFSET:
            raise ValueError(f"limit must be at least 1 and offset 0..{MAX_OFFSET}")
        if len(set(group_by)) != len(group_by):
            raise ValueError("each dimension may be grouped by once")
        dimensions = [Dimension(dimension) for dimension in group_by]
        dialect = self._engine.dialect.name
        if filters.snapshot is None:
            filters = replace(filters, snapshot=await self._last_written())
        groups = [_group_column(dimension, dialect) for dimension in dimensions]
        query = (
            _summing(dialect, groups, filters)
            .group_by(*groups)
            .order_by(*(_in_byte_order(group, dialect).asc().nulls_last() for group in groups))
            .limit(limit + 1)
            .offset(offset)
        )
        rows = await self._sums(query)
        page = [_usage_row(row, dimensions) for row in rows[:limit]]
        return UsagePage(page, offset + limit if len(rows) > limit else None, filters.snapshot)

    async def _last_written(self) -> int:
        """The id of the last record written (0 for none): ids grow as records are written. (On
        PostgreSQL a batch takes its ids as it starts to be written: one still being written then
        may show up in a later page.)"""
        async with transaction(self._engine) as db:
            last = (await db.execute(select(func.max(usage_records.c.id)))).scalar_one()
        return 0 if last is None else int(last)

    async def totals(self, filters: UsageFilter) -> UsageRow:
        """The sums over every record `filters` selects (zeros when there is none)."""
        [row] = await self._sums(_summing(self._engine.dialect.name, [], filters))
        return _usage_row(row, [])

    async def _sums(self, query: Select[Any]) -> Sequence[Row[Any]]:
        async with transaction(self._engine) as db:
            try:
                rows: Sequence[Row[Any]] = (await db.execute(query)).all()
            except OperationalError as exc:
                # SQLite's sum() of integers fails past 64 bits with this message and the generic
                # SQLITE_ERROR code: the message is all that tells it from other errors.
                if isinstance(exc.orig, sqlite3.OperationalError) and str(exc.orig) == "integer overflow":
                    raise SumOverflow(
                        "a sum of the records selected is past the 64 bits SQLite sums in (a record"
                        " written before its counts were bounded?); narrow the time range or the filters"
                    ) from None
                raise
        return rows


_DIMENSION_COLUMNS: Mapping[Dimension, ColumnElement[Any]] = MappingProxyType(
    {
        Dimension.TENANT: usage_records.c.tenant_id,
        Dimension.TEAM: usage_records.c.team,
        Dimension.USER: usage_records.c.user,
        Dimension.KEY: usage_records.c.key_id,
        Dimension.MODEL: usage_records.c.model,
        Dimension.PROVIDER: usage_records.c.provider,
        Dimension.SERVICE_TIER: usage_records.c.service_tier,
    }
)


def _group_column(dimension: Dimension, dialect: str) -> Label[Any]:
    if dimension is Dimension.DAY:
        return _utc_day(dialect).label(f"group_{dimension.value}")
    column = _DIMENSION_COLUMNS[dimension]
    if dialect == "sqlite":
        column = _without_index_order(column)
    return column.label(f"group_{dimension.value}")


def _in_byte_order(group: Label[Any], dialect: str) -> ColumnElement[Any]:
    """What a group is sorted by: its value, compared byte by byte on every backend.

    SQLite compares texts by their bytes (UTF-8: code point order). PostgreSQL sorts by the database's
    collation, often a language's (`en_US.UTF-8`: `_b`, `alpha`, `Beta`), which would order the groups,
    and so fill each page, differently from SQLite; its "C" collation compares bytes, as SQLite does.
    """
    if dialect != "postgresql":
        return group
    return group.element.collate("C")


def _without_index_order(column: ColumnElement[Any]) -> ColumnElement[Any]:
    """`+column`: the same value, but no index of SQLite's to deliver it in order.

    Without ANALYZE statistics (the gateway keeps none) SQLite groups by tenant by walking the whole
    (tenant_id, created_at) index instead of range-scanning created_at: 90 ms rather than 6 for the
    last day of a million records (scripts/bench_usage_queries.py). The unary plus is SQLite's
    documented way to keep a column from steering the plan.
    """
    return UnaryExpression(column, operator=operators.custom_op("+"), type_=column.type)


def _utc_day(dialect: str) -> ColumnElement[str]:
    created_at = usage_records.c.created_at
    if dialect == "postgresql":  # timestamptz -> UTC wall-clock time, whatever the session's TimeZone
        return func.to_char(func.timezone("UTC", created_at), "YYYY-MM-DD")
    return func.strftime("%Y-%m-%d", created_at)  # SQLite: stored as UTC text


def _cost_sums(dialect: str) -> list[ColumnElement[Any]]:
    """The summed cost: PostgreSQL's exact numeric; SQLite's whole dollars and units of 1e-10 USD."""
    cost = usage_records.c.cost_usd
    if dialect == "postgresql":
        return [func.sum(cost).label("cost")]
    dollars = cast(cost, Integer)  # toward zero
    units = cast(func.round((cost - dollars) * literal_column(str(10**COST_SCALE))), Integer)
    return [func.sum(dollars).label("cost"), func.sum(units).label("cost_units")]


def _summing(dialect: str, groups: Sequence[ColumnElement[Any]], filters: UsageFilter) -> Select[Any]:
    columns = usage_records.c
    return select(
        *groups,
        func.count().label("requests"),
        *(func.coalesce(func.sum(columns[name]), 0).label(name) for name in SUMMED),
        *_cost_sums(dialect),
        (func.count() - func.count(columns.cost_usd)).label("unpriced_requests"),
        func.count().filter(columns.estimated).label("estimated_requests"),
    ).where(*_conditions(filters, dialect))


def _conditions(filters: UsageFilter, dialect: str) -> list[ColumnElement[bool]]:
    columns = usage_records.c
    conditions: list[ColumnElement[bool]] = []
    if filters.snapshot is not None:  # no index for it: it keeps almost every record of the range
        written = _without_index_order(columns.id) if dialect == "sqlite" else columns.id
        conditions.append(written <= filters.snapshot)
    if filters.since is not None:
        conditions.append(columns.created_at >= filters.since)
    if filters.until is not None:
        conditions.append(columns.created_at < filters.until)
    equal = {
        columns.tenant_id: filters.tenant,
        columns.team: filters.team,
        columns.user: filters.user,
        columns.key_id: filters.key,
        columns.model: filters.model,
        columns.provider: filters.provider,
    }
    conditions += [column == value for column, value in equal.items() if value is not None]
    return conditions


def _usage_row(row: Row[Any], dimensions: Sequence[Dimension]) -> UsageRow:
    values = row._mapping
    return UsageRow(
        group={dimension: values[f"group_{dimension.value}"] for dimension in dimensions},
        requests=int(values["requests"]),
        input_tokens=int(values["input_tokens"]),
        output_tokens=int(values["output_tokens"]),
        cached_input_tokens=int(values["cached_input_tokens"]),
        cache_write_tokens=int(values["cache_write_tokens"]),
        reasoning_tokens=int(values["reasoning_tokens"]),
        web_searches=int(values["web_searches"]),
        cost_usd=_cost(values["cost"], values.get("cost_units")),
        unpriced_requests=int(values["unpriced_requests"]),
        estimated_requests=int(values["estimated_requests"]),
    )


def _cost(total: object, units: object) -> Decimal:
    """A summed cost as Decimal with the column's scale: PostgreSQL's numeric, or SQLite's whole dollars
    and units of 1e-10 USD."""
    if total is None:  # no known cost
        return Decimal(0).quantize(COST_QUANTUM)
    if isinstance(total, int):
        assert isinstance(units, int)
        return Decimal(f"{total * 10**COST_SCALE + units}E-{COST_SCALE}")  # exact, whatever the context
    assert isinstance(total, Decimal)
    return _WIDE.quantize(total, COST_QUANTUM)
