"""The meter: what it asks the provider for, and the record it writes for every outcome."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from typing import Any

import orjson
import pytest

from gateway.context import RequestContext
from gateway.errors import UnansweredTimeout, UpstreamTimeout
from gateway.metering.meter import Meter, PrepareMetering, gemini_tier
from gateway.metering.prices import cost_of
from gateway.metering.stream_usage import REMEMBER_SECONDS, StreamUsageRefusals
from gateway.metering.usage import Endpoint, Extraction, TokenUsage
from gateway.storage.records import UsageRecord
from tests.support.metering import ADAPTERS, PRICES, PRINCIPAL, ListLedger


def context(
    provider: str, path: str, body: dict[str, Any] | None = None, method: str = "POST"
) -> RequestContext:
    ctx = RequestContext(
        request_id="req-1",
        started=time.perf_counter(),
        method=method,
        provider=ADAPTERS[provider],
        raw_path=path.encode(),
        query_string=b"",
        headers=[],
        receive=None,  # type: ignore[arg-type]
        path=path,
        principal=PRINCIPAL,
        body=orjson.dumps(body) if body is not None else b"",
    )
    ctx.received_at = time.time()
    return ctx


def prepare(ctx: RequestContext, inject: bool = True, refusals: StreamUsageRefusals | None = None) -> None:
    asked = frozenset({ctx.provider.name}) if inject else frozenset()
    asyncio.run(PrepareMetering(asked, refusals or StreamUsageRefusals())(ctx))


def answered(
    ctx: RequestContext,
    status: int = 200,
    usage: TokenUsage | None = None,
    chars: int = 0,
    model: str | None = None,
) -> RequestContext:
    ctx.upstream_started = ctx.upstream_responded = ctx.started + 0.001
    ctx.first_byte = ctx.started + 0.002
    ctx.finished = ctx.started + 0.003
    ctx.status = ctx.upstream_status = status
    ctx.extraction = Extraction(usage, model, chars)
    return ctx


def observe(ctx: RequestContext) -> UsageRecord:
    ledger = ListLedger()
    Meter(PRICES, ledger).observe(ctx)  # type: ignore[arg-type]
    [record] = ledger.records
    return record


CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello there"}]}


def test_a_stream_without_usage_asked_for_gets_include_usage_added() -> None:
    ctx = context("openai", "/v1/chat/completions", {**CHAT, "stream": True})

    prepare(ctx)

    assert orjson.loads(ctx.body)["stream_options"] == {"include_usage": True}
    assert ctx.stream_usage_injected and ctx.endpoint is Endpoint.CHAT_COMPLETIONS


def test_the_callers_bytes_are_kept_as_they_are_around_the_added_member() -> None:
    ctx = context("openai", "/v1/chat/completions")
    ctx.body = (
        b' \n{ "stream" : true,\n  "model":"gpt-4o-mini",'
        b' "messages": [{"role":"user","content":"h\\u00e9"}] }'
    )
    sent = ctx.body

    prepare(ctx)

    assert ctx.body == sent[:3] + b'"stream_options":{"include_usage":true},' + sent[3:]
    assert orjson.loads(ctx.body)["stream_options"] == {"include_usage": True}
    assert ctx.json_body()["stream_options"] == {"include_usage": True}


def test_other_stream_options_of_the_caller_are_kept_beside_include_usage() -> None:
    ctx = context("openai", "/v1/chat/completions", {**CHAT, "stream": True, "stream_options": {"x": 1}})

    prepare(ctx)

    assert orjson.loads(ctx.body)["stream_options"] == {"include_usage": True, "x": 1}
    assert ctx.json_body()["stream_options"] == {"x": 1, "include_usage": True}
    assert ctx.stream_usage_injected


@pytest.mark.parametrize(
    ("options", "sent"),
    [
        (b"{}", b'{"include_usage":true}'),
        (b'{ "continuous_usage_stats" : true }', b'{"include_usage":true, "continuous_usage_stats" : true }'),
        (b"null", b'{"include_usage":true}'),
    ],
    ids=["empty", "vllm", "null"],
)
def test_the_callers_own_stream_options_get_include_usage_in_place_and_nothing_else_changes(
    options: bytes, sent: bytes
) -> None:
    """Never re-serialised: a big integer, escapes, spacing and a key repeated elsewhere stay as sent,
    and the member is not doubled (a parser would keep the caller's null, the last of two)."""
    ctx = context("openai", "/v1/chat/completions")
    before = b'{"model": "gpt-4o-mini", "stream": true, "seed": 123456789012345678901,\n "stream_options": '
    after = b', "messages": [{"role": "user", "content": "caf\\u00e9 \\"stream_options\\": null"}]}'
    ctx.body = before + options + after

    prepare(ctx)

    assert ctx.body == before + sent + after
    assert orjson.loads(ctx.body.replace(b"123456789012345678901", b"1"))["stream_options"]["include_usage"]
    assert ctx.stream_usage_injected


def test_a_stream_options_member_repeated_is_changed_where_parsers_read_it_the_last() -> None:
    ctx = context("openai", "/v1/chat/completions")
    ctx.body = (
        b'{"stream_options": {"include_usage": true}, "stream": true, "stream_options": null, "model": "m"}'
    )

    prepare(ctx)

    assert ctx.body == (
        b'{"stream_options": {"include_usage": true}, "stream": true,'
        b' "stream_options": {"include_usage":true}, "model": "m"}'
    )


@pytest.mark.parametrize(
    "body",
    [
        CHAT,
        {**CHAT, "stream": True, "stream_options": {"include_usage": True}},
        {**CHAT, "stream": True, "stream_options": {"include_usage": False}},
    ],
)
def test_requests_that_need_nothing_or_chose_explicitly_are_left_alone(body: dict[str, Any]) -> None:
    ctx = context("openai", "/v1/chat/completions", body)
    original = ctx.body

    prepare(ctx)

    assert ctx.body is original and not ctx.stream_usage_injected


def test_the_callers_own_body_is_kept_beside_the_one_sent() -> None:
    ctx = context("openai", "/v1/chat/completions", {**CHAT, "stream": True})
    sent = ctx.body

    prepare(ctx)

    assert ctx.body_before_injection is sent and ctx.body != sent


def test_an_upstream_that_refused_lately_is_not_asked_until_the_refusal_is_forgotten() -> None:
    now = [1000.0]
    refusals = StreamUsageRefusals(clock=lambda: now[0])
    refusals.note(context("openai", "/v1/chat/completions"))
    ctx = context("openai", "/v1/chat/completions", {**CHAT, "stream": True})

    prepare(ctx, refusals=refusals)
    assert not ctx.stream_usage_injected and ctx.body == orjson.dumps({**CHAT, "stream": True})

    now[0] += REMEMBER_SECONDS + 1
    prepare(ctx, refusals=refusals)
    assert ctx.stream_usage_injected


def test_injection_can_be_switched_off_and_never_touches_anthropic() -> None:
    off = context("openai", "/v1/chat/completions", {**CHAT, "stream": True})
    claude = context("claude", "/v1/messages", {**CHAT, "stream": True})

    prepare(off, inject=False)
    prepare(claude)

    assert not off.stream_usage_injected and not claude.stream_usage_injected


def test_a_malformed_body_is_left_for_the_provider_to_refuse() -> None:
    ctx = context("openai", "/v1/chat/completions")
    ctx.body = b'{"stream": true, "model": '

    prepare(ctx)

    assert ctx.body == b'{"stream": true, "model": ' and not ctx.stream_usage_injected


def test_reported_usage_is_recorded_and_priced() -> None:
    usage = TokenUsage(input_tokens=1000, output_tokens=200, cached_input_tokens=400, reasoning_tokens=50)
    ctx = context("openai", "/v1/chat/completions", CHAT)
    prepare(ctx)

    record = observe(answered(ctx, usage=usage, model="gpt-4o-mini-2024-07-18"))

    price = PRICES.price_for("openai", "openai", "gpt-4o-mini")
    assert price is not None
    assert record.cost_usd == cost_of(usage, price)
    assert (
        record.input_tokens,
        record.output_tokens,
        record.cached_input_tokens,
        record.reasoning_tokens,
    ) == (1000, 200, 400, 50)
    assert (record.tenant_id, record.team, record.user, record.key_id) == ("acme", "ml", "ada", "key_1")
    assert (record.model, record.endpoint, record.upstream) == (
        "gpt-4o-mini-2024-07-18",
        "chat.completions",
        "api.openai.com",
    )
    assert not record.estimated and record.ttfb_ms is not None


def test_the_meter_reads_the_tap_the_relay_left_with_the_request() -> None:
    ctx = context("openai", "/v1/chat/completions", CHAT)
    prepare(ctx)
    ledger = ListLedger()
    meter = Meter(PRICES, ledger)  # type: ignore[arg-type]
    ctx.tap = meter.open_tap(ctx, 200, b"application/json")
    body = orjson.dumps(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "model": "gpt-4o-mini-2024-07-18",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
        }
    )
    for chunk in (body[:40], body[40:]):
        assert ctx.tap.feed(chunk) == chunk
    ctx.upstream_started = ctx.upstream_responded = ctx.started + 0.001
    ctx.status = ctx.upstream_status = 200
    ctx.finished = ctx.started + 0.002

    meter.observe(ctx)

    [record] = ledger.records
    assert (record.input_tokens, record.output_tokens, record.model) == (12, 3, "gpt-4o-mini-2024-07-18")
    assert ctx.tap is None and ctx.extraction is not None and ctx.extraction.usage is not None


