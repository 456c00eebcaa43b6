"""Whole JSON response bodies: chunks kept by reference while they pass, read once at `finish`.

OpenAI's chat, completions and embeddings bodies and Anthropic's messages end with their `usage`
object, or with it and a few members more (OpenAI's `..., "usage": {...}, "service_tier": "default",
"system_fingerprint": "fp_..."}`): for those, given the endpoint's `usage_of`, only that object is
parsed, with the `"model": "..."` found by a search, and a `"service_tier"` after the usage object
(where OpenAI puts it) or in the `TIER_BEFORE` bytes before its key (where Azure OpenAI, which writes its
members in alphabetical order, and the SDK's own models put it: `"service_tier"`, `"system_fingerprint"`,
`"usage"`; a tier named further before is not looked for), and the rest of the body (choices, messages,
logprobs) never becomes Python objects. A body that does not end so is parsed whole, as
every other body is. (A quoted `"usage"` key followed by an object cannot occur inside a JSON string,
where quotes are escaped. The member is the body's own when its object parses as one JSON value that
ends at the last `}` before the body's closing one: an object nested in the body that held the member
would close with a `}` in between. A `}` inside a string there only sends the body to the whole parse.)

Embedding responses can be megabytes of numbers with the usage at the very end (or, for some
compatible servers, at the start): for those only the last and first `EDGE` bytes are searched for a
`"usage": {...}` (or `"usageMetadata"`) member and a `"model": "..."` (beside the usage, else the first
of the body: vLLM and LiteLLM open their bodies with it), and only that object is parsed.
The body is never joined. Everything else is one `orjson.loads` of the body and a reader that goes
straight to its `usage` (the generated text is counted only when there is none).

A body that is not JSON but looks like an event stream (a server that streams under a JSON content
type) is handed to the stream extractor for its endpoint. Anything else unreadable reports no usage.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import orjson

from gateway.metering.extractors.base import Reading, loads, object_end
from gateway.metering.usage import Extraction, TokenUsage, UsageExtractor, in_service_tier, new_extraction

EDGE = 4096
TIER_BEFORE = 256  # bytes before the closing usage searched for a `"service_tier"` (see the docstring)
USAGE_KEY = re.compile(rb'"(usage|usageMetadata)"\s*:\s*(?=\{)')
MODEL_VALUE = re.compile(rb'"model"\s*:\s*"([^"\\]*)"')
SERVICE_TIER = re.compile(rb'"service_tier"\s*:\s*"([^"\\]*)"')
DEFAULT_TIER = b'"service_tier":"default"'  # the standard tier, as OpenAI spells it: nothing to read
SSE_STARTS = (b"data:", b"event:", b":")
COMPACT_USAGE, COMPACT_MODEL = b'"usage":{', b'"model":"'  # as providers spell them: no spaces
BACKSLASH = ord("\\")


class JsonBody:
    """A whole JSON body read with `read` once it has passed."""

    __slots__ = ("_append", "_chunks", "_read", "_stream", "_tier_outside", "_usage_at_edges", "_usage_of")

    def __init__(
        self,
        read: Callable[[Any], Reading],
        usage_of: Callable[[object], TokenUsage | None] | None = None,
        usage_at_edges: bool = False,
        stream: Callable[[], UsageExtractor] | None = None,
        tier_outside: bool = True,
    ) -> None:
        """`tier_outside`: the processing tier may be a member beside the usage object (OpenAI's), not
        only inside it (Anthropic's, whose bodies hold tool inputs as objects: one may have such a key)."""
        self._read = read
        self._usage_of = usage_of
        self._usage_at_edges = usage_at_edges
        self._stream = stream
        self._tier_outside = tier_outside
        self._chunks: list[bytes] = []
        self._append = self._chunks.append

    def feed(self, chunk: bytes) -> bytes:
        self._append(chunk)
        return chunk

    def finish(self) -> Extraction:
        chunks = self._chunks
        try:
            if self._usage_at_edges and sum(map(len, chunks)) > 2 * EDGE:
                return edge_usage(_edge(chunks, first=True), _edge(chunks, first=False), self._read)
            body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            if self._usage_of is not None:
                closing = closing_usage(body, self._usage_of, self._tier_outside)
                if closing is not None:
                    return closing
            payload = loads(body)
            if payload is None:
                return self._as_stream(body)
            reading = self._read(payload)
            return Extraction(reading.usage, reading.model, reading.chars, reading.pending)
        except Exception:  # a body that defeats the reader reports no usage, it does not fail the call
            return Extraction(None)

    def _as_stream(self, body: bytes) -> Extraction:
        if self._stream is None or not body.lstrip().startswith(SSE_STARTS):
            return Extraction(None)
        extractor = self._stream()
        extractor.feed(body)
        return extractor.finish()


def closing_usage(
    body: bytes, usage_of: Callable[[object], TokenUsage | None], tier_outside: bool = True
) -> Extraction | None:
    """The usage `usage_of` reads in the `"usage": {...}` member of `body`'s top-level object when no `}`
    follows that member's but the body's own (see the module's docstring), with the body's model (and,
    if `tier_outside`, the tier beside the usage object); None when the body does not end so."""
    key = start = body.rfind(COMPACT_USAGE)  # the providers' own spelling first: one search
    if start >= 0:
        start += len(COMPACT_USAGE) - 1  # at its opening brace
    else:
        key = body.rfind(b'"usage"')
        match = USAGE_KEY.match(body, key) if key >= 0 else None
        if match is None:
            return None
        start = match.end()
    end = body.rfind(b"}")  # the body's closing brace; the usage object's own is the one before it
    close = body.rfind(b"}", start, end) + 1
    try:  # not JSON unless no `}` lies between the usage object and the body's end
        usage = usage_of(orjson.loads(body[start:close]))
    except orjson.JSONDecodeError:
        return None
    if usage is None:
        return None
    if tier_outside:
        usage = _with_tier_beside(body, usage, key, close)
    # The first `"model":"..."`, the top-level one in these bodies; inline, as this runs for every response.
    start = body.find(COMPACT_MODEL) + len(COMPACT_MODEL)
    end = body.find(b'"', start) if start >= len(COMPACT_MODEL) else -1
    name = body[start:end] if end >= 0 else None
    if name is not None and BACKSLASH not in name:  # an int: `bytes.__contains__`'s fast path
        return new_extraction((usage, name.decode("utf-8", "replace"), 0, None, None))
    return new_extraction((usage, _first_model(body), 0, None, None))


def _with_tier_beside(body: bytes, usage: TokenUsage, key: int, close: int) -> TokenUsage:
    """`usage` in the tier a `"service_tier"` member beside it names: after the usage object (OpenAI's
    place), or just before its `key` (alphabetical order: Azure OpenAI's)."""
    at = body.find(b'"service_tier"', close)
    if at < 0:
        at = body.find(b'"service_tier"', key - TIER_BEFORE if key > TIER_BEFORE else 0, key)
    if at >= 0 and not body.startswith(DEFAULT_TIER, at):
        return in_service_tier(usage, _tier_at(body, at))
    return usage


def _tier_at(body: bytes, at: int) -> str | None:
    """The value of the `"service_tier": "..."` member at `at`, if a plain string."""
    match = SERVICE_TIER.match(body, at)
    return match.group(1).decode("utf-8", "replace") if match else None


def _first_model(data: bytes) -> str | None:
    """The first `"model": "..."` value in `data` however spaced (one holding an escape is passed over)."""
    match = MODEL_VALUE.search(data)
    return match.group(1).decode("utf-8", "replace") if match else None


def edge_usage(head: bytes, tail: bytes, read: Callable[[Any], Reading]) -> Extraction:
    """The usage found in the last bytes of a large body, else in its first bytes; the model beside it,
    else the one that opens the body (vLLM and LiteLLM write `model` first and `usage` last)."""
    for edge in (tail, head):
        found = _last_usage(edge)
        if found is not None:
            key, usage = found
            reading = read({key: usage, "model": _last_model(edge) or _first_model(head)})
            return Extraction(reading.usage, reading.model, reading.chars)
    return Extraction(None, _last_model(tail) or _last_model(head))


def _last_usage(data: bytes) -> tuple[str, dict[str, Any]] | None:
    """The last `"usage": {...}` (or `"usageMetadata"`) member in `data` that parses, with its key."""
    at = len(data)
    while (at := data.rfind(b'"usage', 0, at)) >= 0:
        match = USAGE_KEY.match(data, at)
        end = object_end(data, match.end()) if match else -1
        value = loads(data[match.end() : end]) if match and end > 0 else None
        if match and isinstance(value, dict):
            return match.group(1).decode(), value
    return None


def _last_model(data: bytes) -> str | None:
    """The last `"model": "..."` value in `data`."""
    at = len(data)
    while (at := data.rfind(b'"model"', 0, at)) >= 0:
        match = MODEL_VALUE.match(data, at)
        if match:
            return match.group(1).decode("utf-8", "replace")
    return None


def _edge(chunks: list[bytes], *, first: bool) -> bytes:
    """The first (or last) `EDGE` bytes of the body, joining only the chunks they span."""
    taken: list[bytes] = []
    size = 0
    for chunk in chunks if first else reversed(chunks):
        taken.append(chunk)
        size += len(chunk)
        if size >= EDGE:
            break
    if first:
        return b"".join(taken)[:EDGE]
    return b"".join(reversed(taken))[-EDGE:]
