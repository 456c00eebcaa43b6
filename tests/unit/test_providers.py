"""gateway.providers: each API family's upstream URLs, allowed paths, model in path, credential header."""

from __future__ import annotations

import pytest

from gateway.errors import Dialect, NotFound
from gateway.providers import ProviderAdapter, build_adapters
from gateway.settings import parse_settings


def adapter(kind: str, base_url: str | None = None, name: str = "up") -> ProviderAdapter:
    provider: dict[str, object] = {"type": kind}
    if base_url is not None:
        provider["base_url"] = base_url
    settings = parse_settings({"providers": {name: provider}})
    return build_adapters(settings.providers)[name]


# -- upstream URLs ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "base_url", "path", "query", "expected"),
    [
        ("openai", None, "/v1/chat/completions", "", "https://api.openai.com/v1/chat/completions"),
        ("openai", None, "/v1/models", "", "https://api.openai.com/v1/models"),
        (
            "openai",
            "https://eu.api.openai.com/v1",
            "/v1/responses",
            "",
            "https://eu.api.openai.com/v1/responses",
        ),
        ("openai-compatible", "http://h:1/openai/v1", "/v1/models", "", "http://h:1/openai/v1/models"),
        (
            "openai-compatible",
            "http://127.0.0.1:11434/v1/",
            "/v1/chat/completions",
            "",
            "http://127.0.0.1:11434/v1/chat/completions",
        ),
        ("anthropic", None, "/v1/messages", "", "https://api.anthropic.com/v1/messages"),
        (
            "anthropic",
            None,
            "/v1/messages/count_tokens",
            "beta=true",
            "https://api.anthropic.com/v1/messages/count_tokens?beta=true",
        ),
        (
            "gemini",
            None,
            "/v1beta/models/x:generateContent",
            "",
            "https://generativelanguage.googleapis.com/v1beta/models/x:generateContent",
        ),
        (
            "gemini",
            None,
            "/v1beta/models/gemini-2.0-flash:streamGenerateContent",
            "alt=sse",
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse",
        ),
        (
            "gemini",
            None,
            "/upload/v1beta/files",
            "",
            "https://generativelanguage.googleapis.com/upload/v1beta/files",
        ),
        (
            "azure-openai",
            "https://res.openai.azure.com",
            "/openai/deployments/d/chat/completions",
            "api-version=2024-10-21",
            "https://res.openai.azure.com/openai/deployments/d/chat/completions?api-version=2024-10-21",
        ),
    ],
)
def test_a_path_under_the_mount_maps_to_its_upstream_url(
    kind: str, base_url: str | None, path: str, query: str, expected: str
) -> None:
    assert adapter(kind, base_url).upstream_url(path, query) == expected


@pytest.mark.parametrize(
    ("kind", "base_url", "path"),
    [
        ("openai", None, "/"),
        ("openai", None, "/v1"),
        ("openai", None, "/v2/chat/completions"),
        ("openai", None, "/admin"),
        ("openai", None, "/v1beta/models"),
        ("openai-compatible", "http://h:1/openai/v1", "/api/tags"),
        ("anthropic", None, "/v2/messages"),
        ("anthropic", None, "/messages"),
        ("gemini", None, "/v2/models"),
        ("gemini", None, "/models/x:generateContent"),
        ("azure-openai", "https://res.openai.azure.com", "/v1/chat/completions"),
        ("azure-openai", "https://res.openai.azure.com", "/openai"),
    ],
)
def test_a_path_outside_the_familys_api_is_not_found(kind: str, base_url: str | None, path: str) -> None:
    with pytest.raises(NotFound, match="is not an API path of provider 'up'"):
        adapter(kind, base_url).upstream_url(path, "")


def test_the_upstream_host_comes_only_from_configuration() -> None:
    openai = adapter("openai")

    for path in ("/v1/@evil.example/x", "/v1//evil.example/x", "/v1/http://evil.example/"):
        assert openai.upstream_url(path, "").startswith("https://api.openai.com/v1/")


