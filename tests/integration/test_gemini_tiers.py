"""Gemini's processing tiers through a running gateway: a response names the tier that served it only in
its `x-gemini-service-tier` header (its body names none). Flex calls are recorded in the tier `flex` at
half the standard rates; Priority calls, whose rates no page gives model by model, are recorded in the
tier `priority` with cost unknown, never at the standard rates; a Priority call past its limit, served
at Standard (the header then says `standard`), is a standard call."""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

import httpx
import pytest

from gateway.metering.prices import cost_of, load_price_table
from gateway.metering.usage import TokenUsage
from tests.integration.conftest import World
from tests.support.gateway import wait_for_usage_rows

PRICES = load_price_table(None)
MODEL = "gemini-2.5-flash"
_numbers = itertools.count()


def call(world: World, tier: str | None, *, stream: bool = False, downgrade: bool = False) -> dict[str, Any]:
    """Make one generateContent call asking for `tier`; its ledger row and the header the caller saw."""
    rid = f"gemini-tier-{tier}-{next(_numbers)}"
    body: dict[str, Any] = {"contents": [{"role": "user", "parts": [{"text": "Summarise this report"}]}]}
    if tier is not None:
        body["service_tier"] = tier
    method = "streamGenerateContent?alt=sse" if stream else "generateContent"
    headers = {"x-goog-api-key": world.keys["acme"], "x-request-id": rid}
    if downgrade:
        headers["x-fake-gemini-downgrade"] = "1"
    response = httpx.post(f"{world.url}/gemini/v1beta/models/{MODEL}:{method}", json=body, headers=headers)
    assert response.status_code == 200
    [row] = wait_for_usage_rows(world.gateway.effective_database_url, rid, 1)
    row["header"] = response.headers["x-gemini-service-tier"]
    return row


def usage_of(row: dict[str, Any], tier: str | None) -> TokenUsage:
    return TokenUsage(input_tokens=row["input_tokens"], output_tokens=row["output_tokens"], service_tier=tier)


@pytest.mark.parametrize("stream", [False, True], ids=["body", "stream"])
def test_a_flex_call_is_recorded_in_the_flex_tier_at_half_the_standard_rates(
    fresh: World, stream: bool
) -> None:
    row = call(fresh, "flex", stream=stream)

    price = PRICES.price_for("gemini", "gemini", MODEL)
    assert price is not None
    assert (row["header"], row["service_tier"], row["estimated"]) == ("flex", "flex", False)
    assert Decimal(row["cost_usd"]) == cost_of(usage_of(row, "flex"), price)
    assert Decimal(row["cost_usd"]) * 2 == cost_of(usage_of(row, None), price)


def test_a_priority_call_is_recorded_in_its_tier_with_cost_unknown_never_the_standard_price(
    fresh: World,
) -> None:
    row = call(fresh, "priority")

    assert (row["header"], row["service_tier"], row["cost_usd"]) == ("priority", "priority", None)
    assert row["input_tokens"] > 0 and row["output_tokens"] == 3


def test_a_priority_call_served_at_standard_past_its_limit_is_priced_as_a_standard_call(fresh: World) -> None:
    row = call(fresh, "priority", downgrade=True)

    price = PRICES.price_for("gemini", "gemini", MODEL)
    assert price is not None
    assert (row["header"], row["service_tier"]) == ("standard", None)
    assert Decimal(row["cost_usd"]) == cost_of(usage_of(row, None), price)
