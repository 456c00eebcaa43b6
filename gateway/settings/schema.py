"""The configuration schema: what `config/gateway.yaml` may say, validated once into frozen objects.

Every model forbids unknown keys, so a typo is an error rather than a silently ignored setting.
`tollgate config schema` prints the JSON Schema of `Settings` for editors.
"""

from __future__ import annotations

import re
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

RESERVED_MOUNTS = frozenset({"admin", "healthz", "readyz", "metrics", "static", "docs"})
PROVIDER_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_NUMBERS: frozenset[object] = frozenset({int, float, Decimal})


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _numbers_are_not_booleans(cls, value: object, info: ValidationInfo) -> object:
        """YAML reads `yes`, `no`, `on`, `off` as booleans, which pydantic would take as 1 and 0."""
        if isinstance(value, bool) and info.field_name is not None:
            annotation = cls.model_fields[info.field_name].annotation
            if annotation in _NUMBERS or set(get_args(annotation)) & _NUMBERS:
                raise ValueError(f"a number is expected, not the boolean {str(value).lower()}")
        return value


class ServerSettings(Frozen):
    """How the gateway listens and what it accepts."""

    host: str = Field("127.0.0.1", description="Interface to bind.")
    port: int = Field(8080, ge=0, le=65535, description="TCP port to bind.")
    max_body_bytes: int = Field(
        10 * 1024 * 1024, gt=0, description="Largest request body accepted; larger ones get 413."
    )
    max_header_bytes: int = Field(
        64 * 1024,
        ge=1024,
        le=16 * 1024 * 1024,
        description="Largest request head (request line and headers); a longer one gets 431 and the "
        "connection is closed.",
    )
    header_timeout_seconds: float = Field(
        30.0,
        gt=0,
        le=3600,
        description="Longest a request head may take to arrive (from its first byte, or from the "
        "connection's opening); a slower one gets 408 and the connection is closed.",
    )
    body_read_timeout_seconds: float = Field(
        60.0,
        gt=0,
        le=3600,
        description="Longest wait for the next part of a request body (once the caller's key is checked); "
        "a caller that stops sending gets 408 in its provider's dialect, and nothing is sent upstream.",
    )
    keep_alive_seconds: int = Field(
        75,
        ge=1,
        le=3600,
        description="How long an idle connection is kept open for the caller's next request. Above the "
        "official SDKs' 5 s (httpx's keepalive_expiry), so that the caller, not the gateway, closes an "
        "idle connection: one closed by both at once can fail a request sent on it as it closes.",
    )
    workers: int = Field(
        1, ge=1, le=64, description="Worker processes (each with its own caches; /metrics sums them all)."
    )


class DatabaseSettings(Frozen):
    """Where tenants, keys and credentials live."""

    url: str = Field(
        "sqlite:///data/tollgate.db",
        description="sqlite:///relative/or/absolute/path.db or postgresql://user@host:port/db. "
        "Relative SQLite paths are resolved from the working directory.",
    )
    pool_size: int = Field(10, ge=1, le=200, description="PostgreSQL connection pool size.")


class MasterKeySettings(Frozen):
    """The key-encryption key that wraps every stored provider credential.

    The environment variable wins when it is set; otherwise the file is read. With neither, the
    gateway refuses to start. The key is 32 random bytes written as base64 or 64 hex digits.
    """

    env: str = Field("TOLLGATE_MASTER_KEY", description="Environment variable holding the master key.")
    file: Path | None = Field(None, description="File holding the master key (mode 0600).")


class AuthSettings(Frozen):
    """Caller authentication with Tollgate keys."""

    key_cache_ttl_seconds: float = Field(
        5.0,
        ge=0,
        le=3600,
        description="How long a key looked up in the database is trusted from memory. A revoked key "
        "stops working within this time.",
    )
    key_cache_size: int = Field(
        10_000,
        ge=1,
        description="Most keys held in memory. Unknown keys are remembered apart, up to a tenth of this, "
        "so a flood of made-up keys cannot push out the real ones.",
    )
    stale_if_error_seconds: float = Field(
        300.0,
        ge=0,
        le=86_400,
        description="While the database cannot be reached, a key found before keeps working for up to "
        "this long past its cache TTL (a key not seen before gets 503); 0 turns this off. A gateway cut "
        "off from a database the others still reach accepts a key revoked meanwhile for up to this "
        "long.",
    )


