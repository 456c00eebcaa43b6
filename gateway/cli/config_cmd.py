"""`tollgate config check|schema`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from gateway.cli.help import HelpWithExamples
from gateway.metering.prices import load_price_table
from gateway.settings import Settings, load_settings
from gateway.storage.engine import async_url

SCHEMA_ID = "https://tollgate.dev/schemas/gateway.schema.json"


def register(commands: Any) -> None:
    config = commands.add_parser(
        "config",
        help="check a configuration file, print its JSON Schema",
        description="Work with gateway configuration files.",
    )
    actions = config.add_subparsers(dest="action", metavar="ACTION", required=True)

    check = actions.add_parser(
        "check",
        help="validate a configuration file",
        description="Validate FILE against the schema, with ${ENV} references resolved, and the price "
        "file it names. Prints every problem as FILE: key.path: message and exits 1 if there is any.",
        epilog="example:\n  tollgate config check config/gateway.yaml",
        formatter_class=HelpWithExamples,
    )
    check.add_argument("file", metavar="FILE", type=Path, help="the configuration file (YAML)")
    check.set_defaults(handler=_check)

    schema = actions.add_parser(
        "schema",
        help="print the JSON Schema of the configuration",
        description="Print the JSON Schema of gateway.yaml, for editors (e.g. the YAML language server: "
        "# yaml-language-server: $schema=gateway.schema.json).",
        epilog="example:\n  tollgate config schema > config/gateway.schema.json",
        formatter_class=HelpWithExamples,
    )
    schema.set_defaults(handler=_schema)


def _check(args: argparse.Namespace) -> int:
    settings = load_settings(args.file)
    async_url(settings.database.url)
    load_price_table(settings.metering.prices_file)
    providers = ", ".join(f"{name} ({p.type.value})" for name, p in settings.providers.items()) or "none"
    print(f"{args.file}: ok; providers: {providers}")
    return 0


def json_schema() -> dict[str, Any]:
    schema = Settings.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}


def _schema(args: argparse.Namespace) -> int:
    print(json.dumps(json_schema(), indent=2))
    return 0
