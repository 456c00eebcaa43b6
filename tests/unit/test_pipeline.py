"""The request path assembled by `build_pipeline`, driven through ASGI with respx as the upstream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import pytest
import respx

from gateway.auth.keys import KeyAuthenticator
from gateway.context import RequestContext
from gateway.credentials.crypto import MasterKey
from gateway.credentials.store import CredentialStore
from gateway.pipeline import Pipeline
from gateway.pipeline.builder import Services, build_pipeline
from gateway.pipeline.observers import ObserverBatch
from gateway.providers import build_adapters
from gateway.settings import parse_settings
from gateway.upstream.httpx_transport import HttpxTransport
from tests.fakes import FakeCredentialRepository, FakeKeyRepository

UPSTREAM = "https://api.openai.test/v1"
SECRET = "sk-tenant-secret"
SETTINGS = parse_settings(
    {
        "server": {"max_body_bytes": 1024},
        "providers": {
            "openai": {"type": "openai", "base_url": UPSTREAM},
            "claude": {"type": "anthropic", "base_url": "https://api.anthropic.test"},
        },
    }
)
ADAPTERS = build_adapters(SETTINGS.providers)


@dataclass
class Exchange:
    """One ASGI request fed to the pipeline, and everything it sent back."""

    body: bytes = b""
    disconnect_after_chunks: int | None = None
    sent: list[dict[str, Any]] = field(default_factory=list)
    _body_read: bool = False

    async def receive(self) -> dict[str, Any]:
        if not self._body_read:
            self._body_read = True
            return {"type": "http.request", "body": self.body, "more_body": False}
        while self.disconnect_after_chunks is None or self.chunks_sent < self.disconnect_after_chunks:
            await asyncio.sleep(0)
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    @property
    def chunks_sent(self) -> int:
        return sum(1 for m in self.sent if m["type"] == "http.response.body" and m.get("body"))

    @property
    def status(self) -> int:
        return int(self.sent[0]["status"])

    @property
    def headers(self) -> dict[bytes, bytes]:
        return dict(self.sent[0]["headers"])

    @property
    def body_chunks(self) -> list[bytes]:
        return [m["body"] for m in self.sent[1:] if m.get("body")]

    @property
    def completed(self) -> bool:
        return self.sent[-1]["type"] == "http.response.body" and not self.sent[-1].get("more_body", False)

    def json(self) -> Any:
        return orjson.loads(b"".join(self.body_chunks))


class Recorder:
    def __init__(self) -> None:
        self.seen: list[RequestContext] = []

    def observe(self, ctx: RequestContext) -> None:
        self.seen.append(ctx)


@dataclass
class Setup:
    pipeline: Pipeline
    key: str
    recorder: Recorder


@pytest.fixture
async def setup() -> AsyncIterator[Setup]:
    keys = FakeKeyRepository()
    key, _ = keys.issue()
    credentials = CredentialStore(FakeCredentialRepository(), MasterKey(b"k" * 32))
    await credentials.set("acme", "openai", SECRET)
    await credentials.set("acme", "claude", SECRET)
    client = httpx.AsyncClient()
    transports = {name: HttpxTransport(client) for name in ADAPTERS}
    pipeline = build_pipeline(
        SETTINGS, Services(KeyAuthenticator(keys, ttl=5, size=10), credentials, transports)
    )
    recorder = Recorder()
    pipeline = Pipeline(pipeline.stages, pipeline.forwarder, ObserverBatch((recorder,), size=1))
    yield Setup(pipeline, key, recorder)
    await client.aclose()


@pytest.fixture
def upstream() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=True) as router:
        yield router


async def call(
    setup: Setup,
    exchange: Exchange,
    path: bytes = b"/v1/chat/completions",
    headers: list[tuple[bytes, bytes]] | None = None,
    provider: str = "openai",
) -> Exchange:
    scope = {
        "type": "http",
        "method": "POST",
        "query_string": b"",
        "headers": headers if headers is not None else [(b"authorization", f"Bearer {setup.key}".encode())],
    }
    await setup.pipeline.handle(ADAPTERS[provider], path, scope, exchange.receive, exchange.send)
    return exchange


async def test_the_request_goes_upstream_with_the_credential_instead_of_the_key(
    setup: Setup, upstream: respx.MockRouter
) -> None:
    route = upstream.post(f"{UPSTREAM}/chat/completions").respond(
        200, json={"ok": True}, headers={"set-cookie": "a=b", "x-upstream": "yes"}
    )
    headers = [
        (b"authorization", f"Bearer {setup.key}".encode()),
        (b"x-api-key", setup.key.encode()),
        (b"connection", b"keep-alive, x-hop"),
        (b"x-hop", b"1"),
        (b"x-request-id", b"req-1"),
        (b"content-type", b"application/json"),
    ]

    exchange = await call(setup, Exchange(body=b'{"model":"m"}'), headers=headers)

    sent = route.calls.last.request
    assert sent.headers["authorization"] == f"Bearer {SECRET}"
    assert "x-api-key" not in sent.headers and "x-hop" not in sent.headers
    assert sent.headers["x-request-id"] == "req-1"
    assert sent.content == b'{"model":"m"}'
    assert exchange.status == 200 and exchange.json() == {"ok": True}
    assert exchange.headers[b"x-upstream"] == b"yes" and b"set-cookie" not in exchange.headers
    assert exchange.headers[b"x-request-id"] == b"req-1"


async def test_a_stream_is_relayed_chunk_by_chunk(setup: Setup, upstream: respx.MockRouter) -> None:
    events = [b'data: {"n":1}\n\n', b'data: {"n":2}\n\n', b"data: [DONE]\n\n"]
    upstream.post(f"{UPSTREAM}/chat/completions").respond(
        200, headers={"content-type": "text/event-stream"}, stream=ChunkStream(*events)
    )

    exchange = await call(setup, Exchange(body=b"{}"))

    assert exchange.body_chunks == events
    assert exchange.completed
    assert setup.recorder.seen[0].streamed


@pytest.mark.parametrize(
    ("failure", "status", "code"),
    [
        (httpx.ConnectError("refused"), 502, "upstream_unavailable"),
        (httpx.ReadTimeout("slow"), 504, "upstream_timeout"),
    ],
)
async def test_upstream_failures_before_the_response_are_answered_in_dialect(
    setup: Setup, upstream: respx.MockRouter, failure: Exception, status: int, code: str
) -> None:
    upstream.post(f"{UPSTREAM}/chat/completions").mock(side_effect=failure)

    exchange = await call(setup, Exchange(body=b"{}"))

    assert exchange.status == status
    assert exchange.json()["error"]["code"] == code
    assert setup.recorder.seen[0].status == status


class ChunkStream(httpx.AsyncByteStream):
    def __init__(self, *chunks: bytes) -> None:
        self.chunks = chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk


class BreakingStream(httpx.AsyncByteStream):
    def __init__(self, *chunks: bytes) -> None:
        self.chunks = chunks
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk
        raise httpx.RemoteProtocolError("peer closed connection")

    async def aclose(self) -> None:
        self.closed = True


async def test_an_event_stream_broken_midway_ends_with_an_error_event(
    setup: Setup, upstream: respx.MockRouter
) -> None:
    upstream.post("https://api.anthropic.test/v1/messages").respond(
        200,
        headers={"content-type": "text/event-stream"},
        stream=BreakingStream(b"event: ping\ndata: {}\n\n"),
    )

    exchange = await call(
        setup,
        Exchange(body=b"{}"),
        path=b"/v1/messages",
        provider="claude",
        headers=[(b"x-api-key", setup.key.encode())],
    )

    assert exchange.status == 200
    assert exchange.body_chunks[0] == b"event: ping\ndata: {}\n\n"
    assert exchange.body_chunks[1].startswith(b'event: error\ndata: {"type":"error"')
    assert exchange.completed


async def test_a_plain_body_broken_midway_is_left_incomplete(
    setup: Setup, upstream: respx.MockRouter
) -> None:
    upstream.post(f"{UPSTREAM}/chat/completions").respond(
        200, headers={"content-type": "application/json"}, stream=BreakingStream(b'{"partial":')
    )

    exchange = await call(setup, Exchange(body=b"{}"))

    assert exchange.body_chunks == [b'{"partial":']
    assert not exchange.completed
    assert setup.recorder.seen[0].error is not None


class EndlessStream(httpx.AsyncByteStream):
    def __init__(self) -> None:
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            yield b"data: {}\n\n"
            await asyncio.sleep(0.001)

    async def aclose(self) -> None:
        self.closed = True


async def test_a_caller_that_disconnects_cancels_and_closes_the_upstream_stream(
    setup: Setup, upstream: respx.MockRouter
) -> None:
    stream = EndlessStream()
    upstream.post(f"{UPSTREAM}/chat/completions").respond(
        200, headers={"content-type": "text/event-stream"}, stream=stream
    )

    exchange = await call(setup, Exchange(body=b"{}", disconnect_after_chunks=3))

    [ctx] = setup.recorder.seen
    assert ctx.client_disconnected and ctx.status == 499
    assert stream.closed
    assert not exchange.completed


async def test_refusals_are_observed_too(setup: Setup, upstream: respx.MockRouter) -> None:
    exchange = await call(setup, Exchange(body=b"{}"), headers=[])

    assert exchange.status == 401
    assert setup.recorder.seen[0].error is not None and setup.recorder.seen[0].status == 401
    assert not upstream.calls


async def test_an_unexpected_failure_in_a_stage_is_a_500_in_dialect(
    setup: Setup, upstream: respx.MockRouter
) -> None:
    async def broken(ctx: RequestContext) -> None:
        raise RuntimeError("bug")

    pipeline = Pipeline((broken,), setup.pipeline.forwarder, setup.pipeline.observers)
    exchange = Exchange(body=b"{}")
    scope = {"type": "http", "method": "POST", "query_string": b"", "headers": []}

    await pipeline.handle(ADAPTERS["claude"], b"/v1/messages", scope, exchange.receive, exchange.send)

    assert exchange.status == 500
    assert exchange.json() == {
        "type": "error",
        "error": {"type": "api_error", "message": "internal gateway error"},
    }
    assert setup.recorder.seen[0].status == 500
