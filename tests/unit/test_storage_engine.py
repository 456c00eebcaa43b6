"""Opening the database: which URLs name a backend, and what an operator is told when one does not."""

from __future__ import annotations

import pytest

from gateway.storage.engine import DatabaseURLError, async_url, redacted


@pytest.mark.parametrize(
    ("url", "driver"),
    [
        ("sqlite:///data/tollgate.db", "sqlite+aiosqlite"),
        ("postgresql://tollgate@db:5432/tollgate", "postgresql+asyncpg"),
        ("postgres://tollgate@db/tollgate", "postgresql+asyncpg"),
    ],
)
def test_a_scheme_picks_its_async_driver(url: str, driver: str) -> None:
    assert async_url(url).drivername == driver


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://root@db/tollgate", "database.url scheme 'mysql' is not supported"),
        ("not a url", "database.url is not a valid URL"),
        ("postgresql://tollgate:s3cret@db:fivefourthreetwo/tollgate", "database.url is not a valid URL"),
    ],
)
def test_a_url_naming_no_backend_is_refused_by_its_key_without_its_password(url: str, message: str) -> None:
    with pytest.raises(DatabaseURLError, match=message) as error:
        async_url(url)

    assert "s3cret" not in str(error.value)


def test_messages_show_a_url_with_its_password_hidden() -> None:
    assert (
        redacted("postgresql://tollgate:s3cret@db:5432/tollgate")
        == "postgresql://tollgate:***@db:5432/tollgate"
    )
    assert redacted("postgresql://tollgate:s3cret@db:port/tollgate") == "<invalid database url>"
