"""Usage objects of OpenAI-compatible servers that count their tokens differently from OpenAI, read so
that the ledger's kinds keep their one meaning (`output` every output token, reasoning included)."""

from __future__ import annotations

import json

import pytest

from gateway.metering.extractors.openai import chat_usage, responses_usage
from gateway.metering.usage import Endpoint, TokenUsage
from tests.unit.metering.support import JSON, SSE, extract_every_way, run

# xAI's documented example (grok-3-mini): reasoning is counted apart from `completion_tokens`, and in
# `total_tokens`: 32 + 9 + 94 = 135.
XAI_CHAT_USAGE = {
    "prompt_tokens": 32,
    "completion_tokens": 9,
    "total_tokens": 135,
    "prompt_tokens_details": {"text_tokens": 32, "audio_tokens": 0, "image_tokens": 0, "cached_tokens": 6},
    "completion_tokens_details": {
        "reasoning_tokens": 94,
        "audio_tokens": 0,
        "accepted_prediction_tokens": 0,
        "rejected_prediction_tokens": 0,
    },
    "num_sources_used": 0,
}
XAI_USAGE = TokenUsage(input_tokens=32, output_tokens=103, cached_input_tokens=6, reasoning_tokens=94)


def xai_chat_body(usage: dict[str, object]) -> bytes:
    return json.dumps(
        {
            "id": "3b3f6a0e-7e4c-4b8e-9a55-1c0d0f5f0c11",
            "object": "chat.completion",
            "created": 1752000000,
            "model": "grok-3-mini",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "101 multiplied by 3 is 303."},
                    "finish_reason": "stop",
                }
            ],
            "usage": usage,
            "system_fingerprint": "fp_6d7a2b1c4e",
        }
    ).encode()


def xai_chat_stream(usage: dict[str, object]) -> bytes:
    head = {"id": "3b3f6a0e", "object": "chat.completion.chunk", "created": 1752000000}
    head["model"] = "grok-3-mini"
    deltas: list[dict[str, object]] = [{"role": "assistant", "content": "303"}, {"content": "."}]
    events = [{**head, "choices": [{"index": 0, "delta": delta}], "usage": None} for delta in deltas]
    events.append({**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": None})
    events.append({**head, "choices": [], "usage": usage})
    return b"".join(b"data: " + json.dumps(event).encode() + b"\n\n" for event in events) + (
        b"data: [DONE]\n\n"
    )


def test_reasoning_counted_apart_from_the_completion_tokens_is_part_of_the_output() -> None:
    extraction = extract_every_way(
        "openai-compatible", Endpoint.CHAT_COMPLETIONS, JSON, xai_chat_body(XAI_CHAT_USAGE)
    )

    assert extraction.usage == XAI_USAGE
    assert extraction.model == "grok-3-mini"


@pytest.mark.parametrize("strip", [False, True], ids=["asked", "added"])
def test_a_stream_whose_reasoning_is_counted_apart_reports_it_in_the_output(strip: bool) -> None:
    stream = xai_chat_stream(XAI_CHAT_USAGE)

    asked = extract_every_way("openai-compatible", Endpoint.CHAT_COMPLETIONS, SSE, stream)
    added, _ = run("openai-compatible", Endpoint.CHAT_COMPLETIONS, SSE, [stream], strip=strip)

    assert asked.usage == added.usage == XAI_USAGE


def test_reasoning_counted_apart_is_added_even_where_it_is_less_than_the_completion() -> None:
    usage = {
        "prompt_tokens": 279,
        "completion_tokens": 600,
        "total_tokens": 968,
        "completion_tokens_details": {"reasoning_tokens": 89},
    }

    assert chat_usage(usage) == TokenUsage(input_tokens=279, output_tokens=689, reasoning_tokens=89)


@pytest.mark.parametrize("total", [None, 2306, 2000])
def test_reasoning_inside_the_completion_tokens_as_openai_counts_it_is_not_added_again(
    total: int | None,
) -> None:
    """OpenAI's total is prompt plus completion (reasoning inside); a usage without a total, or whose
    total adds up otherwise, is read as OpenAI's."""
    usage: dict[str, object] = {
        "prompt_tokens": 2006,
        "completion_tokens": 300,
        "prompt_tokens_details": {"cached_tokens": 1920},
        "completion_tokens_details": {"reasoning_tokens": 256},
    }
    if total is not None:
        usage["total_tokens"] = total

    assert chat_usage(usage) == TokenUsage(
        input_tokens=2006, output_tokens=300, cached_input_tokens=1920, reasoning_tokens=256
    )


def test_odd_counts_with_reasoning_counted_apart_are_read_alike() -> None:
    """Counts a server sends as floats go the careful way: the reasoning is added there too."""
    usage = {**XAI_CHAT_USAGE, "prompt_tokens": 32.0, "total_tokens": 135.0}

    assert chat_usage(usage) == XAI_USAGE


def test_a_responses_usage_whose_reasoning_is_counted_apart_reports_it_in_the_output() -> None:
    usage = {
        "input_tokens": 32,
        "input_tokens_details": {"cached_tokens": 6},
        "output_tokens": 9,
        "output_tokens_details": {"reasoning_tokens": 94},
        "total_tokens": 135,
    }
    as_openai = {**usage, "output_tokens": 103}

    assert responses_usage(usage) == responses_usage(as_openai) == XAI_USAGE


# -- usage inside the finishing choice (Moonshot's Kimi) ------------------------------------------------
# Moonshot's streams report the usage inside the choice of their last chunk, whatever the request asked,
# not beside it: `"choices": [{"index": 0, "delta": {}, "finish_reason": "stop", "usage": {...}}]`.

KIMI_USAGE = {"prompt_tokens": 19, "completion_tokens": 13, "total_tokens": 32, "cached_tokens": 0}


def kimi_stream(top_level_usage: bool) -> bytes:
    head = {"id": "cmpl-1305b94c", "object": "chat.completion.chunk", "created": 1698999575}
    head["model"] = "kimi-k2-0905-preview"
    deltas: list[dict[str, object]] = [{"role": "assistant", "content": ""}, {"content": "Hello"}]
    events = [{**head, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]} for delta in deltas]
    finish = {"index": 0, "delta": {}, "finish_reason": "stop", "usage": KIMI_USAGE}
    events.append({**head, "choices": [finish], "system_fingerprint": "fpv0_c26222aa"})
    if top_level_usage:
        events[-1]["usage"] = KIMI_USAGE
    return b"".join(
        b"data: " + json.dumps(event, separators=(",", ":")).encode() + b"\n\n" for event in events
    ) + (b"data: [DONE]\n\n")


def test_a_stream_reporting_its_usage_inside_the_finishing_choice_is_read() -> None:
    extraction = extract_every_way("openai-compatible", Endpoint.CHAT_COMPLETIONS, SSE, kimi_stream(False))

    assert extraction.usage == TokenUsage(input_tokens=19, output_tokens=13)
    assert extraction.model == "kimi-k2-0905-preview"
    assert extraction.output_chars == 0


def test_a_stripped_stream_keeps_the_usage_inside_its_choice_and_reads_it() -> None:
    """That usage comes unasked: the caller gets it, and the call is metered from it."""
    stream = kimi_stream(False)

    extraction, relayed = run("openai-compatible", Endpoint.CHAT_COMPLETIONS, SSE, [stream], strip=True)

    assert relayed == stream
    assert extraction.usage == TokenUsage(input_tokens=19, output_tokens=13)
    assert extraction.model == "kimi-k2-0905-preview"


@pytest.mark.parametrize("strip", [False, True], ids=["asked", "added"])
def test_usage_both_inside_the_choice_and_beside_it_is_counted_once(strip: bool) -> None:
    stream = kimi_stream(True)

    extraction, relayed = run("openai-compatible", Endpoint.CHAT_COMPLETIONS, SSE, [stream], strip=strip)

    assert extraction.usage == TokenUsage(input_tokens=19, output_tokens=13)
    if strip:  # the member include_usage brings goes; the one inside the choice is the caller's
        assert relayed == kimi_stream(False)


def kimi_chat_body(usage: dict[str, object]) -> bytes:
    return json.dumps(
        {
            "id": "chatcmpl-67500eb0c51af667d5968f74",
            "object": "chat.completion",
            "created": 1733299889,
            "model": "kimi-k2-0905-preview",
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": "Hi!"}, "finish_reason": "stop"}
            ],
            "usage": usage,
        }
    ).encode()


