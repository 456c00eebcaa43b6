"""Gemini (Google AI Studio) through the gateway: the key in `x-goog-api-key` or `?key=`, the tenant's key
sent upstream in `x-goog-api-key`, streamed and not; and its OpenAI-compatible API (`/v1beta/openai/`),
reached by the official OpenAI SDK, metered exactly and priced as an OpenAI provider's calls are."""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

import httpx
import openai
import orjson
import pytest
from openai.types.chat import ChatCompletionMessageParam

from gateway.metering.prices import cost_of, load_price_table
from gateway.metering.usage import TokenUsage
from scripts.fake_upstream import RecordedRequest
from tests.integration.conftest import CREDENTIALS, World
from tests.support.gateway import wait_for_usage_rows

BODY = {"contents": [{"role": "user", "parts": [{"text": "Say hello"}]}]}


def test_generate_content_with_the_key_in_the_header(fresh: World) -> None:
    key = fresh.keys["acme"]

    response = httpx.post(
        f"{fresh.url}/gemini/v1beta/models/gemini-2.0-flash:generateContent",
        json=BODY,
        headers={"x-goog-api-key": key},
    )

    assert response.status_code == 200
    assert response.json()["candidates"][0]["content"]["parts"][0]["text"]
    [request] = fresh.upstream.requests
    assert request.path == "/v1beta/models/gemini-2.0-flash:generateContent"
    assert request.header("x-goog-api-key") == CREDENTIALS[("acme", "gemini")]


def test_stream_generate_content_with_the_key_in_the_query_string(fresh: World) -> None:
    key = fresh.keys["acme"]
    url = f"{fresh.url}/gemini/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse&key={key}"

    with httpx.stream("POST", url, json=BODY, headers={"x-fake-chunks": "4"}) as response:
        events = [line for line in response.iter_lines() if line.startswith("data: ")]

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert len(events) == 4
    [request] = fresh.upstream.requests
    assert request.query == "alt=sse"
    assert key not in request.target
    assert request.header("x-goog-api-key") == CREDENTIALS[("acme", "gemini")]


def test_gemini_errors_come_back_in_gemini_dialect(fresh: World) -> None:
    response = httpx.post(f"{fresh.url}/gemini/v1beta/models/gemini-2.0-flash:generateContent", json=BODY)

    assert response.status_code == 401
    assert response.json()["error"]["status"] == "UNAUTHENTICATED"
    assert response.json()["error"]["code"] == 401


# Gemini's OpenAI-compatible API, reached by the official OpenAI SDK through the gemini mount: metered
# exactly as an OpenAI provider's calls are, and priced at the Gemini prices.

_numbers = itertools.count()
PRICES = load_price_table(None)
MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Count the tokens of this please"}]


def openai_client(world: World, rid: str) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{world.url}/gemini/v1beta/openai/",
        api_key=world.keys["acme"],
        max_retries=0,
        default_headers={"x-request-id": rid},
    )


def request_id(label: str) -> str:
    return f"gemini-openai-{label}-{next(_numbers)}"


def one_row(world: World, rid: str) -> dict[str, Any]:
    [row] = wait_for_usage_rows(world.gateway.effective_database_url, rid, 1)
    return row


