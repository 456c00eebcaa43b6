"""The HTTP server's protocol: uvicorn's httptools protocol, with bounds on what a request's head may take.

httptools (llhttp) reads a request line and headers of any size, for as long as they take to arrive:
a connection that sends one endless header grows the process's memory without end, and one that sends
a header every few seconds holds its connection forever, all before the gateway sees a request or
checks a key. `BoundedHttpToolsProtocol` answers a head longer than `max_head_bytes` with 431, and one
not whole `head_timeout` seconds after it began (or after the connection opened) with 408, and closes
the connection. These answers, and the 400 for a request the parser refuses, are OpenAI-style JSON errors
(no head read, no dialect known). What it costs a request: a clock read when its head begins, and an
attribute test per read of the socket; the timeout is checked for all connections at once, every
`SWEEP_SECONDS`. A connection idle between requests waits for no head (the clock starts at the next
request's first byte): uvicorn closes it after `server.keep_alive_seconds`, whatever the head timeout.

`tollgate serve` runs uvicorn with it (`http=`), the bounds taken from `server.max_header_bytes` and
`server.header_timeout_seconds` in each worker (`configure`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Set
from typing import ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from gateway.errors import BadRequest, Dialect, GatewayError, HeadTimeout, HeadTooLarge, render_error

SWEEP_SECONDS = 1.0
logger = logging.getLogger("tollgate.http")
_REASONS = {400: b"Bad Request", 408: b"Request Timeout", 431: b"Request Header Fields Too Large"}


class HeadTooLong(Exception):
    """A request head past `BoundedHttpToolsProtocol.max_head_bytes`, found whole."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """`HttpToolsProtocol` with a bounded request head: in bytes, and in time."""

    max_head_bytes: ClassVar[int] = 64 * 1024
    head_timeout: ClassVar[float] = 30.0
    _sweeps: ClassVar[dict[asyncio.AbstractEventLoop, asyncio.TimerHandle]] = {}

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_bytes = 0  # bytes read while a head was coming, before the read that completes it
        self._read = 0  # bytes of the read being parsed
        self._too_long = False
        self._head_since: float | None = self.loop.time()  # waiting for a head since; None: not waiting
        _keep_sweeping(self.loop, self.connections)

    def data_received(self, data: bytes) -> None:
        self._read = len(data)
        super().data_received(data)
        if self._head_since is not None:  # a head begun and not whole after this read
            self._head_bytes += len(data)
            if self._head_bytes > self.max_head_bytes and not self.transport.is_closing():
                self.refuse(HeadTooLarge(self._too_long_message()))

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0
        self._head_since = self.loop.time()

    def on_headers_complete(self) -> None:
        # A head that came whole in a read that (with those before it) is longer than the bound is
        # measured; too long, the request goes no further (`send_400_response` answers 431).
        if self._head_bytes + self._read > self.max_head_bytes and self._head_size() > self.max_head_bytes:
            self._too_long = True
            raise HeadTooLong
        self._head_since = None
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        """A request the parser refused: 431 if its head is too long, else 400 (uvicorn has logged it)."""
        if self._too_long:
            self.refuse(HeadTooLarge(self._too_long_message()))
        else:
            self._answer(BadRequest(msg))

    def _head_size(self) -> int:
        """The bytes of the request line and headers, as parsed (separators counted once each)."""
        return len(self.url) + 16 + sum(len(name) + len(value) + 4 for name, value in self.headers)

    def _too_long_message(self) -> str:
        return f"the request head is longer than {self.max_head_bytes} bytes"

    def refuse(self, error: GatewayError) -> None:
        """Answer `error` (the head is not read: no dialect is known, OpenAI's is used) and close."""
        logger.warning(
            "request head refused", extra={"fields": {"status": error.status, "reason": error.message}}
        )
        self._answer(error)

    def _answer(self, error: GatewayError) -> None:
        """Write `error` as the connection's last response, and close it."""
        status = error.status
        body = render_error(error, Dialect.OPENAI)
        head = b"HTTP/1.1 %d %s\r\n" % (status, _REASONS[status])
        head += b"content-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n" % len(
            body
        )
        self.transport.write(head + body)
        self.transport.close()
        self._head_since = None

    def head_overdue(self, now: float) -> bool:
        """Whether a head this connection waits for began more than `head_timeout` seconds before `now`."""
        since = self._head_since
        return since is not None and now - since > self.head_timeout and not self.transport.is_closing()


def configure(max_head_bytes: int, head_timeout: float) -> None:
    """Set the bounds, in the process that serves (each worker reads its configuration)."""
    BoundedHttpToolsProtocol.max_head_bytes = max_head_bytes
    BoundedHttpToolsProtocol.head_timeout = head_timeout


def _keep_sweeping(loop: asyncio.AbstractEventLoop, connections: Set[object]) -> None:
    """Have `loop` check its connections' heads every `SWEEP_SECONDS` while it has connections."""
    sweeps = BoundedHttpToolsProtocol._sweeps
    if loop not in sweeps:
        sweeps[loop] = loop.call_later(SWEEP_SECONDS, _sweep, loop, connections)


def _sweep(loop: asyncio.AbstractEventLoop, connections: Set[object]) -> None:
    sweeps = BoundedHttpToolsProtocol._sweeps
    now = loop.time()
    for connection in list(connections):
        if isinstance(connection, BoundedHttpToolsProtocol) and connection.head_overdue(now):
            connection.refuse(HeadTimeout(f"the request head took longer than {connection.head_timeout:g} s"))
    if connections:
        sweeps[loop] = loop.call_later(SWEEP_SECONDS, _sweep, loop, connections)
    else:
        del sweeps[loop]
