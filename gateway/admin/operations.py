"""Creating tenants, issuing and revoking keys, storing credentials: validated once, here."""

from __future__ import annotations

import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import String
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.auth.keys import KEY_PREFIX, display_prefix, generate_key, key_digest
from gateway.credentials.crypto import MasterKey
from gateway.credentials.store import CredentialStore, verify_master_key
from gateway.settings.schema import Settings
from gateway.storage.errors import UnknownRecord
from gateway.storage.models import api_keys, credentials, teams, tenants, users
from gateway.storage.records import ApiKeyRecord, StoredCredential, Tenant
from gateway.storage.repositories import (
    CredentialRepository,
    KeyRepository,
    KeyringRepository,
    TenantRepository,
    new_id,
)

KEY_ID = re.compile(r"^key_[A-Za-z0-9_]{1,36}$")
TENANT_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
TENANT_ID_RULE = (
    "a tenant id is 1-63 characters of lower-case letters, digits, '-' and '_', starting with a letter "
    "or digit"
)


class InvalidInput(ValueError):
    """An argument to an administrative operation is not acceptable."""


@dataclass(frozen=True, slots=True)
class IssuedKey:
    record: ApiKeyRecord
    key: str  # shown once, never stored


def _length(column: Any) -> int:
    kind = column.type
    assert isinstance(kind, String) and kind.length is not None, column
    return kind.length


def _storable(value: str, what: str, column: Any) -> str:
    """`value`, if every database holds it as it is: no longer than its column (PostgreSQL refuses a longer
    one, SQLite would keep it whole) and without a NUL character (PostgreSQL refuses one in any text)."""
    if "\x00" in value:
        raise InvalidInput(f"{what} cannot contain a NUL character")
    limit = _length(column)
    if len(value) > limit:
        raise InvalidInput(f"{what} is at most {limit} characters, got {len(value)}")
    return value


def _member_name(name: str | None, what: str, column: Any) -> str | None:
    """A team's or user's name without surrounding whitespace, so that " ml" and "ml" are one team."""
    if name is None:
        return None
    name = name.strip()
    if not name:
        raise InvalidInput(f"{what}, when given, cannot be empty")
    return _storable(name, what, column)


def _check_tenant_id(tenant_id: str) -> None:
    if not TENANT_ID.fullmatch(tenant_id):
        raise InvalidInput(TENANT_ID_RULE)


def _clean_names(values: Iterable[str] | None) -> frozenset[str] | None:
    if values is None:
        return None
    names = frozenset(value.strip() for value in values if value.strip())
    if not names:
        raise InvalidInput("an allow-list, when given, must name at least one entry")
    return names


async def create_tenant(engine: AsyncEngine, tenant_id: str, display_name: str | None = None) -> Tenant:
    _check_tenant_id(tenant_id)
    name = _storable(display_name or tenant_id, "a tenant's name", tenants.c.display_name)
    return await TenantRepository(engine).create(tenant_id, name, datetime.now(UTC))


async def issue_key(
    engine: AsyncEngine,
    settings: Settings,
    *,
    tenant_id: str,
    label: str = "",
    team: str | None = None,
    user: str | None = None,
    expires_at: datetime | None = None,
    providers: Iterable[str] | None = None,
    models: Iterable[str] | None = None,
) -> IssuedKey:
    """Create a key; the returned plaintext is the only copy there will ever be."""
    now = datetime.now(UTC)
    _check_tenant_id(tenant_id)
    _storable(label, "a key's label", api_keys.c.label)
    team = _member_name(team, "a team name", teams.c.name)
    user = _member_name(user, "a user name", users.c.name)
    if expires_at is not None:
        expires_at = _expiry_in_utc(expires_at, now)
    allowed_providers = _clean_names(providers)
    unknown = sorted((allowed_providers or frozenset()) - set(settings.providers))
    if unknown:
        raise InvalidInput(
            f"unknown provider(s) {', '.join(unknown)}; configured: {', '.join(settings.providers)}"
        )
    key = generate_key()
    record = ApiKeyRecord(
        id=new_id("key"),
        prefix=display_prefix(key),
        tenant_id=tenant_id,
        team=team,
        user=user,
        label=label,
        allowed_providers=allowed_providers,
        allowed_models=_clean_names(models),
        created_at=now,
        expires_at=expires_at,
        revoked_at=None,
    )
    await KeyRepository(engine).create(record, key_digest(key))
    return IssuedKey(record, key)


def _expiry_in_utc(expires_at: datetime, now: datetime) -> datetime:
    """The expiry as the database stores it, in UTC; refused when it has no zone, is past, or has no UTC
    form (9999-12-31T23:59:59-01:00 is in year 10000 there)."""
    if expires_at.utcoffset() is None:
        raise InvalidInput("the expiry must carry a time zone, e.g. 2027-01-31T00:00:00Z")
    try:
        in_utc = expires_at.astimezone(UTC)
    except OverflowError:
        raise InvalidInput(f"the expiry must be at most {datetime.max:%Y-%m-%dT%H:%M:%S}Z") from None
    if in_utc <= now:
        raise InvalidInput("the expiry must be in the future")
    return in_utc


async def revoke_key(engine: AsyncEngine, key: str) -> ApiKeyRecord:
    """Revoke the key named by its id (`key_...`) or by the key itself (`tg-...`, looked up by digest as
    authentication does): an operator holding a leaked key need not find its id first. What is neither
    an id nor found is refused without being repeated, as it may be a secret pasted by mistake."""
    keys = KeyRepository(engine)
    if key.startswith(KEY_PREFIX):
        digest = key_digest(key)
        found = await keys.find_by_digest(digest)
        if found is None or not hmac.compare_digest(found[1], digest):
            raise UnknownRecord("no key matches the Tollgate key given (not repeated here)")
        key = found[0].id
    elif not KEY_ID.fullmatch(key):
        raise UnknownRecord(
            "no key has that id (not repeated here): give a key id, key_..., as `tollgate key list` "
            "shows, or the key itself, tg-..."
        )
    return await keys.revoke(key, datetime.now(UTC))


def _check_provider(settings: Settings, provider: str) -> None:
    if provider not in settings.providers:
        configured = ", ".join(settings.providers) or "none"
        raise InvalidInput(f"provider {provider!r} is not configured (configured: {configured})")


async def store_credential(
    engine: AsyncEngine,
    settings: Settings,
    master: MasterKey,
    *,
    tenant_id: str | None,
    provider: str,
    secret: str,
    label: str = "",
) -> StoredCredential:
    """Encrypt and store a provider credential for a tenant, or shared by all when `tenant_id` is None."""
    _check_provider(settings, provider)
    if tenant_id is not None:
        _check_tenant_id(tenant_id)
    _storable(label, "a credential's label", credentials.c.label)
    secret = secret.strip()
    if not secret:
        raise InvalidInput("the credential is empty")
    odd = next((at for at, char in enumerate(secret) if not " " <= char <= "~"), None)
    if odd is not None:  # it would go upstream as raw bytes in a header; never repeated here
        raise InvalidInput(
            f"a credential is printable ASCII (letters, digits, punctuation); character {odd + 1} of "
            f"{len(secret)} is not (a control, invisible or non-ASCII character, pasted by mistake?)"
        )
    await verify_master_key(KeyringRepository(engine), master)
    store = CredentialStore(CredentialRepository(engine), master)
    return await store.set(tenant_id, provider, secret, label)
