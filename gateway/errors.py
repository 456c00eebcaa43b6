"""The exception tree of the gateway and its rendering in each caller's API dialect.

Every error a caller can see is a `GatewayError` subclass carrying its HTTP status and a stable
machine-readable code. `render_error` turns one into the JSON error body of the API the caller
speaks (OpenAI, Anthropic or Gemini), so an SDK surfaces it like a provider error. Foreign
exceptions (aiohttp, SQLAlchemy, ...) are translated into this tree where they enter.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

import orjson


class Dialect(StrEnum):
    """The error and event format a caller's SDK understands."""

    OPENAI = "openai"
    ANTHROPIC = "anthropic"
    GEMINI = "gemini"


class GatewayError(Exception):
    """Base of every error the gateway answers with."""

    status: int = 500
    code: str = "internal_error"
    closes_connection: bool = False  # the answer ends the connection (`connection: close`)
    headers: tuple[tuple[bytes, bytes], ...] = ()  # sent with the answer, besides the usual ones

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(GatewayError):
    status = 400
    code = "bad_request"


class InvalidPath(BadRequest):
    code = "invalid_path"


class InvalidJSON(BadRequest):
    code = "invalid_json"


class AuthError(GatewayError):
    status = 401
    code = "invalid_api_key"


class MissingKey(AuthError):
    code = "missing_api_key"


class PermissionDenied(GatewayError):
    status = 403
    code = "permission_denied"


class ProviderNotAllowed(PermissionDenied):
    code = "provider_not_allowed"


class ModelNotAllowed(PermissionDenied):
    code = "model_not_allowed"


class NoCredential(PermissionDenied):
    code = "no_provider_credential"


class NotFound(GatewayError):
    status = 404
    code = "not_found"


class MethodNotAllowed(GatewayError):
    status = 405
    code = "method_not_allowed"

    def __init__(self, message: str, allowed: Iterable[str] = ()) -> None:
        super().__init__(message)
        if allowed:
            self.headers = ((b"allow", ", ".join(allowed).encode("ascii")),)


class RequestTimeout(GatewayError):
    """The caller stopped sending its request body. The connection is closed with the answer (RFC 9110
    15.5.9): the rest of the body may still come, and kept open it would wait for it until keep-alive
    ran out."""

    status = 408
    code = "request_timeout"
    closes_connection = True


class HeadTimeout(RequestTimeout):
    """The request's head (its line and headers) did not arrive in time."""

    code = "request_head_timeout"


class RequestTooLarge(GatewayError):
    status = 413
    code = "request_too_large"


class UnsupportedMediaType(GatewayError):
    """A request body the gateway must read (for its model) in a form it does not read (not JSON)."""

    status = 415
    code = "unsupported_media_type"


class UnsupportedContentEncoding(UnsupportedMediaType):
    """A compressed request body the gateway must read, which it does not decompress."""

    code = "unsupported_content_encoding"
    headers = ((b"accept-encoding", b"identity"),)


class HeadTooLarge(GatewayError):
    """The request's head (its line and headers) is longer than the bound."""

    status = 431
    code = "request_head_too_large"
    closes_connection = True


class WebSocketsNotSupported(GatewayError):
    """A WebSocket upgrade (OpenAI Realtime): the gateway proxies HTTP APIs only."""

    status = 501
    code = "websockets_not_supported"


class ServiceUnavailable(GatewayError):
    status = 503
    code = "service_unavailable"


class UpstreamError(GatewayError):
    status = 502
    code = "upstream_error"


class UpstreamUnavailable(UpstreamError):
    status = 502
    code = "upstream_unavailable"


class UpstreamTimeout(UpstreamError):
    """The upstream could not be reached, or stopped sending, in time."""

    status = 504
    code = "upstream_timeout"


class UnansweredTimeout(UpstreamTimeout):
    """The request was sent and no answer came in time: the provider may be working on it."""


class UpstreamStreamBroken(UpstreamError):
    """The upstream failed after the response had started."""

    code = "upstream_stream_broken"


_OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    408: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    429: "rate_limit_error",
    431: "invalid_request_error",
}
_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    408: "invalid_request_error",
    413: "request_too_large",
    415: "invalid_request_error",
    429: "rate_limit_error",
    431: "invalid_request_error",
    503: "overloaded_error",
    504: "timeout_error",
}
_GEMINI_STATUSES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "INVALID_ARGUMENT",
    408: "DEADLINE_EXCEEDED",
    413: "INVALID_ARGUMENT",
    415: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    431: "INVALID_ARGUMENT",
    501: "UNIMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def error_payload(error: GatewayError, dialect: Dialect) -> dict[str, object]:
    """The error object as the caller's provider would have written it."""
    if dialect is Dialect.ANTHROPIC:
        kind = _ANTHROPIC_TYPES.get(error.status, "api_error")
        return {"type": "error", "error": {"type": kind, "message": error.message}}
    if dialect is Dialect.GEMINI:
        status = _GEMINI_STATUSES.get(error.status, "INTERNAL")
        return {"error": {"code": error.status, "message": error.message, "status": status}}
    kind = _OPENAI_TYPES.get(error.status, "api_error")
    return {"error": {"message": error.message, "type": kind, "param": None, "code": error.code}}


def render_error(error: GatewayError, dialect: Dialect) -> bytes:
    """The JSON body of an error response in the caller's dialect."""
    return orjson.dumps(error_payload(error, dialect))


def render_stream_error(error: GatewayError, dialect: Dialect) -> bytes:
    """An error as one well-formed server-sent event, for a stream that has already started."""
    data = orjson.dumps(error_payload(error, dialect))
    if dialect is Dialect.ANTHROPIC:
        return b"event: error\ndata: " + data + b"\n\n"
    return b"data: " + data + b"\n\n"
