"""Provider adapters: where each API family is mounted, how its credential is presented."""

from gateway.providers.base import CredentialPresentation, ProviderAdapter
from gateway.providers.registry import build_adapters

__all__ = ["CredentialPresentation", "ProviderAdapter", "build_adapters"]
