"""What a key may reach: its providers, and a key limited to some models reaches them only."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import orjson
import pytest

from gateway.auth.keys import Principal
from gateway.context import RequestContext
from gateway.errors import InvalidJSON, ModelNotAllowed, ProviderNotAllowed
from gateway.pipeline.authorize import Authorize
from gateway.providers import build_adapters
from gateway.settings import parse_settings

ADAPTERS = build_adapters(
    parse_settings(
        {
            "providers": {
                "openai": {"type": "openai"},
                "local": {"type": "openai-compatible", "base_url": "http://h:1/v1"},
                "gemini": {"type": "gemini"},
                "azure": {"type": "azure-openai", "base_url": "http://h:2"},
                "claude": {"type": "anthropic"},
            }
        }
    ).providers
)
MINI_ONLY = Principal(
    "acme", "key_1", None, None, "laptop", None, frozenset({"gpt-4o-mini", "dep-mini", "flash"})
)


def call(
    provider: str, method: str, path: str, body: object = None, principal: Principal = MINI_ONLY
) -> RequestContext:
    return RequestContext(
        request_id="req-1",
        started=time.perf_counter(),
        method=method,
        provider=ADAPTERS[provider],
        raw_path=path.encode(),
        query_string=b"",
        headers=[],
        receive=None,  # type: ignore[arg-type]
        path=path,
        principal=principal,
        body=b"" if body is None else body if isinstance(body, bytes) else orjson.dumps(body),
    )


def authorize(ctx: RequestContext) -> None:
    asyncio.run(Authorize()(ctx))


@pytest.mark.parametrize(
    ("provider", "method", "path", "body"),
    [
        ("openai", "POST", "/v1/chat/completions", {"model": "gpt-4o-mini", "messages": []}),
        ("azure", "POST", "/openai/deployments/dep-mini/chat/completions", {"messages": []}),
        ("gemini", "POST", "/v1beta/models/flash:generateContent", {"contents": []}),
        ("openai", "GET", "/v1/models", None),
        ("openai", "GET", "/v1/responses/resp_1", None),
        ("openai", "DELETE", "/v1/responses/resp_1", None),
        ("openai", "POST", "/v1/files", b"--multipart--"),
        ("openai", "POST", "/v1/responses/resp_1/cancel", None),
        ("claude", "POST", "/v1/messages/count_tokens", {"messages": []}),
    ],
)
def test_a_model_limited_key_reaches_its_models_and_the_calls_that_name_none(
    provider: str, method: str, path: str, body: object
) -> None:
    authorize(call(provider, method, path, body))


@pytest.mark.parametrize(
    ("provider", "path", "body", "message"),
    [
        ("openai", "/v1/chat/completions", {"model": "gpt-4o", "messages": []}, "may not use model 'gpt-4o'"),
        ("openai", "/v1/chat/completions", {"messages": []}, "names none"),
        ("openai", "/v1/chat/completions", {"model": None, "messages": []}, "names none"),
        ("openai", "/v1/chat/completions", {"model": ["gpt-4o-mini"]}, "names none"),
        ("openai", "/v1/responses", {"prompt": {"id": "pmpt_1"}}, "names none"),  # the stored prompt's model
        ("local", "/v1/chat/completions", {"messages": []}, "names none"),  # the server's default model
        ("openai", "/v1/batches", {"input_file_id": "file_1"}, "names none"),  # the file's models
        ("gemini", "/v1beta/tunedModels/pro:generateContent", {"contents": []}, "may not use model 'pro'"),
        ("azure", "/openai/Deployments/dep-big/chat/completions", {"model": "dep-mini"}, "'dep-big'"),
        ("openai", "/v1/chat/completions", b"not json", "names none"),
    ],
)
def test_a_model_limited_key_is_refused_a_call_whose_model_is_another_or_unknown(
    provider: str, path: str, body: object, message: str
) -> None:
    ctx = call(provider, "POST", path, body)

    if body == b"not json":  # the body cannot be read: refused as malformed before any model is known
        with pytest.raises(Exception, match="not valid JSON"):
            authorize(ctx)
        return
    with pytest.raises(ModelNotAllowed, match=message):
        authorize(ctx)


def test_a_key_limited_to_some_providers_reaches_them_only() -> None:
    openai_only = replace(MINI_ONLY, allowed_providers=frozenset({"openai"}), allowed_models=None)

    authorize(call("openai", "POST", "/v1/chat/completions", {"model": "gpt-4o"}, openai_only))
    with pytest.raises(ProviderNotAllowed, match="'claude'"):
        authorize(call("claude", "POST", "/v1/messages", {"model": "claude-haiku-4-5"}, openai_only))


def test_an_unlimited_key_reaches_any_model_and_calls_that_name_none() -> None:
    anything = replace(MINI_ONLY, allowed_models=None)

    authorize(call("openai", "POST", "/v1/chat/completions", {"model": "o3"}, anything))
    authorize(call("openai", "POST", "/v1/batches", {"input_file_id": "file_1"}, anything))


@pytest.mark.parametrize(
    "body",
    [
        b'{"model": "gpt-5", "model": "gpt-4o-mini", "messages": []}',
        b'{"mod\\u0065l": "gpt-5", "model": "gpt-4o-mini", "messages": []}',
        b'{"model": "gpt-4o-mini", "messages": [], "MO": 1, "mo\\u0064el": "gpt-4o-mini"}',
    ],
)
def test_a_model_limited_key_is_refused_a_body_that_names_its_model_twice(body: bytes) -> None:
    """The gateway reads the last member, as most parsers do; a provider reading the first would run
    a model the key may not use."""
    with pytest.raises(InvalidJSON, match="names its model more than once"):
        authorize(call("openai", "POST", "/v1/chat/completions", body))


@pytest.mark.parametrize(
    "body",
    [
        b'{"model": "gpt-4o-mini", "tools": [{"type": "advisor", "model": "gpt-5"}], "input": "hi"}',
        b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "caf\\u00e9 \\u006dodel"}]}',
    ],
)
def test_a_model_named_again_only_inside_the_body_or_escaped_text_is_not_a_second_model(body: bytes) -> None:
    authorize(call("openai", "POST", "/v1/chat/completions", body))  # no error raised: the call goes on
