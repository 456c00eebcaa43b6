"""gateway.metering.prices: the price table's format, its look-up rules, and the cost formula."""

from __future__ import annotations

import tomllib
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from gateway.metering.prices import (
    OTHER_MODEL,
    ModelPrice,
    PriceTable,
    cost_of,
    load_price_table,
    model_candidates,
    parse_price_table,
)
from gateway.metering.usage import TokenUsage
from gateway.settings import ConfigError

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "config" / "prices.example.yaml"


def price(input: str, output: str, **rates: str) -> dict[str, str]:
    return {"input": input, "output": output, "effective_date": "2026-01-01", **rates}


def table(sections: dict[str, dict[str, dict[str, str]]]) -> PriceTable:
    return parse_price_table(sections, "test")


@pytest.fixture(scope="module")
def builtin() -> PriceTable:
    return load_price_table(None)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "prices.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(error: pytest.ExceptionInfo[ConfigError]) -> dict[str, str]:
    return {problem.path: problem.message for problem in error.value.problems}


# -- look-up ------------------------------------------------------------------------------------------


def test_a_model_is_priced_under_its_family_by_its_exact_name(builtin: PriceTable) -> None:
    found = builtin.price_for("openai", "openai", "gpt-4o")

    assert found is not None
    assert (found.input, found.cached_input, found.output) == (
        Decimal("2.50"),
        Decimal("1.25"),
        Decimal("10.00"),
    )


