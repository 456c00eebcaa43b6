"""GET /admin/usage over a real ledger on every backend: the answers its clients parse and page through.

The admin API is served on its own, in process, over the contract suite's databases.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.storage.usage import UsageRepository
from tests.contract.test_usage import OLD_CLAMPED, usage
from tests.support.ledger_rows import write_as_before_the_bounds


async def test_counts_summed_past_64_bits_are_json_numbers_or_a_plain_500_never_a_503(
    engine: AsyncEngine, backend: str, admin: httpx.AsyncClient
) -> None:
    await write_as_before_the_bounds(engine, OLD_CLAMPED)  # three counts of 2**63 - 1

    response = await admin.get("/admin/usage", params={"since": "2026-03-01", "until": "2026-03-02"})

    assert response.headers["content-type"] == "application/json"
    if backend == "postgresql":  # exact sums, whatever their size
        assert response.status_code == 200
        [row] = json.loads(response.text)["rows"]  # Python's parser keeps big integers exact
        assert row["input_tokens"] == 3 * (2**63 - 1)
    else:
        assert response.status_code == 500  # the ledger is up: no use trying again
        message = response.json()["error"]["message"]
        assert "past the 64 bits SQLite sums in" in message and "unavailable" not in message


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("tenant=acme&tenant=globex", "tenant"),
        ("by=tenant&by=model", "by"),
        ("since=7d&since=1d", "since"),
        ("model=a&model=a", "model"),
        ("limit=1&limit=2", "limit"),
    ],
)
async def test_a_parameter_given_twice_is_a_400_naming_it_never_one_value_silently_dropped(
    admin: httpx.AsyncClient, query: str, named: str
) -> None:
    response = await admin.get(f"/admin/usage?{query}")

    assert response.status_code == 400
    assert response.json()["error"]["message"] == (
        f"{named}: given more than once; a report takes one value of each parameter"
    )


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("limit=abc", "limit: 'abc' is not a whole number"),
        ("limit=1.5", "limit: '1.5' is not a whole number"),
        ("limit=1_0", "limit: '1_0' is not a whole number"),
        ("limit=%EF%BC%91", "limit: '\uff11' is not a whole number"),  # a full-width 1
        ("limit=0", "limit: must be 1..10000"),
        ("limit=10001", "limit: must be 1..10000"),
        ("offset=x", "offset: 'x' is not a whole number"),
        ("offset=-1", "offset: must be 0..1000000000000"),
        ("offset=" + "9" * 5000, "offset: must be 0..1000000000000"),
        ("since=7d%0A", "since: '7d\\n' is not a span (7d, 24h, 30m, 2w), a date or an ISO 8601 instant"),
        ("by=colour", "by: 'colour': each dimension must be one of"),
    ],
)
async def test_a_bad_parameter_is_a_400_whose_message_names_it(
    admin: httpx.AsyncClient, query: str, message: str
) -> None:
    response = await admin.get(f"/admin/usage?{query}")

    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith(message)


async def test_without_until_the_answer_states_the_moment_of_the_query_as_its_until(
    admin: httpx.AsyncClient,
) -> None:
    before = datetime.now(UTC)
    answer = (await admin.get("/admin/usage", params={"since": "7d"})).json()
    after = datetime.now(UTC)

    since, until = datetime.fromisoformat(answer["since"]), datetime.fromisoformat(answer["until"])
    assert before <= until <= after
    assert until - since == timedelta(days=7)


async def test_the_next_page_is_a_link_over_the_same_absolute_window_so_new_calls_shift_no_rows(
    engine: AsyncEngine, admin: httpx.AsyncClient
) -> None:
    hour_ago = datetime.now(UTC) - timedelta(hours=1)
    repository = UsageRepository(engine)
    await repository.insert_many(
        [usage(hour_ago, model=model, request_id=model) for model in ("b", "c", "d")]
    )

    pages = [(await admin.get("/admin/usage?by=model&since=7d&tenant=acme&limit=1")).json()]
    await repository.insert_many(
        [usage(datetime.now(UTC), model="a")]
    )  # a call made meanwhile, sorting first
    while pages[-1]["next"] is not None:
        pages.append((await admin.get(pages[-1]["next"])).json())

    assert [[row["model"] for row in page["rows"]] for page in pages] == [["b"], ["c"], ["d"]]
    assert {(page["since"], page["until"]) for page in pages} == {(pages[0]["since"], pages[0]["until"])}
    query = parse_qs(urlsplit(pages[0]["next"]).query)
    assert query == {
        "by": ["model"],
        "since": [pages[0]["since"]],
        "until": [pages[0]["until"]],
        "snapshot": [str(pages[0]["snapshot"])],
        "tenant": ["acme"],
        "limit": ["1"],
        "offset": ["1"],
    }


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("since=2026-03-02&until=2026-03-01", "since must be before until"),
        ("since=2999-01-01", "since must be before until (now)"),  # until being the moment of the query
    ],
)
async def test_a_window_that_ends_before_it_starts_is_a_400_saying_so(
    admin: httpx.AsyncClient, query: str, message: str
) -> None:
    response = await admin.get(f"/admin/usage?{query}")

    assert (response.status_code, response.json()["error"]["message"]) == (400, message)
