"""The usage report's documents, as `tollgate usage` and `GET /admin/usage` write them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import orjson

from gateway.metering.report import json_bytes, page_as_json
from gateway.storage.usage import Dimension, UsageFilter, UsagePage, UsageRow

SINCE = datetime(2026, 3, 1, tzinfo=UTC)


def row(tenant: str | None, **counts: int) -> UsageRow:
    fields = {"requests": 1, "input_tokens": 0, "output_tokens": 0, "cached_input_tokens": 0}
    fields |= {"cache_write_tokens": 0, "reasoning_tokens": 0, "web_searches": 0}
    fields |= counts
    return UsageRow(
        {Dimension.TENANT: tenant},
        **fields,
        cost_usd=Decimal("0.5"),
        unpriced_requests=0,
        estimated_requests=0,
    )


def test_counts_past_64_bits_are_written_as_exact_json_numbers() -> None:
    page = UsagePage([row("acme", input_tokens=3 * (2**63 - 1)), row(None, output_tokens=2**64)], None)

    document = json.loads(json_bytes(page_as_json([Dimension.TENANT], UsageFilter(SINCE), page)))

    assert [(r["tenant"], r["input_tokens"], r["output_tokens"]) for r in document["rows"]] == [
        ("acme", 3 * (2**63 - 1), 0),
        (None, 0, 2**64),
    ]


def test_a_document_of_ordinary_counts_is_orjsons_own() -> None:
    page = UsagePage([row("acme", input_tokens=2**64 - 1)], 1)
    document = page_as_json([Dimension.TENANT], UsageFilter(SINCE), page)

    assert json_bytes(document, orjson.OPT_INDENT_2) == orjson.dumps(document, option=orjson.OPT_INDENT_2)
