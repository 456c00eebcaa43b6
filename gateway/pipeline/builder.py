"""The one place that declares the order of the request path's stages and observers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gateway.auth.keys import KeyAuthenticator
from gateway.credentials.store import CredentialStore
from gateway.metering.meter import Meter, PrepareMetering
from gateway.metering.stream_usage import ResendWithoutStreamUsage, StreamUsageRefusals, providers_to_ask
from gateway.observability.logging import AccessLog
from gateway.observability.metrics import RequestMetrics
from gateway.pipeline.authenticate import Authenticate
from gateway.pipeline.authorize import Authorize
from gateway.pipeline.body import ReadBody
from gateway.pipeline.core import Pipeline, Stage
from gateway.pipeline.credential import ResolveCredential
from gateway.pipeline.forward import Forward, Forwarder
from gateway.pipeline.observers import Observer, ObserverBatch
from gateway.settings.schema import Settings
from gateway.upstream.transport import Transport


@dataclass(frozen=True, slots=True)
class Services:
    """What the lifespan opened, handed to the stages that need it."""

    authenticator: KeyAuthenticator
    credentials: CredentialStore
    transports: Mapping[str, Transport]
    meter: Meter | None = None
    metrics: RequestMetrics | None = None


def build_pipeline(settings: Settings, services: Services) -> Pipeline:
    """authenticate → read body → authorize → prepare metering → resolve credential → forward (sent
    again as the caller wrote it if the upstream refused the stream usage metering asked for) → relay
    (metering tap) → observers, a batch of finished requests at a time: meter, metrics, access log."""
    stages: list[Stage] = [
        Authenticate(services.authenticator),
        ReadBody(settings.server.max_body_bytes, settings.server.body_read_timeout_seconds),
        Authorize(),
    ]
    timeouts = {name: provider.timeouts for name, provider in settings.providers.items()}
    forward: Forward = Forwarder(services.transports, timeouts)
    if services.meter is not None:
        refusals = StreamUsageRefusals()
        asked = providers_to_ask(settings)
        stages.append(PrepareMetering(asked, refusals, services.meter.background))
        if asked:
            forward = ResendWithoutStreamUsage(forward, refusals)
    stages.append(ResolveCredential(services.credentials))
    observers: list[Observer] = [
        observer for observer in (services.meter, services.metrics) if observer is not None
    ]
    if settings.logging.access_log:
        observers.append(AccessLog())
    return Pipeline(
        tuple(stages),
        forward,
        ObserverBatch(observers),
        services.meter.open_tap if services.meter is not None else None,
    )
