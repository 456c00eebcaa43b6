"""A small asyncio HTTP/1.1 load generator, what `scripts/bench` uses where `wrk` is not installed.

A fixed number of keep-alive connections each send the same request back to back for a fixed time and
read every response in full (Content-Length, chunked, or until close). Latency is measured per request,
from writing it to reading its last byte. Errors are non-2xx responses and socket failures.

    python scripts/loadgen.py http://127.0.0.1:9000/v1/chat/completions -m POST \\
        -H 'content-type: application/json' --body '{"model": "m"}' -c 32 -d 5

From Python: `run_load(url, method=..., headers=..., body=..., concurrency=..., duration_s=...)`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

try:
    import uvloop
except ImportError:  # pragma: no cover - plain asyncio is fine, only slower
    uvloop = None  # type: ignore[assignment]

NO_BODY_STATUSES = frozenset({204, 304})


@dataclass(frozen=True)
class LoadResult:
    """What one run measured; `requests` counts every complete response, errors included."""

    requests: int
    errors: int
    duration_s: float
    requests_per_s: float
    p50_ms: float
    p99_ms: float


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    request: bytes


@dataclass
class Tally:
    latencies: list[float]
    errors: int = 0


def build_target(url: str, method: str, headers: Mapping[str, str], body: bytes) -> Target:
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"only http:// URLs are supported, not {url!r}")
    port = parts.port or 80
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    lines = [f"{method} {target} HTTP/1.1", f"host: {parts.netloc}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"content-length: {len(body)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return Target(parts.hostname, port, head + body)


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one whole response; returns its status and whether the connection stays usable."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    status_line, *header_lines = head[:-4].split("\r\n")
    version, status_text = status_line.split(" ", 2)[:2]
    status = int(status_text)
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip().lower()
    keep_alive = "close" not in headers.get("connection", "") and version == "HTTP/1.1"
    if status in NO_BODY_STATUSES or status < 200:
        return status, keep_alive
    if "chunked" in headers.get("transfer-encoding", ""):
        await read_chunked(reader)
    elif "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    else:
        await reader.read()
        keep_alive = False
    return status, keep_alive


async def read_chunked(reader: asyncio.StreamReader) -> None:
    while True:
        size = int((await reader.readline()).split(b";", 1)[0], 16)
        if size == 0:
            while await reader.readline() not in (b"\r\n", b""):
                pass
            return
        await reader.readexactly(size + 2)


async def connection_loop(target: Target, deadline: float, tally: Tally) -> None:
    """Send requests on one connection (reopened when needed) until the deadline."""
    writer: asyncio.StreamWriter | None = None
    reader: asyncio.StreamReader | None = None
    try:
        while time.perf_counter() < deadline:
            try:
                if writer is None or reader is None:
                    reader, writer = await asyncio.open_connection(target.host, target.port)
                started = time.perf_counter()
                writer.write(target.request)
                status, keep_alive = await read_response(reader)
                tally.latencies.append(time.perf_counter() - started)
            except (OSError, EOFError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                tally.errors += 1
                await close(writer)
                writer = None
                await asyncio.sleep(0.01)
                continue
            if not 200 <= status < 300:
                tally.errors += 1
            if not keep_alive:
                await close(writer)
                writer = None
    finally:
        await close(writer)


async def close(writer: asyncio.StreamWriter | None) -> None:
    if writer is not None:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def percentile_ms(sorted_seconds: list[float], fraction: float) -> float:
    if not sorted_seconds:
        return math.nan
    rank = max(1, math.ceil(fraction * len(sorted_seconds)))
    return sorted_seconds[rank - 1] * 1000


async def run_load_async(
    url: str,
    *,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
    concurrency: int = 1,
    duration_s: float = 5.0,
) -> LoadResult:
    target = build_target(url, method.upper(), headers or {}, body)
    tally = Tally([])
    started = time.perf_counter()
    deadline = started + duration_s
    await asyncio.gather(*(connection_loop(target, deadline, tally) for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies = sorted(tally.latencies)
    return LoadResult(
        requests=len(latencies),
        errors=tally.errors,
        duration_s=round(elapsed, 3),
        requests_per_s=len(latencies) / elapsed,
        p50_ms=percentile_ms(latencies, 0.50),
        p99_ms=percentile_ms(latencies, 0.99),
    )


def run_load(
    url: str,
    *,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
    concurrency: int = 1,
    duration_s: float = 5.0,
) -> LoadResult:
    """Load `url` with `concurrency` connections for `duration_s` seconds (uvloop when importable)."""
    loop_factory = uvloop.new_event_loop if uvloop is not None else None
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(
            run_load_async(
                url, method=method, headers=headers, body=body, concurrency=concurrency, duration_s=duration_s
            )
        )


def parse_header(text: str) -> tuple[str, str]:
    name, colon, value = text.partition(":")
    if not colon or not name.strip():
        raise argparse.ArgumentTypeError(f"expected 'Name: value', got {text!r}")
    return name.strip(), value.strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("url", help="http:// URL to load")
    parser.add_argument("-m", "--method", default="GET", help="request method (default GET)")
    parser.add_argument(
        "-H",
        "--header",
        type=parse_header,
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="request header, repeatable",
    )
    body = parser.add_mutually_exclusive_group()
    body.add_argument("--body", default="", help="request body text")
    body.add_argument("--body-file", type=Path, help="file holding the request body")
    parser.add_argument("-c", "--concurrency", type=int, default=1, help="connections (default 1)")
    parser.add_argument("-d", "--duration", type=float, default=5.0, help="seconds to run (default 5)")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    args = parser.parse_args(argv)
    payload = args.body_file.read_bytes() if args.body_file else args.body.encode()
    result = run_load(
        args.url,
        method=args.method,
        headers=dict(args.header),
        body=payload,
        concurrency=args.concurrency,
        duration_s=args.duration,
    )
    if args.json:
        print(json.dumps(asdict(result)))
    else:
        print(
            f"{result.requests} requests in {result.duration_s:.2f}s, {result.errors} errors: "
            f"{result.requests_per_s:.0f} req/s, p50 {result.p50_ms:.2f} ms, p99 {result.p99_ms:.2f} ms"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
