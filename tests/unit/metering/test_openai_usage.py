"""OpenAI's formats (and Azure's, and the compatible servers'): usage read from recorded response shapes."""

from __future__ import annotations

import json

import pytest

from gateway.metering.extractors.openai import chat_usage, responses_usage
from gateway.metering.usage import Endpoint, TokenUsage
from tests.unit.metering.support import (
    CACHE_WRITE_RESPONSES_USAGE,
    JSON,
    SSE,
    extract_every_way,
    fixture,
    near,
    run,
    stream_without_usage,
    without_usage,
)

CHAT_STREAM_TEXT = 'Hello! Here is a "quoted" line\nand café.'


# -- chat completions -----------------------------------------------------------------------------------


def test_chat_body_reports_prompt_cached_completion_and_reasoning_tokens() -> None:
    extraction = extract_every_way("openai", Endpoint.CHAT_COMPLETIONS, JSON, fixture("openai_chat.json"))

    assert extraction.usage == TokenUsage(
        input_tokens=2006, output_tokens=300, cached_input_tokens=1920, reasoning_tokens=256
    )
    assert extraction.model == "o4-mini-2025-04-16"


def test_chat_body_without_usage_counts_its_answer_for_the_estimate() -> None:
    body = without_usage(fixture("openai_chat.json"))

    extraction = extract_every_way("openai", Endpoint.CHAT_COMPLETIONS, JSON, body)

    assert extraction.usage is None
    assert extraction.output_chars == len("The capital of France is Paris.")


def test_chat_stream_with_include_usage_reports_the_usage_only_chunk() -> None:
    extraction = extract_every_way(
        "openai", Endpoint.CHAT_COMPLETIONS, SSE, fixture("openai_chat_stream_usage.sse")
    )

    assert extraction.usage == TokenUsage(input_tokens=1432, output_tokens=12, cached_input_tokens=1280)
    assert extraction.model == "gpt-4o-mini-2024-07-18"
    assert extraction.output_chars == 0  # reported usage: the text is not counted


def test_chat_stream_without_include_usage_reports_no_usage_but_the_text_that_passed() -> None:
    extraction = extract_every_way(
        "openai", Endpoint.CHAT_COMPLETIONS, SSE, fixture("openai_chat_stream.sse")
    )

    assert extraction.usage is None
    assert extraction.model == "gpt-4o-mini-2024-07-18"
    assert near(extraction.output_chars, len(CHAT_STREAM_TEXT))


def test_a_compatible_server_that_sends_no_usage_reports_none() -> None:
    extraction = extract_every_way(
        "openai-compatible", Endpoint.CHAT_COMPLETIONS, SSE, fixture("compat_chat_stream_no_usage.sse")
    )

    assert extraction.usage is None
    assert extraction.model == "llama3.2"
    assert near(extraction.output_chars, len("The sky is blue because of Rayleigh scattering."))


def test_usage_on_the_last_content_chunk_is_read_too() -> None:
    """DeepSeek and others put the usage on the final chunk, next to its finish reason."""
    events = [
        {"id": "c", "model": "deepseek-chat", "choices": [{"index": 0, "delta": {"content": word}}]}
        for word in ("One", " two", " three", " four", " five")
    ]
    events[-1]["usage"] = {"prompt_tokens": 9, "completion_tokens": 5, "prompt_cache_hit_tokens": 8}
    stream = b"".join(b"data: " + json.dumps(event).encode() + b"\n\n" for event in events)

    extraction = extract_every_way(
        "openai-compatible", Endpoint.CHAT_COMPLETIONS, SSE, stream + b"data: [DONE]\n\n"
    )

    assert extraction.usage == TokenUsage(input_tokens=9, output_tokens=5, cached_input_tokens=8)


