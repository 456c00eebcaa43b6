"""The scale-out mode: the same gateway on PostgreSQL, two replicas sharing one database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from scripts.fake_upstream import FakeUpstream
from tests.support.gateway import GatewayHarness, wait_for_usage_rows
from tests.support.postgres import (
    postgres_admin_url,
    require_postgres,
    set_connections_allowed,
    temporary_database,
)

pytestmark = pytest.mark.postgres


@pytest.fixture
def database_url() -> Iterator[str]:
    """A database of this test's own, dropped afterwards."""
    admin = postgres_admin_url()
    require_postgres(admin)
    with temporary_database(admin, migrated=False) as url:
        yield url


def test_two_replicas_on_one_postgres_database_serve_keys_and_credentials_set_through_either(
    database_url: str, upstream: FakeUpstream, tmp_path: Path
) -> None:
    providers = {"openai": {"type": "openai", "base_url": upstream.url + "/v1"}}
    first = GatewayHarness(tmp_path / "a", providers, database_url=database_url)
    second = GatewayHarness(tmp_path / "b", providers, database_url=database_url)
    second.master_key_path.write_bytes(first.master_key_path.read_bytes())
    first.cli("db", "upgrade")
    first.cli("tenant", "create", "acme")
    second.cli("credential", "set", "--tenant", "acme", "--provider", "openai", stdin="sk-pg-shared-db")
    key = first.create_key("acme")
    upstream.clear()

    answers = []
    try:
        first.start()
        second.start()
        for gateway in (first, second):
            with openai.OpenAI(base_url=f"{gateway.url}/openai/v1", api_key=key, max_retries=0) as api:
                answers.append(
                    api.chat.completions.create(
                        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
                    )
                )
    finally:
        first.stop()
        second.stop()

    assert [answer.choices[0].message.content for answer in answers] == ["Hello from the"] * 2
    assert [r.header("authorization") for r in upstream.requests] == ["Bearer sk-pg-shared-db"] * 2


def test_records_wait_out_a_database_outage_and_reach_the_ledger_when_it_returns(
    database_url: str, upstream: FakeUpstream, tmp_path: Path
) -> None:
    providers = {"openai": {"type": "openai", "base_url": upstream.url + "/v1"}}
    gateway = GatewayHarness(
        tmp_path,
        providers,
        database_url=database_url,
        overrides={
            "auth": {"key_cache_ttl_seconds": 600},
            "credentials": {"cache_ttl_seconds": 600},
            "metering": {"flush_interval_seconds": 0.1, "retry_max_seconds": 0.5},
        },
    )
    gateway.cli("db", "upgrade")
    gateway.cli("tenant", "create", "outage")
    gateway.cli("credential", "set", "--tenant", "outage", "--provider", "openai", stdin="sk-outage")
    key = gateway.create_key("outage")
    admin = postgres_admin_url()
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    gateway.start()
    try:

        def chat(rid: str) -> int:
            return httpx.post(
                gateway.url + "/openai/v1/chat/completions",
                json=body,
                headers={"authorization": f"Bearer {key}", "x-request-id": rid},
            ).status_code

        assert chat("outage-warm") == 200  # the key and the credential are now cached
        wait_for_usage_rows(database_url, "outage-warm", 1)
        set_connections_allowed(admin, database_url, allowed=False)
        try:
            statuses = [chat(f"outage-{n:02d}") for n in range(20)]
            ready_during = httpx.get(gateway.url + "/readyz").status_code
            depth = _ledger_depth(gateway)
        finally:
            set_connections_allowed(admin, database_url, allowed=True)
        rows = wait_for_usage_rows(database_url, "outage-", 21, timeout=30)
    finally:
        gateway.stop()

    assert statuses == [200] * 20
    assert ready_during == 503
    assert depth == 20
    assert len(rows) == 21
    assert "usage ledger write failed; will retry" in gateway.logs()


def _ledger_depth(gateway: GatewayHarness) -> float:
    for line in httpx.get(gateway.url + "/metrics").text.splitlines():
        if line.startswith("tollgate_ledger_queue_depth "):
            return float(line.split()[1])
    raise AssertionError("no ledger depth metric")
