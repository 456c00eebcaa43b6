"""An event stream the upstream breaks ends with one error event the caller's SSE parser reads whole,
wherever the break falls; a stream that is not broken goes byte for byte, however it is cut into
chunks."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from gateway.errors import UpstreamStreamBroken
from gateway.pipeline.relay import MAX_LINE, relay
from tests.support.metering import chat_call
from tests.unit.metering.support import splittings

SSE = [(b"content-type", b"text/event-stream")]
EVENT = b'data: {"choices":[{"delta":{"content":"Hello"}}]}\n\n'
NAMED = b'event: content_block_delta\ndata: {"type":"content_block_delta"}\n\n'


@dataclass
class Breaking:
    """An upstream response whose body is `body`, then (if `breaks`) a broken connection."""

    body: list[bytes]
    breaks: bool = True
    status: int = 200
    headers: Sequence[tuple[bytes, bytes]] = tuple(SSE)

    async def chunks(self) -> AsyncIterator[bytes]:
        for chunk in self.body:
            yield chunk
        if self.breaks:
            raise UpstreamStreamBroken("the upstream connection failed mid-response (ClientPayloadError)")

    async def aclose(self) -> None:
        return None


def relayed(response: Breaking) -> bytes:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(relay(chat_call(), response, send, None))  # type: ignore[arg-type]
    assert sent[-1]["more_body"] is False
    return b"".join(message.get("body", b"") for message in sent[1:])


def events(stream: bytes) -> list[tuple[str, str]]:
    """(event type, data) of each event the OpenAI and Anthropic SDKs' parser dispatches: as the WHATWG
    rules say, except that an event with a type and no data is dispatched too (and fails as JSON)."""
    dispatched, kind, data = [], "", []
    for line in stream.replace(b"\r\n", b"\n").replace(b"\r", b"\n").decode().split("\n"):
        if not line:
            if data or kind:
                dispatched.append((kind or "message", "\n".join(data)))
            kind, data = "", []
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
        elif line.startswith("event:"):
            kind = line[6:].removeprefix(" ")
    return dispatched


def assert_ends_with_the_error_event(stream: bytes) -> list[tuple[str, str]]:
    parsed = events(stream)
    for _, data in parsed:
        json.loads(data)  # every event the caller's SDK reads is JSON it can parse
    assert json.loads(parsed[-1][1])["error"]["code"] == "upstream_stream_broken"
    return parsed[:-1]


@pytest.mark.parametrize(
    "cut",
    [
        pytest.param(len(EVENT) + 20, id="inside a data line"),
        pytest.param(len(EVENT) + len(EVENT) - 1, id="after the data line, before the blank line"),
        pytest.param(len(EVENT) + 5, id="inside the field name"),
        pytest.param(len(EVENT), id="between events"),
    ],
)
def test_a_stream_broken_anywhere_ends_with_an_error_event_read_whole(cut: int) -> None:
    body = (EVENT * 3)[:cut]

    before = assert_ends_with_the_error_event(relayed(Breaking([body])))

    whole_events = body.count(b"\n\n") + (1 if body.endswith(b"}\n") else 0)
    assert len(before) == whole_events


@pytest.mark.parametrize("cut", range(len(b"event: content_block_delta\n"), len(NAMED) - 1))
def test_a_stream_of_named_events_broken_after_a_type_line_ends_with_an_error_event_read_whole(
    cut: int,
) -> None:
    before = assert_ends_with_the_error_event(relayed(Breaking([NAMED, NAMED[:cut]])))

    assert before[0] == ("content_block_delta", '{"type":"content_block_delta"}')
    assert len(before) in (1, 2)


def test_a_stream_framed_with_crlf_broken_midway_ends_with_an_error_event_read_whole() -> None:
    event = EVENT.replace(b"\n", b"\r\n")
    for cut in range(len(event), 2 * len(event)):
        before = assert_ends_with_the_error_event(relayed(Breaking([event, event[: cut - len(event)]])))

        assert len(before) in (1, 2)


def test_the_events_before_the_break_reach_the_caller_however_the_chunks_cut_them() -> None:
    body = EVENT * 3 + EVENT[:30]
    for label, pieces in splittings(body):
        before = assert_ends_with_the_error_event(relayed(Breaking(pieces)))

        assert len(before) == 3, label


def test_a_whole_stream_goes_byte_for_byte_however_the_chunks_cut_it() -> None:
    body = EVENT * 3 + b"data: [DONE]"  # even a last line without its end
    for label, pieces in splittings(body):
        assert relayed(Breaking(pieces, breaks=False)) == body, label


def test_a_plain_body_is_not_held_line_by_line() -> None:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    response = Breaking([b'{"partial": "no line end', b' yet"}'], breaks=False, headers=[])
    asyncio.run(relay(chat_call(), response, send, None))  # type: ignore[arg-type]

    assert [message.get("body") for message in sent[1:]] == [b'{"partial": "no line end', b' yet"}', b""]


def test_a_line_longer_than_the_hold_goes_on_before_its_end_comes() -> None:
    line = b"data: " + b"A" * (3 * MAX_LINE) + b"\n\n"  # a streamed image's base64, say
    pieces = [line[i : i + 65536] for i in range(0, len(line), 65536)]
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(relay(chat_call(), Breaking(pieces, breaks=False), send, None))  # type: ignore[arg-type]

    bodies = [message["body"] for message in sent[1:]]
    assert b"".join(bodies) == line
    assert len([body for body in bodies if body]) >= 3


def test_a_stream_broken_inside_a_line_longer_than_the_hold_ends_with_an_error_event_of_its_own() -> None:
    line = b"data: " + b"A" * (2 * MAX_LINE)  # its start went on before the break
    pieces = [line[i : i + 65536] for i in range(0, len(line), 65536)]

    parsed = events(relayed(Breaking([EVENT, *pieces])))

    assert json.loads(parsed[-1][1])["error"]["code"] == "upstream_stream_broken"
    assert [data[:1] for _, data in parsed[:-1]] == ["{", "A"]  # the line cut short, an event apart
