"""Metering at the edges of a call, against an upstream that answers exactly as a test scripts it: what the
provider answered decides what is billed, whatever the caller does meanwhile."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from tests.support.gateway import GatewayHarness, wait_for_usage_rows

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
BASIC_PASSWORD = "basic-pw-5e1f0c"


class ScriptedUpstream:
    """An HTTP/1.1 server in a thread of its own; each connection is served by the `handler` set last."""

    def __init__(self) -> None:
        self.port = 0  # bound by the server's thread: a port found free first may be taken meanwhile
        self.handler: Handler | None = None
        self.heads_sent = threading.Event()
        self.requests: list[bytes] = []
        self._loop = asyncio.new_event_loop()
        started = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(started,), daemon=True)
        self._thread.start()
        assert started.wait(30), "the scripted upstream did not start"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self, started: threading.Event) -> None:
        loop = self._loop
        asyncio.set_event_loop(loop)
        stopping = asyncio.Event()
        self._stopping = stopping

        async def serve() -> None:
            server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
            self.port = server.sockets[0].getsockname()[1]
            started.set()
            async with server:
                await stopping.wait()

        try:
            loop.run_until_complete(serve())
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        finally:
            loop.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            assert self.handler is not None
            await self.handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(5)


async def read_request(reader: asyncio.StreamReader) -> bytes:
    """One request's body (its head read and dropped)."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ),
        0,
    )
    return await reader.readexactly(length) if length else b""


@pytest.fixture(scope="module")
def scripted() -> Iterator[ScriptedUpstream]:
    upstream = ScriptedUpstream()
    try:
        yield upstream
    finally:
        upstream.stop()


@pytest.fixture(scope="module")
def gateway(scripted: ScriptedUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayHarness]:
    harness = GatewayHarness(
        Path(tmp_path_factory.mktemp("request-review")),
        {
            "openai": {"type": "openai", "base_url": scripted.url + "/v1"},
            # a server behind HTTP basic authentication, its user and password in the base URL
            "guarded": {
                "type": "openai-compatible",
                "base_url": f"http://tollgate:{BASIC_PASSWORD}@127.0.0.1:{scripted.port}/v1",
                "credential": "none",
            },
        },
    )
    harness.cli("db", "upgrade")
    harness.cli("tenant", "create", "acme")
    harness.cli("credential", "set", "--tenant", "acme", "--provider", "openai", stdin="sk-review-0001")
    harness.start()
    try:
        yield harness
    finally:
        harness.stop()


def post_and_leave(
    gateway: GatewayHarness, key: str, body: dict[str, object], request_id: str, when: threading.Event
) -> None:
    """Send a chat completion through the gateway, and close the connection once `when` is set (and the
    gateway has had a moment to read what the upstream sent), without waiting for the answer."""
    payload = json.dumps(body).encode()
    head = (
        f"POST /openai/v1/chat/completions HTTP/1.1\r\nhost: gateway\r\nauthorization: Bearer {key}\r\n"
        f"x-request-id: {request_id}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(payload)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", gateway.port)) as connection:
        connection.sendall(head + payload)
        assert when.wait(10), "the upstream never answered"
        time.sleep(0.5)


def test_a_call_whose_caller_leaves_while_the_upstream_refuses_stream_options_is_not_billed(
    gateway: GatewayHarness, scripted: ScriptedUpstream
) -> None:
    """The upstream answered 400 to the `stream_options` metering added, and the caller left while the
    gateway read that refusal: the provider took nothing on, so nothing is billed (and nothing estimated)."""
    scripted.heads_sent.clear()

    async def refuse_slowly(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        scripted.requests.append(await read_request(reader))
        body = b'{"error":{"message":"Unrecognized request argument supplied: stream_options"}}'
        writer.write(b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n")
        writer.write(b"content-length: %d\r\n\r\n" % len(body) + body[:20])
        await writer.drain()
        scripted.heads_sent.set()
        await reader.read()  # the rest never comes: held until the gateway lets go

    scripted.handler = refuse_slowly
    scripted.requests.clear()
    key = gateway.create_key("acme")
    chat = {"model": "gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "hello " * 40}]}

    post_and_leave(gateway, key, chat, "review-refused-left", scripted.heads_sent)
    [row] = wait_for_usage_rows(gateway.effective_database_url, "review-refused-left", 1)

    assert [b"stream_options" in body for body in scripted.requests] == [True]
    assert row["status"] == 499
    assert (row["estimated"], row["input_tokens"], row["output_tokens"]) == (False, 0, 0)
    assert Decimal(row["cost_usd"]) == 0


def test_a_call_sent_again_after_the_refusal_is_billed_when_its_caller_leaves_before_the_answer(
    gateway: GatewayHarness, scripted: ScriptedUpstream
) -> None:
    """The refusal of `stream_options` was the first request's answer, not the resent one's: a caller
    that leaves while the provider works on the request it sent again is billed an estimate, as any call
    sent and not answered."""
    scripted.heads_sent.clear()

    async def refuse_then_work(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            body = await read_request(reader)
            scripted.requests.append(body)
            if b"stream_options" not in body:  # the caller's own request: worked on, never answered
                scripted.heads_sent.set()
                await reader.read()
                return
            refusal = b'{"error":{"message":"Unrecognized request argument supplied: stream_options"}}'
            writer.write(b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n")
            writer.write(b"content-length: %d\r\n\r\n" % len(refusal) + refusal)
            await writer.drain()

    scripted.handler = refuse_then_work
    scripted.requests.clear()
    key = gateway.create_key("acme")
    chat = {"model": "gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "hello " * 40}]}

    post_and_leave(gateway, key, chat, "review-resent-left", scripted.heads_sent)
    [row] = wait_for_usage_rows(gateway.effective_database_url, "review-resent-left", 1)

    assert [b"stream_options" in body for body in scripted.requests] == [True, False]
    assert (row["status"], row["estimated"], row["output_tokens"]) == (499, True, 0)
    assert row["input_tokens"] > 0 and Decimal(row["cost_usd"]) > 0


def test_the_upstream_of_a_record_is_its_host_without_the_password_of_its_base_url(
    gateway: GatewayHarness, scripted: ScriptedUpstream
) -> None:
    """A base URL may carry a user and password for the server's basic authentication: the record names
    the host it went to, never the password."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        body = b'{"model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1}}'
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n")
        writer.write(b"content-length: %d\r\n\r\n" % len(body) + body)
        await writer.drain()

    scripted.handler = answer
    key = gateway.create_key("acme")
    chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}

    response = httpx.post(
        f"{gateway.url}/guarded/v1/chat/completions",
        json=chat,
        headers={"authorization": f"Bearer {key}", "x-request-id": "review-basic-auth"},
    )
    [row] = wait_for_usage_rows(gateway.effective_database_url, "review-basic-auth", 1)

    assert response.status_code == 200
    assert row["upstream"] == f"127.0.0.1:{scripted.port}"
    assert all(BASIC_PASSWORD not in str(value) for value in row.values())
