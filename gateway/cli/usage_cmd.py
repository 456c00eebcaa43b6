"""`tollgate usage`: tokens and cost from the usage ledger, grouped and filtered."""

from __future__ import annotations

import argparse
import csv
import io
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from gateway.cli.common import CliError, check_tenant_exists, database, print_table, run, settings_of
from gateway.metering.report import (
    DEFAULT_SINCE,
    FIELDS,
    json_bytes,
    page_as_json,
    parse_dimensions,
    parse_instant,
    parse_whole,
    row_values,
)
from gateway.storage.usage import (
    MAX_OFFSET,
    MAX_SNAPSHOT,
    Dimension,
    SumOverflow,
    UsageFilter,
    UsagePage,
    UsageRepository,
    check_filter,
)

DEFAULT_LIMIT = 1000
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # what spreadsheets may read a cell's formula from
MAX_LIMIT = 1_000_000  # groups in one answer: more than a ledger of a million records holds
_TABLE_HEADINGS = (
    "requests",
    "input",
    "output",
    "cached",
    "cache write",
    "reasoning",
    "searches",
    "cost usd",
    "unpriced",
    "estimated",
)

DESCRIPTION = """\
Sum the usage ledger: requests, tokens of each kind, web searches and cost, per group of the
dimensions given to --by, over the calls made in [--since, --until) that match every filter given.

`searches` counts the web searches providers ran for the calls with their server-side search tools
and billed apiece; their price is in the cost.

cost_usd sums the costs known; calls of models without a price (or served in a processing tier
their model has no price for) are counted in `unpriced` (their cost is unknown, not zero).
`estimated` counts calls whose tokens the gateway estimated because the provider reported none (a
stream cut short)."""

EPILOG = f"""\
dimensions (--by): {", ".join(dimension.value for dimension in Dimension)}
  key is the Tollgate key id (key_...); day is the UTC calendar day (YYYY-MM-DD); service_tier is
  the processing tier a call was served and priced in, as the provider reported it (OpenAI's flex,
  priority, fast, ultrafast; Anthropic's priority, and fast for its fast mode; Gemini's flex,
  priority), none for the standard tier.

times (--since, --until):
  a span back from now: 30m, 24h, 7d, 2w
  a date, meaning its midnight UTC: 2026-11-01
  an ISO 8601 instant: 2026-11-01T09:30:00Z, 2026-11-01T10:30:00+01:00 (no zone means UTC)
  --since defaults to {DEFAULT_SINCE}; --until to now, the moment of the report. --until is exclusive:
  --since 2026-11-01 --until 2026-12-01 is the whole of November. The report states the absolute
  [since, until) it used and the ledger position it read up to, --snapshot (in JSON; on stderr
  with the next --offset): page with those, as a span or a missing --until read again later selects
  calls made meanwhile, and a call is recorded when it ends (a stream, minutes after it was made; an
  OpenAI background response, hours after), with the time it was made.

formats (--format):
  table  aligned columns for reading; cost rounded to 6 decimal places; - for no value; a text
         that could be misread (one that is "-" or empty, starts with a quote, starts or ends with a
         space, or holds a control character such as ESC or a line break) is shown in double quotes,
         with backslash escapes: "-", "gpt-4o\\x1b[2J\\n"
  csv    a header row, then one row per group; cost_usd exact; an empty cell for no value; a
         text (tenant, model, ...) starting with =, +, -, @, a tab or a carriage return is written
         after a ' (as OWASP advises), so that no spreadsheet takes it for a formula
  json   {{"group_by": [...], "since": ..., "until": ..., "snapshot": N, "rows": [...],
         "next_offset": N or null}};
         since and until are the absolute window used, as ISO 8601 instants in UTC; counts are
         JSON numbers; cost_usd is a string holding the exact decimal ("12.5", "0.0004")
         so that no JSON parser rounds it through a float; null for no value

Each option is taken once: --tenant acme --tenant globex is refused rather than one of them dropped
(run one report per tenant, or group --by tenant).

At most --limit groups are shown (default {DEFAULT_LIMIT}), in the order of their values; when more
follow, stderr says which --since, --until, --snapshot and --offset show the next ones.

examples:
  tollgate usage                                    cost per tenant, last 30 days
  tollgate usage --by model,day --tenant acme --since 7d
  tollgate usage --by key --tenant acme --since 2026-11-01 --until 2026-12-01
  tollgate usage --by user --tenant acme --team ml --model gpt-4o
  tollgate usage --by tenant,day --since 90d --format csv > usage.csv
  tollgate usage --by provider --since 24h --format json | jq '.rows[]'
  tollgate usage --by model,service_tier --since 7d    flex and priority calls apart"""


