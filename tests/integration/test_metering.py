"""Every proxied call leaves exactly one ledger record whose tokens equal what the provider reported,
streamed or not, on every metered endpoint; and an estimate, flagged, when the provider reported none."""

from __future__ import annotations

import base64
import itertools
from decimal import Decimal
from typing import Any

import httpx
import pytest

from gateway.metering.prices import cost_of, load_price_table
from gateway.metering.usage import TokenUsage
from scripts.fake_upstream import RecordedRequest
from tests.integration.conftest import World
from tests.support.gateway import wait_for_usage_rows

_numbers = itertools.count()
PRICES = load_price_table(None)


def request_id(label: str) -> str:
    return f"meter-{label}-{next(_numbers)}"


def reported_usage(
    request: RecordedRequest, chunks: int = 3, cached: int = 0, reasoning: int = 0
) -> TokenUsage:
    """The usage the fake upstream reports for `request`, in the gateway's normalised terms."""
    return TokenUsage(
        input_tokens=max(1, len(request.body) // 4),
        output_tokens=chunks + reasoning,
        cached_input_tokens=cached,
        cache_write_tokens=0,
        reasoning_tokens=reasoning,
    )


def tokens_of(row: dict[str, Any]) -> TokenUsage:
    return TokenUsage(
        row["input_tokens"],
        row["output_tokens"],
        row["cached_input_tokens"],
        row["cache_write_tokens"],
        row["reasoning_tokens"],
    )


def one_row(world: World, rid: str) -> dict[str, Any]:
    [row] = wait_for_usage_rows(world.gateway.effective_database_url, rid, 1)
    return row


def call(world: World, path: str, body: dict[str, Any], rid: str, **headers: str) -> httpx.Response:
    auth = {"authorization": f"Bearer {world.keys['acme']}", "x-request-id": rid}
    with httpx.stream("POST", world.url + path, json=body, headers={**auth, **headers}) as response:
        response.read()
    return response


CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Count the tokens of this please"}]}


def test_a_chat_completion_is_recorded_with_the_reported_tokens_and_their_price(fresh: World) -> None:
    rid = request_id("chat")

    response = call(
        fresh,
        "/openai/v1/chat/completions",
        CHAT,
        rid,
        **{"x-fake-cached-tokens": "4", "x-fake-reasoning-tokens": "2"},
    )
    row = one_row(fresh, rid)

    [upstream_request] = fresh.upstream.requests
    expected = reported_usage(upstream_request, cached=4, reasoning=2)
    price = PRICES.price_for("openai", "openai", "gpt-4o-mini")
    assert response.status_code == 200
    assert tokens_of(row) == expected
    assert price is not None and Decimal(row["cost_usd"]) == cost_of(expected, price)
    assert row["tenant_id"] == "acme" and row["key_id"].startswith("key_")
    assert (row["provider"], row["endpoint"], row["model"], row["status"]) == (
        "openai",
        "chat.completions",
        "gpt-4o-mini",
        200,
    )
    assert row["streamed"] is False and row["estimated"] is False and row["service_tier"] is None
    assert row["duration_ms"] > 0 and row["ttfb_ms"] is not None


def test_a_stream_is_metered_exactly_and_the_caller_sees_only_what_it_asked_for(fresh: World) -> None:
    rid = request_id("stream")
    direct = httpx.post(
        fresh.upstream.url + "/v1/chat/completions",
        json={**CHAT, "stream": True},
        headers={"x-fake-chunks": "5"},
    )
    fresh.upstream.clear()

    response = call(
        fresh, "/openai/v1/chat/completions", {**CHAT, "stream": True}, rid, **{"x-fake-chunks": "5"}
    )
    row = one_row(fresh, rid)

    [upstream_request] = fresh.upstream.requests
    assert upstream_request.json()["stream_options"] == {"include_usage": True}
    assert b'"usage"' not in response.content
    assert _without_ids(response.content) == _without_ids(direct.content)
    assert tokens_of(row) == reported_usage(upstream_request, chunks=5)
    assert row["streamed"] is True and row["estimated"] is False


def _without_ids(stream: bytes) -> bytes:
    """A stream with the fake's per-response id and timestamp blanked, for comparison."""
    import re

    return re.sub(rb'"id":"[^"]*"|"created":\d+', b"", stream)


def test_a_caller_that_asked_for_stream_usage_gets_it_untouched(fresh: World) -> None:
    rid = request_id("own-usage")
    body = {**CHAT, "stream": True, "stream_options": {"include_usage": True}}

    response = call(fresh, "/openai/v1/chat/completions", body, rid)
    row = one_row(fresh, rid)

    assert b'"choices":[]' in response.content and b'"usage":{' in response.content
    assert tokens_of(row) == reported_usage(fresh.upstream.requests[0])


@pytest.mark.parametrize(
    ("path", "body", "endpoint", "streamed"),
    [
        (
            "/openai/v1/completions",
            {"model": "gpt-3.5-turbo-instruct", "prompt": "Say hi"},
            "completions",
            False,
        ),
        ("/openai/v1/responses", {"model": "gpt-4o-mini", "input": "Say hi"}, "responses", False),
        (
            "/openai/v1/responses",
            {"model": "gpt-4o-mini", "input": "Say hi", "stream": True},
            "responses",
            True,
        ),
        (
            "/anthropic/v1/messages",
            {"model": "claude-haiku-4-5", "max_tokens": 9, "messages": [{"role": "user", "content": "hi"}]},
            "messages",
            False,
        ),
        (
            "/anthropic/v1/messages",
            {
                "model": "claude-haiku-4-5",
                "max_tokens": 9,
                "stream": True,
                "messages": [{"role": "user", "content": "hi"}],
            },
            "messages",
            True,
        ),
        (
            "/gemini/v1beta/models/gemini-2.0-flash:generateContent",
            {"contents": [{"parts": [{"text": "hi"}]}]},
            "generateContent",
            False,
        ),
        (
            "/gemini/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse",
            {"contents": [{"parts": [{"text": "hi"}]}]},
            "streamGenerateContent",
            True,
        ),
        (
            "/gemini/v1beta/models/gemini-2.0-flash:streamGenerateContent",
            {"contents": [{"parts": [{"text": "hi"}]}]},
            "streamGenerateContent",
            False,
        ),
        (
            "/azure/openai/deployments/prod-4o/chat/completions?api-version=2024-10-21",
            {"messages": [{"role": "user", "content": "hi"}], "stream": True},
            "chat.completions",
            True,
        ),
    ],
)
def test_every_metered_endpoint_records_the_reported_usage(
    fresh: World, path: str, body: dict[str, Any], endpoint: str, streamed: bool
) -> None:
    rid = request_id(endpoint)
    headers = {"x-api-key": fresh.keys["acme"]} if path.startswith("/anthropic") else {}
    # Legacy completions report no token details, so they are only asked for elsewhere.
    details = (
        {} if endpoint == "completions" else {"x-fake-cached-tokens": "1", "x-fake-reasoning-tokens": "3"}
    )

    response = call(fresh, path, body, rid, **headers, **details)
    row = one_row(fresh, rid)

    assert response.status_code == 200
    [upstream_request] = fresh.upstream.requests
    expected = (
        reported_usage(upstream_request, cached=1, reasoning=3)
        if details
        else reported_usage(upstream_request)
    )
    if endpoint == "messages":  # Anthropic counts thinking inside output_tokens and does not break it out
        expected = expected._replace(reasoning_tokens=0)
    assert tokens_of(row) == expected
    assert (row["endpoint"], row["streamed"], row["estimated"]) == (endpoint, streamed, False)


def test_embeddings_record_input_tokens_only(fresh: World) -> None:
    rid = request_id("embeddings")

    call(fresh, "/openai/v1/embeddings", {"model": "text-embedding-3-small", "input": ["a", "b"]}, rid)
    row = one_row(fresh, rid)

    assert row["input_tokens"] == max(1, len(fresh.upstream.requests[0].body) // 4)
    assert row["output_tokens"] == 0
    assert row["endpoint"] == "embeddings" and Decimal(row["cost_usd"]) > 0


@pytest.mark.parametrize("dimensions", [8, 3072])
def test_base64_embeddings_reach_the_caller_as_sent_and_record_their_input_tokens(
    fresh: World, dimensions: int
) -> None:
    """`encoding_format: base64`: each vector one long string; the larger ones past the size from which
    only the body's ends are searched for its usage."""
    rid = request_id("embeddings-base64")
    body = {"model": "text-embedding-3-small", "input": ["a", "b", "c"], "encoding_format": "base64"}
    body["dimensions"] = dimensions

    response = call(fresh, "/openai/v1/embeddings", body, rid)
    row = one_row(fresh, rid)

    vectors = [item["embedding"] for item in response.json()["data"]]
    assert len(vectors) == 3 and all(len(base64.b64decode(vector)) == 4 * dimensions for vector in vectors)
    assert row["input_tokens"] == response.json()["usage"]["prompt_tokens"] > 0
    assert row["output_tokens"] == 0 and row["estimated"] is False
    assert Decimal(row["cost_usd"]) > 0


def test_a_stream_cut_by_the_upstream_is_recorded_as_estimated_from_what_passed(fresh: World) -> None:
    rid = request_id("cut")

    call(
        fresh,
        "/openai/v1/chat/completions",
        {**CHAT, "stream": True},
        rid,
        **{"x-fake-chunks": "40", "x-fake-reset-after": "20"},
    )
    row = one_row(fresh, rid)

    assert row["estimated"] is True
    assert row["output_tokens"] > 0 and row["input_tokens"] > 0
    assert row["cost_usd"] is not None


def test_a_stream_cut_after_message_start_keeps_the_input_counts_it_reported(fresh: World) -> None:
    rid = request_id("cut-anthropic")
    body = {
        "model": "claude-haiku-4-5",
        "max_tokens": 64,
        "stream": True,
        "messages": [{"role": "user", "content": "Tell me a long story"}],
    }

    call(
        fresh,
        "/anthropic/v1/messages",
        body,
        rid,
        **{"x-api-key": fresh.keys["acme"], "x-fake-chunks": "12", "x-fake-reset-after": "5"},
    )
    row = one_row(fresh, rid)

    [upstream_request] = fresh.upstream.requests
    assert row["estimated"] is True
    assert row["input_tokens"] == reported_usage(upstream_request).input_tokens  # message_start's, exact
    assert row["output_tokens"] > 0 and row["cost_usd"] is not None


def test_a_provider_that_reports_no_usage_is_estimated_never_zero(fresh: World) -> None:
    rid = request_id("no-usage")

    call(
        fresh,
        "/anthropic/v1/messages",
        {
            "model": "claude-haiku-4-5",
            "max_tokens": 9,
            "stream": True,
            "messages": [{"role": "user", "content": "Tell me a long story"}],
        },
        rid,
        **{"x-api-key": fresh.keys["acme"], "x-fake-no-usage": "1", "x-fake-chunks": "12"},
    )
    row = one_row(fresh, rid)

    assert row["estimated"] is True
    assert row["input_tokens"] > 0 and row["output_tokens"] > 0


def test_a_call_sent_and_unanswered_when_the_timeout_ran_out_is_estimated(fresh: World) -> None:
    rid = request_id("unanswered")

    response = call(fresh, "/slow/v1/chat/completions", CHAT, rid, **{"x-fake-delay-ms": "2000"})
    row = one_row(fresh, rid)

    assert response.status_code == 504
    assert row["estimated"] is True and row["status"] == 504
    assert row["input_tokens"] > 0 and row["output_tokens"] == 0


def test_a_call_that_never_reached_its_upstream_costs_nothing(fresh: World) -> None:
    rid = request_id("unreached")

    response = call(fresh, "/dead/v1/chat/completions", CHAT, rid)
    row = one_row(fresh, rid)

    assert response.status_code == 502
    assert (row["estimated"], row["input_tokens"], Decimal(row["cost_usd"])) == (False, 0, Decimal(0))


def test_a_prompt_above_200k_tokens_is_priced_at_the_long_context_rates(fresh: World) -> None:
    rid = request_id("long-context")
    body = {
        "model": "claude-sonnet-4-5-20250929",
        "max_tokens": 9,
        "stream": True,
        "messages": [{"role": "user", "content": "Summarise the attached repository"}],
    }

    response = call(fresh, "/anthropic/v1/messages", body, rid, **{"x-fake-prompt-tokens": "200001"})
    row = one_row(fresh, rid)

    price = PRICES.price_for("anthropic", "anthropic", "claude-sonnet-4-5")
    assert price is not None and price.long_context is not None
    assert response.status_code == 200
    assert (row["input_tokens"], row["output_tokens"]) == (200_001, 3)
    # every token at the long-context rates: twice the input rate, 1.5 times the output rate
    assert Decimal(row["cost_usd"]) == (200_001 * Decimal("6") + 3 * Decimal("22.50")) / 1_000_000
    assert price.long_context.input == 2 * price.input


@pytest.mark.parametrize("stream", [False, True], ids=["body", "stream"])
def test_cache_writes_kept_an_hour_are_priced_at_their_own_rate(fresh: World, stream: bool) -> None:
    rid = request_id(f"cache-1h-{stream}")
    messages = [{"role": "user", "content": "Review this long document"}]
    body = {"model": "claude-haiku-4-5", "max_tokens": 9, "stream": stream, "messages": messages}
    controls = {"x-fake-prompt-tokens": "1200", "x-fake-cache-write-tokens": "1000,600"}

    response = call(fresh, "/anthropic/v1/messages", body, rid, **controls)
    row = one_row(fresh, rid)

    price = PRICES.price_for("anthropic", "anthropic", "claude-haiku-4-5")
    assert price is not None and response.status_code == 200
    assert (row["input_tokens"], row["cache_write_tokens"], row["output_tokens"]) == (1200, 1000, 3)
    # 200 uncached + 400 written for five minutes + 600 written for an hour + 3 output tokens
    expected = 200 * price.input + 400 * price.cache_write + 600 * price.cache_write_1h + 3 * price.output
    assert Decimal(row["cost_usd"]) == expected / 1_000_000
    assert price.cache_write_1h == 2 * price.input > price.cache_write


@pytest.mark.parametrize(
    ("path", "stream"),
    [
        ("/openai/v1/chat/completions", False),
        ("/openai/v1/chat/completions", True),
        ("/openai/v1/responses", False),
        ("/openai/v1/responses", True),
    ],
    ids=["chat-body", "chat-stream", "responses-body", "responses-stream"],
)
def test_openai_cache_writes_are_recorded_and_priced_at_the_cache_write_rate(
    fresh: World, path: str, stream: bool
) -> None:
    """gpt-6-sol reads 200 tokens of a 1,200-token prompt from the cache and writes 800 to it: those at
    $0.20 and $2.50 per million, the other 200 at the $2 input rate (a chat stream through the usage
    the gateway asks for and strips)."""
    rid = request_id(f"openai-cache-write-{path.rsplit('/', 1)[1]}-{stream}")
    body: dict[str, Any] = {"model": "gpt-6-sol", "stream": stream}
    if path.endswith("/responses"):
        body["input"] = "Review this long document"
    else:
        body["messages"] = [{"role": "user", "content": "Review this long document"}]
    controls = {
        "x-fake-prompt-tokens": "1200",
        "x-fake-cached-tokens": "200",
        "x-fake-openai-cache-write-tokens": "800",
    }

    response = call(fresh, path, body, rid, **controls)
    row = one_row(fresh, rid)

    price = PRICES.price_for("openai", "openai", "gpt-6-sol")
    assert price is not None and response.status_code == 200 and not row["estimated"]
    assert tokens_of(row) == TokenUsage(1200, 3, 200, 800, 0)
    expected = 200 * price.input + 200 * price.cached_input + 800 * price.cache_write + 3 * price.output
    assert Decimal(row["cost_usd"]) == expected / 1_000_000 == Decimal("0.00247")
    assert price.cache_write == Decimal("1.25") * price.input


def test_a_prompt_of_200k_tokens_is_priced_at_the_standard_rates(fresh: World) -> None:
    rid = request_id("at-threshold")
    body = {"model": "gemini-2.5-pro", "contents": [{"parts": [{"text": "Summarise the attached book"}]}]}

    call(
        fresh,
        "/gemini/v1beta/models/gemini-2.5-pro:generateContent",
        body,
        rid,
        **{"x-fake-prompt-tokens": "200000"},
    )
    row = one_row(fresh, rid)

    assert (row["input_tokens"], row["output_tokens"]) == (200_000, 3)
    assert Decimal(row["cost_usd"]) == (200_000 * Decimal("1.25") + 3 * Decimal("10")) / 1_000_000


def test_a_model_without_a_price_is_recorded_with_cost_null(fresh: World) -> None:
    rid = request_id("unpriced")

    call(fresh, "/openai/v1/chat/completions", {**CHAT, "model": "our-fine-tune-v7"}, rid)
    row = one_row(fresh, rid)

    assert row["input_tokens"] > 0 and row["cost_usd"] is None


def test_refused_and_failed_calls_are_recorded_too(fresh: World) -> None:
    refused, failed = request_id("refused"), request_id("failed")

    httpx.post(fresh.url + "/openai/v1/chat/completions", json=CHAT, headers={"x-request-id": refused})
    call(fresh, "/openai/v1/chat/completions", CHAT, failed, **{"x-fake-status": "500"})
    refused_row, failed_row = one_row(fresh, refused), one_row(fresh, failed)

    assert (refused_row["status"], refused_row["tenant_id"], refused_row["input_tokens"]) == (401, None, 0)
    assert Decimal(refused_row["cost_usd"]) == 0
    assert (failed_row["status"], failed_row["tenant_id"], failed_row["estimated"]) == (500, "acme", False)
    assert failed_row["input_tokens"] == 0


def test_an_upstream_that_refuses_stream_options_still_streams_and_is_metered_by_estimate(
    fresh: World,
) -> None:
    """Azure OpenAI before API version 2024-09-01-preview answers 400 to `stream_options`: the caller's
    own request is sent instead, and that API version is not asked again for a while."""
    import openai

    refuse = {"x-fake-reject-stream-options": "1"}
    first, second = request_id("refused"), request_id("refused-again")
    with openai.AzureOpenAI(
        azure_endpoint=f"{fresh.url}/azure",
        api_key=fresh.keys["acme"],
        api_version="2024-06-01",
        max_retries=0,
    ) as azure:
        streams = [
            azure.chat.completions.create(
                model="my-gpt4o",
                messages=[{"role": "user", "content": "hi"}],
                stream=True,
                extra_headers={**refuse, "x-request-id": rid},
            )
            for rid in (first, second)
        ]
        answers = [
            "".join(chunk.choices[0].delta.content or "" for chunk in s if chunk.choices) for s in streams
        ]

    asked, resent, unasked = fresh.upstream.requests
    assert b"stream_options" in asked.body and resent.body == unasked.body
    assert b"stream_options" not in resent.body
    assert answers == ["Hello from the", "Hello from the"]
    for rid in (first, second):
        row = one_row(fresh, rid)
        assert row["status"] == 200 and row["estimated"] is True and row["output_tokens"] > 0
    refusals = [r for r in fresh.gateway.log_records() if "refused stream_options" in r.get("msg", "")]
    assert [r.get("api_version") for r in refusals] == ["2024-06-01"]


@pytest.mark.parametrize("how", ["body", "stream", "responses"])
def test_a_call_served_in_the_flex_tier_is_priced_at_the_flex_rates(fresh: World, how: str) -> None:
    """The official SDK asks for `service_tier="flex"`; the upstream reports it in the body, in the
    chunks the gateway strips of the usage it asked for, or in the Responses API's response."""
    import openai

    rid = request_id(f"flex-{how}")
    extra = {"extra_headers": {"x-request-id": rid}}
    with openai.OpenAI(base_url=f"{fresh.url}/openai/v1", api_key=fresh.keys["acme"], max_retries=0) as api:
        if how == "responses":
            answer = api.responses.create(model="o3", input="Tidy this list", service_tier="flex", **extra)
            tiers = [answer.service_tier]
        else:
            messages = [{"role": "user", "content": "Tidy this list"}]
            if how == "stream":
                chunks = list(
                    api.chat.completions.create(
                        model="o3", messages=messages, service_tier="flex", stream=True, **extra
                    )
                )
                tiers = [chunk.service_tier for chunk in chunks]
                assert all(chunk.usage is None and chunk.choices for chunk in chunks)  # as the caller asked
            else:
                tiers = [
                    api.chat.completions.create(
                        model="o3", messages=messages, service_tier="flex", **extra
                    ).service_tier
                ]
    row = one_row(fresh, rid)

    price = PRICES.price_for("openai", "openai", "o3")
    assert price is not None
    flex = price.service_tiers["flex"]
    assert set(tiers) == {"flex"} and row["service_tier"] == "flex"
    assert row["input_tokens"] > 0 and row["output_tokens"] > 0 and not row["estimated"]
    expected = (row["input_tokens"] * flex.input + row["output_tokens"] * flex.output) / 1_000_000
    assert Decimal(row["cost_usd"]) == expected
    assert flex.input == price.input / 2


@pytest.mark.parametrize("stream", [False, True], ids=["body", "stream"])
def test_an_anthropic_call_served_from_priority_capacity_is_recorded_in_that_tier(
    fresh: World, stream: bool
) -> None:
    """The upstream reports `usage.service_tier: priority` (in a stream, on `message_start`); the built-in
    table lists no Priority Tier rates for Claude (each customer's own), so the call costs the model's."""
    import anthropic

    rid = request_id(f"anthropic-priority-{'stream' if stream else 'body'}")
    extra = {"extra_headers": {"x-request-id": rid, "x-fake-service-tier": "priority"}}
    asked = {"model": "claude-haiku-4-5", "max_tokens": 64, "messages": [{"role": "user", "content": "Hi"}]}
    with anthropic.Anthropic(
        base_url=f"{fresh.url}/anthropic", api_key=fresh.keys["acme"], max_retries=0
    ) as claude:
        if stream:
            with claude.messages.stream(**asked, **extra) as events:  # type: ignore[arg-type]
                message = events.get_final_message()
        else:
            message = claude.messages.create(**asked, **extra)  # type: ignore[arg-type]
    row = one_row(fresh, rid)

    price = PRICES.price_for("anthropic", "anthropic", "claude-haiku-4-5")
    assert price is not None
    assert message.usage.service_tier == "priority" and row["service_tier"] == "priority"
    assert row["output_tokens"] == message.usage.output_tokens and not row["estimated"]
    expected = (row["input_tokens"] * price.input + row["output_tokens"] * price.output) / 1_000_000
    assert Decimal(row["cost_usd"]) == expected


AUDIO_CHAT = {
    "model": "gpt-4o-audio-preview-2025-06-03",
    "modalities": ["text", "audio"],
    "audio": {"voice": "alloy", "format": "wav"},
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "input_audio", "input_audio": {"data": "UklGRiQAAABXQVZF", "format": "wav"}}
            ],
        }
    ],
}


