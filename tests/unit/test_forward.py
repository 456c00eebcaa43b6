"""gateway.pipeline.forward and the transports: a call counts as started upstream only once it was handed
to an upstream connection."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from gateway.context import RequestContext
from gateway.pipeline.forward import Forwarder
from gateway.providers import build_adapters
from gateway.settings import parse_settings
from gateway.upstream.aiohttp_transport import AiohttpTransport
from gateway.upstream.transport import UpstreamRequest, UpstreamResponse

SETTINGS = parse_settings({"providers": {"openai": {"type": "openai", "base_url": "http://127.0.0.1:9/v1"}}})
ADAPTER = build_adapters(SETTINGS.providers)["openai"]
TIMEOUTS = SETTINGS.providers["openai"].timeouts


class HeldTransport:
    """Holds every call forever, having handed it to a connection (`sends`) or not."""

    def __init__(self, sends: bool) -> None:
        self.sends = sends

    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        request.sent = self.sends
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        pass


async def _receive() -> dict[str, object]:
    return {"type": "http.disconnect"}


def context() -> RequestContext:
    ctx = RequestContext("rid", 1.0, "POST", ADAPTER, b"/v1/chat/completions", b"", [], _receive)
    ctx.path = "/v1/chat/completions"
    return ctx


async def cancelled_while_forwarding(transport: HeldTransport) -> RequestContext:
    ctx = context()
    forward = asyncio.create_task(Forwarder({"openai": transport}, {"openai": TIMEOUTS})(ctx))
    await asyncio.sleep(0.01)
    forward.cancel()
    with pytest.raises(asyncio.CancelledError):
        await forward
    return ctx


async def test_a_call_cancelled_before_it_was_handed_to_a_connection_is_as_one_never_started() -> None:
    assert (await cancelled_while_forwarding(HeldTransport(sends=False))).upstream_started == 0.0


async def test_a_call_cancelled_once_handed_to_a_connection_stays_started() -> None:
    assert (await cancelled_while_forwarding(HeldTransport(sends=True))).upstream_started > 0


@pytest.fixture
async def silent_server() -> AsyncIterator[tuple[int, list[bytes]]]:
    """A server that reads requests and never answers."""
    received: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.append(await reader.read(65536))
        await reader.read()  # until the client closes
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1], received
    server.close()


async def test_aiohttp_marks_a_request_sent_only_once_it_has_a_connection(
    silent_server: tuple[int, list[bytes]],
) -> None:
    port, received = silent_server
    provider = SETTINGS.providers["openai"].model_copy(update={"max_connections": 1})
    transport = AiohttpTransport(provider, f"http://127.0.0.1:{port}")
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    first, second = (UpstreamRequest("POST", url, [], b"{}", TIMEOUTS) for _ in range(2))
    try:
        holding = asyncio.create_task(transport.send(first))  # takes the one connection
        while not received:
            await asyncio.sleep(0.01)
        waiting = asyncio.create_task(transport.send(second))  # waits for a connection
        await asyncio.sleep(0.05)
        for task in (holding, waiting):
            task.cancel()
        await asyncio.gather(holding, waiting, return_exceptions=True)
    finally:
        await transport.aclose()

    assert (first.sent, second.sent) == (True, False)
