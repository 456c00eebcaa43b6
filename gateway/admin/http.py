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
from typing import TypeVar
from urllib.parse import urlencode

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
    parse_whole,
)
from gateway.storage.errors import StorageError
from gateway.storage.usage import (
    MAX_OFFSET,
    MAX_SNAPSHOT,
    Dimension,
    SumOverflow,
    UsageFilter,
    UsagePage,
    UsageRepository,
)

MAX_LIMIT = 10_000
ANY_METHOD = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
DEFAULT_LIMIT = 1000
_FILTERS = ("tenant", "team", "user", "key", "model", "provider")
_PARAMETERS = ("by", "since", "until", "snapshot", "limit", "offset", *_FILTERS)
T = TypeVar("T")


_READ_METHODS = ("GET", "HEAD")


def _error(error: GatewayError) -> Response:
    return Response(
        render_error(error, Dialect.OPENAI),
        status_code=error.status,
        media_type="application/json",
        headers={name.decode(): value.decode() for name, value in error.headers},
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
            if request.method not in _READ_METHODS:
                raise MethodNotAllowed(
                    f"{request.method} is not allowed on /admin/usage; use GET", _READ_METHODS
                )
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
        document = page_as_json(group_by, filters, page)
        document["next"] = _next_page(request, group_by, filters, limit, page)
        return Response(json_bytes(document), media_type="application/json")


def _usage_query(request: Request) -> tuple[tuple[Dimension, ...], UsageFilter, int, int]:
    """`?by=model,day&since=7d&until=...&snapshot=...&tenant=...&limit=100&offset=0`, checked: a 400
    names the parameter at fault."""
    query = request.query_params
    unknown = sorted(set(query) - set(_PARAMETERS))
    if unknown:
        raise BadRequest(f"unknown query parameter(s): {', '.join(unknown)}")
    for name in _PARAMETERS:
        if len(query.getlist(name)) > 1:
            raise BadRequest(f"{name}: given more than once; a report takes one value of each parameter")
    now = datetime.now(UTC)  # until's default, and what spans count back from
    group_by = _parsed("by", parse_dimensions, query.get("by", "tenant"))
    since = _parsed("since", lambda text: _instant(text, now), query.get("since", DEFAULT_SINCE))
    until = _parsed("until", lambda text: _instant(text, now), query["until"]) if "until" in query else now
    if since >= until:
        raise BadRequest("since must be before until" + ("" if "until" in query else " (now)"))
    limit = _parsed(
        "limit", lambda text: parse_whole(text, 1, MAX_LIMIT), query.get("limit", str(DEFAULT_LIMIT))
    )
    offset = _parsed("offset", lambda text: parse_whole(text, 0, MAX_OFFSET), query.get("offset", "0"))
    snapshot = (
        _parsed("snapshot", lambda text: parse_whole(text, 0, MAX_SNAPSHOT), query["snapshot"])
        if "snapshot" in query
        else None
    )
    try:
        filters = UsageFilter(
            since,
            until,
            tenant=query.get("tenant"),
            team=query.get("team"),
            user=query.get("user"),
            key=query.get("key"),
            model=query.get("model"),
            provider=query.get("provider"),
            snapshot=snapshot,
        )
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    return group_by, filters, limit, offset


def _instant(text: str, now: datetime) -> datetime:
    """`parse_instant`, saying what became of a zone's `+` written bare in the query string."""
    try:
        return parse_instant(text, now)
    except ValueError as exc:
        if " " not in text:
            raise
        raise ValueError(f"{exc} (in a query string a + stands for a space: write it %2B)") from None


def _next_page(
    request: Request, group_by: tuple[Dimension, ...], filters: UsageFilter, limit: int, page: UsagePage
) -> str | None:
    """The link to the page after this one, over the same absolute [since, until) and at the same
    ledger position (`snapshot`): the ledger keeps growing, with records of calls made before until
    too (written when they end), and a span or a missing until read again would select others."""
    if page.next_offset is None:
        return None
    assert filters.since is not None and filters.until is not None
    query = {
        "by": ",".join(dimension.value for dimension in group_by),
        "since": filters.since.isoformat(),
        "until": filters.until.isoformat(),
        "snapshot": str(page.snapshot),
        **{name: request.query_params[name] for name in _FILTERS if name in request.query_params},
        "limit": str(limit),
        "offset": str(page.next_offset),
    }
    return f"{request.url.path}?{urlencode(query)}"


def _parsed(name: str, parse: Callable[[str], T], text: str) -> T:
    try:
        return parse(text)
    except ValueError as exc:
        raise BadRequest(f"{name}: {exc}") from None
