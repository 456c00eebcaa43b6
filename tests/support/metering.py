"""What the meter's and the metrics' unit tests share: three providers, the built-in prices, a caller,
a ledger that keeps what it is given."""

from __future__ import annotations

from gateway.auth.keys import Principal
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
