"""What the administrative commands' help promises an operator about timing and input."""

from __future__ import annotations

import argparse

from gateway.cli.main import build_parser


def help_of(*command: str) -> str:
    parser = build_parser()
    for name in command:
        parser = next(
            action.choices[name]
            for action in parser._actions
            if isinstance(action, argparse._SubParsersAction)
        )
    return " ".join(parser.format_help().split())  # as one line, whatever the terminal's width


def test_credential_delete_says_running_gateways_keep_the_credential_for_their_cache_ttl() -> None:
    assert "Running gateways keep using it for up to credentials.cache_ttl_seconds" in help_of(
        "credential", "delete"
    )


def test_credential_set_says_surrounding_whitespace_is_stripped() -> None:
    assert "Surrounding whitespace (a trailing newline, say) is stripped" in help_of("credential", "set")


def test_key_create_says_an_expiry_without_a_zone_is_utc() -> None:
    assert "a time without a zone is taken as UTC" in help_of("key", "create")


def test_key_revoke_says_it_takes_the_key_itself() -> None:
    assert "or the key itself (tg-...)" in help_of("key", "revoke")
