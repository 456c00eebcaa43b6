"""`tollgate usage` refuses a filter no recorded value can equal, as a usage error naming the option.

An empty one (`--tenant "$TENANT"` with the variable unset) would print a report of nothing, which
reads as a tenant without calls; one holding bytes that are not UTF-8 (as a shell passes them) would
reach the database driver, which cannot encode it.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.storage.engine import create_engine
from gateway.storage.usage import UsageRepository
from tests.contract.test_usage import usage
from tests.support.gateway import GatewayHarness


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> GatewayHarness:
    gateway = GatewayHarness(Path(tmp_path_factory.mktemp("usage-filters")), providers={})
    gateway.cli("db", "upgrade")

    async def fill() -> None:
        engine = create_engine(f"sqlite:///{gateway.directory / 'tollgate.db'}")
        try:
            await UsageRepository(engine).insert_many([usage(datetime.now(UTC) - timedelta(hours=1))])
        finally:
            await engine.dispose()

    asyncio.run(fill())
    return gateway


@pytest.mark.parametrize("option", ["--tenant", "--team", "--user", "--key", "--model", "--provider"])
def test_an_empty_filter_is_a_usage_error(gateway: GatewayHarness, option: str) -> None:
    result = gateway.cli("usage", option, "", check=False)

    name = option.removeprefix("--")
    assert result.returncode == 2
    assert f"argument {option}: the {name} filter is empty, which no recorded value is" in result.stderr
    assert result.stdout == ""


def test_a_filter_whose_bytes_are_not_utf_8_is_a_usage_error_not_a_driver_error(
    gateway: GatewayHarness,
) -> None:
    result = gateway.cli("usage", "--team", "ml\udcff", check=False)  # the byte 0xff, as argv carries it

    assert result.returncode == 2
    assert "argument --team: the team filter is not valid UTF-8" in result.stderr
    assert "codec" not in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""


def test_a_filter_that_names_a_value_still_selects_its_calls(gateway: GatewayHarness) -> None:
    result = gateway.cli("usage", "--tenant", "acme", "--format", "csv")

    assert result.stdout.splitlines()[1].startswith("acme,1,")
