"""Server-sent events: where events end, what one event says, and the envelopes of content events.

Events end with a blank line (`\\n\\n`, `\\n\\r\\n`, `\\r\\n\\r\\n`). A chunk of a stream may hold any
number of events and begin or end in the middle of one: `Held` keeps the incomplete event at the end of
a chunk (a copy of that event's bytes only) until the chunk that completes it arrives, so every event is
seen whole, exactly as if the stream had arrived in one piece. A stream kept whole is also searched
from its ends (`whole_event`, `last_usage_object`): an event found so is the one cutting from the start
gives, or none where that is not sure.

JSON never holds a raw line feed (inside strings it is escaped), so in the streams metered here an
event's line feeds are its line ends and the blank line that ends it: an event of one data line holds
exactly two, one with an `event:` line three. `tally` builds its fast path on that.
"""

from __future__ import annotations

import re
from typing import Any

from gateway.metering.extractors.base import loads

ENVELOPE_SAMPLES = 3
# Envelopes of one kind differ by a few bytes (growing numbers, OpenAI's `obfuscation` padding, which
# keeps text plus padding near a constant size); by more than this, the kind has no envelope to learn.
MAX_ENVELOPE_SPREAD = 64
# Log probabilities given (not null) after a text: OpenAI's `logprobs`, Gemini's `logprobsResult`.
LOGPROBS = re.compile(rb'"logprobs(?:Result)?"\s*:\s*[\[{]')
MAX_HELD = 16 * 1024 * 1024  # an "event" this long is not SSE: stop looking at the stream
RETAIN = 1024 * 1024  # bytes of a stream kept by reference to be read at its end; longer, read as it passes
PROBE, PROBE_CHUNKS = 4096, 2  # a stream must show a `usage` in as many bytes, chunks to be kept
AFTER_LAST = 8  # whole events looked at after the one that settles a stream, at most
LF, CR, BACKSLASH = 10, 13, 0x5C
LF_END, CRLF_END = b"\n\n", b"\n\r\n"  # the end of a blank line: LF LF, or LF CR LF (CRLF framing)
USAGE_OBJECT = re.compile(rb'"usage(?:Metadata)?"\s*:\s*\{')
ONE_DATA_LINE = re.compile(rb"(?:event:[^\n]*\n)?data:([^\n]*)\n\r?\n")  # an event of one data line
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


def last_end(data: bytes, start: int, stop: int, end: bytes) -> int:
    """The index just past the last blank line in `data[start:stop]`, or -1, whatever its framing.

    `end`, the stream's own blank line (`LF_END` or `CRLF_END`), is looked for first, the other only
    after it: two short searches from the back where a stream keeps to one framing.
    """
    other = CRLF_END if end == LF_END else LF_END
    found = data.rfind(end, start, stop)
    past = found + len(end) if found >= 0 else -1
    found = data.rfind(other, max(found, start), stop)
    return max(past, found + len(other) if found >= 0 else -1)


def event_start(data: bytes, start: int, at: int, end: bytes) -> int:
    """The start of the event that holds `data[at]`, in a range of whole events that begins at `start`."""
    if end in (LF_END, CRLF_END):
        found = data.rfind(end, start, at)
        if found >= 0:
            return found + len(end)
    lf, crlf = data.rfind(LF_END, start, at), data.rfind(CRLF_END, start, at)
    return max(lf + 2 if lf >= 0 else start, crlf + 3 if crlf >= 0 else start)


def blank_line(data: bytes) -> bytes | None:
    """`LF_END` where `data` holds no CR, so that every event ends with it: events are then found with
    one search per boundary. None where it may also hold `CRLF_END` (either is looked for)."""
    return LF_END if data.find(b"\r") < 0 else None


def whole_event(data: bytes, at: int, blank: bytes | None) -> tuple[int, int] | None:
    """The bounds of the whole event that holds `data[at]` (not a line end), found from `at`.

    They are those that cutting the stream at every blank line from its start gives: None where no blank
    line ends the event yet (the stream was cut in it), or where what precedes it is not one plain blank
    line after a line (a blank line after a blank line, a CR alone), where cutting from the start might
    differ. `blank` is `blank_line(data)`.
    """
    if not 0 <= at < len(data) or data[at] in (LF, CR):
        return None
    if blank is None:
        start, end = last_end(data, 0, at, CRLF_END), boundary_end(data, at)
    else:
        start, end = data.rfind(blank, 0, at), data.find(blank, at)
        start, end = start + len(blank) if start >= 0 else -1, end + len(blank) if end >= 0 else -1
    if start < 0:
        start = 0
    else:  # a line must end where the blank line begins, and not right after another line end
        line_end = start - 2 if data.startswith(LF_END, start - 2) else start - 3
        before = data[line_end - 1] if line_end > 0 else -1
        if before == LF or (before == CR and line_end > 1 and data[line_end - 2] == LF):
            return None
    return (start, end) if end > 0 else None


