"""Gemini's generateContent and streamGenerateContent (and embedContent when it reports usage).

    usageMetadata {promptTokenCount, candidatesTokenCount, thoughtsTokenCount, cachedContentTokenCount,
                   toolUsePromptTokenCount, totalTokenCount, promptTokensDetails, candidatesTokensDetails,
                   toolUsePromptTokensDetails, cacheTokensDetails}; the model in `modelVersion`

Normalised: input = prompt + tool-use prompt, cached = cachedContentTokenCount, output = candidates +
thoughts (Gemini leaves thinking out of `candidatesTokenCount`), reasoning = thoughts. Of those, the audio
tokens (the `AUDIO` entries of `promptTokensDetails`, `toolUsePromptTokensDetails` and
`candidatesTokensDetails`, lists of `{modality, tokenCount}`) are audio input and output: Gemini bills
audio input apart from text on the models that price it so, and a price that gives no audio rate leaves
such a call unpriced, never priced as text.

Streamed, every chunk carries the running totals, so the last one counts, and only once the response
is complete: the last chunk has a `finishReason` (or no candidates: a blocked prompt). Two framings:
SSE with `alt=sse` (events end with CRLF CRLF), read by an `EventStream` in a `DataDialect` of
`read_chunk`, and by default one JSON array whose elements arrive one after another (`[{...}`,
`,\\r\\n{...}` ... `]`, compact or pretty-printed), read by `GeminiArrayStream`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from itertools import pairwise
from statistics import median_low
from typing import Any

import orjson

from gateway.metering.extractors.base import (
    NOTHING,
    Reading,
    chars_of,
    count,
    items,
    loads,
    mapping,
    model_of,
    object_end,
    text,
)
from gateway.metering.extractors.sse import ENVELOPE_SAMPLES, string_end
from gateway.metering.usage import Extraction, TokenUsage

SMALL_ARRAY = 8 * 1024  # an array up to this size is parsed whole
USAGE_KEY = re.compile(rb'"usageMetadata"\s*:\s*')
MODEL_VALUE = re.compile(rb'"modelVersion"\s*:\s*"([^"\\]*)"')
BETWEEN_ELEMENTS = re.compile(r"[\s,]*")
AUDIO = "AUDIO"  # the `modality` of audio tokens in a usage breakdown
TEXT_KEY = re.compile(rb'"text"\s*:\s*"')  # also where a chunk's text starts: the end of its head


def gemini_usage(metadata: object) -> TokenUsage | None:
    """A `usageMetadata` object, normalised; None if it is not one."""
    if not isinstance(metadata, dict) or not metadata:
        return None
    prompt = count(metadata, "promptTokenCount") + count(metadata, "toolUsePromptTokenCount")
    thoughts = count(metadata, "thoughtsTokenCount")
    output = count(metadata, "candidatesTokenCount") + thoughts
    cached = min(count(metadata, "cachedContentTokenCount"), prompt)
    heard = audio_of(metadata.get("promptTokensDetails"))
    heard += audio_of(metadata.get("toolUsePromptTokensDetails"))
    spoken = audio_of(metadata.get("candidatesTokensDetails"))
    if heard or spoken:  # billed at audio rates where a model prices audio apart
        return TokenUsage(
            prompt, output, cached, 0, thoughts, audio_input_tokens=heard, audio_output_tokens=spoken
        )
    return TokenUsage(prompt, output, cached, 0, thoughts)  # input, output, cached, cache write, reasoning


def audio_of(details: object) -> int:
    """The audio tokens of a modality breakdown (`[{modality, tokenCount}]`), 0 if it has none."""
    if type(details) is not list:
        return 0
    return sum(
        count(part, "tokenCount") for part in details if type(part) is dict and part.get("modality") == AUDIO
    )


def candidate_texts(payload: object) -> Iterator[str]:
    """The generated text of a response or chunk: text parts (thoughts included), function-call args."""
    for candidate in items(payload, "candidates"):
        for part in items(mapping(candidate, "content"), "parts"):
            yield text(part, "text")
            arguments = mapping(part, "functionCall").get("args")
            if arguments:
                yield orjson.dumps(arguments).decode()


def is_final(payload: object) -> bool:
    candidates = items(payload, "candidates")
    return not candidates or any(isinstance(c, dict) and c.get("finishReason") for c in candidates)


def read_chunk(payload: Any) -> Reading:
    """One streamed chunk; its usage counts only if it is the last one."""
    if type(payload) is not dict:
        return NOTHING
    usage = gemini_usage(payload.get("usageMetadata"))
    model = model_of(payload, "modelVersion")
    final = is_final(payload)
    if usage is not None and final:
        return Reading(usage, model)
    return Reading(usage, model, chars_of(candidate_texts(payload)), final)


def read_response(payload: Any) -> Reading:
    """A whole generateContent (or embedContent) body."""
    if type(payload) is not dict:
        return NOTHING
    usage = gemini_usage(payload.get("usageMetadata"))
    if usage is not None:
        return Reading(usage, model_of(payload, "modelVersion"))
    return Reading(None, model_of(payload, "modelVersion"), chars_of(candidate_texts(payload)))


class GeminiArrayStream:
    """streamGenerateContent without `alt=sse`: kept by reference, read once at `finish`."""

    __slots__ = ("_append", "_chunks")

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._append = self._chunks.append

    def feed(self, chunk: bytes) -> bytes:
        self._append(chunk)
        return chunk

    def finish(self) -> Extraction:
        try:
            tail = _tail(self._chunks)
            if tail.rstrip().endswith(b"]") and _ends_final(tail):  # its last usageMetadata is the total
                usage = _last_usage(tail)
                if usage is not None:
                    return Extraction(usage, _last_model(tail))
            return read_array(b"".join(self._chunks))
        except Exception:
            return Extraction(None)


def _tail(chunks: list[bytes]) -> bytes:
    """The last chunks joined, back to the last `usageMetadata` and the last `candidates` (else all of
    them): `_ends_final` then says of the tail what it says of the whole array, however its bytes came.
    (A tail short of the last `candidates` would take an array closed after an error element, whose
    last usage is a running total, for a complete one.)"""
    taken = 4
    while True:
        tail = b"".join(chunks[-taken:])
        if taken >= len(chunks) or (b'"usageMetadata"' in tail and b'"candidates"' in tail):
            return tail
        taken *= 4


def read_array(body: bytes) -> Extraction:
    """The extraction from a streamed JSON array, complete or cut.

    Usage: the last `usageMetadata` object, located with `rfind` and parsed alone, if the array is
    closed and that object is its final chunk's (`_ends_final`): an array cut inside an element just
    after a `]` of its own ends with `]` too, but its last usage is a running total. Generated
    characters, when there is no usage: exact for small arrays (parsed whole, a cut one closed after
    its last whole element); for larger ones the bytes of the array minus, per element, the envelope
    around the text of the first elements. Without a final usage, the last running total (the last
    whole `usageMetadata` object) is what the stream reported so far (`Extraction.partial`).
    """
    complete = body.rstrip().endswith(b"]")
    final = complete and _ends_final(body)
    usage = _last_usage(body)
    if usage is not None and final:
        return Extraction(usage, _last_model(body))
    if len(body) <= SMALL_ARRAY:
        elements = loads(body) if complete else None
        read = _read_elements(elements if isinstance(elements, list) else _whole_elements(body))
        return Extraction(None, read.model, read.output_chars, None, read.usage)
    return Extraction(None, _last_model(body), _array_chars(body), None, usage)


def _ends_final(data: bytes) -> bool:
    """Whether the last `usageMetadata` in `data`, the end of a streamed array, is its final chunk's
    (see `is_final`): after a `finishReason` that follows the last `candidates`, or with no candidates
    at all (a blocked prompt). Keys, not values: a quote inside a text is escaped."""
    candidates = data.rfind(b'"candidates"')
    if candidates < 0:
        return True
    return candidates < data.rfind(b'"finishReason"') < data.rfind(b'"usageMetadata"')


def _last_model(body: bytes) -> str | None:
    at = body.rfind(b'"modelVersion"')
    match = MODEL_VALUE.match(body, at) if at >= 0 else None
    return match.group(1).decode("utf-8", "replace") if match else None


def _read_elements(elements: list[Any]) -> Extraction:
    readings = [read_chunk(element) for element in elements]
    chars = sum(reading.chars for reading in readings)
    model = next((reading.model for reading in reversed(readings) if reading.model), None)
    last = next((reading for reading in reversed(readings) if reading.usage is not None), None)
    return Extraction(last.usage if last else None, model, chars)


def _whole_elements(body: bytes) -> list[Any]:
    """The elements of an array that ends early (or is malformed), as far as they are whole."""
    text = body.decode("utf-8", "replace")
    decoder = json.JSONDecoder()
    position, elements = text.find("[") + 1, []
    while position > 0:
        gap = BETWEEN_ELEMENTS.match(text, position)
        position = gap.end() if gap else position
        try:
            element, position = decoder.raw_decode(text, position)
        except ValueError:
            break
        elements.append(element)
    return elements


def _last_usage(body: bytes) -> TokenUsage | None:
    """The last whole `usageMetadata` object: of an array cut inside one, the one before."""
    at = len(body)
    for _ in range(2):
        at = body.rfind(b'"usageMetadata"', 0, at)
        if at < 0:
            return None
        match = USAGE_KEY.match(body, at)
        end = object_end(body, match.end()) if match else -1
        if match and end > 0:
            return gemini_usage(loads(body[match.end() : end]))
    return None


def _array_chars(body: bytes) -> int:
    """Generated characters in a long array, estimated from the first elements' envelopes."""
    starts: list[int] = []
    position = body.find(b'"candidates"')
    while position >= 0 and len(starts) <= ENVELOPE_SAMPLES:
        starts.append(position)
        position = body.find(b'"candidates"', position + 1)
    if len(starts) < 2:
        return 0
    envelopes = [end - start - _text_bytes(body, start, end) for start, end in pairwise(starts)]
    elements = body.count(b'"candidates"')
    return max(len(body) - elements * median_low(envelopes), 0)


def _text_bytes(body: bytes, start: int, end: int) -> int:
    """Bytes of the `"text"` string values between `start` and `end`."""
    starts = [match.end() for match in TEXT_KEY.finditer(body, start, end)]
    return sum(max(string_end(body, at) - at, 0) for at in starts)
