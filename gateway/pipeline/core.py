"""The pipeline: the stage and observer protocols, and the handler that runs them per request.

The order of stages is declared once, in `gateway.pipeline.builder.build_pipeline`.

Stages raise `GatewayError` to refuse a request; the handler renders the refusal in the caller's
dialect. Observers (meter, metrics, access log; audit later) see every outcome, refusals and failures
included, in batches once the responses have gone (see `gateway.pipeline.observers`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Protocol

from gateway.context import RequestContext
from gateway.errors import GatewayError, MethodNotAllowed, render_error
from gateway.http.body import ClientGone
from gateway.http.headers import request_id
from gateway.http.paths import normalize
from gateway.pipeline.forward import Forward
from gateway.pipeline.observers import ObserverBatch
from gateway.pipeline.relay import ResponseCut, TapFactory, relay
from gateway.providers.base import ProviderAdapter
from gateway.types import Receive, Scope, Send

CLIENT_CLOSED = 499
# The methods the providers' APIs use, and OPTIONS and HEAD; any other (TRACE, which a server may answer
# by echoing the request, the tenant's credential in it, as a success) is never sent upstream.
PROXIED_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
logger = logging.getLogger("tollgate.proxy")


class Stage(Protocol):
    async def __call__(self, ctx: RequestContext) -> None: ...


@dataclass(frozen=True, slots=True)
class Pipeline:
    stages: tuple[Stage, ...]
    forwarder: Forward
    observers: ObserverBatch
    open_tap: TapFactory | None = None

    async def handle(
        self, adapter: ProviderAdapter, rest: bytes, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """Serve one request for `adapter`'s mount; `rest` is the raw path below the mount."""
        ctx = _new_context(adapter, rest, scope, receive)
        task = asyncio.current_task()
        assert task is not None
        watcher: asyncio.Task[None] | None = None
        try:
            try:
                ctx.path = normalize(rest)
                if ctx.method not in PROXIED_METHODS:
                    raise MethodNotAllowed(f"{ctx.method} is not proxied", PROXIED_METHODS)
                for stage in self.stages:
                    await stage(ctx)
                watcher = asyncio.create_task(_cancel_on_disconnect(ctx, receive, task))
                response = await self.forwarder(ctx)
            except GatewayError as error:
                await _send_error(ctx, error, send)
                return
            await relay(ctx, response, send, self.open_tap)
        except ResponseCut:
            pass
        except ClientGone:
            ctx.client_disconnected = True
            ctx.status = CLIENT_CLOSED
        except asyncio.CancelledError:
            if not ctx.client_disconnected:
                raise
            task.uncancel()
            ctx.status = CLIENT_CLOSED
        except Exception:
            logger.exception(
                "unexpected error while proxying", extra={"fields": {"request_id": ctx.request_id}}
            )
            if ctx.status == 0:
                await _send_error(ctx, GatewayError("internal gateway error"), send)
        finally:
            if watcher is not None:
                watcher.cancel()
            ctx.finished = time.perf_counter()
            self.observers.add(ctx)


def _new_context(adapter: ProviderAdapter, rest: bytes, scope: Scope, receive: Receive) -> RequestContext:
    headers: list[tuple[bytes, bytes]] = scope["headers"]
    return RequestContext(
        request_id=request_id(headers),
        started=time.perf_counter(),
        received_at=time.time(),
        method=scope["method"],
        provider=adapter,
        raw_path=rest,
        query_string=scope.get("query_string", b""),
        headers=headers,
        receive=receive,
    )


async def _cancel_on_disconnect(ctx: RequestContext, receive: Receive, task: asyncio.Task[None]) -> None:
    """Cancel the request's task if the caller goes away before the response is complete."""
    while (await receive())["type"] != "http.disconnect":
        pass
    if not ctx.response_complete:
        ctx.client_disconnected = True
        task.cancel()


async def _send_error(ctx: RequestContext, error: GatewayError, send: Send) -> None:
    ctx.error = error
    ctx.status = error.status
    body = render_error(error, ctx.dialect)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-request-id", ctx.request_id.encode()),
    ]
    if error.closes_connection:
        headers.append((b"connection", b"close"))  # uvicorn then closes it after the body
    headers += error.headers
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    ctx.response_complete = True
    await send({"type": "http.response.body", "body": body, "more_body": False})
