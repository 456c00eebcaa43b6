"""When the gateway added `stream_options.include_usage` itself, the caller gets the stream it asked for."""

from __future__ import annotations

import json

import pytest

from gateway.metering.extractors import extractor_for
from gateway.metering.usage import Endpoint, TokenUsage
from tests.unit.metering.support import SSE, fixture, near, run, splittings

PAIRS = [
    # kind, endpoint, the stream with include_usage, the same stream without it
    ("openai", Endpoint.CHAT_COMPLETIONS, "openai_chat_stream_usage.sse", "openai_chat_stream.sse"),
    ("openai", Endpoint.COMPLETIONS, "openai_completions_stream_usage.sse", "openai_completions_stream.sse"),
    ("azure-openai", Endpoint.CHAT_COMPLETIONS, "azure_chat_stream_usage.sse", "azure_chat_stream.sse"),
    (
        "openai-compatible",
        Endpoint.CHAT_COMPLETIONS,
        "compat_chat_stream_usage_spaced.sse",
        "compat_chat_stream_spaced.sse",
    ),
]


@pytest.mark.parametrize(("kind", "endpoint", "with_usage", "without_usage"), PAIRS)
def test_the_caller_receives_byte_for_byte_the_stream_without_include_usage(
    kind: str, endpoint: Endpoint, with_usage: str, without_usage: str
) -> None:
    expected = fixture(without_usage)
    whole, _ = run(kind, endpoint, SSE, [fixture(with_usage)], strip=True)
    for label, pieces in splittings(fixture(with_usage)):
        extraction, relayed = run(kind, endpoint, SSE, pieces, strip=True)

        assert relayed == expected, label
        assert extraction == whole, label
    assert whole.usage is not None


def test_stripping_still_reports_the_usage_model_and_text() -> None:
    stream = fixture("openai_chat_stream_usage.sse")
    usage_event = stream[stream.rindex(b"data: {") : stream.rindex(b"data: [DONE]")]
    cut = stream.replace(usage_event, b"")  # no usage-only event: the provider left it out

    extraction, _ = run("openai", Endpoint.CHAT_COMPLETIONS, SSE, [stream], strip=True)
    unreported, relayed = run("openai", Endpoint.CHAT_COMPLETIONS, SSE, [cut], strip=True)

    assert extraction.usage == TokenUsage(input_tokens=1432, output_tokens=12, cached_input_tokens=1280)
    assert extraction.model == "gpt-4o-mini-2024-07-18"
    assert extraction.output_chars == 0  # reported usage: the text is not counted
    assert unreported.usage is None
    assert unreported.model == "gpt-4o-mini-2024-07-18"
    assert near(unreported.output_chars, len('Hello! Here is a "quoted" line\nand café.'))
    assert relayed == fixture("openai_chat_stream.sse")


def event(body: dict[str, object]) -> bytes:
    return b"data: " + json.dumps(body, separators=(",", ":")).encode() + b"\n\n"


def content(word: str, **extra: object) -> bytes:
    return event({"id": "c", "choices": [{"index": 0, "delta": {"content": word}}], "usage": None, **extra})


def test_an_incomplete_trailing_event_waits_for_its_end_and_a_complete_one_never_waits() -> None:
    first, second = content("Hi"), content(" there")
    pieces = [first + second[:20], second[20:]]
    extractor = extractor_for("openai", Endpoint.CHAT_COMPLETIONS, SSE, strip_injected_usage=True)
    relayed = [extractor.feed(piece) for piece in pieces]

    assert relayed[0] == first.replace(b',"usage":null', b"")
    assert relayed[1] == second.replace(b',"usage":null', b"")


def test_done_without_its_blank_line_is_relayed_at_once() -> None:
    _, relayed = run("openai", Endpoint.CHAT_COMPLETIONS, SSE, [content("Hi"), b"data: [DONE]"], strip=True)

    assert relayed.endswith(b"data: [DONE]")