# -- the model named in the path ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "base_url", "path", "model"),
    [
        ("gemini", None, "/v1beta/models/gemini-2.0-flash:generateContent", "gemini-2.0-flash"),
        ("gemini", None, "/v1/models/gemini-1.5-pro:streamGenerateContent", "gemini-1.5-pro"),
        ("gemini", None, "/v1beta/models/text-embedding-004", "text-embedding-004"),
        ("gemini", None, "/v1beta/files", None),
        # a client that escapes the colon: the provider reads the same model
        ("gemini", None, "/v1beta/models/gemini-embedding-001%3AembedContent", "gemini-embedding-001"),
        ("gemini", None, "/v1beta/models/gemini-2.5-flash%3agenerateContent", "gemini-2.5-flash"),
        # an escaped slash is part of the name, not a way around an allow-list
        ("gemini", None, "/v1beta/models/gemini-2.5-flash%2F..%2Fx:generateContent", "gemini-2.5-flash/../x"),
        (
            "azure-openai",
            "https://res.openai.azure.com",
            "/openai/deployments/gpt-4o/chat/completions",
            "gpt-4o",
        ),
        ("azure-openai", "https://res.openai.azure.com", "/openai/models", None),
        ("openai", None, "/v1/models/gpt-4o", None),
        ("anthropic", None, "/v1/models/claude-sonnet-4", None),
    ],
)
def test_the_model_is_taken_from_the_path_where_the_family_puts_it_there(
    kind: str, base_url: str | None, path: str, model: str | None
) -> None:
    assert adapter(kind, base_url).model_from_path(path) == model


# -- credential presentation and dialect --------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "base_url", "header"),
    [
        ("openai", None, ("authorization", "Bearer sk-up")),
        ("openai-compatible", "http://h:1/v1", ("authorization", "Bearer sk-up")),
        ("anthropic", None, ("x-api-key", "sk-up")),
        ("gemini", None, ("x-goog-api-key", "sk-up")),
        ("azure-openai", "https://res.openai.azure.com", ("api-key", "sk-up")),
    ],
)
def test_each_family_presents_the_credential_in_its_own_header(
    kind: str, base_url: str | None, header: tuple[str, str]
) -> None:
    assert adapter(kind, base_url).credential.header_for("sk-up") == header


@pytest.mark.parametrize(
    ("kind", "base_url", "dialect"),
    [
        ("openai", None, Dialect.OPENAI),
        ("openai-compatible", "http://h:1/v1", Dialect.OPENAI),
        ("azure-openai", "https://res.openai.azure.com", Dialect.OPENAI),
        ("anthropic", None, Dialect.ANTHROPIC),
        ("gemini", None, Dialect.GEMINI),
    ],
)
def test_each_family_speaks_its_sdks_error_dialect(kind: str, base_url: str | None, dialect: Dialect) -> None:
    assert adapter(kind, base_url).dialect is dialect


# -- built from configuration -------------------------------------------------------------------------


def test_adapters_are_built_per_configured_provider_and_mounted_by_name() -> None:
    settings = parse_settings(
        {
            "providers": {
                "openai": {"type": "openai"},
                "ollama": {
                    "type": "openai-compatible",
                    "base_url": "http://127.0.0.1:11434/v1",
                    "credential": "none",
                },
            }
        }
    )

    adapters = build_adapters(settings.providers)

    assert sorted(adapters) == ["ollama", "openai"]
    assert adapters["ollama"].mount == "/ollama"
    assert adapters["ollama"].kind == "openai-compatible"
    assert adapters["ollama"].credential_mode == "none"
    assert adapters["openai"].credential_mode == "required"
    assert adapters["openai"].base_url == "https://api.openai.com/v1"
    with pytest.raises(TypeError):
        adapters["other"] = adapters["openai"]  # type: ignore[index]
