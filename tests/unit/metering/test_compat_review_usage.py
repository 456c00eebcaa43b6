"""Streams of OpenAI-compatible servers and proxies that end with a usage chunk of their own shape: the
usage the caller asked for is read however the stream arrives, and the strip leaves the stream as the
server would have sent it unasked."""

from __future__ import annotations

import json

import pytest

from gateway.metering.usage import Endpoint, TokenUsage
from tests.unit.metering.support import SSE, extract_every_way, run

WORDS = ("The", " answer", " is", " forty", "-two", ".")


def frame(event: dict[str, object]) -> bytes:
    return b"data: " + json.dumps(event, separators=(",", ":")).encode() + b"\n\n"


def litellm_chunk(choice: dict[str, object], **extra: object) -> dict[str, object]:
    return {
        "id": "chatcmpl-7f3c",
        "created": 1760000000,
        "model": "claude-sonnet-4-5",
        "object": "chat.completion.chunk",
        "choices": [choice],
        **extra,
    }


# A LiteLLM proxy asked for `stream_options.include_usage`: after the chunk with the finish reason, a
# usage chunk whose one choice says nothing (`"delta": {}`, no `finish_reason` key at all), not OpenAI's
# `"choices": []`; no `"usage": null` members before it. Unasked, the stream ends at the finish chunk.
LITELLM_USAGE = {
    "completion_tokens": 6,
    "prompt_tokens": 31,
    "total_tokens": 37,
    "completion_tokens_details": None,
    "prompt_tokens_details": {"audio_tokens": None, "cached_tokens": 12, "text_tokens": None},
}


def litellm_stream(*, usage: bool) -> bytes:
    events = [litellm_chunk({"index": 0, "delta": {"content": word, "role": "assistant"}}) for word in WORDS]
    events.append(litellm_chunk({"finish_reason": "stop", "index": 0, "delta": {}}))
    if usage:
        events.append(litellm_chunk({"index": 0, "delta": {}}, usage=LITELLM_USAGE))
    return b"".join(map(frame, events)) + b"data: [DONE]\n\n"


def test_a_usage_chunk_whose_choice_says_nothing_after_the_finish_is_the_total() -> None:
    extraction = extract_every_way(
        "openai-compatible", Endpoint.CHAT_COMPLETIONS, SSE, litellm_stream(usage=True)
    )

    assert extraction.usage == TokenUsage(input_tokens=31, output_tokens=6, cached_input_tokens=12)
    assert extraction.model == "claude-sonnet-4-5"
    assert extraction.output_chars == 0


def test_a_long_such_stream_read_as_it_passes_reports_its_usage_too() -> None:
    """Past the bytes kept for a read at its end (and with no `usage` in its first chunks), a stream is
    read as it passes: the usage chunk is the same total there."""
    events = [litellm_chunk({"index": 0, "delta": {"content": "x" * 1000}}) for _ in range(1200)]
    events.append(litellm_chunk({"finish_reason": "length", "index": 0, "delta": {}}))
    events.append(litellm_chunk({"index": 0, "delta": {}}, usage=LITELLM_USAGE))
    chunks = [*map(frame, events), b"data: [DONE]\n\n"]

    extraction, _ = run("openai-compatible", Endpoint.CHAT_COMPLETIONS, SSE, chunks)

    assert extraction.usage == TokenUsage(input_tokens=31, output_tokens=6, cached_input_tokens=12)
    assert extraction.output_chars == 0


def test_a_tool_call_stream_ending_with_such_a_usage_chunk_reports_it() -> None:
    """DeepSeek's models behind a compatible proxy end a tool call so: the finish chunk, then the usage in
    a chunk whose choice says nothing."""
    call = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": ""}}
    events = [litellm_chunk({"index": 0, "delta": {"role": "assistant", "tool_calls": [call]}})]
    events += [
        litellm_chunk({"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": part}}]}})
        for part in ('{"city', '": "Par', 'is"}')
    ]
    events.append(litellm_chunk({"finish_reason": "tool_calls", "index": 0, "delta": {}}))
    usage = {"prompt_tokens": 80, "completion_tokens": 14, "total_tokens": 94, "prompt_cache_hit_tokens": 64}
    events.append(litellm_chunk({"index": 0, "delta": {}}, usage=usage))
    stream = b"".join(map(frame, events)) + b"data: [DONE]\n\n"

    extraction = extract_every_way("openai-compatible", Endpoint.CHAT_COMPLETIONS, SSE, stream)

    assert extraction.usage == TokenUsage(input_tokens=80, output_tokens=14, cached_input_tokens=64)


@pytest.mark.parametrize("pieces", ["whole", "event by event", "byte by byte"])
def test_added_include_usage_such_a_usage_chunk_is_taken_out_and_read(pieces: str) -> None:
    asked = litellm_stream(usage=True)
    if pieces == "whole":
        chunks = [asked]
    elif pieces == "event by event":
        chunks = [event + b"\n\n" for event in asked.split(b"\n\n") if event]
    else:
        chunks = [asked[i : i + 1] for i in range(len(asked))]

    extraction, relayed = run("openai-compatible", Endpoint.CHAT_COMPLETIONS, SSE, chunks, strip=True)

    assert relayed == litellm_stream(usage=False)
    assert extraction.usage == TokenUsage(input_tokens=31, output_tokens=6, cached_input_tokens=12)
