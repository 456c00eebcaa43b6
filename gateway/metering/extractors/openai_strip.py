"""OpenAI-style chat / completions streams to which the gateway itself added `stream_options.include_usage`.

The provider then sends a usage-only chunk (`"choices": []`) before `data: [DONE]`, and a `"usage": null`
member in every other chunk. The caller did not ask for either: `StripStream` reads the usage and relays
the stream byte for byte as it would have been without include_usage. The usage-only event goes, and so
does each `"usage":null` member with its comma, wherever it sits in the object and however it is spaced.
(A provider that puts the usage object on a chunk that also carries content loses just that member.)

Cost per chunk, whatever the chunking (see `tally` for how runs of content events are recognised):

* A chunk of whole content events of the current kind is cut around its `,"usage":null` members: for
  one event `rpartition` from its end, near which OpenAI puts the member; for several `split` and
  `join`, checked to have cut exactly one member per event. No event is looked at alone.
* Other chunks (those holding the first events, the last ones, or cut events) relay their whole events
  the same way, the spelling of the member the stream uses learned from the first one; only an event
  holding a usage object, or a member spelled otherwise, is handled alone.
* An incomplete event at the end of a chunk is held back until its end arrives, since it may be the
  usage-only event or still hold (part of) a `"usage":null` member; once its member has passed, or it
  is `data: [DONE]`, or it grows past `MAX_HELD` bytes, it goes out as it comes (a held event past
  `MAX_HELD` unchanged and uncounted). An incomplete event still held at `finish` (a cut stream) is
  never relayed.

The model is the usage event's; a stream without one (cut) reads it from its last content event.
"""

from __future__ import annotations

import re
from contextlib import suppress
from typing import Any

from gateway.metering.extractors.base import items, mapping, model_of, object_end
from gateway.metering.extractors.openai import CHAT_TEXT_KEY, chat_usage
from gateway.metering.extractors.sse import (
    boundary_end,
    event_start,
    last_boundary,
    payload_of,
    split_events,
    text_head,
    text_size_after,
)
from gateway.metering.extractors.tally import EventTally
from gateway.metering.usage import Extraction, TokenUsage

MAX_HELD = 64 * 1024
NULL_MEMBER = re.compile(rb',\s*"usage"\s*:\s*null|"usage"\s*:\s*null\s*,\s*|"usage"\s*:\s*null')
USAGE_OBJECT = re.compile(rb'"usage"\s*:\s*\{')
USAGE_MEMBER = re.compile(rb',\s*"usage"\s*:\s*\{|"usage"\s*:\s*\{')
TRAILING_COMMA = re.compile(rb"\s*,\s*")


