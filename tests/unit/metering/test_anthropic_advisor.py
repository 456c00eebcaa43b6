"""Anthropic's advisor tool: the executor model consults a stronger advisor model mid-generation, in one
Messages call. The advisor's sub-inference is billed at the advisor model's rates and left out of the
top-level usage; the response reports it as an `advisor_message` entry of `usage.iterations`, naming its
model. The call is recorded with both: its tokens the sum, its cost each part at its own model's rates."""

from __future__ import annotations

from decimal import Decimal

import pytest

from gateway.metering.prices import call_cost, load_price_table
from gateway.metering.usage import Endpoint, TokenUsage
from tests.unit.metering.support import JSON, SSE, extract_every_way, fixture

BODY = fixture("anthropic_advisor.json")
STREAM = fixture("anthropic_advisor_stream.sse")
EXECUTOR = TokenUsage(input_tokens=412, output_tokens=531)  # the top-level counts: the executor's own
ADVISOR = TokenUsage(input_tokens=823, output_tokens=1612)
# claude-sonnet-4-6 at $3 / $15 and claude-opus-4-7 at $5 / $25 per million tokens
COST = (412 * Decimal(3) + 531 * Decimal(15) + 823 * Decimal(5) + 1612 * Decimal(25)) / 10**6
PRICES = load_price_table()


@pytest.mark.parametrize(("content_type", "data"), [(JSON, BODY), (SSE, STREAM)], ids=["body", "stream"])
def test_the_advisors_tokens_are_read_apart_with_the_model_that_ran_them(
    content_type: bytes, data: bytes
) -> None:
    extraction = extract_every_way("anthropic", Endpoint.MESSAGES, content_type, data)

    assert extraction.usage == EXECUTOR._replace(advisors=(("claude-opus-4-7", ADVISOR),))
    assert extraction.model == "claude-sonnet-4-6"


def test_the_call_costs_its_own_tokens_at_its_models_rates_and_the_advisors_at_the_advisors() -> None:
    usage = EXECUTOR._replace(advisors=(("claude-opus-4-7", ADVISOR),))

    assert call_cost(PRICES, "anthropic", "anthropic", "claude-sonnet-4-6", usage) == COST


def test_the_ledger_counts_the_sum_of_both_models_tokens() -> None:
    usage = EXECUTOR._replace(advisors=(("claude-opus-4-7", ADVISOR),))

    assert usage.with_advisors_summed() == TokenUsage(input_tokens=412 + 823, output_tokens=531 + 1612)


def test_an_advisor_of_a_model_without_a_price_leaves_the_call_unpriced_never_priced_without_it() -> None:
    usage = EXECUTOR._replace(advisors=(("claude-unknown-9", ADVISOR),))

    assert call_cost(PRICES, "anthropic", "anthropic", "claude-sonnet-4-6", usage) is None


def test_an_advisor_that_names_no_model_leaves_the_call_unpriced() -> None:
    data = BODY.replace(b'"model":"claude-opus-4-7",', b"")
    extraction = extract_every_way("anthropic", Endpoint.MESSAGES, JSON, data)

    assert extraction.usage is not None
    assert extraction.usage.advisors == (("", ADVISOR),)
    assert call_cost(PRICES, "anthropic", "anthropic", "claude-sonnet-4-6", extraction.usage) is None


def test_us_only_inference_costs_the_advisors_part_its_geo_multiplier_too() -> None:
    usage = EXECUTOR._replace(inference_geo="us", advisors=(("claude-opus-4-7", ADVISOR),))

    assert call_cost(PRICES, "anthropic", "anthropic", "claude-sonnet-4-6", usage) == COST * Decimal("1.1")


def test_a_call_without_an_advisor_costs_what_its_own_price_says() -> None:
    assert (
        call_cost(PRICES, "anthropic", "anthropic", "claude-sonnet-4-6", EXECUTOR)
        == (412 * Decimal(3) + 531 * Decimal(15)) / 10**6
    )
