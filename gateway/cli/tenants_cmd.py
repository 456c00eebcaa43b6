"""`tollgate tenant create|list`."""

from __future__ import annotations

import argparse
from typing import Any

from gateway.admin.operations import create_tenant
from gateway.cli.common import database, print_json, print_table, run, settings_of, when
from gateway.cli.help import HelpWithExamples
from gateway.storage.repositories import TenantRepository


def register(commands: Any) -> None:
    tenant = commands.add_parser(
        "tenant",
        help="create and list tenants",
        description="Tenants own keys, teams, users and provider credentials.",
    )
    actions = tenant.add_subparsers(dest="action", metavar="ACTION", required=True)

    create = actions.add_parser(
        "create",
        help="create a tenant",
        description="Create a tenant.",
        epilog="example:\n  tollgate tenant create acme --name 'Acme Corp'",
        formatter_class=HelpWithExamples,
    )
    create.add_argument("tenant_id", metavar="TENANT", help="id: lower-case letters, digits, '-', '_'")
    create.add_argument("--name", help="display name (default: the id)")
    create.add_argument("--json", action="store_true", help="print JSON")
    create.set_defaults(handler=_create)

    listing = actions.add_parser(
        "list",
        help="list tenants",
        description="List tenants.",
        epilog="example:\n  tollgate tenant list --json",
        formatter_class=HelpWithExamples,
    )
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=_list)


def _create(args: argparse.Namespace) -> int:
    settings = settings_of(args)

    async def go() -> None:
        async with database(settings) as engine:
            tenant = await create_tenant(engine, args.tenant_id, args.name)
        if args.json:
            print_json(
                {"id": tenant.id, "display_name": tenant.display_name, "created_at": tenant.created_at}
            )
        else:
            print(f"created tenant {tenant.id}")

    run(go)
    return 0


def _list(args: argparse.Namespace) -> int:
    settings = settings_of(args)

    async def go() -> None:
        async with database(settings) as engine:
            tenants = await TenantRepository(engine).list()
        if args.json:
            print_json(
                [{"id": t.id, "display_name": t.display_name, "created_at": t.created_at} for t in tenants]
            )
        else:
            print_table(
                ("id", "name", "created"), [(t.id, t.display_name, when(t.created_at)) for t in tenants]
            )

    run(go)
    return 0
