"""What the meter's and the metrics' unit tests share: three providers, the built-in prices, a caller,
a ledger that keeps what it is given, and the context of a chat completion call."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from gateway.auth.keys import Principal
from gateway.context import RequestContext
from gateway.metering.prices import load_price_table
from gateway.providers import build_adapters
from gateway.settings import parse_settings
from gateway.storage.records import UsageRecord

SETTINGS = parse_settings(
    {
        "providers": {
            "openai": {"type": "openai"},
            "claude": {"type": "anthropic"},
            "gemini": {"type": "gemini"},
            "local": {"type": "openai-compatible", "base_url": "http://h:1/v1"},
        }
    }
)
ADAPTERS = build_adapters(SETTINGS.providers)
PRICES = load_price_table(None)
PRINCIPAL = Principal("acme", "key_1", "ml", "ada", "laptop", None, None)


class ListLedger:
    """A usage ledger that keeps every record in a list."""

    def __init__(self) -> None:
        self.records: list[UsageRecord] = []

    def record(self, record: UsageRecord) -> bool:
        self.records.append(record)
        return True


def usage_record(request_id: str = "req-1", **fields: Any) -> UsageRecord:
    """A ledger record of an OpenAI chat call: one token in, one out, unpriced; `fields` replaced."""
    record = UsageRecord(
        created_at=datetime(2026, 11, 26, tzinfo=UTC).timestamp(),
        request_id=request_id,
        tenant_id="acme",
        team=None,
        user=None,
        key_id="key_1",
        provider="openai",
        upstream="api.openai.com",
        model="gpt-4o",
        endpoint="chat.completions",
        status=200,
        streamed=False,
        input_tokens=1,
        output_tokens=1,
        cached_input_tokens=0,
        cache_write_tokens=0,
        reasoning_tokens=0,
        cost_usd=None,
        duration_ms=1.0,
        ttfb_ms=None,
        estimated=False,
    )
    return record._replace(**fields)


def chat_call(request_id: str = "req-1", **fields: Any) -> RequestContext:
    """The context of a `POST /v1/chat/completions` to the `openai` provider, `fields` set on it."""
    return RequestContext(
        request_id=request_id,
        started=time.perf_counter(),
        method="POST",
        provider=ADAPTERS["openai"],
        raw_path=b"/v1/chat/completions",
        query_string=b"",
        headers=[],
        receive=None,  # type: ignore[arg-type]
        path="/v1/chat/completions",
        **fields,
    )
