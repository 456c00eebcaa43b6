"""Plain records the repositories return: frozen, typed, and free of any database machinery."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation
from typing import Any, NamedTuple


@dataclass(frozen=True, slots=True)
class Tenant:
    id: str
    display_name: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """A Tollgate key as stored: everything but the secret, which exists only as its digest."""

    id: str
    prefix: str
    tenant_id: str
    team: str | None
    user: str | None
    label: str
    allowed_providers: frozenset[str] | None
    allowed_models: frozenset[str] | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    def is_usable_at(self, now: datetime) -> bool:
        """Not revoked, and not expired at `now`. A revocation counts from the moment it is stored, whatever
        `now` says: `revoked_at` is the revoking host's clock, and a gateway whose clock is behind it must
        not keep accepting the key until its own clock catches up."""
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or now < self.expires_at


@dataclass(frozen=True, slots=True)
class StoredCredential:
    """A provider credential as stored: the secret only in its encrypted envelope."""

    id: str
    tenant_id: str | None  # None: shared by every tenant
    provider: str
    kind: str
    master_key_id: str
    wrapped_data_key: bytes
    ciphertext: bytes
    label: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class KeyringEntry:
    """Proof that a master key was used with this database: a canary encrypted under it."""

    master_key_id: str
    canary: bytes
    created_at: datetime


class UsageRecord(NamedTuple):
    """One proxied call in the usage ledger (token kinds as defined in `gateway.metering.usage`).

    A named tuple rather than a dataclass: one is made per request on the hot path (a third of the
    cost) and it is already the row the database drivers take, fields in column order. The time is epoch
    seconds (`time.time()`, UTC by definition): the writers turn it into what their database stores,
    which spares the request a `datetime`.
    """

    created_at: float
    request_id: str
    tenant_id: str | None
    team: str | None
    user: str | None
    key_id: str | None
    provider: str
    upstream: str
    model: str | None
    endpoint: str
    status: int
    streamed: bool
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int
    cost_usd: Decimal | None
    duration_ms: float
    ttfb_ms: float | None
    estimated: bool
    # The processing tier that served the call when not the standard one (OpenAI's flex, priority):
    # the rates its cost is at. None for the standard tier.
    service_tier: str | None = None
    # Web searches the provider ran for the call and billed apiece (in cost_usd, on top of the tokens).
    web_searches: int = 0


INT64_MAX = 2**63 - 1
COST_SCALE = 10  # decimal places of usage_records.cost_usd, NUMERIC(20, 10)
COST_QUANTUM = Decimal(1).scaleb(-COST_SCALE)
# `COST_CONTEXT.quantize(cost, COST_QUANTUM)` rounds a cost to the column's places, half to even, and
# raises InvalidOperation for one past its 20 digits (ten billion dollars or more). The writers round
# every cost so as it becomes a row: SQLite and PostgreSQL then store and sum the same value, where
# PostgreSQL would round an 11th decimal 5 away from zero and SQLite's sum, of a double, either way.
COST_CONTEXT = Context(prec=COST_SCALE + 10, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation])
# What the ledger stores of one record's counts at most. Tokens: a thousand times any model's context,
# yet a million records at the bound still sum within 64 bits. Web searches: the column is a 32-bit
# INTEGER on PostgreSQL.
MAX_TOKENS = 10**12
MAX_WEB_SEARCHES = 10**6
_BOUNDS = {
    **dict.fromkeys(
        ("input_tokens", "output_tokens", "cached_input_tokens", "cache_write_tokens", "reasoning_tokens"),
        MAX_TOKENS,
    ),
    "web_searches": MAX_WEB_SEARCHES,
}


def bounded(record: UsageRecord) -> tuple[UsageRecord, tuple[str, ...]]:
    """`record` with each count within the ledger's bounds (tokens of each kind 0..`MAX_TOKENS`, web
    searches 0..`MAX_WEB_SEARCHES`), and the names of the counts that were not. Such a record's cost
    is unknown: a cost made of counts no call has is no cost at all."""
    changes: dict[str, Any] = {}
    for name, bound in _BOUNDS.items():
        value = getattr(record, name)
        if not 0 <= value <= bound:
            changes[name] = bound if value > bound else 0
    if not changes:
        return record, ()
    return record._replace(**changes, cost_usd=None), tuple(changes)


def storable(record: UsageRecord) -> UsageRecord:
    """`record` as every database can hold it, for one a database refused: texts without NUL
    characters (which PostgreSQL refuses), integers within 64 bits, and a cost that fits its column
    once rounded to its places (else unknown: a cost made of counts past 64 bits is no cost at all).
    The record itself if it needed nothing. (The writers keep the counts within `bounded`'s bounds.)"""
    values: list[object] = []
    clamped = False
    for value in record:
        if isinstance(value, str) and "\x00" in value:
            value = value.replace("\x00", "")
        elif type(value) is int and not -INT64_MAX <= value <= INT64_MAX:
            value, clamped = (INT64_MAX if value > 0 else -INT64_MAX), True
        values.append(value)
    cleaned = UsageRecord._make(values)
    cost = cleaned.cost_usd
    if cost is not None and (clamped or not _fits_its_column(cost)):
        cleaned = cleaned._replace(cost_usd=None)
    return record if cleaned == record else cleaned


def _fits_its_column(cost: Decimal) -> bool:
    try:
        COST_CONTEXT.quantize(cost, COST_QUANTUM)
    except InvalidOperation:  # ten billion dollars or more once rounded, or infinite
        return False
    return not cost.is_nan()
