"""Running the real gateway for integration tests: the `tollgate` CLI for set-up, `tollgate serve` in a
subprocess on a free port, its JSON log captured to a file.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import yaml

STARTUP_TIMEOUT = 30.0
PORT_ATTEMPTS = 3  # starts on a port found free and taken before the server could bind it

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_master_key(path: Path) -> None:
    """Run the real `tollgate master-key generate`."""
    subprocess.run(
        [sys.executable, "-m", "gateway", "master-key", "generate", str(path)],
        check=True,
        capture_output=True,
    )


class _PortTaken(AssertionError):
    """The server could not bind its port: another process took it after `free_port()` found it free."""


@dataclass
class GatewayHarness:
    """A gateway's files (config, SQLite database, master key) in `directory`, and its server process."""

    directory: Path
    providers: dict[str, dict[str, Any]]
    overrides: dict[str, Any] = field(default_factory=dict)
    database_url: str | None = None
    environment: dict[str, str] = field(default_factory=dict)  # for the server, on top of ours
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.config_path = self.directory / "gateway.yaml"
        self.log_path = self.directory / "gateway.log"
        self.master_key_path = self.directory / "master.key"
        if not self.master_key_path.exists():
            write_master_key(self.master_key_path)
        self.write_config()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.directory / 'tollgate.db'}"

    def write_config(self) -> None:
        config: dict[str, Any] = {
            "server": {"host": "127.0.0.1", "port": self.port},
            "database": {"url": self.effective_database_url},
            "master_key": {"env": "TOLLGATE_TEST_UNUSED_MASTER_KEY", "file": str(self.master_key_path)},
            "providers": self.providers,
        }
        for section, values in self.overrides.items():
            config[section] = {**config.get(section, {}), **values}
        self.config_path.write_text(yaml.safe_dump(config))

    def cli(
        self, *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run `tollgate --config <ours> ARGS...` and return its result."""
        command = [sys.executable, "-m", "gateway", "--config", str(self.config_path), *args]
        result = subprocess.run(
            command, input=stdin, capture_output=True, text=True, env=_environment(), timeout=60
        )
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed ({result.returncode}): {result.stderr}")
        return result

    def create_key(self, tenant: str, *extra: str) -> str:
        created = json.loads(self.cli("key", "create", "--tenant", tenant, "--json", *extra).stdout)
        key: str = created["key"]
        return key

    def key_id(self, key: str) -> str:
        for record in json.loads(self.cli("key", "list", "--json").stdout):
            if key.startswith(record["prefix"]):
                return str(record["id"])
        raise AssertionError("key not listed")

    def start(self) -> None:
        """Start the server and wait until it is ready. The port `free_port()` found free may be taken
        by another process (a connection's own port, another test run's server) before the server binds
        it: then the server is started again on another port, its failed start's log lines dropped."""
        for _ in range(PORT_ATTEMPTS - 1):
            logged = self.log_path.stat().st_size if self.log_path.exists() else 0
            try:
                self._start()
                return
            except _PortTaken:
                with self.log_path.open("r+b") as log:
                    log.truncate(logged)
                self.port = free_port()
                self.write_config()
        self._start()

    def _start(self) -> None:
        logged = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gateway", "--config", str(self.config_path), "serve"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**_environment(), **self.environment},
        )
        log.close()
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                if b"address already in use" in self.log_path.read_bytes()[logged:].lower():
                    raise _PortTaken(f"gateway could not bind port {self.port}:\n{self.logs()}")
                raise AssertionError(f"gateway exited with {self.process.returncode}:\n{self.logs()}")
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise AssertionError(f"gateway not ready within {STARTUP_TIMEOUT}s:\n{self.logs()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def logs(self) -> str:
        return self.log_path.read_bytes().decode(errors="replace") if self.log_path.exists() else ""

    def log_records(self) -> list[dict[str, Any]]:
        """The JSON lines of the log written so far: a last line without its newline is still being
        written (the server runs on), and is left for the next read."""
        records = []
        for line in self.logs().split("\n")[:-1]:
            if line.startswith("{"):
                records.append(json.loads(line))
        return records

    def access_records(self) -> list[dict[str, Any]]:
        return [record for record in self.log_records() if record.get("logger") == "tollgate.access"]


def _environment() -> dict[str, str]:
    environment = dict(os.environ)
    environment.pop("TOLLGATE_MASTER_KEY", None)
    environment.pop("TOLLGATE_CONFIG", None)
    environment["PYTHONUNBUFFERED"] = "1"
    return environment


def usage_rows(database_url: str, request_id_prefix: str) -> list[dict[str, Any]]:
    """The ledger records whose request id starts with the prefix, oldest first."""
    from sqlalchemy import select

    from gateway.storage.engine import create_engine
    from gateway.storage.models import usage_records
    from tests.support.postgres import run_blocking

    async def read() -> list[dict[str, Any]]:
        engine = create_engine(database_url)
        try:
            async with engine.connect() as connection:
                query = (
                    select(usage_records)
                    .where(usage_records.c.request_id.startswith(request_id_prefix))
                    .order_by(usage_records.c.id)
                )
                return [dict(row._mapping) for row in await connection.execute(query)]
        finally:
            await engine.dispose()

    return run_blocking(read)


def wait_for_usage_rows(
    database_url: str, request_id_prefix: str, count: int, timeout: float = 15.0
) -> list[dict[str, Any]]:
    """Poll the ledger until `count` records with the prefix are there (the writer is asynchronous)."""
    deadline = time.monotonic() + timeout
    rows = usage_rows(database_url, request_id_prefix)
    while len(rows) < count and time.monotonic() < deadline:
        time.sleep(0.1)
        rows = usage_rows(database_url, request_id_prefix)
    return rows


def wait_until(check: Callable[[], T], timeout: float = 30.0) -> T:
    """Call `check` until its answer is truthy, and return that answer; once `timeout` seconds have passed,
    return its last answer, whatever it is, for the caller's assertions to judge. For what a process does
    in its own time (publish a file, write a log line): a fixed pause would be too short on a busy machine.
    """
    deadline = time.monotonic() + timeout
    answer = check()
    while not answer and time.monotonic() < deadline:
        time.sleep(0.05)
        answer = check()
    return answer
