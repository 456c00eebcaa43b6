"""The official OpenAI SDK pointed at the gateway: answers arrive, streamed or not, with the tenant's
credential injected upstream and the caller's Tollgate key never leaving the gateway."""

from __future__ import annotations

import openai
import pytest

from tests.integration.conftest import CREDENTIALS, World


def client(world: World, key: str, provider: str = "openai") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{world.url}/{provider}/v1", api_key=key, max_retries=0)


def assert_only_credential_upstream(
    world: World, key: str, credential: str, header: str = "authorization"
) -> None:
    """Every request the upstream saw carried the credential, and nothing anywhere carried the key."""
    assert world.upstream.requests, "the upstream received nothing"
    for request in world.upstream.requests:
        expected = f"Bearer {credential}" if header == "authorization" else credential
        assert request.header(header) == expected
        assert key not in request.target
        assert all(key not in value for _, value in request.headers)
        assert key.encode() not in request.body


def test_chat_completion_is_answered_with_the_tenants_credential(fresh: World) -> None:
    key = fresh.keys["acme"]

    with client(fresh, key) as api:
        completion = api.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "Say hello"}]
        )

    assert completion.choices[0].message.content == "Hello from the"
    assert completion.usage is not None and completion.usage.completion_tokens == 3
    [request] = fresh.upstream.requests
    assert request.path == "/v1/chat/completions"
    assert request.json()["messages"] == [{"role": "user", "content": "Say hello"}]
    assert_only_credential_upstream(fresh, key, CREDENTIALS[("acme", "openai")])


def test_streamed_chat_completion_arrives_chunk_by_chunk(fresh: World) -> None:
    key = fresh.keys["acme"]

    with client(fresh, key) as api:
        stream = api.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "Stream"}],
            stream=True,
            extra_headers={"x-fake-chunks": "6"},
        )
        deltas = [
            chunk.choices[0].delta.content
            for chunk in stream
            if chunk.choices and chunk.choices[0].delta.content
        ]

    assert deltas == ["Hello", " from", " the", " fake", " upstream", " streaming"]
    assert_only_credential_upstream(fresh, key, CREDENTIALS[("acme", "openai")])


def test_embeddings_models_and_responses_pass_through(fresh: World) -> None:
    with client(fresh, fresh.keys["acme"]) as api:
        embeddings = api.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
        models = api.models.list()
        response = api.responses.create(model="gpt-4o-mini", input="Say hello")

    assert len(embeddings.data) == 2
    assert models.data
    assert response.output_text == "Hello from the"
    assert [r.path for r in fresh.upstream.requests] == ["/v1/embeddings", "/v1/models", "/v1/responses"]


def test_openai_compatible_upstream_is_reached_under_its_own_base_path(fresh: World) -> None:
    with client(fresh, fresh.keys["acme"], provider="local") as api:
        completion = api.chat.completions.create(model="llama3", messages=[{"role": "user", "content": "hi"}])

    assert completion.choices[0].message.content
    [request] = fresh.upstream.requests
    assert request.path == "/compat/v1/chat/completions"
    assert request.header("authorization") == f"Bearer {CREDENTIALS[('acme', 'local')]}"


def test_azure_openai_deployment_paths_use_the_api_key_header(fresh: World) -> None:
    key = fresh.keys["acme"]
    with openai.AzureOpenAI(
        azure_endpoint=f"{fresh.url}/azure", api_key=key, api_version="2024-10-21", max_retries=0
    ) as azure:
        completion = azure.chat.completions.create(
            model="my-gpt4o", messages=[{"role": "user", "content": "hi"}]
        )

    assert completion.choices[0].message.content
    [request] = fresh.upstream.requests
    assert request.path == "/openai/deployments/my-gpt4o/chat/completions"
    assert request.query == "api-version=2024-10-21"
    assert_only_credential_upstream(fresh, key, CREDENTIALS[("acme", "azure")], header="api-key")


def test_a_restricted_key_reaches_only_its_model(fresh: World) -> None:
    with client(fresh, fresh.keys["acme-restricted"]) as api:
        allowed = api.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )
        with pytest.raises(openai.PermissionDeniedError) as denied:
            api.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])

    assert allowed.choices[0].message.content
    assert denied.value.status_code == 403
    assert "gpt-4o" in denied.value.message
    assert len(fresh.upstream.requests) == 1