def test_a_stream_cut_before_its_usage_is_estimated_from_what_passed() -> None:
    ctx = context("openai", "/v1/chat/completions", {**CHAT, "stream": True})
    prepare(ctx)

    record = observe(answered(ctx, usage=None, chars=400))

    assert record.estimated
    assert record.output_tokens == 100
    assert record.input_tokens > 0
    assert record.cost_usd is not None and record.cost_usd > 0


def test_a_cut_stream_that_asked_for_the_flex_tier_is_estimated_at_the_flex_rates() -> None:
    ctx = context(
        "openai", "/v1/chat/completions", {**CHAT, "model": "o3", "stream": True, "service_tier": "flex"}
    )
    prepare(ctx)

    record = observe(answered(ctx, usage=None, chars=400))

    price = PRICES.price_for("openai", "openai", "o3")
    assert price is not None and record.estimated
    flex = price.service_tiers["flex"]
    expected = (record.input_tokens * flex.input + record.output_tokens * flex.output) / 1_000_000
    assert record.cost_usd == expected and record.output_tokens == 100


MESSAGE = {"model": "claude-sonnet-4-5", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}


def test_a_stream_cut_after_reporting_its_input_is_estimated_with_the_reported_counts() -> None:
    ctx = answered(context("claude", "/v1/messages", {**MESSAGE, "stream": True}), usage=None, chars=400)
    so_far = TokenUsage(input_tokens=9_040, output_tokens=1, cached_input_tokens=9_000)  # message_start's
    ctx.extraction = Extraction(None, "claude-sonnet-4-5-20250929", 400, None, so_far)

    record = observe(ctx)

    assert record.estimated
    assert (record.input_tokens, record.cached_input_tokens, record.output_tokens) == (9_040, 9_000, 100)
    # 40 x 3 + 9000 x 0.30 + 100 x 15 per million
    assert record.cost_usd == Decimal("0.00432")


