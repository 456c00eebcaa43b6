"""`tollgate`: serve the gateway and administer tenants, keys, credentials, configuration and the database."""

from __future__ import annotations

import argparse
import sqlite3
import sys
from collections.abc import Sequence

from sqlalchemy.exc import SQLAlchemyError

from gateway import __version__
from gateway.cli import (
    config_cmd,
    credentials_cmd,
    db_cmd,
    keys_cmd,
    master_key_cmd,
    serve_cmd,
    tenants_cmd,
    usage_cmd,
)
from gateway.cli.common import CliError
from gateway.credentials.crypto import MasterKeyError
from gateway.settings import ConfigError
from gateway.storage.engine import DatabaseURLError
from gateway.storage.errors import StorageError, StorageUnavailable

EPILOG = """\
Configuration: --config FILE, else $TOLLGATE_CONFIG, else config/gateway.yaml when it exists,
else built-in defaults. The master key comes from $TOLLGATE_MASTER_KEY or master_key.file.
Run `tollgate COMMAND --help` for each command."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tollgate",
        description="Tollgate: a self-hostable gateway between developer tools and AI provider APIs.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", metavar="FILE", help="configuration file (YAML)")
    parser.add_argument("--version", action="version", version=f"tollgate {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in (
        serve_cmd,
        tenants_cmd,
        keys_cmd,
        credentials_cmd,
        config_cmd,
        db_cmd,
        master_key_cmd,
        usage_cmd,
    ):
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result: int = args.handler(args)
        return result
    except ConfigError as exc:
        print(exc, file=sys.stderr)
    except StorageUnavailable as exc:
        print(
            f"tollgate: {exc} (is the database reachable, and up to date? `tollgate db upgrade`)",
            file=sys.stderr,
        )
    except StorageError as exc:  # the database answered: an unknown or duplicate record, a refused value
        print(f"tollgate: {exc}", file=sys.stderr)
    except (CliError, MasterKeyError, DatabaseURLError, ValueError) as exc:
        print(f"tollgate: {exc}", file=sys.stderr)
    except (OSError, SQLAlchemyError, sqlite3.Error) as exc:  # a database or a file out of reach
        first_line = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
        print(f"tollgate: {type(exc).__name__}: {first_line}", file=sys.stderr)
    except KeyboardInterrupt:
        return 130
    return 1