class CredentialCacheSettings(Frozen):
    """Caching of decrypted provider credentials."""

    cache_ttl_seconds: float = Field(
        30.0, ge=0, le=3600, description="How long a decrypted credential is kept in memory."
    )
    cache_size: int = Field(1_000, ge=1, description="Most credentials held in memory.")
    stale_if_error_seconds: float = Field(
        300.0,
        ge=0,
        le=86_400,
        description="While the database cannot be reached, a credential found before is still used for "
        "up to this long past its cache TTL; 0 turns this off.",
    )


class Timeouts(Frozen):
    """Upstream timeouts in seconds."""

    connect: float = Field(10.0, gt=0, description="Establishing the connection.")
    read: float = Field(300.0, gt=0, description="Longest wait for the next bytes of the response.")
    total: float = Field(900.0, gt=0, description="The whole exchange, streaming included.")

    # No such rule for `read`: one longer than `total` only never comes into play, and `total: 120` alone
    # (under the default `read` of 300) is a sensible setting.
    @model_validator(mode="after")
    def _total_covers_connecting(self) -> Timeouts:
        if self.total < self.connect:
            raise ValueError(
                f"total ({self.total:g}) must be at least connect ({self.connect:g}), which it would "
                "otherwise cut short"
            )
        return self


class ProviderType(StrEnum):
    OPENAI = "openai"
    ANTHROPIC = "anthropic"
    GEMINI = "gemini"
    AZURE_OPENAI = "azure-openai"
    OPENAI_COMPATIBLE = "openai-compatible"


class ProviderSettings(Frozen):
    """One upstream provider, mounted at `/<name>/` on the gateway."""

    type: ProviderType = Field(description="The provider's API family.")
    base_url: str | None = Field(
        None,
        description="Upstream base URL. Defaults per type: openai https://api.openai.com/v1, anthropic "
        "https://api.anthropic.com, gemini https://generativelanguage.googleapis.com. Required for "
        "azure-openai (https://RESOURCE.openai.azure.com) and openai-compatible (e.g. "
        "http://127.0.0.1:11434/v1).",
    )
    credential: Literal["required", "optional", "none"] = Field(
        "required",
        description="required: a tenant without a stored credential is refused; optional: forwarded "
        "without one; none: never inject one (a local server without authentication).",
    )
    timeouts: Timeouts = Field(default_factory=Timeouts)
    max_connections: int = Field(
        512,
        ge=1,
        description="Connections to the upstream in use at once, per worker (idle ones are kept for reuse); "
        "a call that finds them all busy waits up to timeouts.connect for one.",
    )
    trust_env_proxy: bool = Field(
        True, description="Honour HTTP(S)_PROXY and NO_PROXY from the environment for this upstream."
    )
    inject_stream_usage: bool | None = Field(
        None,
        description="Override metering.inject_stream_usage for this provider (OpenAI-style types, and "
        "Gemini's OpenAI-compatible API under /v1beta/openai/): false for an OpenAI-compatible server that "
        "refuses stream_options. Unset: the metering setting.",
    )

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not re.match(r"^https?://[^/?#\s]+(/[^?#\s]*)?$", value):
            raise ValueError("must be an http:// or https:// URL without query or fragment")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _base_url_when_no_default(self) -> ProviderSettings:
        needs_url = {ProviderType.AZURE_OPENAI, ProviderType.OPENAI_COMPATIBLE}
        if self.type in needs_url and self.base_url is None:
            raise ValueError(f"base_url is required for type {self.type.value}")
        return self

    @model_validator(mode="after")
    def _no_password_beside_an_injected_credential(self) -> ProviderSettings:
        """A user and password in `base_url` are sent as HTTP Basic authentication, which the credential
        the gateway injects would contend with (every call would fail): only with `credential: none`."""
        if self.base_url is not None and self.credential != "none":
            authority = self.base_url.split("://", 1)[1].split("/", 1)[0]
            if "@" in authority:
                raise ValueError(
                    "base_url must not hold a user or password while the gateway injects a credential "
                    "(store it with `tollgate credential set`), or set credential: none"
                )
        return self

    @model_validator(mode="after")
    def _stream_usage_only_where_it_means_something(self) -> ProviderSettings:
        if self.inject_stream_usage is not None and self.type is ProviderType.ANTHROPIC:
            raise ValueError(
                "inject_stream_usage applies to OpenAI-style APIs only; anthropic streams report their "
                "usage unasked"
            )
        return self


