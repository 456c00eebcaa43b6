"""The CLI's tables: what a terminal shows of any text, lined up in columns."""

from __future__ import annotations

import pytest

from gateway.cli.common import display_width, print_table, table_text


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("gpt-4o", "gpt-4o"),
        ("a b", "a b"),
        ('a"b', 'a"b'),  # only a text that starts with a quote could pass for a quoted one
        ("C:\\x", "C:\\x"),  # unquoted, a backslash is itself
        ("模型-日本語", "模型-日本語"),
        ("gpt-4o\x1b[2J\x1b[31mFAKE", '"gpt-4o\\x1b[2J\\x1b[31mFAKE"'),
        ("two\nlines\r", '"two\\nlines\\r"'),
        ("tab\there", '"tab\\there"'),
        ("\u202eevil", '"\\u202eevil"'),  # a bidirectional override
        ("a\x7fb\x9b", '"a\\x7fb\\x9b"'),  # DEL, and CSI of the C1 controls
        ("zero\u200bwidth", '"zero\\u200bwidth"'),
        ("tag\U000e0041", '"tag\\U000e0041"'),
        ('"quoted"', '"\\"quoted\\""'),
        (" padded", '" padded"'),
        ("padded ", '"padded "'),
        ('back\\slash\x00"', '"back\\\\slash\\x00\\""'),
    ],
)
def test_a_text_is_shown_as_it_is_unless_it_could_mislead_or_control_the_terminal(
    text: str, shown: str
) -> None:
    assert table_text(text) == shown
    assert table_text(text).isprintable()


def test_where_a_dash_means_no_value_a_text_that_is_a_dash_or_empty_is_quoted() -> None:
    assert (table_text("-", null="-"), table_text("", null="-")) == ('"-"', '""')
    assert (table_text("-"), table_text("")) == ("-", "")  # tables that show no value as blank


@pytest.mark.parametrize(
    ("text", "width"),
    [
        ("gpt-4o", 6),
        ("模型-日本語", 11),
        ("\uff46\uff55\uff4c\uff4c", 8),
        ("e\u0301", 1),
        ("", 0),
        ("naïve", 5),
    ],
)
def test_east_asian_wide_characters_take_two_columns_and_combining_marks_none(text: str, width: int) -> None:
    assert display_width(text) == width


def test_columns_line_up_on_a_terminal_and_no_value_is_told_from_a_dash(
    capsys: pytest.CaptureFixture[str],
) -> None:
    print_table(["model", "requests"], [["模型", 1], [None, 2], ["-", 3], ["gpt\x1b", 4]], null="-")

    assert capsys.readouterr().out.split("\n") == [
        "MODEL      REQUESTS",
        "模型       1",
        "-          2",
        '"-"        3',
        '"gpt\\x1b"  4',
        "",
    ]
