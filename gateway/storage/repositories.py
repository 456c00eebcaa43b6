"""Reading and writing tenants, keys, credentials and the keyring with SQLAlchemy Core.

One implementation serves SQLite and PostgreSQL; `tests/contract/` runs the same suite on both.
Driver exceptions are translated into `gateway.storage.errors` here, where they enter.
"""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import asyncpg
from sqlalchemy import Row, and_, delete, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError, StatementError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.storage.errors import AlreadyExists, StorageRejected, StorageUnavailable, UnknownRecord
from gateway.storage.models import api_keys, credentials, keyring, teams, tenants, users
from gateway.storage.records import ApiKeyRecord, KeyringEntry, StoredCredential, Tenant


def new_id(prefix: str) -> str:
    """A random public identifier such as `key_3f9a0c1b2d4e5f60a7b8`."""
    return f"{prefix}_{secrets.token_hex(10)}"


@asynccontextmanager
async def transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    try:
        async with engine.begin() as connection:
            yield connection
    except IntegrityError:
        raise
    except StatementError as exc:
        if not isinstance(exc, DBAPIError) and isinstance(exc.orig, ValueError | TypeError):
            raise exc.orig from None  # a bad argument such as a naive datetime, not an unavailable database
        refused = _refused_value(exc)
        if refused is not None:
            raise StorageRejected(f"the database refused a value ({refused})") from exc
        raise StorageUnavailable(f"database error: {type(exc).__name__}") from exc
    except (SQLAlchemyError, OSError) as exc:
        raise StorageUnavailable(f"database error: {type(exc).__name__}") from exc


def _refused_value(exc: StatementError) -> str | None:
    """The name of the error, when the database answered but cannot hold a value it was given (a NUL or
    too long a text on PostgreSQL, a date past the year 9999); None for any other failure."""
    for error in (exc.orig, getattr(exc.orig, "__cause__", None)):  # asyncpg's, under SQLAlchemy's adapter
        if isinstance(error, asyncpg.DataError | sqlite3.DataError | OverflowError):
            return type(error).__name__
    return None


class TenantRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def create(self, tenant_id: str, display_name: str, now: datetime) -> Tenant:
        tenant = Tenant(tenant_id, display_name, now)
        try:
            async with transaction(self._engine) as db:
                await db.execute(
                    insert(tenants).values(id=tenant_id, display_name=display_name, created_at=now)
                )
        except IntegrityError:
            raise AlreadyExists(f"tenant {tenant_id!r} exists already") from None
        return tenant

    async def get(self, tenant_id: str) -> Tenant | None:
        async with transaction(self._engine) as db:
            row = (await db.execute(select(tenants).where(tenants.c.id == tenant_id))).first()
        return None if row is None else Tenant(row.id, row.display_name, row.created_at)

    async def list(self) -> list[Tenant]:
        async with transaction(self._engine) as db:
            rows = (await db.execute(select(tenants).order_by(tenants.c.id))).all()
        return [Tenant(row.id, row.display_name, row.created_at) for row in rows]


_KEY_COLUMNS = (
    api_keys,
    teams.c.name.label("team_name"),
    users.c.name.label("user_name"),
)


def _key_query() -> Any:
    joined = api_keys.outerjoin(teams, api_keys.c.team_id == teams.c.id).outerjoin(
        users, api_keys.c.user_id == users.c.id
    )
    return select(*_KEY_COLUMNS).select_from(joined)


def _key_record(row: Row[Any]) -> ApiKeyRecord:
    return ApiKeyRecord(
        id=row.id,
        prefix=row.prefix,
        tenant_id=row.tenant_id,
        team=row.team_name,
        user=row.user_name,
        label=row.label,
        allowed_providers=None if row.allowed_providers is None else frozenset(row.allowed_providers),
        allowed_models=None if row.allowed_models is None else frozenset(row.allowed_models),
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
    )


class KeyRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def create(self, record: ApiKeyRecord, digest: bytes) -> ApiKeyRecord:
        """Store a new key; its team and user are created on first mention."""
        try:
            async with transaction(self._engine) as db:
                if await db.scalar(select(tenants.c.id).where(tenants.c.id == record.tenant_id)) is None:
                    raise UnknownRecord(f"tenant {record.tenant_id!r} does not exist")
                team_id = await _member_id(
                    db, teams, record.tenant_id, record.team, "team", record.created_at
                )
                user_id = await _member_id(
                    db, users, record.tenant_id, record.user, "user", record.created_at
                )
                await db.execute(
                    insert(api_keys).values(
                        id=record.id,
                        digest=digest,
                        prefix=record.prefix,
                        tenant_id=record.tenant_id,
                        team_id=team_id,
                        user_id=user_id,
                        label=record.label,
                        allowed_providers=_sorted_or_none(record.allowed_providers),
                        allowed_models=_sorted_or_none(record.allowed_models),
                        created_at=record.created_at,
                        expires_at=record.expires_at,
                        revoked_at=None,
                    )
                )
        except IntegrityError:
            raise AlreadyExists("a key with that identity exists already") from None
        return record

    async def find_by_digest(self, digest: bytes) -> tuple[ApiKeyRecord, bytes] | None:
        """The key whose secret hashes to `digest`, with the stored digest for a constant-time check."""
        async with transaction(self._engine) as db:
            row = (await db.execute(_key_query().where(api_keys.c.digest == digest))).first()
        return None if row is None else (_key_record(row), bytes(row.digest))

    async def get(self, key_id: str) -> ApiKeyRecord | None:
        async with transaction(self._engine) as db:
            row = (await db.execute(_key_query().where(api_keys.c.id == key_id))).first()
        return None if row is None else _key_record(row)

    async def list(self, tenant_id: str | None = None) -> list[ApiKeyRecord]:
        query = _key_query().order_by(api_keys.c.tenant_id, api_keys.c.created_at, api_keys.c.id)
        if tenant_id is not None:
            query = query.where(api_keys.c.tenant_id == tenant_id)
        async with transaction(self._engine) as db:
            rows = (await db.execute(query)).all()
        return [_key_record(row) for row in rows]

    async def revoke(self, key_id: str, now: datetime) -> ApiKeyRecord:
        """Mark a key revoked (idempotent); unknown ids raise `UnknownRecord`."""
        async with transaction(self._engine) as db:
            await db.execute(
                update(api_keys)
                .where(and_(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None)))
                .values(revoked_at=now)
            )
            row = (await db.execute(_key_query().where(api_keys.c.id == key_id))).first()
        if row is None:
            raise UnknownRecord(f"key {key_id!r} does not exist")
        return _key_record(row)


async def _member_id(
    db: AsyncConnection, table: Any, tenant_id: str, name: str | None, prefix: str, now: datetime
) -> str | None:
    """The id of the tenant's team or user called `name`, creating it on first mention.

    Insert-if-absent, then read: keys issued at the same time for a new team share one row
    instead of all but one failing on the unique (tenant_id, name) constraint.
    """
    if name is None:
        return None
    dialect_insert = postgresql_insert if db.dialect.name == "postgresql" else sqlite_insert
    await db.execute(
        dialect_insert(table)
        .values(id=new_id(prefix), tenant_id=tenant_id, name=name, created_at=now)
        .on_conflict_do_nothing(index_elements=[table.c.tenant_id, table.c.name])
    )
    where = and_(table.c.tenant_id == tenant_id, table.c.name == name)
    return str(await db.scalar(select(table.c.id).where(where)))


def _sorted_or_none(values: frozenset[str] | None) -> list[str] | None:
    return None if values is None else sorted(values)


