"""Usage reports shared by `tollgate usage` and `GET /admin/usage`: parsing the query, shaping the answer."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson

from gateway.storage.usage import SUMMED, Dimension, UsageFilter, UsagePage, UsageRow

DEFAULT_SINCE = "30d"
FIELDS = ("requests", *SUMMED, "cost_usd", "unpriced_requests", "estimated_requests")
# ASCII digits, whole (fullmatch): not "7d\n", nor int()'s "1_000", " 1" or other scripts' digits.
_SPAN = re.compile(r"([0-9]+)([mhdw])")
_WHOLE = re.compile(r"-?[0-9]+")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_dimensions(text: str) -> tuple[Dimension, ...]:
    """`model,day` as dimensions; ValueError names the valid ones."""
    names = [name.strip() for name in text.split(",")]
    valid = ", ".join(dimension.value for dimension in Dimension)
    try:
        chosen = tuple(Dimension(name) for name in names)
    except ValueError:
        raise ValueError(f"{text!r}: each dimension must be one of {valid}") from None
    if len(set(chosen)) != len(chosen):
        raise ValueError(f"{text!r} names a dimension twice")
    return chosen


def parse_whole(text: str, low: int, high: int) -> int:
    """A whole number of `low..high` written in decimal digits; ValueError says why not."""
    if not _WHOLE.fullmatch(text):
        raise ValueError(f"{text[:40]!r} is not a whole number")
    if len(text) > 40 or not low <= int(text) <= high:  # int() refuses 4,300 digits and more
        raise ValueError(f"must be {low}..{high}")
    return int(text)


def parse_instant(text: str, now: datetime) -> datetime:
    """A span back from `now` (7d), a date (its midnight UTC) or an ISO 8601 instant (UTC unless zoned).

    The result is in UTC.
    """
    span = _SPAN.fullmatch(text)
    try:
        if span:
            return now - timedelta(**{_UNITS[span.group(2)]: int(span.group(1))})
        try:
            instant = datetime.fromisoformat(text)  # a date alone is its midnight
        except ValueError:
            raise ValueError(
                f"{text!r} is not a span (7d, 24h, 30m, 2w), a date or an ISO 8601 instant"
            ) from None
        return instant.astimezone(UTC) if instant.tzinfo is not None else instant.replace(tzinfo=UTC)
    except OverflowError:  # 999999999d, or a zoned instant at the edge of the calendar
        raise ValueError(f"{text!r} is out of the range of dates") from None


def exact(cost: Decimal) -> str:
    """The exact decimal, without trailing zeros or exponent: 0.3000 -> 0.3, 1E-10 -> 0.0000000001."""
    return format(cost.normalize(), "f")


def row_values(row: UsageRow) -> list[object]:
    """The row's numbers in `FIELDS` order, the cost as an exact decimal string."""
    return [exact(row.cost_usd) if field == "cost_usd" else getattr(row, field) for field in FIELDS]


def json_bytes(document: dict[str, Any], option: int = 0) -> bytes:
    """`page_as_json`'s document as JSON. Its counts stay JSON numbers past 64 bits, which orjson
    refuses: PostgreSQL sums without overflowing, and a ledger may hold records written before their
    counts were bounded."""
    try:
        return orjson.dumps(document, option=option)
    except orjson.JSONEncodeError:
        rows = [{name: _json_number(value) for name, value in row.items()} for row in document["rows"]]
        return orjson.dumps({**document, "rows": rows}, option=option)


def _json_number(value: object) -> object:
    if type(value) is int and not -(2**63) <= value < 2**64:
        return orjson.Fragment(str(value).encode())
    return value


def page_as_json(group_by: Sequence[Dimension], filters: UsageFilter, page: UsagePage) -> dict[str, Any]:
    """The JSON document both the CLI (`--format json`) and the admin API answer with."""
    return {
        "group_by": [dimension.value for dimension in group_by],
        "since": filters.since,
        "until": filters.until,
        "snapshot": page.snapshot,
        "rows": [
            {**{d.value: v for d, v in row.group.items()}, **dict(zip(FIELDS, row_values(row), strict=True))}
            for row in page.rows
        ],
        "next_offset": page.next_offset,
    }
