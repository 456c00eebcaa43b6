"""Metering in the request path: a stage that prepares the request, a tap on the response body, and an
observer that turns what passed into a priced ledger record (on every outcome, refusals included).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from decimal import Decimal
from functools import lru_cache, partial
from urllib.parse import urlsplit

from gateway.context import RequestContext
from gateway.errors import InvalidJSON, UnansweredTimeout
from gateway.metering.background import BackgroundResponses
from gateway.metering.endpoints import classify, openai_style
from gateway.metering.estimate import estimate_usage, tokens, with_reported
from gateway.metering.extractors.factory import extractor_factory
from gateway.metering.ledger import UsageLedger
from gateway.metering.prices import PriceTable, call_cost, cost_of
from gateway.metering.stream_usage import StreamUsageRefusals, ask_for_stream_usage
from gateway.metering.usage import (
    MAX_TIER_LENGTH,
    Endpoint,
    Extraction,
    TokenUsage,
    UsageExtractor,
    in_service_tier,
)
from gateway.storage.records import UsageRecord

logger = logging.getLogger("tollgate.metering")

BILLABLE = frozenset(
    {
        Endpoint.CHAT_COMPLETIONS,
        Endpoint.COMPLETIONS,
        Endpoint.RESPONSES,
        Endpoint.EMBEDDINGS,
        Endpoint.MESSAGES,
        Endpoint.GENERATE_CONTENT,
        Endpoint.STREAM_GENERATE_CONTENT,
        Endpoint.EMBED_CONTENT,
    }
)
_INJECTABLE = frozenset({Endpoint.CHAT_COMPLETIONS, Endpoint.COMPLETIONS})
NO_USAGE = TokenUsage()
FREE = Decimal(0)
# each endpoint's name as a plain `str`, as the database drivers bind it fastest (`.value` costs more)
_ENDPOINT_NAMES = {endpoint: str(endpoint.value) for endpoint in Endpoint}
_new_record = partial(tuple.__new__, UsageRecord)  # as `usage.new_token_usage`
# tenant, team, user and key of a request refused before it was authenticated
_NOBODY: tuple[None, None, None, None] = (None, None, None, None)


class PrepareMetering:
    """Stage: name the endpoint, and ask OpenAI-style streams (Gemini's OpenAI-compatible API's too) for
    their usage when the caller did not (see `stream_usage`): for the providers in `inject_for`, unless
    their upstream refused lately."""

    def __init__(
        self,
        inject_for: frozenset[str],
        refusals: StreamUsageRefusals,
        background: BackgroundResponses | None = None,
    ) -> None:
        self._inject_for = inject_for
        self._refusals = refusals
        self._background = background

    async def __call__(self, ctx: RequestContext) -> None:
        ctx.endpoint, injectable = _endpoint_plan(ctx.provider.kind, ctx.method, ctx.path)
        # else not a stream: left unparsed (`find`, as `in` with a bytes needle first tries it as an int)
        if (
            injectable
            and ctx.provider.name in self._inject_for
            and ctx.body.find(b'"stream"') >= 0
            and not self._refusals.refused(ctx)
        ):
            ask_for_stream_usage(ctx)
        elif ctx.method == "DELETE" and self._background is not None:  # a followed response, perhaps
            await self._background.before_delete(ctx)


@lru_cache(maxsize=4096)
def endpoint_of(kind: str, method: str, path: str) -> Endpoint:
    """`classify`, remembered: a gateway sees the same few paths over and over."""
    return classify(kind, method, path)


GEMINI = "gemini"
GEMINI_TIER_HEADER = b"x-gemini-service-tier"


def gemini_tier(headers: Sequence[tuple[bytes, bytes]]) -> str | None:
    """The processing tier a Gemini response says served it (`x-gemini-service-tier`: `standard`, also
    for a Priority call downgraded past its limit, `priority`, `flex`), lower-cased and without the
    enum's `SERVICE_TIER_` prefix; None when not named."""
    for name, value in headers:
        if name == GEMINI_TIER_HEADER:
            tier = value.decode("latin-1").strip().lower()
            return tier.removeprefix("service_tier_")[:MAX_TIER_LENGTH]
    return None


