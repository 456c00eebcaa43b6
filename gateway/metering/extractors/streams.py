"""Event streams read as they pass: a `Dialect` knows a provider's events, `EventStream` does the rest.

`EventStream` is an `EventTally` (see `tally`): runs of content events cost a few `bytes` operations per
chunk, whatever the chunking; every other event is handed to the dialect's `note`, which parses it only
if it may carry usage. At `finish`, dialects whose content events may carry usage (OpenAI-style chunks
of compatible servers, every Gemini chunk) read the last content event, kept by reference.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Protocol

from gateway.metering.extractors.base import NOTHING, Reading
from gateway.metering.extractors.sse import (
    MAX_HELD,
    boundary_end,
    last_boundary,
    payload_of,
    text_head,
    text_size_after,
)
from gateway.metering.extractors.tally import NO_HEAD, EventTally
from gateway.metering.usage import Extraction, TokenUsage

USAGE_OBJECT = re.compile(rb'"usage(?:Metadata)?"\s*:\s*\{')


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


class EventStream(EventTally):
    """A usage extractor for one event stream in `dialect`."""

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
        except Exception:
            return Extraction(None, None, max(chars, 0))
        return Extraction(usage, model, max(chars, 0))


class DataDialect:
    """Data-only events (OpenAI-style chunks, Gemini `alt=sse`), each read alike by `read_payload`.

    Usage may ride on any event, content events included (a compatible server's last chunk, every
    Gemini chunk): other events are parsed as they pass if they hold a usage object, the last content
    event at finish. A final usage read as it passed (a usage-only chunk) is preferred to the latter.
    """

    __slots__ = ("_key", "_late", "_model", "_passed", "_read_payload")

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
        if b"usage" not in event or not USAGE_OBJECT.search(event):
            return  # nothing to learn here: not worth parsing
        reading = self._read(event)
        if reading.usage is not None:
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
