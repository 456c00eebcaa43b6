"""The one place that declares the order of the request path's stages."""

from __future__ import annotations

from collections.abc import Mapping

from gateway.auth.keys import KeyAuthenticator
from gateway.credentials.store import CredentialStore
from gateway.observability.logging import AccessLog
from gateway.pipeline.authenticate import Authenticate
from gateway.pipeline.authorize import Authorize
from gateway.pipeline.body import ReadBody
from gateway.pipeline.core import Observer, Pipeline, Stage
from gateway.pipeline.credential import ResolveCredential
from gateway.pipeline.forward import Forwarder
from gateway.settings.schema import Settings
from gateway.upstream.transport import Transport


def build_pipeline(
    settings: Settings,
    authenticator: KeyAuthenticator,
    credentials: CredentialStore,
    transports: Mapping[str, Transport],
) -> Pipeline:
    stages: tuple[Stage, ...] = (
        Authenticate(authenticator),
        ReadBody(settings.server.max_body_bytes),
        Authorize(),
        ResolveCredential(credentials),
    )
    timeouts = {name: provider.timeouts for name, provider in settings.providers.items()}
    observers: tuple[Observer, ...] = (AccessLog(),) if settings.logging.access_log else ()
    return Pipeline(stages, Forwarder(transports, timeouts), observers)
