"""A stream is read from its ends (the events that carry its usage) only where that is sure to give what
reading every event gives: in unusual orders of events the answer is still the full reading's."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from gateway.metering.extractors import anthropic, gemini, openai
from gateway.metering.extractors.streams import DataDialect, Dialect, IncrementalStream
from gateway.metering.usage import Endpoint, Extraction, TokenUsage
from tests.unit.metering.support import SSE, extract_every_way

DIALECTS: dict[Endpoint, Callable[[], Dialect]] = {
    Endpoint.CHAT_COMPLETIONS: lambda: DataDialect(openai.read_chat, openai.CHAT_TEXT_KEY),
    Endpoint.STREAM_GENERATE_CONTENT: lambda: DataDialect(gemini.read_chunk, gemini.TEXT_KEY),
    Endpoint.MESSAGES: anthropic.AnthropicDialect,
    Endpoint.RESPONSES: openai.ResponsesDialect,
}


def full_reading(endpoint: Endpoint, stream: bytes) -> Extraction:
    """What reading every event as it passes reports (characters only where there is no usage)."""
    reader = IncrementalStream(DIALECTS[endpoint]())
    reader.feed(stream)
    extraction = reader.finish()
    return extraction if extraction.usage is None else extraction._replace(output_chars=0)


def data(*bodies: dict[str, object], framing: bytes = b"\n\n") -> bytes:
    return b"".join(b"data: " + json.dumps(body).encode() + framing for body in bodies)


def named(*events: tuple[str, dict[str, object]]) -> bytes:
    return b"".join(
        f"event: {name}\ndata: {json.dumps({'type': name, **body})}\n\n".encode() for name, body in events
    )


def chat(text: str, **extra: object) -> dict[str, object]:
    return {"id": "c", "model": "gpt-4o", "choices": [{"index": 0, "delta": {"content": text}}], **extra}


def report(prompt: int, completion: int, **extra: object) -> dict[str, object]:
    return {
        "id": "c",
        "choices": [],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion},
        **extra,
    }


def part(text: str, *, final: bool = False, total: int = 1) -> dict[str, object]:
    candidate: dict[str, object] = {"content": {"parts": [{"text": text}], "role": "model"}}
    if final:
        candidate["finishReason"] = "STOP"
    usage = {"promptTokenCount": 4, "candidatesTokenCount": total}
    return {"candidates": [candidate], "usageMetadata": usage, "modelVersion": "gemini-2.5-flash"}


START = (
    "message_start",
    {"message": {"model": "claude-x", "usage": {"input_tokens": 7, "output_tokens": 1}}},
)
TEXT = ("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "Hello there"}})
STOP = ("message_stop", {})


def delta(output: int | None, **usage: int) -> tuple[str, dict[str, object]]:
    counts = {**usage, **({} if output is None else {"output_tokens": output})}
    return "message_delta", {"delta": {"stop_reason": "end_turn"}, "usage": counts}


def responses_event(name: str, number: int, **response: object) -> tuple[str, dict[str, object]]:
    if name.endswith(".delta"):
        return name, {"sequence_number": number, "item_id": "it", "delta": "Some words"}
    return name, {"sequence_number": number, "response": {"id": "r", **response}}


DONE = b"data: [DONE]\n\n"
RESPONSE_USAGE = {"input_tokens": 5, "output_tokens": 9}

CASES = [
    # OpenAI-style chat chunks
    (
        "usage chunk last",
        Endpoint.CHAT_COMPLETIONS,
        data(chat("Hi"), chat(" you"), report(3, 2, model="m")) + DONE,
    ),
    (
        "content after the usage chunk",
        Endpoint.CHAT_COMPLETIONS,
        data(chat("Hi"), report(3, 2, model="m"), chat("!")),
    ),
    (
        "two usage chunks",
        Endpoint.CHAT_COMPLETIONS,
        data(chat("Hi"), report(1, 1, model="a"), report(3, 2, model="b")),
    ),
    (
        "usage chunk without a model after one with a model",
        Endpoint.CHAT_COMPLETIONS,
        data(chat("Hi"), report(1, 1, model="a"), report(3, 2)),
    ),
    ("usage chunk without any model", Endpoint.CHAT_COMPLETIONS, data(chat("Hi"), report(3, 2)) + DONE),
    (
        "usage on the last content chunk",
        Endpoint.CHAT_COMPLETIONS,
        data(chat("Hi"), chat("!", usage={"prompt_tokens": 2})) + DONE,
    ),
    (
        "usage on a content chunk that is not the last",
        Endpoint.CHAT_COMPLETIONS,
        data(chat("Hi", usage={"prompt_tokens": 2, "completion_tokens": 1}), chat("!")),
    ),
    (
        "usage chunk, then usage on the last content chunk",
        Endpoint.CHAT_COMPLETIONS,
        data(
            chat("Hi"), report(3, 2, model="m"), chat("!", usage={"prompt_tokens": 9, "completion_tokens": 9})
        ),
    ),
    ("a cut usage chunk", Endpoint.CHAT_COMPLETIONS, data(chat("Hi"), report(3, 2, model="m"))[:-30]),
    (
        "a usage chunk after blank lines",
        Endpoint.CHAT_COMPLETIONS,
        data(chat("Hi")) + b"\n\n" + data(report(3, 2, model="m")),
    ),
    # Gemini chunks
    (
        "running totals, the last final",
        Endpoint.STREAM_GENERATE_CONTENT,
        data(part("a", total=1), part("b", total=2), part("c", final=True, total=3), framing=b"\r\n\r\n"),
    ),
    (
        "a final chunk before the last",
        Endpoint.STREAM_GENERATE_CONTENT,
        data(part("a", total=1), part("b", final=True, total=2), part("c", total=3), framing=b"\r\n\r\n"),
    ),
    (
        "an early chunk without candidates (final) and usage",
        Endpoint.STREAM_GENERATE_CONTENT,
        data(
            {"usageMetadata": {"promptTokenCount": 99}, "modelVersion": "g"},
            part("a", total=1),
            part("b", final=True, total=2),
            framing=b"\r\n\r\n",
        ),
    ),
    (
        "a last chunk without text",
        Endpoint.STREAM_GENERATE_CONTENT,
        data(part("a", total=1), {**part("", final=True, total=5), "candidates": [{"finishReason": "STOP"}]}),
    ),
    # Anthropic events
    ("message_start and message_delta", Endpoint.MESSAGES, named(START, TEXT, delta(12), STOP)),
    (
        "two message_delta events",
        Endpoint.MESSAGES,
        named(START, TEXT, delta(None, input_tokens=3), delta(12), STOP),
    ),
    (
        "message_delta without output_tokens",
        Endpoint.MESSAGES,
        named(START, TEXT, delta(None, input_tokens=3), STOP),
    ),
    ("message_delta before message_start", Endpoint.MESSAGES, named(delta(12), START, TEXT, STOP)),
    ("a second message_start", Endpoint.MESSAGES, named(START, TEXT, delta(12), START, STOP)),
    (
        "text that names the events",
        Endpoint.MESSAGES,
        named(
            START,
            ("content_block_delta", {"delta": {"type": "text_delta", "text": "a message_delta"}}),
            delta(4),
        ),
    ),
    # Responses events
    (
        "one terminal event",
        Endpoint.RESPONSES,
        named(
            responses_event("response.created", 0, model="gpt-x", usage=None),
            responses_event("response.output_text.delta", 1),
            responses_event("response.completed", 2, model="gpt-x", usage=RESPONSE_USAGE),
        ),
    ),
    (
        "a terminal event without usage after one with",
        Endpoint.RESPONSES,
        named(
            responses_event("response.completed", 2, model="gpt-x", usage=RESPONSE_USAGE),
            responses_event("response.failed", 3, model="gpt-x", usage=None),
        ),
    ),
    (
        "a terminal event without a model",
        Endpoint.RESPONSES,
        named(
            responses_event("response.created", 0, model="gpt-x", usage=None),
            responses_event("response.completed", 2, usage=RESPONSE_USAGE),
        ),
    ),
]


@pytest.mark.parametrize(
    ("endpoint", "stream"), [case[1:] for case in CASES], ids=[case[0] for case in CASES]
)
def test_reading_from_the_ends_reports_what_reading_every_event_reports(
    endpoint: Endpoint, stream: bytes
) -> None:
    kind = {Endpoint.MESSAGES: "anthropic", Endpoint.STREAM_GENERATE_CONTENT: "gemini"}.get(
        endpoint, "openai"
    )

    assert extract_every_way(kind, endpoint, SSE, stream) == full_reading(endpoint, stream)


def test_the_usual_ends_are_read_as_expected() -> None:
    streams = {name: stream for name, _, stream in CASES}
    chat_stream = streams["usage chunk last"]
    anthropic_stream = streams["message_start and message_delta"]
    responses_stream = streams["one terminal event"]

    assert full_reading(Endpoint.CHAT_COMPLETIONS, chat_stream).usage == TokenUsage(3, 2)
    assert full_reading(Endpoint.MESSAGES, anthropic_stream).usage == TokenUsage(7, 12)
    assert full_reading(Endpoint.RESPONSES, responses_stream).usage == TokenUsage(5, 9)
    assert DIALECTS[Endpoint.CHAT_COMPLETIONS]().settle(chat_stream) == (TokenUsage(3, 2), "m")
    assert DIALECTS[Endpoint.MESSAGES]().settle(anthropic_stream) == (TokenUsage(7, 12), "claude-x")
    assert DIALECTS[Endpoint.RESPONSES]().settle(responses_stream) == (TokenUsage(5, 9), "gpt-x")
