"""The official Anthropic SDK pointed at the gateway: messages, streamed or not, and token counting."""

from __future__ import annotations

from decimal import Decimal

import anthropic
import pytest

from tests.integration.conftest import CREDENTIALS, World
from tests.support.gateway import wait_for_usage_rows


def client(world: World, key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=f"{world.url}/anthropic", api_key=key, max_retries=0)


def test_message_is_answered_with_the_tenants_anthropic_key(fresh: World) -> None:
    key = fresh.keys["acme"]

    with client(fresh, key) as claude:
        message = claude.messages.create(
            model="claude-sonnet-5-5", max_tokens=64, messages=[{"role": "user", "content": "Say hello"}]
        )

    assert message.content[0].type == "text" and message.content[0].text == "Hello from the"
    [request] = fresh.upstream.requests
    assert request.path == "/v1/messages"
    assert request.header("x-api-key") == CREDENTIALS[("acme", "anthropic")]
    assert request.header("anthropic-version")
    assert request.header("authorization") is None
    assert key not in str(request.headers) and key.encode() not in request.body


def test_streamed_message_arrives_event_by_event(fresh: World) -> None:
    with (
        client(fresh, fresh.keys["acme"]) as claude,
        claude.messages.stream(
            model="claude-sonnet-5-5",
            max_tokens=64,
            messages=[{"role": "user", "content": "Stream"}],
            extra_headers={"x-fake-chunks": "5"},
        ) as stream,
    ):
        texts = list(stream.text_stream)
        final = stream.get_final_message()

    assert texts == ["Hello", " from", " the", " fake", " upstream"]
    assert final.usage.output_tokens == 5
    assert fresh.upstream.requests[0].header("x-api-key") == CREDENTIALS[("acme", "anthropic")]


def test_count_tokens_passes_through(fresh: World) -> None:
    with client(fresh, fresh.keys["acme"]) as claude:
        counted = claude.messages.count_tokens(
            model="claude-sonnet-5-5", messages=[{"role": "user", "content": "How many tokens is this?"}]
        )

    assert counted.input_tokens > 0
    assert fresh.upstream.requests[0].path == "/v1/messages/count_tokens"


def test_tenant_without_an_anthropic_credential_is_refused_in_anthropic_dialect(fresh: World) -> None:
    with (
        client(fresh, fresh.keys["umbrella"]) as claude,
        pytest.raises(anthropic.PermissionDeniedError) as denied,
    ):
        claude.messages.create(
            model="claude-sonnet-5-5", max_tokens=8, messages=[{"role": "user", "content": "hi"}]
        )

    assert denied.value.status_code == 403
    assert denied.value.body == {
        "type": "error",
        "error": {
            "type": "permission_error",
            "message": "no credential for provider 'anthropic' is configured for tenant 'umbrella'",
        },
    }
    assert fresh.upstream.requests == []


@pytest.mark.parametrize("stream", [False, True], ids=["body", "stream"])
def test_a_server_side_compaction_is_recorded_with_the_call(fresh: World, stream: bool) -> None:
    """The summary a compaction wrote is billed but reported only in `usage.iterations`: the record
    counts it beside the top-level usage the SDK shows."""
    rid = f"anthropic-compaction-{'stream' if stream else 'body'}"
    asked = {
        "model": "claude-haiku-4-5",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "Go on"}],
    }
    extra = {"extra_headers": {"x-request-id": rid, "x-fake-compaction": "150000,3500"}}
    with client(fresh, fresh.keys["acme"]) as claude:
        if stream:
            with claude.beta.messages.stream(**asked, **extra) as events:  # type: ignore[arg-type]
                message = events.get_final_message()
        else:
            message = claude.beta.messages.create(**asked, **extra)  # type: ignore[arg-type]
    [row] = wait_for_usage_rows(fresh.gateway.effective_database_url, rid, 1)

    assert message.usage.iterations is not None
    assert [step.type for step in message.usage.iterations] == ["compaction", "message"]
    assert row["input_tokens"] == message.usage.input_tokens + 150000
    assert row["output_tokens"] == message.usage.output_tokens + 3500
    assert not row["estimated"]


