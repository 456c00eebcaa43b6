"""One structured access-log line per request, carrying the request id the caller sees."""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.integration.conftest import World

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def access_record(world: World, request_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for record in world.gateway.access_records():
            if record["request_id"] == request_id:
                return record
        time.sleep(0.05)
    raise AssertionError(f"no access-log line for {request_id}")


def test_a_proxied_request_is_logged_once_with_who_what_and_how_long(fresh: World) -> None:
    response = httpx.post(
        fresh.url + "/openai/v1/chat/completions",
        json=CHAT,
        headers={"authorization": f"Bearer {fresh.keys['acme-restricted']}", "x-request-id": "obs-test-1"},
    )

    record = access_record(fresh, "obs-test-1")

    assert response.headers["x-request-id"] == "obs-test-1"
    assert record["tenant"] == "acme"
    assert record["key_id"].startswith("key_")
    assert record["provider"] == "openai"
    assert record["path"] == "/v1/chat/completions"
    assert record["status"] == 200
    assert record["upstream_ms"] > 0 and record["total_ms"] >= record["upstream_ms"]
    assert record["input_tokens"] > 0 and record["output_tokens"] == 3 and record["cost_usd"]
    assert [r["request_id"] for r in fresh.gateway.access_records()].count("obs-test-1") == 1


def test_the_providers_own_request_id_is_logged_beside_the_gateways(fresh: World) -> None:
    """What an operator quotes to the provider's support, found from the gateway's own id."""
    httpx.post(
        fresh.url + "/openai/v1/chat/completions",
        json=CHAT,
        headers={
            "authorization": f"Bearer {fresh.keys['acme-restricted']}",
            "x-request-id": "obs-upstream-id",
            "x-fake-request-id": "req_0123abcDEF",
        },
    )

    assert access_record(fresh, "obs-upstream-id")["upstream_request_id"] == "req_0123abcDEF"


def test_a_request_whose_provider_gave_no_id_logs_none(fresh: World) -> None:
    httpx.post(
        fresh.url + "/openai/v1/chat/completions",
        json=CHAT,
        headers={"authorization": f"Bearer {fresh.keys['acme-restricted']}", "x-request-id": "obs-no-id"},
    )

    assert "upstream_request_id" not in access_record(fresh, "obs-no-id")


def test_a_refused_request_is_logged_with_its_error_code(fresh: World) -> None:
    response = httpx.post(
        fresh.url + "/anthropic/v1/messages", json={}, headers={"x-request-id": "obs-test-2"}
    )

    record = access_record(fresh, "obs-test-2")

    assert response.status_code == 401
    assert record["status"] == 401
    assert record["error"] == "missing_api_key"
    assert record["tenant"] is None and record["upstream_ms"] is None


def test_a_caller_that_disconnects_mid_stream_cancels_the_upstream_request(fresh: World) -> None:
    body = {**CHAT, "stream": True}
    headers = {
        "authorization": f"Bearer {fresh.keys['acme']}",
        "x-request-id": "obs-test-3",
        "x-fake-chunks": "100",
        "x-fake-chunk-delay-ms": "50",
    }

    with httpx.stream(
        "POST", fresh.url + "/openai/v1/chat/completions", json=body, headers=headers
    ) as response:
        lines = response.iter_lines()
        first = next(line for line in lines if line.startswith("data: "))
    record = access_record(fresh, "obs-test-3")

    assert first.startswith("data: {")
    assert record["status"] == 499
    assert record["client_disconnected"] is True
    deadline = time.monotonic() + 5
    while fresh.upstream.interrupted < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fresh.upstream.interrupted == 1
