"""A transport over an `httpx.AsyncClient`: the seam tests use with `httpx.MockTransport` or respx."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import httpx

from gateway.errors import UnansweredTimeout, UpstreamStreamBroken, UpstreamTimeout, UpstreamUnavailable
from gateway.upstream.transport import UpstreamRequest


class HttpxResponse:
    __slots__ = ("_response",)

    def __init__(self, response: httpx.Response) -> None:
        self._response = response

    @property
    def status(self) -> int:
        return self._response.status_code

    @property
    def headers(self) -> Sequence[tuple[bytes, bytes]]:
        return self._response.headers.raw

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.aiter_raw():
                yield chunk
        except httpx.TimeoutException:
            raise UpstreamTimeout("the upstream stopped sending within the read timeout") from None
        except httpx.HTTPError as exc:
            raise UpstreamStreamBroken(
                f"the upstream connection failed mid-response ({type(exc).__name__})"
            ) from None

    async def aclose(self) -> None:
        await self._response.aclose()


class HttpxTransport:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def send(self, request: UpstreamRequest) -> HttpxResponse:
        t = request.timeouts
        prepared = self._client.build_request(
            request.method,
            request.url,
            headers=request.headers,
            content=request.body,
            timeout=httpx.Timeout(t.total, connect=t.connect, read=t.read, pool=t.connect),
        )
        request.sent = True  # no earlier moment to tell (and a MockTransport, the tests', connects nothing)
        try:
            response = await self._client.send(prepared, stream=True, follow_redirects=False)
        except httpx.ReadTimeout:  # the request went, its answer did not come
            raise UnansweredTimeout("the upstream did not answer in time") from None
        except httpx.TimeoutException:  # connecting, waiting for a pooled connection, or sending
            raise UpstreamTimeout("the upstream could not be reached in time") from None
        except httpx.HTTPError as exc:
            raise UpstreamUnavailable(f"the upstream connection failed ({type(exc).__name__})") from None
        return HttpxResponse(response)

    async def aclose(self) -> None:
        await self._client.aclose()
