"""`tollgate`: serve the gateway and administer tenants, keys, credentials, configuration and the database."""

from __future__ import annotations

import argparse
import os
import signal
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
Run `tollgate COMMAND --help` for each command.

Exit status: 0 done; 1 refused or failed, with one line on stderr saying why (`db current`: the
schema is at another revision); 2 a command line it cannot parse, with the command's usage;
3 `serve` could not start; 130 interrupted (Ctrl-C); 141 its output's reader left
(`tollgate usage | head`)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tollgate",
        description="Tollgate: a self-hostable gateway between developer tools and AI provider APIs.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", metavar="FILE", help="configuration file (YAML); before the command")
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
    args = parse(build_parser(), argv)
    try:
        status = run_command(args)
        sys.stdout.flush()  # here, where a reader gone is seen, not at exit
    except BrokenPipeError:
        return reader_gone()
    return status


def parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line parsed; a global option given after the command is a usage error that says where
    it goes, rather than an unrecognised argument."""
    args, unknown = parser.parse_known_args(argv)
    if any(argument == "--config" or argument.startswith("--config=") for argument in unknown):
        command = " ".join(word for word in (args.command, getattr(args, "action", None)) if word)
        parser.error(f"--config goes before the command: tollgate --config FILE {command} ...")
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    return args


def reader_gone() -> int:
    """Output whose reader has gone (`tollgate usage | head`): end quietly, as a pipe ends the tools before
    it, with the status a shell gives a writer that SIGPIPE ended. What is left unwritten goes nowhere."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 128 + signal.SIGPIPE


def run_command(args: argparse.Namespace) -> int:
    """Run the command; an error is one line on stderr and exit status 1 (130 for Ctrl-C)."""
    try:
        result: int = args.handler(args)
        return result
    except BrokenPipeError:
        raise
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
