"""Reading the numbers: the admin usage endpoint (closed by default, admin token only) and /metrics."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from scripts.fake_upstream import FakeUpstream
from tests.integration.conftest import ADMIN_TOKEN, World
from tests.support.gateway import GatewayHarness, wait_for_usage_rows, wait_until

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def chat(world: World, tenant: str, rid: str) -> None:
    response = httpx.post(
        world.url + "/openai/v1/chat/completions",
        json=CHAT,
        headers={"authorization": f"Bearer {world.keys[tenant]}", "x-request-id": rid},
    )
    assert response.status_code == 200


def admin_get(world: World, query: str, token: str = ADMIN_TOKEN) -> httpx.Response:
    return httpx.get(world.url + "/admin/usage" + query, headers={"authorization": f"Bearer {token}"})


def test_the_admin_token_reads_usage_grouped_filtered_and_paged(world: World) -> None:
    for n in range(3):
        chat(world, "globex", f"admin-globex-{n}")
    chat(world, "initech", "admin-initech-0")
    wait_for_usage_rows(world.gateway.effective_database_url, "admin-", 4)

    by_tenant = admin_get(world, "?by=tenant&since=1h&tenant=globex")
    by_key = admin_get(world, "?by=tenant,key&since=1h&limit=1")

    assert by_tenant.status_code == 200
    [row] = by_tenant.json()["rows"]
    assert row["tenant"] == "globex" and row["requests"] >= 3
    assert row["input_tokens"] > 0 and isinstance(row["cost_usd"], str)
    assert len(by_key.json()["rows"]) == 1 and by_key.json()["next_offset"] == 1


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), ({"authorization": "Bearer wrong-admin-token"}, 401), ({"authorization": "Basic abc"}, 401)],
)
def test_the_admin_api_refuses_anything_but_the_admin_token(
    world: World, headers: dict[str, str], status: int
) -> None:
    response = httpx.get(world.url + "/admin/usage", headers=headers)

    assert response.status_code == status
    assert response.json()["error"]["type"] == "authentication_error"


def test_a_tenants_key_reads_no_usage_not_even_its_own(world: World) -> None:
    for query in ("?tenant=globex", "?tenant=acme", ""):
        response = admin_get(world, query, token=world.keys["acme"])
        assert response.status_code == 403
        assert "rows" not in response.text


@pytest.mark.parametrize(
    "query",
    [
        "?by=colour",
        "?since=yesterday",
        "?limit=0",
        "?tenant_id=acme",
        "?since=999999999d",  # past the calendar
        "?since=9999-12-31T23:59:59-05:00",
        "?offset=" + "9" * 30,  # past what a database binds
        "?tenant=%00",  # a NUL, which no recorded value holds (PostgreSQL would refuse it)
    ],
)
def test_bad_admin_queries_are_400_with_a_json_error(world: World, query: str) -> None:
    response = admin_get(world, query)

    assert response.status_code == 400
    assert response.json()["error"]["message"]


def test_the_admin_api_takes_gets_only_and_says_so_in_json(world: World) -> None:
    headers = {"authorization": f"Bearer {ADMIN_TOKEN}"}

    posted = httpx.post(world.url + "/admin/usage", headers=headers)
    anonymous = httpx.delete(world.url + "/admin/usage")

    assert posted.status_code == 405 and posted.json()["error"]["message"]
    assert posted.headers["allow"] == "GET, HEAD"
    assert anonymous.status_code == 401  # the token first: no method is told to a stranger


def test_the_admin_api_is_closed_when_no_token_is_configured(tmp_path: object) -> None:
    from pathlib import Path

    gateway = GatewayHarness(Path(str(tmp_path)), {"openai": {"type": "openai"}})
    gateway.cli("db", "upgrade")
    gateway.start()
    try:
        responses = [
            httpx.request(method, gateway.url + "/admin/usage", headers={"authorization": f"Bearer {token}"})
            for token in ("anything", ADMIN_TOKEN)
            for method in ("GET", "POST", "DELETE")
        ]
    finally:
        gateway.stop()

    assert [response.status_code for response in responses] == [404] * 6
    assert all(response.headers["content-type"] == "application/json" for response in responses)


def test_metrics_expose_requests_latency_tokens_cost_and_the_ledger_queue(world: World) -> None:
    chat(world, "acme", "metrics-0")
    wait_for_usage_rows(world.gateway.effective_database_url, "metrics-0", 1)

    text = httpx.get(world.url + "/metrics").text

    assert 'tollgate_requests_total{model="gpt-4o-mini",provider="openai",status="200"}' in text
    assert 'tollgate_tokens_total{kind="input",model="gpt-4o-mini",provider="openai"}' in text
    assert 'tollgate_cost_usd_total{model="gpt-4o-mini",provider="openai"}' in text
    assert "tollgate_request_duration_seconds_bucket" in text
    assert "tollgate_time_to_first_byte_seconds_bucket" in text
    assert "tollgate_ledger_queue_depth" in text
    assert "key_" not in text and "acme" not in text


def test_every_scrape_of_a_server_with_several_workers_counts_every_workers_requests(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    gateway = GatewayHarness(
        tmp_path / "gateway",
        {"openai": {"type": "openai", "base_url": upstream.url + "/v1"}},
        overrides={"server": {"workers": 2}},
        environment={"TMPDIR": str(temporary)},
    )
    gateway.cli("db", "upgrade")
    gateway.cli("tenant", "create", "acme")
    gateway.cli("credential", "set", "--tenant", "acme", "--provider", "openai", stdin="sk-workers-0001")
    key = gateway.create_key("acme")
    gateway.start()
    try:
        asyncio.run(_chats_on_fresh_connections(gateway.url, key, 40))
        # each worker publishes every `PUBLISH_INTERVAL_SECONDS`, when its event loop gets to it: wait for
        # both to have published since their last call, not for a pause a busy machine may not honour
        per_worker = wait_until(lambda: _published_counts(temporary, 40)) or _counts_per_worker(temporary)
        scrapes = [_requests_counted(httpx.get(gateway.url + "/metrics").text) for _ in range(20)]
    finally:
        gateway.stop()

    assert len(per_worker) == 2 and sum(per_worker) == 40
    assert scrapes == [40.0] * 20
    assert list(temporary.iterdir()) == []  # the shared directory goes with the server


async def _chats_on_fresh_connections(url: str, key: str, calls: int) -> None:
    async def one(n: int) -> None:
        async with httpx.AsyncClient() as client:  # a connection of its own: either worker may take it
            response = await client.post(
                url + "/openai/v1/chat/completions",
                json=CHAT,
                headers={"authorization": f"Bearer {key}", "x-request-id": f"workers-{n}"},
            )
            assert response.status_code == 200

    await asyncio.gather(*(one(n) for n in range(calls)))


def _counts_per_worker(temporary: Path) -> list[int]:
    """The requests each worker's last published file counts."""
    shared = temporary.glob("tollgate-metrics-*/*.json")
    return [_requests_counted_in(json.loads(file.read_bytes())) for file in shared]


def _published_counts(temporary: Path, calls: int) -> list[int] | None:
    """The counts of two workers' files once they add up to `calls`, else None."""
    per_worker = _counts_per_worker(temporary)
    return per_worker if len(per_worker) == 2 and sum(per_worker) == calls else None


def _requests_counted(exposition: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(exposition)
        if family.name == "tollgate_requests"
        for sample in family.samples
        if sample.name == "tollgate_requests_total"
    )


def _requests_counted_in(published: dict[str, object]) -> int:
    providers = published["providers"]
    assert isinstance(providers, dict)
    return sum(
        count
        for provider in providers.values()
        for model in provider["models"].values()
        for count in model["requests"].values()
    )
