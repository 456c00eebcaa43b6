"""What the meter's and the metrics' unit tests share: three providers, the built-in prices, a caller,
a ledger that keeps what it is given, and the context of a chat completion call."""

from __future__ import annotations

import time
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
