"""Stage: what the key may reach. Checks the key's allowed providers and models."""

from __future__ import annotations

from gateway.context import RequestContext
from gateway.errors import ModelNotAllowed, ProviderNotAllowed


class Authorize:
    async def __call__(self, ctx: RequestContext) -> None:
        principal = ctx.principal
        assert principal is not None, "Authorize runs after Authenticate"
        allowed = principal.allowed_providers
        if allowed is not None and ctx.provider.name not in allowed:
            raise ProviderNotAllowed(f"this key may not use provider {ctx.provider.name!r}")
        models = principal.allowed_models
        if models is None:
            return
        model = ctx.model()
        if model is not None and model not in models:
            raise ModelNotAllowed(f"this key may not use model {model!r}")