@pytest.mark.parametrize(
    ("kind", "model", "priced_as"),
    [
        ("openai", "gpt-4o-2024-08-06", "gpt-4o"),
        ("openai", "gpt-4o-2024-05-13", "gpt-4o-2024-05-13"),  # a snapshot with prices of its own
        ("openai", "gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("openai", "gpt-4.1-2025-04-14", "gpt-4.1"),
        ("openai", "o3-mini-2025-01-31", "o3-mini"),
        ("anthropic", "claude-sonnet-4-20250514", "claude-sonnet-4"),
        ("anthropic", "claude-sonnet-4@20250514", "claude-sonnet-4"),
        ("anthropic", "claude-3-5-haiku-latest", "claude-3-5-haiku"),
        ("anthropic", "claude-opus-4-5-20251101", "claude-opus-4-5"),
        ("anthropic", "claude-sonnet-4-0", "claude-sonnet-4-0"),
        ("gemini", "gemini-2.0-flash-001", "gemini-2.0-flash"),
        ("gemini", "models/gemini-2.5-pro", "gemini-2.5-pro"),
        ("gemini", "models/gemini-2.0-flash-001", "gemini-2.0-flash"),
    ],
)
def test_a_snapshot_or_version_is_priced_as_its_model(
    builtin: PriceTable, kind: str, model: str, priced_as: str
) -> None:
    assert builtin.model_label(kind, kind, model) == priced_as
    assert builtin.price_for(kind, kind, model) == builtin.sections[kind][priced_as]


@pytest.mark.parametrize(
    "model",
    [
        "gpt-4o-realtime-preview",  # a different product that starts with a priced name
        "gpt-4o-search-preview-2025-03-11",
        "gpt-audio-1.5",  # a newer model that starts with a priced name
        "gpt-4",
        "gpt-4o-2024",  # half a date is no version
        "ft:gpt-4o-mini-2024-07-18:acme::abc123",  # fine-tuned models have prices of their own
        "gpt-4o-mini-tts",
        "o3-pro",
    ],
)
def test_no_model_is_priced_by_a_looser_prefix(builtin: PriceTable, model: str) -> None:
    assert builtin.price_for("openai", "openai", model) is None


def test_a_longer_name_is_not_priced_as_its_prefix_even_when_it_is_missing() -> None:
    prices = table({"openai": {"gpt-4o": price("2.50", "10")}})

    assert prices.price_for("openai", "openai", "gpt-4o-mini") is None
    assert prices.price_for("openai", "openai", "gpt-4o-mini-2024-07-18") is None


def test_a_newer_model_is_not_priced_as_an_older_one(builtin: PriceTable) -> None:
    opus_4_5 = builtin.price_for("anthropic", "anthropic", "claude-opus-4-5")
    opus_4 = builtin.price_for("anthropic", "anthropic", "claude-opus-4")

    assert opus_4_5 is not None and opus_4 is not None
    assert opus_4_5.input < opus_4.input


def test_model_candidates_are_the_name_then_the_name_without_its_version() -> None:
    assert model_candidates("gpt-4o-2024-08-06") == ["gpt-4o-2024-08-06", "gpt-4o"]
    assert model_candidates("models/gemini-2.0-flash-001") == ["gemini-2.0-flash-001", "gemini-2.0-flash"]
    assert model_candidates("gpt-4o") == ["gpt-4o"]


@pytest.mark.parametrize("kind", ["openai", "azure-openai"])
def test_openai_and_azure_openai_providers_fall_back_to_the_openai_family(
    builtin: PriceTable, kind: str
) -> None:
    assert builtin.price_for("my-provider", kind, "gpt-4o") == builtin.sections["openai"]["gpt-4o"]


def test_an_openai_compatible_provider_has_no_family_to_fall_back_to(builtin: PriceTable) -> None:
    assert builtin.price_for("local", "openai-compatible", "gpt-4o") is None


def test_a_family_does_not_price_another_familys_models(builtin: PriceTable) -> None:
    assert builtin.price_for("anthropic", "anthropic", "gpt-4o") is None


def test_the_providers_own_section_comes_before_its_family() -> None:
    prices = table(
        {
            "openai": {"gpt-4o": price("2.50", "10"), "gpt-4o-2024-08-06": price("9", "9")},
            "azure": {"gpt-4o": price("2.00", "8")},
        }
    )

    assert prices.price_for("azure", "azure-openai", "gpt-4o") == prices.sections["azure"]["gpt-4o"]
    # even by version pattern before the family's exact name
    assert (
        prices.price_for("azure", "azure-openai", "gpt-4o-2024-08-06") == prices.sections["azure"]["gpt-4o"]
    )
    assert (
        prices.price_for("openai", "openai", "gpt-4o-2024-08-06")
        == prices.sections["openai"]["gpt-4o-2024-08-06"]
    )


def test_the_model_label_is_the_priced_name_or_other(builtin: PriceTable) -> None:
    assert builtin.model_label("openai", "openai", "gpt-4o-2024-08-06") == "gpt-4o"
    assert builtin.model_label("openai", "openai", "my-fine-tune") == OTHER_MODEL
    assert builtin.model_label("openai", "openai", None) == OTHER_MODEL


# -- cost ---------------------------------------------------------------------------------------------

SONNET = ModelPrice(
    input=Decimal("3"),
    cached_input=Decimal("0.30"),
    cache_write=Decimal("3.75"),
    output=Decimal("15"),
    effective_date=date(2025, 5, 22),
)


def test_cost_prices_each_kind_of_token_at_its_own_rate_per_million() -> None:
    usage = TokenUsage(
        input_tokens=10_000, output_tokens=500, cached_input_tokens=2_000, cache_write_tokens=1_000
    )

    # (10000 - 2000 - 1000) x 3 + 2000 x 0.30 + 1000 x 3.75 + 500 x 15 = 32850 per million
    assert cost_of(usage, SONNET) == Decimal("0.03285")


def test_cache_writes_kept_an_hour_are_priced_at_their_own_rate() -> None:
    sonnet = ModelPrice(**{**SONNET.model_dump(), "cache_write_1h": Decimal("6")})
    usage = TokenUsage(input_tokens=3_000, cache_write_tokens=3_000, cache_write_1h_tokens=1_000)

    # 2000 x 3.75 (five minutes) + 1000 x 6 (an hour) = 13500 per million
    assert cost_of(usage, sonnet) == Decimal("0.0135")
    # more hour-long writes than writes reported: no more than every write at the hour's rate
    assert cost_of(usage._replace(cache_write_1h_tokens=5_000), sonnet) == Decimal("0.018")


def test_the_rate_of_writes_kept_longer_has_no_default_never_the_cache_write_rate() -> None:
    """Anthropic bills hour-long writes at 2x input, five-minute ones at 1.25x; OpenAI's 12-hour writes
    cost more than its 30-minute ones: one rate is never the other's."""
    priced = table({"anthropic": {"m": price("1", "5", cache_write="1.25"), "flat": price("2", "8")}})

    assert priced.sections["anthropic"]["m"].cache_write_1h is None
    assert priced.sections["anthropic"]["flat"].cache_write_1h is None
    assert SONNET.cache_write_1h is None
    assert (
        cost_of(TokenUsage(input_tokens=10, cache_write_tokens=10, cache_write_1h_tokens=1), SONNET) is None
    )


def test_reasoning_tokens_are_already_part_of_the_output() -> None:
    plain = cost_of(TokenUsage(output_tokens=1_000), SONNET)
    reasoning = cost_of(TokenUsage(output_tokens=1_000, reasoning_tokens=800), SONNET)

    assert plain == reasoning == Decimal("0.015")


def test_cost_is_an_exact_decimal_not_a_rounded_float() -> None:
    cheap = table({"openai": {"nano": price("0.1", "0.4")}}).sections["openai"]["nano"]

    cost = cost_of(TokenUsage(input_tokens=3, output_tokens=7), cheap)

    assert isinstance(cost, Decimal)
    assert cost == Decimal("0.0000031")  # 3 x 0.1 + 7 x 0.4 = 3.1 per million; as floats 3.1000000000000005


def test_cost_stays_exact_whatever_the_rates_decimal_places_and_the_token_counts() -> None:
    odd = ModelPrice(
        input=Decimal("0.075"),
        cached_input=Decimal("0.01875"),
        cache_write=Decimal("1E+1"),
        output=Decimal("0.3"),
        effective_date=date(2025, 1, 1),
    )
    usage = TokenUsage(
        input_tokens=987_654_321, output_tokens=123_456_789, cached_input_tokens=3, cache_write_tokens=7
    )

    expected = (
        (987_654_321 - 3 - 7) * Decimal("0.075")
        + 3 * Decimal("0.01875")
        + 7 * Decimal("10")
        + 123_456_789 * Decimal("0.3")
    ) / 1_000_000
    assert cost_of(usage, odd) == expected == Decimal("111.11118008125")


def test_cache_rates_default_to_the_input_rate() -> None:
    flat = table({"openai": {"m": price("2", "8")}}).sections["openai"]["m"]

    assert flat.cached_input == flat.cache_write == Decimal("2")
    assert cost_of(TokenUsage(input_tokens=1_000_000, cached_input_tokens=400_000), flat) == Decimal("2")


def test_more_cached_tokens_than_input_tokens_never_make_the_uncached_part_negative() -> None:
    usage = TokenUsage(input_tokens=100, cached_input_tokens=150)

    assert cost_of(usage, SONNET) == Decimal("150") * Decimal("0.30") / 1_000_000


def test_no_tokens_cost_nothing() -> None:
    assert cost_of(TokenUsage(), SONNET) == 0


def long_context_price(**long: object) -> ModelPrice:
    entry: dict[str, object] = {**price("1.25", "10", cached_input="0.125"), "long_context": long}
    return table({"gemini": {"m": entry}}).sections["gemini"]["m"]  # type: ignore[dict-item]


def test_a_call_with_more_input_than_the_long_context_threshold_pays_those_rates_for_every_token() -> None:
    pro = long_context_price(above_input_tokens=200_000, input="2.50", cached_input="0.25", output="15")
    at_threshold = TokenUsage(input_tokens=200_000, output_tokens=1_000, cached_input_tokens=50_000)
    above = TokenUsage(input_tokens=200_001, output_tokens=1_000, cached_input_tokens=50_000)

    # 150000 x 1.25 + 50000 x 0.125 + 1000 x 10 = 203750 per million
    assert cost_of(at_threshold, pro) == Decimal("0.20375")
    # 150001 x 2.50 + 50000 x 0.25 + 1000 x 15 = 402502.5 per million
    assert cost_of(above, pro) == Decimal("0.4025025")


def test_cache_reads_and_writes_count_towards_the_long_context_threshold() -> None:
    sonnet = long_context_price(above_input_tokens=200_000, input="6", cache_write="7.50", output="22.50")
    mostly_cached = TokenUsage(input_tokens=250_000, cached_input_tokens=240_000, cache_write_tokens=5_000)

    # 5000 x 6 + 240000 x 6 (cache reads default to the tier's input) + 5000 x 7.50 per million
    assert cost_of(mostly_cached, sonnet) == Decimal("1.5075")


def test_long_context_cache_rates_default_to_the_tiers_own_input_rate() -> None:
    tier = long_context_price(above_input_tokens=1, input="4", output="18").long_context

    assert tier is not None
    assert tier.cached_input == tier.cache_write == Decimal("4")


def test_a_price_without_a_long_context_tier_prices_every_call_alike() -> None:
    assert SONNET.long_context is None
    assert cost_of(TokenUsage(input_tokens=1_000_000), SONNET) == Decimal("3")


@pytest.mark.parametrize(
    ("long_context", "path", "message"),
    [
        ({"input": "2", "output": "3"}, "long_context.above_input_tokens", "Field required"),
        (
            {"above_input_tokens": 0, "input": "2", "output": "3"},
            "long_context.above_input_tokens",
            "Input should be greater than 0",
        ),
        (
            {"above_input_tokens": 9, "input": "2", "output": "3", "tier": 2},
            "long_context.tier",
            "unknown key",
        ),
        ({"above_input_tokens": 9, "input": "x", "output": "3"}, "long_context.input", "valid decimal"),
    ],
)
def test_a_malformed_long_context_tier_is_refused_with_its_key_path(
    long_context: dict[str, object], path: str, message: str
) -> None:
    with pytest.raises(ConfigError) as error:
        table({"gemini": {"m": {**price("1", "2"), "long_context": long_context}}})  # type: ignore[dict-item]

    problems = problems_of(error)
    assert list(problems) == [f"gemini.m.{path}"]  # a bad input rate is reported once, not per cache rate
    assert message in problems[f"gemini.m.{path}"]


def tiered_price(**tiers: dict[str, str]) -> ModelPrice:
    entry: dict[str, object] = {**price("2", "8", cached_input="0.50"), "service_tiers": tiers}
    return table({"openai": {"m": entry}}).sections["openai"]["m"]  # type: ignore[dict-item]


def test_a_call_served_in_a_priced_tier_pays_that_tier_s_rates() -> None:
    o3 = tiered_price(
        flex={"input": "1", "cached_input": "0.25", "output": "4"}, priority={"input": "3.5", "output": "14"}
    )
    usage = TokenUsage(input_tokens=3_000, cached_input_tokens=1_000, output_tokens=500)

    # standard: 2000 x 2 + 1000 x 0.50 + 500 x 8 = 8500 per million
    assert cost_of(usage, o3) == Decimal("0.0085")
    # flex: 2000 x 1 + 1000 x 0.25 + 500 x 4 = 4250 per million
    assert cost_of(usage._replace(service_tier="flex"), o3) == Decimal("0.00425")
    # priority, its cache reads at its own input rate by default: 3000 x 3.5 + 500 x 14 = 17500
    assert cost_of(usage._replace(service_tier="priority"), o3) == Decimal("0.0175")


def test_a_call_in_a_tier_its_model_does_not_list_beside_others_is_unpriced_not_charged_standard() -> None:
    o3 = tiered_price(flex={"input": "1", "output": "4"})

    assert cost_of(TokenUsage(input_tokens=1_000, service_tier="scale"), o3) is None
    assert cost_of(TokenUsage(input_tokens=1_000, service_tier="priority"), o3) is None


def test_a_price_that_lists_no_tiers_prices_every_tier_a_server_names_at_its_own_rates() -> None:
    # an openai-compatible server's own tier names (Groq's `on_demand`) mean nothing to such a price
    assert cost_of(TokenUsage(input_tokens=1_000_000, service_tier="on_demand"), SONNET) == Decimal("3")


def long_tiered_price(**tiers: dict[str, object]) -> ModelPrice:
    """A model billed at 2x input and cache rates, 1.5x output above 100k input tokens, with `tiers`."""
    entry: dict[str, object] = {
        **price("2", "10", cached_input="0.20", cache_write="2.50"),
        "web_search": "10",
        "long_context": {
            "above_input_tokens": 100_000,
            "input": "4",
            "cached_input": "0.40",
            "cache_write": "5",
            "output": "15",
        },
        "service_tiers": tiers,
    }
    return table({"openai": {"m": entry}}).sections["openai"]["m"]  # type: ignore[dict-item]


FAST = {"input": "4", "cached_input": "0.40", "cache_write": "5", "output": "20"}
FAST_LONG = {"input": "8", "cached_input": "0.80", "cache_write": "10", "output": "30"}
LONG_CALL = TokenUsage(
    input_tokens=150_000, output_tokens=2_000, cached_input_tokens=100_000, cache_write_tokens=10_000
)


def test_a_long_call_in_a_tier_pays_that_tier_s_long_context_rates_for_every_token() -> None:
    model = long_tiered_price(fast={**FAST, "long_context": FAST_LONG})

    # 40000 x 8 + 100000 x 0.80 + 10000 x 10 + 2000 x 30 = 560000 per million
    assert cost_of(LONG_CALL._replace(service_tier="fast"), model) == Decimal("0.56")
    # and a search at the model's own rate: $10 per 1,000
    searched = LONG_CALL._replace(service_tier="fast", web_searches=1)
    assert cost_of(searched, model) == Decimal("0.57")
    # the standard tier's long call: 40000 x 4 + 100000 x 0.40 + 10000 x 5 + 2000 x 15 = 280000
    assert cost_of(LONG_CALL, model) == Decimal("0.28")


def test_a_call_at_the_threshold_in_a_tier_pays_that_tier_s_short_context_rates() -> None:
    model = long_tiered_price(fast={**FAST, "long_context": FAST_LONG})
    at_threshold = LONG_CALL._replace(input_tokens=100_000, cached_input_tokens=50_000, service_tier="fast")

    # 40000 x 4 + 50000 x 0.40 + 10000 x 5 + 2000 x 20 = 270000 per million
    assert cost_of(at_threshold, model) == Decimal("0.27")
    # one token more and every token is at the tier's long-context rates:
    # 40001 x 8 + 50000 x 0.80 + 10000 x 10 + 2000 x 30 = 520008 per million
    assert cost_of(at_threshold._replace(input_tokens=100_001), model) == Decimal("0.520008")


def test_a_long_call_in_a_tier_without_long_context_rates_is_unpriced_never_charged_its_short_rates() -> None:
    model = long_tiered_price(
        flex={"input": "1", "cached_input": "0.10", "cache_write": "1.25", "output": "5"}
    )
    short = LONG_CALL._replace(input_tokens=60_000, cached_input_tokens=20_000, service_tier="flex")

    assert cost_of(LONG_CALL._replace(service_tier="flex"), model) is None
    # its short calls keep the tier's rates: 30000 x 1 + 20000 x 0.10 + 10000 x 1.25 + 2000 x 5 = 54500
    assert cost_of(short, model) == Decimal("0.0545")


def test_a_tier_of_a_model_without_long_context_rates_prices_calls_of_any_length_at_its_rates() -> None:
    # Anthropic's fast mode: one rate across the whole context window; a model that bills its whole
    # window at its own rates (no `long_context`) bills its tiers' whole window at theirs
    model = tiered_price(fast={"input": "10", "cached_input": "1", "output": "50"})
    huge = TokenUsage(
        input_tokens=900_000, cached_input_tokens=400_000, output_tokens=1_000, service_tier="fast"
    )

    # 500000 x 10 + 400000 x 1 + 1000 x 50 = 5450000 per million
    assert cost_of(huge, model) == Decimal("5.45")


def test_a_tier_s_long_context_rates_restated_bill_the_whole_window_at_the_tier_s_rates() -> None:
    # how a prices file says that a tier covers the whole window of a model with long-context rates
    model = long_tiered_price(fast={**FAST, "long_context": FAST})

    # 40000 x 4 + 100000 x 0.40 + 10000 x 5 + 2000 x 20 = 290000 per million
    assert cost_of(LONG_CALL._replace(service_tier="fast"), model) == Decimal("0.29")


def test_a_tier_s_long_context_cache_rates_default_to_its_own_input_rate() -> None:
    model = long_tiered_price(fast={**FAST, "long_context": {"input": "8", "output": "30"}})
    long = model.service_tiers["fast"].long_context

    assert long is not None
    assert long.cached_input == long.cache_write == Decimal("8")
    assert long.cache_write_1h is None
    assert long.audio_input is long.audio_output is None
    # 150000 x 8 (reads and writes at the input rate) + 2000 x 30 = 1260000 per million
    assert cost_of(LONG_CALL._replace(service_tier="fast"), model) == Decimal("1.26")


def test_a_long_audio_call_in_a_tier_is_priced_by_that_tier_s_long_context_audio_rates() -> None:
    model = long_tiered_price(
        fast={
            **FAST,
            "audio_input": "40",
            "long_context": {"input": "8", "output": "30", "audio_input": "80"},
        }
    )
    heard = TokenUsage(input_tokens=200_000, audio_input_tokens=100_000, service_tier="fast")

    # 100000 x 8 + 100000 x 80 = 8800000 per million
    assert cost_of(heard, model) == Decimal("8.8")
    assert cost_of(heard._replace(audio_output_tokens=1, output_tokens=1), model) is None


@pytest.mark.parametrize(
    ("tiers", "path", "message"),
    [
        ({"default": {"input": "1", "output": "2"}}, "", "standard tier"),
        ({"Flex!": {"input": "1", "output": "2"}}, "service_tiers.Flex!", "should match pattern"),
        ({"flex": {"input": "1"}}, "service_tiers.flex.output", "Field required"),
        ({"flex": {"input": "1", "output": "2", "speed": "x"}}, "service_tiers.flex.speed", "unknown key"),
    ],
)
def test_a_malformed_service_tier_is_refused_with_its_key_path(
    tiers: dict[str, object], path: str, message: str
) -> None:
    with pytest.raises(ConfigError) as error:
        table({"openai": {"m": {**price("1", "2"), "service_tiers": tiers}}})  # type: ignore[dict-item]

    problems = problems_of(error)
    where = f"openai.m.{path}" if path else "openai.m"
    assert list(problems) == [where]
    assert message in problems[where]


@pytest.mark.parametrize(
    ("long_context", "path", "message"),
    [
        ({"input": "8"}, "service_tiers.fast.long_context.output", "Field required"),
        # a bad input rate is reported once, not again for each cache rate that defaults to it
        ({"input": "x", "output": "30"}, "service_tiers.fast.long_context.input", "valid decimal"),
        ({"input": "-1", "output": "30"}, "service_tiers.fast.long_context.input", "greater than or equal"),
        (
            {"above_input_tokens": 200_000, "input": "8", "output": "30"},
            "service_tiers.fast.long_context.above_input_tokens",
            "unknown key",  # the threshold is the model's, one for every tier
        ),
        (
            {"input": "8", "output": "30", "long_context": {}},
            "service_tiers.fast.long_context.long_context",
            "unknown key",
        ),
    ],
)
def test_a_malformed_tier_long_context_is_refused_with_its_key_path(
    long_context: dict[str, object], path: str, message: str
) -> None:
    entry = {
        **price("2", "10"),
        "long_context": {"above_input_tokens": 100_000, "input": "4", "output": "15"},
        "service_tiers": {"fast": {**FAST, "long_context": long_context}},
    }
    with pytest.raises(ConfigError) as error:
        table({"openai": {"m": entry}})  # type: ignore[dict-item]

    problems = problems_of(error)
    assert list(problems) == [f"openai.m.{path}"]
    assert message in problems[f"openai.m.{path}"]


def test_a_tier_long_context_of_a_model_without_a_long_context_threshold_is_refused() -> None:
    entry = {**price("2", "10"), "service_tiers": {"fast": {**FAST, "long_context": FAST_LONG}}}
    with pytest.raises(ConfigError) as error:
        table({"openai": {"m": entry}})  # type: ignore[dict-item]

    problems = problems_of(error)
    assert list(problems) == ["openai.m"]
    assert "service_tiers: 'fast' gives long_context rates" in problems["openai.m"]
    assert "the model's long_context" in problems["openai.m"]


# -- audio ----------------------------------------------------------------------------------------------

AUDIO = ModelPrice(  # gpt-4o-audio-preview's list prices
    input=Decimal("2.50"),
    cached_input=Decimal("2.50"),
    cache_write=Decimal("2.50"),
    output=Decimal("10"),
    audio_input=Decimal("40"),
    audio_output=Decimal("80"),
    effective_date=date(2024, 12, 17),
)


def test_audio_tokens_are_priced_at_the_audio_rates_and_the_rest_at_the_text_rates() -> None:
    usage = TokenUsage(
        input_tokens=1_200, output_tokens=620, audio_input_tokens=1_000, audio_output_tokens=500
    )

    # 200 x 2.50 + 1000 x 40 + 120 x 10 + 500 x 80 = 81700 per million
    assert cost_of(usage, AUDIO) == Decimal("0.0817")
    # as text alone it would have cost 1200 x 2.50 + 620 x 10 = 9200 per million
    assert cost_of(usage._replace(audio_input_tokens=0, audio_output_tokens=0), AUDIO) == Decimal("0.0092")


def test_a_call_with_audio_tokens_of_a_price_without_audio_rates_is_unpriced_not_priced_as_text() -> None:
    heard = TokenUsage(input_tokens=1_200, output_tokens=20, audio_input_tokens=1_000)
    spoken = TokenUsage(input_tokens=12, output_tokens=620, audio_output_tokens=500)
    hears_only = ModelPrice(**{**AUDIO.model_dump(), "audio_output": None})

    assert SONNET.audio_input is SONNET.audio_output is None
    assert cost_of(heard, SONNET) is None
    assert cost_of(spoken, SONNET) is None
    # each kind of audio needs its own rate, and only the kinds the call reports
    assert cost_of(heard, hears_only) == (200 * Decimal("2.50") + 1_000 * 40 + 20 * 10) / 1_000_000
    assert cost_of(spoken, hears_only) is None
    assert cost_of(TokenUsage(input_tokens=12, output_tokens=20), SONNET) is not None


def test_audio_counts_beyond_their_totals_are_priced_as_no_more_than_the_totals() -> None:
    usage = TokenUsage(input_tokens=100, output_tokens=10, audio_input_tokens=150, audio_output_tokens=90)

    assert cost_of(usage, AUDIO) == (100 * Decimal("40") + 10 * Decimal("80")) / 1_000_000


def test_cache_reads_are_text_tokens_beside_the_audio_never_counted_twice() -> None:
    cheap_reads = ModelPrice(**{**AUDIO.model_dump(), "cached_input": Decimal("1.25")})
    usage = TokenUsage(input_tokens=1_000, cached_input_tokens=900, audio_input_tokens=600)

    # 600 audio x 40; the other 400 are text, read from the cache (no more than them): 400 x 1.25
    assert cost_of(usage, cheap_reads) == (600 * Decimal("40") + 400 * Decimal("1.25")) / 1_000_000
    partly = usage._replace(cached_input_tokens=100)
    # 600 x 40 + 100 x 1.25 + 300 x 2.50
    assert cost_of(partly, cheap_reads) == Decimal("0.024875")


def test_the_rates_in_force_price_the_audio_a_tier_without_audio_rates_leaves_it_unpriced() -> None:
    entry: dict[str, object] = {
        **price("2.50", "10", audio_input="40", audio_output="80"),
        "long_context": {"above_input_tokens": 1_000, "input": "5", "output": "20", "audio_input": "60"},
        "service_tiers": {
            "priority": {"input": "4", "output": "16", "audio_input": "64", "audio_output": "128"},
            "flex": {"input": "1.25", "output": "5"},
        },
    }
    model = table({"openai": {"m": entry}}).sections["openai"]["m"]  # type: ignore[dict-item]
    heard = TokenUsage(input_tokens=1_000, output_tokens=10, audio_input_tokens=800)

    assert cost_of(heard, model) == (200 * Decimal("2.50") + 800 * 40 + 10 * 10) / 1_000_000
    # priority: 200 x 4 + 800 x 64 + 10 x 16 = 52160 per million
    assert cost_of(heard._replace(service_tier="priority"), model) == Decimal("0.05216")
    assert cost_of(heard._replace(service_tier="flex"), model) is None
    longer = heard._replace(input_tokens=1_001)
    assert cost_of(longer, model) == (201 * Decimal("5") + 800 * 60 + 10 * 20) / 1_000_000
    assert cost_of(longer._replace(audio_output_tokens=5), model) is None  # no long-context audio output


def test_audio_rates_are_optional_and_default_to_nothing() -> None:
    entry = table({"openai": {"m": price("2.50", "10", audio_input="40")}}).sections["openai"]["m"]

    assert (entry.audio_input, entry.audio_output) == (Decimal("40"), None)
    assert table({"openai": {"m": price("2.50", "10")}}).sections["openai"]["m"].audio_input is None


def test_audio_rates_keep_costs_exact_whatever_their_decimal_places() -> None:
    entry = price("0.15", "0.6", audio_input="10.125", audio_output="20.0625")
    mini = table({"openai": {"m": entry}}).sections["openai"]["m"]
    usage = TokenUsage(input_tokens=7, output_tokens=3, audio_input_tokens=5, audio_output_tokens=1)

    expected = (2 * Decimal("0.15") + 5 * Decimal("10.125") + 2 * Decimal("0.6") + Decimal("20.0625")) / (
        1_000_000
    )
    assert cost_of(usage, mini) == expected == Decimal("0.0000721875")


@pytest.mark.parametrize(
    ("rates", "path", "message"),
    [
        ({"audio_input": "-40"}, "audio_input", "greater than or equal to 0"),
        ({"audio_output": "lots"}, "audio_output", "valid decimal"),
        ({"cached_audio_input": "0.40"}, "cached_audio_input", "unknown key"),
        (
            {"service_tiers": {"priority": {"input": "4", "output": "16", "audio_output": -1}}},
            "service_tiers.priority.audio_output",
            "greater than or equal to 0",
        ),
    ],
)
def test_a_malformed_audio_rate_is_refused_with_its_key_path(
    rates: dict[str, object], path: str, message: str
) -> None:
    with pytest.raises(ConfigError) as error:
        table({"openai": {"m": {**price("2.50", "10"), **rates}}})  # type: ignore[dict-item]

    problems = problems_of(error)
    assert list(problems) == [f"openai.m.{path}"]
    assert message in problems[f"openai.m.{path}"]


# -- the built-in table -------------------------------------------------------------------------------


def test_the_built_in_table_prices_every_family(builtin: PriceTable) -> None:
    assert {"openai", "anthropic", "gemini"} <= set(builtin.sections)
    for kind, model in [
        ("openai", "gpt-4o-mini"),
        ("openai", "gpt-4.1-nano"),
        ("openai", "o1"),
        ("openai", "o3"),
        ("openai", "o4-mini"),
        ("openai", "gpt-5-mini"),
        ("openai", "text-embedding-3-small"),
        ("openai", "gpt-6-sol"),
        ("openai", "gpt-6-luna"),
        ("openai", "gpt-6.2-sol"),
        ("anthropic", "claude-3-5-sonnet"),
        ("anthropic", "claude-3-7-sonnet"),
        ("anthropic", "claude-opus-4-1"),
        ("anthropic", "claude-sonnet-4-5"),
        ("anthropic", "claude-haiku-4-5"),
        ("anthropic", "claude-opus-4-7"),
        ("anthropic", "claude-opus-4-8"),
        ("anthropic", "claude-sonnet-5"),
        ("anthropic", "claude-fable-5-1"),
        ("anthropic", "claude-opus-5-5"),
        ("anthropic", "claude-sonnet-5-5"),
        ("gemini", "gemini-2.0-flash-lite"),
        ("gemini", "gemini-2.5-flash"),
        ("gemini", "gemini-2.5-flash-lite"),
        ("gemini", "gemini-2.5-pro"),
    ]:
        assert builtin.price_for(kind, kind, model) is not None, model


@pytest.mark.parametrize(
    ("model", "priced_as", "text", "audio"),
    [
        ("gpt-4o-audio-preview", "gpt-4o-audio-preview", ("2.50", "10.00"), ("40.00", "80.00")),
        ("gpt-4o-audio-preview-2025-06-03", "gpt-4o-audio-preview", ("2.50", "10.00"), ("40.00", "80.00")),
        ("gpt-4o-audio-preview-2024-12-17", "gpt-4o-audio-preview", ("2.50", "10.00"), ("40.00", "80.00")),
        (
            "gpt-4o-mini-audio-preview-2024-12-17",
            "gpt-4o-mini-audio-preview",
            ("0.15", "0.60"),
            ("10.00", "20.00"),
        ),
        ("gpt-audio", "gpt-audio", ("2.50", "10.00"), ("32.00", "64.00")),
        ("gpt-audio-2025-08-28", "gpt-audio", ("2.50", "10.00"), ("32.00", "64.00")),
    ],
)
def test_built_in_audio_models_price_their_audio_at_openai_s_list_rates(
    builtin: PriceTable, model: str, priced_as: str, text: tuple[str, str], audio: tuple[str, str]
) -> None:
    found = builtin.price_for("openai", "openai", model)

    assert builtin.model_label("openai", "openai", model) == priced_as
    assert found is not None
    assert (found.input, found.output) == tuple(map(Decimal, text))
    assert (found.audio_input, found.audio_output) == tuple(map(Decimal, audio))


@pytest.mark.parametrize("model", ["gpt-4o-audio-preview-2024-10-01", "gpt-audio-mini-2025-10-06"])
def test_built_in_audio_models_whose_audio_rates_are_not_published_leave_audio_calls_unpriced(
    builtin: PriceTable, model: str
) -> None:
    """gpt-4o-audio-preview's first snapshot was launched at other audio rates than its later ones, and
    OpenAI's pages give gpt-audio-mini's text rates only: their text calls are priced, their audio
    calls not (never at another snapshot's rates, nor as text)."""
    found = builtin.price_for("openai", "openai", model)

    assert found is not None and found.audio_input is found.audio_output is None
    assert cost_of(TokenUsage(input_tokens=10, output_tokens=5), found) is not None
    assert cost_of(TokenUsage(input_tokens=10, output_tokens=5, audio_output_tokens=5), found) is None


def test_only_audio_models_carry_audio_rates_in_the_built_in_table(builtin: PriceTable) -> None:
    for section in builtin.sections.values():
        for model, found in section.items():
            if found.audio_input is not None or found.audio_output is not None:
                assert "audio" in model, model
                assert found.audio_input is not None and found.audio_output is not None, model
                assert found.audio_input > found.input and found.audio_output > found.output, model


# Anthropic's cache reads are not 0.1x input for every model: Claude 3 Haiku has rates of its own,
# Claude Opus 5.5 reads at 0.05x ($0.20 against $4 on its model page), Claude Sonnet 5.5 too since
# 2026-10-07 ($0.10 against $2, Anthropic's release notes), and Claude Fable 5.1 and Mythos 5.1 at
# 0.025x ($0.25 against $10 on the pricing page), a quarter of Fable 5's. Each exception is named
# here, so a new model whose page gives another multiple fails until its rule is written down; every
# other model keeps 0.1x.
ANTHROPIC_CACHE_READS = {
    "claude-opus-5-5": Decimal("0.05"),
    "claude-sonnet-5-5": Decimal("0.05"),
    "claude-fable-5-1": Decimal("0.025"),
    "claude-mythos-5-1": Decimal("0.025"),
}


def test_built_in_anthropic_cache_writes_cost_125_percent_and_reads_their_model_s_share_of_input(
    builtin: PriceTable,
) -> None:
    claude_3_haiku = builtin.sections["anthropic"]["claude-3-haiku"]  # its writes and reads its own
    assert (claude_3_haiku.cache_write, claude_3_haiku.cached_input) == (Decimal("0.30"), Decimal("0.03"))
    assert set(ANTHROPIC_CACHE_READS) <= set(builtin.sections["anthropic"])
    for model, found in builtin.sections["anthropic"].items():
        if model == "claude-3-haiku":
            continue
        reads = ANTHROPIC_CACHE_READS.get(model, Decimal("0.1"))
        for rates in (found, found.long_context) if found.long_context else (found,):
            assert rates.cache_write == rates.input * Decimal("1.25"), model
            assert rates.cached_input == rates.input * reads, model


def test_built_in_claude_ids_find_their_own_entry_and_newer_ones_no_neighbour_s(builtin: PriceTable) -> None:
    for model, label in [
        ("claude-fable-5-1", "claude-fable-5-1"),
        ("claude-fable-5-1-20260901", "claude-fable-5-1"),  # a dated snapshot, by its suffix
        ("claude-fable-5-20260609", "claude-fable-5"),
        ("claude-mythos-5-1", "claude-mythos-5-1"),
        ("claude-opus-4-8", "claude-opus-4-8"),
    ]:
        assert builtin.model_label("anthropic", "anthropic", model) == label, model
    # a later version is never priced as the one before it: its own entry, or unpriced
    for newer in ("claude-sonnet-5-5", "claude-opus-5-5", "claude-haiku-5-5", "claude-fable-5-2"):
        assert builtin.model_label("anthropic", "anthropic", newer) in (newer, OTHER_MODEL), newer


def test_built_in_anthropic_cache_writes_kept_an_hour_cost_twice_the_input(builtin: PriceTable) -> None:
    for model, found in builtin.sections["anthropic"].items():
        for rates in (found, found.long_context) if found.long_context else (found,):
            assert rates.cache_write_1h == rates.input * 2, model


def test_built_in_long_context_tiers_price_prompts_above_200k_tokens(builtin: PriceTable) -> None:
    for kind, model, input_rate, output_rate in [
        ("anthropic", "claude-sonnet-4-20250514", "6.00", "22.50"),
        ("anthropic", "claude-sonnet-4-5-20250929", "6.00", "22.50"),
        ("gemini", "gemini-2.5-pro", "2.50", "15.00"),
        ("gemini", "gemini-3-pro-preview", "4.00", "18.00"),
    ]:
        found = builtin.price_for(kind, kind, model)
        assert found is not None and found.long_context is not None, model
        tier = found.long_context
        assert tier.above_input_tokens == 200_000, model
        assert (tier.input, tier.output) == (Decimal(input_rate), Decimal(output_rate)), model
        assert tier.cached_input == tier.input * Decimal("0.1"), model
    assert builtin.sections["anthropic"]["claude-opus-4-1"].long_context is None
    assert builtin.sections["gemini"]["gemini-2.5-flash"].long_context is None


def test_built_in_cache_reads_never_cost_more_than_input(builtin: PriceTable) -> None:
    for section in builtin.sections.values():
        for model, found in section.items():
            assert found.cached_input <= found.input, model


def test_prices_keep_the_exact_decimals_written_in_the_file(builtin: PriceTable) -> None:
    mini = builtin.sections["openai"]["gpt-4o-mini"]

    assert (str(mini.input), str(mini.cached_input)) == ("0.15", "0.075")


def test_the_built_in_table_is_package_data() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))

    assert "metering/prices.yaml" in pyproject["tool"]["setuptools"]["package-data"]["gateway"]


