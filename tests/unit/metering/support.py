"""Feeding recorded response shapes to extractors, whole and in every kind of split."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

from gateway.metering.extractors import extractor_for
from gateway.metering.usage import Endpoint, Extraction

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "usage"
SSE = b"text/event-stream; charset=utf-8"
JSON = b"application/json"
SEEDS = (1, 2, 3, 4, 5)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def random_pieces(data: bytes, seed: int, largest: int = 600) -> list[bytes]:
    rng = random.Random(seed)
    pieces, start = [], 0
    while start < len(data):
        size = rng.randint(1, largest)
        pieces.append(data[start : start + size])
        start += size
    return pieces


def splittings(data: bytes) -> Iterator[tuple[str, list[bytes]]]:
    """The same bytes whole, byte by byte, and in seeded random pieces."""
    yield "whole", [data]
    yield "byte by byte", [data[i : i + 1] for i in range(len(data))]
    for seed in SEEDS:
        yield f"random split {seed}", random_pieces(data, seed)


def run(
    kind: str,
    endpoint: Endpoint,
    content_type: bytes | None,
    pieces: list[bytes],
    *,
    strip: bool = False,
) -> tuple[Extraction, bytes]:
    """The extraction and the bytes `feed` let through."""
    extractor = extractor_for(kind, endpoint, content_type, strip_injected_usage=strip)
    relayed = b"".join(extractor.feed(piece) for piece in pieces)
    return extractor.finish(), relayed


def extract_every_way(kind: str, endpoint: Endpoint, content_type: bytes | None, data: bytes) -> Extraction:
    """The extraction, asserted the same however `data` is split."""
    whole, _ = run(kind, endpoint, content_type, [data])
    for label, pieces in splittings(data):
        extraction, relayed = run(kind, endpoint, content_type, pieces)
        assert extraction == whole, label
        assert relayed == data, label
    return whole


def near(estimate: int, actual: int) -> bool:
    """Whether an estimated character count is within the tolerance documented for streams."""
    return abs(estimate - actual) <= max(8, actual // 4)


USAGE_KEYS = ("usage", "usageMetadata")


def _strip_usage(value: object) -> object:
    if isinstance(value, dict):
        return {k: _strip_usage(v) for k, v in value.items() if k not in USAGE_KEYS}
    if isinstance(value, list):
        return [_strip_usage(item) for item in value]
    return value


def _holds_usage(value: object) -> bool:
    if isinstance(value, dict):
        return any(k in USAGE_KEYS or _holds_usage(v) for k, v in value.items())
    return isinstance(value, list) and any(map(_holds_usage, value))


def without_usage(body: bytes) -> bytes:
    """A JSON body (or array of chunks) with its usage members removed: a provider that omits usage."""
    return json.dumps(_strip_usage(json.loads(body))).encode()


def stream_without_usage(stream: bytes) -> bytes:
    """An event stream with the usage members removed from its events' data (`"usage": null` ones too),
    the rest byte for byte: a provider that reports no usage. Events without data left go whole."""
    out = []
    for line in stream.splitlines(keepends=True):
        body = line.rstrip(b"\r\n")
        if line.startswith(b"data:") and body[5:].strip() not in (b"", b"[DONE]"):
            value = json.loads(body[5:])
            if _holds_usage(value):
                spaced = b'": ' in body
                separators = (", ", ": ") if spaced else (",", ":")
                data = json.dumps(_strip_usage(value), separators=separators, ensure_ascii=False)
                line = b"data: " + data.encode() + line[len(body) :]
        out.append(line)
    return b"".join(out)


# A Responses API usage with cache writes of both retentions: of the 400, 300 kept 30 min, 100 kept 12 h.
CACHE_WRITE_RESPONSES_USAGE = {
    "input_tokens": 2600,
    "input_tokens_details": {
        "cached_tokens": 2000,
        "cache_write_tokens": 400,
        "cache_write_tokens_details": {"ttl_30m_tokens": 300, "ttl_12h_tokens": 100},
    },
    "output_tokens": 300,
    "output_tokens_details": {"reasoning_tokens": 64},
    "total_tokens": 2900,
}
