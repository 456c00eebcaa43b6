"""A filter that no recorded value can equal is refused, never answered with a report of nothing.

An empty filter (`?tenant=`, `--tenant "$UNSET"`) would keep no call at all: the answer, every count
zero, would read as a tenant that made no calls. It is refused naming the parameter, as a filter
holding a NUL is.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.storage.usage import UsageFilter, UsageRepository
from tests.contract.test_usage import usage

FILTERS = ("tenant", "team", "user", "key", "model", "provider")


@pytest.fixture
async def admin(engine: AsyncEngine, admin: httpx.AsyncClient) -> httpx.AsyncClient:
    """The admin API's client (see conftest), over a ledger holding one record of an hour ago."""
    await UsageRepository(engine).insert_many([usage(datetime.now(UTC) - timedelta(hours=1))])
    return admin


@pytest.mark.parametrize("name", FILTERS)
async def test_an_empty_filter_is_a_400_naming_it_not_an_empty_report(
    admin: httpx.AsyncClient, name: str
) -> None:
    response = await admin.get(f"/admin/usage?since=1d&{name}=")

    assert response.status_code == 400
    assert response.json()["error"]["message"] == (
        f"the {name} filter is empty, which no recorded value is (leave it out to keep every {name})"
    )


@pytest.mark.parametrize("name", FILTERS)
def test_a_filter_that_is_not_utf_8_is_refused_naming_it(name: str) -> None:
    with pytest.raises(ValueError, match=f"^the {name} filter is not valid UTF-8"):
        UsageFilter(**{name: "acme\udcff"})
