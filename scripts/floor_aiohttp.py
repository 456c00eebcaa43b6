"""The aiohttp floor: a bare Starlette passthrough proxy, the least any Python gateway on aiohttp costs.

Forwards method, path, query, body and the Content-Type, Authorization and X-Fake-Chunks headers to
`$FLOOR_UPSTREAM` through one shared `aiohttp.ClientSession` and streams the response back. Run with
`FLOOR_UPSTREAM=http://127.0.0.1:9001 uvicorn --app-dir scripts floor_aiohttp:app`.
"""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

UPSTREAM = os.environ.get("FLOOR_UPSTREAM", "http://127.0.0.1:9001")
FORWARDED_HEADERS = ("content-type", "authorization", "x-fake-chunks")  # the bench sets stream lengths
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    connector = aiohttp.TCPConnector(limit=1000)
    timeout = aiohttp.ClientTimeout(total=300.0)
    async with aiohttp.ClientSession(connector=connector, auto_decompress=False, timeout=timeout) as session:
        app.state.session = session
        yield


async def proxy(request: Request) -> StreamingResponse:
    session: aiohttp.ClientSession = request.app.state.session
    headers = {name: request.headers[name] for name in FORWARDED_HEADERS if name in request.headers}
    query = f"?{request.url.query}" if request.url.query else ""
    upstream = await session.request(
        request.method, f"{UPSTREAM}{request.url.path}{query}", headers=headers, data=await request.body()
    )

    async def relay() -> AsyncIterator[bytes]:
        try:
            async for chunk in upstream.content.iter_any():
                yield chunk
        finally:
            upstream.release()

    return StreamingResponse(relay(), upstream.status, media_type=upstream.headers.get("content-type"))


app = Starlette(routes=[Route("/{path:path}", proxy, methods=METHODS)], lifespan=lifespan)
