"""Anthropic's `usage.inference_geo` as the API reports it for a call that asked for no geo: `"not_available"`
(Claude Code's recorded usage on Claude Opus 4.6 and later shows it on every call). No data-residency
surcharge applies to such a call: it is priced at its model's standard rates, as `"global"` is, never
left unpriced for a geo its model lists no multiplier for."""

from __future__ import annotations

from decimal import Decimal

import pytest

from gateway.metering.prices import cost_of, load_price_table
from gateway.metering.usage import Endpoint, TokenUsage
from tests.unit.metering.support import JSON, SSE, extract_every_way, fixture

BODY = fixture("review_anthropic_geo_not_available.json")
STREAM = fixture("review_anthropic_geo_not_available_stream.sse")
USAGE = TokenUsage(
    input_tokens=3 + 30_000 + 1_200,
    output_tokens=40,
    cached_input_tokens=30_000,
    cache_write_tokens=1_200,
    cache_write_1h_tokens=1_200,
)
# Claude Opus 4.6 at its standard rates: input 5, cache reads 0.50, writes kept an hour 10, output 25
# per million tokens.
STANDARD_COST = (3 * Decimal(5) + 30_000 * Decimal("0.5") + 1_200 * Decimal(10) + 40 * Decimal(25)) / 10**6


@pytest.mark.parametrize(("content_type", "data"), [(JSON, BODY), (SSE, STREAM)], ids=["body", "stream"])
def test_a_call_whose_geo_is_not_available_is_read_as_one_in_the_default_geo(
    content_type: bytes, data: bytes
) -> None:
    extraction = extract_every_way("anthropic", Endpoint.MESSAGES, content_type, data)

    assert extraction.usage == USAGE
    assert extraction.usage.inference_geo is None
    assert extraction.model == "claude-opus-4-6"


@pytest.mark.parametrize(("content_type", "data"), [(JSON, BODY), (SSE, STREAM)], ids=["body", "stream"])
def test_a_call_whose_geo_is_not_available_costs_its_model_s_standard_rates(
    content_type: bytes, data: bytes
) -> None:
    extraction = extract_every_way("anthropic", Endpoint.MESSAGES, content_type, data)
    price = load_price_table().price_for("anthropic", "anthropic", "claude-opus-4-6")
    assert extraction.usage is not None and price is not None

    assert cost_of(extraction.usage, price) == STANDARD_COST


def test_a_stream_cut_before_message_delta_keeps_the_standard_price_for_the_estimate() -> None:
    cut = STREAM[: STREAM.index(b"event: message_delta")]

    extraction = extract_every_way("anthropic", Endpoint.MESSAGES, SSE, cut)

    assert extraction.usage is None
    assert extraction.partial is not None and extraction.partial.inference_geo is None


def test_a_us_only_call_still_pays_the_us_multiplier() -> None:
    us_body = BODY.replace(b'"inference_geo":"not_available"', b'"inference_geo":"us"')
    extraction = extract_every_way("anthropic", Endpoint.MESSAGES, JSON, us_body)
    price = load_price_table().price_for("anthropic", "anthropic", "claude-opus-4-6")
    assert extraction.usage is not None and price is not None

    assert extraction.usage.inference_geo == "us"
    assert cost_of(extraction.usage, price) == STANDARD_COST * Decimal("1.1")