# -- overrides ----------------------------------------------------------------------------------------


def test_an_override_replaces_entries_one_model_at_a_time_and_adds_sections(
    tmp_path: Path, builtin: PriceTable
) -> None:
    override = write(
        tmp_path,
        "openai:\n  gpt-4o: {input: 2.00, output: 8.00, effective_date: 2026-02-01}\n"
        "local:\n  llama-3.3-70b: {input: 0.2, output: 0.6, effective_date: 2026-01-01}\n",
    )

    merged = load_price_table(override)

    assert merged.sections["openai"]["gpt-4o"].input == Decimal("2.00")
    assert merged.sections["openai"]["gpt-4o"].cached_input == Decimal("2.00")  # not the built-in 1.25
    assert merged.sections["openai"]["gpt-4o-mini"] == builtin.sections["openai"]["gpt-4o-mini"]
    assert merged.sections["anthropic"] == builtin.sections["anthropic"]
    assert merged.price_for("local", "openai-compatible", "llama-3.3-70b") is not None


def test_an_empty_override_changes_nothing(tmp_path: Path, builtin: PriceTable) -> None:
    assert load_price_table(write(tmp_path, "# nothing yet\n")) == builtin


def test_the_example_override_file_is_valid_and_prices_a_local_provider(builtin: PriceTable) -> None:
    merged = load_price_table(EXAMPLE)

    local = merged.price_for("local", "openai-compatible", "meta-llama/Llama-3.3-70B-Instruct")
    assert local is not None and local.output == Decimal("0.60")
    discounted = merged.price_for("anthropic", "anthropic", "claude-sonnet-4-5-20250929")
    listed = builtin.price_for("anthropic", "anthropic", "claude-sonnet-4-5")
    assert discounted is not None and listed is not None
    assert discounted.input == listed.input * Decimal("0.8")
    assert discounted.long_context is not None and listed.long_context is not None
    assert discounted.long_context.output == listed.long_context.output * Decimal("0.8")
    assert discounted.web_search == listed.web_search == Decimal("10")  # restated, not discounted
    assert discounted.cache_write_1h == listed.cache_write_1h * Decimal("0.8")
    coder = merged.price_for("local", "openai-compatible", "Qwen/Qwen2.5-Coder-32B-Instruct")
    assert coder is not None and coder.long_context is not None
    assert coder.long_context.above_input_tokens == 32_000


