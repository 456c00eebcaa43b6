"""Azure OpenAI and an OpenAI-compatible proxy as the official `openai` SDK meets them through a running
gateway, in front of an upstream that answers in their own shapes: Azure's first stream chunk with
`prompt_filter_results` and no model, its `content_filter_results` on every chunk, its `ada` embeddings;
a LiteLLM proxy's usage chunk, whose one choice says nothing, after the finish."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from gateway.metering.prices import cost_of, load_price_table
from gateway.metering.usage import TokenUsage
from tests.support.gateway import GatewayHarness, free_port, wait_for_usage_rows

PRICES = load_price_table(None)
AZURE_MODEL = "gpt-4o-2024-11-20"
FILTER_RESULTS = {
    "hate": {"filtered": False, "severity": "safe"},
    "self_harm": {"filtered": False, "severity": "safe"},
    "sexual": {"filtered": False, "severity": "safe"},
    "violence": {"filtered": False, "severity": "safe"},
}
AZURE_WORDS = ("Azure", " says", " hello")
AZURE_USAGE = {"completion_tokens": 3, "prompt_tokens": 11, "total_tokens": 14}
LITELLM_PIECES = 300  # of 4,000 characters: past the bytes a stream's reading keeps for its end
LITELLM_USAGE = {
    "completion_tokens": 290_000,
    "prompt_tokens": 25,
    "total_tokens": 290_025,
    "completion_tokens_details": None,
    "prompt_tokens_details": {"audio_tokens": None, "cached_tokens": 0},
}


def compact(event: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(event, separators=(",", ":")).encode() + b"\n\n"


def azure_events(include_usage: bool) -> list[bytes]:
    """A gpt-4o deployment's stream, Azure's members in alphabetical order: first the prompt's filter
    results (no choices, no model), then chunks with their own filter results."""
    first = {
        "choices": [],
        "created": 0,
        "id": "",
        "model": "",
        "object": "",
        "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": FILTER_RESULTS}],
    }
    chunks: list[dict[str, Any]] = []
    deltas: list[dict[str, Any]] = [{"content": "", "refusal": None, "role": "assistant"}]
    deltas += [{"content": word} for word in AZURE_WORDS]
    for number, delta in enumerate(deltas):
        chunks.append(azure_chunk(delta, None, {} if number == 0 else FILTER_RESULTS))
    chunks.append(azure_chunk({}, "stop", {}))
    if include_usage:
        for chunk in chunks:
            chunk["usage"] = None
        chunks.append({**azure_chunk({}, None, {}), "choices": [], "usage": AZURE_USAGE})
    return [compact(first), *map(compact, chunks), b"data: [DONE]\n\n"]


def azure_chunk(delta: dict[str, Any], finish: str | None, filters: dict[str, Any]) -> dict[str, Any]:
    choice = {
        "content_filter_results": filters,
        "delta": delta,
        "finish_reason": finish,
        "index": 0,
        "logprobs": None,
    }
    return {
        "choices": [choice],
        "created": 1733742000,
        "id": "chatcmpl-AcSvZ2kS0h5Rp3",
        "model": AZURE_MODEL,
        "object": "chat.completion.chunk",
        "system_fingerprint": "fp_04751d0b65",
    }


def litellm_events(include_usage: bool) -> list[bytes]:
    def chunk(choice: dict[str, Any], **extra: Any) -> bytes:
        event = {
            "id": "chatcmpl-5d1e",
            "created": 1760000000,
            "model": "qwen3-coder",
            "object": "chat.completion.chunk",
            "choices": [choice],
        }
        return compact({**event, **extra})

    events = [chunk({"index": 0, "delta": {"content": "y" * 4000}}) for _ in range(LITELLM_PIECES)]
    events.append(chunk({"finish_reason": "length", "index": 0, "delta": {}}))
    if include_usage:
        events.append(chunk({"index": 0, "delta": {}}, usage=LITELLM_USAGE))
    return [*events, b"data: [DONE]\n\n"]


def asks_usage(body: dict[str, Any]) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def streamed(events: list[bytes]) -> StreamingResponse:
    async def chunks() -> AsyncIterator[bytes]:
        for event in events:
            yield event
            await asyncio.sleep(0)

    return StreamingResponse(chunks(), media_type="text/event-stream")


async def azure_chat(request: Request) -> Response:
    body = await request.json()
    return streamed(azure_events(asks_usage(body)))


async def azure_embeddings(request: Request) -> Response:
    await request.body()
    return JSONResponse(
        {
            "object": "list",
            "data": [{"object": "embedding", "index": 0, "embedding": [-0.009171937, 0.018715322]}],
            "model": "ada",
            "usage": {"prompt_tokens": 7, "total_tokens": 7},
        }
    )


async def litellm_chat(request: Request) -> Response:
    body = await request.json()
    return streamed(litellm_events(asks_usage(body)))


@dataclass
class Upstream:
    url: str
    server: uvicorn.Server
    thread: threading.Thread


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    app = Starlette(
        routes=[
            Route("/openai/deployments/{deployment}/chat/completions", azure_chat, methods=["POST"]),
            Route("/openai/deployments/{deployment}/embeddings", azure_embeddings, methods=["POST"]),
            Route("/litellm/v1/chat/completions", litellm_chat, methods=["POST"]),
        ]
    )
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        thread.join(0.02)
    try:
        yield Upstream(f"http://127.0.0.1:{port}", server, thread)
    finally:
        server.should_exit = True
        thread.join(10)


@dataclass
class Gateway:
    harness: GatewayHarness
    key: str

    @property
    def url(self) -> str:
        return self.harness.url

    def rows(self, request_id: str) -> list[dict[str, Any]]:
        return wait_for_usage_rows(self.harness.effective_database_url, request_id, 1)


@pytest.fixture(scope="module")
def gateway(upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    harness = GatewayHarness(
        Path(tmp_path_factory.mktemp("azure-review")),
        {
            "azure": {"type": "azure-openai", "base_url": upstream.url},
            "litellm": {"type": "openai-compatible", "base_url": upstream.url + "/litellm/v1"},
        },
    )
    harness.cli("db", "upgrade")
    harness.cli("tenant", "create", "acme")
    for provider in ("azure", "litellm"):
        harness.cli(
            "credential", "set", "--tenant", "acme", "--provider", provider, stdin=f"{provider}-secret-0001"
        )
    key = harness.create_key("acme", "--label", "azure review")
    harness.start()
    try:
        yield Gateway(harness, key)
    finally:
        harness.stop()


def azure_client(gateway: Gateway) -> openai.AzureOpenAI:
    return openai.AzureOpenAI(
        azure_endpoint=f"{gateway.url}/azure", api_key=gateway.key, api_version="2024-10-21", max_retries=0
    )


@pytest.mark.parametrize("asked", [False, True], ids=["usage added", "usage asked"])
def test_an_azure_stream_reaches_the_sdk_as_sent_and_is_recorded_under_the_model_that_answered(
    gateway: Gateway, asked: bool
) -> None:
    rid = f"azure-review-stream-{asked}"
    options: dict[str, Any] = {"stream_options": {"include_usage": True}} if asked else {}
    with azure_client(gateway) as azure:
        chunks = list(
            azure.chat.completions.create(
                model="prod-chat",
                messages=[{"role": "user", "content": "Say hello"}],
                stream=True,
                extra_headers={"x-request-id": rid},
                **options,
            )
        )

    [row] = gateway.rows(rid)
    first, *rest = chunks
    assert (first.choices, first.model) == ([], "")
    assert first.model_extra is not None
    assert first.model_extra["prompt_filter_results"][0]["content_filter_results"] == FILTER_RESULTS
    text = "".join(chunk.choices[0].delta.content or "" for chunk in rest if chunk.choices)
    assert text == "".join(AZURE_WORDS)
    assert [chunk.usage is not None for chunk in chunks] == [False] * (len(chunks) - 1) + [asked]
    assert (row["model"], row["estimated"], row["input_tokens"], row["output_tokens"]) == (
        AZURE_MODEL,
        False,
        11,
        3,
    )
    price = PRICES.price_for("azure", "azure-openai", AZURE_MODEL)
    assert price is not None
    assert Decimal(row["cost_usd"]) == cost_of(TokenUsage(input_tokens=11, output_tokens=3), price)


def test_an_azure_ada_embedding_is_priced(gateway: Gateway) -> None:
    rid = "azure-review-ada"
    with azure_client(gateway) as azure:
        embedding = azure.embeddings.create(
            model="embeddings-prod",
            input="what azure services support full text search",
            extra_headers={"x-request-id": rid},
        )

    [row] = gateway.rows(rid)
    assert embedding.model == "ada"
    assert (row["model"], row["input_tokens"], row["estimated"]) == ("ada", 7, False)
    price = PRICES.price_for("openai", "openai", "text-embedding-ada-002")
    assert price is not None
    assert Decimal(row["cost_usd"]) == cost_of(TokenUsage(input_tokens=7), price) > 0


def test_a_long_litellm_stream_whose_caller_asked_for_usage_is_recorded_exactly(gateway: Gateway) -> None:
    rid = "azure-review-litellm"
    with openai.OpenAI(base_url=f"{gateway.url}/litellm/v1", api_key=gateway.key, max_retries=0) as client:
        chunks = list(
            client.chat.completions.create(
                model="qwen3-coder",
                messages=[{"role": "user", "content": "Write a long story"}],
                stream=True,
                stream_options={"include_usage": True},
                extra_headers={"x-request-id": rid},
            )
        )

    [row] = gateway.rows(rid)
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 290_000
    assert (row["estimated"], row["input_tokens"], row["output_tokens"]) == (False, 25, 290_000)
