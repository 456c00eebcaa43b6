"""The built-in provider types and the adapters built from configuration."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from gateway.errors import Dialect
from gateway.providers.base import CredentialPresentation, ProviderAdapter
from gateway.settings.schema import ProviderSettings, ProviderType


@dataclass(frozen=True, slots=True)
class Family:
    """What every provider of one API family has in common."""

    dialect: Dialect
    default_base_url: str | None
    api_root: str
    allowed_prefixes: tuple[str, ...]
    credential: CredentialPresentation
    model_in_path: re.Pattern[str] | None = None


_BEARER = CredentialPresentation("authorization", "Bearer ")

FAMILIES: Mapping[ProviderType, Family] = MappingProxyType(
    {
        # OpenAI-style SDKs take http://gateway/<name>/v1 as base URL; that `/v1` stands for `base_url`.
        ProviderType.OPENAI: Family(Dialect.OPENAI, "https://api.openai.com/v1", "/v1", ("/v1/",), _BEARER),
        ProviderType.OPENAI_COMPATIBLE: Family(Dialect.OPENAI, None, "/v1", ("/v1/",), _BEARER),
        ProviderType.ANTHROPIC: Family(
            Dialect.ANTHROPIC, "https://api.anthropic.com", "", ("/v1/",), CredentialPresentation("x-api-key")
        ),
        ProviderType.GEMINI: Family(
            Dialect.GEMINI,
            "https://generativelanguage.googleapis.com",
            "",
            ("/v1beta/", "/v1/", "/v1alpha/", "/upload/"),
            CredentialPresentation("x-goog-api-key"),
            re.compile(r"/(?:models|tunedModels)/([^/:]+)"),
        ),
        ProviderType.AZURE_OPENAI: Family(
            Dialect.OPENAI,
            None,
            "",
            ("/openai/",),
            CredentialPresentation("api-key"),
            re.compile(r"^/openai/deployments/([^/]+)/", re.IGNORECASE),
        ),
    }
)


def build_adapter(name: str, settings: ProviderSettings) -> ProviderAdapter:
    family = FAMILIES[settings.type]
    base_url = settings.base_url or family.default_base_url
    assert base_url is not None, "the schema requires base_url for families without a default"
    return ProviderAdapter(
        name=name,
        kind=settings.type.value,
        dialect=family.dialect,
        base_url=base_url,
        api_root=family.api_root,
        allowed_prefixes=family.allowed_prefixes,
        credential=family.credential,
        credential_mode=settings.credential,
        model_in_path=family.model_in_path,
    )


def build_adapters(providers: Mapping[str, ProviderSettings]) -> Mapping[str, ProviderAdapter]:
    return MappingProxyType({name: build_adapter(name, settings) for name, settings in providers.items()})