def test_the_example_prices_anthropic_priority_tier_calls_at_the_committed_rates() -> None:
    haiku = load_price_table(EXAMPLE).price_for("anthropic", "anthropic", "claude-haiku-4-5-20251001")
    assert haiku is not None

    priority = TokenUsage(input_tokens=1_000_000, output_tokens=1_000_000, service_tier="priority")
    standard = priority._replace(service_tier=None)

    assert cost_of(priority, haiku) == Decimal("7.20")  # 1.20 + 6.00
    assert cost_of(standard, haiku) == Decimal("4.80")  # 0.80 + 4.00
    assert cost_of(priority._replace(service_tier="batch"), haiku) is None


def test_the_example_prices_a_voice_deployment_s_audio_at_its_own_rates() -> None:
    voice = load_price_table(EXAMPLE).price_for("azure", "azure-openai", "prod-voice")
    assert voice is not None

    usage = TokenUsage(input_tokens=1_000, output_tokens=500, audio_input_tokens=800, audio_output_tokens=400)

    # 200 x 0.15 + 800 x 10 + 100 x 0.60 + 400 x 20 = 16090 per million
    assert cost_of(usage, voice) == Decimal("0.01609")


def test_every_problem_is_reported_with_the_file_and_key_path(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "openai:\n"
        "  gpt-4o: {input: -1, output: 10, effective_date: 2024-08-06}\n"
        "  gpt-4o-mini: {inptu: 0.15, output: 0.6, effective_date: 2024-07-18}\n"
        "  o3: {input: 2, output: lots, effective_date: 2025-06-10}\n"
        "  o4-mini: {input: 1.1, output: 4.4}\n"
        "Not A Provider:\n"
        "  m: {input: 1, output: 1, effective_date: 2026-01-01}\n",
    )

    with pytest.raises(ConfigError) as error:
        load_price_table(path)

    problems = problems_of(error)
    assert problems["openai.gpt-4o.input"] == "Input should be greater than or equal to 0"
    assert "openai.gpt-4o.cache_write_1h" not in problems  # the input's error, not repeated per default
    assert problems["openai.gpt-4o-mini.inptu"] == "unknown key (not part of the price format)"
    assert problems["openai.gpt-4o-mini.input"] == "Field required"
    assert problems["openai.o3.output"] == "Input should be a valid decimal"
    assert problems["openai.o4-mini.effective_date"] == "Field required"
    assert "Not A Provider" in problems
    assert str(error.value).startswith(f"{path}: ")


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("openai: [gpt-4o\n", "invalid YAML: line 2"),
        ("- gpt-4o\n", "the top level must be a mapping of providers to models"),
        (
            "openai:\n  gpt-4o: {input: .inf, output: 1, effective_date: 2026-01-01}\n",
            # one problem: none for the cache rates that take their value from it
            "prices.yaml: openai.gpt-4o.input: Input should be a valid decimal$",
        ),
        (
            "openai:\n  gpt-4o:\n    {input: 1, output: 1, effective_date: 2026-01-01,\n"
            "     long_context: {above_input_tokens: yes, input: 2, output: 2}}\n",
            "long_context.above_input_tokens: a number is expected, not the boolean true$",
        ),
    ],
)
def test_a_malformed_file_is_refused_with_the_reason(tmp_path: Path, text: str, complaint: str) -> None:
    with pytest.raises(ConfigError, match=complaint):
        load_price_table(write(tmp_path, text))


