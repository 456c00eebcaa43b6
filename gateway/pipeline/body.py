"""Stage: read the request body, up to the configured cap, once authentication has passed.

A caller that stops sending mid-body would hold its request (and a task) until TCP gives up: each read
of the body waits at most `timeout` seconds (`server.body_read_timeout_seconds`), then the request is
refused with 408 (`RequestTimeout`), nothing sent upstream. A read that does not wait (the usual body, come
whole with the head, is already there) arms no timer: `receive()` is started by hand and timed only if it
suspends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from functools import partial
from typing import Any

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
    reading = receive().__await__()
    try:
        waiting_on = reading.send(None)  # as the task would: runs until the message or a wait
    except StopIteration as done:
        message: Message = done.value
        return message
    async with asyncio.timeout(seconds):
        return await _Rest(reading, waiting_on)


class _Rest:
    """The rest of a `receive()` started by hand, suspended on `waiting_on`, to be awaited by the task:
    what the task sends or throws in (a cancellation: the timeout) goes on into it."""

    __slots__ = ("_reading", "_waiting_on")

    def __init__(self, reading: Generator[Any, None, Message], waiting_on: Any) -> None:
        self._reading = reading
        self._waiting_on = waiting_on

    def __await__(self) -> Generator[Any, None, Message]:
        reading, waiting_on = self._reading, self._waiting_on
        while True:
            try:
                yield waiting_on
            except BaseException as error:
                step = partial(reading.throw, error)
            else:
                step = partial(reading.send, None)
            try:
                waiting_on = step()
            except StopIteration as done:
                message: Message = done.value
                return message
