"""Event streams are kept (by reference) and read at their end, up to `RETAIN` bytes; a longer stream, or
one that shows no sign of usage in its first chunks, is read as it passes from then on. Either way the
extraction and the relayed bytes are the same."""

from __future__ import annotations

import json
import math
import random
import re

import pytest

from gateway.metering.extractors import extractor_for, openai
from gateway.metering.extractors.openai_strip import StripCount
from gateway.metering.extractors.sse import MAX_KINDS, PROBE, PROBE_CHUNKS, RETAIN, Envelopes
from gateway.metering.extractors.streams import DataDialect, IncrementalStream, Kept
from gateway.metering.usage import Endpoint, Extraction, TokenUsage, UsageExtractor
from tests.unit.metering.support import SSE, fixture, near, random_pieces, run

WORDS = ("the", " quick", " brown", " fox", " jumps", " over", " a", " lazy", " dog.")


def chat_events(count: int, *, include_usage: bool, usage: bool) -> tuple[list[bytes], int]:
    """An OpenAI chat stream of `count` content events, one per item, and the characters of its text."""
    tail = {"usage": None} if include_usage else {}
    events, text = [], 0
    for index in range(count):
        word = WORDS[index % len(WORDS)]
        text += len(word)
        choice = {"index": 0, "delta": {"content": word}, "finish_reason": None}
        body = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "gpt-4o", "choices": [choice]}
        events.append(b"data: " + json.dumps({**body, **tail}, separators=(",", ":")).encode() + b"\n\n")
    if usage:
        report = {"prompt_tokens": 12, "completion_tokens": count, "total_tokens": 12 + count}
        body = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "gpt-4o", "choices": []}
        events.append(b"data: " + json.dumps({**body, "usage": report}).encode() + b"\n\n")
    return [*events, b"data: [DONE]\n\n"], text


def anthropic_events(count: int, *, usage: bool) -> tuple[list[bytes], int]:
    def event(name: str, data: dict[str, object]) -> bytes:
        return f"event: {name}\ndata: {json.dumps({'type': name, **data})}\n\n".encode()

    message = {"model": "claude-sonnet-4-5", "usage": {"input_tokens": 40, "output_tokens": 1}}
    events, text = [event("message_start", {"message": message})], 0
    for index in range(count):
        word = WORDS[index % len(WORDS)]
        text += len(word)
        delta = {"type": "text_delta", "text": word}
        events.append(event("content_block_delta", {"index": 0, "delta": delta}))
    final = {"delta": {"stop_reason": "end_turn"}, **({"usage": {"output_tokens": count}} if usage else {})}
    return [*events, event("message_delta", final), event("message_stop", {})], text


LONG = 10_000  # content events: past RETAIN


def test_the_long_streams_are_longer_than_the_retention_cap() -> None:
    assert len(b"".join(chat_events(LONG, include_usage=False, usage=False)[0])) > RETAIN
    assert len(b"".join(anthropic_events(LONG, usage=False)[0])) > RETAIN


@pytest.mark.parametrize("strip", [False, True])
def test_a_chat_stream_longer_than_the_cap_still_reports_its_usage(strip: bool) -> None:
    events, _ = chat_events(LONG, include_usage=True, usage=True)
    expected, _ = chat_events(LONG, include_usage=False, usage=False)

    extraction, relayed = run("openai", Endpoint.CHAT_COMPLETIONS, SSE, events, strip=strip)

    assert extraction.usage == TokenUsage(input_tokens=12, output_tokens=LONG)
    assert extraction.model == "gpt-4o"
    assert extraction.output_chars == 0
    assert relayed == b"".join(expected if strip else events)


@pytest.mark.parametrize("strip", [False, True])
def test_a_chat_stream_longer_than_the_cap_without_usage_counts_all_its_text(strip: bool) -> None:
    events, text = chat_events(LONG, include_usage=True, usage=False)  # the usage chunk never came
    full = StripCount() if strip else IncrementalStream(DataDialect(openai.read_chat, openai.CHAT_TEXT_KEY))
    for event in events:
        full.feed(event)

    extraction, _ = run("openai", Endpoint.CHAT_COMPLETIONS, SSE, events, strip=strip)

    assert extraction.usage is None
    assert extraction.model == "gpt-4o"
    assert extraction.output_chars == full.estimated  # what reading every event as it passed counts
    assert near(extraction.output_chars, text)


