"""Provider credentials per tenant (or shared): stored encrypted, decrypted on demand, cached briefly.

`CredentialStore.resolve` is what the hot path calls: the tenant's own credential for a provider,
else the shared one, from a short-lived in-memory cache in front of the database. While the database
cannot be reached, a credential found before is used for up to `stale_if_error` seconds past its TTL
("none found" is not kept past its TTL).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from gateway.cache import Clock, TTLCache
from gateway.credentials.crypto import (
    CANARY,
    DecryptionError,
    Envelope,
    MasterKey,
    MasterKeyError,
    canary_aad,
    credential_aad,
    open_envelope,
    seal_envelope,
)
from gateway.credentials.secret import Secret
from gateway.storage.errors import AlreadyExists, StorageUnavailable
from gateway.storage.records import KeyringEntry, StoredCredential
from gateway.storage.repositories import new_id

API_KEY = "api_key"


class CredentialUnreadable(Exception):
    """A stored credential cannot be decrypted with the loaded master key."""


class CredentialRecords(Protocol):
    """Where credentials are kept: `gateway.storage.repositories.CredentialRepository`, or a test fake."""

    async def replace(self, credential: StoredCredential) -> None: ...

    async def find_for(self, tenant_id: str, provider: str) -> StoredCredential | None: ...


class Keyring(Protocol):
    """The record of master keys used with a database: `KeyringRepository`, or a test fake."""

    async def entries(self) -> Sequence[KeyringEntry]: ...

    async def add(self, entry: KeyringEntry) -> None: ...

    async def remove(self, master_key_id: str) -> None: ...


@dataclass(frozen=True, slots=True)
class ResolvedCredential:
    """A decrypted credential ready to present to a provider."""

    credential_id: str
    kind: str
    secret: Secret
    shared: bool


class CredentialStore:
    def __init__(
        self,
        repository: CredentialRecords,
        master: MasterKey,
        cache_ttl: float = 30.0,
        cache_size: int = 1000,
        clock: Clock | None = None,
        stale_if_error: float = 300.0,
        on_stale: Callable[[], None] | None = None,
    ) -> None:
        """`on_stale` is told of each credential served stale (see `TTLCache`): the database being down."""
        self._repository = repository
        self._master = master
        self._cache: TTLCache[tuple[str, str], ResolvedCredential] = TTLCache(
            cache_ttl,
            cache_size,
            time.monotonic if clock is None else clock,
            stale_if_error=stale_if_error,
            unavailable=(StorageUnavailable,),
            name="provider credentials",
            on_stale=on_stale,
        )

    async def set(
        self, tenant_id: str | None, provider: str, secret: str, label: str = "", kind: str = API_KEY
    ) -> StoredCredential:
        """Encrypt and store `secret`, replacing the owner's previous credential for `provider`."""
        if not secret:
            raise ValueError("the credential is empty")
        record_id = new_id("cred")
        envelope = seal_envelope(
            self._master, secret.encode(), credential_aad(record_id, tenant_id, provider)
        )
        now = datetime.now(UTC)
        record = StoredCredential(
            id=record_id,
            tenant_id=tenant_id,
            provider=provider,
            kind=kind,
            master_key_id=self._master.id,
            wrapped_data_key=envelope.wrapped_data_key,
            ciphertext=envelope.ciphertext,
            label=label,
            created_at=now,
            updated_at=now,
        )
        await self._repository.replace(record)
        self._cache.clear()
        return record

    async def resolve(self, tenant_id: str, provider: str) -> ResolvedCredential | None:
        """The credential to inject for the tenant's call to `provider`, or None when there is none."""
        return await self._cache.get_or_load((tenant_id, provider), lambda: self._load(tenant_id, provider))

    async def _load(self, tenant_id: str, provider: str) -> ResolvedCredential | None:
        record = await self._repository.find_for(tenant_id, provider)
        if record is None:
            return None
        return ResolvedCredential(
            record.id, record.kind, Secret(self.decrypt(record)), record.tenant_id is None
        )

    def decrypt(self, record: StoredCredential) -> str:
        if record.master_key_id != self._master.id:
            raise CredentialUnreadable(
                f"credential {record.id} was encrypted under master key {record.master_key_id}, "
                f"but {self._master.id} is loaded"
            )
        envelope = Envelope(record.wrapped_data_key, record.ciphertext)
        try:
            plaintext = open_envelope(
                self._master, envelope, credential_aad(record.id, record.tenant_id, record.provider)
            )
        except DecryptionError:
            raise CredentialUnreadable(
                f"credential {record.id} failed authentication: it was altered or moved to another owner"
            ) from None
        return plaintext.decode()


async def verify_master_key(keyring: Keyring, master: MasterKey) -> None:
    """Refuse a master key that is not the one this database was set up with.

    The first start records a canary encrypted under the key; every later start must decrypt it.
    """
    entries = await keyring.entries()
    if not entries:
        entries = await _record_first(keyring, master)
    known = {entry.master_key_id: entry for entry in entries}
    entry = known.get(master.id)
    if entry is None:
        raise MasterKeyError(
            f"wrong master key: this database was set up with master key {', '.join(sorted(known))}, "
            f"but the key given has id {master.id}"
        )
    try:
        plaintext = master.open(entry.canary, canary_aad(master.id))
    except DecryptionError:
        plaintext = b""
    if plaintext != CANARY:
        raise MasterKeyError(f"wrong master key: the keyring canary for {master.id} does not decrypt")


async def _record_first(keyring: Keyring, master: MasterKey) -> Sequence[KeyringEntry]:
    """Record `master` in an empty keyring, and return the keyring as it is then.

    Replicas first started at once may all find the keyring empty. With the same key, the one whose
    canary lands second checks the canary it finds, as a later start does. With another key, a start
    that finds another key's canary beside its own takes its own out and refuses: of two such starts at
    most one goes on (both refuse when each sees the other's), never both under different keys.
    """
    sealed = master.seal(CANARY, canary_aad(master.id))
    try:
        await keyring.add(KeyringEntry(master.id, sealed, datetime.now(UTC)))
    except AlreadyExists:
        return await keyring.entries()
    entries = await keyring.entries()
    others = sorted(entry.master_key_id for entry in entries if entry.master_key_id != master.id)
    if others:
        await keyring.remove(master.id)
        raise MasterKeyError(
            f"wrong master key: master key {', '.join(others)} was set up with this database at the same "
            f"time as the key given ({master.id}); start every replica with one master key"
        )
    return entries
