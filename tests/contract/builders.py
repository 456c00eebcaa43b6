"""Records and rows for the contract tests, with defaults that say nothing unless a test overrides them."""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.storage.records import ApiKeyRecord, StoredCredential, Tenant
from gateway.storage.repositories import TenantRepository, new_id

T0 = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def at(minutes: int) -> datetime:
    """An instant `minutes` after T0."""
    return T0 + timedelta(minutes=minutes)


def digest_of(name: str) -> bytes:
    return hashlib.sha256(name.encode()).digest()


async def add_tenants(engine: AsyncEngine, *tenant_ids: str) -> list[Tenant]:
    repository = TenantRepository(engine)
    return [await repository.create(tenant_id, tenant_id.title(), T0) for tenant_id in tenant_ids]


def key_record(tenant_id: str = "acme", **fields: Any) -> ApiKeyRecord:
    values: dict[str, Any] = {
        "id": new_id("key"),
        "prefix": "tg-abcdefg",
        "tenant_id": tenant_id,
        "team": None,
        "user": None,
        "label": "",
        "allowed_providers": None,
        "allowed_models": None,
        "created_at": T0,
        "expires_at": None,
        "revoked_at": None,
    }
    values.update(fields)
    return ApiKeyRecord(**values)


def credential(tenant_id: str | None, provider: str = "openai", **fields: Any) -> StoredCredential:
    values: dict[str, Any] = {
        "id": new_id("cred"),
        "tenant_id": tenant_id,
        "provider": provider,
        "kind": "api_key",
        "master_key_id": "mk-0123456789abcdef",
        "wrapped_data_key": os.urandom(60),
        "ciphertext": os.urandom(40),
        "label": "",
        "created_at": T0,
        "updated_at": T0,
    }
    values.update(fields)
    return StoredCredential(**values)


async def count_rows(engine: AsyncEngine, table: Table, **equal: object) -> int:
    """How many rows of `table` have the given column values (all of them when none are given)."""
    query = select(func.count()).select_from(table)
    for column, value in equal.items():
        query = query.where(table.c[column] == value)
    async with engine.connect() as connection:
        return int(await connection.scalar(query) or 0)