@pytest.mark.parametrize("stream", [False, True], ids=["body", "stream"])
def test_a_fast_mode_call_is_recorded_in_the_fast_tier_and_priced_at_the_fast_rates(
    fresh: World, stream: bool
) -> None:
    """`usage.speed: "fast"` (the body's usage, `message_start`'s): Claude Opus 5.5's fast rates, $8 /
    $40 per million input / output tokens, twice its standard ones; the SDK shows the speed too."""
    rid = f"anthropic-fast-{'stream' if stream else 'body'}"
    asked = {"model": "claude-opus-5-5", "max_tokens": 64, "messages": [{"role": "user", "content": "Quick"}]}
    extra = {"extra_headers": {"x-request-id": rid, "x-fake-speed": "fast", "x-fake-prompt-tokens": "1000"}}
    with client(fresh, fresh.keys["acme"]) as claude:
        if stream:
            with claude.messages.stream(**asked, **extra) as events:  # type: ignore[arg-type]
                message = events.get_final_message()
        else:
            message = claude.messages.create(**asked, **extra)  # type: ignore[arg-type]
    [row] = wait_for_usage_rows(fresh.gateway.effective_database_url, rid, 1)

    assert message.usage.speed == "fast"
    assert (row["input_tokens"], row["output_tokens"]) == (1000, message.usage.output_tokens)
    assert row["service_tier"] == "fast" and not row["estimated"]
    assert Decimal(row["cost_usd"]) == (1000 * 8 + row["output_tokens"] * 40) / Decimal(1_000_000)


def test_a_fast_mode_call_of_a_model_without_fast_rates_is_unpriced(fresh: World) -> None:
    rid = "anthropic-fast-unpriced"
    with client(fresh, fresh.keys["acme"]) as claude:
        claude.messages.create(
            model="claude-sonnet-5-5",
            max_tokens=64,
            messages=[{"role": "user", "content": "Quick"}],
            extra_headers={"x-request-id": rid, "x-fake-speed": "fast"},
        )
    [row] = wait_for_usage_rows(fresh.gateway.effective_database_url, rid, 1)

    assert row["service_tier"] == "fast" and row["input_tokens"] > 0
    assert row["cost_usd"] is None  # never the standard price of a call billed above it


@pytest.mark.parametrize("stream", [False, True], ids=["body", "stream"])
def test_a_us_only_call_is_priced_at_1_1_times_its_model_s_rates(fresh: World, stream: bool) -> None:
    """`usage.inference_geo: "us"` (the body's usage, `message_start`'s): Claude Opus 5.5's $4 / $20 per
    million input / output tokens, times 1.1; the SDK shows the geo too."""
    rid = f"anthropic-us-{'stream' if stream else 'body'}"
    asked = {"model": "claude-opus-5-5", "max_tokens": 64, "messages": [{"role": "user", "content": "Here"}]}
    headers = {"x-request-id": rid, "x-fake-inference-geo": "us", "x-fake-prompt-tokens": "1000"}
    with client(fresh, fresh.keys["acme"]) as claude:
        if stream:
            with claude.messages.stream(**asked, extra_headers=headers) as events:  # type: ignore[arg-type]
                message = events.get_final_message()
        else:
            message = claude.messages.create(**asked, extra_headers=headers)  # type: ignore[arg-type]
    [row] = wait_for_usage_rows(fresh.gateway.effective_database_url, rid, 1)

    assert message.usage.inference_geo == "us"
    assert (row["input_tokens"], row["output_tokens"]) == (1000, message.usage.output_tokens)
    assert row["service_tier"] is None and not row["estimated"]
    standard = (1000 * 4 + row["output_tokens"] * 20) / Decimal(1_000_000)
    assert Decimal(row["cost_usd"]) == standard * Decimal("1.1")


def test_a_us_only_call_of_a_model_without_a_us_multiplier_is_unpriced(fresh: World) -> None:
    rid = "anthropic-us-unpriced"
    with client(fresh, fresh.keys["acme"]) as claude:
        claude.messages.create(
            model="claude-haiku-4-5",
            max_tokens=8,
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={"x-request-id": rid, "x-fake-inference-geo": "us"},
        )
    [row] = wait_for_usage_rows(fresh.gateway.effective_database_url, rid, 1)

    assert row["input_tokens"] > 0 and row["cost_usd"] is None
