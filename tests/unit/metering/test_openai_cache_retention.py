"""OpenAI's 12-hour cache writes. The Responses API breaks its cache writes down by retention:
`usage.input_tokens_details.cache_write_tokens_details {ttl_30m_tokens, ttl_12h_tokens}` (the OpenAI SDKs'
`ResponseUsage.InputTokensDetails.CacheWriteTokensDetails`), and a 12-hour write costs more than a
30-minute one: GPT-6.2 Sol's model page lists cache writes at $2.50 per million "for 30 minutes of
retention" and "a 12-hour cache write costs $5 per million tokens for short-context requests at Standard
pricing", the long-context and Fast rates doubling the cache rates. The 12-hour writes are read apart, as
the writes kept longer than the default (`cache_write_1h_tokens`, priced at `cache_write_1h`), and a price
that gives no such rate leaves a call that made them unpriced, never priced at the 30-minute rate."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from gateway.metering.extractors.openai import responses_usage
from gateway.metering.prices import call_cost, load_price_table, parse_price_table
from gateway.metering.usage import Endpoint, TokenUsage
from tests.unit.metering.support import CACHE_WRITE_RESPONSES_USAGE, JSON, extract_every_way, fixture

USAGE = CACHE_WRITE_RESPONSES_USAGE  # 300 of the 400 written kept 30 minutes, 100 kept 12 hours
WRITTEN = TokenUsage(
    input_tokens=2600,
    output_tokens=300,
    cached_input_tokens=2000,
    cache_write_tokens=400,
    reasoning_tokens=64,
    cache_write_1h_tokens=100,
)
PRICES = load_price_table()


def responses_body(usage: dict[str, object], model: str = "gpt-6.2-sol") -> bytes:
    body = json.loads(fixture("openai_responses.json"))
    return json.dumps({**body, "model": model, "usage": usage}).encode()


def test_a_responses_body_reports_its_12_hour_writes_apart() -> None:
    extraction = extract_every_way("openai", Endpoint.RESPONSES, JSON, responses_body(USAGE))

    assert extraction.usage == responses_usage(USAGE) == WRITTEN


def test_writes_kept_30_minutes_only_report_no_longer_writes() -> None:
    usage = json.loads(json.dumps(USAGE))
    usage["input_tokens_details"]["cache_write_tokens_details"] = {"ttl_30m_tokens": 400, "ttl_12h_tokens": 0}

    assert responses_usage(usage) == WRITTEN._replace(cache_write_1h_tokens=0)


@pytest.mark.parametrize("hours", [-5, "100", None, True])
def test_a_12_hour_count_that_is_no_count_is_none(hours: object) -> None:
    usage = json.loads(json.dumps(USAGE))
    usage["input_tokens_details"]["cache_write_tokens_details"]["ttl_12h_tokens"] = hours

    assert responses_usage(usage) == WRITTEN._replace(cache_write_1h_tokens=0)


def test_gpt_6_2_sol_prices_12_hour_writes_at_their_own_rate() -> None:
    # 200 uncached x 2 + 2000 read x 0.10 + 300 x 2.50 (30 minutes) + 100 x 5 (12 hours) + 300 x 10
    expected = (200 * 2 + 2000 * Decimal("0.10") + 300 * Decimal("2.50") + 100 * 5 + 300 * 10) / Decimal(
        10**6
    )

    assert call_cost(PRICES, "openai", "openai", "gpt-6.2-sol", WRITTEN) == expected


def test_gpt_6_2_sol_fast_and_long_context_12_hour_writes_double() -> None:
    long = TokenUsage(
        input_tokens=300_000, output_tokens=1_000, cache_write_tokens=10_000, cache_write_1h_tokens=10_000
    )
    # 290000 x 4 + 10000 x 10 (12 hours, long context) + 1000 x 15
    assert call_cost(PRICES, "openai", "openai", "gpt-6.2-sol", long) == Decimal("1.275")
    short_fast = WRITTEN._replace(service_tier="fast")
    # 200 x 4 + 2000 x 0.20 + 300 x 5 + 100 x 10 + 300 x 20
    assert call_cost(PRICES, "openai", "openai", "gpt-6.2-sol", short_fast) == Decimal("0.0097")


def test_a_model_whose_12_hour_write_rate_is_not_known_leaves_such_a_call_unpriced() -> None:
    assert call_cost(PRICES, "openai", "openai", "gpt-6-sol", WRITTEN) is None
    assert (
        call_cost(PRICES, "openai", "openai", "gpt-6-sol", WRITTEN._replace(cache_write_1h_tokens=0))
        is not None
    )


def test_a_price_that_gives_no_longer_write_rate_leaves_a_call_with_longer_writes_unpriced() -> None:
    """So for Anthropic's hour-long writes too: a deployment's entry without `cache_write_1h` no longer
    prices them at the five-minute rate."""
    prices = parse_price_table(
        {
            "anthropic": {
                "claude-x": {
                    "input": "3",
                    "cache_write": "3.75",
                    "output": "15",
                    "effective_date": "2026-01-01",
                }
            }
        },
        "test",
    )
    hour = TokenUsage(input_tokens=3_000, cache_write_tokens=3_000, cache_write_1h_tokens=1_000)

    assert call_cost(prices, "anthropic", "anthropic", "claude-x", hour) is None
    assert call_cost(
        prices, "anthropic", "anthropic", "claude-x", hour._replace(cache_write_1h_tokens=0)
    ) == Decimal("0.01125")
