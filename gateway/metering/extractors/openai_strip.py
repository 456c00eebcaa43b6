"""OpenAI-style chat / completions streams to which the gateway itself added `stream_options.include_usage`.

The provider then sends a usage-only chunk (`"choices": []`) before `data: [DONE]`, and a `"usage": null`
member in every other chunk. The caller did not ask for either: `StripStream` reads the usage and relays
the stream byte for byte as it would have been without include_usage. The usage-only event goes, and so
does each `"usage":null` member with its comma, wherever it sits in the object and however it is spaced.
(A provider that puts the usage object on a chunk that also carries content loses just that member.)

The stripping is done as chunks pass, at a few C-level `bytes` operations per chunk:

* A chunk of one whole event (LF-framed: a provider's flush) loses its `"usage":null` member by
  `rpartition` and a concatenation; one without the member is looked at alone (`data: [DONE]`, the
  usage-only event).
* Other chunks relay their whole events with every member spelled as the stream spells it removed in
  one `split` and `join` (a quoted key cannot occur unescaped inside a JSON string, so each occurrence
  is a member), then a search for a `"usage"` key left: only an event that still holds one (a usage
  object, a member spelled otherwise: the first one teaches the stream's spelling) is handled alone,
  cut out between the blank lines around it, LF or CRLF (a stream keeps to one, but its keep-alive
  comments need not: sse-starlette framed its pings with CRLF in streams framed with LF).
  The search looks before the first member removed and after the last, not in between: include_usage
  puts the member on every event but the usage-only one, which comes last, so an event between two
  members has one of its own. A chunk without a member is searched whole. The first member removed
  is also the sign of usage that `Kept` would otherwise search for.
* An incomplete event at the end of a chunk is held back until its end arrives, since it may be the
  usage-only event or still hold (part of) a `"usage":null` member; once its member has passed, or it
  is `data: [DONE]`, or it grows past `MAX_HELD` bytes, it goes out as it comes (a held event past
  `MAX_HELD` unchanged and uncounted). An incomplete event still held at `finish` (a cut stream) is
  never relayed.

The usage is read from the usage event on its way (it has to be found to be dropped), or from inside
the choice of a chunk that reports it there unasked (Moonshot's last chunk, relayed as it came); the generated
characters are counted only if no usage came: the chunks are kept by reference and `StripCount` counts
them at `finish`, as they came. A stream that outgrows the keeping (see `streams.Kept`: too long, or no
sign of usage in its first chunks) hands them, and every later chunk, to `StripCount` as it passes. A
stream that reports its usage reports no characters (0).

The model is the usage event's; a stream without one (cut) reads it from its last content event.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from gateway.metering.extractors.base import NOTHING, Reading, Settled, items, model_of, object_end
from gateway.metering.extractors.openai import CHAT_TEXT_KEY, chat_usage, choice_usage
from gateway.metering.extractors.sse import (
    CRLF_END,
    LF,
    LF_END,
    Held,
    boundary_end,
    last_boundary,
    last_end,
    payload_of,
    string_end,
    text_head,
    text_size_after,
)
from gateway.metering.extractors.streams import IncrementalStream, Kept, says_nothing
from gateway.metering.usage import Extraction, TokenUsage, in_service_tier, new_extraction

MAX_HELD = 64 * 1024
COMPACT_NULL = b',"usage":null'  # OpenAI's spelling of the member, until a stream shows its own
COMPACT_USAGE = b'"usage":{'
NULL_MEMBER = re.compile(rb',\s*"usage"\s*:\s*null|"usage"\s*:\s*null\s*,\s*|"usage"\s*:\s*null')
USAGE_OBJECT = re.compile(rb'"usage"\s*:\s*\{')
USAGE_MEMBER = re.compile(rb',\s*"usage"\s*:\s*\{|"usage"\s*:\s*\{')
TRAILING_COMMA = re.compile(rb"\s*,\s*")
STRUCTURE = re.compile(rb'["{}\[\]]')


class StripStream(Kept):
    """Reads usage from an include_usage stream the caller did not ask for, and strips it on the way."""

    __slots__ = (
        "_append",
        "_chunks",
        "_counter",
        "_end",
        "_held",
        "_model",
        "_null",
        "_probed",
        "_released",
        "_room",
        "_usage",
    )

    def __init__(self) -> None:
        self._chunks: list[bytes] = []  # what passed, as it came (see `Kept`)
        self._append: Callable[[bytes], object] = self._chunks.append
        self._room: float = 0
        self._probed = False
        self._counter: StripCount | None = None  # counts as the stream passes, once it does
        self._held = Held()  # the incomplete event at the end of what has passed
        self._end = LF_END  # the stream's blank line, as last seen
        self._null = COMPACT_NULL  # replaced by the spelling the stream uses
        self._released = 0  # how many bytes of the held event have gone out already
        self._usage: TokenUsage | None = None
        self._model: str | None = None

    def feed(self, chunk: bytes) -> bytes:
        size = len(chunk)
        if chunk.find(b"\n") == size - 2 and chunk[-1] == LF and not self._held:  # one whole event
            before, null, after = chunk.rpartition(self._null)
            if null:
                out = before + after
                if not self._probed:
                    self._showed_usage()
            else:
                out = self._relay(chunk)
        elif chunk.endswith(self._end) and not self._held:  # whole events
            out = self._relay_events(chunk)
        else:
            out = self._slow(chunk)
        self._append(chunk)
        self._room -= size
        if self._room < 0:
            self._spent()
        return out

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
        end = max(last_end(chunk, start, len(chunk), self._end), start)
        if end > start:
            self._end = CRLF_END if chunk[max(end - 3, 0) : end] == CRLF_END else LF_END
            out.append(self._relay_events(chunk if start == 0 and end == len(chunk) else chunk[start:end]))
        if end < len(chunk):
            held.keep(chunk, end)
            out.append(self._release())
        return b"".join(out)

    def _held_event(self, event: bytes) -> bytes:
        """What to relay of the event that was held: the rest of it, if part went out already."""
        released, self._released = self._released, 0
        if released:
            return event[released:]
        before, null, after = event.rpartition(self._null)
        return before + after if null else self._relay(event)

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
        if len(held) > MAX_HELD:  # too long to keep: only what finds its end (see `StripCount._trim`)
            del held[:-2]
        self._released = len(held)
        return piece

    def _relay_events(self, events: bytes) -> bytes:
        """What to relay of whole events: their members spelled as learned go in one step."""
        parts = events.split(self._null)  # `split` and `join`: as `replace`, in one search rather than two
        if len(parts) == 1:
            at = events.find(b'"usage"')
        else:
            if not self._probed:
                self._showed_usage()
            events = b"".join(parts)
            at = parts[0].find(b'"usage"')  # another key only before the first member or after the last
            if at < 0:
                tail = parts[-1]
                at = tail.find(b'"usage"')
                at = at + len(events) - len(tail) if at >= 0 else at
        return events if at < 0 else self._relay_keyed_events(events, at)

    def _relay_keyed_events(self, events: bytes, at: int) -> bytes:
        """What to relay of whole events that still hold a `"usage"` key, the first at `at`: each event
        that holds one goes alone."""
        out: list[bytes] = []
        start, null, end = 0, self._null, self._end
        while at >= 0:  # the event around `at` lies between blank lines, the stream's own looked for first
            first = max(last_end(events, start, at, end), start)
            following = boundary_end(events, at)
            following = following if following >= 0 else len(events)
            out.append(events[start:first])
            out.append(self._relay_keyed(events[first:following]))
            start = following
            if self._null != null:  # it taught the stream's spelling: the rest goes without it at once
                null = self._null
                events, start = b"".join(events[start:].split(null)), 0
            at = events.find(b'"usage"', start)
        out.append(events[start:])
        return b"".join(out)

    def _relay(self, event: bytes) -> bytes:
        """What to relay of one whole event; its usage noted on the way."""
        return event if event.find(b'"usage"') < 0 else self._relay_keyed(event)  # [DONE], comments: none

    def _relay_keyed(self, event: bytes) -> bytes:
        """What to relay of one whole event that holds a `"usage"` key; its usage noted on the way."""
        try:
            if event.find(COMPACT_USAGE) >= 0 or USAGE_OBJECT.search(event):
                payload = payload_of(event)
                if type(payload) is dict:
                    usage = payload.get("usage")
                    if type(usage) is dict:
                        return self._usage_event(event, payload, usage)
                    self._note_choice_usage(payload)
            return self._without_null(event)
        except Exception:  # relay what cannot be understood unchanged
            return event

    def _usage_event(self, event: bytes, payload: dict[str, Any], usage: dict[str, Any]) -> bytes:
        self._usage = in_service_tier(chat_usage(usage), payload.get("service_tier")) or self._usage
        self._model = model_of(payload) or self._model
        choices = items(payload, "choices")
        if not choices or all(map(says_nothing, choices)):  # a usage-only event
            return b""
        return _without_usage_object(event)

    def _note_choice_usage(self, payload: dict[str, Any]) -> None:
        """Note the usage a chunk reports inside its choice (Moonshot's, sent whatever the request asked:
        the caller's, so it stays in the event)."""
        usage = choice_usage(payload)
        if usage is not None:
            self._usage = in_service_tier(usage, payload.get("service_tier"))
            self._model = model_of(payload) or self._model

    def _without_null(self, event: bytes) -> bytes:
        key = event.find(b'"usage"')
        match = NULL_MEMBER.search(event, max(key - 16, 0)) if key >= 0 else None
        if match is None:
            return event
        if match.group().startswith(b","):
            self._null = match.group()
        return event[: match.start()] + event[match.end() :]

    def finish(self) -> Extraction:
        usage, model = self._usage, self._model
        if usage is not None and model is not None:
            return new_extraction((usage, model, 0, None, None))
        counter = self._count()
        if model is None:
            model = counter.model()
        return Extraction(usage, model, 0 if usage is not None else max(counter.estimated, 0))

    def _showed_usage(self) -> None:
        """A `"usage":null` member passed: the stream reports its usage, so it is kept (see `Kept`) up to
        `retain` bytes, with no search for a sign of it."""
        self._probed = True
        self._room += self.retain

    def _spent(self) -> None:
        after = self._after_spent()
        if after is None:
            self._count()
        else:
            self._room, self._probed = after

    def _count(self) -> StripCount:
        """What counts the stream's characters as it passes, given what was kept first."""
        counter = self._counter
        if counter is None:
            self._counter = counter = StripCount()
            for chunk in self._chunks:
                counter.feed(chunk)
            self._chunks, self._append, self._room = [], counter.feed, math.inf
        return counter


class ChatText:
    """The `Dialect` of `StripCount`: chat chunks' text counted, nothing read (the relay reads usage)."""

    __slots__ = ()
    wants_last = False
    pending: str | None = None

    def head(self, event: bytes) -> bytes | None:
        return None if event.startswith(b"data: [DONE]") else text_head(event, CHAT_TEXT_KEY)

    def text_size(self, event: bytes, head: bytes) -> int:
        return text_size_after(event, len(head))

    def note(self, event: bytes) -> None:
        """Nothing to read here: the strip reads the usage event as it relays it."""

    def read_last(self, event: bytes) -> Reading:
        return NOTHING

    def result(self) -> tuple[TokenUsage | None, str | None]:
        return None, None

    def reported_so_far(self) -> TokenUsage | None:
        return None

    def settle(self, data: bytes) -> Settled | None:
        return None


CHAT_TEXT = ChatText()


class StripCount(IncrementalStream):
    """Counts the generated characters of a stream `StripStream` relays, as they pass.

    It holds back what `StripStream` holds back, and like it never stops: an event held past `MAX_HELD`
    (relayed unchanged) is left out of the count, and counting goes on after it.
    """

    __slots__ = ("_cut",)

    def __init__(self) -> None:
        super().__init__(CHAT_TEXT)
        self._cut = False  # the held bytes are only the end of an event too long to count

    def _slow(self, chunk: bytes) -> None:
        held, start = self._held, 0
        if held:
            end = held.end_in(chunk)
            if end < 0:
                held.keep(chunk)
                self._trim()
                return
            event, cut = held.complete(chunk, end), self._cut
            self._cut = False
            if not cut:
                self._count(event, 0, len(event))
            start = end
        end = max(last_boundary(chunk, start, self._end), start)
        if end > start:
            self._count(chunk, start, end)
        if end < len(chunk):
            held.keep(chunk, end)
            self._trim()

    def _trim(self) -> None:
        if len(self._held) > MAX_HELD:  # too long to count: keep only what finds its end
            del self._held[:-2]
            self._cut = True

    def _count(self, chunk: bytes, start: int, end: int) -> None:
        with suppress(Exception):  # the estimate misses what it could not read
            self.events(chunk, start, end)

    def model(self) -> str | None:
        """The model of the last content event, if any passed."""
        try:
            last = self.last_content()
            return model_of(payload_of(last[0])) if last else None
        except Exception:
            return None


def _without_usage_object(event: bytes) -> bytes:
    """`event` without its top-level `"usage": {...}` member (and the comma that joined it); a usage object
    nested deeper (Groq's `x_groq.usage`, sent whatever the request asked) is the caller's, and stays."""
    match = _top_level(USAGE_MEMBER, event)
    if match is None:
        return event
    end = object_end(event, match.end() - 1)
    if end < 0:
        return event
    if not match.group().startswith(b","):
        trailing = TRAILING_COMMA.match(event, end)
        end = trailing.end() if trailing else end
    return event[: match.start()] + event[end:]


def _top_level(member: re.Pattern[bytes], event: bytes) -> re.Match[bytes] | None:
    """The first match of `member` that is a member of the event's payload object itself."""
    start = event.find(b"{")
    for match in member.finditer(event, max(start, 0)):
        if _depth_at(event, start, match.start()) == 1:
            return match
    return None


def _depth_at(data: bytes, start: int, position: int) -> int:
    """How deep in objects and arrays `position` is, counting from `start`; -1 inside a string."""
    depth, at = 0, start
    while True:
        found = STRUCTURE.search(data, at, position)
        if found is None:
            return depth
        mark = found.group()
        if mark == b'"':
            end = string_end(data, found.end())
            if end < 0 or end >= position:
                return -1
            at = end + 1
        else:
            depth += 1 if mark in b"{[" else -1
            at = found.end()