@lru_cache(maxsize=4096)
def _endpoint_plan(kind: str, method: str, path: str) -> tuple[Endpoint, bool]:
    """The endpoint, and whether its streams may be asked for their usage (OpenAI-style chat and
    completions: an OpenAI-style provider's, or Gemini's OpenAI-compatible API's), remembered."""
    endpoint = endpoint_of(kind, method, path)
    return endpoint, endpoint in _INJECTABLE and openai_style(kind, path)


class Meter:
    """Taps response bodies and writes one priced usage record per request (the call that started an
    OpenAI background response once that response ends, given `background`: see `background`)."""

    def __init__(
        self, prices: PriceTable, ledger: UsageLedger, background: BackgroundResponses | None = None
    ) -> None:
        self._prices = prices
        self._ledger = ledger
        self._background = background
        self._upstreams: dict[str, str] = {}

    @property
    def background(self) -> BackgroundResponses | None:
        """The follower of background responses, if any."""
        return self._background

    def open_tap(
        self,
        ctx: RequestContext,
        status: int,
        content_type: bytes | None,
        headers: Sequence[tuple[bytes, bytes]] = (),
    ) -> UsageExtractor:
        """The extractor that watches the response body; a Gemini response's processing tier, which its
        `headers` alone name, noted in `ctx.served_tier`."""
        kind = ctx.provider.kind
        if kind == GEMINI:
            ctx.served_tier = gemini_tier(headers)
        endpoint = ctx.endpoint or Endpoint.OTHER
        strip = ctx.stream_usage_injected and status < 400
        return extractor_factory(kind, endpoint, content_type, strip)()

    def observe(self, ctx: RequestContext) -> None:
        tap = ctx.tap
        if tap is not None:  # read here, in the observers' batch, not on the response's path
            ctx.extraction, ctx.tap = tap.finish(), None
        if ctx.endpoint is None:  # refused before PrepareMetering ran
            ctx.endpoint = (
                endpoint_of(ctx.provider.kind, ctx.method, ctx.path) if ctx.path else Endpoint.OTHER
            )
        extraction = ctx.extraction
        if extraction is not None and extraction.usage is not None:  # the provider said: most calls
            usage, known = extraction.usage, True
        else:
            unseen = self._usage_without_report(ctx)
            if (
                extraction is not None
                and extraction.pending
                and self._follow(ctx, extraction.pending, unseen)
            ):
                return  # recorded when the background response ends
            usage, ctx.usage_estimated, known = unseen
        self._write(ctx, usage, known)

    def _follow(self, ctx: RequestContext, response_id: str, unseen: tuple[TokenUsage, bool, bool]) -> bool:
        """Have the background response `response_id` followed to its end, `unseen` recorded if that end
        is never seen; False if it is not followed."""
        if self._background is None:
            return False
        return self._background.follow(ctx, response_id, partial(self._settle, unseen))

    def _settle(
        self, unseen: tuple[TokenUsage, bool, bool], ctx: RequestContext, ended: Extraction | None
    ) -> None:
        """Record the call that started a background response, which `ended` so (None: not seen)."""
        if ended is not None and ended.usage is not None:
            ctx.extraction = ended if ended.model else ended._replace(model=ctx.reported_model())
            self._write(ctx, ended.usage, True)
            return
        usage, ctx.usage_estimated, known = unseen
        if ended is not None:  # ended, reporting no usage: the text it holds is its output
            ctx.extraction = ended if ended.model else ended._replace(model=ctx.reported_model())
            if ctx.usage_estimated:
                usage = usage._replace(output_tokens=max(usage.output_tokens, tokens(ended.output_chars)))
        self._write(ctx, usage, known)

    def _write(self, ctx: RequestContext, usage: TokenUsage, known: bool) -> None:
        """Price `usage` (unknown cost unless `known`) and write `ctx`'s record."""
        if ctx.served_tier is not None:  # named by a response header (Gemini's), not in the usage
            usage = in_service_tier(usage, ctx.served_tier)
        ctx.usage = usage
        extraction = ctx.extraction
        model = extraction.model if extraction is not None and extraction.model else ctx.reported_model()
        if not known:
            ctx.cost_usd = None
        elif usage.advisors:  # another model's sub-inferences: each part at its model's price
            ctx.cost_usd = call_cost(self._prices, ctx.provider.name, ctx.provider.kind, model or "", usage)
            ctx.usage = usage = usage.with_advisors_summed()
        elif usage.input_tokens == 0 and usage.output_tokens == 0 and not usage.web_searches:
            ctx.cost_usd = FREE
        else:
            price = self._prices.price_for(ctx.provider.name, ctx.provider.kind, model) if model else None
            ctx.cost_usd = None if price is None else cost_of(usage, price)
        self._ledger.record(self._record(ctx, model, usage))

    def _usage_without_report(self, ctx: RequestContext) -> tuple[TokenUsage, bool, bool]:
        """(usage, estimated, known) of a call whose response reported none: estimated for billable
        calls the provider took on, else zero; `known` is False for a call of unknown kind.

        The provider took a call on when it answered with a success (whatever the caller did then), or
        when the call was sent and no answer came: the caller left first, or the gateway's timeout
        ran out (the provider works on regardless, and bills). An error or a redirect it answered with,
        a call never sent (the upstream unreachable, or not reached in time, or its caller gone before
        it was handed to a connection: `upstream_started` is then 0, see `Forwarder`), is not billed."""
        extraction = ctx.extraction
        upstream = ctx.upstream_status
        taken_on = (
            upstream < 300
            if upstream
            else (ctx.client_disconnected and ctx.upstream_started > 0)
            or type(ctx.error) is UnansweredTimeout
        )
        if not taken_on:
            return NO_USAGE, False, True
        if ctx.endpoint is Endpoint.OTHER or ctx.endpoint is Endpoint.BILLED_LATER:
            return NO_USAGE, False, False
        if ctx.endpoint not in BILLABLE:
            return NO_USAGE, False, True
        try:
            request = ctx.json_body()
        except InvalidJSON:
            request = None
        output_chars = extraction.output_chars if extraction is not None else 0
        try:
            estimate = estimate_usage(ctx.endpoint, request, output_chars)
            return with_reported(estimate, extraction.partial if extraction is not None else None), True, True
        except Exception:  # a bug, or a request beyond the method: recorded all the same, cost unknown
            logger.exception(
                "estimating a call's usage failed", extra={"fields": {"request_id": ctx.request_id}}
            )
            return NO_USAGE, False, False

    def _upstream(self, ctx: RequestContext) -> str:
        """The host (and port) of the provider's base URL: never the user and password a base URL may
        hold for a server behind basic authentication."""
        name = ctx.provider.name
        host = self._upstreams.get(name)
        if host is None:
            host = self._upstreams[name] = urlsplit(ctx.provider.base_url).netloc.rpartition("@")[2]
        return host

    def _record(self, ctx: RequestContext, model: str | None, usage: TokenUsage) -> UsageRecord:
        principal = ctx.principal
        tenant, team, user, key = (
            (principal.tenant_id, principal.team, principal.user, principal.key_id)
            if principal is not None
            else _NOBODY
        )
        first_byte = ctx.first_byte and ctx.upstream_started
        return _new_record(
            (  # in column order, made in C: this runs for every request
                ctx.received_at,
                ctx.request_id,
                tenant,
                team,
                user,
                key,
                ctx.provider.name,
                self._upstream(ctx),
                model[:200] if model else None,
                _ENDPOINT_NAMES[ctx.endpoint or Endpoint.OTHER],
                ctx.status,
                ctx.streamed,
                usage.input_tokens,
                usage.output_tokens,
                usage.cached_input_tokens,
                usage.cache_write_tokens,
                usage.reasoning_tokens,
                ctx.cost_usd,
                (ctx.finished - ctx.started) * 1000,  # not rounded: a float as read, at no cost
                (ctx.first_byte - ctx.upstream_started) * 1000 if first_byte else None,
                ctx.usage_estimated,
                usage.service_tier,
                usage.web_searches,
            )
        )
