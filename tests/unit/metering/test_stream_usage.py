"""An upstream that refuses the `stream_options.include_usage` the gateway added gets the caller's own
request instead, and is not asked again for a while; every other answer goes to the caller untouched."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

import orjson
import pytest

from gateway.context import RequestContext
from gateway.metering.stream_usage import (
    MAX_REFUSAL_BYTES,
    ResendWithoutStreamUsage,
    StreamUsageRefusals,
    ask_for_stream_usage,
    providers_to_ask,
)
from gateway.metering.usage import Endpoint
from gateway.settings import parse_settings
from gateway.upstream.transport import UpstreamResponse
from tests.support.metering import ADAPTERS

CALLER_BODY = orjson.dumps({"model": "gpt-4o-mini", "messages": [], "stream": True})
AZURE_REFUSAL = b'{"error":{"message":"Unrecognized request argument supplied: stream_options","code":null}}'
STRICT_REFUSAL = (
    b"{\"object\":\"error\",\"message\":\"[{'type': 'extra_forbidden', 'loc': ('body', 'stream_options'),"
    b' \'msg\': \'Extra inputs are not permitted\'}]","type":"BadRequestError","code":400}'
)
STREAM = [b'data: {"choices":[{"delta":{"content":"hi"}}]}\n\n', b"data: [DONE]\n\n"]


@dataclass
class Canned:
    status: int
    body: list[bytes]
    closed: bool = False
    headers: Sequence[tuple[bytes, bytes]] = ((b"content-type", b"application/json"),)

    async def chunks(self) -> AsyncIterator[bytes]:
        for chunk in self.body:
            yield chunk

    async def aclose(self) -> None:
        self.closed = True


@dataclass
class Upstream:
    """Answers each request with the next canned response, and keeps the bodies it was sent."""

    answers: list[Canned]
    sent: list[bytes] = field(default_factory=list)

    async def __call__(self, ctx: RequestContext) -> UpstreamResponse:
        self.sent.append(ctx.body)
        return self.answers.pop(0)


def streaming_request(provider: str = "openai", query: bytes = b"") -> RequestContext:
    ctx = RequestContext(
        request_id="req-1",
        started=time.perf_counter(),
        method="POST",
        provider=ADAPTERS[provider],
        raw_path=b"/v1/chat/completions",
        query_string=query,
        headers=[],
        receive=None,  # type: ignore[arg-type]
        path="/v1/chat/completions",
        body=CALLER_BODY,
        endpoint=Endpoint.CHAT_COMPLETIONS,
    )
    ask_for_stream_usage(ctx)
    assert ctx.stream_usage_injected
    return ctx


def forward(
    upstream: Upstream, ctx: RequestContext, refusals: StreamUsageRefusals
) -> tuple[UpstreamResponse, bytes]:
    """What the caller is relayed: the response, and its body read to the end."""

    async def exchange() -> tuple[UpstreamResponse, bytes]:
        response = await ResendWithoutStreamUsage(upstream, refusals)(ctx)
        return response, b"".join([chunk async for chunk in response.chunks()])

    return asyncio.run(exchange())


@pytest.mark.parametrize("refusal", [AZURE_REFUSAL, STRICT_REFUSAL], ids=["azure", "pydantic-422"])
def test_a_refused_request_is_sent_again_as_the_caller_wrote_it(
    refusal: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    refused = Canned(400 if refusal is AZURE_REFUSAL else 422, [refusal[:20], refusal[20:]])
    upstream = Upstream([refused, Canned(200, STREAM)])
    refusals = StreamUsageRefusals()
    ctx = streaming_request()

    with caplog.at_level(logging.WARNING, "tollgate.metering"):
        response, body = forward(upstream, ctx, refusals)

    assert upstream.sent[0] != CALLER_BODY and upstream.sent[1] == CALLER_BODY
    assert response.status == 200 and body == b"".join(STREAM)
    assert refused.closed
    assert not ctx.stream_usage_injected and ctx.json_body() == orjson.loads(CALLER_BODY)
    assert refusals.refused(ctx)
    assert "stream_options" in caplog.text and "sk-" not in caplog.text


def test_an_error_that_is_not_about_stream_options_goes_to_the_caller_whole() -> None:
    error = [b'{"error":{"message":"The model `gpt-5-nano` does not exist",', b'"code":"model_not_found"}}']
    upstream = Upstream([Canned(400, error)])
    refusals = StreamUsageRefusals()
    ctx = streaming_request()

    response, body = forward(upstream, ctx, refusals)

    assert len(upstream.sent) == 1 and response.status == 400
    assert body == b"".join(error)
    assert ctx.stream_usage_injected and not refusals.refused(ctx)


# FastAPI / pydantic servers (vLLM, LiteLLM) put the request they got in a validation error about
# another field: the member the gateway added is echoed, not refused.
ECHOING_ERRORS = [
    b'{"detail":[{"type":"missing","loc":["body","messages"],"msg":"Field required",'
    b'"input":{"model":"m","stream":true,"stream_options":{"include_usage":true}}}]}',
    b"{\"object\":\"error\",\"message\":\"[{'type': 'missing', 'loc': ('body', 'messages'), 'msg': 'Field "
    b"required', 'input': {'model': 'm', 'stream': True, 'stream_options': {'include_usage': True, "
    b'\'continuous_usage_stats\': True}}}]","type":"BadRequestError","code":400}',
]


@pytest.mark.parametrize("error", ECHOING_ERRORS, ids=["fastapi-json", "vllm-repr"])
def test_an_error_that_only_echoes_the_added_member_is_the_caller_s_and_refuses_nothing(error: bytes) -> None:
    upstream = Upstream([Canned(422, [error])])
    refusals = StreamUsageRefusals()
    ctx = streaming_request()

    response, body = forward(upstream, ctx, refusals)

    assert len(upstream.sent) == 1 and response.status == 422 and body == error
    assert not refusals.refused(ctx)  # one malformed request does not switch usage off for everyone


def test_a_refusal_that_also_echoes_the_member_is_still_a_refusal() -> None:
    refusal = (
        b'{"detail":[{"type":"extra_forbidden","loc":["body","stream_options"],'
        b'"msg":"Extra inputs are not permitted","input":{"include_usage":true}}]}'
    )
    upstream = Upstream([Canned(422, [refusal]), Canned(200, STREAM)])

    response, _ = forward(upstream, streaming_request(), StreamUsageRefusals())

    assert len(upstream.sent) == 2 and response.status == 200


def test_an_error_quoting_the_caller_s_text_about_stream_options_is_relayed_and_remembered_for_none() -> None:
    """The request fails again without the member (the caller's own mistake, whose message quotes the
    caller's text): no refusal, so one tenant cannot switch usage off for everyone."""
    quoting = (
        b'{"error":{"message":"Invalid value: \'stream_options please\'. Supported values are: \'system\', '
        b'\'user\'.","param":"messages[0].role","code":"invalid_value"}}'
    )
    upstream = Upstream([Canned(400, [quoting]), Canned(400, [quoting])])
    refusals = StreamUsageRefusals()
    ctx = streaming_request()

    response, body = forward(upstream, ctx, refusals)

    assert len(upstream.sent) == 2 and upstream.sent[1] == CALLER_BODY
    assert response.status == 400 and body == quoting  # the caller's request, answered as it would be
    assert not refusals.refused(ctx)


@dataclass
class Breaking(Canned):
    """An error body that breaks after its first chunk (the upstream gone, or its read timing out)."""

    failure: Exception = field(default_factory=lambda: ConnectionResetError("upstream reset"))

    async def chunks(self) -> AsyncIterator[bytes]:
        yield self.body[0]
        raise self.failure


@dataclass
class Stalled(Canned):
    """An error body whose first chunk never comes."""

    async def chunks(self) -> AsyncIterator[bytes]:
        await asyncio.Event().wait()
        yield b""


def test_an_error_body_that_breaks_while_read_goes_to_the_caller_as_far_as_it_came_then_fails() -> None:
    broken = Breaking(400, [AZURE_REFUSAL[:20]])
    upstream = Upstream([broken])
    ctx = streaming_request()

    async def exchange() -> tuple[UpstreamResponse, list[bytes], BaseException | None]:
        response = await ResendWithoutStreamUsage(upstream, StreamUsageRefusals())(ctx)
        relayed: list[bytes] = []
        try:
            async for chunk in response.chunks():
                relayed.append(chunk)
        except ConnectionResetError as failure:
            await response.aclose()
            return response, relayed, failure
        return response, relayed, None

    response, relayed, failure = asyncio.run(exchange())

    assert len(upstream.sent) == 1 and response.status == 400
    assert relayed == [AZURE_REFUSAL[:20]] and failure is broken.failure
    assert broken.closed  # released when the relay lets go of it


def test_an_error_body_still_being_read_when_the_call_is_cancelled_is_released() -> None:
    stalled = Stalled(400, [])
    ctx = streaming_request()

    async def cancel_while_reading() -> None:
        resend = ResendWithoutStreamUsage(Upstream([stalled]), StreamUsageRefusals())
        call = asyncio.ensure_future(resend(ctx))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call

    asyncio.run(cancel_while_reading())

    assert stalled.closed


def test_a_long_error_body_is_relayed_whole_without_a_second_request() -> None:
    long_error = [b"x" * 4096 for _ in range(MAX_REFUSAL_BYTES // 4096 + 3)] + [b"stream_options"]
    upstream = Upstream([Canned(400, long_error)])

    response, body = forward(upstream, streaming_request(), StreamUsageRefusals())

    assert len(upstream.sent) == 1 and response.status == 400 and body == b"".join(long_error)


def test_answers_to_requests_the_gateway_did_not_change_are_not_looked_at() -> None:
    untouched = Canned(400, [AZURE_REFUSAL])
    upstream = Upstream([untouched])
    ctx = streaming_request()
    ctx.stream_usage_injected = False  # as for a caller that asked for include_usage itself

    response, body = forward(upstream, ctx, StreamUsageRefusals())

    assert response is untouched and body == AZURE_REFUSAL and len(upstream.sent) == 1


def test_a_refusal_is_remembered_per_provider_and_azure_api_version() -> None:
    refusals = StreamUsageRefusals()
    old = streaming_request("openai", b"api-version=2024-06-01")
    refusals.note(old)

    assert refusals.refused(streaming_request("openai", b"x=1&api-version=2024-06-01"))
    assert not refusals.refused(streaming_request("openai", b"api-version=2024-10-21"))
    assert not refusals.refused(streaming_request("local", b"api-version=2024-06-01"))


def test_the_providers_asked_are_the_openai_style_ones_unless_configured_otherwise() -> None:
    settings = parse_settings(
        {
            "providers": {
                "openai": {"type": "openai"},
                "azure": {"type": "azure-openai", "base_url": "https://r.openai.azure.com"},
                "mistral": {
                    "type": "openai-compatible",
                    "base_url": "https://api.mistral.ai/v1",
                    "inject_stream_usage": False,
                },
                "claude": {"type": "anthropic"},
            },
        }
    )
    only_vllm = parse_settings(
        {
            "metering": {"inject_stream_usage": False},
            "providers": {
                "openai": {"type": "openai"},
                "vllm": {
                    "type": "openai-compatible",
                    "base_url": "http://vllm:8000/v1",
                    "inject_stream_usage": True,
                },
            },
        }
    )

    assert providers_to_ask(settings) == {"openai", "azure"}
    assert providers_to_ask(only_vllm) == {"vllm"}