def register(commands: Any) -> None:
    usage = commands.add_parser(
        "usage",
        help="report tokens and cost from the usage ledger",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    usage.add_argument(
        "--by",
        action=_Once,
        type=dimensions,
        default=(Dimension.TENANT,),
        metavar="DIM[,DIM...]",
        help="group by these dimensions, in this order (default: tenant)",
    )
    usage.add_argument(
        "--since",
        action=_Once,
        type=_instant,
        default=DEFAULT_SINCE,
        metavar="WHEN",
        help=f"from (inclusive; default: {DEFAULT_SINCE})",
    )
    usage.add_argument(
        "--until", action=_Once, type=_instant, metavar="WHEN", help="to (exclusive; default: now)"
    )
    usage.add_argument(
        "--snapshot",
        action=_Once,
        type=_snapshot,
        metavar="N",
        help="count only the records written by this ledger position, as an earlier page stated it",
    )
    filters = usage.add_argument_group("filters (each keeps only the calls equal to it; once each)")
    for name, what in (
        ("tenant", "tenant id"),
        ("team", "team name"),
        ("user", "user name"),
        ("key", "Tollgate key id (key_...)"),
        ("model", "model name, as the ledger records it"),
        ("provider", "provider name from the configuration"),
    ):
        filters.add_argument(f"--{name}", action=_Once, type=_filter(name), metavar=name.upper(), help=what)
    usage.add_argument(
        "--format", action=_Once, choices=("table", "json", "csv"), default="table", help="(default: table)"
    )
    usage.add_argument(
        "--limit",
        action=_Once,
        type=_limit,
        default=DEFAULT_LIMIT,
        metavar="N",
        help=f"most groups shown (default: {DEFAULT_LIMIT}, at most {MAX_LIMIT})",
    )
    usage.add_argument(
        "--offset",
        action=_Once,
        type=_offset,
        default=0,
        metavar="N",
        help="groups skipped first, for paging (default: 0)",
    )
    usage.set_defaults(handler=_usage)


class _Once(argparse.Action):
    """Stores the option's value, and refuses the option given again, whose first value would be lost."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option: str | None = None,
    ) -> None:
        given: set[str] = namespace.__dict__.setdefault("_options_given", set())
        if self.dest in given:
            raise argparse.ArgumentError(
                self, "given more than once; a report takes one value of each option"
            )
        given.add(self.dest)
        setattr(namespace, self.dest, values)


def dimensions(text: str) -> tuple[Dimension, ...]:
    try:
        return parse_dimensions(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _instant(text: str) -> str:
    """`text`, checked: `_usage` reads it against the one moment of the report."""
    try:
        parse_instant(text, datetime.now(UTC))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _filter(name: str) -> Callable[[str], str]:
    """The type of the `name` filter's option: a text some recorded value may equal."""

    def checked(text: str) -> str:
        try:
            check_filter(name, text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return text

    return checked


def _limit(text: str) -> int:
    try:
        return parse_whole(text, 1, MAX_LIMIT)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _snapshot(text: str) -> int:
    try:
        return parse_whole(text, 0, MAX_SNAPSHOT)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _offset(text: str) -> int:
    try:
        return parse_whole(text, 0, MAX_OFFSET)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _usage(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    now = datetime.now(UTC)  # --until's default, and what spans count back from
    since = parse_instant(args.since, now)
    until = now if args.until is None else parse_instant(args.until, now)
    if since >= until:
        raise CliError("--since must be before --until" + (" (now)" if args.until is None else ""))
    filters = UsageFilter(
        since, until, args.tenant, args.team, args.user, args.key, args.model, args.provider, args.snapshot
    )

    async def go() -> UsagePage:
        async with database(settings, statement_timeout=None) as engine:  # a large ledger takes its time
            try:
                page = await UsageRepository(engine).aggregate(args.by, filters, args.limit, args.offset)
            except SumOverflow as exc:  # the database is up: not the error `main` reports for it
                raise CliError(str(exc)) from None
            if not page.rows and args.offset == 0:  # no usage, or a tenant that is not (a typo)?
                await check_tenant_exists(engine, args.tenant)
            return page

    page = run(go)
    writer = {"table": _write_table, "csv": _write_csv, "json": _write_json}[args.format]
    writer(args.by, filters, page)
    if page.next_offset is not None:  # over the same window, which "7d" or no --until would move
        window = f"--since {since.isoformat()} --until {until.isoformat()} --snapshot {page.snapshot}"
        print(
            f"tollgate: more groups follow; {window} --offset {page.next_offset} shows the next ones",
            file=sys.stderr,
        )
    return 0


def _write_table(group_by: Sequence[Dimension], filters: UsageFilter, page: UsagePage) -> None:
    rows = [
        [
            *row.group.values(),
            *(getattr(row, field) for field in FIELDS[: FIELDS.index("cost_usd")]),
            f"{row.cost_usd:.6f}",
            row.unpriced_requests,
            row.estimated_requests,
        ]
        for row in page.rows
    ]
    print_table([dimension.value for dimension in group_by] + list(_TABLE_HEADINGS), rows, null="-")


def _write_csv(group_by: Sequence[Dimension], filters: UsageFilter, page: UsagePage) -> None:
    # Rows end in "\n". The writer is told "\r\n", the one way to have it quote a text holding a
    # carriage return, which a reader would take for the end of the row; each row's "\r" is cut.
    line = io.StringIO()
    writer = csv.writer(line, lineterminator="\r\n")
    header: list[object] = [*(dimension.value for dimension in group_by), *FIELDS]
    rows = [header]
    rows += ([*(_csv_text(value) for value in row.group.values()), *row_values(row)] for row in page.rows)
    for cells in rows:
        writer.writerow(cells)
        sys.stdout.write(line.getvalue()[:-2] + "\n")
        line.seek(0)
        line.truncate()


def _csv_text(value: str | None) -> str:
    """A text cell no spreadsheet runs: one that would start a formula is quoted with a leading '."""
    if value is None:
        return ""
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


def _write_json(group_by: Sequence[Dimension], filters: UsageFilter, page: UsagePage) -> None:
    document = json_bytes(page_as_json(group_by, filters, page), orjson.OPT_INDENT_2)
    sys.stdout.write(document.decode() + "\n")