@pytest.mark.parametrize("strip", [False, True], ids=["asked", "added"])
def test_running_usage_on_every_chunk_counts_the_last_one_not_the_first(strip: bool) -> None:
    """vLLM with `continuous_usage_stats` puts the running usage on every chunk, the role-only first one
    (no text, so read as it passes) included: the total is the last chunk's."""
    events: list[dict[str, object]] = [
        {
            "id": "c",
            "model": "m",
            "choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}],
        }
    ]
    events += [
        {
            "id": "c",
            "model": "m",
            "choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}],
        }
        for word in ("Hi", " there", " you")
    ]
    events[-1]["choices"][0]["finish_reason"] = "stop"  # type: ignore[index]
    for number, event in enumerate(events):
        event["usage"] = {"prompt_tokens": 6, "completion_tokens": number, "total_tokens": 6 + number}
    stream = (
        b"".join(b"data: " + json.dumps(event).encode() + b"\n\n" for event in events) + b"data: [DONE]\n\n"
    )

    extraction = extract_every_way("openai-compatible", Endpoint.CHAT_COMPLETIONS, SSE, stream)
    stripped, _ = run("openai-compatible", Endpoint.CHAT_COMPLETIONS, SSE, [stream], strip=strip)

    assert extraction.usage == stripped.usage == TokenUsage(input_tokens=6, output_tokens=3)


def test_a_last_chunk_with_a_finish_reason_and_no_text_gives_the_total() -> None:
    events: list[dict[str, object]] = [
        {
            "id": "c",
            "model": "m",
            "choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}],
        }
        for word in ("One", " two")
    ]
    events.append(
        {
            "id": "c",
            "model": "m",
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6},
        }
    )
    stream = (
        b"".join(b"data: " + json.dumps(event).encode() + b"\n\n" for event in events) + b"data: [DONE]\n\n"
    )

    extraction = extract_every_way("openai-compatible", Endpoint.CHAT_COMPLETIONS, SSE, stream)

    assert extraction.usage == TokenUsage(input_tokens=4, output_tokens=2)


def test_azure_chat_stream_with_content_filter_events_reports_the_usage_chunk() -> None:
    extraction = extract_every_way(
        "azure-openai", Endpoint.CHAT_COMPLETIONS, SSE, fixture("azure_chat_stream_usage.sse")
    )

    unreported = extract_every_way(
        "azure-openai", Endpoint.CHAT_COMPLETIONS, SSE, fixture("azure_chat_stream.sse")
    )

    assert extraction.usage == TokenUsage(input_tokens=23, output_tokens=6)
    assert extraction.model == "gpt-4o-2024-11-20"
    assert unreported.usage is None
    assert near(unreported.output_chars, len("Azure says hello from Sweden Central"))


def test_a_stream_cut_before_its_usage_chunk_reports_no_usage_and_the_text_so_far() -> None:
    stream = fixture("openai_chat_stream_usage.sse")
    cut = stream[: stream.index(b'"content":" line"')]

    extraction = extract_every_way("openai", Endpoint.CHAT_COMPLETIONS, SSE, cut)

    assert extraction.usage is None
    assert near(extraction.output_chars, len('Hello! Here is a "quoted"'))


# -- audio ----------------------------------------------------------------------------------------------

# gpt-4o-audio-preview hearing a spoken question and answering aloud, as OpenAI reports it: the audio
# tokens are parts of the prompt and completion counts, billed at the audio rates.
AUDIO_USAGE = {
    "prompt_tokens": 1200,
    "completion_tokens": 620,
    "total_tokens": 1820,
    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 1000},
    "completion_tokens_details": {
        "reasoning_tokens": 0,
        "audio_tokens": 500,
        "accepted_prediction_tokens": 0,
        "rejected_prediction_tokens": 0,
    },
}
HEARD_AND_SPOKEN = TokenUsage(
    input_tokens=1200, output_tokens=620, audio_input_tokens=1000, audio_output_tokens=500
)


def audio_chat_body(usage: dict[str, object]) -> bytes:
    audio = {"id": "audio_68a1", "data": "UklGRiQAAABXQVZF", "expires_at": 1765003600, "transcript": "Yes."}
    message = {"role": "assistant", "content": None, "refusal": None, "audio": audio, "annotations": []}
    body = {
        "id": "chatcmpl-A1",
        "object": "chat.completion",
        "created": 1765000000,
        "model": "gpt-4o-audio-preview-2025-06-03",
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}],
        "usage": usage,
        "service_tier": "default",
        "system_fingerprint": "fp_b5d6",
    }
    return json.dumps(body).encode()


