"""Review of how a deployment's prices file is read: what it says twice, and rates no price can be."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from gateway.metering.prices import cost_of, load_price_table
from gateway.metering.usage import TokenUsage
from gateway.settings import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "prices.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        (  # a model listed twice: the second would silently replace the first
            "openai:\n"
            "  gpt-4o: {input: 2.00, output: 8.00, effective_date: 2026-01-01}\n"
            "  gpt-4o: {input: 9.00, output: 9.00, effective_date: 2026-01-01}\n",
            r"invalid YAML: line 3, column 3: the key 'gpt-4o' is given twice",
        ),
        (  # a rate given twice in one entry
            "openai:\n  gpt-4o: {input: 2.00, output: 8.00, input: 0.20, effective_date: 2026-01-01}\n",
            r"invalid YAML: line 2, column 39: the key 'input' is given twice",
        ),
        (  # a section given twice: the second would drop every model of the first
            "azure:\n  gpt-4o: {input: 2, output: 8, effective_date: 2026-01-01}\n"
            "azure:\n  gpt-4.1: {input: 2, output: 8, effective_date: 2026-01-01}\n",
            r"invalid YAML: line 3, column 1: the key 'azure' is given twice",
        ),
    ],
)
def test_a_key_given_twice_is_refused_not_the_last_one_silently_kept(
    tmp_path: Path, text: str, complaint: str
) -> None:
    with pytest.raises(ConfigError, match=complaint):
        load_price_table(write(tmp_path, text))


def test_anchors_aliases_and_merge_keys_still_read_as_yaml_means_them(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "local:\n"
        "  base: &base {input: 1.00, output: 2.00, effective_date: 2026-01-01}\n"
        "  same: *base\n"
        "  cheaper:\n"
        "    <<: *base\n"
        "    input: 0.50\n",
    )

    models = load_price_table(path).sections["local"]

    assert models["same"] == models["base"]
    assert (str(models["cheaper"].input), str(models["cheaper"].output)) == ("0.50", "2.00")


def test_a_key_that_is_no_name_is_refused_as_invalid_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"invalid YAML: .*unhashable key"):
        load_price_table(
            write(tmp_path, "openai:\n  [gpt-4o]: {input: 1, output: 1, effective_date: 2026-01-01}\n")
        )


@pytest.mark.parametrize(
    ("rates", "path", "complaint"),
    [
        ("input: 1e400, output: 1", "input", "less than or equal to 10000"),  # a typo, not a price
        ("input: 25000, output: 1", "input", "less than or equal to 10000"),  # $0.025 a token
        ("input: 1, output: 0.00000000001", "output", "no more than 10 decimal places"),
        ("input: 1e-100000, output: 1", "input", "no more than 10 decimal places"),  # slowed every call
        ("input: 1, output: 1, web_search: 50000", "web_search", "less than or equal to 10000"),
        (
            "input: 1, output: 1, service_tiers: {priority: {input: 1, output: 99999}}",
            "service_tiers.priority.output",
            "less than or equal to 10000",
        ),
        ("input: 1, output: 1, inference_geo: {us: 11}", "inference_geo.us", "less than or equal to 10"),
        ("input: 1, output: 1, inference_geo: {us: 1.0000001}", "inference_geo.us", "no more than 6 decimal"),
    ],
)
def test_a_rate_no_price_can_be_is_refused_at_load_with_its_key_path(
    tmp_path: Path, rates: str, path: str, complaint: str
) -> None:
    with pytest.raises(ConfigError) as error:
        load_price_table(write(tmp_path, f"openai:\n  m: {{{rates}, effective_date: 2026-01-01}}\n"))

    problems = {problem.path: problem.message for problem in error.value.problems}
    assert list(problems) == [f"openai.m.{path}"]
    assert complaint in problems[f"openai.m.{path}"]


def test_the_largest_and_finest_rates_and_geo_factors_are_accepted_and_priced_exactly(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "openai:\n  m: {input: 10000, cached_input: 0.0000000001, output: 9999.9999999999,"
        " effective_date: 2026-01-01, inference_geo: {us: 1.099999}}\n",
    )
    price = load_price_table(path).sections["openai"]["m"]
    usage = TokenUsage(3_000_000, 1_000_000, cached_input_tokens=2_000_000, inference_geo="us")

    # (1M x 10000 + 2M x 0.0000000001 + 1M x 9999.9999999999) / 1M, times 1.099999
    assert cost_of(usage, price) == Decimal("20000.0000000001") * Decimal("1.099999")
