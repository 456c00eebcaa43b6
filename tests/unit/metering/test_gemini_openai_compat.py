"""Gemini's OpenAI-compatible API (`/v1beta/openai/...` under a gemini provider) is metered as OpenAI's
is: its chat and completions streams are asked for their usage when the caller did not ask, and what
the caller did not ask for is taken out again; Gemini's native API is left as it is."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
import pytest

from gateway.context import RequestContext
from gateway.metering.endpoints import classify, openai_style
from gateway.metering.extractors import extractor_for
from gateway.metering.extractors.openai_strip import StripStream
from gateway.metering.meter import PrepareMetering
from gateway.metering.stream_usage import StreamUsageRefusals, providers_to_ask, refuses_stream_options
from gateway.metering.usage import Endpoint, TokenUsage
from gateway.providers import build_adapters
from gateway.settings import parse_settings
from tests.unit.metering.support import SSE, run, splittings

E = Endpoint
SETTINGS = parse_settings(
    {
        "providers": {
            "gemini": {"type": "gemini"},
            "openai": {"type": "openai"},
            "claude": {"type": "anthropic"},
        }
    }
)
ADAPTERS = build_adapters(SETTINGS.providers)
CHAT = {"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "hello"}], "stream": True}
NATIVE = {"contents": [{"role": "user", "parts": [{"text": "hello"}]}]}


@pytest.mark.parametrize(
    ("kind", "path", "expected"),
    [
        ("gemini", "/v1beta/openai/chat/completions", True),
        ("gemini", "/v1beta/openai/embeddings", True),
        ("gemini", "/v1/openai/chat/completions", True),
        ("gemini", "/v1beta/models/gemini-2.5-flash:streamGenerateContent", False),
        ("gemini", "/v1beta/models/gemini-2.5-flash:generateContent", False),
        ("gemini", "/v1beta/models/openai:generateContent", False),  # a model so named: native
        ("gemini", "/v1beta/tunedModels/x/openai/chat/completions", False),
        ("openai", "/v1/chat/completions", True),
        ("azure-openai", "/openai/deployments/d/chat/completions", True),
        ("openai-compatible", "/v1/chat/completions", True),
        ("anthropic", "/v1/messages", False),
        ("anthropic", "/v1/openai/chat/completions", False),
    ],
)
def test_openai_style_calls_are_known_by_family_and_for_gemini_by_path(
    kind: str, path: str, expected: bool
) -> None:
    assert openai_style(kind, path) is expected


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("POST", "/v1beta/openai/chat/completions", E.CHAT_COMPLETIONS),
        ("POST", "/v1beta/openai/completions", E.COMPLETIONS),
        ("POST", "/v1beta/openai/embeddings", E.EMBEDDINGS),
        ("POST", "/v1beta/openai/responses", E.RESPONSES),
        ("GET", "/v1beta/openai/models", E.UNMETERED),
        ("POST", "/v1beta/openai/images/generations", E.OTHER),
        ("POST", "/v1beta/openai/batches", E.BILLED_LATER),
    ],
)
def test_gemini_openai_paths_are_classified_as_openai_s(method: str, path: str, expected: Endpoint) -> None:
    assert classify("gemini", method, path) is expected


def context(provider: str, path: str, body: dict[str, Any]) -> RequestContext:
    return RequestContext(
        request_id="req-1",
        started=time.perf_counter(),
        method="POST",
        provider=ADAPTERS[provider],
        raw_path=path.encode(),
        query_string=b"",
        headers=[],
        receive=None,  # type: ignore[arg-type]
        path=path,
        body=orjson.dumps(body),
    )


def prepare(ctx: RequestContext) -> None:
    asyncio.run(PrepareMetering(providers_to_ask(SETTINGS), StreamUsageRefusals())(ctx))


def test_a_gemini_openai_stream_without_usage_asked_for_gets_include_usage_added() -> None:
    ctx = context("gemini", "/v1beta/openai/chat/completions", CHAT)

    prepare(ctx)

    assert ctx.endpoint is E.CHAT_COMPLETIONS and ctx.stream_usage_injected
    assert orjson.loads(ctx.body)["stream_options"] == {"include_usage": True}
    assert ctx.body_before_injection == orjson.dumps(CHAT)


def test_a_gemini_openai_stream_that_asked_for_usage_is_sent_as_it_came() -> None:
    body = {**CHAT, "stream_options": {"include_usage": True}}
    ctx = context("gemini", "/v1beta/openai/chat/completions", body)

    prepare(ctx)

    assert not ctx.stream_usage_injected and ctx.body == orjson.dumps(body)


@pytest.mark.parametrize(
    "path",
    [
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
        "/v1beta/models/gemini-2.5-flash:generateContent",
    ],
)
def test_gemini_native_calls_are_sent_as_they_came(path: str) -> None:
    body = {**NATIVE, "stream": True}  # even with a stray `stream` member
    ctx = context("gemini", path, body)

    prepare(ctx)

    assert not ctx.stream_usage_injected and ctx.body == orjson.dumps(body)


def test_gemini_providers_are_asked_by_default_and_never_when_metering_says_not() -> None:
    off = parse_settings(
        {"metering": {"inject_stream_usage": False}, "providers": {"gemini": {"type": "gemini"}}}
    )

    assert providers_to_ask(SETTINGS) == {"gemini", "openai"}
    assert providers_to_ask(off) == frozenset()


def _chunk(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def _gemini_stream(usage_on_every_chunk: bool) -> tuple[bytes, bytes]:
    """A stream shaped as Gemini's OpenAI-compatible endpoint has been seen to send it (keys in order,
    no `"usage":null` members, the usage object on content chunks: cumulative on each, or on the last
    only), and the same stream without usage."""
    words = ["Hello", " from", " Gemini"]
    events, bare = [], []
    for number, word in enumerate(words, start=1):
        last = number == len(words)
        chunk: dict[str, Any] = {
            "choices": [
                {
                    "delta": {"content": word, "role": "assistant"},
                    "finish_reason": "stop" if last else None,
                    "index": 0,
                }
            ],
            "created": 1764000000,
            "id": "abc",
            "model": "gemini-2.5-flash",
            "object": "chat.completion.chunk",
        }
        bare.append(_chunk(chunk))
        if usage_on_every_chunk or last:
            chunk["usage"] = {"completion_tokens": number, "prompt_tokens": 7, "total_tokens": 7 + number}
        events.append(_chunk(chunk))
    done = b"data: [DONE]\n\n"
    return b"".join(events) + done, b"".join(bare) + done


def test_a_stream_the_gateway_asked_for_usage_is_stripped_for_the_gemini_family_too() -> None:
    extractor = extractor_for("gemini", E.CHAT_COMPLETIONS, SSE, strip_injected_usage=True)

    assert isinstance(extractor, StripStream)


def test_a_native_gemini_stream_is_never_stripped() -> None:
    extractor = extractor_for("gemini", E.STREAM_GENERATE_CONTENT, SSE, strip_injected_usage=True)

    assert not isinstance(extractor, StripStream)


@pytest.mark.parametrize("usage_on_every_chunk", [True, False], ids=["every chunk", "last chunk"])
def test_gemini_s_usage_on_content_chunks_is_read_last_and_removed_for_the_caller(
    usage_on_every_chunk: bool,
) -> None:
    stream, bare = _gemini_stream(usage_on_every_chunk)

    for label, pieces in splittings(stream):
        extraction, relayed = run("gemini", E.CHAT_COMPLETIONS, SSE, pieces, strip=True)

        assert relayed == bare, label
        assert extraction.usage == TokenUsage(input_tokens=7, output_tokens=3), label
        assert extraction.model == "gemini-2.5-flash", label


# Gemini's API reference lists `streamOptions` among the compatible API's fields; should a version refuse
# it, Google's front end names the field, as a body or as a one-error array.
GOOGLE_REFUSAL = (
    b'{"error":{"code":400,"message":"Invalid JSON payload received. Unknown name \\"stream_options\\": '
    b'Cannot find field.","status":"INVALID_ARGUMENT"}}'
)


@pytest.mark.parametrize("body", [GOOGLE_REFUSAL, b"[" + GOOGLE_REFUSAL + b"]"], ids=["object", "array"])
def test_a_refusal_in_google_s_error_shape_is_known_as_one(body: bytes) -> None:
    assert refuses_stream_options(body)
