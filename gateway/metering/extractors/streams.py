"""Event streams: a `Dialect` knows a provider's events, `EventStream` does the rest, lazily.

Nearly every stream ends with its usage, and then the generated characters are not needed. So
`EventStream.feed` only keeps the chunks by reference (see `Kept`), and `finish` first asks the dialect
to `settle` the stream: find the few events that can carry its usage from the ends of the kept bytes
(the last event with a usage object; Anthropic's `message_start` and `message_delta`, the Responses
API's terminal event) and read just those, when that is sure to give the usage and model reading every
event would. Otherwise (no usage, a cut stream, an unusual order of events) the full reading,
`IncrementalStream`, goes over the kept chunks as they came and reports what it always has. A stream
longer than `RETAIN`, or one that shows no sign of usage in its first chunks, is read that way as it
passes from then on: what is kept stays bounded, and a stream whose characters will be needed costs
what it did.

`IncrementalStream` is an `EventTally` (see `tally`): runs of content events cost a few `bytes`
operations per chunk, whatever the chunking; every other event is handed to the dialect's `note`, which
parses it only if it may carry usage. At `finish`, dialects whose content events may carry usage
(OpenAI-style chunks of compatible servers, every Gemini chunk) read the last content event, kept by
reference.

A stream that reports its usage reports no generated characters (0), as whole bodies do.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from functools import partial
from typing import Any, ClassVar, Protocol

from gateway.metering.extractors.base import NOTHING, Reading, Settled
from gateway.metering.extractors.sse import (
    MAX_HELD,
    PROBE,
    PROBE_CHUNKS,
    RETAIN,
    USAGE_OBJECT,
    blank_line,
    boundary_end,
    events_after,
    last_boundary,
    last_usage_object,
    payload_of,
    text_head,
    text_size_after,
)
from gateway.metering.extractors.tally import NO_HEAD, EventTally
from gateway.metering.usage import Extraction, TokenUsage

NOTHING_SAID: tuple[object, ...] = (None, "", [], {})  # the values of a delta member that say nothing


class Dialect(Protocol):
    """One provider's event vocabulary."""

    @property
    def wants_last(self) -> bool:
        """Whether `finish` should read the last content event (content events may carry usage)."""
        ...

    def head(self, event: bytes) -> bytes | None:
        """The head of a content event (the bytes before its text, or its `event:` line), else None."""
        ...

    def text_size(self, event: bytes, head: bytes) -> int:
        """The bytes of a content event's text (JSON-escaped, as it is in the event)."""
        ...

    def note(self, event: bytes) -> None:
        """An event that is no content event: parse it and record its usage if it may carry some."""
        ...

    def read_last(self, event: bytes) -> Reading:
        """Parse the last content event, at finish, and record its usage."""
        ...

    def result(self) -> tuple[TokenUsage | None, str | None]: ...

    def reported_so_far(self) -> TokenUsage | None:
        """The usage the stream reported before it was cut, when `result` has none (see
        `Extraction.partial`); read once, at finish."""
        ...

    @property
    def pending(self) -> str | None:
        """The id of a background response (Responses API) whose stream began and did not end: it is
        billed when it ends, after the stream (see `metering.background`); else None."""
        ...

    def settle(self, data: bytes) -> Settled | None:
        """The usage and model of a whole stream read from the few events that carry them, if that is
        sure to be what reading every event gives; else None. Pure: the dialect is left as it was."""
        ...


