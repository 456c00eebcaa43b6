"""Connections between a caller and the gateway: how long an idle one is kept for the next request, how long
a request body may stall."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from scripts.fake_upstream import FakeUpstream
from tests.support.gateway import GatewayHarness, wait_for_usage_rows

KEEP_ALIVE = 7  # above the SDKs' (and uvicorn's default) 5 s, small enough to see a connection closed
HEAD_TIMEOUT = 1.0  # far below KEEP_ALIVE: an idle connection waits for no head, so is not cut by it
SDK_KEEPALIVE_EXPIRY = 5.0  # httpx's, which the OpenAI and Anthropic SDKs use
BODY_TIMEOUT = 1.0


@pytest.fixture(scope="module")
def gateway(upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayHarness]:
    harness = GatewayHarness(
        Path(tmp_path_factory.mktemp("connections")),
        {
            "openai": {"type": "openai", "base_url": upstream.url + "/v1"},
            "anthropic": {"type": "anthropic", "base_url": upstream.url},
        },
        overrides={
            "server": {
                "keep_alive_seconds": KEEP_ALIVE,
                "header_timeout_seconds": HEAD_TIMEOUT,
                "body_read_timeout_seconds": BODY_TIMEOUT,
            }
        },
    )
    harness.cli("db", "upgrade")
    harness.cli("tenant", "create", "acme")
    harness.cli("credential", "set", "--tenant", "acme", "--provider", "openai", stdin="sk-conn-0001")
    harness.cli("credential", "set", "--tenant", "acme", "--provider", "anthropic", stdin="sk-ant-conn-0001")
    harness.start()
    try:
        yield harness
    finally:
        harness.stop()


def read_response(connection: socket.socket) -> bytes:
    """One response whose body has a Content-Length, read whole; b"" if the connection was closed."""
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = connection.recv(65536)
        if not chunk:
            return received
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = connection.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


HEALTHZ = b"GET /healthz HTTP/1.1\r\nhost: gateway\r\n\r\n"


def test_a_connection_idle_past_the_sdks_keepalive_expiry_serves_the_next_request(
    gateway: GatewayHarness,
) -> None:
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as connection:
        connection.sendall(HEALTHZ)
        assert read_response(connection).startswith(b"HTTP/1.1 200 ")

        time.sleep(SDK_KEEPALIVE_EXPIRY + 0.5)
        connection.sendall(HEALTHZ)

        assert read_response(connection).startswith(b"HTTP/1.1 200 ")


def test_a_connection_idle_for_the_keep_alive_time_is_closed_without_an_answer(
    gateway: GatewayHarness,
) -> None:
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=3 * KEEP_ALIVE) as connection:
        connection.sendall(HEALTHZ)
        assert read_response(connection).startswith(b"HTTP/1.1 200 ")

        assert connection.recv(65536) == b""  # closed by the gateway, with no 408 written into it


STALLED = f"the request body stopped arriving: nothing came for {BODY_TIMEOUT:g} s"


@pytest.mark.parametrize(
    ("mount", "path", "expected"),
    [
        (
            "openai",
            "/v1/chat/completions",
            {
                "error": {
                    "message": STALLED,
                    "type": "invalid_request_error",
                    "param": None,
                    "code": "request_timeout",
                }
            },
        ),
        (
            "anthropic",
            "/v1/messages",
            {"type": "error", "error": {"type": "invalid_request_error", "message": STALLED}},
        ),
    ],
)
def test_a_body_that_stops_arriving_is_408_in_the_callers_dialect_and_never_sent(
    gateway: GatewayHarness, upstream: FakeUpstream, mount: str, path: str, expected: dict[str, object]
) -> None:
    key = gateway.create_key("acme")
    rid = f"stalled-{mount}"
    head = (
        f"POST /{mount}{path} HTTP/1.1\r\nhost: gateway\r\nauthorization: Bearer {key}\r\n"
        f"x-request-id: {rid}\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n"
    )
    upstream.clear()
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as connection:
        connection.sendall(head.encode() + b'{"model": "gpt-4o-mini", "messages": [')  # and nothing more

        response = read_response(connection)

    status, _, rest = response.partition(b"\r\n")
    assert status == b"HTTP/1.1 408 Request Timeout"
    assert json.loads(rest.partition(b"\r\n\r\n")[2]) == expected
    assert upstream.requests == []
    [row] = wait_for_usage_rows(gateway.effective_database_url, rid, 1)
    assert (row["status"], row["input_tokens"], row["estimated"]) == (408, 0, False)


def test_the_connection_of_a_body_that_stops_arriving_is_closed_after_the_408(
    gateway: GatewayHarness,
) -> None:
    key = gateway.create_key("acme")
    head = (
        f"POST /openai/v1/chat/completions HTTP/1.1\r\nhost: gateway\r\nauthorization: Bearer {key}\r\n"
        "content-type: application/json\r\ncontent-length: 1000\r\n\r\n"
    )
    # well under KEEP_ALIVE: a connection kept open for the rest of the body times out the recv
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=KEEP_ALIVE / 2) as connection:
        connection.sendall(head.encode() + b'{"model": "gpt-4o-mini", "messages": [')  # and nothing more
        response = read_response(connection)
        assert response.startswith(b"HTTP/1.1 408 ")
        assert b"connection: close" in response.partition(b"\r\n\r\n")[0].lower().split(b"\r\n")

        assert connection.recv(65536) == b""  # closed (RFC 9110 15.5.9), not held for the rest of the body


def test_a_websocket_upgrade_is_refused_with_an_error_that_says_why(gateway: GatewayHarness) -> None:
    """The gateway does not proxy WebSocket APIs (OpenAI Realtime): the SDK sees why, not a bare 403."""
    key = gateway.create_key("acme")
    url = f"ws://127.0.0.1:{gateway.port}/openai/v1/realtime?model=gpt-realtime"

    with pytest.raises(InvalidStatus) as refused:
        connect(url, additional_headers={"authorization": f"Bearer {key}"}, open_timeout=10)

    response = refused.value.response
    assert response.status_code == 501
    assert json.loads(response.body or b"") == {
        "error": {
            "message": "Tollgate does not proxy WebSocket APIs (such as OpenAI Realtime): "
            "use the provider's HTTP APIs through it",
            "type": "api_error",
            "param": None,
            "code": "websockets_not_supported",
        }
    }