def _credential(row: Row[Any]) -> StoredCredential:
    return StoredCredential(
        id=row.id,
        tenant_id=row.tenant_id,
        provider=row.provider,
        kind=row.kind,
        master_key_id=row.master_key_id,
        wrapped_data_key=bytes(row.wrapped_data_key),
        ciphertext=bytes(row.ciphertext),
        label=row.label,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _owner_is(tenant_id: str | None) -> Any:
    if tenant_id is None:
        return credentials.c.tenant_id.is_(None)
    return credentials.c.tenant_id == tenant_id


class CredentialRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def replace(self, credential: StoredCredential) -> None:
        """Store `credential`, replacing the owner's previous one for that provider."""
        values = {
            "id": credential.id,
            "tenant_id": credential.tenant_id,
            "provider": credential.provider,
            "kind": credential.kind,
            "master_key_id": credential.master_key_id,
            "wrapped_data_key": credential.wrapped_data_key,
            "ciphertext": credential.ciphertext,
            "label": credential.label,
            "created_at": credential.created_at,
            "updated_at": credential.updated_at,
        }
        try:
            async with transaction(self._engine) as db:
                if (
                    credential.tenant_id is not None
                    and await db.scalar(select(tenants.c.id).where(tenants.c.id == credential.tenant_id))
                    is None
                ):
                    raise UnknownRecord(f"tenant {credential.tenant_id!r} does not exist")
                await db.execute(
                    delete(credentials).where(
                        and_(_owner_is(credential.tenant_id), credentials.c.provider == credential.provider)
                    )
                )
                await db.execute(insert(credentials).values(**values))
        except IntegrityError:
            raise AlreadyExists("a credential for that owner and provider was stored concurrently") from None

    async def find_for(self, tenant_id: str, provider: str) -> StoredCredential | None:
        """The tenant's own credential for `provider`, else the shared one, else None."""
        query = select(credentials).where(
            and_(
                credentials.c.provider == provider,
                (credentials.c.tenant_id == tenant_id) | credentials.c.tenant_id.is_(None),
            )
        )
        async with transaction(self._engine) as db:
            rows = (await db.execute(query)).all()
        ranked = sorted(rows, key=lambda row: row.tenant_id is None)
        return _credential(ranked[0]) if ranked else None

    async def list(self, tenant_id: str | None = None, *, shared: bool = False) -> list[StoredCredential]:
        """Credentials of one tenant, the shared ones, or (neither given) all of them.

        Ordered shared first, then by tenant and provider, on every backend (PostgreSQL sorts NULLs
        last and SQLite first, so the shared ones are put first explicitly).
        """
        shared_first = credentials.c.tenant_id.is_not(None)
        query = select(credentials).order_by(shared_first, credentials.c.tenant_id, credentials.c.provider)
        if tenant_id is not None or shared:
            query = query.where(_owner_is(None if shared else tenant_id))
        async with transaction(self._engine) as db:
            rows = (await db.execute(query)).all()
        return [_credential(row) for row in rows]

    async def delete(self, tenant_id: str | None, provider: str) -> bool:
        """Remove the owner's credential for `provider`; False when there was none."""
        async with transaction(self._engine) as db:
            result = await db.execute(
                delete(credentials).where(and_(_owner_is(tenant_id), credentials.c.provider == provider))
            )
        return bool(result.rowcount)


class KeyringRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def entries(self) -> Sequence[KeyringEntry]:
        async with transaction(self._engine) as db:
            rows = (await db.execute(select(keyring).order_by(keyring.c.created_at))).all()
        return [KeyringEntry(row.master_key_id, bytes(row.canary), row.created_at) for row in rows]

    async def add(self, entry: KeyringEntry) -> None:
        try:
            async with transaction(self._engine) as db:
                await db.execute(
                    insert(keyring).values(
                        master_key_id=entry.master_key_id, canary=entry.canary, created_at=entry.created_at
                    )
                )
        except IntegrityError:
            raise AlreadyExists(f"master key {entry.master_key_id} is in the keyring already") from None

    async def remove(self, master_key_id: str) -> None:
        async with transaction(self._engine) as db:
            await db.execute(delete(keyring).where(keyring.c.master_key_id == master_key_id))