@pytest.mark.parametrize("stream", [False, True], ids=["body", "stream"])
def test_audio_tokens_are_priced_at_the_audio_rates_and_the_rest_at_the_text_rates(
    fresh: World, stream: bool
) -> None:
    """gpt-4o-audio-preview hears 1,000 tokens of a 1,200-token prompt and speaks 50 of its 53 output
    tokens: those at $40 and $80 per million, the text at $2.50 and $10 (a stream through the usage
    the gateway asks for and strips)."""
    rid = request_id(f"audio-{'stream' if stream else 'body'}")
    controls = {"x-fake-prompt-tokens": "1200", "x-fake-audio-tokens": "1000,50"}

    response = call(fresh, "/openai/v1/chat/completions", {**AUDIO_CHAT, "stream": stream}, rid, **controls)
    row = one_row(fresh, rid)

    assert response.status_code == 200 and not row["estimated"]
    assert (row["input_tokens"], row["output_tokens"]) == (1200, 53)  # the audio among them, as reported
    # 200 x 2.50 + 1000 x 40 + 3 x 10 + 50 x 80 = 44530 per million (as text alone: 3530)
    assert Decimal(row["cost_usd"]) == Decimal("0.04453")


def _unpriced_calls(world: World) -> float:
    for line in httpx.get(world.url + "/metrics").text.splitlines():
        if line.startswith('tollgate_usage_unpriced_total{provider="openai"}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_audio_tokens_of_a_model_without_audio_rates_leave_the_call_unpriced_and_counted(
    fresh: World,
) -> None:
    rid = request_id("audio-unpriced")
    before = _unpriced_calls(fresh)

    response = call(
        fresh,
        "/openai/v1/chat/completions",
        {**AUDIO_CHAT, "model": "gpt-4o-mini"},
        rid,
        **{"x-fake-prompt-tokens": "1200", "x-fake-audio-tokens": "1000,50"},
    )
    row = one_row(fresh, rid)

    assert response.status_code == 200
    assert (row["input_tokens"], row["output_tokens"]) == (1200, 53) and row["cost_usd"] is None
    assert _unpriced_calls(fresh) == before + 1
