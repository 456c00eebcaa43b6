"""Stage: who is calling. Resolves the presented Tollgate key to a principal."""

from __future__ import annotations

from gateway.auth.extract import presented_key
from gateway.auth.keys import KeyAuthenticator
from gateway.context import RequestContext


class Authenticate:
    def __init__(self, authenticator: KeyAuthenticator) -> None:
        self._authenticator = authenticator

    async def __call__(self, ctx: RequestContext) -> None:
        ctx.principal = await self._authenticator.authenticate(presented_key(ctx.headers, ctx.query_string))