def test_an_anthropic_call_served_from_priority_capacity_is_recorded_so_at_the_model_s_own_rates() -> None:
    # the built-in table lists no tiers for Claude (a Priority Tier price is each customer's own)
    usage = TokenUsage(input_tokens=10_000, output_tokens=2_000, service_tier="priority")
    ctx = context("claude", "/v1/messages", MESSAGE)

    record = observe(answered(ctx, usage=usage, model="claude-sonnet-4-5-20250929"))

    # 10000 x 3 + 2000 x 15 per million
    assert record.cost_usd == Decimal("0.06") and record.service_tier == "priority"


def test_web_searches_are_recorded_and_priced_on_top_of_the_tokens() -> None:
    usage = TokenUsage(input_tokens=10_000, output_tokens=2_000, web_searches=3)
    ctx = context("claude", "/v1/messages", MESSAGE)

    record = observe(answered(ctx, usage=usage, model="claude-sonnet-4-5-20250929"))

    # 0.06 for the tokens (as above), 3 searches at $10 per 1,000
    assert record.cost_usd == Decimal("0.09") and record.web_searches == 3


def test_a_us_only_call_is_recorded_at_1_1_times_its_model_s_rates_in_the_same_columns() -> None:
    usage = TokenUsage(input_tokens=10_000, output_tokens=2_000, web_searches=3, inference_geo="us")
    ctx = context("claude", "/v1/messages", MESSAGE)

    record = observe(answered(ctx, usage=usage, model="claude-sonnet-4-6"))

    # (10000 x 3 + 2000 x 15 per million) x 1.1, then 3 searches at $10 per 1,000 in any geo
    assert record.cost_usd == Decimal("0.066") + Decimal("0.03")
    assert (record.input_tokens, record.service_tier, record.web_searches) == (10_000, None, 3)