def test_cache_hits_reported_beside_the_prompt_tokens_are_read_as_cached_input() -> None:
    """Moonshot's usage: `{"prompt_tokens": 19, "completion_tokens": 21, "total_tokens": 40,
    "cached_tokens": 10}`, the cache hits part of the prompt tokens, as OpenAI's are."""
    usage = {"prompt_tokens": 19, "completion_tokens": 21, "total_tokens": 40, "cached_tokens": 10}

    extraction = extract_every_way(
        "openai-compatible", Endpoint.CHAT_COMPLETIONS, JSON, kimi_chat_body(usage)
    )

    assert extraction.usage == TokenUsage(input_tokens=19, output_tokens=21, cached_input_tokens=10)
    assert extraction.model == "kimi-k2-0905-preview"


def test_cache_hits_in_the_prompt_details_win_over_a_count_beside_them() -> None:
    usage = {
        "prompt_tokens": 100,
        "completion_tokens": 5,
        "cached_tokens": 40,
        "prompt_tokens_details": {"cached_tokens": 64},
    }

    assert chat_usage(usage) == TokenUsage(input_tokens=100, output_tokens=5, cached_input_tokens=64)
    assert chat_usage({**usage, "prompt_tokens": 100.0}) == chat_usage(usage)


# -- embeddings whose model opens the body ----------------------------------------------------------------


@pytest.mark.parametrize("pieces", [1, 7], ids=["whole", "in pieces"])
def test_a_large_embeddings_body_whose_model_opens_it_reports_that_model(pieces: int) -> None:
    """vLLM and LiteLLM write `model` first and `usage` last; a body this large is read at its edges."""
    body = json.dumps(
        {
            "id": "embd-4c1e",
            "object": "list",
            "created": 1752000000,
            "model": "text-embedding-3-small",
            "data": [{"index": 0, "object": "embedding", "embedding": [0.0123456] * 2000}],
            "usage": {"prompt_tokens": 7, "total_tokens": 7, "completion_tokens": 0},
        }
    ).encode()
    size = -(-len(body) // pieces)

    extraction, _ = run(
        "openai-compatible",
        Endpoint.EMBEDDINGS,
        JSON,
        [body[start : start + size] for start in range(0, len(body), size)],
    )

    assert extraction.usage == TokenUsage(input_tokens=7)
    assert extraction.model == "text-embedding-3-small"
