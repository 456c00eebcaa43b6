"""Anthropic's Messages API: usage read from recorded response shapes, cache tokens normalised."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest

from gateway.metering.prices import cost_of, load_price_table
from gateway.metering.usage import Endpoint, TokenUsage
from tests.unit.metering.support import (
    JSON,
    SSE,
    extract_every_way,
    fixture,
    near,
    stream_without_usage,
    without_usage,
)

THINKING = "The user asks for a short poem."
TEXT = "Waves fold on the shore,\nthe moon keeps count."


def sse(*events: tuple[str, str]) -> bytes:
    return b"".join(f"event: {name}\ndata: {data}\n\n".encode() for name, data in events)


def test_message_body_counts_cache_reads_and_writes_as_input() -> None:
    extraction = extract_every_way("anthropic", Endpoint.MESSAGES, JSON, fixture("anthropic_messages.json"))

    assert extraction.usage == TokenUsage(
        input_tokens=12 + 4096 + 2051, output_tokens=85, cached_input_tokens=4096, cache_write_tokens=2051
    )
    assert extraction.model == "claude-sonnet-4-5-20250929"


def test_message_body_without_usage_counts_its_generated_text_for_the_estimate() -> None:
    body = without_usage(fixture("anthropic_messages.json"))

    extraction = extract_every_way("anthropic", Endpoint.MESSAGES, JSON, body)

    assert extraction.usage is None
    thinking = "The user wants the weather; I should call the tool."
    tool_input = '{"location":"Paris, France"}'
    answer = "Let me check the weather in Paris."
    assert extraction.output_chars == len(thinking) + len(answer) + len(tool_input)


def test_message_stream_combines_message_start_and_message_delta() -> None:
    extraction = extract_every_way(
        "anthropic", Endpoint.MESSAGES, SSE, fixture("anthropic_messages_stream.sse")
    )

    assert extraction.usage == TokenUsage(
        input_tokens=472 + 2048 + 1024, output_tokens=89, cached_input_tokens=2048, cache_write_tokens=1024
    )
    assert extraction.model == "claude-sonnet-4-5-20250929"
    assert extraction.output_chars == 0  # reported usage: the text is not counted


def test_cache_writes_kept_an_hour_are_told_apart_in_bodies_and_streams() -> None:
    body = fixture("anthropic_messages.json").replace(
        b'"ephemeral_5m_input_tokens": 2051,\n      "ephemeral_1h_input_tokens": 0',
        b'"ephemeral_5m_input_tokens": 1027,\n      "ephemeral_1h_input_tokens": 1024',
    )
    stream = fixture("anthropic_messages_stream.sse").replace(
        b'"ephemeral_5m_input_tokens":1024,"ephemeral_1h_input_tokens":0',
        b'"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":1024',
    )
    assert body != fixture("anthropic_messages.json") and stream != fixture("anthropic_messages_stream.sse")

    from_body = extract_every_way("anthropic", Endpoint.MESSAGES, JSON, body).usage
    from_stream = extract_every_way("anthropic", Endpoint.MESSAGES, SSE, stream).usage

    assert from_body is not None and from_stream is not None
    assert (from_body.cache_write_tokens, from_body.cache_write_1h_tokens) == (2051, 1024)
    assert (from_stream.cache_write_tokens, from_stream.cache_write_1h_tokens) == (1024, 1024)
    assert from_body.input_tokens == 12 + 4096 + 2051  # the writes counted once, whatever their duration


def test_hour_long_writes_never_exceed_the_cache_writes_reported() -> None:
    written = {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 99}
    usage: dict[str, object] = {"input_tokens": 5, "output_tokens": 1, "cache_creation_input_tokens": 10}
    usage["cache_creation"] = written
    body = orjson.dumps({"type": "message", "model": "claude-haiku-4-5", "usage": usage})

    extraction = extract_every_way("anthropic", Endpoint.MESSAGES, JSON, body)

    assert extraction.usage is not None and extraction.usage.cache_write_1h_tokens == 10


def test_message_stream_without_usage_counts_its_text_for_the_estimate() -> None:
    stream = stream_without_usage(fixture("anthropic_messages_stream.sse"))

    extraction = extract_every_way("anthropic", Endpoint.MESSAGES, SSE, stream)

    assert extraction.usage is None and extraction.partial is None
    assert extraction.model == "claude-sonnet-4-5-20250929"
    assert near(extraction.output_chars, len(THINKING) + len(TEXT))


def test_message_delta_with_output_tokens_only_keeps_the_input_counts_of_message_start() -> None:
    start = (
        '{"type":"message_start","message":{"model":"claude-haiku-4-5","usage":'
        '{"input_tokens":25,"cache_creation_input_tokens":null,"cache_read_input_tokens":10,"output_tokens":1}}}'
    )
    stream = sse(
        ("message_start", start),
        (
            "content_block_delta",
            '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}',
        ),
        (
            "message_delta",
            '{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":15}}',
        ),
        ("message_stop", '{"type":"message_stop"}'),
    )

    extraction = extract_every_way("anthropic", Endpoint.MESSAGES, SSE, stream)
    unreported = extract_every_way("anthropic", Endpoint.MESSAGES, SSE, stream_without_usage(stream))

    assert extraction.usage == TokenUsage(input_tokens=35, output_tokens=15, cached_input_tokens=10)
    assert unreported.usage is None
    assert unreported.output_chars == 2


def test_a_stream_cut_before_message_delta_reports_no_usage_but_keeps_message_start_s_counts() -> None:
    stream = fixture("anthropic_messages_stream.sse")
    cut = stream[: stream.index(b"event: message_delta")]

    extraction = extract_every_way("anthropic", Endpoint.MESSAGES, SSE, cut)

    assert extraction.usage is None
    assert extraction.model == "claude-sonnet-4-5-20250929"
    assert near(extraction.output_chars, len(THINKING) + len(TEXT))
    assert extraction.partial == TokenUsage(  # message_start's exact counts, its output a first count
        input_tokens=472 + 2048 + 1024, output_tokens=2, cached_input_tokens=2048, cache_write_tokens=1024
    )


def test_events_without_event_lines_are_named_by_their_type() -> None:
    stream = fixture("anthropic_messages_stream.sse")
    data_only = b"\n".join(line for line in stream.split(b"\n") if not line.startswith(b"event:"))

    extraction = extract_every_way("anthropic", Endpoint.MESSAGES, SSE, data_only)
    unreported = extract_every_way("anthropic", Endpoint.MESSAGES, SSE, stream_without_usage(data_only))

    assert extraction.usage == TokenUsage(
        input_tokens=3544, output_tokens=89, cached_input_tokens=2048, cache_write_tokens=1024
    )
    assert unreported.usage is None
    assert near(unreported.output_chars, len(THINKING) + len(TEXT))


def test_an_error_event_mid_stream_leaves_the_usage_unknown() -> None:
    stream = sse(
        ("message_start", '{"type":"message_start","message":{"model":"m","usage":{"input_tokens":5}}}'),
        ("error", '{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'),
    )

    extraction = extract_every_way("anthropic", Endpoint.MESSAGES, SSE, stream)

    assert extraction.usage is None
    assert extraction.partial == TokenUsage(input_tokens=5)  # message_start's, kept for the estimate


# Server-side compaction (beta): the summary is one more sampling by the same model, billed, reported in
# `usage.iterations` as a `compaction` entry whose tokens the top-level fields leave out; the `message`
# entries are the top-level fields broken down.
COMPACTED = {
    "input_tokens": 23000,
    "output_tokens": 1000,
    "cache_creation_input_tokens": 0,
    "cache_read_input_tokens": 0,
    "iterations": [
        {
            "type": "compaction",
            "input_tokens": 150000,
            "output_tokens": 3500,
            "cache_creation_input_tokens": 2000,
            "cache_read_input_tokens": 28000,
            "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 2000},
        },
        {
            "type": "message",
            "input_tokens": 23000,
            "output_tokens": 1000,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    ],
}
WITH_COMPACTION = TokenUsage(
    input_tokens=23000 + 150000 + 28000 + 2000,
    output_tokens=1000 + 3500,
    cached_input_tokens=28000,
    cache_write_tokens=2000,
    cache_write_1h_tokens=2000,
)


def test_a_compaction_s_tokens_count_beside_the_top_level_usage_in_a_body() -> None:
    body = orjson.dumps(
        {
            "id": "msg_01",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5-20250929",
            "content": [
                {"type": "compaction", "content": "Summary of the conversation: ..."},
                {"type": "text", "text": "Based on our conversation so far, ..."},
            ],
            "stop_reason": "end_turn",
            "usage": COMPACTED,
        }
    )

    extraction = extract_every_way("anthropic", Endpoint.MESSAGES, JSON, body)

    assert extraction.usage == WITH_COMPACTION


def test_a_compaction_s_tokens_count_beside_the_cumulative_usage_of_message_delta() -> None:
    start = {
        "type": "message_start",
        "message": {
            "model": "claude-sonnet-4-5-20250929",
            "usage": {"input_tokens": 23000, "output_tokens": 1},
        },
    }
    delta = {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": COMPACTED}
    text = {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Based"}}
    stream = sse(
        ("message_start", orjson.dumps(start).decode()),
        ("content_block_delta", orjson.dumps(text).decode()),
        ("message_delta", orjson.dumps(delta).decode()),
        ("message_stop", '{"type":"message_stop"}'),
    )

    extraction = extract_every_way("anthropic", Endpoint.MESSAGES, SSE, stream)

    assert extraction.usage == WITH_COMPACTION


def test_thinking_tokens_broken_out_of_the_output_are_the_reasoning_in_bodies_and_streams() -> None:
    """Newer responses say how much of `output_tokens` (still the whole, billed output) was thinking:
    `output_tokens_details.thinking_tokens`, in the body's usage and in `message_delta`'s."""
    details = b'"output_tokens": 85,\n    "output_tokens_details": {"thinking_tokens": 60},'
    body = fixture("anthropic_messages.json").replace(b'"output_tokens": 85,', details)
    stream = fixture("anthropic_messages_stream.sse").replace(
        b'"output_tokens":89}}', b'"output_tokens":89,"output_tokens_details":{"thinking_tokens":70}}}'
    )
    assert body != fixture("anthropic_messages.json") and stream != fixture("anthropic_messages_stream.sse")

    from_body = extract_every_way("anthropic", Endpoint.MESSAGES, JSON, body).usage
    from_stream = extract_every_way("anthropic", Endpoint.MESSAGES, SSE, stream).usage

    assert from_body is not None and (from_body.output_tokens, from_body.reasoning_tokens) == (85, 60)
    assert from_stream is not None and (from_stream.output_tokens, from_stream.reasoning_tokens) == (89, 70)


def test_thinking_tokens_never_exceed_the_output_reported() -> None:
    usage = {"input_tokens": 5, "output_tokens": 10, "output_tokens_details": {"thinking_tokens": 99}}
    body = orjson.dumps({"type": "message", "model": "claude-haiku-4-5", "usage": usage})

    extraction = extract_every_way("anthropic", Endpoint.MESSAGES, JSON, body)

    assert extraction.usage == TokenUsage(input_tokens=5, output_tokens=10, reasoning_tokens=10)


@pytest.mark.parametrize(
    ("model", "input_rate", "output_rate"),
    [("claude-opus-4-6", "5", "25"), ("claude-sonnet-4-6", "3", "15"), ("claude-opus-5", "5", "25")],
)
def test_current_claude_models_are_priced_at_their_list_rates_whatever_the_prompt_s_length(
    model: str, input_rate: str, output_rate: str
) -> None:
    """Their 1M-token context is billed at the standard rates throughout: a prompt above 200k tokens
    costs no more per token; cache writes are 1.25x input (2x kept an hour), reads 0.1x."""
    price = load_price_table().price_for("anthropic", "anthropic", model)
    assert price is not None
    rates = Decimal(input_rate), Decimal(output_rate)

    long = TokenUsage(input_tokens=500_000, output_tokens=1_000, cached_input_tokens=400_000)
    cost = cost_of(long, price)

    assert (price.input, price.output) == rates
    assert cost == (100_000 * rates[0] + 400_000 * rates[0] / 10 + 1_000 * rates[1]) / 1_000_000
    assert (price.cache_write, price.cache_write_1h) == (rates[0] * Decimal("1.25"), rates[0] * 2)


# Fast mode: the usage says which speed served the call, `"speed": "fast"` or `"standard"` (the body's
# usage, `message_start`'s in a stream; Anthropic's fast mode page, "Checking which speed was used").
FAST_BODY = fixture("anthropic_messages.json").replace(
    b'"service_tier": "standard"', b'"service_tier": "standard",\n    "speed": "fast"'
)
FAST_STREAM = fixture("anthropic_messages_stream.sse").replace(
    b'"service_tier":"standard"}', b'"service_tier":"standard","speed":"fast"}'
)


def test_a_call_served_in_fast_mode_is_in_the_fast_tier_in_bodies_and_streams() -> None:
    assert fixture("anthropic_messages.json") != FAST_BODY
    assert fixture("anthropic_messages_stream.sse") != FAST_STREAM

    from_body = extract_every_way("anthropic", Endpoint.MESSAGES, JSON, FAST_BODY).usage
    from_stream = extract_every_way("anthropic", Endpoint.MESSAGES, SSE, FAST_STREAM).usage

    assert from_body == TokenUsage(
        input_tokens=12 + 4096 + 2051,
        output_tokens=85,
        cached_input_tokens=4096,
        cache_write_tokens=2051,
        service_tier="fast",
    )
    assert from_stream is not None and from_stream.service_tier == "fast"
    assert from_stream.output_tokens == 89


def test_the_speed_may_come_with_message_delta_too() -> None:
    stream = fixture("anthropic_messages_stream.sse").replace(
        b'"output_tokens":89}}', b'"output_tokens":89,"speed":"fast"}}'
    )
    assert stream != fixture("anthropic_messages_stream.sse")

    usage = extract_every_way("anthropic", Endpoint.MESSAGES, SSE, stream).usage

    assert usage is not None and usage.service_tier == "fast"


def test_a_fast_stream_cut_before_message_delta_keeps_its_tier_for_the_estimate() -> None:
    cut = FAST_STREAM[: FAST_STREAM.index(b"event: message_delta")]

    extraction = extract_every_way("anthropic", Endpoint.MESSAGES, SSE, cut)

    assert extraction.usage is None
    assert extraction.partial is not None and extraction.partial.service_tier == "fast"


@pytest.mark.parametrize("speed", [b'"standard"', b"null", b'"turbo"', b"2"])
def test_a_standard_or_unknown_speed_leaves_the_call_in_its_service_tier(speed: bytes) -> None:
    body = fixture("anthropic_messages.json").replace(
        b'"service_tier": "standard"', b'"service_tier": "priority",\n    "speed": ' + speed
    )

    usage = extract_every_way("anthropic", Endpoint.MESSAGES, JSON, body).usage

    assert usage is not None and usage.service_tier == "priority"


def test_fast_mode_outranks_the_priority_tier_it_was_reported_with() -> None:
    """Fast mode has list rates of its own; Priority Tier's are each customer's commitment."""
    body = FAST_BODY.replace(b'"service_tier": "standard"', b'"service_tier": "priority"')

    usage = extract_every_way("anthropic", Endpoint.MESSAGES, JSON, body).usage

    assert usage is not None and usage.service_tier == "fast"
