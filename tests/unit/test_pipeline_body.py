"""gateway.pipeline.body: the body is read whole, each part within the configured wait."""

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


def context(*parts: bytes, ends: bool = False) -> RequestContext:
    """A request whose body comes as `parts`, then ends (`ends`) or never does."""
    messages = [{"type": "http.request", "body": part, "more_body": True} for part in parts]
    if ends:
        messages[-1]["more_body"] = False

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    return RequestContext("rid", 1.0, "POST", ADAPTER, b"/v1/chat/completions", b"", [], receive)


async def test_a_body_that_stops_arriving_is_refused_with_408() -> None:
    ctx = context(b'{"model": ', b'"gpt-4o-mini"')

    with pytest.raises(RequestTimeout) as refused:
        await ReadBody(1024, 0.05)(ctx)

    assert refused.value.status == 408
    assert refused.value.message == "the request body stopped arriving: nothing came for 0.05 s"


async def test_a_body_that_arrives_is_read_whole() -> None:
    ctx = context(b'{"model": ', b'"gpt-4o-mini"}', ends=True)

    await ReadBody(1024, 0.05)(ctx)

    assert ctx.body == b'{"model": "gpt-4o-mini"}'