def audio_chat_stream(usage: dict[str, object]) -> bytes:
    head = {"id": "chatcmpl-A2", "object": "chat.completion.chunk", "created": 1765000000}
    head["model"] = "gpt-audio-2025-08-28"
    deltas: list[dict[str, object]] = [
        {"role": "assistant", "content": None, "audio": {"id": "audio_68a2", "transcript": "Yes"}},
        {"audio": {"transcript": ", it is."}},
        {"audio": {"data": "UklGRiQAAABXQVZF"}},
        {"audio": {"expires_at": 1765003600}},
    ]
    events = [{**head, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]} for delta in deltas]
    events.append({**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    events.append({**head, "choices": [], "usage": usage})
    return b"".join(b"data: " + json.dumps(event).encode() + b"\n\n" for event in events) + (
        b"data: [DONE]\n\n"
    )


def test_a_chat_body_with_audio_reports_its_audio_tokens_as_parts_of_its_totals() -> None:
    extraction = extract_every_way("openai", Endpoint.CHAT_COMPLETIONS, JSON, audio_chat_body(AUDIO_USAGE))

    assert extraction.usage == HEARD_AND_SPOKEN
    assert extraction.model == "gpt-4o-audio-preview-2025-06-03"


@pytest.mark.parametrize("strip", [False, True], ids=["asked", "added"])
def test_a_chat_stream_with_audio_reports_its_audio_tokens(strip: bool) -> None:
    stream = audio_chat_stream(AUDIO_USAGE)

    extraction = extract_every_way("openai", Endpoint.CHAT_COMPLETIONS, SSE, stream)
    stripped, _ = run("openai", Endpoint.CHAT_COMPLETIONS, SSE, [stream], strip=strip)

    assert extraction.usage == stripped.usage == HEARD_AND_SPOKEN
    assert extraction.model == "gpt-audio-2025-08-28"


def test_a_usage_without_audio_details_reports_no_audio_tokens() -> None:
    plain = chat_usage(
        {
            "prompt_tokens": 9,
            "completion_tokens": 4,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
        }
    )
    bare = chat_usage({"prompt_tokens": 9, "completion_tokens": 4})

    assert plain == bare == TokenUsage(input_tokens=9, output_tokens=4)
    assert plain is not None and (plain.audio_input_tokens, plain.audio_output_tokens) == (0, 0)


@pytest.mark.parametrize(
    ("heard", "spoken", "expected"),
    [
        (1000, 500, (1000, 500)),
        (5000, 9000, (1200, 620)),  # more audio than the totals it is part of: no more than them
        (-3, None, (0, 0)),
        ("1000", 500.0, (0, 500)),  # a number in text is no count; a float one is
        (True, 1.5, (0, 1)),
    ],
)
def test_audio_counts_are_never_negative_nor_more_than_their_totals(
    heard: object, spoken: object, expected: tuple[int, int]
) -> None:
    usage = chat_usage(
        {
            **AUDIO_USAGE,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": heard},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": spoken},
        }
    )

    assert usage is not None
    assert (usage.input_tokens, usage.output_tokens) == (1200, 620)
    assert (usage.audio_input_tokens, usage.audio_output_tokens) == expected


def test_cached_reasoning_and_audio_tokens_are_read_together() -> None:
    usage = chat_usage(
        {
            "prompt_tokens": 3000,
            "completion_tokens": 700,
            "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 800},
            "completion_tokens_details": {"reasoning_tokens": 64, "audio_tokens": 600},
        }
    )

    assert usage == TokenUsage(
        input_tokens=3000,
        output_tokens=700,
        cached_input_tokens=1024,
        reasoning_tokens=64,
        audio_input_tokens=800,
        audio_output_tokens=600,
    )


def test_a_responses_call_with_audio_reports_its_audio_tokens() -> None:
    usage = {
        "input_tokens": 900,
        "input_tokens_details": {"cached_tokens": 128, "audio_tokens": 700},
        "output_tokens": 300,
        "output_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 250},
        "total_tokens": 1200,
    }
    body = json.loads(fixture("openai_responses.json"))
    body["usage"] = usage

    extraction = extract_every_way("openai", Endpoint.RESPONSES, JSON, json.dumps(body).encode())

    assert (
        extraction.usage
        == responses_usage(usage)
        == TokenUsage(
            input_tokens=900,
            output_tokens=300,
            cached_input_tokens=128,
            audio_input_tokens=700,
            audio_output_tokens=250,
        )
    )


def test_a_responses_usage_without_audio_details_reports_no_audio_tokens() -> None:
    usage = responses_usage(
        {"input_tokens": 36, "output_tokens": 87, "input_tokens_details": {"cached_tokens": 0}}
    )

    assert usage is not None and (usage.audio_input_tokens, usage.audio_output_tokens) == (0, 0)


# -- cache writes (GPT-5.6 and later) ------------------------------------------------------------------
# OpenAI reports the prompt tokens written to the cache beside the ones read from it:
# `prompt_tokens_details.cache_write_tokens` (chat), `input_tokens_details.cache_write_tokens`
# (Responses API), both parts of the input count (the prompt caching guide's example: 2,600 input
# tokens, 2,000 read, 400 written, 200 neither).

CACHE_WRITE_CHAT_USAGE = {
    "prompt_tokens": 2600,
    "completion_tokens": 300,
    "total_tokens": 2900,
    "prompt_tokens_details": {"cached_tokens": 2000, "cache_write_tokens": 400, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 64, "audio_tokens": 0},
}
READ_AND_WRITTEN = TokenUsage(
    input_tokens=2600,
    output_tokens=300,
    cached_input_tokens=2000,
    cache_write_tokens=400,
    reasoning_tokens=64,
)


def gpt6_chat_body(usage: dict[str, object]) -> bytes:
    body = json.loads(fixture("openai_chat.json"))
    return json.dumps({**body, "model": "gpt-6-sol-2026-09-22", "usage": usage}).encode()


def gpt6_chat_stream(usage: dict[str, object]) -> bytes:
    head = {"id": "chatcmpl-W1", "object": "chat.completion.chunk", "created": 1765000000}
    head["model"] = "gpt-6-sol-2026-09-22"
    deltas: list[dict[str, object]] = [{"role": "assistant", "content": ""}, {"content": "Done."}]
    events = [{**head, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]} for delta in deltas]
    events.append({**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    events.append({**head, "choices": [], "usage": usage})
    return b"".join(b"data: " + json.dumps(event).encode() + b"\n\n" for event in events) + (
        b"data: [DONE]\n\n"
    )


def test_a_chat_body_reports_its_cache_writes_as_part_of_its_input() -> None:
    extraction = extract_every_way(
        "openai", Endpoint.CHAT_COMPLETIONS, JSON, gpt6_chat_body(CACHE_WRITE_CHAT_USAGE)
    )

    assert extraction.usage == READ_AND_WRITTEN
    assert extraction.model == "gpt-6-sol-2026-09-22"


@pytest.mark.parametrize("strip", [False, True], ids=["asked", "added"])
def test_a_chat_stream_reports_its_cache_writes(strip: bool) -> None:
    stream = gpt6_chat_stream(CACHE_WRITE_CHAT_USAGE)

    extraction = extract_every_way("openai", Endpoint.CHAT_COMPLETIONS, SSE, stream)
    stripped, _ = run("openai", Endpoint.CHAT_COMPLETIONS, SSE, [stream], strip=strip)

    assert extraction.usage == stripped.usage == READ_AND_WRITTEN


def test_cache_writes_are_read_beside_audio_tokens() -> None:
    usage = chat_usage(
        {
            **CACHE_WRITE_CHAT_USAGE,
            "prompt_tokens_details": {"cached_tokens": 2000, "cache_write_tokens": 400, "audio_tokens": 150},
        }
    )

    assert usage == READ_AND_WRITTEN._replace(audio_input_tokens=150)


def test_a_responses_body_reports_its_cache_writes_and_of_them_those_kept_12_hours() -> None:
    """12-hour writes are counted among the cache writes, and apart as those kept longer than the
    default (see test_openai_cache_retention)."""
    body = json.loads(fixture("openai_responses.json"))
    body["usage"] = CACHE_WRITE_RESPONSES_USAGE

    extraction = extract_every_way("openai", Endpoint.RESPONSES, JSON, json.dumps(body).encode())

    kept_longer = READ_AND_WRITTEN._replace(cache_write_1h_tokens=100)
    assert extraction.usage == responses_usage(CACHE_WRITE_RESPONSES_USAGE) == kept_longer


def test_a_responses_stream_reports_the_cache_writes_of_response_completed() -> None:
    reported = b'"input_tokens_details":{"cached_tokens":0}'
    written = b'"input_tokens_details":{"cached_tokens":0,"cache_write_tokens":32}'
    stream = fixture("openai_responses_stream.sse")
    assert stream.count(reported) == 1

    extraction = extract_every_way("openai", Endpoint.RESPONSES, SSE, stream.replace(reported, written))

    assert extraction.usage == TokenUsage(input_tokens=36, output_tokens=87, cache_write_tokens=32)


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        (400, 400),
        (0, 0),
        (None, 0),
        (900, 600),  # more than the input not read from the cache: no more than it
        (-5, 0),
        ("400", 0),  # a number in text is no count; a float one is
        (400.0, 400),
        (True, 0),
    ],
)
def test_cache_writes_are_never_negative_nor_more_than_the_input_not_read_from_the_cache(
    written: object, expected: int
) -> None:
    chat = chat_usage(
        {
            "prompt_tokens": 2600,
            "completion_tokens": 300,
            "prompt_tokens_details": {"cached_tokens": 2000, "cache_write_tokens": written},
        }
    )
    responses = responses_usage(
        {
            "input_tokens": 2600,
            "output_tokens": 300,
            "input_tokens_details": {"cached_tokens": 2000, "cache_write_tokens": written},
        }
    )

    assert chat is not None and responses is not None
    assert chat.cache_write_tokens == responses.cache_write_tokens == expected
    assert (
        (chat.input_tokens, chat.cached_input_tokens)
        == (2600, 2000)
        == (
            responses.input_tokens,
            responses.cached_input_tokens,
        )
    )


