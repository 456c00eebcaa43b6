"""`tollgate serve` refuses to start on what would make it unsafe or broken, and says why."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from gateway.app import READINESS_TIMEOUT
from tests.support.gateway import GatewayHarness, _environment
from tests.support.postgres import postgres_admin_url, require_postgres, temporary_database
from tests.support.silence import PausableRelay

PROVIDERS = {"openai": {"type": "openai"}}


def serve_once(gateway: GatewayHarness) -> subprocess.CompletedProcess[str]:
    return gateway.cli("serve", check=False)


def test_a_wrong_master_key_stops_the_gateway_before_it_listens(tmp_path: Path) -> None:
    gateway = GatewayHarness(tmp_path, PROVIDERS)
    gateway.cli("db", "upgrade")
    gateway.cli("tenant", "create", "acme")
    gateway.cli(
        "credential", "set", "--tenant", "acme", "--provider", "openai", stdin="sk-under-the-first-key"
    )
    gateway.master_key_path.unlink()
    subprocess.run(
        [sys.executable, "-m", "gateway", "master-key", "generate", str(gateway.master_key_path)],
        check=True,
        capture_output=True,
    )

    result = serve_once(gateway)
    refused_store = gateway.cli(
        "credential", "set", "--tenant", "acme", "--provider", "openai", stdin="sk-other", check=False
    )

    assert result.returncode == 1
    assert "wrong master key" in result.stderr
    assert refused_store.returncode == 1 and "wrong master key" in refused_store.stderr


def test_a_missing_master_key_stops_the_gateway(tmp_path: Path) -> None:
    gateway = GatewayHarness(tmp_path, PROVIDERS)
    gateway.cli("db", "upgrade")
    gateway.master_key_path.unlink()

    result = serve_once(gateway)

    assert result.returncode == 1
    assert "cannot read master key file" in result.stderr


def test_an_unmigrated_database_stops_the_gateway_with_the_fix(tmp_path: Path) -> None:
    gateway = GatewayHarness(tmp_path, PROVIDERS)

    result = serve_once(gateway)

    assert result.returncode == 1
    assert "run `tollgate db upgrade`" in result.stderr


def test_a_schema_a_later_version_wrote_stops_the_gateway_naming_the_way_out(tmp_path: Path) -> None:
    gateway = GatewayHarness(tmp_path, PROVIDERS)
    gateway.cli("db", "upgrade")
    with sqlite3.connect(tmp_path / "tollgate.db") as connection:
        connection.execute("UPDATE alembic_version SET version_num = '9999'")

    result = serve_once(gateway)

    assert result.returncode == 1
    assert "at revision 9999" in result.stderr
    assert "a later Tollgate upgraded it: run that version or a newer one" in result.stderr
    assert "db upgrade" not in result.stderr


def test_an_invalid_configuration_names_the_file_and_every_key_path(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(
        "server:\n  port: eighty\nproviders:\n  x:\n    type: openai\n    colour: blue\n"
        "  y:\n    type: azure-openai\n"
    )

    check = subprocess.run(
        [sys.executable, "-m", "gateway", "config", "check", str(config)], capture_output=True, text=True
    )
    serve = subprocess.run(
        [sys.executable, "-m", "gateway", "--config", str(config), "serve"], capture_output=True, text=True
    )

    assert check.returncode == serve.returncode == 1
    for output in (check.stderr, serve.stderr):
        assert f"{config}: server.port: " in output
        assert f"{config}: providers.x.colour: unknown key" in output
        assert f"{config}: providers.y: base_url is required for type azure-openai" in output


def test_the_shipped_example_configuration_is_valid_and_the_schema_is_json() -> None:
    check = subprocess.run(
        [sys.executable, "-m", "gateway", "config", "check", "config/gateway.yaml"],
        capture_output=True,
        text=True,
    )
    schema = subprocess.run(
        [sys.executable, "-m", "gateway", "config", "schema"], capture_output=True, text=True
    )

    assert check.returncode == 0, check.stderr
    document = json.loads(schema.stdout)
    assert document["title"] == "Settings"
    assert "providers" in document["properties"]


def test_health_and_readiness_endpoints(tmp_path: Path) -> None:
    gateway = GatewayHarness(tmp_path, PROVIDERS)
    gateway.cli("db", "upgrade")
    gateway.start()
    try:
        health = httpx.get(gateway.url + "/healthz")
        ready = httpx.get(gateway.url + "/readyz")
    finally:
        gateway.stop()

    assert health.status_code == 200 and health.json() == {"status": "ok"}
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"config": "ok", "database": "ok"}}


@pytest.mark.postgres
def test_readiness_says_503_within_its_timeout_when_the_database_stops_answering(tmp_path: Path) -> None:
    admin = postgres_admin_url()
    require_postgres(admin)
    with temporary_database(admin, migrated=True) as url, PausableRelay(make_url(url).port or 5432) as relay:
        gateway = GatewayHarness(
            tmp_path,
            PROVIDERS,
            database_url=make_url(url).set(port=relay.port).render_as_string(hide_password=False),
        )
        gateway.start()
        try:
            relay.pause()  # connections stay open, nothing is answered
            started = time.monotonic()
            ready = httpx.get(gateway.url + "/readyz", timeout=30)
            elapsed = time.monotonic() - started
        finally:
            relay.resume()
            gateway.stop()

    assert ready.status_code == 503
    assert ready.json()["checks"]["database"] == "unavailable"
    assert elapsed < READINESS_TIMEOUT + 0.5  # a hung connection's cleanup waits on, after the answer


def test_serve_with_several_workers_exits_3_when_its_workers_cannot_start(tmp_path: Path) -> None:
    gateway = GatewayHarness(tmp_path, PROVIDERS, overrides={"server": {"workers": 2}})
    gateway.cli("db", "upgrade")
    with gateway.log_path.open("wb") as log:
        serve = subprocess.Popen(
            [sys.executable, "-m", "gateway", "--config", str(gateway.config_path), "serve"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=_environment(),
        )
    try:
        deadline = time.monotonic() + 30
        while "Started parent process" not in gateway.logs() and time.monotonic() < deadline:
            time.sleep(0.01)  # the checks before serving have passed; the workers are starting
        for file in tmp_path.glob("tollgate.db*"):  # an unmigrated database in its place
            file.rename(tmp_path / ("moved-" + file.name))
        status = serve.wait(timeout=60)
    finally:
        serve.kill()

    assert status == 3  # as with one worker
    assert "run `tollgate db upgrade`" in gateway.logs()


@pytest.mark.parametrize("workers", [1, 2])
def test_a_key_file_others_can_read_is_warned_about_once_per_start(tmp_path: Path, workers: int) -> None:
    gateway = GatewayHarness(tmp_path, PROVIDERS, overrides={"server": {"workers": workers}})
    gateway.master_key_path.chmod(0o644)
    gateway.cli("db", "upgrade")

    gateway.start()
    gateway.stop()

    warnings = [record for record in gateway.log_records() if record.get("logger") == "tollgate.master_key"]
    assert [record["mode"] for record in warnings] == ["0644"]
