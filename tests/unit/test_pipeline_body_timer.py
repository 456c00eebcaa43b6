"""gateway.pipeline.body: a read of the body is timed only when it waits."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gateway.context import RequestContext
from gateway.errors import RequestTimeout
from gateway.pipeline.body import ReadBody
from gateway.providers import build_adapters
from gateway.settings import parse_settings

ADAPTER = build_adapters(parse_settings({"providers": {"openai": {"type": "openai"}}}).providers)["openai"]


def context(*parts: tuple[float, bytes]) -> RequestContext:
    """A request whose body comes as `parts` (each after waiting its seconds, 0: already there), then
    ends; asked for more, it never comes."""
    messages = [{"type": "http.request", "body": part, "more_body": True} for _, part in parts]
    messages[-1]["more_body"] = False
    waits = [wait for wait, _ in parts]
    there = asyncio.Event()
    there.set()

    async def receive() -> dict[str, Any]:  # like uvicorn's: waits on an event only if the part is not there
        if not messages:
            await asyncio.Event().wait()
        wait = waits.pop(0)
        if wait:
            await asyncio.sleep(wait)
        await there.wait()
        return messages.pop(0)

    return RequestContext("rid", 1.0, "POST", ADAPTER, b"/v1/chat/completions", b"", [], receive)


def count_timers(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The deadlines of the timers the running loop is asked for from now on."""
    loop = asyncio.get_running_loop()
    armed: list[float] = []
    call_at = loop.call_at

    def counting(when: float, *args: Any, **kwargs: Any) -> asyncio.TimerHandle:
        armed.append(when)
        return call_at(when, *args, **kwargs)

    monkeypatch.setattr(loop, "call_at", counting)
    return armed


async def test_a_body_already_there_is_read_without_arming_a_timer(monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = context((0, b'{"model": "gpt-4o-mini"}'))
    armed = count_timers(monkeypatch)

    await ReadBody(1024, 5.0)(ctx)

    assert ctx.body == b'{"model": "gpt-4o-mini"}'
    assert armed == []


async def test_a_body_whose_parts_each_come_within_the_wait_is_read_whole() -> None:
    ctx = context((0.02, b'{"model": '), (0, b'"gpt-4o-mini"'), (0.02, b"}"))

    await ReadBody(1024, 0.5)(ctx)

    assert ctx.body == b'{"model": "gpt-4o-mini"}'


async def test_a_first_part_that_never_comes_is_refused_with_408() -> None:
    ctx = context((60.0, b"{}"))

    with pytest.raises(RequestTimeout):
        await ReadBody(1024, 0.05)(ctx)


async def test_a_read_that_waits_is_cancelled_with_its_task() -> None:
    ctx = context((60.0, b"{}"))
    reading = asyncio.create_task(ReadBody(1024, 30.0)(ctx))
    await asyncio.sleep(0.01)

    reading.cancel()

    with pytest.raises(asyncio.CancelledError):
        await reading
