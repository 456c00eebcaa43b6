"""During a database outage, /metrics counts the calls the key and credential caches bridged with values
past their TTL (`tollgate_stale_served_total`), so an operator sees how much of the traffic ran on them."""

from __future__ import annotations

import time

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.integration import test_database_outage
from tests.integration.test_database_outage import TTL, Outage, wait_for

outage = test_database_outage.outage  # the same gateway, its database made unreachable on demand


def stale_served(gateway_url: str) -> dict[str, float]:
    families = text_string_to_metric_families(httpx.get(gateway_url + "/metrics", timeout=10).text)
    return {
        sample.labels["cache"]: sample.value
        for family in families
        if family.name == "tollgate_stale_served"
        for sample in family.samples
        if sample.name == "tollgate_stale_served_total"
    }


def test_calls_served_with_stale_keys_and_credentials_are_counted_by_cache(outage: Outage) -> None:
    assert outage.call(outage.used).status_code == 200
    assert stale_served(outage.gateway.url) == {}

    outage.make_database_unreachable()
    broken_at = time.monotonic()
    wait_for("a key never seen is 503", lambda: outage.call(outage.unseen).status_code == 503)
    wait_for("several cache TTLs have passed", lambda: time.monotonic() > broken_at + 4 * TTL)
    before = stale_served(outage.gateway.url)
    during = [outage.call(outage.used) for _ in range(3)]
    after = stale_served(outage.gateway.url)

    assert [response.status_code for response in during] == [200, 200, 200]
    assert after["keys"] - before.get("keys", 0) == 3
    assert after["credentials"] - before.get("credentials", 0) == 3
