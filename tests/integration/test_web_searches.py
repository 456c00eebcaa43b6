"""Web searches through a running gateway: the official SDKs ask for the providers' server-side search
tools, the fake upstream runs N searches (`x-fake-web-searches`) and reports them as each provider does,
and the ledger row holds the searches and a cost with their price on top of the tokens."""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

import httpx
import pytest

from gateway.metering.prices import load_price_table
from tests.integration.conftest import World
from tests.support.gateway import wait_for_usage_rows

PRICES = load_price_table(None)
_numbers = itertools.count()
ANTHROPIC_SEARCH = {"type": "web_search_20250305", "name": "web_search", "max_uses": 5}


def request_id(label: str) -> str:
    return f"search-{label}-{next(_numbers)}"


def one_row(world: World, rid: str) -> dict[str, Any]:
    [row] = wait_for_usage_rows(world.gateway.effective_database_url, rid, 1)
    return row


def token_cost(row: dict[str, Any], kind: str, model: str) -> Decimal:
    price = PRICES.price_for(kind, kind, model)
    assert price is not None
    uncached = row["input_tokens"] - row["cached_input_tokens"]
    return (
        uncached * price.input
        + row["cached_input_tokens"] * price.cached_input
        + row["output_tokens"] * price.output
    ) / 1_000_000


@pytest.mark.parametrize("stream", [False, True], ids=["body", "stream"])
def test_an_anthropic_call_that_searched_the_web_pays_for_each_search(fresh: World, stream: bool) -> None:
    import anthropic

    rid = request_id(f"anthropic-{'stream' if stream else 'body'}")
    extra = {"extra_headers": {"x-request-id": rid, "x-fake-web-searches": "3"}}
    asked = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 256,
        "messages": [{"role": "user", "content": "What happened in the news today?"}],
        "tools": [ANTHROPIC_SEARCH],
    }
    with anthropic.Anthropic(
        base_url=f"{fresh.url}/anthropic", api_key=fresh.keys["acme"], max_retries=0
    ) as claude:
        if stream:
            with claude.messages.stream(**asked, **extra) as events:  # type: ignore[arg-type]
                message = events.get_final_message()
        else:
            message = claude.messages.create(**asked, **extra)  # type: ignore[arg-type]
    row = one_row(fresh, rid)

    assert message.usage.server_tool_use is not None
    assert message.usage.server_tool_use.web_search_requests == row["web_searches"] == 3
    assert row["output_tokens"] == message.usage.output_tokens and not row["estimated"]
    searches = 3 * Decimal("10.00") / 1000  # $10 per 1,000 searches
    assert Decimal(row["cost_usd"]) == token_cost(row, "anthropic", "claude-sonnet-4-5") + searches


@pytest.mark.parametrize(
    ("tool", "stream", "per_thousand"),
    [
        ("web_search", False, "10.00"),
        ("web_search", True, "10.00"),
        ("web_search_preview", False, "25.00"),  # gpt-4o with the preview tool: dearer searches
    ],
    ids=["body", "stream", "preview"],
)
def test_a_responses_call_that_searched_pays_each_search_at_its_tool_s_rate(
    fresh: World, tool: str, stream: bool, per_thousand: str
) -> None:
    import openai

    rid = request_id(f"responses-{tool}-{stream}")
    extra = {"extra_headers": {"x-request-id": rid, "x-fake-web-searches": "2"}}
    asked = {"model": "gpt-4o", "input": "Any good news today?", "tools": [{"type": tool}]}
    with openai.OpenAI(base_url=f"{fresh.url}/openai/v1", api_key=fresh.keys["acme"], max_retries=0) as api:
        if stream:
            events = list(api.responses.create(**asked, stream=True, **extra))  # type: ignore[call-overload]
            answer = events[-1].response
        else:
            answer = api.responses.create(**asked, **extra)  # type: ignore[call-overload]
    row = one_row(fresh, rid)

    assert [item.type for item in answer.output] == ["web_search_call", "web_search_call", "message"]
    assert row["web_searches"] == 2 and not row["estimated"]
    assert row["output_tokens"] == answer.usage.output_tokens
    searches = 2 * Decimal(per_thousand) / 1000
    assert Decimal(row["cost_usd"]) == token_cost(row, "openai", "gpt-4o") + searches


def test_a_search_by_a_model_priced_for_none_leaves_the_call_unpriced_and_counted(fresh: World) -> None:
    rid = request_id("unpriced")
    headers = {
        "authorization": f"Bearer {fresh.keys['acme']}",
        "x-request-id": rid,
        "x-fake-web-searches": "1",
    }
    body = {"model": "gpt-4.1-nano", "input": "Look it up", "tools": [{"type": "web_search"}]}

    response = httpx.post(fresh.url + "/openai/v1/responses", json=body, headers=headers)
    row = one_row(fresh, rid)

    assert response.status_code == 200
    assert row["web_searches"] == 1 and row["cost_usd"] is None
    metrics = httpx.get(fresh.url + "/metrics").text
    assert 'tollgate_web_searches_total{model="gpt-4.1-nano",provider="openai"}' in metrics


def test_calls_that_did_not_search_record_none(fresh: World) -> None:
    rid = request_id("none")
    headers = {"authorization": f"Bearer {fresh.keys['acme']}", "x-request-id": rid}
    body = {"model": "claude-haiku-4-5", "max_tokens": 9, "messages": [{"role": "user", "content": "Hi"}]}

    httpx.post(fresh.url + "/anthropic/v1/messages", json=body, headers=headers)
    row = one_row(fresh, rid)

    assert row["web_searches"] == 0 and Decimal(row["cost_usd"]) == token_cost(
        row, "anthropic", "claude-haiku-4-5"
    )