class MeteringSettings(Frozen):
    """Token and cost metering into the usage ledger."""

    enabled: bool = Field(True, description="Extract usage from every response and write ledger records.")
    prices_file: Path | None = Field(
        None, description="A price table (same format as the built-in one) merged over the built-in prices."
    )
    inject_stream_usage: bool = Field(
        True,
        description="Add stream_options.include_usage to OpenAI-style streaming requests that lack it (and "
        "remove the extra usage event from what the caller receives), so streams are metered exactly.",
    )
    queue_size: int = Field(
        10_000,
        ge=1,
        description="Ledger records held in memory awaiting the database; beyond this they are dropped"
        " (counted in tollgate_ledger_records_dropped_total and logged).",
    )
    batch_size: int = Field(
        500, ge=1, le=10_000, description="Most records written in one database round trip."
    )
    flush_interval_seconds: float = Field(
        0.5, gt=0, le=60, description="Longest wait before a partial batch is written."
    )
    retry_max_seconds: float = Field(
        30.0, gt=0, description="Longest pause between retries while the database refuses writes."
    )
    shutdown_grace_seconds: float = Field(
        15.0, ge=0, description="How long shutdown waits for the ledger to be written before giving up."
    )
    follow_background_responses: bool = Field(
        True,
        description="Follow each OpenAI background response (Responses API, `background: true`) to its end,"
        " polling the provider with the call's credential, and record the call with the usage it ends with;"
        " off, such a call is recorded when it returns, estimated from its input.",
    )
    background_max_wait_seconds: float = Field(
        4 * 3600.0,
        gt=0,
        description="How long a background response is followed; one still running then is recorded"
        " estimated.",
    )
    background_max_pending: int = Field(
        1000,
        ge=1,
        description="Background responses followed at once; the call of one more is recorded at once,"
        " estimated.",
    )


class AdminSettings(Frozen):
    """The administrative HTTP API under /admin/ (closed unless a token digest is set)."""

    token_sha256: str | None = Field(
        None,
        pattern=r"^[0-9a-f]{64}$",
        description="Hex SHA-256 digest of the admin bearer token (`printf %s TOKEN | sha256sum`). "
        "Without it every /admin/ endpoint answers 404.",
    )


class MetricsSettings(Frozen):
    """Prometheus metrics at /metrics."""

    enabled: bool = Field(True, description="Serve Prometheus metrics at /metrics.")


class LoggingSettings(Frozen):
    """Structured JSON logs on standard output."""

    level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="The least severe log records written (debug logs SQL statements)."
    )
    access_log: bool = Field(True, description="One JSON line per proxied request.")


def _not_reserved(name: str) -> str:
    if name in RESERVED_MOUNTS:
        raise ValueError(f"provider name {name!r} is reserved for the gateway's own endpoints")
    return name


# Checked key by key, so a reserved name is reported with every other problem of the providers.
ProviderName = Annotated[str, Field(pattern=PROVIDER_NAME.pattern), AfterValidator(_not_reserved)]


class Settings(Frozen):
    """The whole gateway configuration (`config/gateway.yaml`)."""

    server: ServerSettings = Field(default_factory=ServerSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    master_key: MasterKeySettings = Field(default_factory=MasterKeySettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    credentials: CredentialCacheSettings = Field(default_factory=CredentialCacheSettings)
    providers: dict[ProviderName, ProviderSettings] = Field(
        default_factory=dict,
        description="Upstreams by name; each is mounted at /<name>/.",
        json_schema_extra={"additionalProperties": False},  # a name off the pattern is an error there too
    )
    metering: MeteringSettings = Field(default_factory=MeteringSettings)
    admin: AdminSettings = Field(default_factory=AdminSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
