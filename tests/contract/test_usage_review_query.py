"""GET /admin/usage: an instant whose zone was written with a bare `+` is refused saying why.

In a query string `+` stands for a space, so `since=2026-11-01T10:00:00+01:00` arrives as
`2026-11-01T10:00:00 01:00`, which is no instant: the 400 says to write the `+` as %2B, rather than
only that the caller's (valid) instant is not one.
"""

from __future__ import annotations

import httpx
import pytest


@pytest.mark.parametrize("name", ["since", "until"])
async def test_a_zone_written_with_a_bare_plus_is_a_400_that_says_to_write_it_as_percent_2b(
    admin: httpx.AsyncClient, name: str
) -> None:
    other = "until=2026-11-02" if name == "since" else "since=2026-10-31"
    response = await admin.get(f"/admin/usage?{name}=2026-11-01T10:00:00+01:00&{other}")

    assert response.status_code == 400
    assert response.json()["error"]["message"] == (
        f"{name}: '2026-11-01T10:00:00 01:00' is not a span (7d, 24h, 30m, 2w), a date or an ISO 8601"
        " instant (in a query string a + stands for a space: write it %2B)"
    )


async def test_the_same_zone_written_as_percent_2b_is_read(admin: httpx.AsyncClient) -> None:
    response = await admin.get("/admin/usage?since=2026-11-01T10:00:00%2B01:00&until=2026-11-02")

    assert response.status_code == 200
    assert response.json()["since"] == "2026-11-01T09:00:00+00:00"