def test_a_missing_override_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_price_table(tmp_path / "missing.yaml")


def test_prices_are_frozen(builtin: PriceTable) -> None:
    with pytest.raises(TypeError):
        builtin.sections["openai"]["gpt-4o"] = builtin.sections["openai"]["gpt-4o-mini"]  # type: ignore[index]
    with pytest.raises(ValueError):
        builtin.sections["openai"]["gpt-4o"].input = Decimal(0)  # type: ignore[misc]


def test_built_in_flex_rates_are_half_the_standard_ones_and_priority_rates_above_them(
    builtin: PriceTable,
) -> None:
    openai = builtin.sections["openai"]
    flexible = [name for name, found in openai.items() if "flex" in found.service_tiers]
    prioritised = [name for name, found in openai.items() if "priority" in found.service_tiers]

    assert {"o3", "o4-mini", "gpt-5", "gpt-5-mini", "gpt-5-nano", "gpt-5.1", "gpt-6-sol"} <= set(flexible)
    assert {"gpt-4o", "gpt-4.1", "o3", "o4-mini", "gpt-5", "gpt-5.1", "gpt-6.2-sol"} <= set(prioritised)
    for name in flexible:
        standard, flex = openai[name], openai[name].service_tiers["flex"]
        assert (flex.input, flex.cached_input, flex.output) == (
            standard.input / 2,
            standard.cached_input / 2,
            standard.output / 2,
        ), name
        assert flex.cache_write == standard.cache_write / 2, name
    for name in prioritised:
        standard, priority = openai[name], openai[name].service_tiers["priority"]
        assert priority.input > standard.input and priority.output > standard.output, name
        if standard.cached_input < standard.input:  # gpt-4o-2024-05-13 has no cache discount at all
            assert priority.cached_input < priority.input, name


