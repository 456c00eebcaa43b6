"""Stage: find the tenant's credential for the provider, to be injected when forwarding."""

from __future__ import annotations

import logging

from gateway.context import RequestContext
from gateway.credentials.store import CredentialStore, CredentialUnreadable
from gateway.errors import NoCredential, ServiceUnavailable
from gateway.storage.errors import StorageError

logger = logging.getLogger("tollgate.credentials")


class ResolveCredential:
    def __init__(self, store: CredentialStore) -> None:
        self._store = store

    async def __call__(self, ctx: RequestContext) -> None:
        mode = ctx.provider.credential_mode
        if mode == "none":
            return
        principal = ctx.principal
        assert principal is not None, "ResolveCredential runs after Authenticate"
        try:
            ctx.credential = await self._store.resolve(principal.tenant_id, ctx.provider.name)
        except StorageError:
            raise ServiceUnavailable("the credential store is unavailable; try again shortly") from None
        except CredentialUnreadable as exc:
            logger.error("provider credential unreadable", extra={"fields": {"reason": str(exc)}})
            raise ServiceUnavailable("the provider credential for this tenant cannot be decrypted") from None
        if ctx.credential is None and mode == "required":
            provider, tenant = ctx.provider.name, principal.tenant_id
            raise NoCredential(f"no credential for provider {provider!r} is configured for tenant {tenant!r}")
