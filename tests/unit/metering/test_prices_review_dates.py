"""Review of effective dates: a price applies from its `effective_date` on, never before, and a model may
list several prices, each applying until the next one takes effect."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from gateway.metering.prices import OTHER_MODEL, PriceTable, cost_of, load_price_table, parse_price_table
from gateway.metering.usage import TokenUsage
from gateway.settings import ConfigError


def entry(input: str, effective: str, **rates: object) -> dict[str, object]:
    return {"input": input, "output": "10", "effective_date": effective, **rates}


def table(sections: dict[str, dict[str, object]]) -> PriceTable:
    return parse_price_table(sections, "test")


def input_rate(prices: PriceTable, model: str, on: date, section: str = "openai") -> Decimal | None:
    found = prices.price_for(section, "openai", model, on=on)
    return None if found is None else found.input


def at_utc(day: date, hour: int = 0, minute: int = 0) -> float:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC).timestamp()


def test_a_price_applies_from_its_effective_date_on_and_not_before() -> None:
    prices = table({"openai": {"m": entry("2", "2027-01-01")}})

    assert input_rate(prices, "m", date(2026, 12, 31)) is None  # not in force yet: unpriced, never 2
    assert input_rate(prices, "m", date(2027, 1, 1)) == Decimal("2")


def test_a_model_s_dated_prices_each_apply_until_the_next_one_takes_effect() -> None:
    prices = table(
        {"openai": {"m": [entry("3", "2026-03-01"), entry("1", "2025-01-01"), entry("2", "2026-01-01")]}}
    )

    assert input_rate(prices, "m", date(2024, 12, 31)) is None
    assert input_rate(prices, "m", date(2025, 1, 1)) == Decimal("1")
    assert input_rate(prices, "m", date(2025, 12, 31)) == Decimal("1")
    assert input_rate(prices, "m", date(2026, 1, 1)) == Decimal("2")
    assert input_rate(prices, "m", date(2026, 2, 28)) == Decimal("2")
    assert input_rate(prices, "m", date(2026, 3, 1)) == Decimal("3")
    assert input_rate(prices, "m", date(2030, 1, 1)) == Decimal("3")


def test_an_override_dated_in_the_future_leaves_the_built_in_price_in_force_until_then(
    tmp_path: Path,
) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text("openai:\n  gpt-4o: {input: 1.00, output: 4.00, effective_date: 2099-01-01}\n")

    prices = load_price_table(path)

    assert input_rate(prices, "gpt-4o-2024-08-06", date(2098, 12, 31)) == Decimal("2.50")
    assert input_rate(prices, "gpt-4o-2024-08-06", date(2099, 1, 1)) == Decimal("1.00")


def test_an_override_replaces_the_built_in_prices_from_its_first_date_on_newer_ones_included() -> None:
    builtin = table({"openai": {"m": [entry("5", "2024-01-01"), entry("6", "2027-01-01")]}})
    negotiated = table({"openai": {"m": entry("4", "2026-01-01")}})

    prices = builtin.merged_with(negotiated)

    assert input_rate(prices, "m", date(2025, 6, 1)) == Decimal("5")  # before the override's date
    assert input_rate(prices, "m", date(2026, 6, 1)) == Decimal("4")
    assert input_rate(prices, "m", date(2027, 6, 1)) == Decimal("4")  # the deployment's price still


def test_an_entry_not_in_force_yet_is_passed_over_for_the_next_name_or_section() -> None:
    prices = table(
        {
            "openai": {"m": entry("2", "2025-01-01"), "m-2025-05-01": entry("9", "2027-01-01")},
            "azure": {"m": entry("1", "2027-01-01")},
        }
    )

    assert input_rate(prices, "m-2025-05-01", date(2026, 6, 1)) == Decimal("2")
    assert input_rate(prices, "m", date(2026, 6, 1), section="azure") == Decimal("2")
    assert input_rate(prices, "m", date(2027, 1, 1), section="azure") == Decimal("1")


def test_the_table_s_own_entry_for_a_model_is_its_newest_price() -> None:
    prices = table({"openai": {"m": [entry("1", "2025-01-01"), entry("2", "2026-01-01")]}})

    assert prices.sections["openai"]["m"].input == Decimal("2")


def test_without_a_day_a_price_is_looked_up_for_the_current_utc_day_even_once_it_has_changed() -> None:
    now = [at_utc(date(2026, 12, 31), 23, 59)]
    prices = dataclasses.replace(
        table({"openai": {"m": [entry("1", "2025-01-01"), entry("2", "2027-01-01")]}}), clock=lambda: now[0]
    )

    before = prices.price_for("openai", "openai", "m")
    now[0] = at_utc(date(2027, 1, 1), 0, 1)
    after = prices.price_for("openai", "openai", "m")

    assert before is not None and before.input == Decimal("1")
    assert after is not None and after.input == Decimal("2")


def test_a_model_whose_only_price_is_not_in_force_yet_is_labelled_other() -> None:
    now = at_utc(date(2026, 12, 3), 12)
    prices = dataclasses.replace(table({"openai": {"m": entry("1", "2027-01-01")}}), clock=lambda: now)

    assert prices.model_label("openai", "openai", "m") == OTHER_MODEL
    assert prices.price_for("openai", "openai", "m") is None


@pytest.mark.parametrize(
    ("prices", "path", "complaint"),
    [
        (
            [entry("1", "2026-01-01"), entry("2", "2026-01-01")],
            "openai.m",
            "two prices take effect on 2026-01-01",
        ),
        ([], "openai.m", "List should have at least 1 item after validation, not 0"),
        ([entry("1", "2026-01-01"), entry("-2", "2027-01-01")], "openai.m[1].input", "greater than or equal"),
        ("cheap", "openai.m", "a price (input, output, effective_date ...) or a list of them is expected"),
    ],
)
def test_a_malformed_list_of_dated_prices_is_refused_with_its_key_path(
    prices: object, path: str, complaint: str
) -> None:
    with pytest.raises(ConfigError) as error:
        parse_price_table({"openai": {"m": prices}}, "test")

    problems = {problem.path: problem.message for problem in error.value.problems}
    assert list(problems) == [path]
    assert complaint in problems[path]


def test_an_error_in_a_single_price_keeps_its_plain_key_path() -> None:
    with pytest.raises(ConfigError) as error:
        parse_price_table(
            {"openai": {"m": {"input": "-1", "output": "1", "effective_date": "2026-01-01"}}}, "t"
        )

    assert [(problem.path, problem.message) for problem in error.value.problems] == [
        ("openai.m.input", "Input should be greater than or equal to 0")
    ]


def test_built_in_gpt_6_2_sol_ultrafast_is_3x_through_2027_02_28_and_6x_from_2027_03_01() -> None:
    # https://developers.openai.com/api/docs/models/gpt-6.2-sol: "Ultrafast costs 3 times the Standard
    # rate through February 28, 2027, and 6 times the Standard rate starting March 1, 2027"
    builtin = load_price_table(None)
    usage = TokenUsage(input_tokens=200_000, output_tokens=10_000, service_tier="ultrafast")

    before = builtin.price_for("openai", "openai", "gpt-6.2-sol", on=date(2027, 2, 28))
    after = builtin.price_for("openai", "openai", "gpt-6.2-sol", on=date(2027, 3, 1))

    assert before is not None and after is not None
    assert cost_of(usage, before) == Decimal("1.5")  # 200000 x 6 + 10000 x 30 per million
    assert cost_of(usage, after) == Decimal("3.0")  # 200000 x 12 + 10000 x 60 per million
    assert cost_of(usage._replace(service_tier=None), after) == cost_of(
        usage._replace(service_tier=None), before
    )
    assert cost_of(usage._replace(service_tier="fast"), after) == cost_of(
        usage._replace(service_tier="fast"), before
    )
    assert cost_of(usage._replace(input_tokens=272_001), after) is None  # no long Ultrafast rates either