def test_an_anthropic_stream_longer_than_the_cap_reads_the_same_as_a_short_one() -> None:
    events, text = anthropic_events(LONG, usage=True)
    unreported, _ = anthropic_events(LONG, usage=False)

    extraction, _ = run("anthropic", Endpoint.MESSAGES, SSE, events)
    without, _ = run("anthropic", Endpoint.MESSAGES, SSE, unreported)

    assert extraction.usage == TokenUsage(input_tokens=40, output_tokens=LONG)
    assert extraction.model == "claude-sonnet-4-5"
    assert without.usage is None
    assert without.model == "claude-sonnet-4-5"
    assert near(without.output_chars, text)


def test_cut_at_random_a_long_stream_reads_and_relays_alike() -> None:
    events, _ = chat_events(LONG, include_usage=True, usage=False)
    stream = b"".join(events)
    expected, _ = run("openai", Endpoint.CHAT_COMPLETIONS, SSE, events, strip=True)
    without, _ = chat_events(LONG, include_usage=False, usage=False)

    extraction, relayed = run(
        "openai", Endpoint.CHAT_COMPLETIONS, SSE, random_pieces(stream, 6, 20_000), strip=True
    )

    assert extraction == expected
    assert relayed == b"".join(without)


SMALL_CAP = 3000  # a dozen events' worth: the switch-over happens early in the test streams


def deliveries(stream: bytes) -> list[list[bytes]]:
    """The stream in three chunks, the second taking the kept bytes past the cap, ending inside events
    (and, once, at the end of one)."""
    start = SMALL_CAP - 40
    ends = [SMALL_CAP + offset for offset in (1, 17, 90, 150, 200, 233)]
    return [[stream[:start], stream[start:end], stream[end:]] for end in ends]


def reads_as_it_passes(extractor: UsageExtractor) -> bool:
    """Whether the extractor hands every chunk to a reader as it passes (a private detail, on purpose)."""
    return bool(extractor._room == math.inf)  # type: ignore[attr-defined]


def run_switched(
    kind: str, endpoint: Endpoint, pieces: list[bytes], *, strip: bool
) -> tuple[Extraction, bytes]:
    """`run`, checking that the extractor switched to reading as the stream passes."""
    extractor = extractor_for(kind, endpoint, SSE, strip_injected_usage=strip)
    relayed = b"".join(extractor.feed(piece) for piece in pieces)
    assert reads_as_it_passes(extractor)  # past the cap
    return extractor.finish(), relayed


