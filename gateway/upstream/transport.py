"""The transport seam: how a prepared request reaches an upstream and its response streams back.

Production uses `AiohttpTransport` (chosen by measurement, see README "Performance"); unit tests
hand in `HttpxTransport` over an `httpx.MockTransport` or respx. Implementations translate their
library's exceptions into `UpstreamUnavailable`, `UpstreamTimeout` and `UpstreamStreamBroken`, and set
`UpstreamRequest.sent` once the request is handed to a connection: a call cancelled before then (its
caller gone while the gateway waited for a connection, or connected) never reached the provider.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from gateway.providers.base import ProviderAdapter
from gateway.settings.schema import ProviderSettings, Timeouts


@dataclass(slots=True)
class UpstreamRequest:
    method: str
    url: str
    headers: list[tuple[str, str]] = field(repr=False)  # hold the tenant's decrypted credential
    body: bytes
    timeouts: Timeouts
    sent: bool = field(default=False, compare=False)  # handed to a connection (set by the transport)


class UpstreamResponse(Protocol):
    @property
    def status(self) -> int: ...

    @property
    def headers(self) -> Sequence[tuple[bytes, bytes]]: ...

    def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives, chunk by chunk, never re-buffered."""
        ...

    async def aclose(self) -> None:
        """Release the connection (back to the pool if the body was read to the end)."""
        ...


class Transport(Protocol):
    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        """Send the request and return once the response head has arrived; redirects are not followed."""
        ...

    async def aclose(self) -> None: ...


TransportFactory = Callable[[ProviderAdapter, ProviderSettings], Transport]
