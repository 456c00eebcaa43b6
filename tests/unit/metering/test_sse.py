"""Server-sent events: what one event's data says, whatever its framing."""

from __future__ import annotations

import pytest

from gateway.metering.extractors.sse import payload_of

PAYLOAD = {"id": "c", "choices": [], "usage": {"prompt_tokens": 3}}
ONE_LINE = b'{"id":"c","choices":[],"usage":{"prompt_tokens":3}}'


@pytest.mark.parametrize(
    "event",
    [
        b"data: " + ONE_LINE + b"\n\n",  # the usual shape
        b"data:" + ONE_LINE + b"\n\n",  # no space after the colon
        b"data: " + ONE_LINE + b"\r\n\r\n",  # CRLF framing
        b"data: " + ONE_LINE + b"\n\r\n",
        b"event: chunk\ndata: " + ONE_LINE + b"\n\n",  # named
        b'data: {"id":"c",\ndata: "choices":[],"usage":{"prompt_tokens":3}}\n\n',  # two data lines
    ],
    ids=["lf", "no-space", "crlf", "lf-crlf", "named", "two-lines"],
)
def test_an_events_data_is_read_as_json_whatever_its_shape(event: bytes) -> None:
    assert payload_of(event) == PAYLOAD


@pytest.mark.parametrize("event", [b"data: [DONE]\n\n", b"data: {\n\n", b": keep-alive\n\n"])
def test_data_that_is_not_json_reads_as_none(event: bytes) -> None:
    assert payload_of(event) is None
