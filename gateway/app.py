"""`create_app(settings)`: the ASGI application.

Requests under a provider's mount (`/<provider>/...`) go straight to the proxy pipeline; everything
else (`/healthz`, `/readyz`, later `/admin` and `/metrics`) is served by a small Starlette app. A
WebSocket upgrade (OpenAI Realtime) is refused with 501 and an error body saying why: WebSocket APIs are
not proxied. The
lifespan opens the database, checks the schema and the master key, and builds the pipeline; nothing
happens at import time.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from urllib.parse import quote

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from gateway.admin.http import AdminAPI
from gateway.auth.keys import KeyAuthenticator
from gateway.credentials.crypto import load_master_key
from gateway.credentials.store import CredentialStore, verify_master_key
from gateway.errors import Dialect, MethodNotAllowed, NotFound, WebSocketsNotSupported, render_error
from gateway.http.headers import request_id
from gateway.http.paths import split_mount
from gateway.metering.background import BackgroundResponses
from gateway.metering.ledger import UsageLedger
from gateway.metering.meter import Meter
from gateway.metering.prices import load_price_table
from gateway.observability.logging import AccessLog
from gateway.observability.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from gateway.observability.metrics import GatewayMetrics, RequestMetrics
from gateway.observability.workers import PUBLISH_INTERVAL_SECONDS, worker_directory
from gateway.pipeline import Pipeline
from gateway.pipeline.builder import Services, build_pipeline
from gateway.providers import ProviderAdapter, build_adapters
from gateway.settings.schema import Settings
from gateway.storage.engine import create_engine
from gateway.storage.migrate import current_revision, head_revision, is_known_revision
from gateway.storage.repositories import CredentialRepository, KeyRepository, KeyringRepository
from gateway.storage.usage import UsageRepository
from gateway.types import Receive, Scope, Send
from gateway.upstream.aiohttp_transport import aiohttp_transport
from gateway.upstream.transport import Transport, TransportFactory

logger = logging.getLogger("tollgate")
READINESS_TIMEOUT = 2.0


class SchemaOutOfDate(RuntimeError):
    """The database is not at the schema revision this version expects."""


@dataclass(slots=True)
class Runtime:
    """What the lifespan opens and the request path uses."""

    engine: AsyncEngine
    pipeline: Pipeline
    transports: Mapping[str, Transport]
    ledger: UsageLedger | None


async def check_schema(engine: AsyncEngine) -> None:
    current, head = await current_revision(engine), head_revision()
    if current != head:
        remedy = (
            "run `tollgate db upgrade`"
            if current is None or is_known_revision(current)
            else "a later Tollgate upgraded it: run that version or a newer one"
        )
        raise SchemaOutOfDate(
            f"the database schema is at revision {current or 'none'}, this version needs {head}: {remedy}"
        )


class Gateway:
    """The ASGI application: the proxy for provider mounts, Starlette for the rest."""

    def __init__(
        self,
        settings: Settings,
        transport_factory: TransportFactory = aiohttp_transport,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self._adapters: Mapping[str, ProviderAdapter] = build_adapters(settings.providers)
        self._transport_factory = transport_factory
        self._environ = os.environ if environ is None else environ
        self.prices = load_price_table(settings.metering.prices_file)
        self.metrics = GatewayMetrics(worker_directory(self._environ) if settings.metrics.enabled else None)
        self.runtime: Runtime | None = None
        self._access_log = AccessLog() if settings.logging.access_log else None
        self._publish_failing = False
        self._probes: set[asyncio.Task[None]] = set()  # readiness probes cut short, still cleaning up
        routes: list[BaseRoute] = [Route("/healthz", self._healthz), Route("/readyz", self._readyz)]
        if settings.metrics.enabled:
            routes.append(Route("/metrics", self._metrics))
        routes += AdminAPI(settings.admin.token_sha256, self._engine).routes()
        # A path no route takes is a mount that does not exist (404, whatever the method); a method a
        # route does not take is 405 (`/healthz` is no missing provider). Both OpenAI-style JSON.
        self._web = Starlette(
            routes=routes, lifespan=self._lifespan, exception_handlers={405: _method_not_allowed}
        )
        self._web.router.default = self._unrouted
        self._web.router.redirect_slashes = False  # `/healthz/` is 404 too, as it was: no Location from Host

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.runtime is not None:
            name, rest = split_mount(_raw_path(scope))
            adapter = self._adapters.get(name)
            if adapter is not None:
                await self.runtime.pipeline.handle(adapter, rest, scope, receive, send)
                return
        if scope["type"] == "websocket":
            await self._refuse_websocket(scope, receive, send)
            return
        await self._web(scope, receive, send)

    async def _refuse_websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer an upgrade with an HTTP error in the dialect of the mount it addressed (the server's
        `websocket.http.response` extension, which uvicorn has), else accept it and close it (1008) with
        the reason."""
        adapter = self._adapters.get(split_mount(_raw_path(scope))[0])
        error = WebSocketsNotSupported(
            "Tollgate does not proxy WebSocket APIs (such as OpenAI Realtime): "
            "use the provider's HTTP APIs through it"
        )
        await receive()  # websocket.connect
        if "websocket.http.response" not in scope.get("extensions", {}):  # a close before the accept
            await send({"type": "websocket.accept"})  # would be a bare 403: accepted, to say why
            await send({"type": "websocket.close", "code": 1008, "reason": "WebSocket APIs are not proxied"})
            return
        body = render_error(error, adapter.dialect if adapter is not None else Dialect.OPENAI)
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "websocket.http.response.start", "status": error.status, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body, "more_body": False})

    @asynccontextmanager
    async def _lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        settings = self.settings
        engine = create_engine(settings.database.url, settings.database.pool_size)
        transports: dict[str, Transport] = {}
        ledger: UsageLedger | None = None
        background: BackgroundResponses | None = None
        publisher: asyncio.Task[None] | None = None
        try:
            await check_schema(engine)
            master = load_master_key(settings.master_key.env, settings.master_key.file, self._environ)
            await verify_master_key(KeyringRepository(engine), master)
            for name, provider in settings.providers.items():
                transports[name] = self._transport_factory(self._adapters[name], provider)
            ledger = self._open_ledger(engine)
            metrics = (
                RequestMetrics(self.metrics, self.prices.model_label) if settings.metrics.enabled else None
            )
            credentials = CredentialStore(
                CredentialRepository(engine),
                master,
                settings.credentials.cache_ttl_seconds,
                settings.credentials.cache_size,
                stale_if_error=settings.credentials.stale_if_error_seconds,
                on_stale=partial(self.metrics.count_stale, "credentials"),
            )
            background = self._follower(transports, credentials, metrics) if ledger is not None else None
            services = Services(
                authenticator=KeyAuthenticator(
                    KeyRepository(engine),
                    settings.auth.key_cache_ttl_seconds,
                    settings.auth.key_cache_size,
                    stale_if_error=settings.auth.stale_if_error_seconds,
                    on_stale=partial(self.metrics.count_stale, "keys"),
                ),
                credentials=credentials,
                transports=transports,
                meter=Meter(self.prices, ledger, background) if ledger is not None else None,
                metrics=metrics,
            )
            self.runtime = Runtime(engine, build_pipeline(settings, services), transports, ledger)
            # Everything built so far lives as long as the process: keep it out of the collector's
            # full passes, which otherwise re-walk every module, model and table on the hot path.
            gc.freeze()
            # Each request allocates a few hundred short-lived objects, so the default threshold (700)
            # runs a young collection every few requests; at 20,000 the bench's chat case gained 7-9%
            # throughput, metering on or off, for a young generation of a few megabytes at most.
            gc.set_threshold(20_000, 10, 10)
            if self.metrics.workers is not None:
                publisher = asyncio.create_task(self._publish_metrics(), name="tollgate-metrics-publisher")
            logger.info(
                "gateway ready",
                extra={"fields": {"providers": sorted(self._adapters), "master_key_id": master.id}},
            )
            yield
        finally:
            runtime, self.runtime = self.runtime, None
            if runtime is not None:  # the requests that finished last are metered and logged too
                runtime.pipeline.observers.close()
            if background is not None:  # the calls of background responses still running, estimated
                await background.close()
            if ledger is not None:
                await ledger.close(settings.metering.shutdown_grace_seconds)
            if publisher is not None:  # the last word: what this worker counted, drops included
                publisher.cancel()
                self._publish_metrics_once()
            for transport in transports.values():
                await transport.aclose()
            await engine.dispose()

    def _follower(
        self,
        transports: Mapping[str, Transport],
        credentials: CredentialStore,
        metrics: RequestMetrics | None,
    ) -> BackgroundResponses | None:
        metering = self.settings.metering
        if not metering.follow_background_responses:
            return None
        background = BackgroundResponses(
            transports,
            {name: provider.timeouts for name, provider in self.settings.providers.items()},
            credentials.resolve,
            max_wait=metering.background_max_wait_seconds,
            max_pending=metering.background_max_pending,
            on_settled=[metrics.count_usage] if metrics is not None else [],
        )
        self.metrics.background_followed.set_function(background.__len__)
        return background

    def _open_ledger(self, engine: AsyncEngine) -> UsageLedger | None:
        metering = self.settings.metering
        if not metering.enabled:
            return None
        ledger = UsageLedger(
            UsageRepository(engine),
            capacity=metering.queue_size,
            batch_size=metering.batch_size,
            flush_interval=metering.flush_interval_seconds,
            retry_max=metering.retry_max_seconds,
            on_drop=self.metrics.count_dropped,
        )
        self.metrics.ledger_depth.set_function(lambda: ledger.depth)
        ledger.start()
        return ledger

    async def _publish_metrics(self) -> None:
        """Share this worker's tallies with the other workers' scrapes, every interval."""
        while True:
            await asyncio.sleep(PUBLISH_INTERVAL_SECONDS)
            self._publish_metrics_once()

    def _publish_metrics_once(self) -> None:
        if self.runtime is not None:
            self.runtime.pipeline.observers.flush()
        try:
            self.metrics.publish()
        except OSError as exc:  # a full or vanished directory: the other workers' scrapes miss ours
            if not self._publish_failing:
                logger.warning("publishing metrics failed", extra={"fields": {"error": str(exc)}})
            self._publish_failing = True
        else:
            self._publish_failing = False

    async def _metrics(self, _request: Request) -> Response:
        if self.runtime is not None:  # count every request that has finished
            self.runtime.pipeline.observers.flush()
        return Response(self.metrics.exposition(), media_type=METRICS_CONTENT_TYPE)

    def _engine(self) -> AsyncEngine | None:
        return self.runtime.engine if self.runtime is not None else None

    async def _healthz(self, _request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def _readyz(self, _request: Request) -> Response:
        runtime = self.runtime
        checks = {"config": "ok", "database": "unavailable"}
        if runtime is not None:
            error = await self._database_error(runtime.engine)
            if error is None:
                checks["database"] = "ok"
            else:  # any failure means not ready; the reason goes to the log
                logger.warning("readiness check failed", extra={"fields": {"error": error}})
        ready = all(value == "ok" for value in checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "checks": checks}, status_code=200 if ready else 503
        )

    async def _database_error(self, engine: AsyncEngine) -> str | None:
        """None when the database answers `SELECT 1` within `READINESS_TIMEOUT`, else the error's name.

        The query runs in a task of its own that is left to clean up after the answer: cancelled, it
        still closes its connection, which a hung server makes wait (`storage.engine.CLOSE_TIMEOUT`)."""
        probe = asyncio.ensure_future(_select_one(engine))
        self._probes.add(probe)
        probe.add_done_callback(self._probe_settled)
        await asyncio.wait({probe}, timeout=READINESS_TIMEOUT)
        if not probe.done():
            probe.cancel()
            return "TimeoutError"
        error = probe.exception()
        return None if error is None else type(error).__name__

    def _probe_settled(self, probe: asyncio.Task[None]) -> None:
        self._probes.discard(probe)
        if not probe.cancelled():
            probe.exception()  # retrieved: a probe cut short may still fail as it cleans up

    async def _unrouted(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self._not_found(Request(scope, receive))
        await response(scope, receive, send)

    async def _not_found(self, request: Request) -> Response:
        """404 for a path under no provider's mount, in the dialect its SDK's headers name, with a request id,
        and logged as a refused request."""
        started = time.perf_counter()
        path = _raw_path(request.scope)
        error = NotFound(
            f"no provider is mounted at {split_mount(path)[0]!r}; "
            f"mounted: {', '.join(sorted(self._adapters)) or 'none'}"
        )
        headers = request.scope["headers"]
        identifier = request_id(headers)
        if self._access_log is not None:
            self._access_log.unrouted(identifier, request.method, path.decode("latin-1"), error, started)
        return Response(
            render_error(error, _dialect_of_sdk(headers)),
            status_code=404,
            media_type="application/json",
            headers={"x-request-id": identifier},
        )


def _dialect_of_sdk(headers: list[tuple[bytes, bytes]]) -> Dialect:
    """The dialect a request under no provider's mount likely speaks, by the headers its SDK sends:
    Anthropic's `anthropic-version`, Google's `x-goog-api-key` or `x-goog-api-client`; else OpenAI's."""
    names = {name for name, _ in headers}
    if b"anthropic-version" in names:
        return Dialect.ANTHROPIC
    if b"x-goog-api-key" in names or b"x-goog-api-client" in names:
        return Dialect.GEMINI
    return Dialect.OPENAI


async def _method_not_allowed(request: Request, exc: Exception) -> Response:
    """Starlette's 405 (its `Allow` header kept) as an OpenAI-style error."""
    assert isinstance(exc, HTTPException)
    error = MethodNotAllowed(f"{request.method} is not allowed on {request.url.path}")
    return Response(render_error(error, Dialect.OPENAI), 405, exc.headers, media_type="application/json")


async def _select_one(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


def _raw_path(scope: Scope) -> bytes:
    raw: bytes | None = scope.get("raw_path")
    if raw is not None:
        return raw
    return quote(scope["path"], safe="/:@!$&'()*+,;=-._~").encode()


def create_app(
    settings: Settings,
    transport_factory: TransportFactory = aiohttp_transport,
    environ: Mapping[str, str] | None = None,
) -> Gateway:
    return Gateway(settings, transport_factory, environ)
