"""Anthropic's server-side fallback (beta `server-side-fallback-...`, the request's `fallbacks`): a model
that declines a request hands it, in the same Messages call, to a fallback model. `usage.iterations`
reports every attempt with the model that ran it: a `message` entry for each declined attempt, and a
`fallback_message` entry, in place of a `message` one, for the attempt that served the response; the
top-level fields repeat the serving attempt's counts (anthropic-sdk-python,
`types/beta/beta_fallback_message_iteration_usage.py` and `beta_iterations_usage.py`). The call is
recorded with every attempt's tokens, each attempt priced at the model that ran it; an `iterations` entry
of a kind not known here leaves the call unpriced, never priced as if it were not there."""

from __future__ import annotations

from decimal import Decimal

import pytest

from gateway.metering.prices import call_cost, load_price_table
from gateway.metering.usage import Endpoint, TokenUsage
from tests.unit.metering.support import JSON, SSE, extract_every_way, fixture
from tests.unit.test_meter import answered, context, observe

BODY = fixture("anthropic_fallback.json")
STREAM = fixture("anthropic_fallback_stream.sse")
DECLINED = TokenUsage(input_tokens=408, output_tokens=17)  # claude-fable-5's attempt, refused
SERVED = TokenUsage(input_tokens=412, output_tokens=264)  # claude-opus-4-8's, which answered
# claude-fable-5 at $10 / $50 and claude-opus-4-8 at $5 / $25 per million tokens
COST = (408 * Decimal(10) + 17 * Decimal(50) + 412 * Decimal(5) + 264 * Decimal(25)) / 10**6
PRICES = load_price_table()
BOTH_WAYS = pytest.mark.parametrize(
    ("content_type", "data"), [(JSON, BODY), (SSE, STREAM)], ids=["body", "stream"]
)


@BOTH_WAYS
def test_each_attempt_is_read_with_the_model_that_ran_it(content_type: bytes, data: bytes) -> None:
    extraction = extract_every_way("anthropic", Endpoint.MESSAGES, content_type, data)

    assert extraction.usage is not None
    assert extraction.usage.advisors == (("claude-fable-5", DECLINED), ("claude-opus-4-8", SERVED))


@BOTH_WAYS
def test_the_call_is_recorded_under_the_model_that_served_it(content_type: bytes, data: bytes) -> None:
    """Whatever model a stream's `message_start` names (sent before any fallback: here the one asked
    for, which declined), the `fallback_message` entry names the one that answered."""
    extraction = extract_every_way("anthropic", Endpoint.MESSAGES, content_type, data)

    assert extraction.model == "claude-opus-4-8"


@BOTH_WAYS
def test_the_call_costs_each_attempt_at_its_own_models_rates_whichever_model_the_response_names(
    content_type: bytes, data: bytes
) -> None:
    extraction = extract_every_way("anthropic", Endpoint.MESSAGES, content_type, data)

    assert extraction.usage is not None and extraction.model is not None
    assert call_cost(PRICES, "anthropic", "anthropic", extraction.model, extraction.usage) == COST


@BOTH_WAYS
def test_the_ledger_counts_every_attempts_tokens_once(content_type: bytes, data: bytes) -> None:
    extraction = extract_every_way("anthropic", Endpoint.MESSAGES, content_type, data)

    assert extraction.usage is not None
    assert extraction.usage.with_advisors_summed() == TokenUsage(
        input_tokens=408 + 412, output_tokens=17 + 264
    )


def test_an_attempt_declined_before_any_output_is_neither_priced_nor_counted() -> None:
    """The Claude API bills no request refused before any output (Claude Platform release notes); the
    fallback re-runs it at the fallback model's rates."""
    data = BODY.replace(
        b'"cache_creation_input_tokens":0,"output_tokens":17}',
        b'"cache_creation_input_tokens":0,"output_tokens":0}',
    )
    extraction = extract_every_way("anthropic", Endpoint.MESSAGES, JSON, data)

    assert extraction.usage is not None
    assert extraction.usage.advisors == (("claude-opus-4-8", SERVED),)
    assert (
        call_cost(PRICES, "anthropic", "anthropic", "claude-opus-4-8", extraction.usage)
        == (412 * Decimal(5) + 264 * Decimal(25)) / 10**6
    )
    assert extraction.usage.with_advisors_summed() == SERVED


def test_a_fallback_model_without_a_price_leaves_the_call_unpriced() -> None:
    data = BODY.replace(
        b'"type":"fallback_message","model":"claude-opus-4-8"',
        b'"type":"fallback_message","model":"claude-x-9"',
    )
    extraction = extract_every_way("anthropic", Endpoint.MESSAGES, JSON, data)

    assert extraction.usage is not None
    assert call_cost(PRICES, "anthropic", "anthropic", "claude-opus-4-8", extraction.usage) is None