def test_a_call_that_consulted_an_advisor_records_both_models_tokens_each_at_its_own_rates() -> None:
    advisor = TokenUsage(input_tokens=20_000, output_tokens=1_000)
    usage = TokenUsage(input_tokens=10_000, output_tokens=2_000, advisors=(("claude-opus-4-7", advisor),))
    ctx = context("claude", "/v1/messages", MESSAGE)

    record = observe(answered(ctx, usage=usage, model="claude-sonnet-4-6"))

    # 10000 x 3 + 2000 x 15 per million for the executor, 20000 x 5 + 1000 x 25 for the advisor
    assert record.cost_usd == Decimal("0.06") + Decimal("0.125")
    assert (record.model, record.input_tokens, record.output_tokens) == ("claude-sonnet-4-6", 30_000, 3_000)
    assert ctx.usage == TokenUsage(input_tokens=30_000, output_tokens=3_000)  # what the metrics count


def test_a_us_only_call_of_a_model_without_a_us_multiplier_costs_null_never_the_global_price() -> None:
    usage = TokenUsage(input_tokens=10_000, output_tokens=2_000, inference_geo="us")
    ctx = context("claude", "/v1/messages", MESSAGE)

    record = observe(answered(ctx, usage=usage, model="claude-sonnet-4-5-20250929"))

    assert record.cost_usd is None and record.input_tokens == 10_000


def test_a_call_that_only_searched_is_priced_not_free() -> None:
    usage = TokenUsage(web_searches=2)
    ctx = context("claude", "/v1/messages", MESSAGE)

    record = observe(answered(ctx, usage=usage, model="claude-haiku-4-5"))

    assert record.cost_usd == Decimal("0.02")


def test_a_call_that_searched_with_a_model_priced_for_no_searches_costs_null() -> None:
    usage = TokenUsage(input_tokens=10, output_tokens=5, web_searches=1)
    ctx = context("openai", "/v1/responses", {"model": "gpt-4.1-nano", "input": "hi"})

    record = observe(answered(ctx, usage=usage, model="gpt-4.1-nano"))

    assert record.cost_usd is None and record.web_searches == 1


def test_a_cut_stream_that_asked_anthropic_for_the_standard_tier_only_is_estimated_unmarked() -> None:
    ctx = context("claude", "/v1/messages", {**MESSAGE, "stream": True, "service_tier": "standard_only"})
    prepare(ctx)

    record = observe(answered(ctx, usage=None, chars=400))

    assert record.estimated and record.service_tier is None and record.output_tokens == 100


def test_a_caller_that_left_mid_stream_is_estimated_too() -> None:
    ctx = context("openai", "/v1/chat/completions", {**CHAT, "stream": True})
    prepare(ctx)
    ctx = answered(ctx, usage=None, chars=40)
    ctx.client_disconnected, ctx.status = True, 499

    record = observe(ctx)

    assert record.estimated and record.status == 499 and record.output_tokens == 10


