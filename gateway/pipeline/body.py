"""Stage: read the request body, up to the configured cap, once authentication has passed.

A caller that stops sending mid-body would hold its request (and a task) until TCP gives up: each read
of the body waits at most `timeout` seconds (`server.body_read_timeout_seconds`), then the request is
refused with 408 (`RequestTimeout`), nothing sent upstream.
"""

from __future__ import annotations

import asyncio
from functools import partial

from gateway.context import RequestContext
from gateway.errors import RequestTimeout
from gateway.http.body import declared_length, read_body
from gateway.types import Message, Receive


class ReadBody:
    def __init__(self, limit: int, timeout: float) -> None:
        self._limit = limit
        self._timeout = timeout

    async def __call__(self, ctx: RequestContext) -> None:
        receive = partial(_within, ctx.receive, self._timeout)
        try:
            ctx.body = await read_body(receive, self._limit, declared_length(ctx.headers))
        except TimeoutError:
            raise RequestTimeout(
                f"the request body stopped arriving: nothing came for {self._timeout:g} s"
            ) from None


async def _within(receive: Receive, seconds: float) -> Message:
    """The next ASGI message, or `TimeoutError` after `seconds`."""
    async with asyncio.timeout(seconds):
        return await receive()
