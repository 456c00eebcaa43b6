"""Review of how a deployment's prices file is read: what it says twice, and rates no price can be."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.metering.prices import load_price_table
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