def test_a_caller_that_left_while_an_upstream_error_arrived_is_not_charged() -> None:
    ctx = answered(context("openai", "/v1/chat/completions", CHAT), status=429, usage=None, chars=40)
    ctx.client_disconnected, ctx.status = True, 499

    record = observe(ctx)

    assert (record.input_tokens, record.output_tokens, record.estimated) == (0, 0, False)
    assert record.cost_usd == Decimal(0) and record.status == 499


def test_a_redirect_is_not_charged() -> None:
    record = observe(answered(context("openai", "/v1/chat/completions", CHAT), status=302, usage=None))

    assert (record.input_tokens, record.estimated, record.cost_usd) == (0, False, Decimal(0))


def test_a_caller_that_left_before_any_answer_is_estimated_as_the_provider_took_the_call_on() -> None:
    ctx = context("openai", "/v1/chat/completions", CHAT)
    ctx.upstream_started = ctx.started + 0.001  # sent, never answered: the caller left first
    ctx.client_disconnected, ctx.status, ctx.finished = True, 499, ctx.started + 0.5

    record = observe(ctx)

    assert record.estimated and record.input_tokens > 0 and record.output_tokens == 0
    assert record.cost_usd is not None and record.cost_usd > 0


def test_a_call_never_sent_is_not_charged() -> None:
    unsent = context("openai", "/v1/chat/completions", CHAT)
    unsent.client_disconnected, unsent.status = True, 499  # left before the gateway forwarded it
    unreached = context("openai", "/v1/chat/completions", CHAT)
    unreached.upstream_started, unreached.status = unreached.started + 0.001, 504
    unreached.error = UpstreamTimeout("the upstream could not be reached in time")

    for record in (observe(unsent), observe(unreached)):
        assert (record.input_tokens, record.estimated, record.cost_usd) == (0, False, Decimal(0))


def test_a_call_sent_and_unanswered_before_the_timeout_is_estimated_as_the_provider_works_on() -> None:
    ctx = context("openai", "/v1/chat/completions", CHAT)
    ctx.upstream_started, ctx.status = ctx.started + 0.001, 504
    ctx.error = UnansweredTimeout("the upstream did not answer in time")

    record = observe(ctx)

    assert record.estimated and record.status == 504
    assert record.input_tokens > 0 and record.output_tokens == 0
    assert record.cost_usd is not None and record.cost_usd > 0


def test_refusals_and_upstream_errors_cost_nothing_and_are_not_estimated() -> None:
    refused = context("openai", "/v1/chat/completions", CHAT)
    refused.principal, refused.status, refused.finished = None, 401, refused.started + 0.001
    failed = answered(context("openai", "/v1/chat/completions", CHAT), status=503, usage=None)

    for record in (observe(refused), observe(failed)):
        assert (record.input_tokens, record.output_tokens, record.estimated) == (0, 0, False)
        assert record.cost_usd == Decimal(0)
    assert observe(refused).tenant_id is None


def test_an_unpriced_model_costs_null_never_zero() -> None:
    ctx = context("local", "/v1/chat/completions", {**CHAT, "model": "llama3"})

    record = observe(answered(ctx, usage=TokenUsage(input_tokens=10, output_tokens=5), model="llama3"))

    assert record.cost_usd is None and record.input_tokens == 10


def test_a_call_served_in_a_processing_tier_is_priced_at_that_tier_s_rates() -> None:
    usage = TokenUsage(input_tokens=10_000, output_tokens=2_000, service_tier="flex")
    ctx = context("openai", "/v1/chat/completions", {**CHAT, "model": "o3", "service_tier": "flex"})

    record = observe(answered(ctx, usage=usage, model="o3-2025-04-16"))

    # o3 flex: 10000 x 1.00 + 2000 x 4.00 per million, half the standard 10000 x 2 + 2000 x 8
    assert record.cost_usd == Decimal("0.018") and record.service_tier == "flex"
    assert (record.input_tokens, record.output_tokens) == (10_000, 2_000)


