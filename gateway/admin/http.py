"""The admin HTTP API under /admin/: closed unless an admin token digest is configured.

It answers only to `Authorization: Bearer <admin token>` whose SHA-256 matches `admin.token_sha256`
(compared in constant time). Without a configured digest every /admin/ path is 404. A Tollgate key
is never an admin credential: presented here it gets 403, so a tenant's key can read no tenant's
usage. (The full admin API with OIDC and roles comes later.)
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from gateway.auth.keys import KEY_PREFIX
from gateway.errors import (
    AuthError,
    BadRequest,
    Dialect,
    GatewayError,
    MethodNotAllowed,
    NotFound,
    PermissionDenied,
    render_error,
)
from gateway.errors import ServiceUnavailable as Unavailable
from gateway.metering.report import (
    DEFAULT_SINCE,
    json_bytes,
    page_as_json,
    parse_dimensions,
    parse_instant,
)
from gateway.storage.errors import StorageError
from gateway.storage.usage import MAX_OFFSET, Dimension, SumOverflow, UsageFilter, UsageRepository

MAX_LIMIT = 10_000
ANY_METHOD = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
DEFAULT_LIMIT = 1000
_FILTERS = ("tenant", "team", "user", "key", "model", "provider")


def _error(error: GatewayError) -> Response:
    return Response(
        render_error(error, Dialect.OPENAI), status_code=error.status, media_type="application/json"
    )


class AdminAPI:
    def __init__(self, token_sha256: str | None, engine: Callable[[], AsyncEngine | None]) -> None:
        self._digest = bytes.fromhex(token_sha256) if token_sha256 else None
        self._engine = engine

    def routes(self) -> list[BaseRoute]:
        # Every method reaches the handlers, so that a closed API is 404 to all of them and an open one
        # asks for the token before it says which methods a path takes.
        return [
            Mount(
                "/admin",
                routes=[
                    Route("/usage", self._usage, methods=ANY_METHOD),
                    Route("/{path:path}", self._unknown, methods=ANY_METHOD),
                ],
            )
        ]

    def _authorize(self, request: Request) -> None:
        if self._digest is None:
            raise NotFound("not found")
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise AuthError("the admin API needs Authorization: Bearer <admin token>")
        if token.startswith(KEY_PREFIX):
            raise PermissionDenied("a Tollgate key cannot use the admin API")
        if not hmac.compare_digest(hashlib.sha256(token.encode()).digest(), self._digest):
            raise AuthError("invalid admin token")

    async def _unknown(self, request: Request) -> Response:
        try:
            self._authorize(request)
        except GatewayError as error:
            return _error(error)
        return _error(NotFound(f"no admin endpoint {request.url.path}"))

    async def _usage(self, request: Request) -> Response:
        try:
            self._authorize(request)
            if request.method not in ("GET", "HEAD"):
                raise MethodNotAllowed(f"{request.method} is not allowed on /admin/usage; use GET")
            group_by, filters, limit, offset = _usage_query(request)
            engine = self._engine()
            if engine is None:
                raise Unavailable("the gateway is starting or stopping")
            try:
                page = await UsageRepository(engine).aggregate(group_by, filters, limit, offset)
            except SumOverflow as exc:  # the ledger is up: trying again would not help
                raise GatewayError(str(exc)) from None
            except StorageError:
                raise Unavailable("the usage ledger is unavailable; try again shortly") from None
        except GatewayError as error:
            return _error(error)
        return Response(json_bytes(page_as_json(group_by, filters, page)), media_type="application/json")


def _usage_query(request: Request) -> tuple[tuple[Dimension, ...], UsageFilter, int, int]:
    """`?by=model,day&since=7d&until=...&tenant=...&limit=100&offset=0`, checked."""
    query = request.query_params
    now = datetime.now(UTC)
    try:
        group_by = parse_dimensions(query.get("by", "tenant"))
        since = parse_instant(query.get("since", DEFAULT_SINCE), now)
        until = parse_instant(query["until"], now) if "until" in query else None
        limit = int(query.get("limit", DEFAULT_LIMIT))
        offset = int(query.get("offset", 0))
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    if until is not None and since >= until:
        raise BadRequest("since must be before until")
    if not 1 <= limit <= MAX_LIMIT or not 0 <= offset <= MAX_OFFSET:
        raise BadRequest(f"limit must be 1..{MAX_LIMIT} and offset 0..{MAX_OFFSET}")
    unknown = sorted(set(query) - {"by", "since", "until", "limit", "offset", *_FILTERS})
    if unknown:
        raise BadRequest(f"unknown query parameter(s): {', '.join(unknown)}")
    try:
        filters = UsageFilter(since, until, *(query.get(name) for name in _FILTERS))
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    return group_by, filters, limit, offset
