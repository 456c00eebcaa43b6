"""The usage ledger's aggregations: exact sums per group, filters, UTC days and pages, on every backend.

`LEDGER` is six hand-made records whose sums are worked out in the expectations below.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from gateway.storage.bulk import ROWS_PER_STATEMENT
from gateway.storage.engine import async_url, create_engine
from gateway.storage.errors import StorageRejected
from gateway.storage.records import MAX_TOKENS, MAX_WEB_SEARCHES, UsageRecord, storable
from gateway.storage.usage import (
    Dimension,
    SumOverflow,
    UsageFilter,
    UsagePage,
    UsageRepository,
    UsageRow,
)
from tests.support.ledger_rows import write_as_before_the_bounds

DAY1 = datetime(2026, 3, 1, tzinfo=UTC)
DAY2 = DAY1 + timedelta(days=1)
DAY3 = DAY1 + timedelta(days=2)
TINY = Decimal("0.0000000001")  # the smallest cost the ledger holds


def usage(created_at: datetime, **fields: Any) -> UsageRecord:
    values: dict[str, Any] = {
        "created_at": created_at.timestamp(),
        "request_id": f"req-{created_at.timestamp()}",
        "tenant_id": "acme",
        "team": None,
        "user": None,
        "key_id": None,
        "provider": "openai",
        "upstream": "https://api.openai.com/v1",
        "model": "gpt-4o",
        "endpoint": "chat.completions",
        "status": 200,
        "streamed": False,
        "input_tokens": 0,
        "output_tokens": 0,
        "cached_input_tokens": 0,
        "cache_write_tokens": 0,
        "reasoning_tokens": 0,
        "cost_usd": None,
        "duration_ms": 12.5,
        "ttfb_ms": None,
        "estimated": False,
    }
    values.update(fields)
    return UsageRecord(**values)


def tokens(
    input: int, output: int, cached: int = 0, cache_write: int = 0, reasoning: int = 0
) -> dict[str, int]:
    return {
        "input_tokens": input,
        "output_tokens": output,
        "cached_input_tokens": cached,
        "cache_write_tokens": cache_write,
        "reasoning_tokens": reasoning,
    }


ACME_ML = {"tenant_id": "acme", "team": "ml"}
GLOBEX_CORE = {"tenant_id": "globex", "team": "core", "user": "cyd", "key_id": "key_g1"}
LEDGER = [
    usage(DAY1 + timedelta(hours=9), **ACME_ML, user="ada", key_id="key_a1", **tokens(1000, 100, cached=200),
          cost_usd=Decimal("0.10")),
    usage(DAY2 - timedelta(microseconds=1), **ACME_ML, user="bob", key_id="key_a2", model="gpt-4o-mini",
          **tokens(500, 50, reasoning=10), cost_usd=Decimal("0.20"), service_tier="priority"),
    usage(DAY2, key_id="key_a3", provider="anthropic", model="claude-sonnet-4",
          **tokens(2000, 300, cached=1000, cache_write=500), web_searches=3),
    usage(DAY2 + timedelta(hours=12), **GLOBEX_CORE, **tokens(10, 1), cost_usd=TINY, estimated=True),
    usage(DAY3 + timedelta(hours=8), **GLOBEX_CORE, provider="gemini", model="gemini-2.5-flash",
          **tokens(40, 4, reasoning=4), cost_usd=Decimal("0.05"), web_searches=1),
    usage(DAY3 + timedelta(hours=10), tenant_id=None, model=None, status=401),
]  # fmt: skip


@pytest.fixture
async def ledger(engine: AsyncEngine) -> UsageRepository:
    repository = UsageRepository(engine)
    await repository.insert_many(LEDGER)
    return repository


def summary(row: UsageRow) -> tuple[int, Decimal, int]:
    """What most expectations check: requests, cost, unpriced requests."""
    return row.requests, row.cost_usd, row.unpriced_requests


def by_group(page: UsagePage) -> dict[tuple[str | None, ...], tuple[int, Decimal, int]]:
    return {tuple(row.group.values()): summary(row) for row in page.rows}


async def everything(repository: UsageRepository, *group_by: Dimension, **filters: Any) -> UsagePage:
    return await repository.aggregate(group_by, UsageFilter(**filters), limit=100, offset=0)


# -- totals -------------------------------------------------------------------------------------------


async def test_totals_of_an_empty_ledger_are_zeros(engine: AsyncEngine) -> None:
    totals = await UsageRepository(engine).totals(UsageFilter())

    assert totals == UsageRow({}, 0, 0, 0, 0, 0, 0, 0, Decimal(0), 0, 0)


async def test_totals_sum_every_token_kind_and_count_every_record(ledger: UsageRepository) -> None:
    totals = await ledger.totals(UsageFilter())

    assert totals == UsageRow(
        group={},
        requests=6,
        input_tokens=3550,
        output_tokens=455,
        cached_input_tokens=1200,
        cache_write_tokens=500,
        reasoning_tokens=14,
        web_searches=4,
        cost_usd=Decimal("0.3500000001"),
        unpriced_requests=2,
        estimated_requests=1,
    )


async def test_costs_add_up_exactly_to_the_ledgers_last_decimal_place(engine: AsyncEngine) -> None:
    repository = UsageRepository(engine)
    costs = [Decimal("0.1"), Decimal("0.2"), *[Decimal("98765.0123456789")] * 3, *[TINY] * 7]
    await repository.insert_many([usage(DAY1, cost_usd=cost) for cost in costs])

    totals = await repository.totals(UsageFilter())

    assert totals.cost_usd == Decimal("296295.3370370374")
    assert str(totals.cost_usd) == "296295.3370370374"


# Costs past the column's 10 places, as a price of $0.01875 per million tokens gives: each ends in a 5.
HALVES = {
    "0.00000013125": Decimal("0.0000001312"),  # 1312.5 units to the even 1312, not 1313
    "0.00000129375": Decimal("0.0000012938"),  # 12937.5 to the even 12938
    "0.00000000005": Decimal("0"),
    "0.00000000015": Decimal("0.0000000002"),
    "-0.00000000025": Decimal("-0.0000000002"),
}


async def test_each_cost_is_rounded_to_ten_places_half_to_even_alike_on_every_backend(
    engine: AsyncEngine,
) -> None:
    repository = UsageRepository(engine)
    await repository.insert_many([usage(DAY1, model=cost, cost_usd=Decimal(cost)) for cost in HALVES])

    page = await everything(repository, Dimension.MODEL)

    assert {row.group[Dimension.MODEL]: row.cost_usd for row in page.rows} == HALVES
    assert (await repository.totals(UsageFilter())).cost_usd == sum(HALVES.values())


async def test_costs_sum_exactly_far_past_a_billion_dollars(engine: AsyncEngine) -> None:
    repository = UsageRepository(engine)
    costs = [*[Decimal("9000000000.5")] * 3, Decimal("0.1234567891"), *[TINY] * 3]  # the column's largest
    await repository.insert_many(
        [usage(DAY1, model=f"m{n % 2}", cost_usd=cost) for n, cost in enumerate(costs)]
    )

    totals = await repository.totals(UsageFilter())
    page = await everything(repository, Dimension.MODEL)

    assert totals.cost_usd == Decimal("27000000001.6234567894")
    assert [row.cost_usd for row in page.rows] == [
        Decimal("18000000001.0000000002"),
        Decimal("9000000000.6234567892"),
    ]


async def test_a_batch_larger_than_one_insert_statement_stores_every_record_once(engine: AsyncEngine) -> None:
    repository = UsageRepository(engine)
    count = 2 * ROWS_PER_STATEMENT + 37  # statements of each size: 100, 10 and 1 rows
    await repository.insert_many(
        [usage(DAY1, request_id=f"req-{n}", input_tokens=n, cost_usd=TINY) for n in range(count)]
    )

    totals = await repository.totals(UsageFilter())

    assert (totals.requests, totals.input_tokens) == (count, sum(range(count)))
    assert totals.cost_usd == TINY * count


async def test_unknown_costs_are_counted_as_unpriced_and_left_out_of_the_sum(engine: AsyncEngine) -> None:
    repository = UsageRepository(engine)
    await repository.insert_many([usage(DAY1), usage(DAY1, cost_usd=Decimal("0.5")), usage(DAY1)])

    assert summary(await repository.totals(UsageFilter())) == (3, Decimal("0.5"), 2)


async def test_a_group_with_only_unknown_costs_costs_zero_and_is_all_unpriced(
    ledger: UsageRepository,
) -> None:
    page = await everything(ledger, Dimension.PROVIDER)

    assert by_group(page)[("anthropic",)] == (1, Decimal(0), 1)


# -- grouping -----------------------------------------------------------------------------------------


async def test_grouping_by_tenant_sums_every_column_per_tenant_and_puts_no_tenant_last(
    ledger: UsageRepository,
) -> None:
    page = await everything(ledger, Dimension.TENANT)

    assert page.next_offset is None
    assert page.rows == [
        UsageRow({Dimension.TENANT: "acme"}, 3, 3500, 450, 1200, 500, 10, 3, Decimal("0.30"), 1, 0),
        UsageRow({Dimension.TENANT: "globex"}, 2, 50, 5, 0, 0, 4, 1, Decimal("0.0500000001"), 0, 1),
        UsageRow({Dimension.TENANT: None}, 1, 0, 0, 0, 0, 0, 0, Decimal(0), 1, 0),
    ]


Summary = tuple[int, Decimal, int]
EXPECTED_BY_DIMENSION: dict[Dimension, dict[tuple[str | None, ...], Summary]] = {
    Dimension.TEAM: {
        ("core",): (2, Decimal("0.0500000001"), 0),
        ("ml",): (2, Decimal("0.30"), 0),
        (None,): (2, Decimal(0), 2),
    },
    Dimension.USER: {
        ("ada",): (1, Decimal("0.10"), 0),
        ("bob",): (1, Decimal("0.20"), 0),
        ("cyd",): (2, Decimal("0.0500000001"), 0),
        (None,): (2, Decimal(0), 2),
    },
    Dimension.KEY: {
        ("key_a1",): (1, Decimal("0.10"), 0),
        ("key_a2",): (1, Decimal("0.20"), 0),
        ("key_a3",): (1, Decimal(0), 1),
        ("key_g1",): (2, Decimal("0.0500000001"), 0),
        (None,): (1, Decimal(0), 1),
    },
    Dimension.MODEL: {
        ("claude-sonnet-4",): (1, Decimal(0), 1),
        ("gemini-2.5-flash",): (1, Decimal("0.05"), 0),
        ("gpt-4o",): (2, Decimal("0.1000000001"), 0),
        ("gpt-4o-mini",): (1, Decimal("0.20"), 0),
        (None,): (1, Decimal(0), 1),
    },
    Dimension.PROVIDER: {
        ("anthropic",): (1, Decimal(0), 1),
        ("gemini",): (1, Decimal("0.05"), 0),
        ("openai",): (4, Decimal("0.3000000001"), 1),
    },
    Dimension.SERVICE_TIER: {
        ("priority",): (1, Decimal("0.20"), 0),
        (None,): (5, Decimal("0.1500000001"), 2),  # the standard tier
    },
    Dimension.DAY: {
        ("2026-03-01",): (2, Decimal("0.30"), 0),
        ("2026-03-02",): (2, TINY, 1),
        ("2026-03-03",): (2, Decimal("0.05"), 1),
    },
}


@pytest.mark.parametrize("dimension", list(EXPECTED_BY_DIMENSION), ids=str)
async def test_grouping_by_one_dimension_gives_one_row_per_value_in_order(
    ledger: UsageRepository, dimension: Dimension
) -> None:
    page = await everything(ledger, dimension)

    expected = EXPECTED_BY_DIMENSION[dimension]
    assert by_group(page) == expected
    assert [tuple(row.group.values()) for row in page.rows] == list(expected)  # sorted, None last


async def test_grouping_by_tenant_and_day_gives_one_row_per_pair(ledger: UsageRepository) -> None:
    page = await everything(ledger, Dimension.TENANT, Dimension.DAY)

    assert [list(row.group) for row in page.rows] == [[Dimension.TENANT, Dimension.DAY]] * 5
    assert by_group(page) == {
        ("acme", "2026-03-01"): (2, Decimal("0.30"), 0),
        ("acme", "2026-03-02"): (1, Decimal(0), 1),
        ("globex", "2026-03-02"): (1, TINY, 0),
        ("globex", "2026-03-03"): (1, Decimal("0.05"), 0),
        (None, "2026-03-03"): (1, Decimal(0), 1),
    }
    assert list(by_group(page)) == sorted(by_group(page), key=lambda key: (key[0] is None, key))


async def test_the_order_of_dimensions_is_the_order_of_sorting(ledger: UsageRepository) -> None:
    page = await everything(ledger, Dimension.DAY, Dimension.TENANT)

    assert list(by_group(page)) == [
        ("2026-03-01", "acme"),
        ("2026-03-02", "acme"),
        ("2026-03-02", "globex"),
        ("2026-03-03", "globex"),
        ("2026-03-03", None),
    ]


async def test_token_kinds_and_estimates_are_summed_per_group(ledger: UsageRepository) -> None:
    page = await everything(ledger, Dimension.KEY, Dimension.MODEL)

    globex = {tuple(row.group.values()): row for row in page.rows}
    assert globex[("key_g1", "gemini-2.5-flash")] == UsageRow(
        {Dimension.KEY: "key_g1", Dimension.MODEL: "gemini-2.5-flash"},
        1,
        40,
        4,
        0,
        0,
        4,
        1,
        Decimal("0.05"),
        0,
        0,
    )
    assert globex[("key_g1", "gpt-4o")].estimated_requests == 1


# -- UTC days -----------------------------------------------------------------------------------------


async def test_a_day_runs_from_midnight_to_midnight_utc_whatever_zone_the_instant_was_given_in(
    engine: AsyncEngine,
) -> None:
    tokyo = timezone(timedelta(hours=9))
    repository = UsageRepository(engine)
    await repository.insert_many(
        [
            usage(datetime(2026, 3, 2, 8, 59, 59, 999999, tzinfo=tokyo)),  # 2026-03-01 23:59:59.999999Z
            usage(datetime(2026, 3, 2, 9, 0, 0, tzinfo=tokyo)),  # 2026-03-02 00:00:00Z
            usage(datetime(2026, 3, 1, 19, 0, 0, tzinfo=timezone(timedelta(hours=-5)))),  # 03-02 00:00Z
        ]
    )

    page = await everything(repository, Dimension.DAY)

    assert [(row.group[Dimension.DAY], row.requests) for row in page.rows] == [
        ("2026-03-01", 1),
        ("2026-03-02", 2),
    ]


@pytest.fixture
async def tokyo_session_engine(database_url: str, backend: str) -> AsyncIterator[AsyncEngine]:
    """An engine whose PostgreSQL sessions run in Asia/Tokyo time (SQLite has no session zone)."""
    if backend == "postgresql":
        zone = {"server_settings": {"timezone": "Asia/Tokyo"}}
        engine = create_async_engine(async_url(database_url), connect_args=zone)
    else:
        engine = create_engine(database_url)
    try:
        yield engine
    finally:
        await engine.dispose()


async def test_days_are_utc_even_when_the_database_session_is_in_another_zone(
    engine: AsyncEngine, tokyo_session_engine: AsyncEngine
) -> None:
    await UsageRepository(engine).insert_many([usage(DAY2 - timedelta(hours=1)), usage(DAY2)])

    page = await everything(UsageRepository(tokyo_session_engine), Dimension.DAY)

    assert [(row.group[Dimension.DAY], row.requests) for row in page.rows] == [
        ("2026-03-01", 1),
        ("2026-03-02", 1),
    ]


# -- filters ------------------------------------------------------------------------------------------


async def test_the_time_range_includes_since_and_excludes_until(ledger: UsageRepository) -> None:
    page = await everything(ledger, Dimension.DAY, since=DAY1 + timedelta(hours=9), until=DAY2)

    assert by_group(page) == {("2026-03-01",): (2, Decimal("0.30"), 0)}
    assert (
        await ledger.totals(UsageFilter(since=DAY2, until=DAY2 + timedelta(microseconds=1)))
    ).requests == 1
    assert (await ledger.totals(UsageFilter(since=DAY2, until=DAY2))).requests == 0


async def test_a_range_bound_in_another_zone_means_the_same_instant(ledger: UsageRepository) -> None:
    since = datetime(2026, 3, 2, 9, 0, tzinfo=timezone(timedelta(hours=9)))  # DAY2 00:00Z

    totals = await ledger.totals(UsageFilter(since=since))

    assert totals.requests == 4


FILTERED_TOTALS = [
    ({"tenant": "globex"}, (2, Decimal("0.0500000001"), 0)),
    ({"team": "ml"}, (2, Decimal("0.30"), 0)),
    ({"user": "bob"}, (1, Decimal("0.20"), 0)),
    ({"key": "key_a3"}, (1, Decimal(0), 1)),
    ({"model": "gpt-4o"}, (2, Decimal("0.1000000001"), 0)),
    ({"provider": "openai"}, (4, Decimal("0.3000000001"), 1)),
    ({"tenant": "acme", "provider": "openai"}, (2, Decimal("0.30"), 0)),
    ({"tenant": "acme", "since": DAY2}, (1, Decimal(0), 1)),
    ({"tenant": "nobody"}, (0, Decimal(0), 0)),
]


@pytest.mark.parametrize(("filters", "expected"), FILTERED_TOTALS, ids=lambda value: str(value)[:40])
async def test_each_filter_keeps_only_the_records_equal_to_it(
    ledger: UsageRepository, filters: dict[str, Any], expected: tuple[int, Decimal, int]
) -> None:
    assert summary(await ledger.totals(UsageFilter(**filters))) == expected


async def test_filters_apply_before_grouping(ledger: UsageRepository) -> None:
    page = await everything(ledger, Dimension.MODEL, Dimension.DAY, tenant="globex", since=DAY2, until=DAY3)

    assert by_group(page) == {("gpt-4o", "2026-03-02"): (1, TINY, 0)}


def test_a_naive_range_bound_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        UsageFilter(since=datetime(2026, 3, 1))


# -- pages --------------------------------------------------------------------------------------------


async def test_pages_walk_every_group_once_in_order_and_say_where_the_next_starts(
    ledger: UsageRepository,
) -> None:
    seen: list[tuple[str | None, ...]] = []
    offsets: list[int | None] = []
    offset: int | None = 0
    while offset is not None:
        page = await ledger.aggregate([Dimension.KEY], UsageFilter(), limit=2, offset=offset)
        seen += [tuple(row.group.values()) for row in page.rows]
        offset = page.next_offset
        offsets.append(offset)

    assert seen == list(EXPECTED_BY_DIMENSION[Dimension.KEY])
    assert offsets == [2, 4, None]


async def test_a_page_that_ends_exactly_at_the_last_group_has_no_next(ledger: UsageRepository) -> None:
    page = await ledger.aggregate([Dimension.PROVIDER], UsageFilter(), limit=3, offset=0)

    assert len(page.rows) == 3
    assert page.next_offset is None


async def test_a_page_past_the_end_is_empty(ledger: UsageRepository) -> None:
    page = await ledger.aggregate([Dimension.PROVIDER], UsageFilter(), limit=3, offset=10)

    assert (page.rows, page.next_offset) == ([], None)


async def test_grouping_by_nothing_is_one_row_of_totals(ledger: UsageRepository) -> None:
    page = await everything(ledger)

    assert page.rows == [await ledger.totals(UsageFilter())]


@pytest.mark.parametrize(
    ("group_by", "limit", "offset"),
    [([Dimension.TENANT], 0, 0), ([Dimension.TENANT], 1, -1), ([Dimension.DAY, Dimension.DAY], 1, 0)],
)
async def test_impossible_pages_and_repeated_dimensions_are_refused(
    engine: AsyncEngine, group_by: list[Dimension], limit: int, offset: int
) -> None:
    with pytest.raises(ValueError):
        await UsageRepository(engine).aggregate(group_by, UsageFilter(), limit, offset)


# -- counts past the ledger's bounds ---------------------------------------------------------------------


async def test_counts_past_their_bounds_are_written_at_them_with_the_cost_unknown_and_reports_still_add_up(
    engine: AsyncEngine,
) -> None:
    repository = UsageRepository(engine)
    broken = usage(DAY1, input_tokens=2**70, web_searches=2**31, cost_usd=Decimal("1.5"))  # a broken upstream
    await repository.insert_many([broken, usage(DAY2, input_tokens=10, cost_usd=Decimal("0.01"))])

    totals = await repository.totals(UsageFilter())

    assert totals.requests == 2
    assert (totals.input_tokens, totals.web_searches) == (MAX_TOKENS + 10, MAX_WEB_SEARCHES)
    assert (totals.cost_usd, totals.unpriced_requests) == (Decimal("0.01"), 1)


async def test_each_record_written_at_its_bounds_is_logged_once_with_its_request_id_when_written(
    engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="tollgate.ledger")
    repository = UsageRepository(engine)
    broken = [
        usage(DAY1, request_id="req-a", output_tokens=2**64),
        usage(DAY1, request_id="req-b", cached_input_tokens=2**41, web_searches=2**40),
    ]
    with pytest.raises(StorageRejected):  # a batch refused for another value: nothing written, nothing logged
        await repository.insert_many([*broken, usage(DAY1, status=2**64)])
    await repository.insert_many([*broken, usage(DAY1, request_id="req-fine", input_tokens=MAX_TOKENS)])

    logged = [(record.getMessage(), getattr(record, "fields", None)) for record in caplog.records]
    message = "usage record written with counts past the ledger's bounds at their bounds, its cost unknown"
    assert logged == [
        (message, {"request_id": "req-a", "counts": ["output_tokens"]}),
        (message, {"request_id": "req-b", "counts": ["cached_input_tokens", "web_searches"]}),
    ]


OLD_CLAMPED = [usage(DAY1, input_tokens=2**63 - 1, request_id=f"req-old-{n}") for n in range(3)]


async def test_a_sum_past_64_bits_is_an_overflow_on_sqlite_not_an_unavailable_database(
    engine: AsyncEngine, backend: str
) -> None:
    await write_as_before_the_bounds(engine, OLD_CLAMPED)
    repository = UsageRepository(engine)

    if backend == "sqlite":
        with pytest.raises(SumOverflow, match="past the 64 bits SQLite sums in"):
            await everything(repository, Dimension.TENANT)
        with pytest.raises(SumOverflow):
            await repository.totals(UsageFilter())
    else:  # PostgreSQL sums bigint columns as numeric: exact
        assert (await repository.totals(UsageFilter())).input_tokens == 3 * (2**63 - 1)


# -- values a database cannot store ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "cost",
    [Decimal(10) ** 12, Decimal("9999999999.99999999995")],  # the latter rounds to ten billion dollars
    ids=["past-the-column", "rounded-past-the-column"],
)
async def test_a_cost_past_the_columns_twenty_digits_is_refused_and_its_storable_record_written_unpriced(
    engine: AsyncEngine, cost: Decimal
) -> None:
    repository = UsageRepository(engine)
    record = usage(DAY1, cost_usd=cost)

    with pytest.raises(StorageRejected):  # SQLite too, though it keeps a cost as a double
        await repository.insert_many([record])
    await repository.insert_many([storable(record)])

    totals = await repository.totals(UsageFilter())
    assert totals.requests == 1 and totals.unpriced_requests == 1  # the cost is unknown, not wrong


async def test_a_text_holding_a_nul_is_written_without_it_once_cleaned(
    engine: AsyncEngine, backend: str
) -> None:
    repository = UsageRepository(engine)
    record = usage(DAY1, model="gpt-4o\x00", cost_usd=Decimal("0.25"))

    if backend == "postgresql":  # SQLite keeps the NUL; PostgreSQL refuses any text holding one
        with pytest.raises(StorageRejected):
            await repository.insert_many([record])
    await repository.insert_many([storable(record)])

    page = await everything(repository, Dimension.MODEL)
    assert [(row.group[Dimension.MODEL], row.cost_usd) for row in page.rows] == [("gpt-4o", Decimal("0.25"))]
