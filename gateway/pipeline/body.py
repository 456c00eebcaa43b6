"""Stage: read the request body, up to the configured cap, once authentication has passed."""

from __future__ import annotations

from gateway.context import RequestContext
from gateway.http.body import declared_length, read_body


class ReadBody:
    def __init__(self, limit: int) -> None:
        self._limit = limit

    async def __call__(self, ctx: RequestContext) -> None:
        ctx.body = await read_body(ctx.receive, self._limit, declared_length(ctx.headers))
