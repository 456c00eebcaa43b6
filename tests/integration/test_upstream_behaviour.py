"""What comes back from the upstream comes back as it is: statuses, bodies, streams; minus what must
never cross a proxy; and upstream failures are answered in the caller's dialect."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import anthropic
import httpx
import openai
import pytest

from gateway.errors import UpstreamTimeout
from gateway.settings import parse_settings
from gateway.settings.schema import Timeouts
from gateway.upstream.aiohttp_transport import AiohttpTransport
from gateway.upstream.transport import UpstreamRequest
from scripts.fake_upstream import FakeUpstream
from tests.integration.conftest import World
from tests.support.gateway import GatewayHarness, wait_for_usage_rows

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def auth(world: World) -> dict[str, str]:
    return {"authorization": f"Bearer {world.keys['acme']}"}


def test_upstream_error_statuses_and_bodies_pass_through_unchanged(fresh: World) -> None:
    direct = httpx.post(
        fresh.upstream.url + "/v1/chat/completions", json=CHAT, headers={"x-fake-status": "429"}
    )
    proxied = httpx.post(
        fresh.url + "/openai/v1/chat/completions", json=CHAT, headers={**auth(fresh), "x-fake-status": "429"}
    )

    assert proxied.status_code == 429
    assert proxied.json() == direct.json()


def test_a_head_gets_the_head_a_get_gets_with_no_body_and_the_next_call_goes_through(fresh: World) -> None:
    with httpx.Client(base_url=fresh.url, headers=auth(fresh)) as client:
        got = client.get("/openai/v1/models")
        head = client.head("/openai/v1/models")
        after = client.get("/openai/v1/models")  # on the gateway's pooled upstream connection, as before

    assert head.status_code == got.status_code == after.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == got.headers["content-length"] == str(len(got.content))
    assert after.json() == got.json()
    assert [r.method for r in fresh.upstream.requests] == ["GET", "HEAD", "GET"]


def test_redirects_are_returned_not_followed(fresh: World) -> None:
    response = httpx.post(
        fresh.url + "/openai/v1/chat/completions",
        json=CHAT,
        headers={**auth(fresh), "x-fake-redirect": "http://169.254.169.254/latest"},
    )

    assert response.status_code == 302
    assert response.headers["location"] == "http://169.254.169.254/latest"
    assert len(fresh.upstream.requests) == 1


def test_set_cookie_and_hop_by_hop_headers_are_not_relayed(fresh: World) -> None:
    response = httpx.post(
        fresh.url + "/openai/v1/chat/completions",
        json=CHAT,
        headers={**auth(fresh), "x-fake-set-cookie": "1"},
    )

    assert response.status_code == 200
    assert "set-cookie" not in response.headers
    assert "keep-alive" not in response.headers
    assert response.headers["x-fake-request-count"]


def test_unreachable_upstream_is_502_in_the_callers_dialect(fresh: World) -> None:
    response = httpx.post(fresh.url + "/dead/v1/chat/completions", json=CHAT, headers=auth(fresh))

    assert response.status_code == 502
    assert response.json()["error"]["code"] == "upstream_unavailable"


def test_upstream_that_does_not_answer_in_time_is_504(fresh: World) -> None:
    response = httpx.post(
        fresh.url + "/slow/v1/chat/completions", json=CHAT, headers={**auth(fresh), "x-fake-delay-ms": "2000"}
    )

    assert response.status_code == 504
    assert response.json()["error"]["code"] == "upstream_timeout"


def test_a_stream_reset_midway_ends_with_an_error_event_the_sdk_raises(fresh: World) -> None:
    received = []

    with (
        openai.OpenAI(base_url=f"{fresh.url}/openai/v1", api_key=fresh.keys["acme"], max_retries=0) as api,
        pytest.raises(openai.APIError) as failure,
    ):
        for chunk in api.chat.completions.create(
            **CHAT,
            stream=True,  # type: ignore[call-overload]
            extra_headers={"x-fake-chunks": "10", "x-fake-reset-after": "3"},
        ):
            received.append(chunk)

    assert len(received) == 3
    assert "mid-response" in failure.value.message


def test_an_anthropic_stream_reset_midway_ends_with_an_anthropic_error_event(fresh: World) -> None:
    body = {
        "model": "claude-sonnet-5-5",
        "max_tokens": 8,
        "stream": True,
        "messages": [{"role": "user", "content": "hi"}],
    }
    headers = {"x-api-key": fresh.keys["acme"], "x-fake-chunks": "10", "x-fake-reset-after": "4"}

    with httpx.stream("POST", fresh.url + "/anthropic/v1/messages", json=body, headers=headers) as response:
        lines = [line for line in response.iter_lines() if line]

    assert response.status_code == 200
    assert lines[-2] == "event: error"
    assert lines[-1].startswith('data: {"type":"error","error":{"type":"api_error"')


def test_a_non_streamed_body_cut_by_the_upstream_is_cut_for_the_caller_too(fresh: World) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.post(
            fresh.url + "/openai/v1/chat/completions",
            json=CHAT,
            headers={**auth(fresh), "x-fake-reset-after": "0"},
        )


def test_the_path_query_and_header_bytes_reach_the_upstream_as_the_caller_wrote_them(fresh: World) -> None:
    """Escapes are not decoded, re-cased or re-escaped (`%3A` stays, `%zz` stays), and a UTF-8 header
    value is not encoded a second time."""
    target = "/v1/files/ft%3Agpt-4o%3Aacme%40x%2Ce%7Ef%c3%a9?page=abc%2Fdef%3D&sig=x%7Ey&bad=%zz"
    headers = [
        (b"authorization", f"Bearer {fresh.keys['acme']}".encode()),
        (b"x-title", "Café".encode()),
    ]

    with httpx.Client() as client:
        request = client.build_request("GET", fresh.url + "/openai" + target, headers=headers)
        request.url = httpx.URL(fresh.url + "/openai" + target)
        client.send(request)

    received = fresh.upstream.requests[-1]
    assert received.target == target
    assert received.header("x-title").encode("latin-1") == "Café".encode()


def narrow_gateway(directory: Path, upstream: FakeUpstream, connect: float) -> Iterator[GatewayHarness]:
    """A gateway whose provider has one connection to its upstream, waited for `connect` seconds."""
    harness = GatewayHarness(
        directory,
        {
            "openai": {
                "type": "openai",
                "base_url": upstream.url + "/v1",
                "max_connections": 1,
                "timeouts": {"connect": connect, "read": 60, "total": 60},
            }
        },
    )
    harness.cli("db", "upgrade")
    harness.cli("tenant", "create", "acme")
    harness.cli("credential", "set", "--tenant", "acme", "--provider", "openai", stdin="sk-narrow-0001")
    harness.start()
    try:
        yield harness
    finally:
        harness.stop()


@pytest.fixture(scope="module")
def narrow(upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayHarness]:
    """A gateway whose provider has one connection to its upstream, and gives up waiting for it soon."""
    yield from narrow_gateway(Path(tmp_path_factory.mktemp("narrow")), upstream, connect=0.5)


@pytest.fixture(scope="module")
def patient(upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayHarness]:
    """A gateway whose provider has one connection to its upstream, waited for as long as a test runs:
    only the caller, by leaving, ends the wait."""
    yield from narrow_gateway(Path(tmp_path_factory.mktemp("patient")), upstream, connect=60)


def test_a_call_that_gets_no_connection_within_the_connect_timeout_is_504_and_never_sent(
    narrow: GatewayHarness, upstream: FakeUpstream
) -> None:
    """Waiting for one of the pool's `max_connections` counts as connecting: such a call is not held for
    the whole `total` timeout, nor taken for one the provider got and did not answer."""
    key = narrow.create_key("acme")
    headers = {"authorization": f"Bearer {key}"}
    url = narrow.url + "/openai/v1/chat/completions"
    upstream.clear()
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(
            httpx.post, url, json=CHAT, headers={**headers, "x-fake-delay-ms": "3000"}, timeout=30
        )
        while not upstream.requests:  # the first call holds the one connection
            time.sleep(0.01)
        second = httpx.post(url, json=CHAT, headers=headers, timeout=30)
        assert first.result().status_code == 200

    assert second.status_code == 504
    assert second.json()["error"] == {
        "message": "the upstream could not be reached in time",
        "type": "api_error",
        "param": None,
        "code": "upstream_timeout",
    }
    assert len(upstream.requests) == 1


async def test_a_call_whose_total_timeout_runs_out_while_it_waits_for_a_connection_is_not_unanswered(
    upstream: FakeUpstream,
) -> None:
    """`total` bounds the wait for one of the pool's connections too: a call it ends there was never sent,
    so it is not the `UnansweredTimeout` the meter bills. (The settings refuse a `total` below `connect`,
    but the two may still end together; the transport decides by `sent`, not by the settings.)"""
    settings = parse_settings(
        {"providers": {"openai": {"type": "openai", "base_url": upstream.url + "/v1", "max_connections": 1}}}
    )
    transport = AiohttpTransport(settings.providers["openai"], upstream.url + "/v1")
    url = upstream.url + "/v1/chat/completions"
    body = json.dumps(CHAT).encode()
    holder = UpstreamRequest("POST", url, [("x-fake-delay-ms", "3000")], body, Timeouts())
    waiter = UpstreamRequest("POST", url, [], body, Timeouts.model_construct(connect=5, read=30, total=0.2))
    upstream.clear()
    holding = asyncio.create_task(transport.send(holder))  # takes the one connection
    try:
        while not upstream.requests:
            await asyncio.sleep(0.01)
        with pytest.raises(UpstreamTimeout) as error:
            await transport.send(waiter)
    finally:
        holding.cancel()
        await asyncio.gather(holding, return_exceptions=True)
        await transport.aclose()

    assert type(error.value) is UpstreamTimeout
    assert str(error.value) == "the upstream could not be reached in time"
    assert (holder.sent, waiter.sent) == (True, False)


def test_a_response_header_with_a_control_character_is_dropped_and_the_rest_relayed(fresh: World) -> None:
    """A field value the gateway's HTTP server may not send would otherwise lose the whole response: the
    caller got no status at all, and the call was logged as a success."""
    response = httpx.post(
        fresh.url + "/openai/v1/chat/completions",
        json=CHAT,
        headers={**auth(fresh), "x-fake-control-char-header": "1"},
    )

    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"]
    assert "x-fake-odd" not in response.headers
    assert response.headers["x-fake-even"] == "1"


def test_a_status_http_does_not_have_is_502_in_the_callers_dialect(fresh: World) -> None:
    """A status the gateway's HTTP server cannot send would otherwise lose the whole response."""
    body = {"model": "claude-sonnet-5-5", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
    response = httpx.post(
        fresh.url + "/anthropic/v1/messages",
        json=body,
        headers={"x-api-key": fresh.keys["acme"], "x-fake-status": "600"},
    )

    assert response.status_code == 502
    assert response.json() == {
        "type": "error",
        "error": {"type": "api_error", "message": "the upstream answered with an invalid status (600)"},
    }


def test_a_stream_still_flowing_when_the_total_timeout_runs_out_says_so(fresh: World) -> None:
    """The `slow` provider reads for 0.5 s at most between bytes and 5 s in all: an event every 0.1 s
    outlasts the total, not the read timeout, and the error event names the one to raise."""
    headers = {**auth(fresh), "x-fake-chunks": "100", "x-fake-chunk-delay-ms": "100"}
    with httpx.stream(
        "POST", fresh.url + "/slow/v1/chat/completions", json={**CHAT, "stream": True}, headers=headers
    ) as response:
        lines = [line for line in response.iter_lines() if line]

    assert response.status_code == 200
    assert len(lines) > 10
    error = json.loads(lines[-1].removeprefix("data: "))["error"]
    assert error["code"] == "upstream_timeout"
    assert error["message"] == "the response outlasted the upstream's total timeout"


def test_a_stream_cut_inside_an_event_still_ends_with_an_error_event_the_sdk_raises(fresh: World) -> None:
    """The half event that came is not relayed: the error event would land inside it, and the caller's
    SDK would fail on JSON it cannot parse instead of raising the gateway's error."""
    received = []

    with (
        anthropic.Anthropic(
            base_url=f"{fresh.url}/anthropic", api_key=fresh.keys["acme"], max_retries=0
        ) as api,
        pytest.raises(anthropic.APIError) as failure,
    ):
        for event in api.messages.create(
            model="claude-sonnet-5-5",
            max_tokens=8,
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            extra_headers={"x-fake-chunks": "10", "x-fake-reset-after": "4", "x-fake-reset-mid-event": "1"},
        ):
            received.append(event)

    assert len(received) == 4
    assert "mid-response" in str(failure.value)


@pytest.mark.parametrize(
    ("mount", "upstream_path", "relayed"),
    [
        ("/openai", "/v1/models?after=m-1", "/openai/v1/models?after=m-1"),
        ("/anthropic", "/v1/messages", "/anthropic/v1/messages"),
    ],
)
@pytest.mark.parametrize("spelled", ["whole", "as a path"])
def test_a_redirect_to_the_upstreams_own_url_points_back_under_the_mount(
    fresh: World, mount: str, upstream_path: str, relayed: str, spelled: str
) -> None:
    """Followed as it came, the caller's SDK would send its Tollgate key straight to the upstream's host
    (httpx keeps `x-api-key` on a redirect to another host), or a path to the gateway's root."""
    location = fresh.upstream.url + upstream_path if spelled == "whole" else upstream_path
    response = httpx.post(
        fresh.url + mount + "/v1/models",
        json={},
        headers={"authorization": f"Bearer {fresh.keys['acme']}", "x-fake-redirect": location},
    )

    assert response.status_code == 302
    assert response.headers["location"] == relayed


@pytest.mark.parametrize(
    "target",
    ["{url}0/v1/models", "{url}/v10/models", "{url}/other", "http://x.test/v1", "/other", "//x.test/v1"],
)
def test_a_redirect_elsewhere_is_relayed_as_it_came(fresh: World, target: str) -> None:
    target = target.format(url=fresh.upstream.url)
    response = httpx.post(
        fresh.url + "/openai/v1/models",
        json={},
        headers={**auth(fresh), "x-fake-redirect": target},
    )

    assert response.status_code == 302
    assert response.headers["location"] == target


def test_the_providers_own_request_id_comes_back_as_x_upstream_request_id(fresh: World) -> None:
    """OpenAI's `x-request-id` is what its support asks for; the gateway's own id keeps the name."""
    response = httpx.post(
        fresh.url + "/openai/v1/chat/completions",
        json=CHAT,
        headers={**auth(fresh), "x-request-id": "ours-1", "x-fake-request-id": "req_0123abcDEF"},
    )

    assert response.status_code == 200
    assert response.headers["x-request-id"] == "ours-1"
    assert response.headers["x-upstream-request-id"] == "req_0123abcDEF"


def test_a_malformed_provider_request_id_is_not_relayed(fresh: World) -> None:
    response = httpx.post(
        fresh.url + "/openai/v1/chat/completions",
        json=CHAT,
        headers={**auth(fresh), "x-fake-request-id": "req one/" + "x" * 200},
    )

    assert response.status_code == 200
    assert "x-upstream-request-id" not in response.headers


def test_anthropics_request_id_passes_through_as_it_came(fresh: World) -> None:
    response = httpx.post(
        fresh.url + "/anthropic/v1/messages",
        json={
            "model": "claude-sonnet-4-5",
            "max_tokens": 16,
            "messages": [{"role": "user", "content": "hi"}],
        },
        headers={**auth(fresh), "anthropic-version": "2023-06-01", "x-fake-request-id": "req_011CAnthropic"},
    )

    assert response.status_code == 200
    assert response.headers["request-id"] == "req_011CAnthropic"


def test_a_caller_that_leaves_before_its_call_reached_the_upstream_is_not_billed(
    patient: GatewayHarness, upstream: FakeUpstream
) -> None:
    """A call still waiting for a connection (or connecting) when its caller leaves never reached the
    provider: recorded at no cost, as a connect failure is; one that was sent is estimated (billed)."""
    key = patient.create_key("acme")
    url = patient.url + "/openai/v1/chat/completions"
    body = json.dumps(CHAT).encode()
    head = (
        f"POST /openai/v1/chat/completions HTTP/1.1\r\nhost: gateway\r\nauthorization: Bearer {key}\r\n"
        "x-request-id: left-sent\r\nx-fake-delay-ms: 60000\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    )
    upstream.clear()
    # The first call holds the one connection until its caller leaves, which it does only once the
    # second call's caller has left and been recorded: no pause decides which leaves first.
    with socket.create_connection(("127.0.0.1", patient.port), timeout=30) as sent:
        sent.sendall(head.encode() + body)
        while not upstream.requests:  # the first call holds the one connection
            time.sleep(0.01)
        with pytest.raises(httpx.TimeoutException):  # waits for the connection, and leaves
            httpx.post(
                url,
                json=CHAT,
                headers={"authorization": f"Bearer {key}", "x-request-id": "left-unsent"},
                timeout=0.2,
            )
        wait_for_usage_rows(patient.effective_database_url, "left-unsent", 1)
    # and the first call's caller leaves, before its answer

    rows = {row["request_id"]: row for row in wait_for_usage_rows(patient.effective_database_url, "left-", 2)}
    assert len(upstream.requests) == 1
    assert rows["left-sent"]["estimated"] is True
    assert rows["left-sent"]["input_tokens"] > 0
    unsent = rows["left-unsent"]
    assert (unsent["status"], unsent["estimated"], unsent["input_tokens"], unsent["output_tokens"]) == (
        499,
        False,
        0,
        0,
    )
    assert unsent["cost_usd"] == 0