def test_cache_writes_of_a_usage_with_more_reads_than_input_are_none() -> None:
    usage = chat_usage(
        {
            "prompt_tokens": 1000,
            "completion_tokens": 5,
            "prompt_tokens_details": {"cached_tokens": 1500, "cache_write_tokens": 200},
        }
    )

    assert usage == TokenUsage(input_tokens=1000, output_tokens=5, cached_input_tokens=1000)


# -- legacy completions -------------------------------------------------------------------------------


def test_completions_body_reports_its_usage() -> None:
    extraction = extract_every_way("openai", Endpoint.COMPLETIONS, JSON, fixture("openai_completions.json"))

    assert extraction.usage == TokenUsage(input_tokens=5, output_tokens=7)
    assert extraction.model == "gpt-3.5-turbo-instruct"
    unreported = extract_every_way(
        "openai", Endpoint.COMPLETIONS, JSON, without_usage(fixture("openai_completions.json"))
    )
    assert unreported.usage is None
    assert unreported.output_chars == len("\n\nThis is indeed a test")


def test_completions_stream_with_include_usage_reports_its_usage() -> None:
    extraction = extract_every_way(
        "openai", Endpoint.COMPLETIONS, SSE, fixture("openai_completions_stream_usage.sse")
    )
    unreported = extract_every_way(
        "openai", Endpoint.COMPLETIONS, SSE, fixture("openai_completions_stream.sse")
    )

    assert extraction.usage == TokenUsage(input_tokens=5, output_tokens=7)
    assert unreported.usage is None
    assert near(unreported.output_chars, len("\n\nThis is indeed a test"))


