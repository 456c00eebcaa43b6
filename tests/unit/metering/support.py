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


def without_usage(body: bytes) -> bytes:
    """A JSON body (or array of chunks) with its usage members removed: a provider that omits usage."""

    def strip(value: object) -> object:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in ("usage", "usageMetadata")}
        if isinstance(value, list):
            return [strip(item) for item in value]
        return value

    return json.dumps(strip(json.loads(body))).encode()