def test_built_in_gpt_6_models_bill_long_calls_at_2x_input_and_1_5x_output_and_fast_at_2x(
    builtin: PriceTable,
) -> None:
    # OpenAI's model pages: above 272k input tokens, twice the input and cache rates and 1.5 times the
    # output rate for the whole call; Fast mode (also named `priority`) at twice the standard rates
    openai = builtin.sections["openai"]
    for name in ("gpt-6-sol", "gpt-6-luna", "gpt-6.2-sol"):
        standard, tier = openai[name], openai[name].long_context
        assert tier is not None and tier.above_input_tokens == 272_000, name
        assert (tier.input, tier.cached_input, tier.cache_write, tier.output) == (
            standard.input * 2,
            standard.cached_input * 2,
            standard.cache_write * 2,
            standard.output * Decimal("1.5"),
        ), name
        tiers = standard.service_tiers
        if "fast" in tiers or "priority" in tiers:
            assert tiers["fast"] == tiers["priority"], name
            assert (tiers["fast"].input, tiers["fast"].output) == (standard.input * 2, standard.output * 2)
    assert "fast" not in openai["gpt-6-sol"].service_tiers  # its page's Fast rates were not confirmed
    assert "flex" not in openai["gpt-6.2-sol"].service_tiers  # its page lists no Flex rates