@pytest.mark.parametrize("kind", ["azure-openai", "openai-compatible"])
@pytest.mark.parametrize("spaced", [False, True])
def test_a_tier_named_just_before_the_closing_usage_prices_the_call_in_it(kind: str, spaced: bool) -> None:
    """Azure OpenAI writes its members in alphabetical order (as do servers that serialise a map, or the
    SDK's own models): `service_tier`, `system_fingerprint`, then the `usage` that closes the body."""
    message = {"content": "Hi", "refusal": None, "role": "assistant"}
    body = {
        "choices": [{"finish_reason": "stop", "index": 0, "logprobs": None, "message": message}],
        "created": 1765000000,
        "id": "chatcmpl-D1",
        "model": "gpt-4.1-2025-04-14",
        "object": "chat.completion",
        "service_tier": "priority",
        "system_fingerprint": "fp_04751d0b65",
        "usage": {"completion_tokens": 2, "prompt_tokens": 9, "total_tokens": 11},
    }
    separators = (", ", ": ") if spaced else (",", ":")

    extraction = extract_every_way(
        kind, Endpoint.CHAT_COMPLETIONS, JSON, json.dumps(body, separators=separators).encode()
    )

    assert extraction.usage == TokenUsage(input_tokens=9, output_tokens=2, service_tier="priority")
    assert extraction.model == "gpt-4.1-2025-04-14"


