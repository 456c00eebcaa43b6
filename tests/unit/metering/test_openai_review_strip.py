"""The strip of the usage the gateway asked for, on streams whose events are not all framed alike."""

from __future__ import annotations

import json
import random

import pytest

from gateway.metering.usage import Endpoint, TokenUsage
from tests.unit.metering.support import SSE, run
from tests.unit.metering.test_strip_fuzz import cuts, random_stream, relay

USAGE = {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}


def content(word: str, line_end: bytes) -> tuple[bytes, bytes]:
    """A content event with the `"usage":null` member include_usage brings, and the same without it."""
    chunk = {"id": "c", "model": "qwen2.5-7b", "choices": [{"index": 0, "delta": {"content": word}}]}
    data = json.dumps(chunk, separators=(",", ":")).encode()
    with_null = data[:-1] + b',"usage":null}'
    return b"data: " + with_null + line_end * 2, b"data: " + data + line_end * 2


def stream(line_end: bytes, keep_alive: bytes) -> tuple[bytes, bytes]:
    """A stream with include_usage, and the same as the caller asked for it, a keep-alive comment framed
    otherwise than the events between them (sse-starlette, before it gave its pings the response's
    separator, sent them framed with CRLF in streams framed with LF)."""
    usage_only = {"id": "c", "model": "qwen2.5-7b", "choices": [], "usage": USAGE}
    usage_event = b"data: " + json.dumps(usage_only, separators=(",", ":")).encode() + line_end * 2
    done = b"data: [DONE]" + line_end * 2
    first, first_bare = content("Hi", line_end)
    second, second_bare = content(" there", line_end)
    with_usage = first + keep_alive + second + usage_event + keep_alive + done
    without_usage = first_bare + keep_alive + second_bare + keep_alive + done
    return with_usage, without_usage


@pytest.mark.parametrize(
    ("line_end", "keep_alive"),
    [(b"\n", b": ping - 2026-12-03 16:00:00\r\n\r\n"), (b"\r\n", b": ping\n\n")],
    ids=["lf-events-crlf-pings", "crlf-events-lf-pings"],
)
def test_a_keep_alive_framed_otherwise_in_the_same_read_as_the_usage_event_changes_nothing(
    line_end: bytes, keep_alive: bytes
) -> None:
    with_usage, without_usage = stream(line_end, keep_alive)

    for cut in range(len(with_usage) + 1):
        extraction, relayed = run(
            "openai-compatible",
            Endpoint.CHAT_COMPLETIONS,
            SSE,
            [with_usage[:cut], with_usage[cut:]],
            strip=True,
        )

        assert relayed == without_usage, cut
        assert extraction.usage == TokenUsage(input_tokens=5, output_tokens=3), cut
        assert extraction.model == "qwen2.5-7b", cut


@pytest.mark.parametrize("seed", range(0, 200, 4))
def test_random_streams_with_keep_alives_framed_otherwise_reach_the_caller_as_without_include_usage(
    seed: int,
) -> None:
    for offset in range(4):
        stream = random_stream(seed + offset)
        rng = random.Random(seed + offset)
        events, callers = stream.with_usage, stream.without_usage
        if len(events) > len(callers):  # the usage-only event, before `data: [DONE]`, is the caller's nothing
            callers = [*callers[:-1], b"", callers[-1]]
        keep_alive = b": ping\n\n" if events[-1].endswith(b"\r\n\r\n") else b": ping - 16:00\r\n\r\n"
        sent, expected = [], []
        for event, callers_event in zip(events, callers, strict=True):
            sent.append(event)
            expected.append(callers_event)
            if rng.random() < 0.3:
                sent.append(keep_alive)
                expected.append(keep_alive)

        for number, pieces in enumerate(cuts(rng, sent)):
            relayed, usage, model = relay(pieces)

            assert relayed == b"".join(expected), (seed + offset, number)
            assert (usage, model) == (stream.usage, stream.model), (seed + offset, number)