def test_built_in_ultrafast_rates_are_3x_through_2027_02_28_and_6x_from_2027_03_01(
    builtin: PriceTable,
) -> None:
    # gpt-6.2-sol's Ultrafast is 3x its standard rates through 2027-02-28 and 6x from 2027-03-01
    # (OpenAI's model page): two dated prices, the same but for Ultrafast
    for day, times in ((date(2027, 2, 28), 3), (date(2027, 3, 1), 6)):
        sol = builtin.price_for("openai", "openai", "gpt-6.2-sol", on=day)
        assert sol is not None
        ultrafast = sol.service_tiers["ultrafast"]

        assert (ultrafast.input, ultrafast.cached_input, ultrafast.cache_write, ultrafast.output) == (
            sol.input * times,
            sol.cached_input * times,
            sol.cache_write * times,
            sol.output * times,
        ), day
        ultrafast_call = TokenUsage(input_tokens=200_000, service_tier="ultrafast")
        assert cost_of(ultrafast_call, sol) == Decimal("0.4") * times
        assert cost_of(TokenUsage(input_tokens=200_000, service_tier="flex"), sol) is None


def test_built_in_gpt_6_fast_rates_above_272k_are_twice_the_long_context_rates(builtin: PriceTable) -> None:
    # OpenAI's model pages: Fast mode costs twice "the applicable rate" (gpt-6-luna), twice the
    # Standard rate "for the same context length" (gpt-6.2-sol); `priority` is Fast mode's former name
    openai = builtin.sections["openai"]
    for name in ("gpt-6-luna", "gpt-6.2-sol"):
        long = openai[name].long_context
        assert long is not None, name
        for tier in ("fast", "priority"):
            fast_long = openai[name].service_tiers[tier].long_context
            assert fast_long is not None, (name, tier)
            assert (fast_long.input, fast_long.cached_input, fast_long.cache_write, fast_long.output) == (
                long.input * 2,
                long.cached_input * 2,
                long.cache_write * 2,
                long.output * 2,
            ), (name, tier)