# -- responses ----------------------------------------------------------------------------------------


def test_responses_body_reports_input_cached_output_and_reasoning_tokens() -> None:
    extraction = extract_every_way("openai", Endpoint.RESPONSES, JSON, fixture("openai_responses.json"))

    assert extraction.usage == TokenUsage(
        input_tokens=328, output_tokens=152, cached_input_tokens=256, reasoning_tokens=96
    )
    assert extraction.model == "o4-mini-2025-04-16"


def test_responses_body_without_usage_counts_summary_and_answer_for_the_estimate() -> None:
    body = without_usage(fixture("openai_responses.json"))

    extraction = extract_every_way("openai", Endpoint.RESPONSES, JSON, body)

    assert extraction.usage is None
    summary, answer = (
        "**Describing the scene**",
        "The image depicts a scenic landscape with a wooden boardwalk.",
    )
    assert extraction.output_chars == len(summary) + len(answer)


def test_responses_stream_reports_the_usage_of_response_completed() -> None:
    stream = fixture("openai_responses_stream.sse")

    extraction = extract_every_way("openai", Endpoint.RESPONSES, SSE, stream)
    unreported = extract_every_way("openai", Endpoint.RESPONSES, SSE, stream_without_usage(stream))

    assert extraction.usage == TokenUsage(input_tokens=36, output_tokens=87)
    assert extraction.model == "gpt-4.1-2025-04-14"
    assert unreported.usage is None
    assert unreported.model == "gpt-4.1-2025-04-14"
    assert near(unreported.output_chars, len("Under a silver moon, a unicorn slept."))


def test_responses_incomplete_and_failed_events_carry_usage_too() -> None:
    stream = fixture("openai_responses_stream.sse").replace(b"response.completed", b"response.incomplete")

    extraction = extract_every_way("openai", Endpoint.RESPONSES, SSE, stream)

    assert extraction.usage == TokenUsage(input_tokens=36, output_tokens=87)


def test_a_responses_stream_cut_before_completion_reports_no_usage_but_its_model() -> None:
    stream = fixture("openai_responses_stream.sse")
    cut = stream[: stream.index(b"event: response.output_text.done")]

    extraction = extract_every_way("openai", Endpoint.RESPONSES, SSE, cut)

    assert extraction.usage is None
    assert extraction.model == "gpt-4.1-2025-04-14"
    assert near(extraction.output_chars, len("Under a silver moon, a unicorn slept."))


# -- embeddings -----------------------------------------------------------------------------------------


def test_embeddings_report_input_tokens_only() -> None:
    extraction = extract_every_way("openai", Endpoint.EMBEDDINGS, JSON, fixture("openai_embeddings.json"))

    assert extraction.usage == TokenUsage(input_tokens=23)
    assert extraction.model == "text-embedding-3-small"
    assert extraction.output_chars == 0


