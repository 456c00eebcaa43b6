"""The relational schema, as SQLAlchemy Core tables (one definition for SQLite and PostgreSQL).

Alembic migrations in `migrations/versions/` create these tables; this module is what the
repositories query and what `alembic check` compares against.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Table,
    TypeDecorator,
    UniqueConstraint,
    text,
)

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use an aware UTC datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


tenants = Table(
    "tenants",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("display_name", String(200), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

teams = Table(
    "teams",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("tenant_id", String(64), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    UniqueConstraint("tenant_id", "name"),
)

users = Table(
    "users",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("tenant_id", String(64), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(320), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    UniqueConstraint("tenant_id", "name"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("digest", LargeBinary(32), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("tenant_id", String(64), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("team_id", String(40), ForeignKey("teams.id", ondelete="SET NULL"), nullable=True),
    Column("user_id", String(40), ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
    Column("label", String(200), nullable=False),
    Column("allowed_providers", JSON, nullable=True),
    Column("allowed_models", JSON, nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=True),
    Column("revoked_at", UTCDateTime(), nullable=True),
    Index(None, "tenant_id"),
)

credentials = Table(
    "credentials",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("tenant_id", String(64), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=True),
    Column("provider", String(64), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("master_key_id", String(32), nullable=False),
    Column("wrapped_data_key", LargeBinary, nullable=False),
    Column("ciphertext", LargeBinary, nullable=False),
    Column("label", String(200), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Index(
        "uq_credentials_tenant_provider",
        "tenant_id",
        "provider",
        unique=True,
        sqlite_where=text("tenant_id IS NOT NULL"),
        postgresql_where=text("tenant_id IS NOT NULL"),
    ),
    Index(
        "uq_credentials_shared_provider",
        "provider",
        unique=True,
        sqlite_where=text("tenant_id IS NULL"),
        postgresql_where=text("tenant_id IS NULL"),
    ),
)

keyring = Table(
    "keyring",
    metadata,
    Column("master_key_id", String(32), primary_key=True),
    Column("canary", LargeBinary, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

usage_records = Table(
    "usage_records",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("request_id", String(128), nullable=False),
    Column("tenant_id", String(64), nullable=True),
    Column("team", String(200), nullable=True),
    Column("user", String(320), nullable=True),
    Column("key_id", String(40), nullable=True),
    Column("provider", String(64), nullable=False),
    Column("upstream", String(255), nullable=False),
    Column("model", String(200), nullable=True),
    Column("endpoint", String(40), nullable=False),
    Column("status", Integer, nullable=False),
    Column("streamed", Boolean, nullable=False),
    Column("input_tokens", BigInteger, nullable=False),
    Column("output_tokens", BigInteger, nullable=False),
    Column("cached_input_tokens", BigInteger, nullable=False),
    Column("cache_write_tokens", BigInteger, nullable=False),
    Column("reasoning_tokens", BigInteger, nullable=False),
    Column("cost_usd", Numeric(20, 10), nullable=True),
    Column("duration_ms", Float, nullable=False),
    Column("ttfb_ms", Float, nullable=True),
    Column("estimated", Boolean, nullable=False),
    Column("service_tier", String(32), nullable=True),
    Column("web_searches", Integer, nullable=False, server_default="0"),
    Index(None, "created_at"),
    Index(None, "tenant_id", "created_at"),
)

# The ids of the ledger batches written, each in its batch's transaction: a batch written again under its
# id (the ledger's retry of a write whose commit's acknowledgement was lost) is found here and not stored
# twice. Ids older than a day, far past any retry, are deleted (`usage.BATCH_MEMORY`).
usage_batches = Table(
    "usage_batches",
    metadata,
    Column("id", LargeBinary(16), primary_key=True),
    Column("written_at", UTCDateTime(), nullable=False),
    Index(None, "written_at"),
)
