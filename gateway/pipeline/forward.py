"""Forwarding: the caller's request, minus its Tollgate key, plus the tenant's credential.

The upstream host comes from configuration only; the caller chooses nothing but the path under the
provider's mount (normalised before this point) and the query string.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Protocol

from gateway.auth.extract import query_without_key
from gateway.context import RequestContext
from gateway.credentials.store import ResolvedCredential
from gateway.errors import UpstreamError
from gateway.http.headers import IDENTITY, upstream_headers
from gateway.settings.schema import Timeouts
from gateway.upstream.transport import Transport, UpstreamRequest, UpstreamResponse


class Forward(Protocol):
    """What sends a prepared request upstream and returns once the response head has arrived."""

    async def __call__(self, ctx: RequestContext) -> UpstreamResponse: ...


def headers_for_upstream(ctx: RequestContext, credential: ResolvedCredential | None) -> list[tuple[str, str]]:
    """The caller's headers that may travel upstream, the request id, a request for an uncompressed
    body, and the tenant's `credential`."""
    headers = upstream_headers(ctx.headers)
    headers.append(("x-request-id", ctx.request_id))
    headers.append(IDENTITY)
    if credential is not None:
        headers.append(ctx.provider.credential.header_for(credential.secret.reveal()))
    return headers


class Forwarder:
    def __init__(self, transports: Mapping[str, Transport], timeouts: Mapping[str, Timeouts]) -> None:
        self._transports = transports
        self._timeouts = timeouts

    def prepare(self, ctx: RequestContext) -> UpstreamRequest:
        adapter = ctx.provider
        ctx.upstream_url = adapter.upstream_url(ctx.path, query_without_key(ctx.query_string))
        return UpstreamRequest(
            ctx.method,
            ctx.upstream_url,
            headers_for_upstream(ctx, ctx.credential),
            ctx.body,
            self._timeouts[adapter.name],
        )

    async def __call__(self, ctx: RequestContext) -> UpstreamResponse:
        """The response, its head arrived. `ctx.upstream_started` stays set only for a call handed to an
        upstream connection: one cancelled before (its caller gone while the gateway waited for a pooled
        connection, or connected) is as one never started, which the meter does not bill.
        `ctx.upstream_status` is the status of the head, from its arrival: the meter reads it, not the
        caller's leaving, when the caller leaves before the relay begins (while a refusal of the stream
        usage metering asked for is read, see `metering.stream_usage`), so a call the provider refused is
        not billed. A call sent again after such a refusal has no answer until its own head arrives."""
        request = self.prepare(ctx)
        ctx.upstream_started = time.perf_counter()
        try:
            response = await self._transports[ctx.provider.name].send(request)
        except BaseException as error:  # costs nothing unless raised
            ctx.upstream_status = 0  # a resent call's: the refusal before it was not its answer
            if isinstance(error, asyncio.CancelledError) and not request.sent:
                ctx.upstream_started = 0.0
            raise
        ctx.upstream_responded = time.perf_counter()
        if not 200 <= response.status <= 599:  # not a final status the caller's HTTP server can send
            await response.aclose()
            raise UpstreamError(f"the upstream answered with an invalid status ({response.status})")
        ctx.upstream_status = response.status
        return response