def last_usage_object(data: bytes, blank: bytes | None) -> tuple[int, int] | None:
    """The bounds of the whole event that holds the last usage object in `data`, if it is in one and
    among the last `AFTER_LAST` `"usage` keys (past those, `"usage": null` members of a stream cut
    before its usage chunk: not worth looking further)."""
    at = len(data)
    for _ in range(AFTER_LAST):
        at = data.rfind(b'"usage', 0, at)
        if at < 0:
            return None
        match = USAGE_OBJECT.match(data, at)
        if match is not None:
            span = whole_event(data, at, blank)
            return span if span is not None and match.end() <= span[1] else None
    return None


def events_after(data: bytes, blank: bytes | None, end: int) -> list[bytes] | None:
    """The whole events from `end` (where one starts), if there are at most `AFTER_LAST`."""
    events: list[bytes] = []
    while (following := boundary_end(data, end) if blank is None else data.find(blank, end)) >= 0:
        if blank is not None:
            following += len(blank)
        if len(events) == AFTER_LAST:
            return None
        events.append(data[end:following])
        end = following
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
    if event.startswith(b"data: ") and event.find(b"\n") == len(event) - 2:  # the usual: one line, LF
        return loads(event[6:-2])
    match = ONE_DATA_LINE.fullmatch(event)  # the common shapes: the space and CR it keeps are JSON's too
    return loads(match.group(1) if match else parse_event(event)[1])


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


MAX_KINDS = 32  # kinds of content event whose envelope a stream learns (see `Envelopes.sample`)


class Envelopes:
    """Learns, per kind of content event (its head), the size of the JSON envelope around its text.

    A kind whose events carry log probabilities (a `logprobs` object or list after each token's text,
    its size varying with the token and its alternatives), or whose first envelopes differ by more than
    `MAX_ENVELOPE_SPREAD` bytes, has none to learn: each of its events is measured exactly, never by the
    envelope of others.
    """

    __slots__ = ("_samples", "irregular", "known")

    def __init__(self) -> None:
        self._samples: dict[bytes, list[int]] = {}
        self.known: dict[bytes, int] = {}
        self.irregular: set[bytes] = set()

    def __len__(self) -> int:
        """Kinds of content event learnt or being learnt."""
        return len(self.known) + len(self._samples) + len(self.irregular)

    def head_of(self, event: bytes) -> bytes | None:
        """The head of a kind seen before that `event` starts with, if any (no pattern search)."""
        for head in self.known:
            if event.startswith(head):
                return head
        for head in self._samples:
            if event.startswith(head):
                return head
        for head in self.irregular:
            if event.startswith(head):
                return head
        return None

    def sample(self, kind: bytes, event: bytes, text_size: int) -> int | None:
        """Record one exactly measured event; the envelope once `kind` has enough samples, and if they
        agree (else None, now and for every later event of the kind: see the class).

        At most `MAX_KINDS` kinds are kept: past them a new kind is not learnt, its events measured
        one by one. (A head that changes with every event, a growing `sequence_number` before the text
        of data-only Responses API events, would otherwise make every event a kind of its own, and
        `head_of` a search through all of them: quadratic in the stream's length.)"""
        samples = self._samples.get(kind)
        if samples is None:
            if kind in self.irregular or len(self) >= MAX_KINDS:
                return None
            samples = self._samples[kind] = []
        samples.append(len(event) - text_size)
        if LOGPROBS.search(event, len(kind) + text_size):
            del self._samples[kind]
            self.irregular.add(kind)
            return None
        if len(samples) < ENVELOPE_SAMPLES:
            return None
        del self._samples[kind]
        if max(samples) - min(samples) > MAX_ENVELOPE_SPREAD:
            self.irregular.add(kind)
            return None
        envelope = sorted(samples)[(len(samples) - 1) // 2]  # the lower median
        self.known[kind] = envelope
        return envelope
