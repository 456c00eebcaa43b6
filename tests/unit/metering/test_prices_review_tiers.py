"""Review of the built-in processing-tier rates against OpenAI's Priority processing page
(https://openai.com/api-priority-processing/)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from gateway.metering.prices import PriceTable, cost_of, load_price_table
from gateway.metering.usage import TokenUsage

MILLION = 1_000_000


@pytest.fixture(scope="module")
def builtin() -> PriceTable:
    return load_price_table(None)


def test_a_priority_call_of_gpt_4o_s_first_snapshot_pays_its_own_priority_rates(builtin: PriceTable) -> None:
    # The page lists gpt-4o-2024-05-13 apart: $8.75 input, no cached rate, $26.25 output per million.
    price = builtin.price_for("openai", "openai", "gpt-4o-2024-05-13")
    assert price is not None

    priority = cost_of(TokenUsage(MILLION, MILLION, service_tier="priority"), price)
    standard = cost_of(TokenUsage(MILLION, MILLION), price)

    assert priority == Decimal("35.00")
    assert standard == Decimal("20.00")


def test_gpt_4o_s_first_snapshot_has_no_cache_discount_in_priority_either(builtin: PriceTable) -> None:
    price = builtin.price_for("openai", "openai", "gpt-4o-2024-05-13")
    assert price is not None

    cost = cost_of(TokenUsage(MILLION, 0, cached_input_tokens=MILLION // 2, service_tier="priority"), price)

    assert cost == Decimal("8.75")


def test_a_flex_call_of_gpt_4o_s_first_snapshot_is_unpriced(builtin: PriceTable) -> None:
    price = builtin.price_for("openai", "openai", "gpt-4o-2024-05-13")
    assert price is not None

    assert cost_of(TokenUsage(1000, 1000, service_tier="flex"), price) is None
