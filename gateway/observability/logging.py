"""Structured logging: one JSON object per line on standard output.

Records carry their structured fields in `extra={"fields": {...}}`. Nothing secret is ever put in
a record: keys appear only by id, credentials not at all, and query strings (which may hold a
Gemini `key=`) are never logged.
"""

from __future__ import annotations

import logging
import sys
import time
from decimal import Decimal
from typing import Any

import orjson

from gateway.context import RequestContext
from gateway.errors import GatewayError


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if fields:
            entry.update(fields)
        if record.exc_info and record.exc_info[0] is not None:
            entry["error"] = record.exc_info[0].__name__
            entry["traceback"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure_logging(level: str = "info") -> None:
    """Send every logger (ours, uvicorn's) to standard output as JSON lines."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    logging.getLogger("alembic").setLevel(logging.WARNING)


def _ms(start: float, end: float) -> float | None:
    return round((end - start) * 1000, 3) if start and end else None


class AccessLog:
    """Observer: one JSON line per proxied request; and one per request no provider's mount took
    (`unrouted`), in the same shape."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._logger = logger or logging.getLogger("tollgate.access")

    def observe(self, ctx: RequestContext) -> None:
        if not self._logger.isEnabledFor(logging.INFO):
            return
        principal = ctx.principal
        fields: dict[str, Any] = {
            "request_id": ctx.request_id,
            "tenant": principal.tenant_id if principal else None,
            "key_id": principal.key_id if principal else None,
            "provider": ctx.provider.name,
            "method": ctx.method,
            "path": ctx.path or None,
            "status": ctx.status,
            "streamed": ctx.streamed,
            "bytes_out": ctx.bytes_out,
            "upstream_ms": _ms(ctx.upstream_started, ctx.finished),
            "ttfb_ms": _ms(ctx.upstream_started, ctx.first_byte),
            "total_ms": _ms(ctx.started, ctx.finished),
        }
        if ctx.usage is not None:
            fields["input_tokens"] = ctx.usage.input_tokens
            fields["output_tokens"] = ctx.usage.output_tokens
            fields["cost_usd"] = None if ctx.cost_usd is None else _plain(ctx.cost_usd)
            if ctx.usage_estimated:
                fields["estimated"] = True
        if ctx.upstream_request_id is not None:
            fields["upstream_request_id"] = ctx.upstream_request_id
        if ctx.error is not None:
            fields["error"] = ctx.error.code
        if ctx.client_disconnected:
            fields["client_disconnected"] = True
        self._logger.info("request", extra={"fields": fields})

    def unrouted(self, request_id: str, method: str, path: str, error: GatewayError, started: float) -> None:
        """The line of a request refused before any pipeline saw it (no provider is mounted at `path`,
        which holds no query string)."""
        if not self._logger.isEnabledFor(logging.INFO):
            return
        fields: dict[str, Any] = {
            "request_id": request_id,
            "tenant": None,
            "key_id": None,
            "provider": None,
            "method": method,
            "path": path,
            "status": error.status,
            "streamed": False,
            "bytes_out": 0,
            "upstream_ms": None,
            "ttfb_ms": None,
            "total_ms": _ms(started, time.perf_counter()),
            "error": error.code,
        }
        self._logger.info("request", extra={"fields": fields})


def _plain(amount: Decimal) -> str:
    """`amount` in plain notation, as the ledger and the usage reports write it (`0.00000015`, where
    `str` writes a cost below a millionth of a dollar as `1.5E-7`); `str` first, as most costs need no
    more (~30 ns against `format`'s ~350 a request)."""
    text = str(amount)
    return format(amount, "f") if "E" in text else text
