"""`tollgate credential set|list|delete`: provider credentials, stored encrypted."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from typing import Any

from gateway.admin.operations import store_credential
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
from gateway.credentials.crypto import load_master_key
from gateway.settings import Settings
from gateway.storage.records import StoredCredential
from gateway.storage.repositories import CredentialRepository


def _owner_arguments(parser: argparse.ArgumentParser) -> None:
    owner = parser.add_mutually_exclusive_group(required=True)
    owner.add_argument("--tenant", help="the tenant whose credential this is")
    owner.add_argument(
        "--shared", action="store_true", help="the credential every tenant without its own uses"
    )


def register(commands: Any) -> None:
    credential = commands.add_parser(
        "credential",
        help="store, list and delete provider credentials",
        description="Provider credentials are encrypted (AES-256-GCM, envelope) under the master key.",
    )
    actions = credential.add_subparsers(dest="action", metavar="ACTION", required=True)

    store = actions.add_parser(
        "set",
        help="store a provider credential (replacing the previous one)",
        description="Store a provider API key for a tenant, or shared by all tenants. The secret is read "
        "from standard input (a prompt without echo on a terminal) or from the environment variable "
        "named by --from-env; never from the command line. Surrounding whitespace (a trailing newline, say) "
        "is stripped; what is left must be printable ASCII. Running gateways keep what they held for the "
        "owner and provider (the previous credential, the shared one, or none) for up to "
        "credentials.cache_ttl_seconds (30 by default) before they use it.",
        epilog="examples:\n"
        "  printenv OPENAI_API_KEY | tollgate credential set --tenant acme --provider openai\n"
        "  tollgate credential set --shared --provider anthropic --from-env ANTHROPIC_API_KEY\n"
        "  tollgate credential set --tenant acme --provider openai   # asks, input hidden",
        formatter_class=HelpWithExamples,
    )
    _owner_arguments(store)
    store.add_argument("--provider", required=True, help="provider name from the configuration")
    store.add_argument("--label", default="", help="free text to recognise the credential by")
    store.add_argument("--from-env", metavar="VAR", help="read the secret from this environment variable")
    store.add_argument("--json", action="store_true", help="print JSON")
    store.set_defaults(handler=_set)

    listing = actions.add_parser(
        "list",
        help="list credentials (never their secrets)",
        description="List stored credentials.",
        epilog="examples:\n  tollgate credential list --tenant acme\n  tollgate credential list --shared",
        formatter_class=HelpWithExamples,
    )
    scope = listing.add_mutually_exclusive_group()
    scope.add_argument("--tenant", help="only this tenant's credentials")
    scope.add_argument("--shared", action="store_true", help="only shared credentials")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=_list)

    remove = actions.add_parser(
        "delete",
        help="delete a credential",
        description="Delete a credential. Running gateways keep using it for up to "
        "credentials.cache_ttl_seconds (30 by default), from the decrypted copy each holds in memory.",
        epilog="example:\n  tollgate credential delete --tenant acme --provider openai",
        formatter_class=HelpWithExamples,
    )
    _owner_arguments(remove)
    remove.add_argument("--provider", required=True, help="provider name")
    remove.set_defaults(handler=_delete)


def _read_secret(args: argparse.Namespace) -> str:
    if args.from_env:
        value = os.environ.get(args.from_env)
        if not value:
            raise CliError(f"environment variable {args.from_env} is not set or empty")
        return value
    if sys.stdin.isatty():
        try:
            return getpass.getpass(f"{args.provider} credential (input hidden): ")
        except EOFError:  # Ctrl-D at the prompt
            if sys.stderr.isatty():
                sys.stderr.write("\n")  # the prompt's line was left open
            raise CliError("no credential entered (end of input at the prompt)") from None
    return sys.stdin.read()


def _as_dict(record: StoredCredential) -> dict[str, Any]:
    return {
        "id": record.id,
        "owner": record.tenant_id or "shared",
        "provider": record.provider,
        "kind": record.kind,
        "label": record.label,
        "master_key_id": record.master_key_id,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
    }


def _set(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    master = load_master_key(settings.master_key.env, settings.master_key.file)
    tenant = None if args.shared else args.tenant
    run(lambda: _check_owner_and_provider(settings, tenant, args.provider))  # before the secret is typed
    secret = _read_secret(args)

    async def go() -> None:
        async with database(settings) as engine:
            record = await store_credential(
                engine,
                settings,
                master,
                tenant_id=tenant,
                provider=args.provider,
                secret=secret,
                label=args.label,
            )
        if args.json:
            print_json(_as_dict(record))
        else:
            owner = record.tenant_id or "all tenants (shared)"
            print(
                f"stored {record.provider} credential {record.id} for {owner}; running gateways use it "
                f"within {settings.credentials.cache_ttl_seconds:g}s"
            )

    run(go)
    return 0


async def _check_owner_and_provider(settings: Settings, tenant: str | None, provider: str) -> None:
    """Refuse what `store_credential` would refuse for the owner or provider, so that nobody types or
    pastes a secret only to learn of a typo in the command."""
    if provider not in settings.providers:
        configured = ", ".join(settings.providers) or "none"
        raise CliError(f"provider {provider!r} is not configured (configured: {configured})")
    async with database(settings) as engine:
        await check_tenant_exists(engine, tenant)


def _list(args: argparse.Namespace) -> int:
    settings = settings_of(args)

    async def go() -> None:
        async with database(settings) as engine:
            records = await CredentialRepository(engine).list(args.tenant, shared=args.shared)
            if not records:
                await check_tenant_exists(engine, args.tenant)
        if args.json:
            print_json([_as_dict(record) for record in records])
            return
        print_table(
            ("id", "owner", "provider", "kind", "label", "master key", "updated"),
            [
                (
                    r.id,
                    r.tenant_id or "shared",
                    r.provider,
                    r.kind,
                    r.label,
                    r.master_key_id,
                    when(r.updated_at),
                )
                for r in records
            ],
        )

    run(go)
    return 0


def _delete(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    tenant = None if args.shared else args.tenant

    async def go() -> bool:
        async with database(settings) as engine:
            deleted = await CredentialRepository(engine).delete(tenant, args.provider)
            if not deleted:
                await check_tenant_exists(engine, tenant)
            return deleted

    if not run(go):
        raise CliError(f"no {args.provider} credential for {tenant or 'shared'}")
    print(
        f"deleted the {args.provider} credential of {tenant or 'shared'}; running gateways may use it for "
        f"up to {settings.credentials.cache_ttl_seconds:g}s more"
    )
    return 0
