"""A database outage longer than the key cache TTL: keys and credentials found before keep working (stale
if error), a key never seen gets 503 in the caller's dialect, and the gateway says so once in its log."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from scripts.fake_upstream import FakeUpstream
from tests.support.gateway import GatewayHarness

SECRET = "sk-ant-outage-0001"
TTL = 0.3  # both caches: the outage below outlasts it many times over
MESSAGE = {"model": "claude-sonnet-5-5", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}


@dataclass(frozen=True)
class Outage:
    gateway: GatewayHarness
    used: str  # a key used just before the database becomes unreachable
    unseen: str  # a valid key this gateway has never looked up

    def call(self, key: str) -> httpx.Response:
        return httpx.post(
            self.gateway.url + "/anthropic/v1/messages",
            json=MESSAGE,
            headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
            timeout=30,
        )

    def make_database_unreachable(self) -> None:
        """Overwrite the SQLite file (and its write-ahead log) with what is not a database: every read,
        through a pooled connection or a new one, then fails as the database's does when unusable."""
        main = Path(self.gateway.effective_database_url.removeprefix("sqlite:///"))
        for path in (main, Path(f"{main}-wal")):
            if path.exists():
                path.write_bytes(b"this is not a SQLite database" * 200)


@pytest.fixture
def outage(upstream: FakeUpstream, tmp_path: Path) -> Iterator[Outage]:
    gateway = GatewayHarness(
        tmp_path,
        {"anthropic": {"type": "anthropic", "base_url": upstream.url}},
        overrides={
            "auth": {"key_cache_ttl_seconds": TTL},
            "credentials": {"cache_ttl_seconds": TTL},
            "metering": {"shutdown_grace_seconds": 0.5},  # the ledger cannot be written: do not wait on it
        },
    )
    gateway.cli("db", "upgrade")
    gateway.cli("tenant", "create", "acme")
    gateway.cli("credential", "set", "--tenant", "acme", "--provider", "anthropic", stdin=SECRET)
    used, unseen = gateway.create_key("acme"), gateway.create_key("acme")
    gateway.start()
    try:
        yield Outage(gateway, used, unseen)
    finally:
        gateway.stop()


def wait_for(condition: str, check: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout}s: {condition}")


def test_a_key_used_before_an_outage_keeps_working_past_its_ttl_and_a_key_never_seen_gets_503(
    outage: Outage,
) -> None:
    assert outage.call(outage.used).status_code == 200

    outage.make_database_unreachable()
    broken_at = time.monotonic()
    wait_for("a key never seen is 503", lambda: outage.call(outage.unseen).status_code == 503)
    wait_for("several key cache TTLs have passed", lambda: time.monotonic() > broken_at + 4 * TTL)
    during = [outage.call(outage.used) for _ in range(3)]
    unseen = outage.call(outage.unseen)

    assert [response.status_code for response in during] == [200, 200, 200]
    assert unseen.status_code == 503
    assert unseen.json()["type"] == "error"
    assert unseen.json()["error"]["type"] == "overloaded_error"
    assert "unavailable" in unseen.json()["error"]["message"]
    warnings = [
        record["msg"]
        for record in outage.gateway.log_records()
        if record.get("logger") == "tollgate.cache" and "stale" in record["msg"]
    ]
    assert any("Tollgate keys" in message for message in warnings)
    assert outage.used not in outage.gateway.logs()
    assert SECRET not in outage.gateway.logs()
