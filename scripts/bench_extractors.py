"""Micro-benchmark of the usage extractors, per stream format and per way the stream is delivered.

Each stream is N content events in the provider's documented shape (--events, default 20 and 200, the
bench's stream sizes), plus its opening and closing events. A gateway does not see them one by one:
under load TCP and the HTTP client's `readany()` coalesce several events into one chunk, and a chunk
may end in the middle of an event. So every stream is fed in several deliveries:

    1/chunk     one event per chunk, as a provider flushes them (the old `hot` / `all` columns too)
    2 .. 20     that many whole events per chunk
    whole       the whole stream in one chunk
    cut ~1      seeded random cuts, pieces of 1 .. 2 events' worth of bytes: nearly every chunk starts
                and ends in the middle of an event
    cut ~5      the same with pieces of 1 .. 10 events' worth

and timed from creating the extractor to `finish`, best of --repeat. The tables show µs per event
(the response's cost divided by its events, opening and closing ones included) and µs per response.
Every delivery is checked to report the same usage as the one-event-per-chunk one (`!` marks one that
does not). `hot` / `all` are the old columns: µs per chunk for the content events in the middle of a
one-event-per-chunk stream, and per chunk for the whole stream; both include the calling loop, whose
cost alone is the first row. JSON bodies report the cost per body.

    .venv/bin/python scripts/bench_extractors.py [--events 20,200] [--repeat 7]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Callable

from gateway.metering.extractors import extractor_for
from gateway.metering.usage import Endpoint, UsageExtractor

SSE = b"text/event-stream; charset=utf-8"
JSON = b"application/json"
WORDS = (" the", " quick", " brown", " fox", " jumps", " over", " a", " lazy", " dog", ",", " and", " runs")


def _dumps(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _obfuscation(rng: random.Random, word: str) -> str:
    return "x" * max(16 - len(word) + rng.randint(-3, 3), 1)


def openai_chat(events: int, include_usage: bool) -> list[bytes]:
    rng = random.Random(1)
    head = {
        "id": "chatcmpl-C42qMU7aGxT1",
        "object": "chat.completion.chunk",
        "created": 1755080278,
        "model": "gpt-4o-mini-2024-07-18",
        "service_tier": "default",
        "system_fingerprint": "fp_34a54111",
    }
    tail = {"usage": None} if include_usage else {}

    def chunk(delta: dict[str, object], finish: str | None, word: str = "") -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        body = {**head, "choices": [choice], **tail, "obfuscation": _obfuscation(rng, word)}
        return b"data: " + _dumps(body) + b"\n\n"

    out = [chunk({"role": "assistant", "content": "", "refusal": None}, None)]
    out += [chunk({"content": word}, None, word) for word in _words(events)]
    out.append(chunk({}, "stop"))
    if include_usage:
        usage = {
            "prompt_tokens": 1432,
            "completion_tokens": events,
            "total_tokens": 1432 + events,
            "prompt_tokens_details": {"cached_tokens": 1280},
            "completion_tokens_details": {"reasoning_tokens": 0},
        }
        out.append(b"data: " + _dumps({**head, "choices": [], "usage": usage}) + b"\n\n")
    return [*out, b"data: [DONE]\n\n"]


def responses(events: int) -> list[bytes]:
    rng = random.Random(2)

    def event(name: str, data: dict[str, object]) -> bytes:
        return b"event: " + name.encode() + b"\ndata: " + _dumps({"type": name, **data}) + b"\n\n"

    response: dict[str, object] = {
        "id": "resp_68af4030592c81938ec0a5fbab4a3e9f",
        "object": "response",
        "status": "in_progress",
        "model": "gpt-4.1-2025-04-14",
        "output": [],
        "usage": None,
    }
    item = "msg_68af40310a4c8193b4a2b1a3c8e1e6d2"
    out = [event("response.created", {"sequence_number": 0, "response": response})]
    for number, word in enumerate(_words(events), start=1):
        out.append(
            event(
                "response.output_text.delta",
                {
                    "sequence_number": number,
                    "item_id": item,
                    "output_index": 0,
                    "content_index": 0,
                    "delta": word,
                    "logprobs": [],
                    "obfuscation": _obfuscation(rng, word),
                },
            )
        )
    usage = {
        "input_tokens": 36,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": events,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 36 + events,
    }
    done = {
        **response,
        "status": "completed",
        "usage": usage,
        "output": [
            {"type": "message", "content": [{"type": "output_text", "text": "".join(_words(events))}]}
        ],
    }
    return [*out, event("response.completed", {"sequence_number": events + 1, "response": done})]


def anthropic(events: int) -> list[bytes]:
    def event(name: str, data: dict[str, object]) -> bytes:
        return b"event: " + name.encode() + b"\ndata: " + _dumps({"type": name, **data}) + b"\n\n"

    usage = {
        "input_tokens": 472,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 2048,
        "output_tokens": 2,
    }
    message: dict[str, object] = {
        "id": "msg_014p7gG3wDgGV9EUtLvnow3U",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": [],
        "stop_reason": None,
        "usage": usage,
    }
    out = [
        event("message_start", {"message": message}),
        event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
    ]
    out += [
        event("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": word}})
        for word in _words(events)
    ]
    out += [
        event("content_block_stop", {"index": 0}),
        event("message_delta", {"delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": events}}),
        event("message_stop", {}),
    ]
    return out


def gemini_chunks(events: int) -> list[dict[str, object]]:
    chunks: list[dict[str, object]] = []
    for index, word in enumerate(_words(events), start=1):
        candidate: dict[str, object] = {"content": {"parts": [{"text": word}], "role": "model"}, "index": 0}
        if index == events:
            candidate["finishReason"] = "STOP"
        usage = {
            "promptTokenCount": 1040,
            "candidatesTokenCount": index,
            "totalTokenCount": 1040 + index,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 1040}],
        }
        chunks.append(
            {
                "candidates": [candidate],
                "usageMetadata": usage,
                "modelVersion": "gemini-2.5-flash",
                "responseId": "IZI2acSKMoWl0-kPmYj2yQc",
            }
        )
    return chunks


def gemini_sse(events: int) -> list[bytes]:
    return [b"data: " + _dumps(chunk) + b"\r\n\r\n" for chunk in gemini_chunks(events)]


def gemini_array(events: int) -> list[bytes]:
    pieces = [
        (b"[" if index == 0 else b",\r\n") + _dumps(chunk)
        for index, chunk in enumerate(gemini_chunks(events))
    ]
    pieces[-1] += b"]"
    return pieces


def _words(events: int) -> list[str]:
    return [WORDS[index % len(WORDS)] for index in range(events)]


def chat_body() -> bytes:
    message = {"role": "assistant", "content": " ".join(_words(200)), "refusal": None}
    return json.dumps(
        {
            "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
            "object": "chat.completion",
            "created": 1741569952,
            "model": "gpt-4o-2024-08-06",
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": {
                "prompt_tokens": 2006,
                "completion_tokens": 300,
                "total_tokens": 2306,
                "prompt_tokens_details": {"cached_tokens": 1920},
            },
        },
        indent=2,
    ).encode()


def embeddings_body(inputs: int) -> bytes:
    rng = random.Random(3)
    data = [
        {
            "object": "embedding",
            "index": i,
            "embedding": [round(rng.uniform(-0.1, 0.1), 9) for _ in range(1536)],
        }
        for i in range(inputs)
    ]
    body = {
        "object": "list",
        "data": data,
        "model": "text-embedding-3-small",
        "usage": {"prompt_tokens": 8 * inputs, "total_tokens": 8 * inputs},
    }
    return json.dumps(body, indent=2).encode()


def measure(make: Callable[[], UsageExtractor], chunks: list[bytes], repeat: int) -> tuple[float, float]:
    """(hot, all): µs per chunk for the content chunks in the middle of the stream (the common case),
    and per chunk for the whole stream with creating the extractor and `finish`; best of `repeat`."""
    middle = chunks[10:-5] if len(chunks) > 30 else chunks
    best_hot = best_all = float("inf")
    for _ in range(repeat):
        hot = whole = 0.0
        for _ in range(50):
            started = time.perf_counter()
            extractor = make()  # `feed` looked up per chunk, as the relay does (an extractor may switch)
            for chunk in chunks[:10]:
                extractor.feed(chunk)
            entered = time.perf_counter()
            for chunk in middle:
                extractor.feed(chunk)
            left = time.perf_counter()
            for chunk in chunks[len(chunks) - 5 :]:
                extractor.feed(chunk)
            extractor.finish()
            hot += left - entered
            whole += time.perf_counter() - started
        best_hot = min(best_hot, hot * 1e6 / (50 * len(middle)))
        best_all = min(best_all, whole * 1e6 / (50 * len(chunks)))
    return best_hot, best_all


def per_response(make: Callable[[], UsageExtractor], pieces: list[bytes], repeat: int) -> float:
    """µs per response: creating the extractor, feeding `pieces`, `finish`; best of `repeat`."""
    rounds = max(5, 20_000 // len(pieces))
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for _ in range(rounds):
            extractor = make()
            for piece in pieces:
                extractor.feed(piece)
            extractor.finish()
        best = min(best, (time.perf_counter() - started) * 1e6 / rounds)
    return best


def baseline(chunks: list[bytes], repeat: int) -> float:
    """µs per chunk of the loop itself, feeding an extractor that does nothing."""
    return measure(
        lambda: extractor_for("openai", Endpoint.UNMETERED, SSE, strip_injected_usage=False), chunks, repeat
    )[0]


def deliveries(events: list[bytes]) -> list[tuple[str, list[bytes]]]:
    """The same stream delivered one event per chunk, N whole events per chunk, whole, and cut at random."""
    stream = b"".join(events)
    mean = len(stream) // len(events)
    out = [("1/chunk", events)]
    for n in (2, 5, 20):
        out.append((str(n), [b"".join(events[i : i + n]) for i in range(0, len(events), n)]))
    out.append(("whole", [stream]))
    for label, largest, seed in (("cut ~1", 2 * mean, 11), ("cut ~5", 10 * mean, 12)):
        rng, pieces, start = random.Random(seed), [], 0
        while start < len(stream):
            size = rng.randint(1, largest)
            pieces.append(stream[start : start + size])
            start += size
        out.append((label, pieces))
    return out


Stream = tuple[str, str, Endpoint, bytes, bool, Callable[[int], list[bytes]]]
STREAMS: list[Stream] = [
    (
        "openai chat, include_usage",
        "openai",
        Endpoint.CHAT_COMPLETIONS,
        SSE,
        False,
        lambda n: openai_chat(n, True),
    ),
    (
        "openai chat, include_usage, strip",
        "openai",
        Endpoint.CHAT_COMPLETIONS,
        SSE,
        True,
        lambda n: openai_chat(n, True),
    ),
    (
        "openai chat, no usage",
        "openai",
        Endpoint.CHAT_COMPLETIONS,
        SSE,
        False,
        lambda n: openai_chat(n, False),
    ),
    ("openai responses", "openai", Endpoint.RESPONSES, SSE, False, responses),
    ("anthropic messages", "anthropic", Endpoint.MESSAGES, SSE, False, anthropic),
    ("gemini alt=sse", "gemini", Endpoint.STREAM_GENERATE_CONTENT, SSE, False, gemini_sse),
    ("gemini JSON array", "gemini", Endpoint.STREAM_GENERATE_CONTENT, JSON, False, gemini_array),
]


def maker(kind: str, endpoint: Endpoint, content_type: bytes, strip: bool) -> Callable[[], UsageExtractor]:
    return lambda: extractor_for(kind, endpoint, content_type, strip_injected_usage=strip)


def delivery_tables(n: int, repeat: int) -> None:
    """µs per event and per response for every stream format and delivery."""
    rows: list[tuple[str, int, list[tuple[float, bool]]]] = []
    labels: list[str] = []
    for label, kind, endpoint, content_type, strip, build in STREAMS:
        make = maker(kind, endpoint, content_type, strip)
        events = build(n)
        expected = run_once(make, events)
        cells = []
        labels = []
        for name, pieces in deliveries(events):
            labels.append(name)
            cells.append((per_response(make, pieces, repeat), run_once(make, pieces) == expected))
        rows.append((label, len(events), cells))
    for title, per_event in (("µs per event", True), ("µs per response", False)):
        print(f"{title + f' ({n} content events)':40} {'events':>6}" + "".join(f"{x:>9}" for x in labels))
        for label, count, cells in rows:
            values = "".join(
                f"{(cost / count if per_event else cost):8.3f}{' ' if same else '!'}"
                if per_event
                else f"{cost:8.1f}{' ' if same else '!'}"
                for cost, same in cells
            )
            print(f"{label:40} {count:6d}{values}")
        print()


def run_once(make: Callable[[], UsageExtractor], pieces: list[bytes]) -> object:
    extractor = make()
    for piece in pieces:
        extractor.feed(piece)
    return extractor.finish().usage


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", default="20,200", help="content events per stream, comma-separated")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    sizes = [int(size) for size in args.events.split(",")]
    for n in sizes:
        delivery_tables(n, args.repeat)
    n = max(sizes)
    print(
        f"{'one event per chunk (' + str(n) + ' events)':40} {'bytes/chunk':>11} {'hot µs':>9} {'all µs':>9}"
    )
    print(f"{'(loop, no-op extractor)':40} {'':>11} {baseline(openai_chat(n, True), args.repeat):9.3f}")
    for label, kind, endpoint, content_type, strip, build in STREAMS:
        chunks = build(n)
        hot, whole = measure(maker(kind, endpoint, content_type, strip), chunks, args.repeat)
        size = sum(map(len, chunks)) // len(chunks)
        print(f"{label:40} {size:11d} {hot:9.3f} {whole:9.3f}")
    print()
    print(f"{'JSON body':40} {'bytes':>11} {'µs/body':>9}")
    bodies = [
        ("chat completion", Endpoint.CHAT_COMPLETIONS, chat_body()),
        ("embeddings, 1 x 1536", Endpoint.EMBEDDINGS, embeddings_body(1)),
        ("embeddings, 64 x 1536", Endpoint.EMBEDDINGS, embeddings_body(64)),
    ]
    for label, endpoint, body in bodies:
        pieces = [body[i : i + 16384] for i in range(0, len(body), 16384)]
        cost = per_response(maker("openai", endpoint, JSON, False), pieces, args.repeat)
        print(f"{label:40} {len(body):11d} {cost:9.2f}")


if __name__ == "__main__":
    main()
