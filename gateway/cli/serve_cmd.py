"""`tollgate serve`: check everything that can be checked, then run the gateway under uvicorn."""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import tempfile
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from gateway.app import Gateway, check_schema, create_app
from gateway.cli.common import config_path, database, run, settings_of
from gateway.cli.help import HelpWithExamples
from gateway.credentials.crypto import MODE_CHECKED_ENV, load_master_key
from gateway.credentials.store import verify_master_key
from gateway.http.protocol import BoundedHttpToolsProtocol, configure
from gateway.metering.prices import load_price_table
from gateway.observability.logging import configure_logging
from gateway.observability.workers import METRICS_DIR_ENV
from gateway.settings import Settings, load_settings
from gateway.storage.repositories import KeyringRepository

CONFIG_ENV = "TOLLGATE_CONFIG"


def register(commands: Any) -> None:
    serve = commands.add_parser(
        "serve",
        help="run the gateway",
        description="Run the gateway until stopped (Ctrl-C or SIGTERM, which lets in-flight requests finish "
        "and the usage ledger drain). Before listening it checks the configuration, the price file, the "
        "database schema (run `tollgate db upgrade` first) and the master key against the database's "
        "canary; any failure stops it with a message. Exit status 1 when a check fails, 3 when the "
        "server, or one of its workers, cannot start (a port in use, say). scripts/serve does the first "
        "run's set-up (a master key, the migrations) and then runs this.",
        epilog="examples:\n"
        "  tollgate serve\n"
        "  tollgate --config /etc/tollgate/gateway.yaml serve --host 0.0.0.0 --port 8080 --workers 4",
        formatter_class=HelpWithExamples,
    )
    serve.add_argument("--host", help="interface to bind (default: server.host)")
    serve.add_argument(
        "--port", type=_bounded(0, 65535), help="port to bind, 0 for any free one (default: server.port)"
    )
    serve.add_argument(
        "--workers", type=_bounded(1, 64), help="worker processes, 1..64 (default: server.workers)"
    )
    serve.set_defaults(handler=_serve)


async def preflight(settings: Settings) -> None:
    """Fail fast, with a clear message, on what would stop the gateway at start-up."""
    load_price_table(settings.metering.prices_file)
    master = load_master_key(settings.master_key.env, settings.master_key.file)
    async with database(settings) as engine:
        await check_schema(engine)
        await verify_master_key(KeyringRepository(engine), master)


def application() -> Gateway:
    """uvicorn's factory: each worker process builds the app from the same configuration file."""
    settings = load_settings(os.environ.get(CONFIG_ENV) or None)
    configure_logging(settings.logging.level)
    configure(settings.server.max_header_bytes, settings.server.header_timeout_seconds)
    return create_app(settings)


def _serve(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    configure_logging(settings.logging.level)
    run(lambda: preflight(settings))
    _checked_master_key_file(settings)
    path = config_path(args)
    if path is not None:
        os.environ[CONFIG_ENV] = str(path.resolve())
    else:
        os.environ.pop(CONFIG_ENV, None)
    workers = args.workers or settings.server.workers
    shared = _metrics_directory() if workers > 1 and settings.metrics.enabled else None
    if shared is None:
        os.environ.pop(METRICS_DIR_ENV, None)
    config = uvicorn.Config(
        "gateway.cli.serve_cmd:application",
        factory=True,
        host=args.host or settings.server.host,
        port=args.port if args.port is not None else settings.server.port,
        workers=workers,
        http=BoundedHttpToolsProtocol,
        timeout_keep_alive=settings.server.keep_alive_seconds,
        log_config=None,
        access_log=False,
        server_header=False,
        date_header=False,
        lifespan="on",
    )
    try:
        return _run(config)
    finally:
        if shared is not None:
            shutil.rmtree(shared, ignore_errors=True)


def _run(config: uvicorn.Config) -> int:
    """Serve until stopped, as `uvicorn.run` does; the exit status is STARTUP_FAILURE (3) when the
    server, or any of several workers, failed to start. (`uvicorn.run` exits so for one server, but
    with several workers it returns normally when its supervisor stops because a worker could not
    start: the workers' own exit statuses tell.)"""
    if config.workers == 1:
        server = uvicorn.Server(config)
        with contextlib.suppress(KeyboardInterrupt):  # a Ctrl-C, raised again once the server stopped
            server.run()
        return 0 if server.started else STARTUP_FAILURE
    supervisor = Multiprocess(config, sockets=[config.bind_socket()])
    supervisor.run()
    failed = any(process.exitcode == STARTUP_FAILURE for process in supervisor.processes)
    return STARTUP_FAILURE if failed else 0


def _checked_master_key_file(settings: Settings) -> None:
    """Tell the workers that the preflight has checked the master key file's mode, so that a file others
    can read is warned about once per start, not again by each worker."""
    file = settings.master_key.file
    if file is None:
        os.environ.pop(MODE_CHECKED_ENV, None)
    else:
        os.environ[MODE_CHECKED_ENV] = str(file.absolute())


def _metrics_directory() -> str:
    """A fresh directory for this start's workers to share their metrics in (`observability.workers`),
    named to them in the environment they inherit."""
    directory = tempfile.mkdtemp(prefix="tollgate-metrics-")
    os.environ[METRICS_DIR_ENV] = directory
    return directory


def _bounded(low: int, high: int) -> Any:
    """An argparse type: a whole number from `low` to `high`."""

    def number(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be {low}..{high}")
        return value

    return number
