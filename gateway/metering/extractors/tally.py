"""Generated characters of an event stream, and the events worth a closer look, found chunk by chunk.

Only needed where a stream does not end with its usage (see `streams`: the chunks kept are then read
here as they came), and for streams too long to keep, read as they pass. Either way `feed` runs for
every chunk, and under load a chunk holds several events (TCP and the HTTP client coalesce them) or
ends in the middle of one. The events that matter, those that may carry usage, are few: the first ones
and the last ones of a stream. The rest are content events of one kind after another, and a run of
them is recognised without looking at any one of them:

* A content event's kind is its *head*: the bytes before its text (OpenAI-style and Gemini chunks,
  Anthropic deltas: id, model, index and delta type included), or its `event:` line where a growing
  sequence number precedes the text (OpenAI Responses). A head holds quotes, so it cannot occur inside
  a JSON string: it occurs once in an event of its kind, at its start, and never in another event.
* Every event ends with two line feeds, one of a kind has exactly `lines` (see `sse`). So a range of
  whole events holding `h` heads and `lines * h` line feeds is `h` events of that kind and nothing
  else: two `count`s over the chunk, whatever its size, and no per-event work. A chunk of one event
  is recognised with `startswith`, `find` and `endswith`.
* Every other event, and the event a chunk boundary cut (completed from `Held`), is looked at alone, in
  stream order: events of a new kind, and the events a dialect reads (`_other`). Those at the edges of
  a range are peeled off first, so the run between them still goes in one step.

Generated characters (`output_chars`, the estimate's input when usage is missing): the first
`ENVELOPE_SAMPLES` events of a kind are measured exactly (the JSON string of the text found after the
head, its bytes counted), each giving an envelope sample, the event's length minus its text bytes; the
lower median is the envelope of that kind. Every later event of the kind counts its length minus the
envelope, a run `len(run) - h * envelope`. Events of no kind count nothing. The same bytes give the same
count however they are cut into chunks.

Exact where an envelope keeps its size; it drifts by a byte per event where the envelope holds a growing
number (running token totals, sequence numbers). OpenAI pads delta events with a random `obfuscation`
member that keeps text plus padding near a constant size: there each event counts about the median text
of the sampled ones. Events that carry log probabilities after their text, or whose envelopes differ
widely, have no envelope to learn (see `Envelopes`): each is measured exactly, on the slow path. Text
counts its bytes as they are in the event: escapes and non-ASCII characters
count more than one. Good enough for an estimate at 4 characters per token.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from gateway.metering.extractors.sse import CRLF_END, LF_END, Envelopes, Held, boundary_end, event_start

NO_HEAD = b"\x00no kind yet"  # no event starts with it: the fast path is shut until a kind is learned
NO_END = b"\x00"


class EventTally(ABC):
    """Counts generated characters and remembers the last content event; subclasses say what a kind is.

    The attributes the fast path reads (`_head`, `_after`, `_end`, `_end_len`, `_lines`, `_envelope`)
    describe the current kind: the last one learned or seen.
    """

    __slots__ = (
        "_after",
        "_end",
        "_end_len",
        "_envelope",
        "_envelopes",
        "_exact",
        "_exact_counted",
        "_head",
        "_held",
        "_lines",
        "estimated",
        "last",
    )

    def __init__(self) -> None:
        self._held = Held()
        self._envelopes = Envelopes()
        self._head, self._end, self._end_len = NO_HEAD, NO_END, 1
        self._after = self._lines = self._envelope = 0
        self.estimated = 0  # generated characters
        self.last = b""  # bytes whose last event is the last content event
        self._exact, self._exact_counted = b"", 0  # the last content event measured exactly, its count

    # -- what a subclass says about its events

    @abstractmethod
    def _head_of(self, event: bytes) -> bytes | None:
        """The head of a content event of a kind not seen before (a pattern search), else None."""

    @abstractmethod
    def _text_size(self, event: bytes, head: bytes) -> int:
        """The bytes of a content event's text (JSON-escaped, as it is in the event)."""

    def _other(self, event: bytes) -> None:  # noqa: B027 (a hook: by default such events are skipped)
        """An event that is no content event: read it if it may carry usage (here: skip it)."""

    # -- events

    def event(self, event: bytes) -> None:
        """Count one whole event, or hand it to `_other`."""
        if event.startswith(self._head):
            self.estimated += len(event) - self._envelope
            self.last = event
            return
        head = self._envelopes.head_of(event) or self._head_of(event)
        if head is None:
            self._other(event)
            return
        envelope = self._envelopes.known.get(head)
        if envelope is None:
            counted = self._text_size(event, head)
            envelope = self._envelopes.sample(head, event, counted)
            self._exact, self._exact_counted = event, counted
        else:
            counted = len(event) - envelope
        self.estimated += counted
        self.last = event
        if envelope is not None:  # runs of this kind go fast from here on
            self._head, self._after, self._envelope = head, len(head), envelope
            self._lines = head.count(b"\n") + 2
            self._end = CRLF_END if event.endswith(CRLF_END) else LF_END
            self._end_len = len(self._end)

    def events(self, chunk: bytes, start: int, end: int) -> None:
        """Count the whole events in `chunk[start:end]`, in order: runs of the current kind in one step."""
        while start < end and not chunk.startswith(self._head, start):  # other events in front
            start = self._one(chunk, start, end)
        if start >= end:
            return
        head = self._head
        lines = chunk.count(b"\n", start, end)
        heads = chunk.count(head, start, end)
        behind: list[bytes] = []  # other events at the back, counted after the run
        while lines != self._lines * heads:
            at = self._last_start(chunk, start, end)
            if at <= start or chunk.startswith(head, at):
                break
            event = chunk[at:end]
            behind.append(event)
            lines, heads, end = lines - event.count(b"\n"), heads - event.count(head), at
        while start < end:
            if heads and lines == self._lines * heads:
                self._run(chunk, start, end, heads)
                break
            following = self._next(chunk, start, end)
            event = chunk[start:following]
            lines, heads = lines - event.count(b"\n"), heads - event.count(head)
            self.event(event)
            if self._head is not head:
                head = self._head
                heads = chunk.count(head, following, end)
            start = following
        for event in reversed(behind):
            self.event(event)

    def _one(self, chunk: bytes, start: int, end: int) -> int:
        following = self._next(chunk, start, end)
        self.event(chunk[start:following])
        return following

    def _run(self, chunk: bytes, start: int, end: int, heads: int) -> None:
        self.estimated += end - start - heads * self._envelope
        self.last = chunk[self._last_start(chunk, start, end) : end]

    def _next(self, chunk: bytes, start: int, end: int) -> int:
        """The end of the event that starts at `start` (the range's end if no blank line ends it first)."""
        following = boundary_end(chunk, start)
        return following if 0 < following <= end else end

    def _last_start(self, chunk: bytes, start: int, end: int) -> int:
        """The start of the last event in `chunk[start:end]`, a range of whole events."""
        return event_start(chunk, start, end - 1, self._end)

    # -- at the end

    def last_content(self) -> tuple[bytes, int] | None:
        """The last content event and what was counted for it, if any passed."""
        last = self.last
        if not last:
            return None
        if last is self._exact:
            return last, self._exact_counted
        event = last[self._last_start(last, 0, len(last)) :]
        head = self._envelopes.head_of(event)
        envelope = self._envelopes.known.get(head) if head is not None else None
        return event, len(event) - (envelope if envelope is not None else self._envelope)
