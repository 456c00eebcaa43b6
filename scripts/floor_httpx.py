"""The httpx floor: a bare Starlette passthrough proxy, the least any Python gateway on httpx costs.

Forwards method, path, query, body and the Content-Type, Authorization and X-Fake-Chunks headers to
`$FLOOR_UPSTREAM` through one shared `httpx.AsyncClient` and streams the response back. Run with
`FLOOR_UPSTREAM=http://127.0.0.1:9001 uvicorn --app-dir scripts floor_httpx:app`.
"""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

UPSTREAM = os.environ.get("FLOOR_UPSTREAM", "http://127.0.0.1:9001")
FORWARDED_HEADERS = ("content-type", "authorization", "x-fake-chunks")  # the bench sets stream lengths
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=1000)
    async with httpx.AsyncClient(base_url=UPSTREAM, timeout=300.0, limits=limits) as client:
        app.state.client = client
        yield


async def proxy(request: Request) -> StreamingResponse:
    client: httpx.AsyncClient = request.app.state.client
    headers = {name: request.headers[name] for name in FORWARDED_HEADERS if name in request.headers}
    url = httpx.URL(path=request.url.path, query=request.url.query.encode())
    outgoing = client.build_request(request.method, url, headers=headers, content=await request.body())
    upstream = await client.send(outgoing, stream=True)

    async def relay() -> AsyncIterator[bytes]:
        try:
            async for chunk in upstream.aiter_raw():
                yield chunk
        finally:
            await upstream.aclose()

    return StreamingResponse(relay(), upstream.status_code, media_type=upstream.headers.get("content-type"))


app = Starlette(routes=[Route("/{path:path}", proxy, methods=METHODS)], lifespan=lifespan)
