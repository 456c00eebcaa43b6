"""Tollgate keys: issued once, stored as digests, checked from a short-lived cache.

A key is `tg-` followed by 32 random bytes in urlsafe base64. Only its SHA-256 digest is stored
(the key has 256 bits of entropy, so a fast hash is safe); it is looked up by digest and the
match confirmed with a constant-time comparison. `KeyAuthenticator` keeps looked-up keys in memory
for `ttl` seconds, so a revocation made in the database takes effect within that time.

While the database cannot be reached, a key found before keeps working for up to `stale_if_error`
seconds past its TTL (a key never found, or found unknown, gets 503). No one can revoke a key while
the database is down; the trade-off is a gateway cut off from a database that the others still reach:
it accepts a key revoked meanwhile until its connection returns or `stale_if_error` runs out.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from gateway.cache import Clock, TTLCache
from gateway.errors import AuthError, MissingKey, ServiceUnavailable
from gateway.storage.errors import StorageError, StorageUnavailable
from gateway.storage.records import ApiKeyRecord

KEY_PREFIX = "tg-"
RANDOM_BYTES = 32
MAX_KEY_LENGTH = 256
DISPLAY_PREFIX_LENGTH = 10
UNKNOWN_KEYS_SHARE = 10  # unknown keys ("not found" answers) are cached up to a tenth of `size`


class KeyLookup(Protocol):
    """Where keys are looked up: `gateway.storage.repositories.KeyRepository`, or a test fake."""

    async def find_by_digest(self, digest: bytes) -> tuple[ApiKeyRecord, bytes] | None: ...


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling, as resolved from their credential."""

    tenant_id: str
    key_id: str
    team: str | None
    user: str | None
    label: str
    allowed_providers: frozenset[str] | None
    allowed_models: frozenset[str] | None


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(RANDOM_BYTES)


def key_digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def display_prefix(key: str) -> str:
    """The first characters of a key, safe to show in listings to recognise it."""
    return key[:DISPLAY_PREFIX_LENGTH]


def looks_like_key(value: str) -> bool:
    return value.startswith(KEY_PREFIX) and len(value) <= MAX_KEY_LENGTH


def principal_of(record: ApiKeyRecord) -> Principal:
    return Principal(
        tenant_id=record.tenant_id,
        key_id=record.id,
        team=record.team,
        user=record.user,
        label=record.label,
        allowed_providers=record.allowed_providers,
        allowed_models=record.allowed_models,
    )


def _utcnow() -> datetime:
    return datetime.now(UTC)


class KeyAuthenticator:
    """Resolves a presented Tollgate key to its principal, or raises `AuthError`."""

    def __init__(
        self,
        repository: KeyLookup,
        ttl: float,
        size: int,
        clock: Clock | None = None,
        now: Callable[[], datetime] = _utcnow,
        stale_if_error: float = 300.0,
        on_stale: Callable[[], None] | None = None,
    ) -> None:
        """`on_stale` is told of each key served stale (see `TTLCache`): the database being down."""
        self._repository = repository
        self._cache: TTLCache[bytes, ApiKeyRecord] = TTLCache(
            ttl,
            size,
            time.monotonic if clock is None else clock,
            misses_size=max(1, size // UNKNOWN_KEYS_SHARE),
            stale_if_error=stale_if_error,
            unavailable=(StorageUnavailable,),
            name="Tollgate keys",
            on_stale=on_stale,
        )
        self._now = now

    async def authenticate(self, presented: str | None) -> Principal:
        if not presented:
            raise MissingKey("no Tollgate key was presented; send it as the API key of your SDK")
        if not looks_like_key(presented):
            raise AuthError("invalid Tollgate key")
        digest = key_digest(presented)
        try:
            record = await self._cache.get_or_load(digest, lambda: self._lookup(digest))
        except StorageError:
            raise ServiceUnavailable("the key store is unavailable; try again shortly") from None
        if record is None:
            raise AuthError("invalid Tollgate key")
        if not record.is_usable_at(self._now()):
            raise AuthError("this Tollgate key has been revoked or has expired")
        return principal_of(record)

    async def _lookup(self, digest: bytes) -> ApiKeyRecord | None:
        found = await self._repository.find_by_digest(digest)
        if found is None:
            return None
        record, stored_digest = found
        return record if hmac.compare_digest(stored_digest, digest) else None