def test_a_declined_attempt_that_names_no_model_leaves_the_call_unpriced() -> None:
    data = BODY.replace(b'"type":"message","model":"claude-fable-5",', b'"type":"message",')
    extraction = extract_every_way("anthropic", Endpoint.MESSAGES, JSON, data)

    assert extraction.usage is not None
    assert ("", DECLINED) in extraction.usage.advisors
    assert call_cost(PRICES, "anthropic", "anthropic", "claude-opus-4-8", extraction.usage) is None


def test_us_only_inference_costs_every_attempt_its_geo_multiplier() -> None:
    data = BODY.replace(b'"service_tier":"standard",', b'"service_tier":"standard","inference_geo":"us",')
    extraction = extract_every_way("anthropic", Endpoint.MESSAGES, JSON, data)

    assert extraction.usage is not None
    assert call_cost(PRICES, "anthropic", "anthropic", "claude-opus-4-8", extraction.usage) == COST * Decimal(
        "1.1"
    )


def test_without_a_fallback_the_message_entries_break_the_top_level_counts_down_and_add_nothing() -> None:
    data = fixture("anthropic_advisor.json")
    extraction = extract_every_way("anthropic", Endpoint.MESSAGES, JSON, data)

    assert extraction.usage is not None
    assert [model for model, _ in extraction.usage.advisors] == ["claude-opus-4-7"]  # the advisor alone
    assert (extraction.usage.input_tokens, extraction.usage.output_tokens) == (412, 531)


UNKNOWN_STEP = (
    b'{"type":"speculative_message","model":"claude-haiku-4-5","input_tokens":300,'
    b'"cache_read_input_tokens":0,"cache_creation_input_tokens":0,"output_tokens":40}'
)


def with_unknown_step(body: bytes) -> bytes:
    return body.replace(b'"iterations":[', b'"iterations":[' + UNKNOWN_STEP + b",")


def test_an_iteration_of_an_unknown_kind_leaves_the_call_unpriced_never_priced_without_it() -> None:
    data = with_unknown_step(fixture("anthropic_advisor.json"))
    extraction = extract_every_way("anthropic", Endpoint.MESSAGES, JSON, data)

    assert extraction.usage is not None
    assert call_cost(PRICES, "anthropic", "anthropic", "claude-sonnet-4-6", extraction.usage) is None


def test_an_iteration_of_an_unknown_kind_keeps_the_reported_token_counts() -> None:
    plain = extract_every_way("anthropic", Endpoint.MESSAGES, JSON, fixture("anthropic_advisor.json"))
    extraction = extract_every_way(
        "anthropic", Endpoint.MESSAGES, JSON, with_unknown_step(fixture("anthropic_advisor.json"))
    )

    assert plain.usage is not None and extraction.usage is not None
    assert extraction.usage.with_advisors_summed() == plain.usage.with_advisors_summed()


@BOTH_WAYS
def test_the_ledger_records_the_call_at_its_attempts_cost_under_the_model_that_served_it(
    content_type: bytes, data: bytes
) -> None:
    extraction = extract_every_way("anthropic", Endpoint.MESSAGES, content_type, data)
    ctx = context("claude", "/v1/messages", {"model": "claude-fable-5", "max_tokens": 1024, "messages": []})

    record = observe(answered(ctx, usage=extraction.usage, model=extraction.model))

    assert record.cost_usd == COST
    assert (record.model, record.input_tokens, record.output_tokens) == ("claude-opus-4-8", 820, 281)


def test_the_ledger_records_a_call_with_an_unknown_iteration_unpriced_with_its_reported_tokens() -> None:
    extraction = extract_every_way(
        "anthropic", Endpoint.MESSAGES, JSON, with_unknown_step(fixture("anthropic_advisor.json"))
    )
    ctx = context(
        "claude", "/v1/messages", {"model": "claude-sonnet-4-6", "max_tokens": 1024, "messages": []}
    )

    record = observe(answered(ctx, usage=extraction.usage, model=extraction.model))

    assert record.cost_usd is None
    assert (record.input_tokens, record.output_tokens) == (412 + 823, 531 + 1612)  # the advisor's too


def test_a_call_every_model_of_its_fallbacks_declined_is_unpriced_never_priced_at_one_of_them() -> None:
    """Every attempt declined: `message` entries of different models and no `fallback_message`; which
    of them the top-level fields count is not documented."""
    data = BODY.replace(b'"type":"fallback_message"', b'"type":"message"')
    extraction = extract_every_way("anthropic", Endpoint.MESSAGES, JSON, data)

    assert extraction.usage is not None
    assert call_cost(PRICES, "anthropic", "anthropic", "claude-opus-4-8", extraction.usage) is None
