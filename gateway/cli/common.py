"""What every command shares: settings, the database, output formats, and error reporting."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import unicodedata
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.settings import Settings, load_settings
from gateway.storage.engine import COMMAND_TIMEOUT, create_engine

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
    engine = create_engine(
        settings.database.url, settings.database.pool_size, statement_timeout=statement_timeout
    )
    try:
        yield engine
    finally:
        await engine.dispose()


def run(coroutine_function: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        return await coroutine_function()

    return asyncio.run(main())


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
