"""Whatever passes, an extractor neither raises nor changes what it does not own, and says what it knows."""

from __future__ import annotations

import json
import random

import pytest

from gateway.metering.usage import Endpoint, TokenUsage
from tests.unit.metering.support import JSON, SSE, fixture, random_pieces, run

STREAMS = [
    ("openai", Endpoint.CHAT_COMPLETIONS, SSE),
    ("openai", Endpoint.COMPLETIONS, SSE),
    ("openai", Endpoint.RESPONSES, SSE),
    ("anthropic", Endpoint.MESSAGES, SSE),
    ("gemini", Endpoint.STREAM_GENERATE_CONTENT, SSE),
    ("gemini", Endpoint.STREAM_GENERATE_CONTENT, JSON),
]
BODIES = [
    ("openai", Endpoint.CHAT_COMPLETIONS, JSON),
    ("openai", Endpoint.RESPONSES, JSON),
    ("openai", Endpoint.EMBEDDINGS, JSON),
    ("anthropic", Endpoint.MESSAGES, JSON),
    ("gemini", Endpoint.GENERATE_CONTENT, JSON),
    ("gemini", Endpoint.EMBED_CONTENT, JSON),
    ("openai", Endpoint.OTHER, JSON),
]
GARBAGE = [
    b"",
    b"\x00\xff\xfe garbage \r\n\r\n\n\n",
    b"<html><body><h1>502 Bad Gateway</h1></body></html>\n",
    b'data: {"choices": [{"delta": {"content": "unterminated\n\n',
    b"data: [DONE]\n\ndata: [DONE]\n\n",
    b'event: message_delta\ndata: {"usage": {"output_tokens": "many"}}\n\n',
    b'data: {"usage": {"prompt_tokens": -5, "completion_tokens": true}}\n\n',
    b'[{"candidates": 7}, {"usageMetadata": [1, 2]}]',
    b"\n" * 100 + b"data:" * 50,
    bytes(random.Random(7).randrange(256) for _ in range(5000)),
]


@pytest.mark.parametrize(("kind", "endpoint", "content_type"), STREAMS + BODIES)
@pytest.mark.parametrize("garbage", GARBAGE, ids=range(len(GARBAGE)))
def test_garbage_never_raises_and_passes_through_unchanged(
    kind: str, endpoint: Endpoint, content_type: bytes, garbage: bytes
) -> None:
    for strip in (False, True):
        extraction, relayed = run(kind, endpoint, content_type, random_pieces(garbage, 9, 50), strip=strip)

        assert extraction.usage is None or extraction.usage.total_tokens >= 0
        assert extraction.output_chars >= 0
        if not strip:
            assert relayed == garbage


@pytest.mark.parametrize(
    "body",
    [
        {
            "error": {
                "message": "Rate limit reached",
                "type": "rate_limit_exceeded",
                "param": None,
                "code": None,
            }
        },
        {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
        {"error": {"code": 429, "message": "Resource exhausted", "status": "RESOURCE_EXHAUSTED"}},
    ],
)
@pytest.mark.parametrize(("kind", "endpoint", "content_type"), BODIES)
def test_error_bodies_report_no_usage(
    kind: str, endpoint: Endpoint, content_type: bytes, body: dict[str, object]
) -> None:
    extraction, _ = run(kind, endpoint, content_type, [json.dumps(body).encode()])

    assert extraction.usage is None


def test_a_truncated_json_body_reports_no_usage() -> None:
    body = fixture("openai_chat.json")

    extraction, _ = run("openai", Endpoint.CHAT_COMPLETIONS, JSON, [body[: len(body) // 2]])

    assert extraction.usage is None


@pytest.mark.parametrize("endpoint", [Endpoint.COUNT_TOKENS, Endpoint.UNMETERED])
def test_unmetered_calls_report_zero_usage_whatever_passes(endpoint: Endpoint) -> None:
    extraction, relayed = run("anthropic", endpoint, JSON, [b'{"input_tokens": 2095}'])

    assert extraction.usage == TokenUsage()
    assert relayed == b'{"input_tokens": 2095}'


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        ({"prompt_tokens": 10, "completion_tokens": 2}, TokenUsage(input_tokens=10, output_tokens=2)),
        (
            {"input_tokens": 10, "output_tokens": 2, "input_tokens_details": {"cached_tokens": 4}},
            TokenUsage(input_tokens=10, output_tokens=2, cached_input_tokens=4),
        ),
        (
            {"input_tokens": 10, "output_tokens": 2, "cache_read_input_tokens": 4},
            TokenUsage(input_tokens=14, output_tokens=2, cached_input_tokens=4),
        ),
    ],
)
def test_other_calls_read_a_top_level_usage_in_a_known_shape(
    usage: dict[str, object], expected: TokenUsage
) -> None:
    body = json.dumps({"id": "x", "model": "m", "usage": usage}).encode()

    extraction, _ = run("openai", Endpoint.OTHER, JSON, [body])

    assert extraction.usage == expected
    assert extraction.model == "m"


def test_other_calls_read_a_top_level_usage_metadata() -> None:
    body = json.dumps({"predictions": [], "usageMetadata": {"promptTokenCount": 7}}).encode()

    extraction, _ = run("gemini", Endpoint.OTHER, JSON, [body])

    assert extraction.usage == TokenUsage(input_tokens=7)


def test_other_calls_without_usage_report_none() -> None:
    extraction, _ = run("openai", Endpoint.OTHER, JSON, [b'{"data": [{"url": "https://x"}]}'])

    assert extraction.usage is None


def test_an_event_stream_of_an_other_call_reports_none() -> None:
    extraction, _ = run("openai", Endpoint.OTHER, SSE, [fixture("openai_chat_stream_usage.sse")])

    assert extraction.usage is None


def test_a_stream_served_as_json_is_still_read_as_a_stream() -> None:
    extraction, _ = run("openai", Endpoint.CHAT_COMPLETIONS, None, [fixture("openai_chat_stream_usage.sse")])

    assert extraction.usage == TokenUsage(input_tokens=1432, output_tokens=12, cached_input_tokens=1280)


def test_media_bodies_are_neither_held_nor_read() -> None:
    audio = b"ID3\x04\x00" + bytes(range(256)) * 64

    extraction, relayed = run("openai", Endpoint.OTHER, b"audio/mpeg", random_pieces(audio, 3))

    assert extraction.usage is None
    assert relayed == audio


def test_a_large_body_of_an_other_call_finds_its_usage_at_the_end() -> None:
    images = {
        "created": 1,
        "data": [{"b64_json": "iVBORw0KGgo" * 2000}],
        "usage": {"input_tokens": 50, "output_tokens": 4160},
    }

    extraction, _ = run("openai", Endpoint.OTHER, JSON, random_pieces(json.dumps(images).encode(), 4, 5000))

    assert extraction.usage == TokenUsage(input_tokens=50, output_tokens=4160)
