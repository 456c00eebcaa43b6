"""`tollgate key create|list|revoke`."""

from __future__ import annotations

import argparse
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.admin.operations import issue_key, revoke_key
from gateway.cli.common import (
    CliError,
    check_tenant_exists,
    database,
    print_json,
    print_table,
    run,
    settings_of,
    when,
)
from gateway.cli.help import HelpWithExamples
from gateway.storage.records import ApiKeyRecord
from gateway.storage.repositories import KeyRepository

_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def register(commands: Any) -> None:
    key = commands.add_parser(
        "key",
        help="issue, list and revoke Tollgate keys",
        description="Tollgate keys authenticate callers. A key is shown once, at creation.",
    )
    actions = key.add_subparsers(dest="action", metavar="ACTION", required=True)

    create = actions.add_parser(
        "create",
        help="issue a key",
        description="Issue a key for a tenant. The key is printed once and only its digest is stored.",
        epilog="examples:\n"
        "  tollgate key create --tenant acme --label laptop\n"
        "  tollgate key create --tenant acme --team ml --user ada@acme.test --expires-in 90d\n"
        "  tollgate key create --tenant acme --provider openai --model gpt-4o-mini --json",
        formatter_class=HelpWithExamples,
    )
    create.add_argument("--tenant", required=True, help="tenant the key belongs to")
    create.add_argument("--team", help="team within the tenant (created on first use)")
    create.add_argument("--user", help="user within the tenant (created on first use)")
    create.add_argument("--label", default="", help="free text to recognise the key by")
    expiry = create.add_mutually_exclusive_group()
    expiry.add_argument("--expires-in", metavar="DURATION", help="lifetime such as 90d, 12h, 30m")
    expiry.add_argument(
        "--expires-at",
        metavar="ISO8601",
        help="expiry instant, e.g. 2027-01-31T00:00:00Z or 2027-01-31T09:00+09:00; a time without a zone "
        "is taken as UTC",
    )
    create.add_argument(
        "--provider",
        action="append",
        dest="providers",
        metavar="NAME",
        help="allow only this provider (repeatable; default: all)",
    )
    create.add_argument(
        "--model",
        action="append",
        dest="models",
        metavar="MODEL",
        help="allow only this model (repeatable; default: all); such a key is refused a generating "
        "call that names no model (in its path or body), as the upstream would pick one",
    )
    create.add_argument("--json", action="store_true", help="print JSON")
    create.set_defaults(handler=_create)

    listing = actions.add_parser(
        "list",
        help="list keys (never their secrets)",
        description="List keys: id, prefix, tenant, team, user, label, expiry, revocation.",
        epilog="example:\n  tollgate key list --tenant acme",
        formatter_class=HelpWithExamples,
    )
    listing.add_argument("--tenant", help="only this tenant's keys")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=_list)

    revoke = actions.add_parser(
        "revoke",
        help="revoke a key",
        description="Revoke a key, named by its id or by the key itself (a leaked key, say: it is looked up "
        "by its digest and never printed). Running gateways stop accepting it within "
        "auth.key_cache_ttl_seconds.",
        epilog="examples:\n"
        "  tollgate key revoke key_3f9a0c1b2d4e5f60a7b8\n"
        '  tollgate key revoke "$LEAKED_KEY"   # tg-...',
        formatter_class=HelpWithExamples,
    )
    revoke.add_argument(
        "key_id", metavar="KEY", help="the key's id (key_...) as `key list` shows, or the key itself (tg-...)"
    )
    revoke.add_argument("--json", action="store_true", help="print JSON")
    revoke.set_defaults(handler=_revoke)


def _expiry(args: argparse.Namespace) -> datetime | None:
    if args.expires_in:
        match = _DURATION.match(args.expires_in)
        if not match:
            raise CliError("--expires-in takes a number and a unit (s, m, h, d, w), e.g. 90d")
        try:
            return datetime.now(UTC) + timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
        except OverflowError:
            raise CliError(f"--expires-in {args.expires_in} ends past the calendar's last year") from None
    if args.expires_at:
        try:
            instant = datetime.fromisoformat(args.expires_at.replace("Z", "+00:00"))
        except ValueError:
            raise CliError("--expires-at takes an ISO 8601 instant, e.g. 2027-01-31T00:00:00Z") from None
        if instant.utcoffset() is None:
            return instant.replace(tzinfo=UTC)
        try:
            return instant.astimezone(UTC)
        except OverflowError:  # 9999-12-31T23:59:59-01:00 is in year 10000 in UTC
            raise CliError(
                f"--expires-at {args.expires_at} is past {datetime.max:%Y-%m-%dT%H:%M:%S}Z, the last "
                "instant a key can expire at"
            ) from None
    return None


def _as_dict(record: ApiKeyRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "prefix": record.prefix,
        "tenant": record.tenant_id,
        "team": record.team,
        "user": record.user,
        "label": record.label,
        "providers": None if record.allowed_providers is None else sorted(record.allowed_providers),
        "models": None if record.allowed_models is None else sorted(record.allowed_models),
        "created_at": record.created_at,
        "expires_at": record.expires_at,
        "revoked_at": record.revoked_at,
    }


def _create(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    expires_at = _expiry(args)

    async def go() -> None:
        async with database(settings) as engine:
            issued = await issue_key(
                engine,
                settings,
                tenant_id=args.tenant,
                label=args.label,
                team=args.team,
                user=args.user,
                expires_at=expires_at,
                providers=args.providers,
                models=args.models,
            )
        if args.json:
            print_json({**_as_dict(issued.record), "key": issued.key})
            return
        print(issued.key)
        print(
            f"# key id {issued.record.id} for tenant {issued.record.tenant_id}: "
            "store it now, it cannot be shown again"
        )

    run(go)
    return 0


def _status(record: ApiKeyRecord, now: datetime) -> str:
    if record.revoked_at is not None:
        return "revoked"
    return "active" if record.is_usable_at(now) else "expired"


def _list(args: argparse.Namespace) -> int:
    settings = settings_of(args)

    async def go() -> None:
        async with database(settings) as engine:
            records = await KeyRepository(engine).list(args.tenant)
            if not records:
                await check_tenant_exists(engine, args.tenant)
        if args.json:
            print_json([_as_dict(record) for record in records])
            return
        now = datetime.now(UTC)
        print_table(
            ("id", "prefix", "tenant", "team", "user", "label", "status", "expires"),
            [
                (
                    r.id,
                    r.prefix + "...",
                    r.tenant_id,
                    r.team,
                    r.user,
                    r.label,
                    _status(r, now),
                    when(r.expires_at),
                )
                for r in records
            ],
        )

    run(go)
    return 0


def _revoke(args: argparse.Namespace) -> int:
    settings = settings_of(args)

    async def go() -> None:
        async with database(settings) as engine:
            record = await revoke_key(engine, args.key_id)
        if args.json:
            print_json(_as_dict(record))
        else:
            print(
                f"revoked {record.id} (tenant {record.tenant_id}); gateways refuse it within "
                f"{settings.auth.key_cache_ttl_seconds:g}s"
            )

    run(go)
    return 0
