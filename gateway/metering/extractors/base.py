"""What every extractor shares: JSON parsing that never raises, token counts that are never negative,
the reading of one payload, and the extractor that reports a fixed answer."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

import orjson

from gateway.metering.usage import Extraction, TokenUsage, in_service_tier

EMPTY: Mapping[str, Any] = {}


class Reading(NamedTuple):
    """What one parsed payload (a stream event or a whole body) says about usage and generated text."""

    usage: TokenUsage | None = None
    model: str | None = None
    chars: int = 0  # characters of generated text, counted only when there is no final usage
    final: bool = True  # whether `usage` is the response's total (Gemini chunks carry running totals)
    pending: str | None = None  # a background response still running: its id (see `Extraction.pending`)


NOTHING = Reading()
Settled = tuple[TokenUsage, str | None]  # a whole stream's final usage and model, found at its end


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    """The JSON value of `data`, or None when it is not JSON."""
    try:
        return orjson.loads(data)
    except (orjson.JSONDecodeError, TypeError):
        return None


def mapping(value: object, key: str) -> Mapping[str, Any]:
    """`value[key]` when both are JSON objects, else an empty mapping."""
    if isinstance(value, dict):
        found = value.get(key)
        if isinstance(found, dict):
            return found
    return EMPTY


def items(value: object, key: str) -> list[Any]:
    """`value[key]` when `value` is an object and that member a list, else an empty list."""
    if isinstance(value, dict):
        found = value.get(key)
        if isinstance(found, list):
            return found
    return []


def count(fields: Mapping[str, Any], key: str) -> int:
    """A token count: a non-negative integer, anything else counts 0."""
    value = fields.get(key)
    if type(value) is int:  # not a bool
        return value if value > 0 else 0
    if type(value) is float and 0 < value < 2**63:
        return int(value)
    return 0


def text(value: object, key: str) -> str:
    """`value[key]` when it is a string, else ""."""
    if isinstance(value, dict):
        found = value.get(key)
        if isinstance(found, str):
            return found
    return ""


def model_of(value: object, key: str = "model") -> str | None:
    if type(value) is dict:
        found = value.get(key)
        if type(found) is str and found:
            return found
    return None


def chars_of(texts: Iterable[str]) -> int:
    """The characters of generated text: counted only where a reading has no usage to go by."""
    return sum(map(len, texts))


def read_body(
    payload: Any,
    usage_of: Callable[[object], TokenUsage | None],
    texts_of: Callable[[Any], Iterable[str]],
) -> Reading:
    """A whole body (or one chunk) read by `usage_of`, in the processing tier it names (OpenAI's
    `service_tier`); its generated text is counted only without usage."""
    if type(payload) is not dict:
        return NOTHING
    usage = usage_of(payload.get("usage"))
    if usage is not None:
        tier = payload.get("service_tier")  # OpenAI's, beside the usage object
        return Reading(usage if tier is None else in_service_tier(usage, tier), model_of(payload))
    return Reading(None, model_of(payload), chars_of(texts_of(payload)))


def object_end(data: bytes, start: int) -> int:
    """The index just past the JSON object that opens at `data[start]`, or -1 if it does not close there.

    Braces are matched without regard to strings: for usage objects, whose strings (keys, modality and
    tier names) never hold a brace. Cheap: one `find` per brace.
    """
    if data[start : start + 1] != b"{":
        return -1
    depth, position = 0, start
    while True:
        opening = data.find(b"{", position)
        closing = data.find(b"}", position)
        if closing < 0:
            return -1
        if 0 <= opening < closing:
            depth, position = depth + 1, opening + 1
            continue
        depth, position = depth - 1, closing + 1
        if depth == 0:
            return position


class Fixed:
    """Reports the same extraction whatever passes: unmetered calls, streams of unknown formats."""

    __slots__ = ("_extraction",)

    def __init__(self, extraction: Extraction) -> None:
        self._extraction = extraction

    def feed(self, chunk: bytes) -> bytes:
        return chunk

    def finish(self) -> Extraction:
        return self._extraction
