"""Anthropic's US-only inference: `usage.inference_geo` read from bodies and streams, and priced at its
model's multiplier (Anthropic's data residency page: `"us"` costs 1.1x every token rate of Claude Opus
4.6, Sonnet 4.6 and later models; `"global"`, the default, the standard price)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from gateway.metering.prices import ModelPrice, PriceTable, cost_of, load_price_table, parse_price_table
from gateway.metering.usage import Endpoint, TokenUsage
from gateway.settings import ConfigError
from tests.unit.metering.support import JSON, SSE, extract_every_way, fixture

BODY = fixture("anthropic_messages.json")
STREAM = fixture("anthropic_messages_stream.sse")
US_BODY = BODY.replace(
    b'"service_tier": "standard"', b'"service_tier": "standard",\n    "inference_geo": "us"'
)
US_STREAM = STREAM.replace(b'"service_tier":"standard"}', b'"service_tier":"standard","inference_geo":"us"}')
BODY_USAGE = TokenUsage(
    input_tokens=12 + 4096 + 2051, output_tokens=85, cached_input_tokens=4096, cache_write_tokens=2051
)


@pytest.fixture(scope="module")
def builtin() -> PriceTable:
    return load_price_table(None)


# -- extraction ---------------------------------------------------------------------------------------


def test_a_us_only_call_is_marked_with_its_geo_in_bodies_and_streams() -> None:
    assert BODY != US_BODY and STREAM != US_STREAM

    from_body = extract_every_way("anthropic", Endpoint.MESSAGES, JSON, US_BODY).usage
    from_stream = extract_every_way("anthropic", Endpoint.MESSAGES, SSE, US_STREAM).usage

    assert from_body == BODY_USAGE._replace(inference_geo="us")
    assert from_stream is not None and from_stream.inference_geo == "us"
    assert from_stream.output_tokens == 89


def test_the_geo_may_come_with_message_delta_too() -> None:
    stream = STREAM.replace(b'"output_tokens":89}}', b'"output_tokens":89,"inference_geo":"us"}}')
    assert stream != STREAM

    usage = extract_every_way("anthropic", Endpoint.MESSAGES, SSE, stream).usage

    assert usage is not None and usage.inference_geo == "us"


def test_a_us_stream_cut_before_message_delta_keeps_its_geo_for_the_estimate() -> None:
    cut = US_STREAM[: US_STREAM.index(b"event: message_delta")]

    extraction = extract_every_way("anthropic", Endpoint.MESSAGES, SSE, cut)

    assert extraction.usage is None
    assert extraction.partial is not None and extraction.partial.inference_geo == "us"


@pytest.mark.parametrize("geo", [b'"global"', b"null", b'""', b"2", b"{}"])
def test_the_global_geo_absent_or_malformed_leaves_the_call_at_the_standard_price(geo: bytes) -> None:
    body = BODY.replace(
        b'"service_tier": "standard"', b'"service_tier": "standard",\n    "inference_geo": ' + geo
    )

    usage = extract_every_way("anthropic", Endpoint.MESSAGES, JSON, body).usage

    assert usage == BODY_USAGE and usage.inference_geo is None


def test_another_geo_is_kept_by_its_name_cut_to_a_bounded_length() -> None:
    body = BODY.replace(b'"service_tier": "standard"', b'"service_tier": "standard", "inference_geo": "eu"')
    long = BODY.replace(
        b'"service_tier": "standard"', b'"service_tier": "standard", "inference_geo": "' + b"x" * 100 + b'"'
    )

    assert extract_every_way("anthropic", Endpoint.MESSAGES, JSON, body).usage == BODY_USAGE._replace(
        inference_geo="eu"
    )
    usage = extract_every_way("anthropic", Endpoint.MESSAGES, JSON, long).usage
    assert usage is not None and usage.inference_geo == "x" * 32


def test_openai_style_usage_carries_no_geo() -> None:
    extraction = extract_every_way("openai", Endpoint.CHAT_COMPLETIONS, JSON, fixture("openai_chat.json"))

    assert extraction.usage is not None and extraction.usage.inference_geo is None


# -- pricing ------------------------------------------------------------------------------------------


def model(**entry: object) -> ModelPrice:
    base: dict[str, object] = {"input": "5", "output": "25", "effective_date": "2026-02-05"}
    return parse_price_table({"anthropic": {"m": {**base, **entry}}}, "test").sections["anthropic"]["m"]


OPUS = model(
    cached_input="0.50",
    cache_write="6.25",
    cache_write_1h="10",
    web_search="10",
    inference_geo={"us": "1.1"},
)
CALL = TokenUsage(
    input_tokens=10_000,
    output_tokens=2_000,
    cached_input_tokens=4_000,
    cache_write_tokens=3_000,
    cache_write_1h_tokens=1_000,
)


def test_a_us_call_pays_its_model_s_multiplier_on_every_token_rate() -> None:
    # 3000 x 5 + 4000 x 0.50 + 2000 x 6.25 + 1000 x 10 + 2000 x 25 = 89500 per million
    assert cost_of(CALL, OPUS) == Decimal("0.0895")
    assert cost_of(CALL._replace(inference_geo="us"), OPUS) == Decimal("0.09845")


def test_web_searches_are_not_a_token_rate_and_cost_the_same_in_any_geo() -> None:
    searched = CALL._replace(web_searches=3)

    assert cost_of(searched, OPUS) == Decimal("0.0895") + Decimal("0.03")
    assert cost_of(searched._replace(inference_geo="us"), OPUS) == Decimal("0.09845") + Decimal("0.03")


def test_a_geo_its_model_lists_no_multiplier_for_is_unpriced_never_priced_as_global() -> None:
    assert cost_of(CALL._replace(inference_geo="eu"), OPUS) is None
    assert cost_of(CALL._replace(inference_geo="us"), model()) is None


def test_a_us_call_in_a_tier_pays_the_multiplier_on_the_tier_s_rates() -> None:
    fast = model(
        inference_geo={"us": "1.1"},
        service_tiers={"fast": {"input": "10", "cached_input": "1", "cache_write": "12.50", "output": "50"}},
    )
    usage = TokenUsage(
        input_tokens=2_000, output_tokens=1_000, cached_input_tokens=1_000, service_tier="fast"
    )

    # fast: 1000 x 10 + 1000 x 1 + 1000 x 50 = 61000 per million; x 1.1 = 67100
    assert cost_of(usage, fast) == Decimal("0.061")
    assert cost_of(usage._replace(inference_geo="us"), fast) == Decimal("0.0671")
    assert cost_of(usage._replace(inference_geo="us", service_tier="flex"), fast) is None  # no such tier


def test_a_long_us_call_pays_the_multiplier_on_the_long_context_rates() -> None:
    sonnet = model(
        input="3",
        output="15",
        inference_geo={"us": "1.1"},
        long_context={"above_input_tokens": 200_000, "input": "6", "cached_input": "0.60", "output": "22.50"},
    )
    long = TokenUsage(input_tokens=300_000, output_tokens=10_000, cached_input_tokens=100_000)

    # 200000 x 6 + 100000 x 0.60 + 10000 x 22.50 = 1485000 per million; x 1.1 = 1633500
    assert cost_of(long, sonnet) == Decimal("1.485")
    assert cost_of(long._replace(inference_geo="us"), sonnet) == Decimal("1.6335")


def test_the_multiplier_keeps_the_cost_exact() -> None:
    odd = model(input="0.0123", output="0.0457", inference_geo={"us": "1.0375"})
    usage = TokenUsage(input_tokens=123_457, output_tokens=98_765, inference_geo="us")

    expected = (123_457 * Decimal("0.0123") + 98_765 * Decimal("0.0457")) * Decimal("1.0375") / 1_000_000
    assert cost_of(usage, odd) == expected


# -- the price format ---------------------------------------------------------------------------------


def test_geo_multipliers_are_optional_and_kept_as_exact_decimals() -> None:
    assert model().inference_geo == {}
    assert OPUS.inference_geo == {"us": Decimal("1.1")}


@pytest.mark.parametrize(
    ("geos", "path", "message"),
    [
        ({"us": "0"}, "inference_geo.us", "greater than 0"),
        ({"us": "-1.1"}, "inference_geo.us", "greater than 0"),
        ({"us": "x"}, "inference_geo.us", "valid decimal"),
        ({"US!": "1.1"}, "inference_geo.US!", "should match pattern"),
        ({"global": "1.1"}, "", "standard price"),
        (["us"], "inference_geo", "valid dictionary"),
    ],
)
def test_a_malformed_geo_multiplier_is_refused_with_its_key_path(
    geos: object, path: str, message: str
) -> None:
    with pytest.raises(ConfigError) as error:
        model(inference_geo=geos)

    problems = {problem.path: problem.message for problem in error.value.problems}
    where = f"anthropic.m.{path}" if path else "anthropic.m"
    assert list(problems) == [where]
    assert message in problems[where]


# -- the built-in table -------------------------------------------------------------------------------

RESIDENT = [
    "claude-opus-4-6",
    "claude-sonnet-4-6",
    "claude-opus-4-7",
    "claude-opus-4-8",
    "claude-fable-5",
    "claude-mythos-5",
    "claude-sonnet-5",
    "claude-opus-5",
    "claude-fable-5-1",
    "claude-mythos-5-1",
    "claude-opus-5-5",
    "claude-sonnet-5-5",
]


def test_claude_models_from_opus_and_sonnet_4_6_on_cost_1_1x_in_the_us(builtin: PriceTable) -> None:
    anthropic = builtin.sections["anthropic"]

    resident = sorted(name for name, price in anthropic.items() if price.inference_geo)

    assert resident == sorted(RESIDENT)
    assert all(anthropic[name].inference_geo == {"us": Decimal("1.1")} for name in RESIDENT)


def test_only_claude_models_carry_geo_multipliers(builtin: PriceTable) -> None:
    others = [price for family in ("openai", "gemini") for price in builtin.sections[family].values()]

    assert others and not any(price.inference_geo for price in others)


def test_a_built_in_us_call_costs_1_1x_and_an_older_model_s_us_call_is_unpriced(builtin: PriceTable) -> None:
    opus = builtin.price_for("anthropic", "anthropic", "claude-opus-4-6")
    older = builtin.price_for("anthropic", "anthropic", "claude-sonnet-4-5-20250929")
    fast = builtin.price_for("anthropic", "anthropic", "claude-opus-5-5")
    assert opus is not None and older is not None and fast is not None
    usage = TokenUsage(input_tokens=1_000_000, output_tokens=100_000, inference_geo="us")

    assert cost_of(usage, opus) == Decimal("7.5") * Decimal("1.1")
    assert cost_of(usage, older) is None
    # fast mode: $8 / $40, then 1.1x
    assert cost_of(usage._replace(service_tier="fast"), fast) == Decimal("12") * Decimal("1.1")
