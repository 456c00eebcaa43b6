"""The one typed object each request carries through the pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson

from gateway.auth.keys import Principal
from gateway.credentials.store import ResolvedCredential
from gateway.errors import Dialect, GatewayError, InvalidJSON
from gateway.metering.usage import Endpoint, Extraction, TokenUsage, UsageExtractor
from gateway.providers.base import ProviderAdapter
from gateway.types import Receive

_UNPARSED: Any = object()


@dataclass(slots=True, eq=False)
class RequestContext:
    """What is known about one proxied request, filled in stage by stage."""

    request_id: str
    started: float
    method: str
    provider: ProviderAdapter
    raw_path: bytes
    query_string: bytes = field(repr=False)  # may hold the caller's key (`?key=`)
    headers: list[tuple[bytes, bytes]] = field(repr=False)  # hold the caller's key
    receive: Receive = field(repr=False)
    path: str = ""
    principal: Principal | None = None
    body: bytes = b""
    credential: ResolvedCredential | None = None
    upstream_url: str = ""
    status: int = 0
    upstream_status: int = 0  # the status the upstream answered with (0: no answer); `status` may differ
    upstream_request_id: str | None = None  # the provider's own `x-request-id`, when well-formed
    served_tier: str | None = None  # the processing tier a response header names (Gemini's), if any
    streamed: bool = False
    upstream_started: float = 0.0
    upstream_responded: float = 0.0
    first_byte: float = 0.0
    finished: float = 0.0
    bytes_out: int = 0
    error: GatewayError | None = None
    client_disconnected: bool = False
    response_complete: bool = False
    received_at: float = 0.0  # wall-clock time.time() at arrival, for records
    endpoint: Endpoint | None = None
    stream_usage_injected: bool = False
    body_before_injection: bytes = b""  # the caller's body, when metering changed it (stream_usage)
    tap: UsageExtractor | None = None  # what watched the response body; the meter reads it
    extraction: Extraction | None = None  # what `tap` found, once the meter has read it
    usage: TokenUsage | None = None
    usage_estimated: bool = False
    cost_usd: Decimal | None = None
    _json: Any = field(default=_UNPARSED, repr=False)

    @property
    def dialect(self) -> Dialect:
        return self.provider.dialect

    def json_body(self) -> Any:
        """The body parsed as JSON, once; None for an empty body, `InvalidJSON` for a malformed one."""
        if self._json is _UNPARSED:
            if not self.body:
                self._json = None
            else:
                try:
                    self._json = orjson.loads(self.body)
                except orjson.JSONDecodeError:
                    raise InvalidJSON("the request body is not valid JSON") from None
        return self._json

    def replace_body(self, body: bytes) -> None:
        """Send `body` upstream instead; it is parsed anew when asked."""
        self.body = body
        self._json = _UNPARSED

    def reported_model(self) -> str | None:
        """The model that answered as the provider reported it, else the one the request named."""
        if self.extraction is not None and self.extraction.model:
            return self.extraction.model
        try:
            return self.model()
        except InvalidJSON:
            return None

    def model(self) -> str | None:
        """The model the request names, in its path or its JSON body."""
        from_path = self.provider.model_from_path(self.path)
        if from_path is not None:
            return from_path
        if not self.body or self.method in ("GET", "HEAD", "DELETE"):
            return None
        payload = self.json_body()
        model = payload.get("model") if isinstance(payload, dict) else None
        return model if isinstance(model, str) else None
