"""What every command shares: settings, the database, output formats, and error reporting."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import threading
import unicodedata
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import orjson
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.settings import Settings, load_settings
from gateway.storage.engine import COMMAND_TIMEOUT, create_engine, redacted
from gateway.storage.errors import StorageUnavailable, UnknownRecord
from gateway.storage.repositories import TenantRepository

DEFAULT_CONFIG = Path("config/gateway.yaml")
T = TypeVar("T")


class CliError(Exception):
    """A failure to report in one line on stderr, exiting with status 1."""


def config_path(args: argparse.Namespace) -> Path | None:
    """--config, else $TOLLGATE_CONFIG, else config/gateway.yaml when it exists, else none (defaults)."""
    if args.config is not None:
        return Path(args.config)
    from_env = os.environ.get("TOLLGATE_CONFIG")
    if from_env:
        return Path(from_env)
    return DEFAULT_CONFIG if DEFAULT_CONFIG.exists() else None


def settings_of(args: argparse.Namespace) -> Settings:
    return load_settings(config_path(args))


@asynccontextmanager
async def database(
    settings: Settings, *, statement_timeout: float | None = COMMAND_TIMEOUT
) -> AsyncIterator[AsyncEngine]:
    """The configured database's engine; a failure to reach it names the database and the reason."""
    url = settings.database.url
    engine = create_engine(url, settings.database.pool_size, statement_timeout=statement_timeout)
    try:
        yield engine
    except StorageUnavailable as exc:
        raise StorageUnavailable(database_problem(url, exc.__cause__ or exc)) from exc
    finally:
        await engine.dispose()


def database_problem(url: str, exc: BaseException) -> str:
    """`URL: reason` for a database out of reach: the URL without its password, the reason the driver's
    own first line (`unable to open database file`, `database "x" does not exist`), never the statement
    or its parameters that follow it."""
    error = getattr(exc, "orig", None) or exc  # the driver's error, under SQLAlchemy's wrapper
    lines = str(error).strip().splitlines()
    reason = _DRIVER_CLASS.sub("", lines[0])[:300] if lines else type(error).__name__
    password = make_url(url).password if url else None
    if password:
        reason = reason.replace(str(password), "***")
    return f"{redacted(url)}: {reason or type(error).__name__}"


_DRIVER_CLASS = re.compile(r"^<class '[\w.]+'>: ")  # how SQLAlchemy's asyncpg adapter prefixes a message


def run(coroutine_function: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        started_before = set(threading.enumerate())
        try:
            return await coroutine_function()
        finally:
            await _threads_ended(set(threading.enumerate()) - started_before)

    return asyncio.run(main())


async def _threads_ended(threads: set[threading.Thread]) -> None:
    """Wait, with the event loop still open, for the threads a command started to end. A SQLite connection
    that failed to open leaves its worker thread (aiosqlite's) to report its stop to the loop afterwards:
    once the loop is closed that report is a traceback ("Event loop is closed") after the command's one
    line. The thread is a daemon, so the wait is bounded; the loop's own executor is left to
    `asyncio.run`, which shuts it down."""
    running = [t for t in threads if t.is_alive() and not t.name.startswith("asyncio")]

    def join() -> None:
        for thread in running:
            thread.join(_THREAD_END_TIMEOUT)

    if running:
        await asyncio.to_thread(join)


_THREAD_END_TIMEOUT = 10.0  # seconds for each: a stop is a few instructions, never a query


async def check_tenant_exists(engine: AsyncEngine, tenant_id: str | None) -> None:
    """Refuse a tenant that does not exist, as an operator's mistake (a typo), rather than answer for it
    with an empty listing or "nothing to delete"."""
    if tenant_id is not None and await TenantRepository(engine).get(tenant_id) is None:
        raise UnknownRecord(f"tenant {tenant_id!r} does not exist")


def when(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%SZ")


def print_json(value: Any) -> None:
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2, default=str).decode() + "\n")


def print_table(columns: Sequence[str], rows: Sequence[Sequence[object]], null: str = "") -> None:
    """A plain aligned table; an empty listing prints just the header. A None cell shows as `null`, a
    text as `table_text` shows it; columns are as wide as their widest cell on a terminal."""
    cells = [[str(column).upper() for column in columns]] + [
        [null if v is None else table_text(v, null) if isinstance(v, str) else str(v) for v in row]
        for row in rows
    ]
    widths = [[display_width(value) for value in row] for row in cells]
    column_widths = [max(row[i] for row in widths) for i in range(len(columns))]
    for row, row_widths in zip(cells, widths, strict=True):
        padded = (
            value + " " * (column_width - width)
            for value, width, column_width in zip(row, row_widths, column_widths, strict=True)
        )
        sys.stdout.write("  ".join(padded).rstrip() + "\n")


def table_text(text: str, null: str = "") -> str:
    """`text` as a table shows it: as it is, unless that could mislead a reader or reach the terminal
    as a control sequence. Then it is in double quotes, with backslash escapes for the quote, the
    backslash and every character that is not printable (control characters such as ESC or a line
    break, format characters such as a bidirectional override, separators other than the space). So
    are a text starting with a quote, starting or ending with a space, and, where the table shows no
    value as `null`, a text equal to it or empty."""
    if (
        text.isprintable()
        and not text.startswith(('"', " "))
        and not text.endswith(" ")
        and not (null and text in (null, ""))
    ):
        return text
    return '"' + "".join(_ESCAPES.get(char) or _escaped(char) for char in text) + '"'


_ESCAPES = {"\\": "\\\\", '"': '\\"', "\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escaped(char: str) -> str:
    if char.isprintable():
        return char
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def display_width(text: str) -> int:
    """The columns `text` takes on a terminal: east-asian wide and full-width characters take two,
    combining marks none."""
    if text.isascii():
        return len(text)
    return sum(
        0
        if unicodedata.category(char) in ("Mn", "Me")
        else 2
        if unicodedata.east_asian_width(char) in "WF"
        else 1
        for char in text
    )
