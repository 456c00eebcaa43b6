"""`tollgate usage` pages one report at one ledger position (`--snapshot`), whatever is written meanwhile.

Records of calls received inside a window keep arriving after its end has passed (a long stream is
recorded when it ends, an OpenAI background response when it is done): the next page's note names
the position the first page read up to, and that page reads up to the same one.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.storage.engine import create_engine
from gateway.storage.records import UsageRecord
from gateway.storage.usage import UsageRepository
from tests.contract.test_usage import usage
from tests.support.gateway import GatewayHarness


def write(gateway: GatewayHarness, records: list[UsageRecord]) -> None:
    async def insert() -> None:
        engine = create_engine(f"sqlite:///{gateway.directory / 'tollgate.db'}")
        try:
            await UsageRepository(engine).insert_many(records)
        finally:
            await engine.dispose()

    asyncio.run(insert())


@pytest.fixture
def gateway(tmp_path: Path) -> GatewayHarness:
    gateway = GatewayHarness(tmp_path, providers={})
    gateway.cli("db", "upgrade")
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    write(gateway, [usage(an_hour_ago, model=model, request_id=model) for model in ("b", "c", "d")])
    return gateway


def test_the_note_of_a_next_page_names_the_snapshot_and_that_page_reads_up_to_it(
    gateway: GatewayHarness,
) -> None:
    first = gateway.cli("usage", "--by", "model", "--since", "1d", "--limit", "2", "--format", "csv")
    late = datetime.now(UTC) - timedelta(minutes=30)  # received inside the window, written only now
    write(gateway, [usage(late, model="a", request_id="late")])

    note = re.fullmatch(r"tollgate: more groups follow; (.*) shows the next ones\n", first.stderr)
    assert note is not None
    arguments = note.group(1).split()
    assert arguments[0::2] == ["--since", "--until", "--snapshot", "--offset"]
    second = gateway.cli("usage", "--by", "model", *arguments, "--limit", "2", "--format", "csv")
    assert [row[0] for row in csv.reader(io.StringIO(first.stdout))][1:] == ["b", "c"]
    assert [row[0] for row in csv.reader(io.StringIO(second.stdout))][1:] == ["d"]


def test_json_states_the_snapshot_it_read_at(gateway: GatewayHarness) -> None:
    report = json.loads(gateway.cli("usage", "--by", "model", "--format", "json").stdout)
    write(gateway, [usage(datetime.now(UTC) - timedelta(minutes=30), model="a", request_id="late")])
    again = json.loads(
        gateway.cli(
            "usage", "--by", "model", "--snapshot", str(report["snapshot"]), "--format", "json"
        ).stdout
    )

    assert isinstance(report["snapshot"], int)
    assert [row["model"] for row in again["rows"]] == ["b", "c", "d"]
    assert again["snapshot"] == report["snapshot"]


def test_a_snapshot_that_is_not_a_whole_number_is_a_usage_error(gateway: GatewayHarness) -> None:
    result = gateway.cli("usage", "--snapshot", "-1", check=False)

    assert result.returncode == 2
    assert "argument --snapshot: must be 0..9223372036854775807" in result.stderr