class IncrementalStream(EventTally):
    """Reads every event of a stream in `dialect` as it passes, counting generated characters."""

    __slots__ = ("_dialect", "_stopped")

    def __init__(self, dialect: Dialect) -> None:
        super().__init__()
        self._dialect = dialect
        self._stopped = False

    def feed(self, chunk: bytes) -> bytes:
        if chunk.startswith(self._head) and chunk.endswith(self._end) and not self._held:
            size = len(chunk)
            if chunk.find(b"\n", self._after) == size - self._end_len:  # one event of the current kind
                self.estimated += size - self._envelope
                self.last = chunk
                return chunk
            heads = chunk.count(self._head)
            if chunk.count(b"\n") == self._lines * heads:  # a run of them, nothing else
                self.estimated += size - heads * self._envelope
                self.last = chunk
                return chunk
        if not self._stopped:
            self._slow(chunk)
        return chunk

    def _slow(self, chunk: bytes) -> None:
        """Complete the held event, count the whole events, hold the incomplete one at the end."""
        held = self._held
        try:
            if not held and boundary_end(chunk, 0) == len(chunk):  # one whole event of another kind
                self.event(chunk)
                return
            start = 0
            if held:
                end = held.end_in(chunk)
                if end < 0:
                    held.keep(chunk)
                    if len(held) > MAX_HELD:  # an "event" this long is not SSE: stop looking
                        self._stop()
                    return
                self.event(held.complete(chunk, end))
                start = end
            end = max(last_boundary(chunk, start, self._end), start)
            if end < len(chunk):
                held.keep(chunk, end)
            if end > start:
                self.events(chunk, start, end)
            if len(held) > MAX_HELD:
                self._stop()
        except Exception:  # never let a malformed stream reach the relay
            self._stop()

    def _stop(self) -> None:
        self._stopped, self._head = True, NO_HEAD
        self._held.clear()

    def _head_of(self, event: bytes) -> bytes | None:
        return self._dialect.head(event)

    def _text_size(self, event: bytes, head: bytes) -> int:
        return self._dialect.text_size(event, head)

    def _other(self, event: bytes) -> None:
        self._dialect.note(event)

    def finish(self) -> Extraction:
        chars = self.estimated
        try:
            last = self.last_content() if self._dialect.wants_last else None
            if last is not None:
                event, counted = last
                reading = self._dialect.read_last(event)
                if reading.usage is None or not reading.final:  # its exact text replaces its estimate
                    chars += reading.chars - counted
            usage, model = self._dialect.result()
            if usage is not None:
                return Extraction(usage, model, max(chars, 0))
            so_far = self._dialect.reported_so_far()
        except Exception:
            return Extraction(None, None, max(chars, 0))
        return Extraction(None, model, max(chars, 0), self._dialect.pending, so_far)


class Kept:
    """Keeping the chunks of a stream by reference, to read them at its end; within bounds.

    A stream that outgrows `retain` bytes, or says nothing of usage (no `usage`) in its first
    `PROBE_CHUNKS` chunks (within its first `probe` bytes), is read as it passes from then on, what was
    kept first: memory stays bounded, and a stream that will most likely need its characters counted
    costs about what it always did. (Streams that report usage say so in their first events: OpenAI's
    `"usage": null` members, Azure's from its second event on, Anthropic's `message_start`, Gemini's
    `usageMetadata` on every chunk, the Responses API's `response.created`.)

    A subclass declares the slots and sets them (`[]`, its `append`, 0, False): its `feed` keeps a chunk
    with `_append` and takes its size from `_room`; whenever that is spent (each of the first chunks,
    then past `retain`) its `_spent` asks `_after_spent` what to do.
    """

    __slots__ = ()
    retain: ClassVar[int] = RETAIN
    probe: ClassVar[int] = PROBE
    _chunks: list[bytes]
    _append: Callable[[bytes], object]  # keeps a chunk, or hands it on
    _room: float  # bytes that may still be kept (minus those kept while probing), infinite once read
    _probed: bool  # a `usage` showed

    def _after_spent(self) -> tuple[float, bool] | None:
        """The room and `_probed` from now on, or None: read the stream as it passes."""
        if self._probed:
            return None  # past `retain`
        kept, chunks = -self._room, self._chunks
        last = chunks[-1]
        if last.find(b"usage", 0, max(self.probe - int(kept) + len(last), 0)) >= 0:
            return (self.retain - kept, True) if kept <= self.retain else None
        if len(chunks) >= PROBE_CHUNKS or kept >= self.probe:
            return None
        return self._room, False  # the next chunk is probed too