def test_usage_on_a_chunk_with_content_loses_only_its_usage_member() -> None:
    usage = {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}
    last = event({"id": "c", "choices": [{"index": 0, "delta": {"content": "!"}}], "usage": usage, "x": 1})

    extraction, relayed = run("openai-compatible", Endpoint.CHAT_COMPLETIONS, SSE, [last], strip=True)

    assert relayed == event({"id": "c", "choices": [{"index": 0, "delta": {"content": "!"}}], "x": 1})
    assert extraction.usage == TokenUsage(input_tokens=3, output_tokens=1)


def test_a_usage_object_nested_in_a_servers_own_member_is_the_callers_and_stays() -> None:
    """Groq's finish chunk: its `x_groq.usage` comes whatever the request asked; only the top-level
    usage that `include_usage` added goes. A text that spells a usage member stays too."""
    usage = {"prompt_tokens": 201, "completion_tokens": 61, "total_tokens": 262}
    finish = {"id": "c", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    groq = {"id": "req_01", "usage": {**usage, "queue_time": 0.19}}
    quoted = content('"usage":{"a":1}')
    stream = quoted + event({**finish, "x_groq": groq, "usage": usage}) + b"data: [DONE]\n\n"

    extraction, relayed = run("openai-compatible", Endpoint.CHAT_COMPLETIONS, SSE, [stream], strip=True)

    assert relayed == (
        quoted.replace(b',"usage":null', b"") + event({**finish, "x_groq": groq}) + b"data: [DONE]\n\n"
    )
    assert extraction.usage == TokenUsage(input_tokens=201, output_tokens=61)


def test_an_event_too_long_to_hold_is_relayed_unchanged() -> None:
    huge = content("x" * 100_000)

    _, relayed = run("openai", Endpoint.CHAT_COMPLETIONS, SSE, [huge[:70_000], huge[70_000:]], strip=True)

    assert relayed == huge


def test_an_incomplete_event_still_held_when_the_stream_ends_is_not_relayed() -> None:
    cut = content("Hi") + content(" there")[:30]

    extraction, relayed = run("openai", Endpoint.CHAT_COMPLETIONS, SSE, [cut], strip=True)

    assert relayed == content("Hi").replace(b',"usage":null', b"")
    assert extraction.usage is None


def test_without_stripping_feed_returns_the_very_same_chunk() -> None:
    chunks = fixture("openai_chat_stream_usage.sse").split(b"\n\n")
    extractor = extractor_for("openai", Endpoint.CHAT_COMPLETIONS, SSE, strip_injected_usage=False)

    assert all(extractor.feed(chunk) is chunk for chunk in chunks)


@pytest.mark.parametrize("endpoint", [Endpoint.RESPONSES, Endpoint.EMBEDDINGS])
def test_stripping_applies_to_chat_and_completions_streams_only(endpoint: Endpoint) -> None:
    stream = fixture("openai_responses_stream.sse")

    _, relayed = run("openai", endpoint, SSE, [stream], strip=True)

    assert relayed == stream


def test_a_crlf_framed_stream_is_stripped_alike() -> None:
    with_usage = fixture("openai_chat_stream_usage.sse").replace(b"\n", b"\r\n")
    without_usage = fixture("openai_chat_stream.sse").replace(b"\n", b"\r\n")

    for label, pieces in splittings(with_usage):
        _, relayed = run("openai-compatible", Endpoint.CHAT_COMPLETIONS, SSE, pieces, strip=True)

        assert relayed == without_usage, label


def test_a_chunk_whose_first_member_is_spelled_otherwise_loses_every_member_and_its_usage_event() -> None:
    spaced = b'data: {"id":"c","choices":[{"index":0,"delta":{"content":"Hi"}}], "usage": null}\n\n'
    usage = {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}
    usage_only = event({"id": "c", "model": "gpt-4o-mini", "choices": [], "usage": usage})
    chunk = spaced + content(" there") + content("!") + usage_only + b"data: [DONE]\n\n"

    extraction, relayed = run("openai", Endpoint.CHAT_COMPLETIONS, SSE, [chunk], strip=True)

    stripped = content(" there").replace(b',"usage":null', b"") + content("!").replace(b',"usage":null', b"")
    assert relayed == spaced.replace(b', "usage": null', b"") + stripped + b"data: [DONE]\n\n"
    assert extraction.usage == TokenUsage(input_tokens=5, output_tokens=3)
    assert extraction.model == "gpt-4o-mini"
