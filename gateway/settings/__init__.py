"""Configuration: the schema and its loader."""

from gateway.settings.loader import ConfigError, Problem, load_settings, parse_settings
from gateway.settings.schema import ProviderSettings, ProviderType, Settings

__all__ = [
    "ConfigError",
    "Problem",
    "ProviderSettings",
    "ProviderType",
    "Settings",
    "load_settings",
    "parse_settings",
]