class EventStream(IncrementalStream, Kept):
    """A usage extractor for one event stream in `dialect`: chunks kept, read at `finish`.

    Once the keeping ends, or at `finish` when the ends did not settle the stream, it becomes what it
    extends, an `IncrementalStream` (`_outgrow` switches its class to `PassingStream`): every later
    chunk costs what it always did. Its `IncrementalStream` state is set up only then.
    """

    __slots__ = ("_append", "_chunks", "_probed", "_room")

    def __init__(self, dialect: Dialect) -> None:  # no IncrementalStream.__init__ (see above)
        self._dialect = dialect
        self._chunks: list[bytes] = []
        self._append: Callable[[bytes], object] = self._chunks.append
        self._room: float = 0
        self._probed = False

    def feed(self, chunk: bytes) -> bytes:
        self._append(chunk)
        self._room -= len(chunk)
        if self._room < 0:
            self._spent()
        return chunk

    def _spent(self) -> None:
        after = self._after_spent()
        if after is None:
            self._outgrow()
        else:
            self._room, self._probed = after

    def _outgrow(self) -> None:
        """Become an `IncrementalStream`: read what was kept, and every later chunk, as it passes."""
        chunks, self._chunks, self._room = self._chunks, [], math.inf
        IncrementalStream.__init__(self, self._dialect)
        self.__class__ = PassingStream
        # for a caller that kept the bound `feed` of before: it still reaches the reading
        self._append = partial(IncrementalStream.feed, self)
        for chunk in chunks:
            IncrementalStream.feed(self, chunk)

    def finish(self) -> Extraction:
        chunks = self._chunks
        try:
            settled = self._dialect.settle(chunks[0] if len(chunks) == 1 else b"".join(chunks))
        except Exception:
            settled = None
        if settled is not None:
            return Extraction(*settled)
        self._outgrow()
        return self.finish()


class PassingStream(EventStream):
    """An `EventStream` read as it passes: an `IncrementalStream` whose usage, if reported, comes with
    no characters."""

    __slots__ = ()
    feed = IncrementalStream.feed

    def finish(self) -> Extraction:
        extraction = IncrementalStream.finish(self)
        return extraction if extraction.usage is None else extraction._replace(output_chars=0)


def _unfinished_choices(payload: object) -> bool:
    """An OpenAI-style chunk with choices none of which has a `finish_reason`, and one at least that says
    something (text, a tool call, its role): a chunk mid-stream. A chunk whose choices say nothing is a
    usage chunk, as `"choices": []` is (LiteLLM's, after the finish: `[{"index": 0, "delta": {}}]`)."""
    choices = payload.get("choices") if type(payload) is dict else None
    if type(choices) is not list or not choices:
        return False
    says = False
    for choice in choices:
        if type(choice) is dict and choice.get("finish_reason"):
            return False
        says = says or not says_nothing(choice)
    return says


def says_nothing(choice: object) -> bool:
    """A choice that says nothing: no content, no role, no finish reason (as in a usage-only chunk)."""
    if type(choice) is not dict:
        return True
    if choice.get("finish_reason") or choice.get("text"):
        return False
    delta = choice.get("delta")
    if type(delta) is dict:
        for value in delta.values():
            if value not in NOTHING_SAID:
                return False
    return True