def reported(request: RecordedRequest, chunks: int = 3) -> TokenUsage:
    """The usage the fake upstream reports for `request` (see scripts/fake_upstream.py)."""
    return TokenUsage(input_tokens=max(1, len(request.body) // 4), output_tokens=chunks)


def assert_exact_and_priced(row: dict[str, Any], usage: TokenUsage, model: str, streamed: bool) -> None:
    price = PRICES.price_for("gemini", "gemini", model)
    assert price is not None
    assert (row["input_tokens"], row["output_tokens"]) == (usage.input_tokens, usage.output_tokens)
    assert row["estimated"] is False and row["streamed"] is streamed
    assert Decimal(row["cost_usd"]) == cost_of(usage, price)
    assert (row["provider"], row["endpoint"], row["model"], row["status"]) == (
        "gemini",
        "chat.completions",
        model,
        200,
    )


@pytest.mark.parametrize("model", ["gemini-2.5-flash", "models/gemini-2.5-flash"])
def test_the_openai_sdk_through_the_gemini_mount_is_metered_exactly_and_priced(
    fresh: World, model: str
) -> None:
    rid = request_id("chat")

    with openai_client(fresh, rid) as api:
        completion = api.chat.completions.create(model=model, messages=MESSAGES)
    row = one_row(fresh, rid)

    [upstream] = fresh.upstream.requests
    assert completion.choices[0].message.content == "Hello from the"
    assert upstream.path == "/v1beta/openai/chat/completions"
    assert upstream.header("x-goog-api-key") == CREDENTIALS[("acme", "gemini")]
    assert "stream_options" not in upstream.json()
    assert_exact_and_priced(row, reported(upstream), model, streamed=False)


def test_an_openai_sdk_stream_through_the_gemini_mount_is_asked_for_its_usage_and_gets_none_unasked(
    fresh: World,
) -> None:
    rid = request_id("stream")

    with openai_client(fresh, rid) as api:
        stream = api.chat.completions.create(
            model="gemini-2.5-flash", messages=MESSAGES, stream=True, extra_headers={"x-fake-chunks": "5"}
        )
        chunks = list(stream)
    row = one_row(fresh, rid)

    [upstream] = fresh.upstream.requests
    assert upstream.path == "/v1beta/openai/chat/completions"
    assert upstream.json()["stream_options"] == {"include_usage": True}
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
        "Hello from the fake upstream"
    )
    assert all(chunk.choices and chunk.usage is None for chunk in chunks)
    assert_exact_and_priced(row, reported(upstream, chunks=5), "gemini-2.5-flash", streamed=True)


def test_the_raw_stream_through_the_gemini_mount_holds_no_usage_member_the_caller_did_not_ask_for(
    fresh: World,
) -> None:
    rid = request_id("raw")
    body = {"model": "gemini-2.5-flash", "messages": MESSAGES, "stream": True}
    headers = {"authorization": f"Bearer {fresh.keys['acme']}", "x-request-id": rid}

    response = httpx.post(f"{fresh.url}/gemini/v1beta/openai/chat/completions", json=body, headers=headers)
    row = one_row(fresh, rid)

    assert response.status_code == 200
    assert b'"usage"' not in response.content and b'"choices":[]' not in response.content
    assert response.content.endswith(b"data: [DONE]\n\n")
    assert row["estimated"] is False and row["input_tokens"] > 0 and row["output_tokens"] == 3


def test_an_openai_sdk_stream_that_asked_for_usage_through_the_gemini_mount_gets_it(fresh: World) -> None:
    rid = request_id("asked")

    with openai_client(fresh, rid) as api:
        stream = api.chat.completions.create(
            model="gemini-2.5-flash",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
        usages = [chunk.usage for chunk in stream if chunk.usage is not None]
    row = one_row(fresh, rid)

    [upstream] = fresh.upstream.requests
    expected = reported(upstream)
    assert [(u.prompt_tokens, u.completion_tokens) for u in usages] == [
        (expected.input_tokens, expected.output_tokens)
    ]
    assert_exact_and_priced(row, expected, "gemini-2.5-flash", streamed=True)


def test_openai_sdk_embeddings_through_the_gemini_mount_are_metered_exactly(fresh: World) -> None:
    rid = request_id("embeddings")

    with openai_client(fresh, rid) as api:
        embeddings = api.embeddings.create(model="gemini-embedding-001", input=["a", "b"])
    row = one_row(fresh, rid)

    [upstream] = fresh.upstream.requests
    price = PRICES.price_for("gemini", "gemini", "gemini-embedding-001")
    usage = TokenUsage(input_tokens=embeddings.usage.prompt_tokens)
    assert upstream.path == "/v1beta/openai/embeddings"
    assert (row["endpoint"], row["input_tokens"], row["output_tokens"]) == (
        "embeddings",
        usage.input_tokens,
        0,
    )
    assert row["estimated"] is False
    assert price is not None and Decimal(row["cost_usd"]) == cost_of(usage, price)


def test_a_native_gemini_stream_is_forwarded_as_the_caller_sent_it(fresh: World) -> None:
    key = fresh.keys["acme"]
    url = f"{fresh.url}/gemini/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    sent = orjson.dumps({**BODY, "stream": True})

    response = httpx.post(
        url, content=sent, headers={"x-goog-api-key": key, "content-type": "application/json"}
    )

    [upstream] = fresh.upstream.requests
    assert response.status_code == 200
    assert upstream.body == sent
    assert b"usageMetadata" in response.content