def test_a_call_in_a_tier_its_model_has_no_rates_for_costs_null_never_the_standard_price() -> None:
    usage = TokenUsage(input_tokens=10_000, output_tokens=2_000, service_tier="flex")
    ctx = context("openai", "/v1/chat/completions", {**CHAT, "service_tier": "flex"})

    record = observe(answered(ctx, usage=usage, model="gpt-4o-mini"))  # priority rates, no flex ones

    assert record.cost_usd is None and record.input_tokens == 10_000


def test_an_unknown_billable_looking_call_that_reported_nothing_has_unknown_cost() -> None:
    ctx = context("openai", "/v1/images/generations", {"model": "gpt-image-1", "prompt": "a cat"})
    prepare(ctx)

    record = observe(answered(ctx, usage=None))

    assert record.endpoint == "other" and record.cost_usd is None and not record.estimated


@pytest.mark.parametrize(
    ("provider", "path"),
    [("openai", "/v1/batches"), ("openai", "/v1/fine_tuning/jobs"), ("claude", "/v1/messages/batches")],
)
def test_work_the_provider_bills_later_is_recorded_with_its_cost_unknown_never_free(
    provider: str, path: str
) -> None:
    created = observe(answered(context(provider, path, {"input_file_id": "file-1"}), usage=None))
    refused = observe(answered(context(provider, path, {"input_file_id": "file-1"}), status=400))

    assert created.endpoint == "billed_later" and created.cost_usd is None and not created.estimated
    assert refused.cost_usd == Decimal(0)  # a request refused started no work


def test_token_kinds_are_stored_in_the_ledgers_column_order() -> None:
    first = UsageRecord._fields.index("input_tokens")
    # the hour-long cache writes are part of cache_write_tokens: they change the cost, not the columns;
    # the service tier and the web searches have columns of their own, the last; the tool that made the
    # searches changes their price, not the columns; the audio tokens are parts of input and output: they
    # change the cost, not the columns; so does the geo a call's inference ran in (no migration); an
    # advisor's tokens are added to the columns of their kinds
    kept_apart = (
        "cache_write_1h_tokens",
        "service_tier",
        "web_searches",
        "web_search_preview",
        "audio_input_tokens",
        "audio_output_tokens",
        "inference_geo",
        "advisors",
    )
    stored = tuple(name for name in TokenUsage._fields if name not in kept_apart)

    assert UsageRecord._fields[first : first + len(stored)] == stored
    assert "cache_write_1h_tokens" not in UsageRecord._fields
    assert "web_search_preview" not in UsageRecord._fields
    assert "audio_input_tokens" not in UsageRecord._fields
    assert "inference_geo" not in UsageRecord._fields
    assert UsageRecord._fields[-2:] == ("service_tier", "web_searches")


@pytest.mark.parametrize(
    ("value", "tier"),
    [
        (b"flex", "flex"),
        (b"priority", "priority"),
        (b"SERVICE_TIER_PRIORITY", "priority"),
        (b" Standard ", "standard"),
    ],
)
def test_a_gemini_response_names_its_tier_in_a_header_spelled_either_way(value: bytes, tier: str) -> None:
    assert gemini_tier([(b"content-type", b"application/json"), (b"x-gemini-service-tier", value)]) == tier


def test_a_gemini_response_without_the_header_names_no_tier() -> None:
    assert gemini_tier([(b"content-type", b"application/json")]) is None


def test_the_tier_header_is_read_from_gemini_responses_only() -> None:
    headers = [(b"x-gemini-service-tier", b"flex")]
    meter = Meter(PRICES, ListLedger())  # type: ignore[arg-type]
    openai_call = context("openai", "/v1/chat/completions", CHAT)
    gemini_call = context("gemini", "/v1beta/models/gemini-2.5-flash:generateContent", {"contents": []})

    meter.open_tap(openai_call, 200, b"application/json", headers)
    meter.open_tap(gemini_call, 200, b"application/json", headers)

    assert (openai_call.served_tier, gemini_call.served_tier) == (None, "flex")
