"""gateway.credentials.secret: a secret is readable only through `reveal()`."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from gateway.credentials.secret import Secret
from gateway.credentials.store import ResolvedCredential

VALUE = "sk-live-do-not-print"


def test_reveal_is_the_one_way_to_read_the_value() -> None:
    assert Secret(VALUE).reveal() == VALUE


@pytest.mark.parametrize(
    "render",
    [repr, str, lambda s: f"{s}", lambda s: f"{s!r}", lambda s: f"{s!s:>40}", lambda s: "%s %r" % (s, s)],  # noqa: UP031
    ids=["repr", "str", "f-string", "f-string-repr", "f-string-format-spec", "percent"],
)
def test_the_value_never_shows_when_a_secret_is_rendered(render: Callable[[Secret], str]) -> None:
    text = render(Secret(VALUE))

    assert VALUE not in text
    assert "****" in text


def test_the_value_never_shows_in_a_resolved_credentials_repr() -> None:
    credential = ResolvedCredential("cred_1", "api_key", Secret(VALUE), shared=False)

    assert VALUE not in repr(credential)
    assert VALUE not in str([credential])


def test_the_value_never_shows_in_a_log_line(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        logging.getLogger("test").info("injecting %s", Secret(VALUE))

    assert VALUE not in caplog.text


def test_a_secret_has_no_attribute_dict_to_dump() -> None:
    with pytest.raises(TypeError):
        vars(Secret(VALUE))


def test_secrets_compare_by_value() -> None:
    assert Secret(VALUE) == Secret(VALUE)
    assert Secret(VALUE) != Secret("other")
    assert Secret(VALUE) != VALUE
    assert len({Secret(VALUE), Secret(VALUE)}) == 1