def test_large_embeddings_find_the_usage_at_either_end() -> None:
    vectors = [{"object": "embedding", "index": i, "embedding": [0.0123456] * 1536} for i in range(8)]
    usage = {"prompt_tokens": 64, "total_tokens": 64}
    last = {"object": "list", "data": vectors, "model": "text-embedding-3-large", "usage": usage}
    first = {"usage": usage, "model": "bge-m3", "data": vectors}

    at_end, _ = run("openai", Endpoint.EMBEDDINGS, JSON, [json.dumps(last).encode()])
    at_start, _ = run("openai-compatible", Endpoint.EMBEDDINGS, JSON, [json.dumps(first).encode()])

    assert at_end.usage == at_start.usage == TokenUsage(input_tokens=64)
    assert (at_end.model, at_start.model) == ("text-embedding-3-large", "bge-m3")


def test_large_embeddings_without_usage_report_none() -> None:
    body = {"object": "list", "data": [{"embedding": [0.5] * 4096}], "model": "local"}

    extraction, _ = run("openai-compatible", Endpoint.EMBEDDINGS, JSON, [json.dumps(body).encode()])

    assert extraction.usage is None
    assert extraction.model == "local"


# -- framing and kinds of text --------------------------------------------------------------------------


def test_a_stream_framed_with_crlf_reads_the_same() -> None:
    stream = fixture("openai_chat_stream_usage.sse").replace(b"\n", b"\r\n")
    unreported = fixture("openai_chat_stream.sse").replace(b"\n", b"\r\n")

    extraction = extract_every_way("openai-compatible", Endpoint.CHAT_COMPLETIONS, SSE, stream)
    without = extract_every_way("openai-compatible", Endpoint.CHAT_COMPLETIONS, SSE, unreported)

    assert extraction.usage == TokenUsage(input_tokens=1432, output_tokens=12, cached_input_tokens=1280)
    assert without.usage is None
    assert near(without.output_chars, len(CHAT_STREAM_TEXT))


def test_tool_call_arguments_and_reasoning_count_as_generated_text() -> None:
    head = {"id": "chatcmpl-9", "object": "chat.completion.chunk", "model": "deepseek-reasoner"}
    thoughts = ["Let", " me", " look", " that", " up."]
    pieces = ['{"ci', 'ty": ', '"Par', "is, ", 'France"}']
    calls = [
        {"index": 0, "id": "call_1", "type": "function", "function": {"name": "weather", "arguments": ""}}
    ]
    deltas = [{"reasoning_content": thought} for thought in thoughts] + [{"tool_calls": calls}]
    deltas += [{"tool_calls": [{"index": 0, "function": {"arguments": piece}}]} for piece in pieces]
    stream = b"".join(
        b"data: " + json.dumps({**head, "choices": [{"index": 0, "delta": delta}]}).encode() + b"\n\n"
        for delta in deltas
    )

    extraction = extract_every_way("openai-compatible", Endpoint.CHAT_COMPLETIONS, SSE, stream)

    assert extraction.usage is None
    assert near(extraction.output_chars, len("".join(thoughts)) + len("".join(pieces)))


def test_responses_text_and_tool_arguments_are_counted_each_with_its_envelope() -> None:
    def event(name: str, number: int, delta: str) -> bytes:
        data = {"type": name, "sequence_number": number, "item_id": "it", "output_index": 0, "delta": delta}
        return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()

    words = ["I", " will", " check", " the", " file", "."]
    arguments = ['{"pa', 'th": "', "src/", "main", '.py"}']
    stream = b"".join(event("response.output_text.delta", n, w) for n, w in enumerate(words))
    stream += b"".join(
        event("response.function_call_arguments.delta", 10 + n, a) for n, a in enumerate(arguments)
    )

    extraction = extract_every_way("openai", Endpoint.RESPONSES, SSE, stream)

    assert near(extraction.output_chars, len("".join(words)) + len("".join(arguments)))
