"""What every command shares: settings, the database, output formats, and error reporting."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.settings import Settings, load_settings
from gateway.storage.engine import create_engine

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
async def database(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings.database.url, settings.database.pool_size)
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


def print_table(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """A plain aligned table; an empty listing prints just the header."""
    cells = [[str(column).upper() for column in columns]] + [
        ["" if v is None else str(v) for v in row] for row in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    for row in cells:
        sys.stdout.write(
            "  ".join(value.ljust(width) for value, width in zip(row, widths, strict=True)).rstrip() + "\n"
        )