@pytest.mark.parametrize("usage", [True, False])
@pytest.mark.parametrize("strip", [False, True])
def test_the_switch_over_in_the_middle_of_an_event_changes_nothing(
    usage: bool, strip: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    events, _ = chat_events(60, include_usage=True, usage=usage)
    stream = b"".join(events)
    expected, expected_relay = run("openai", Endpoint.CHAT_COMPLETIONS, SSE, [stream], strip=strip)
    monkeypatch.setattr(Kept, "retain", SMALL_CAP)

    for pieces in deliveries(stream):
        extraction, relayed = run_switched("openai", Endpoint.CHAT_COMPLETIONS, pieces, strip=strip)

        assert extraction == expected
        assert relayed == expected_relay
    assert sum(not pieces[1].endswith(b"\n\n") for pieces in deliveries(stream)) >= 4  # mid-event
    assert (expected.usage is not None) is usage


@pytest.mark.parametrize("usage", [True, False])
def test_an_anthropic_switch_over_in_the_middle_of_an_event_changes_nothing(
    usage: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    events, _ = anthropic_events(60, usage=usage)
    stream = b"".join(events)
    expected, _ = run("anthropic", Endpoint.MESSAGES, SSE, [stream])
    monkeypatch.setattr(Kept, "retain", SMALL_CAP)

    for pieces in deliveries(stream):
        extraction, relayed = run_switched("anthropic", Endpoint.MESSAGES, pieces, strip=False)

        assert extraction == expected
        assert relayed == stream
    assert (expected.usage is not None) is usage


@pytest.mark.parametrize("strip", [False, True])
def test_a_stream_that_says_nothing_of_usage_at_first_is_read_as_it_passes(strip: bool) -> None:
    events, text = chat_events(200, include_usage=False, usage=False)
    full = StripCount() if strip else IncrementalStream(DataDialect(openai.read_chat, openai.CHAT_TEXT_KEY))
    extractor = extractor_for("openai", Endpoint.CHAT_COMPLETIONS, SSE, strip_injected_usage=strip)

    for index, event in enumerate(events, start=1):
        full.feed(event)
        assert extractor.feed(event) == event
        assert reads_as_it_passes(extractor) is (index >= PROBE_CHUNKS)
    extraction = extractor.finish()

    assert extraction == Extraction(None, "gpt-4o", full.estimated)
    assert near(extraction.output_chars, text)


@pytest.mark.parametrize("strip", [False, True])
def test_a_large_first_chunk_without_usage_is_read_as_it_passes_at_once(strip: bool) -> None:
    events, _ = chat_events(200, include_usage=False, usage=False)
    extractor = extractor_for("openai", Endpoint.CHAT_COMPLETIONS, SSE, strip_injected_usage=strip)

    extractor.feed(b"".join(events))

    assert reads_as_it_passes(extractor)
    assert extractor.finish() == run("openai", Endpoint.CHAT_COMPLETIONS, SSE, events, strip=strip)[0]


@pytest.mark.parametrize(
    ("kind", "endpoint", "name"),
    [
        ("azure-openai", Endpoint.CHAT_COMPLETIONS, "azure_chat_stream_usage.sse"),  # not in its first event
        ("anthropic", Endpoint.MESSAGES, "anthropic_messages_stream.sse"),
        ("gemini", Endpoint.STREAM_GENERATE_CONTENT, "gemini_stream.sse"),
        ("openai", Endpoint.RESPONSES, "openai_responses_stream.sse"),
    ],
)
def test_streams_that_report_usage_say_so_in_their_first_events(
    kind: str, endpoint: Endpoint, name: str
) -> None:
    events = [event for event in re.split(rb"(?<=\n\n)|(?<=\n\r\n)", fixture(name)) if event]
    extractor = extractor_for(kind, endpoint, SSE, strip_injected_usage=False)
    comment = b": " + b"x" * PROBE + b"\n\n"  # past the probe's bytes, after the first two events

    for event in [*events[:2], comment, *events[2:]]:
        extractor.feed(event)

    assert not reads_as_it_passes(extractor)
    assert extractor.finish().usage is not None


@pytest.mark.parametrize("usage", [True, False])
def test_a_caller_that_keeps_the_bound_feed_gets_the_same_reading(usage: bool) -> None:
    events, _ = chat_events(LONG, include_usage=True, usage=usage)
    extractor = extractor_for("openai", Endpoint.CHAT_COMPLETIONS, SSE, strip_injected_usage=False)
    feed = extractor.feed  # looked up once, before the stream is read as it passes

    relayed = b"".join(feed(event) for event in events)

    assert reads_as_it_passes(extractor)
    assert (extractor.finish(), relayed) == run("openai", Endpoint.CHAT_COMPLETIONS, SSE, events)


def test_a_stream_whose_every_event_starts_differently_is_read_event_by_event_not_learnt() -> None:
    """Data-only Responses API events (no `event:` lines) lead with a growing `sequence_number`: every
    content event's head differs. The stream learns at most `MAX_KINDS` kinds of event, so that each
    later event is looked up among as many, not among all before it."""
    envelopes = Envelopes()
    for number in range(2000):
        head = b'data: {"type":"response.output_text.delta","sequence_number":%d,"delta":"' % number
        envelopes.sample(head, head + b'01234","x":1}\n\n', 5)

    assert len(envelopes) == MAX_KINDS


def test_a_long_data_only_responses_stream_is_read_exactly() -> None:
    events = [b'data: {"type":"response.created","sequence_number":0,"response":{"model":"gpt-4.1"}}\n\n']
    events += [
        b'data: {"type":"response.output_text.delta","sequence_number":%d,"item_id":"m","delta":"w%d"}\n\n'
        % (number, number)
        for number in range(1, 30000)
    ]
    events.append(
        b'data: {"type":"response.completed","sequence_number":30000,"response":{"model":"gpt-4.1",'
        b'"usage":{"input_tokens":5,"output_tokens":29999}}}\n\n'
    )
    body = b"".join(events)
    assert len(body) > RETAIN  # read as it passes, event by event

    extraction, relayed = run(
        "openai", Endpoint.RESPONSES, SSE, [body[i : i + 4096] for i in range(0, len(body), 4096)]
    )

    assert relayed == body
    assert extraction.usage == TokenUsage(5, 29999)


def logprobs_of(word: str, rng: random.Random) -> list[dict[str, object]]:
    """A token's log probability and its top alternatives, as OpenAI gives them: sizes vary per token."""
    alternatives = [rng.choice(WORDS) for _ in range(rng.randint(1, 5))]
    return [
        {
            "token": word,
            "logprob": -rng.random() * rng.choice([0.001, 1, 5]),
            "bytes": list(word.encode()),
            "top_logprobs": [
                {"token": a, "logprob": -rng.random(), "bytes": list(a.encode())} for a in alternatives
            ],
        }
    ]


@pytest.mark.parametrize("strip", [False, True])
@pytest.mark.parametrize("seed", range(4))
def test_a_cut_chat_stream_with_log_probabilities_counts_its_text_not_their_size(
    strip: bool, seed: int
) -> None:
    rng, events, text = random.Random(seed), [], 0
    for index in range(300):
        word = WORDS[index % len(WORDS)]
        text += len(word)
        choice = {"index": 0, "delta": {"content": word}, "logprobs": {"content": logprobs_of(word, rng)}}
        body = {"id": "c", "model": "gpt-4o", "choices": [{**choice, "finish_reason": None}], "usage": None}
        events.append(b"data: " + json.dumps(body, separators=(",", ":")).encode() + b"\n\n")

    extraction, relayed = run(
        "openai", Endpoint.CHAT_COMPLETIONS, SSE, random_pieces(b"".join(events), seed), strip=strip
    )

    assert extraction.usage is None
    assert extraction.output_chars == text  # every event measured: their envelopes differ
    sent = b"".join(events)
    assert relayed == (sent.replace(b',"usage":null', b"") if strip else sent)


def test_a_cut_responses_stream_with_log_probabilities_counts_its_text_not_their_size() -> None:
    rng, text = random.Random(7), 0
    events = [
        b'event: response.created\ndata: {"type":"response.created","response":{"model":"gpt-4.1"}}\n\n'
    ]
    for number in range(1, 300):
        word = WORDS[number % len(WORDS)]
        text += len(word)
        delta = {"type": "response.output_text.delta", "sequence_number": number, "delta": word}
        data = json.dumps({**delta, "logprobs": logprobs_of(word, rng)}, separators=(",", ":"))
        events.append(b"event: response.output_text.delta\ndata: " + data.encode() + b"\n\n")

    extraction, _ = run("openai", Endpoint.RESPONSES, SSE, random_pieces(b"".join(events), 7))

    assert extraction.usage is None
    assert extraction.output_chars == text


def test_a_kind_of_event_whose_envelopes_differ_widely_is_measured_event_by_event() -> None:
    envelopes = Envelopes()
    head = b'data: {"choices":[{"delta":{"content":"'
    for padding in (10, 200, 30):
        assert envelopes.sample(head, head + b'hi"}}],"meta":"' + b"x" * padding + b'"}\n\n', 2) is None

    assert head in envelopes.irregular and head not in envelopes.known
