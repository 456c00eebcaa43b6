"""Paging one report while calls inside its window are still being written: no group shown twice.

A call's record carries the moment the call was received, and reaches the ledger when the call ends
(a long stream: minutes later), after the writer's next flush, after a database outage, or when an
OpenAI background response it started ends (hours later). So a window whose end is recent keeps
taking in records after its first page was read, even with an absolute `until`; counted by offset,
a new group sorting before the page boundary pushed the last group of a page onto the next one too.
Each answer therefore states the ledger position it read up to (`snapshot`, the last record written
then), and the next page reads up to that same position.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.storage.usage import Dimension, UsageFilter, UsageRepository
from tests.contract.test_usage import usage


@pytest.fixture
async def repository(engine: AsyncEngine) -> UsageRepository:
    repository = UsageRepository(engine)
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    await repository.insert_many(
        [
            usage(an_hour_ago, model=model, request_id=model, cost_usd=Decimal("0.5"))
            for model in ("b", "c", "d")
        ]
    )
    return repository


async def a_late_record(repository: UsageRepository, model: str = "a") -> None:
    """A call received inside the window (half an hour ago), its record written only now."""
    received = datetime.now(UTC) - timedelta(minutes=30)
    await repository.insert_many([usage(received, model=model, request_id=f"late-{model}")])



async def test_the_pages_of_one_report_read_the_ledger_as_it_was_when_the_first_was_read(
    repository: UsageRepository,
) -> None:
    window = UsageFilter(since=datetime.now(UTC) - timedelta(days=1), until=datetime.now(UTC))
    first = await repository.aggregate([Dimension.MODEL], window, limit=1)
    await a_late_record(repository)  # sorts first: by offset alone, "b" would come again

    assert first.snapshot is not None
    later = UsageFilter(since=window.since, until=window.until, snapshot=first.snapshot)
    second = await repository.aggregate([Dimension.MODEL], later, limit=1, offset=1)
    third = await repository.aggregate([Dimension.MODEL], later, limit=1, offset=2)
    now = await repository.aggregate([Dimension.MODEL], window, limit=10)

    assert [[row.group[Dimension.MODEL] for row in page.rows] for page in (first, second, third)] == [
        ["b"],
        ["c"],
        ["d"],
    ]
    assert (second.snapshot, third.snapshot, third.next_offset) == (first.snapshot, first.snapshot, None)
    assert [row.group[Dimension.MODEL] for row in now.rows] == ["a", "b", "c", "d"]  # read afresh
    assert now.snapshot is not None and now.snapshot > first.snapshot


async def test_an_empty_ledger_is_read_at_position_zero_and_stays_empty_at_it(engine: AsyncEngine) -> None:
    repository = UsageRepository(engine)

    first = await repository.aggregate([Dimension.MODEL], UsageFilter(), limit=10)
    await a_late_record(repository)
    again = await repository.aggregate([Dimension.MODEL], UsageFilter(snapshot=0), limit=10)

    assert (first.rows, first.snapshot) == ([], 0)
    assert again.rows == []


def test_a_negative_snapshot_is_refused() -> None:
    with pytest.raises(ValueError, match="snapshot"):
        UsageFilter(snapshot=-1)


async def test_the_admin_apis_next_link_reads_up_to_the_first_pages_snapshot(
    repository: UsageRepository, admin: httpx.AsyncClient
) -> None:
    pages = [(await admin.get("/admin/usage?by=model&since=1d&limit=1")).json()]
    await a_late_record(repository)
    while pages[-1]["next"] is not None:
        pages.append((await admin.get(pages[-1]["next"])).json())

    assert [[row["model"] for row in page["rows"]] for page in pages] == [["b"], ["c"], ["d"]]
    assert isinstance(pages[0]["snapshot"], int)
    assert {page["snapshot"] for page in pages} == {pages[0]["snapshot"]}
    assert parse_qs(urlsplit(pages[0]["next"]).query)["snapshot"] == [str(pages[0]["snapshot"])]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("snapshot=x", "snapshot: 'x' is not a whole number"),
        ("snapshot=-1", "snapshot: must be 0..9223372036854775807"),
        ("snapshot=1&snapshot=2", "snapshot: given more than once"),
    ],
)
async def test_a_bad_snapshot_is_a_400_naming_it(admin: httpx.AsyncClient, query: str, message: str) -> None:
    response = await admin.get(f"/admin/usage?{query}")

    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith(message)
