"""Server-sent events: where events end, what one event says, and the envelopes of content events.

Events end with a blank line (`\\n\\n`, `\\n\\r\\n`, `\\r\\n\\r\\n`). A chunk of a stream may hold any
number of events and begin or end in the middle of one: `Held` keeps the incomplete event at the end of
a chunk (a copy of that event's bytes only) until the chunk that completes it arrives, so every event is
seen whole, exactly as if the stream had arrived in one piece.

JSON never holds a raw line feed (inside strings it is escaped), so in the streams metered here an
event's line feeds are its line ends and the blank line that ends it: an event of one data line holds
exactly two, one with an `event:` line three. `tally` builds its fast path on that.
"""

from __future__ import annotations

import re
from typing import Any

from gateway.metering.extractors.base import loads

ENVELOPE_SAMPLES = 3
MAX_HELD = 16 * 1024 * 1024  # an "event" this long is not SSE: stop looking at the stream
LF, CR, BACKSLASH = 10, 13, 0x5C
LF_END, CRLF_END = b"\n\n", b"\n\r\n"  # the end of a blank line: LF LF, or LF CR LF (CRLF framing)
TYPE_VALUE = re.compile(rb'"type"\s*:\s*"([^"\\]*)"')
MODEL_VALUE = re.compile(rb'"model"\s*:\s*"([^"\\]*)"')


def boundary_end(data: bytes | bytearray, position: int) -> int:
    """The index just past the first blank line that starts at or after `position`, or -1."""
    size = len(data)
    index = data.find(b"\n", position)
    while 0 <= index < size - 1:
        following = data[index + 1]
        if following == LF:
            return index + 2
        if following == CR and index + 2 < size and data[index + 2] == LF:
            return index + 3
        index = data.find(b"\n", index + 1)
    return -1


def last_boundary(data: bytes, start: int, end: bytes) -> int:
    """The index just past the last blank line in `data[start:]`, or -1; `end` is the stream's own."""
    if end in (LF_END, CRLF_END):
        found = data.rfind(end, start)
        if found >= 0:
            return found + len(end)
    lf, crlf = data.rfind(LF_END, start), data.rfind(CRLF_END, start)
    return max(lf + 2 if lf >= 0 else -1, crlf + 3 if crlf >= 0 else -1)


def event_start(data: bytes, start: int, at: int, end: bytes) -> int:
    """The start of the event that holds `data[at]`, in a range of whole events that begins at `start`."""
    if end in (LF_END, CRLF_END):
        found = data.rfind(end, start, at)
        if found >= 0:
            return found + len(end)
    lf, crlf = data.rfind(LF_END, start, at), data.rfind(CRLF_END, start, at)
    return max(lf + 2 if lf >= 0 else start, crlf + 3 if crlf >= 0 else start)


def split_events(data: bytes) -> list[bytes]:
    """Whole events, in order (what follows the last blank line, if anything, as the last one)."""
    events, start = [], 0
    while start < len(data):
        end = boundary_end(data, start)
        if end < 0:
            end = len(data)
        events.append(data[start:end])
        start = end
    return events


class Held(bytearray):
    """The incomplete event at the end of what has passed: a copy of its bytes, until its end arrives."""

    __slots__ = ()

    def end_in(self, chunk: bytes) -> int:
        """The index in `chunk` just past the blank line that ends the held event, or -1.

        The blank line may straddle the junction: the last two held bytes are searched with the first
        two of the chunk (the held bytes never hold a whole blank line).
        """
        tail = bytes(self[-2:])
        end = boundary_end(tail + chunk[:2], 0)
        if end > len(tail):
            return end - len(tail)
        return boundary_end(chunk, 0)

    def complete(self, chunk: bytes, end: int) -> bytes:
        """The held event completed by `chunk[:end]`; nothing is held any more."""
        event = b"".join((self, chunk[:end]))
        self.clear()
        return event

    def keep(self, chunk: bytes, start: int = 0) -> None:
        self.extend(memoryview(chunk)[start:])


def parse_event(event: bytes) -> tuple[bytes, bytes]:
    """The `event:` name (b"" if none) and the `data:` lines (joined by LF) of one event."""
    end = event.find(b"\n")
    if event.startswith(b"data:") and event[end + 1 :] in (b"\n", b"\r\n"):  # the common shape
        return b"", event[6 if event.startswith(b"data: ") else 5 : end].rstrip(b"\r")
    name = b""
    data: list[bytes] = []
    for raw in event.split(b"\n"):
        line = raw[:-1] if raw.endswith(b"\r") else raw
        if line.startswith(b"data:"):
            data.append(line[6:] if line.startswith(b"data: ") else line[5:])
        elif line.startswith(b"event:"):
            name = line[7:] if line.startswith(b"event: ") else line[6:]
    return name.strip(), b"\n".join(data)


def payload_of(event: bytes) -> Any:
    """The event's data as JSON, or None."""
    return loads(parse_event(event)[1])


def event_name(event: bytes) -> bytes:
    """The name its `event:` line gives the event, else its data's `type` (found, not parsed), else b""."""
    if event.startswith(b"event:"):
        return event[6 : event.find(b"\n")].strip()
    found = TYPE_VALUE.search(event, 0, 200)  # `type` opens Anthropic's and OpenAI's event objects
    return found.group(1) if found else b""


def model_in(event: bytes) -> str | None:
    """The first `"model": "..."` value in the event, found without parsing it."""
    at = event.find(b'"model"')
    found = MODEL_VALUE.match(event, at) if at >= 0 else None
    return found.group(1).decode("utf-8", "replace") if found else None


def string_end(data: bytes, start: int) -> int:
    """The index of the quote that closes the JSON string whose contents start at `start`, or -1."""
    end = data.find(b'"', start)
    while end > 0 and data[end - 1] == BACKSLASH:
        run = 1
        while end - 1 - run >= start and data[end - 1 - run] == BACKSLASH:
            run += 1
        if run % 2 == 0:  # the backslashes escape each other, not the quote
            return end
        end = data.find(b'"', end + 1)
    return end


def text_head(event: bytes, key: re.Pattern[bytes]) -> bytes | None:
    """The event up to the opening quote of the string value of the first `key` match."""
    match = key.search(event)
    return event[: match.end()] if match else None


def text_size_after(event: bytes, start: int) -> int:
    """The bytes of the JSON string whose contents start at `start` (0 if it does not close)."""
    return max(string_end(event, start) - start, 0)


class Envelopes:
    """Learns, per kind of content event (its head), the size of the JSON envelope around its text."""

    __slots__ = ("_samples", "known")

    def __init__(self) -> None:
        self._samples: dict[bytes, list[int]] = {}
        self.known: dict[bytes, int] = {}

    def head_of(self, event: bytes) -> bytes | None:
        """The head of a kind seen before that `event` starts with, if any (no pattern search)."""
        for head in self.known:
            if event.startswith(head):
                return head
        for head in self._samples:
            if event.startswith(head):
                return head
        return None

    def sample(self, kind: bytes, event_size: int, text_size: int) -> int | None:
        """Record one exactly measured event; the envelope once `kind` has enough samples."""
        samples = self._samples.setdefault(kind, [])
        samples.append(event_size - text_size)
        if len(samples) < ENVELOPE_SAMPLES:
            return None
        envelope = sorted(samples)[(len(samples) - 1) // 2]  # the lower median
        self.known[kind] = envelope
        del self._samples[kind]
        return envelope