def test_built_in_gpt_6_long_calls_in_a_tier_its_pages_give_no_long_rates_for_are_unpriced(
    builtin: PriceTable,
) -> None:
    # Flex ("50% of Standard") and Ultrafast ("3 times the Standard rate") are not given per context
    # length on the model pages: a long call in them is unpriced, never charged the short-context rates
    openai = builtin.sections["openai"]
    for name, tier in (("gpt-6-sol", "flex"), ("gpt-6-luna", "flex"), ("gpt-6.2-sol", "ultrafast")):
        assert openai[name].service_tiers[tier].long_context is None, (name, tier)
        long_call = TokenUsage(input_tokens=272_001, service_tier=tier)
        assert cost_of(long_call, openai[name]) is None, (name, tier)
        assert cost_of(long_call._replace(input_tokens=272_000), openai[name]) is not None, (name, tier)


def test_a_long_fast_call_of_gpt_6_2_sol_pays_twice_its_long_context_rates(builtin: PriceTable) -> None:
    sol = builtin.price_for("openai", "openai", "gpt-6.2-sol")
    assert sol is not None
    usage = TokenUsage(
        input_tokens=300_000, output_tokens=10_000, cached_input_tokens=200_000, service_tier="priority"
    )

    # 100000 x 8 + 200000 x 0.40 + 10000 x 30 = 1180000 per million (short-context Fast: 0.68)
    assert cost_of(usage, sol) == Decimal("1.18")
    assert cost_of(usage._replace(service_tier="fast"), sol) == Decimal("1.18")
    # the standard tier: 100000 x 4 + 200000 x 0.20 + 10000 x 15 = 590000 per million
    assert cost_of(usage._replace(service_tier=None), sol) == Decimal("0.59")


def test_built_in_tiers_give_long_context_rates_only_to_models_with_a_threshold(builtin: PriceTable) -> None:
    # Anthropic's fast mode is billed at one rate across the whole context window: its models here
    # have no long_context, so their fast rates price every call whatever its length
    for section in builtin.sections.values():
        for name, found in section.items():
            if found.long_context is None:
                assert all(tier.long_context is None for tier in found.service_tiers.values()), name
    for model in ANTHROPIC_FAST:
        assert builtin.sections["anthropic"][model].long_context is None, model


def test_a_fast_call_of_a_model_without_fast_rates_is_unpriced_even_if_it_lists_no_tiers() -> None:
    # Fast mode is billed above the standard rates wherever a provider offers it (Anthropic's fast
    # mode, OpenAI's Fast): priced at the standard rates it would be charged too little
    assert cost_of(TokenUsage(input_tokens=1_000_000, service_tier="fast"), SONNET) is None
    assert cost_of(TokenUsage(input_tokens=1_000_000, service_tier="on_demand"), SONNET) == Decimal("3")
    assert cost_of(TokenUsage(input_tokens=1_000_000), SONNET) == Decimal("3")


# Anthropic's pricing page ("Fast mode pricing"): Claude Opus 5.5 $8 / $40, Claude Opus 5 and Opus 4.8
# $10 / $50 per million input / output tokens, across the full context window; prompt caching
# multipliers apply on top (writes 1.25x and 2x the fast input rate, reads the model's own share of it).
ANTHROPIC_FAST = {
    "claude-opus-5-5": (Decimal("8"), Decimal("40"), Decimal("0.05")),
    "claude-opus-5": (Decimal("10"), Decimal("50"), Decimal("0.1")),
    "claude-opus-4-8": (Decimal("10"), Decimal("50"), Decimal("0.1")),
}


def test_built_in_anthropic_fast_rates_are_the_pricing_page_s_with_cache_multipliers_on_top(
    builtin: PriceTable,
) -> None:
    anthropic = builtin.sections["anthropic"]
    for model, (input_rate, output_rate, read_share) in ANTHROPIC_FAST.items():
        fast = anthropic[model].service_tiers["fast"]
        assert (fast.input, fast.output) == (input_rate, output_rate), model
        assert fast.cached_input == input_rate * read_share, model
        assert (fast.cache_write, fast.cache_write_1h) == (input_rate * Decimal("1.25"), input_rate * 2), (
            model
        )
        assert fast.audio_input is fast.audio_output is None, model
    with_fast = {name for name, price in anthropic.items() if "fast" in price.service_tiers}
    assert with_fast == set(ANTHROPIC_FAST)  # the pricing page lists no other model's fast rates
    for name, price in anthropic.items():  # and Priority Tier calls stay at the standard rates
        assert set(price.service_tiers) <= {"fast", "priority"}, name
        if price.service_tiers:
            priority = price.service_tiers["priority"]
            assert priority.in_units == price.in_units, name


def test_a_fast_claude_call_pays_the_fast_rates_and_one_without_them_is_unpriced(builtin: PriceTable) -> None:
    opus = builtin.price_for("anthropic", "anthropic", "claude-opus-5-5")
    sonnet = builtin.price_for("anthropic", "anthropic", "claude-sonnet-4-6")
    assert opus is not None and sonnet is not None
    usage = TokenUsage(
        input_tokens=300_000,
        output_tokens=10_000,
        cached_input_tokens=200_000,
        cache_write_tokens=50_000,
        cache_write_1h_tokens=10_000,
        web_searches=2,
    )

    # standard: 50000 x 4 + 200000 x 0.20 + 40000 x 5 + 10000 x 8 + 10000 x 20 = 720000 per million
    assert cost_of(usage, opus) == Decimal("0.72") + Decimal("0.02")  # and 2 searches at $10 per 1,000
    # fast, its 300k input at the fast rates throughout (no long-context tier):
    # 50000 x 8 + 200000 x 0.40 + 40000 x 10 + 10000 x 16 + 10000 x 40 = 1440000 per million
    assert cost_of(usage._replace(service_tier="fast"), opus) == Decimal("1.44") + Decimal("0.02")
    # Claude Sonnet 4.6 has no fast mode: a response that says so is not priced at its standard rates
    assert cost_of(usage._replace(service_tier="fast"), sonnet) is None
