"""OpenAI background responses through a running gateway: the call that starts one is recorded once the
response ends, with the usage the provider reports then, however the caller learns of its end."""

from __future__ import annotations

import itertools
import signal
import time
from decimal import Decimal
from pathlib import Path

import httpx
import openai

from gateway.metering.prices import cost_of, load_price_table
from gateway.metering.usage import TokenUsage
from scripts.fake_upstream import FakeUpstream
from tests.integration.conftest import CREDENTIALS, World
from tests.support.gateway import GatewayHarness, usage_rows, wait_for_usage_rows

PRICES = load_price_table(None)
_numbers = itertools.count()
RUNS_MS = "300"  # how long the fake upstream's background responses run


def client(world: World) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{world.url}/openai/v1", api_key=world.keys["acme"], max_retries=0)


def reported(usage: openai.types.responses.ResponseUsage) -> TokenUsage:
    return TokenUsage(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cached_input_tokens=usage.input_tokens_details.cached_tokens,
        reasoning_tokens=usage.output_tokens_details.reasoning_tokens,
    )


def test_a_background_response_is_recorded_when_it_ends_with_the_usage_it_reports(fresh: World) -> None:
    number = next(_numbers)
    started, polled = f"bg-start-{number}", f"bg-poll-{number}"
    with client(fresh) as api:
        response = api.responses.create(
            model="gpt-4o-mini",
            input="Write a long report on otters",
            background=True,
            extra_headers={"x-request-id": started, "x-fake-background-ms": RUNS_MS, "x-fake-chunks": "9"},
        )
        assert response.status == "queued" and response.usage is None
        while response.status in ("queued", "in_progress"):  # the caller polls, as the SDK's docs show
            time.sleep(0.1)
            response = api.responses.retrieve(response.id, extra_headers={"x-request-id": polled})

    [row] = wait_for_usage_rows(fresh.gateway.effective_database_url, started, 1)

    assert response.status == "completed" and response.usage is not None
    usage = reported(response.usage)
    price = PRICES.price_for("openai", "openai", "gpt-4o-mini")
    assert price is not None
    tokens = (row["input_tokens"], row["output_tokens"], row["cached_input_tokens"], row["reasoning_tokens"])
    assert tokens == (usage.input_tokens, usage.output_tokens, 0, 0) and usage.output_tokens == 9
    assert Decimal(row["cost_usd"]) == cost_of(usage, price) and row["estimated"] is False
    assert (row["endpoint"], row["status"], row["streamed"], row["tenant_id"]) == (
        "responses",
        200,
        False,
        "acme",
    )
    # the caller's polls are reads: recorded, free, and never counted as the response
    polls = usage_rows(fresh.gateway.effective_database_url, polled)
    assert polls and all(poll["output_tokens"] == 0 and Decimal(poll["cost_usd"]) == 0 for poll in polls)
    # the gateway polled too, with the tenant's credential and never the caller's key
    own = [request for request in fresh.upstream.requests if request.header("x-request-id") == started]
    assert [request.method for request in own][:2] == ["POST", "GET"]
    assert own[1].path == f"/v1/responses/{response.id}"
    assert all(
        request.header("authorization") == f"Bearer {CREDENTIALS[('acme', 'openai')]}" for request in own
    )


def test_a_background_stream_the_upstream_cut_is_recorded_exactly_once_the_response_ends(
    fresh: World,
) -> None:
    started = f"bg-cut-{next(_numbers)}"
    body = {"model": "gpt-4o-mini", "input": "Stream a report", "background": True, "stream": True}
    headers = {
        "authorization": f"Bearer {fresh.keys['acme']}",
        "x-request-id": started,
        "x-fake-background-ms": RUNS_MS,
        "x-fake-chunks": "12",
        "x-fake-reset-after": "4",  # the connection breaks after four events, long before the end
    }
    with httpx.stream("POST", f"{fresh.url}/openai/v1/responses", json=body, headers=headers) as response:
        relayed = response.read()

    [row] = wait_for_usage_rows(fresh.gateway.effective_database_url, started, 1)

    assert b"response.created" in relayed and b"response.completed" not in relayed
    [start] = [request for request in fresh.upstream.requests if request.method == "POST"]
    [response_id] = {
        request.path.rsplit("/", 1)[-1] for request in fresh.upstream.requests if request.method == "GET"
    }
    ended = httpx.get(f"{fresh.upstream.url}/v1/responses/{response_id}").json()
    assert ended["status"] == "completed" and start.json()["background"] is True
    assert (row["input_tokens"], row["output_tokens"]) == (
        ended["usage"]["input_tokens"],
        ended["usage"]["output_tokens"],
    )
    assert row["output_tokens"] == 12 and row["estimated"] is False and row["streamed"] is True


def test_a_background_response_still_running_at_shutdown_has_its_call_recorded_estimated(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    gateway = GatewayHarness(tmp_path, {"openai": {"type": "openai", "base_url": upstream.url + "/v1"}})
    gateway.cli("db", "upgrade")
    gateway.cli("tenant", "create", "acme")
    gateway.cli("credential", "set", "--tenant", "acme", "--provider", "openai", stdin="sk-acme")
    key = gateway.create_key("acme")
    gateway.start()
    assert gateway.process is not None
    started = f"bg-shutdown-{next(_numbers)}"
    with openai.OpenAI(base_url=f"{gateway.url}/openai/v1", api_key=key, max_retries=0) as api:
        response = api.responses.create(
            model="gpt-4o-mini",
            input="Think about this for an hour",
            background=True,
            extra_headers={"x-request-id": started, "x-fake-background-ms": "3600000"},
        )

    gateway.process.send_signal(signal.SIGTERM)
    exit_code = gateway.process.wait(timeout=60)
    [row] = usage_rows(gateway.effective_database_url, started)

    assert response.status == "queued" and exit_code == -signal.SIGTERM
    assert row["estimated"] is True and row["input_tokens"] > 0 and row["output_tokens"] == 0
    assert Decimal(row["cost_usd"]) > 0 and row["endpoint"] == "responses"
    assert "polling each a last time" in gateway.logs()
    assert "still running when the gateway shut down" in gateway.logs()
