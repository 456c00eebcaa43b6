"""The HTTP server in front of the pipeline: a request head is bounded in size and in time, before any
key is checked; requests within the bounds, large bodies included, are served as ever."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from scripts.fake_upstream import FakeUpstream
from tests.support.gateway import GatewayHarness

MAX_HEAD = 16 * 1024
HEAD_TIMEOUT = 1.0


@pytest.fixture(scope="module")
def gateway(upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayHarness]:
    harness = GatewayHarness(
        Path(tmp_path_factory.mktemp("http-server")),
        {"openai": {"type": "openai", "base_url": upstream.url + "/v1"}},
        overrides={"server": {"max_header_bytes": MAX_HEAD, "header_timeout_seconds": HEAD_TIMEOUT}},
    )
    harness.cli("db", "upgrade")
    harness.cli("tenant", "create", "acme")
    harness.cli("credential", "set", "--tenant", "acme", "--provider", "openai", stdin="sk-http-0001")
    harness.start()
    try:
        yield harness
    finally:
        harness.stop()


def answer_to(gateway: GatewayHarness, *parts: bytes, pause: float = 0.0) -> bytes:
    """What the gateway sends back on a connection of its own, `parts` sent `pause` seconds apart, read
    until it closes the connection (or 10 s pass)."""
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as connection:
        try:
            for part in parts:
                connection.sendall(part)
                time.sleep(pause)
        except OSError:  # the gateway closed the connection while the head was still coming
            pass
        received = b""
        try:
            while chunk := connection.recv(65536):
                received += chunk
        except OSError:
            pass
        return received


def test_a_head_longer_than_the_bound_is_431_and_the_connection_closed(gateway: GatewayHarness) -> None:
    head = b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-padding: " + b"a" * 64 * 1024

    received = answer_to(gateway, head[: 32 * 1024], head[32 * 1024 :], b"\r\n\r\n")

    status, _, rest = received.partition(b"\r\n")
    assert status == b"HTTP/1.1 431 Request Header Fields Too Large"
    body = json.loads(rest.partition(b"\r\n\r\n")[2])
    assert body == {
        "error": {
            "message": f"the request head is longer than {MAX_HEAD} bytes",
            "type": "invalid_request_error",
            "param": None,
            "code": "request_head_too_large",  # a string, as OpenAI-style SDKs type `code`
        }
    }


def test_a_head_longer_than_the_bound_that_arrives_in_one_read_is_431_too(gateway: GatewayHarness) -> None:
    head = b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-padding: " + b"a" * (MAX_HEAD + 100) + b"\r\n\r\n"

    received = answer_to(gateway, head)

    assert received.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")


def test_a_head_that_does_not_arrive_in_time_is_408_and_the_connection_closed(
    gateway: GatewayHarness,
) -> None:
    parts = [b"GET /healthz HTTP/1.1\r\n", b"host: x\r\n", b"x-slow: 1\r\n", b"x-slow: 2\r\n"]

    received = answer_to(gateway, *parts, pause=HEAD_TIMEOUT)

    assert received.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    error = json.loads(received.partition(b"\r\n\r\n")[2])["error"]
    assert (error["type"], error["param"], error["code"]) == (
        "invalid_request_error",
        None,
        "request_head_timeout",
    )


def test_a_connection_that_sends_nothing_is_closed_after_the_timeout(gateway: GatewayHarness) -> None:
    received = answer_to(gateway, b"", pause=3 * HEAD_TIMEOUT)

    assert received.startswith(b"HTTP/1.1 408 ")


def test_a_head_within_the_bound_and_a_body_far_longer_are_served(gateway: GatewayHarness) -> None:
    key = gateway.create_key("acme")
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x" * 1_000_000}]}
    headers = {"authorization": f"Bearer {key}", "x-padding": "a" * (MAX_HEAD // 2)}

    response = httpx.post(gateway.url + "/openai/v1/chat/completions", json=body, headers=headers, timeout=30)

    assert response.status_code == 200


def test_a_request_that_is_not_valid_http_is_a_400_with_an_openai_style_error(
    gateway: GatewayHarness,
) -> None:
    head = b"GET /openai/v1/models HTTP/1.1\r\nhost: x\r\nx-note: harmless\rx-injected: evil\r\n\r\n"

    received = answer_to(gateway, head)

    head_received, _, body = received.partition(b"\r\n\r\n")
    assert head_received.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"\r\ncontent-type: application/json\r\n" in head_received
    error = json.loads(body)["error"]
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", None, "bad_request")
