"""Relaying the upstream response: status and headers as they are, the body chunk by chunk.

Nothing is buffered: each chunk is sent on as soon as it arrives, after the metering tap (if any)
has seen it; what the tap found is read later, by the meter (`ctx.tap`), off the response's path.
If the upstream fails after the response has started, a server-sent event stream gets one
well-formed error event in the caller's dialect and ends; any other body is cut off (the connection
closes) so the caller cannot mistake a truncated body for a whole one. So that the error event cannot
land inside a line the upstream did not finish (its SDK would then fail on JSON it cannot parse rather
than raise the error), an event stream goes on as far as its last line end, the start of a line waiting
for the rest of it (`WholeLines`); the caller's SSE parser could not use it before anyway.

Two exceptions to "as they are". A redirect to the upstream's own base URL (a server that adds or removes
a trailing slash) is relayed as one to the same place under the provider's mount. Followed as it came,
an absolute one would take the caller past the gateway, its Tollgate key presented to the upstream's
host (httpx drops `Authorization` on a redirect to another host, never `x-api-key` or
`x-goog-api-key`), and a path alone would be resolved against the gateway's root, outside the mount.
And a response that is no success (status 300 and up: an error, a redirect) is relayed without the
tenant's provider credential, should the upstream echo it back (a server that reflects request headers,
a proxy's error page, a `Location` built from the request): it is replaced by `REDACTED` in headers and
body, whatever chunks it spans. Successes are not searched.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

from gateway.context import RequestContext
from gateway.errors import UpstreamError, render_stream_error
from gateway.http.headers import UPSTREAM_REQUEST_ID, downstream_headers
from gateway.metering.usage import UsageExtractor
from gateway.types import Send
from gateway.upstream.transport import UpstreamResponse

# (the request, the response's status, its content type, its headers as relayed) -> the metering tap
TapFactory = Callable[[RequestContext, int, bytes | None, list[tuple[bytes, bytes]]], UsageExtractor]


class ResponseCut(Exception):
    """The response body could not be completed; the connection must be closed."""


def _content_type(headers: Sequence[tuple[bytes, bytes]]) -> bytes | None:
    for name, value in headers:
        if name == b"content-type":
            return value
    return None


async def relay(
    ctx: RequestContext, response: UpstreamResponse, send: Send, open_tap: TapFactory | None
) -> None:
    """Stream `response` to the caller; always releases it, and leaves the tap in `ctx.tap`."""
    redactor = _redactor_for(ctx) if response.status >= 300 else None
    # the tap may remove bytes the caller did not ask for (see `Meter.open_tap`), the redactor change
    # them: no content-length then
    resized = ctx.stream_usage_injected or redactor is not None
    headers = downstream_headers(response.headers, resized=resized)
    if headers and headers[-1][0] == UPSTREAM_REQUEST_ID:  # comes last when there is one
        ctx.upstream_request_id = headers[-1][1].decode("ascii")
    if redactor is not None:
        headers = [(name, redactor.whole(value)) for name, value in headers]
    if 300 <= response.status < 400:
        headers = [
            (name, _under_mount(ctx, value) if name == b"location" else value) for name, value in headers
        ]
    content_type = _content_type(headers)
    tap = ctx.tap = open_tap(ctx, response.status, content_type, headers) if open_tap is not None else None
    try:
        headers.append((b"x-request-id", ctx.request_id.encode()))
        ctx.status = ctx.upstream_status = response.status
        ctx.streamed = content_type is not None and content_type.startswith(b"text/event-stream")
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        held = await _relay_body(ctx, response, send, tap, redactor)
    finally:
        await response.aclose()
    ctx.response_complete = True
    rest = held + redactor.rest() if redactor is not None else held
    ctx.bytes_out += len(rest)
    await send({"type": "http.response.body", "body": rest, "more_body": False})


def _under_mount(ctx: RequestContext, location: bytes) -> bytes:
    """`location` made a path under the provider's mount if it points under the upstream's base URL,
    spelled whole or as a path (which the caller would resolve against the gateway's root)."""
    adapter = ctx.provider
    base = adapter.base_url.encode()
    if location.startswith(b"/") and not location.startswith(b"//"):
        base = urlsplit(base).path
    rest = location[len(base) :]
    if not location.startswith(base) or rest[:1] not in (b"", b"/", b"?"):
        return location
    return (adapter.mount + adapter.api_root).encode() + rest


async def _relay_body(
    ctx: RequestContext,
    response: UpstreamResponse,
    send: Send,
    tap: UsageExtractor | None,
    redactor: Redactor | None = None,
) -> bytes:
    """Relay the body; what is still held at its end (the start of an event stream's last line)."""
    lines = WholeLines() if ctx.streamed else None
    sent = b""
    try:
        async for chunk in response.chunks():
            if not ctx.first_byte:
                ctx.first_byte = time.perf_counter()
            if tap is not None:
                chunk = tap.feed(chunk)
                if not chunk:
                    continue
            if redactor is not None:
                chunk = redactor.feed(chunk)
                if not chunk:
                    continue
            if lines is not None and (lines.held or not chunk.endswith(_LINE_ENDS)):
                chunk = lines.feed(chunk)
                if not chunk:
                    continue
            ctx.bytes_out += len(chunk)
            sent = chunk
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    except UpstreamError as error:
        ctx.error = error
        if lines is None:
            raise ResponseCut() from None
        held = redactor.rest() if redactor is not None else b""  # what came before the error, first
        await send(
            {
                "type": "http.response.body",
                "body": lines.cut(held, sent) + render_stream_error(error, ctx.dialect),
                "more_body": True,
            }
        )
        return b""
    return lines.rest() if lines is not None else b""


MAX_LINE = 1024 * 1024  # a longer line goes on as it comes
_LINE_ENDS = (b"\n", b"\r")
_EVENT_ENDS = (b"\n\n", b"\r\n\r\n", b"\r\r")
_NO_DATA = (b"event:", b"id:", b"retry:", b":")  # the lines of an event other than its data


class WholeLines:
    """An event stream as far as its last line end: the start of a line is held until the rest of it
    comes (see the module's docstring), its pieces kept apart until then (a long line, a streamed
    image's base64, comes in many)."""

    __slots__ = ("_size", "held")

    def __init__(self) -> None:
        self.held: list[bytes] = []
        self._size = 0

    def feed(self, chunk: bytes) -> bytes:
        end = max(chunk.rfind(b"\n"), chunk.rfind(b"\r")) + 1
        if not end and self._size + len(chunk) <= MAX_LINE:  # still inside the held line
            self.held.append(chunk)
            self._size += len(chunk)
            return b""
        out = self.rest() + chunk[:end] if self.held else chunk[:end]
        line = chunk[end:]
        if len(line) > MAX_LINE or not end:
            return out + line
        if line:
            self.held.append(line)
            self._size = len(line)
        return out

    def rest(self) -> bytes:
        held = b"".join(self.held)
        self.held.clear()
        self._size = 0
        return held

    def cut(self, tail: bytes, sent: bytes) -> bytes:
        """What was held and `tail` after it, as far as the last line end (the rest of the line is
        dropped), then, if the event left open has data (or a line cut short), the blank line that
        dispatches it: the error event follows. An open event of `event:` or `id:` lines alone gets
        none: the SDKs would dispatch it without data and fail to parse that, where the error event's
        lines simply join it. A line longer than `MAX_LINE` whose start already went on is ended and
        so is its event, so that the error event is one of its own rather than more of its data."""
        data = self.rest() + tail
        data = data[: max(data.rfind(b"\n"), data.rfind(b"\r")) + 1]
        seen = sent + data
        if not seen or seen.endswith(_EVENT_ENDS):
            return data
        if not seen.endswith(_LINE_ENDS):  # the start of a long line went on, not its end
            return data + b"\n\n"
        body = seen.rstrip(b"\r\n")
        last = body[max(body.rfind(b"\n"), body.rfind(b"\r")) + 1 :]
        if last.startswith(_NO_DATA) and seen != body:
            return data
        return data + (b"\n\n" if seen.endswith(b"\r") else b"\n")


REDACTED = b"[redacted]"
MIN_SECRET = 8  # shorter "secrets" (none a provider issues) would blot out ordinary text


class Redactor:
    """Replaces a secret in a body as it passes chunk by chunk, wherever chunks cut it: the last bytes of
    each chunk that could begin it wait for the next one."""

    __slots__ = ("_held", "_secret")

    def __init__(self, secret: bytes) -> None:
        self._secret = secret
        self._held = b""

    def whole(self, data: bytes) -> bytes:
        """`data` complete in itself (a header value), without the secret."""
        return data.replace(self._secret, REDACTED) if self._secret in data else data

    def feed(self, chunk: bytes) -> bytes:
        data = (self._held + chunk).replace(self._secret, REDACTED)
        keep = len(self._secret) - 1
        self._held = data[-keep:] if keep else b""
        return data[:-keep] if keep else data

    def rest(self) -> bytes:
        held, self._held = self._held, b""
        return held


def _redactor_for(ctx: RequestContext) -> Redactor | None:
    """A redactor of the provider credential `ctx`'s request carried, if it carried one."""
    credential = ctx.credential
    if credential is None:
        return None
    secret = credential.secret.reveal().encode()
    return Redactor(secret) if len(secret) >= MIN_SECRET else None
