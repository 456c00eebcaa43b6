"""`tollgate db upgrade|current`."""

from __future__ import annotations

import argparse
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from alembic.util import CommandError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from gateway.cli.common import CliError, database, database_problem, run, settings_of
from gateway.cli.help import HelpWithExamples
from gateway.settings import Settings
from gateway.storage.engine import redacted
from gateway.storage.migrate import current_revision, head_revision, upgrade


def register(commands: Any) -> None:
    db = commands.add_parser(
        "db",
        help="apply database migrations, show the schema revision",
        description="Manage the database schema (database.url of the configuration).",
        epilog="examples:\n  tollgate db upgrade\n  tollgate --config config/gateway.yaml db current",
        formatter_class=HelpWithExamples,
    )
    actions = db.add_subparsers(dest="action", metavar="ACTION", required=True)
    up = actions.add_parser(
        "upgrade",
        help="apply every pending migration",
        description="Create or upgrade the schema to this version's revision (idempotent). A SQLite "
        "file's folder is created when missing. Run it once per release, before `tollgate serve`.",
        epilog="example:\n  TOLLGATE_DATABASE_URL=postgresql://tollgate@db:5432/tollgate tollgate db upgrade",
        formatter_class=HelpWithExamples,
    )
    up.set_defaults(handler=_upgrade)
    current = actions.add_parser(
        "current",
        help="print the schema revision",
        description="Print the database's schema revision and the one this version needs. Exit status 1 "
        "when the database is at another revision (or has none yet): run `tollgate db upgrade`.",
        epilog="example:\n  tollgate --config /etc/tollgate/gateway.yaml db current",
        formatter_class=HelpWithExamples,
    )
    current.set_defaults(handler=_current)


@contextmanager
def _reaching(settings: Settings, doing: str) -> Iterator[None]:
    """A database that cannot be used, as one line naming it (password hidden), the driver's reason and
    a hint: reachability only when the database does not answer (a migration refused by a database
    that answers, a read-only file say, is not a connection problem); `doing` names what failed then."""
    url = settings.database.url
    try:
        yield
    except CommandError as exc:  # Alembic's: the schema is at a revision this version does not know
        raise CliError(
            f"{redacted(url)}: {exc}; this version's latest is {head_revision()}: a later Tollgate "
            "upgraded this database, so run that version or a newer one (Tollgate has no downgrade)"
        ) from None
    except (SQLAlchemyError, OSError, sqlite3.Error) as exc:
        hint = f"the database answers: {doing} failed" if _answers(settings) else "is the database reachable?"
        raise CliError(f"{database_problem(url, exc)} ({hint})") from None


def _answers(settings: Settings) -> bool:
    """Whether the database takes a connection and a `SELECT 1`."""

    async def probe() -> None:
        async with database(settings) as engine, engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    try:
        run(probe)
    except Exception:
        return False
    return True


def _upgrade(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    with _reaching(settings, "the migration"):
        upgrade(settings.database.url)
    print(f"{redacted(settings.database.url)}: schema at revision {head_revision()}")
    return 0


def _current(args: argparse.Namespace) -> int:
    settings = settings_of(args)

    async def go() -> str | None:
        async with database(settings) as engine:
            return await current_revision(engine)

    with _reaching(settings, "reading its revision"):
        current = run(go)
    where = redacted(settings.database.url)
    print(f"{where}: revision {current or 'none'} (this version needs {head_revision()})")
    return 0 if current == head_revision() else 1
