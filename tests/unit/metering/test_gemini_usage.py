"""Gemini: usageMetadata read from recorded response shapes, thoughts counted as output."""

from __future__ import annotations

import json

from gateway.metering.usage import Endpoint, TokenUsage
from tests.unit.metering.support import (
    JSON,
    SSE,
    extract_every_way,
    fixture,
    near,
    run,
    stream_without_usage,
    without_usage,
)

STREAM_USAGE = TokenUsage(
    input_tokens=1040, output_tokens=20 + 132, cached_input_tokens=1024, reasoning_tokens=132
)
STREAM_TEXT = (
    "**Planning the haiku**\nFive, seven, five."
    "Cold rain on the tin roof,\nthe cat's ears twitch in their sleep,\ndreaming of summer"
)


def test_generate_content_counts_thoughts_as_output_and_reasoning() -> None:
    extraction = extract_every_way("gemini", Endpoint.GENERATE_CONTENT, JSON, fixture("gemini_generate.json"))

    assert extraction.usage == TokenUsage(
        input_tokens=3200, output_tokens=12 + 200, cached_input_tokens=2048, reasoning_tokens=200
    )
    assert extraction.model == "gemini-2.5-flash"


def test_generate_content_without_usage_counts_thoughts_and_answer_for_the_estimate() -> None:
    body = without_usage(fixture("gemini_generate.json"))

    extraction = extract_every_way("gemini", Endpoint.GENERATE_CONTENT, JSON, body)

    assert extraction.usage is None
    thought = "**Explaining simply**\nThe user wants a one-line answer."
    answer = "AI learns patterns from examples and uses them to predict."
    assert extraction.output_chars == len(thought) + len(answer)


def test_stream_as_sse_reports_the_last_running_total() -> None:
    extraction = extract_every_way(
        "gemini", Endpoint.STREAM_GENERATE_CONTENT, SSE, fixture("gemini_stream.sse")
    )

    assert extraction.usage == STREAM_USAGE
    assert extraction.model == "gemini-2.5-flash"
    assert extraction.output_chars == 0  # reported usage: the text is not counted


def test_stream_as_sse_without_usage_counts_its_text() -> None:
    stream = stream_without_usage(fixture("gemini_stream.sse"))

    extraction = extract_every_way("gemini", Endpoint.STREAM_GENERATE_CONTENT, SSE, stream)

    assert extraction.usage is None
    assert extraction.model == "gemini-2.5-flash"
    assert near(extraction.output_chars, len(STREAM_TEXT))


def test_stream_as_a_json_array_reports_the_usage_of_its_last_element() -> None:
    extraction = extract_every_way(
        "gemini", Endpoint.STREAM_GENERATE_CONTENT, JSON, fixture("gemini_stream_array.json")
    )

    assert extraction.usage == STREAM_USAGE
    assert extraction.model == "gemini-2.5-flash"


def test_stream_as_a_json_array_without_usage_counts_its_text() -> None:
    body = without_usage(fixture("gemini_stream_array.json"))

    extraction = extract_every_way("gemini", Endpoint.STREAM_GENERATE_CONTENT, JSON, body)

    assert extraction.usage is None
    assert extraction.output_chars == len(STREAM_TEXT)


# The running totals of the last chunk before "dreaming of summer": 16 candidates and 132 thoughts tokens.
SO_FAR = TokenUsage(input_tokens=1040, output_tokens=16 + 132, cached_input_tokens=1024, reasoning_tokens=132)


def test_a_cut_sse_stream_reports_no_usage_but_keeps_its_last_running_total() -> None:
    stream = fixture("gemini_stream.sse")
    cut = stream[: stream.index(b'data: {"candidates": [{"content": {"parts": [{"text": "dreaming')]

    extraction = extract_every_way("gemini", Endpoint.STREAM_GENERATE_CONTENT, SSE, cut)

    assert extraction.usage is None
    assert near(extraction.output_chars, len(STREAM_TEXT) - len("dreaming of summer"))
    assert extraction.partial == SO_FAR


def test_a_cut_json_array_reports_no_usage_and_the_text_of_its_whole_elements() -> None:
    stream = fixture("gemini_stream_array.json")
    cut = stream[: stream.index(b'"dreaming of summer"')]

    extraction = extract_every_way("gemini", Endpoint.STREAM_GENERATE_CONTENT, JSON, cut)

    assert extraction.usage is None
    assert extraction.output_chars == len(STREAM_TEXT) - len("dreaming of summer")
    assert extraction.partial == SO_FAR


