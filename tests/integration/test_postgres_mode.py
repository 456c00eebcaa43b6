"""The scale-out mode: the same gateway on PostgreSQL, two replicas sharing one database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from scripts.fake_upstream import FakeUpstream
from tests.support.gateway import GatewayHarness
from tests.support.postgres import postgres_admin_url, require_postgres, temporary_database

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    admin = postgres_admin_url()
    require_postgres(admin)
    with temporary_database(admin, migrated=False) as url:
        yield url


def test_two_replicas_on_one_postgres_database_serve_keys_and_credentials_set_through_either(
    database_url: str, upstream: FakeUpstream, tmp_path: Path
) -> None:
    providers = {"openai": {"type": "openai", "base_url": upstream.url + "/v1"}}
    first = GatewayHarness(tmp_path / "a", providers, database_url=database_url)
    second = GatewayHarness(tmp_path / "b", providers, database_url=database_url)
    second.master_key_path.write_bytes(first.master_key_path.read_bytes())
    first.cli("db", "upgrade")
    first.cli("tenant", "create", "acme")
    second.cli("credential", "set", "--tenant", "acme", "--provider", "openai", stdin="sk-pg-shared-db")
    key = first.create_key("acme")
    upstream.clear()

    answers = []
    try:
        first.start()
        second.start()
        for gateway in (first, second):
            with openai.OpenAI(base_url=f"{gateway.url}/openai/v1", api_key=key, max_retries=0) as api:
                answers.append(
                    api.chat.completions.create(
                        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
                    )
                )
    finally:
        first.stop()
        second.stop()

    assert [answer.choices[0].message.content for answer in answers] == ["Hello from the"] * 2
    assert [r.header("authorization") for r in upstream.requests] == ["Bearer sk-pg-shared-db"] * 2