class DataDialect:
    """Data-only events (OpenAI-style chunks, Gemini `alt=sse`), each read alike by `read_payload`.

    Usage may ride on any event, content events included (a compatible server's last chunk, every
    Gemini chunk): other events are parsed as they pass if they hold a usage object, the last content
    event at finish. A final usage read as it passed (a usage-only chunk, one whose choices say nothing,
    or a last chunk with a `finish_reason` and no text) is preferred to the latter; the running total of
    an OpenAI-style chunk none of whose choices has finished and one of which says something (vLLM's
    `continuous_usage_stats` puts one on every chunk, the first role-only chunk included) is not a final
    usage, and is left for the last chunk to say.
    """

    __slots__ = ("_key", "_late", "_model", "_passed", "_read_payload")
    pending: str | None = None  # no background responses here

    def __init__(self, read_payload: Callable[[Any], Reading], text_key: re.Pattern[bytes]) -> None:
        self._read_payload = read_payload
        self._key = text_key
        self._passed: Reading | None = None  # the last usage read as it passed
        self._late: Reading | None = None  # the usage of the last content event, read at finish
        self._model: str | None = None

    @property
    def wants_last(self) -> bool:
        return self._passed is None or not self._passed.final  # no usage-only chunk settled it

    def head(self, event: bytes) -> bytes | None:
        return None if event.startswith(b"data: [DONE]") else text_head(event, self._key)

    def text_size(self, event: bytes, head: bytes) -> int:
        return text_size_after(event, len(head))

    def note(self, event: bytes) -> None:
        if event.find(b"usage") < 0 or not USAGE_OBJECT.search(event):  # `find`: see `meter.PrepareMetering`
            return  # nothing to learn here: not worth parsing
        payload = payload_of(event)
        reading = NOTHING if payload is None else self._read_payload(payload)
        self._model = self._model or reading.model
        if reading.usage is not None and not _unfinished_choices(payload):
            self._passed = reading

    def read_last(self, event: bytes) -> Reading:
        reading = self._read(event)
        if reading.usage is not None:
            self._late = reading
        return reading

    def _read(self, event: bytes) -> Reading:
        payload = payload_of(event)
        reading = NOTHING if payload is None else self._read_payload(payload)
        self._model = self._model or reading.model
        return reading

    def result(self) -> tuple[TokenUsage | None, str | None]:
        chosen = self._passed if self._passed is not None and self._passed.final else self._late
        if chosen is None:
            return None, self._model
        return (chosen.usage if chosen.final else None), chosen.model or self._model

    def reported_so_far(self) -> TokenUsage | None:
        """The running total of the last content event (Gemini's chunks carry one), else of one read as
        it passed."""
        for reading in (self._late, self._passed):
            if reading is not None and reading.usage is not None:
                return reading.usage
        return None

    def settle(self, data: bytes) -> Settled | None:
        """The usage of the last event with a usage object, when reading every event gives it too.

        That event is either no content event (a usage-only chunk: read as it passed, nothing after it
        is read; its model is needed, else the first model read before it would be), or the last content
        event with nothing before it read as it passed: every event before it of its kind, or none with
        a usage object. Its usage must be final (Gemini: the last chunk).
        """
        blank = blank_line(data)
        span = last_usage_object(data, blank)
        if span is None:
            return None
        start, end = span
        event = data[start:end]
        head = self.head(event)
        if head is not None and not _last_content(self, data, blank, span, head):
            return None
        payload = payload_of(event)
        reading = NOTHING if payload is None else self._read_payload(payload)
        if reading.usage is None or not reading.final or (head is None and reading.model is None):
            return None
        return reading.usage, reading.model


def _last_content(
    dialect: Dialect, data: bytes, blank: bytes | None, span: tuple[int, int], head: bytes
) -> bool:
    """Whether the content event `data[start:end]` with `head` is the last content event, and no event
    before it is one that `note` would read usage from.

    Before it: as many heads as its kind has line feeds per event among the line feeds, so every event
    there is of its kind (see `tally`), or no usage object at all. After it: no content event among the
    next few events (only whole events count: the trailing incomplete one is never read).
    """
    start, end = span
    lines = head.count(b"\n") + 2
    if data.count(b"\n", 0, start) != lines * data.count(head, 0, start) and USAGE_OBJECT.search(
        data, 0, start
    ):
        return False
    after = events_after(data, blank, end)
    return after is not None and all(dialect.head(event) is None for event in after)