def test_an_array_cut_just_after_a_bracket_of_its_own_is_not_taken_for_a_whole_one() -> None:
    """Cut inside an element right after its `parts` list closes, the array ends with `]`; its last
    usage is the previous chunk's running total, no final one."""
    stream = fixture("gemini_stream_array.json")
    second = stream.index(b'"dreaming of summer"')
    cut = stream[: stream.index(b"]", second) + 1]

    extraction = extract_every_way("gemini", Endpoint.STREAM_GENERATE_CONTENT, JSON, cut)

    assert cut.rstrip().endswith(b"]")
    assert extraction.usage is None
    assert extraction.output_chars > 0


def test_a_long_array_cut_just_after_a_bracket_of_its_own_reports_no_usage() -> None:
    body, _ = long_array(400)
    cut = body[: body.rindex(b'"text"')]
    cut = cut[: cut.rindex(b"]") + 1]  # inside an element, after the `parts` list of the one before

    extraction = extract_every_way("gemini", Endpoint.STREAM_GENERATE_CONTENT, JSON, cut)

    assert extraction.usage is None


def long_array(elements: int, *, closed: bool = True) -> tuple[bytes, int]:
    """A compact streamed array of `elements` chunks, the last one final, and the characters of its text."""
    chunks, text = [], 0
    for index in range(elements):
        words = "word " * (index % 7 + 1)
        text += len(words)
        candidate: dict[str, object] = {"content": {"parts": [{"text": words}], "role": "model"}}
        if index == elements - 1:
            candidate["finishReason"] = "STOP"
        usage = {"promptTokenCount": 50, "candidatesTokenCount": index + 1}
        chunk = {"candidates": [candidate], "usageMetadata": usage, "modelVersion": "gemini-2.5-pro"}
        chunks.append(json.dumps(chunk, separators=(",", ":")).encode())
    body = b"[" + b",\r\n".join(chunks) + (b"]" if closed else b"")
    return body, text


def test_a_long_json_array_locates_its_last_usage_and_estimates_its_text() -> None:
    body, text = long_array(200)

    extraction, _ = run("gemini", Endpoint.STREAM_GENERATE_CONTENT, JSON, [body])

    assert extraction.usage == TokenUsage(input_tokens=50, output_tokens=200)
    assert extraction.model == "gemini-2.5-pro"

    unreported, _ = run("gemini", Endpoint.STREAM_GENERATE_CONTENT, JSON, [without_usage(body)])
    assert unreported.usage is None
    assert near(unreported.output_chars, text)


def test_a_long_cut_json_array_reports_no_usage_but_keeps_its_last_running_total() -> None:
    body, text = long_array(200, closed=False)
    cut = body[: len(body) * 3 // 4]

    extraction, _ = run("gemini", Endpoint.STREAM_GENERATE_CONTENT, JSON, [cut])

    assert extraction.usage is None
    assert 0 < extraction.output_chars < text
    whole_elements = cut.count(b'"modelVersion"')  # each element's last member: those are whole
    assert extraction.partial == TokenUsage(input_tokens=50, output_tokens=whole_elements)


def test_a_blocked_prompt_reports_the_usage_it_carries() -> None:
    body = {
        "promptFeedback": {"blockReason": "SAFETY"},
        "usageMetadata": {"promptTokenCount": 8, "totalTokenCount": 8},
    }
    stream = b"data: " + json.dumps(body).encode() + b"\r\n\r\n"

    extraction = extract_every_way("gemini", Endpoint.STREAM_GENERATE_CONTENT, SSE, stream)

    assert extraction.usage == TokenUsage(input_tokens=8)


def test_an_array_closed_after_an_error_reports_no_usage_however_its_bytes_arrive() -> None:
    """Gemini ends a stream that fails midway with an error element and closes the array: the last
    usage is a running total, whether or not the bytes read last hold the element it belongs to."""
    stream = fixture("gemini_stream_array.json")
    last = stream.rindex(b"\r\n,\r\n{")
    error = json.dumps(
        {"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}, indent=2
    ).encode()
    failed = stream[:last] + b"\r\n,\r\n" + error + b"]"

    extraction = extract_every_way("gemini", Endpoint.STREAM_GENERATE_CONTENT, JSON, failed)

    assert extraction.usage is None
    assert extraction.partial == SO_FAR
    assert extraction.output_chars == len(STREAM_TEXT) - len("dreaming of summer")


def test_a_long_array_cut_inside_its_last_usage_keeps_the_running_total_before_it() -> None:
    body, _ = long_array(200, closed=False)
    at = body.rindex(b'"usageMetadata"')
    end = body.index(b"}", at) + 1

    for cut in range(at, end):
        extraction, _ = run("gemini", Endpoint.STREAM_GENERATE_CONTENT, JSON, [body[:cut]])

        assert extraction.usage is None
        assert extraction.partial == TokenUsage(input_tokens=50, output_tokens=199), cut
