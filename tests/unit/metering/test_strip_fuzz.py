"""The strip against streams made at random (seeded): whatever the framing, the spelling and place of the
`"usage":null` member, the comments and `event:` / `id:` lines, and wherever the stream is cut, the caller
gets byte for byte the stream without include_usage, and the usage is read exactly.

A server keeps to one serialisation within a stream (spacing, order of members, line ends); each stream
here does too, and the streams differ in it.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

import pytest

from gateway.metering.extractors import extractor_for
from gateway.metering.usage import Endpoint, TokenUsage
from tests.unit.metering.support import SSE

USAGE = b'"usage"'
NULLS = (b'"usage":null', b'"usage": null', b'"usage" : null', b'"usage":  null')
WORDS = ("Hi", " there", ' "quoted"', "\\", "usage", '"usage":null', "caf\u00e9", "\n", "", "x" * 70)
TIERS = (None, "default", "flex", "priority")
Member = tuple[bytes, bytes]  # a key, quoted, and its value, both as sent


@dataclass(frozen=True)
class Serialisation:
    """How one server writes its chunks."""

    line_end: bytes
    separator: bytes
    colon: bytes
    null: bytes
    null_at: int  # the member's place among the others
    usage_on_last_content: bool  # a compatible server's shape: no usage-only chunk


@dataclass
class Stream:
    with_usage: list[bytes]  # the events include_usage brings, one a string
    without_usage: list[bytes]  # what the caller asked for
    usage: TokenUsage
    model: str


def value(data: object) -> bytes:
    return json.dumps(data, ensure_ascii=False).encode()


def serialisation(rng: random.Random) -> Serialisation:
    spaced = rng.random() < 0.5
    return Serialisation(
        line_end=rng.choice((b"\n", b"\r\n")),
        separator=b", " if spaced else b",",
        colon=b": " if spaced else b":",
        null=rng.choice(NULLS),
        null_at=rng.choice((99, 99, 0, 2)),
        usage_on_last_content=rng.random() < 0.25,
    )


def frame(lines: list[bytes], line_end: bytes) -> bytes:
    return b"".join(line + line_end for line in lines) + line_end


def render(
    members: list[Member], style: Serialisation, usage: bytes | None, broken: int | None
) -> list[bytes]:
    """The `data:` lines of an object of `members`, with `usage` (a whole member) at its place, over two
    lines after member `broken` when given (never next to the usage member)."""
    texts = [key + style.colon + val for key, val in members]
    at = min(style.null_at, len(texts))
    if usage is not None:
        texts.insert(at, usage)
    body = b"{" + style.separator.join(texts) + b"}"
    if broken is None:
        return [b"data: " + body]
    if usage is not None and broken >= at:
        broken += 1
    cut = 1 + sum(len(text) + len(style.separator) for text in texts[: broken + 1])
    return [b"data: " + body[:cut], b"data: " + body[cut:]]


def event_lines(rng: random.Random) -> list[bytes]:
    lines = []
    if rng.random() < 0.2:
        lines.append(b"event: chunk")
    if rng.random() < 0.2:
        lines.append(b"id: %d" % rng.randrange(1000))
    return lines


def content_event(
    rng: random.Random, style: Serialisation, stream: Stream, choice: dict[str, object], usage: bytes
) -> None:
    members: list[Member] = [
        (b'"id"', b'"chatcmpl-1"'),
        (b'"object"', b'"chat.completion.chunk"'),
        (b'"model"', value(stream.model)),
        (b'"choices"', value([choice])),
    ]
    at = min(style.null_at, len(members))
    breakable = [i for i in range(len(members) - 1) if i not in (at - 1, at)]
    broken = rng.choice(breakable) if breakable and rng.random() < 0.15 else None
    lines = event_lines(rng)
    stream.with_usage.append(frame(lines + render(members, style, usage, broken), style.line_end))
    stream.without_usage.append(frame(lines + render(members, style, None, broken), style.line_end))


def usage_only_event(rng: random.Random, style: Serialisation, stream: Stream, usage: bytes) -> None:
    tier = rng.choice(TIERS)
    members: list[Member] = [
        (b'"id"', b'"chatcmpl-1"'),
        (b'"object"', b'"chat.completion.chunk"'),
        (b'"model"', value(stream.model)),
        (b'"choices"', b"[]"),
        (b'"usage"', usage),
    ]
    if tier is not None:
        members.insert(rng.randrange(len(members) + 1), (b'"service_tier"', value(tier)))
        stream.usage = stream.usage if tier == "default" else stream.usage._replace(service_tier=tier)
    if rng.random() < 0.3:
        rng.shuffle(members)
    if rng.random() < 0.3:
        members.append((b'"obfuscation"', b'"Zx0"'))
    whole = style.separator.join(key + style.colon + val for key, val in members)
    stream.with_usage.append(frame([*event_lines(rng), b"data: {" + whole + b"}"], style.line_end))


def usage_of(rng: random.Random, style: Serialisation) -> tuple[TokenUsage, bytes]:
    prompt, output = rng.randrange(1, 50_000), rng.randrange(0, 5_000)
    cached, reasoning = rng.randrange(0, prompt + 1), rng.randrange(0, output + 1)
    usage = {
        "prompt_tokens": prompt,
        "completion_tokens": output,
        "total_tokens": prompt + output,
        "prompt_tokens_details": {"cached_tokens": cached},
        "completion_tokens_details": {"reasoning_tokens": reasoning},
    }
    separators = (style.separator.decode(), style.colon.decode())
    return TokenUsage(prompt, output, cached, 0, reasoning), json.dumps(usage, separators=separators).encode()


def random_stream(seed: int) -> Stream:
    rng = random.Random(seed)
    style = serialisation(rng)
    usage, usage_json = usage_of(rng, style)
    stream = Stream([], [], usage, rng.choice(("gpt-4o-mini", "deepseek-chat", "llama-3.3-70b")))
    null = style.null
    content_event(rng, style, stream, {"index": 0, "delta": {"role": "assistant", "content": ""}}, null)
    for _ in range(rng.randrange(0, 12)):
        if rng.random() < 0.15:
            extra = frame(
                [rng.choice((b": ping", b":", b"retry: 3000", b": OPENROUTER PROCESSING"))], style.line_end
            )
            stream.with_usage.append(extra)
            stream.without_usage.append(extra)
        choice = {
            "index": 0,
            "delta": {"content": rng.choice(WORDS)},
            "logprobs": None,
            "finish_reason": None,
        }
        content_event(rng, style, stream, choice, null)
    finish = {"index": 0, "delta": {}, "finish_reason": "stop"}
    if style.usage_on_last_content:
        content_event(rng, style, stream, finish, b'"usage"' + style.colon + usage_json)
    else:
        content_event(rng, style, stream, finish, null)
        usage_only_event(rng, style, stream, usage_json)
    done = frame([b"data: [DONE]"], style.line_end)
    stream.with_usage.append(done)
    stream.without_usage.append(done)
    return stream


def cuts(rng: random.Random, events: list[bytes]) -> list[list[bytes]]:
    """The stream whole, an event a chunk, a few events a chunk, in random pieces and byte by byte."""
    data = b"".join(events)
    ways = [[data], events]
    grouped, start = [], 0
    while start < len(events):
        size = rng.randint(2, 6)
        grouped.append(b"".join(events[start : start + size]))
        start += size
    ways.append(grouped)
    for largest in (3, 40, 400):
        pieces, start = [], 0
        while start < len(data):
            size = rng.randint(1, largest)
            pieces.append(data[start : start + size])
            start += size
        ways.append(pieces)
    ways.append([data[i : i + 1] for i in range(len(data))])
    return ways


def relay(pieces: list[bytes], kind: str = "openai") -> tuple[bytes, object, object]:
    extractor = extractor_for(kind, Endpoint.CHAT_COMPLETIONS, SSE, strip_injected_usage=True)
    relayed = b"".join(extractor.feed(piece) for piece in pieces)
    extraction = extractor.finish()
    return relayed, extraction.usage, extraction.model


@pytest.mark.parametrize("seed", range(0, 400, 4))
def test_random_streams_reach_the_caller_as_without_include_usage_with_their_usage_read(seed: int) -> None:
    for offset in range(4):
        stream = random_stream(seed + offset)
        expected = b"".join(stream.without_usage)
        for number, pieces in enumerate(cuts(random.Random(seed + offset), stream.with_usage)):
            relayed, usage, model = relay(pieces, "openai" if number % 2 else "openai-compatible")

            assert relayed == expected, (seed + offset, number)
            assert (usage, model) == (stream.usage, stream.model), (seed + offset, number)


@pytest.mark.parametrize("seed", range(5))
def test_a_stream_cut_in_two_at_every_byte_reaches_the_caller_alike(seed: int) -> None:
    stream = random_stream(1000 + seed)
    data, expected = b"".join(stream.with_usage), b"".join(stream.without_usage)

    for at in range(len(data) + 1):
        relayed, usage, model = relay([data[:at], data[at:]])

        assert relayed == expected, at
        assert (usage, model) == (stream.usage, stream.model), at