class StripStream(EventTally):
    """Reads usage from an include_usage stream the caller did not ask for, and strips it on the way."""

    __slots__ = ("_cut", "_model", "_null", "_released", "_usage")

    def __init__(self) -> None:
        super().__init__()
        self._null = b',"usage":null'  # replaced by the spelling the stream uses
        self._released = 0  # how many bytes of the held event have gone out already
        self._cut = False  # the held bytes are only the end of an event released whole (too long)
        self._usage: TokenUsage | None = None
        self._model: str | None = None

    def feed(self, chunk: bytes) -> bytes:
        if chunk.startswith(self._head) and chunk.endswith(self._end) and not self._held:
            size = len(chunk)
            if chunk.find(b"\n", self._after) == size - self._end_len:  # one event of the current kind
                before, null, after = chunk.rpartition(self._null)
                if null:
                    self.estimated += size - self._envelope
                    self.last = chunk
                    return before + after
            else:
                heads = chunk.count(self._head)
                if chunk.count(b"\n") == self._lines * heads:  # a run of them, nothing else
                    pieces = chunk.split(self._null)
                    if len(pieces) == heads + 1:  # one member each
                        self.estimated += size - heads * self._envelope
                        self.last = chunk
                        return b"".join(pieces)
        return self._slow(chunk)

    def _slow(self, chunk: bytes) -> bytes:
        """Complete the held event, relay the whole events, hold back the incomplete one at the end."""
        held, out, start = self._held, [], 0
        if held:
            end = held.end_in(chunk)
            if end < 0:
                held.keep(chunk)
                return self._release()
            out.append(self._held_event(held.complete(chunk, end)))
            start = end
        end = max(last_boundary(chunk, start, self._end), start)
        if end > start:
            self._count(chunk, start, end)
            out.append(self._relay_range(chunk, start, end))
        if end < len(chunk):
            held.keep(chunk, end)
            out.append(self._release())
        return b"".join(out)

    def _held_event(self, event: bytes) -> bytes:
        """What to relay of the event that was held: the rest of it, if part went out already."""
        released, cut = self._released, self._cut
        self._released, self._cut = 0, False
        if not cut:
            self._count(event, 0, len(event))
        return event[released:] if released else self._relay(event)

    def _release(self) -> bytes:
        """What of the incomplete held event may go now (see the module's docstring)."""
        held, released = self._held, self._released
        if released:
            piece = bytes(held[released:])
        elif held.startswith(b"data: [DONE]") or len(held) > MAX_HELD:
            piece = bytes(held)
        elif held.find(self._null) >= 0:  # its member has passed: nothing after it changes
            piece = bytes(held).replace(self._null, b"", 1)
        else:
            return b""
        if len(held) > MAX_HELD:  # too long to count: keep only what finds its end
            del held[:-2]
            self._cut = True
        self._released = len(held)
        return piece

    def _count(self, chunk: bytes, start: int, end: int) -> None:
        with suppress(Exception):  # the estimate misses what it could not read; the relay goes on
            self.events(chunk, start, end)

    def _relay_range(self, chunk: bytes, start: int, end: int) -> bytes:
        """What to relay of the whole events in `chunk[start:end]`."""
        out: list[bytes] = []
        for match in USAGE_OBJECT.finditer(chunk, start, end):  # events that carry a usage object
            at = match.start()
            if at < start:
                continue  # in the event just relayed
            first = event_start(chunk, start, at, self._end)
            following = boundary_end(chunk, at)
            following = following if 0 < following <= end else end
            out.append(self._without_nulls(chunk[start:first]))
            out.append(self._relay(chunk[first:following]))
            start = following
        out.append(self._without_nulls(chunk[start:end]))
        return b"".join(out)

    def _without_nulls(self, events: bytes) -> bytes:
        """Whole events without their `"usage":null` members: in one step where they are spelled alike."""
        stripped = b"".join(events.split(self._null))
        if b'"usage"' not in stripped:
            return stripped
        return b"".join(map(self._without_null, split_events(stripped)))

    def _relay(self, event: bytes) -> bytes:
        """What to relay of one whole event; its usage noted on the way."""
        try:
            if b'"usage"' not in event:
                return event  # [DONE], comments
            if USAGE_OBJECT.search(event):
                payload = payload_of(event)
                if isinstance(payload, dict) and isinstance(payload.get("usage"), dict):
                    return self._usage_event(event, payload)
            return self._without_null(event)
        except Exception:  # relay what cannot be understood unchanged
            return event

    def _usage_event(self, event: bytes, payload: dict[str, Any]) -> bytes:
        self._usage = chat_usage(payload["usage"]) or self._usage
        self._model = model_of(payload) or self._model
        if all(_is_empty(choice) for choice in items(payload, "choices")):
            return b""
        return _without_usage_object(event)

    def _without_null(self, event: bytes) -> bytes:
        key = event.find(b'"usage"')
        match = NULL_MEMBER.search(event, max(key - 16, 0)) if key >= 0 else None
        if match is None:
            return event
        if match.group().startswith(b","):
            self._null = match.group()
        return event[: match.start()] + event[match.end() :]

    def _head_of(self, event: bytes) -> bytes | None:
        return None if event.startswith(b"data: [DONE]") else text_head(event, CHAT_TEXT_KEY)

    def _text_size(self, event: bytes, head: bytes) -> int:
        return text_size_after(event, len(head))

    def finish(self) -> Extraction:
        model = self._model
        if model is None:
            last = self.last_content()
            try:
                model = model_of(payload_of(last[0])) if last else None
            except Exception:
                model = None
        return Extraction(self._usage, model, max(self.estimated, 0))


def _is_empty(choice: object) -> bool:
    """A choice that says nothing: no content, no finish reason (as in a usage-only chunk)."""
    if not isinstance(choice, dict):
        return True
    delta = mapping(choice, "delta")
    says = any(value not in (None, "", [], {}) for value in delta.values())
    return not (says or choice.get("finish_reason") or choice.get("text"))


def _without_usage_object(event: bytes) -> bytes:
    """`event` without its `"usage": {...}` member (and the comma that joined it)."""
    match = USAGE_MEMBER.search(event)
    if match is None:
        return event
    end = object_end(event, match.end() - 1)
    if end < 0:
        return event
    if not match.group().startswith(b","):
        trailing = TRAILING_COMMA.match(event, end)
        end = trailing.end() if trailing else end
    return event[: match.start()] + event[end:]
