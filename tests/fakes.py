"""Fakes shared by the test suites: clocks and in-memory stores that behave like the real ones.

Each fake keeps the same method names and signatures as the class it stands in for and records
what was asked of it, so a test can say how many times the database was reached without a mock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from gateway.auth.keys import display_prefix, generate_key, key_digest
from gateway.storage.errors import AlreadyExists, StorageError, UnknownRecord
from gateway.storage.records import ApiKeyRecord, KeyringEntry, StoredCredential

# --------------------------------------------------------------------------------------------------
# Time
# --------------------------------------------------------------------------------------------------

EPOCH = datetime(2025, 1, 1, tzinfo=UTC)


class FakeClock:
    """A clock that moves only when told to.

    Calling it gives monotonic seconds (what `TTLCache` reads); `utcnow()` gives the wall-clock time
    that has moved by the same amount (what key expiry and revocation are checked against).
    """

    def __init__(self, start: datetime = EPOCH) -> None:
        self._start = start
        self.seconds = 1000.0
        self._elapsed = 0.0

    def __call__(self) -> float:
        return self.seconds

    def utcnow(self) -> datetime:
        return self._start + timedelta(seconds=self._elapsed)

    def advance(self, seconds: float) -> None:
        self.seconds += seconds
        self._elapsed += seconds


class Gate:
    """Holds callers at `passage()` until the test opens it; says when the first one arrived."""

    def __init__(self) -> None:
        self.arrived = asyncio.Event()
        self._open = asyncio.Event()

    async def passage(self) -> None:
        self.arrived.set()
        await self._open.wait()

    def open(self) -> None:
        self._open.set()


# --------------------------------------------------------------------------------------------------
# Tollgate keys: an in-memory `KeyRepository`
# --------------------------------------------------------------------------------------------------


def api_key_record(
    key: str,
    *,
    key_id: str = "key_1",
    tenant_id: str = "acme",
    created_at: datetime = EPOCH,
    expires_at: datetime | None = None,
    revoked_at: datetime | None = None,
    allowed_providers: frozenset[str] | None = None,
    allowed_models: frozenset[str] | None = None,
) -> ApiKeyRecord:
    return ApiKeyRecord(
        id=key_id,
        prefix=display_prefix(key),
        tenant_id=tenant_id,
        team=None,
        user=None,
        label="test key",
        allowed_providers=allowed_providers,
        allowed_models=allowed_models,
        created_at=created_at,
        expires_at=expires_at,
        revoked_at=revoked_at,
    )


class FakeKeyRepository:
    """Stands in for `gateway.storage.repositories.KeyRepository`."""

    def __init__(self) -> None:
        self._by_digest: dict[bytes, ApiKeyRecord] = {}
        self.lookups = 0
        self.failure: StorageError | None = None
        self.gate: Gate | None = None

    def issue(
        self, *, expires_at: datetime | None = None, revoked_at: datetime | None = None
    ) -> tuple[str, ApiKeyRecord]:
        """A fresh key and its stored record."""
        key = generate_key()
        record = api_key_record(
            key, key_id=f"key_{len(self._by_digest) + 1}", expires_at=expires_at, revoked_at=revoked_at
        )
        self._by_digest[key_digest(key)] = record
        return key, record

    async def create(self, record: ApiKeyRecord, digest: bytes) -> ApiKeyRecord:
        if digest in self._by_digest:
            raise AlreadyExists("a key with that identity exists already")
        self._by_digest[digest] = record
        return record

    async def find_by_digest(self, digest: bytes) -> tuple[ApiKeyRecord, bytes] | None:
        self.lookups += 1
        if self.gate is not None:
            await self.gate.passage()
        if self.failure is not None:
            raise self.failure
        record = self._by_digest.get(digest)
        return None if record is None else (record, digest)

    async def get(self, key_id: str) -> ApiKeyRecord | None:
        return next((r for r in self._by_digest.values() if r.id == key_id), None)

    async def list(self, tenant_id: str | None = None) -> list[ApiKeyRecord]:
        return [r for r in self._by_digest.values() if tenant_id is None or r.tenant_id == tenant_id]

    async def revoke(self, key_id: str, now: datetime) -> ApiKeyRecord:
        for digest, record in self._by_digest.items():
            if record.id == key_id:
                if record.revoked_at is None:
                    record = replace(record, revoked_at=now)
                    self._by_digest[digest] = record
                return record
        raise UnknownRecord(f"key {key_id!r} does not exist")


# --------------------------------------------------------------------------------------------------
# Provider credentials and the keyring: in-memory `CredentialRepository` and `KeyringRepository`
# --------------------------------------------------------------------------------------------------


class FakeCredentialRepository:
    """Stands in for `gateway.storage.repositories.CredentialRepository`."""

    def __init__(self) -> None:
        self._rows: dict[tuple[str | None, str], StoredCredential] = {}
        self.lookups = 0
        self.failure: StorageError | None = None

    async def replace(self, credential: StoredCredential) -> None:
        self._rows[(credential.tenant_id, credential.provider)] = credential

    async def find_for(self, tenant_id: str, provider: str) -> StoredCredential | None:
        self.lookups += 1
        if self.failure is not None:
            raise self.failure
        return self._rows.get((tenant_id, provider)) or self._rows.get((None, provider))

    async def list(self, tenant_id: str | None = None, *, shared: bool = False) -> list[StoredCredential]:
        if tenant_id is None and not shared:
            return list(self._rows.values())
        owner = None if shared else tenant_id
        return [row for (row_owner, _), row in self._rows.items() if row_owner == owner]

    async def delete(self, tenant_id: str | None, provider: str) -> bool:
        return self._rows.pop((tenant_id, provider), None) is not None


class FakeKeyringRepository:
    """Stands in for `gateway.storage.repositories.KeyringRepository`."""

    def __init__(self) -> None:
        self._entries: list[KeyringEntry] = []

    async def entries(self) -> Sequence[KeyringEntry]:
        return list(self._entries)

    async def add(self, entry: KeyringEntry) -> None:
        if any(e.master_key_id == entry.master_key_id for e in self._entries):
            raise AlreadyExists(f"master key {entry.master_key_id} is in the keyring already")
        self._entries.append(entry)

    async def remove(self, master_key_id: str) -> None:
        self._entries = [e for e in self._entries if e.master_key_id != master_key_id]
