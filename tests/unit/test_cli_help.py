"""Every command's `--help` says what it does and shows how to call it."""

from __future__ import annotations

import argparse

import pytest

from gateway.cli.main import build_parser


def commands() -> list[tuple[str, argparse.ArgumentParser, argparse.ArgumentParser]]:
    """Each command that runs (a leaf), with the group it belongs to (itself for `serve`, `usage`)."""
    found = []
    for group_name, group in _subparsers(build_parser()).items():
        actions = _subparsers(group)
        if not actions:
            found.append((group_name, group, group))
        for action_name, action in actions.items():
            found.append((f"{group_name} {action_name}", action, group))
    return found


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


@pytest.mark.parametrize(("name", "command", "group"), commands(), ids=[name for name, _, _ in commands()])
def test_every_command_describes_itself_and_gives_an_example(
    name: str, command: argparse.ArgumentParser, group: argparse.ArgumentParser
) -> None:
    assert command.description, name
    assert "example" in command.format_help() or "example" in group.format_help(), name
    assert f"tollgate {name.split()[0]}" in command.format_help() + group.format_help()


@pytest.mark.parametrize(("name", "command", "group"), commands(), ids=[name for name, _, _ in commands()])
def test_every_argument_is_explained(
    name: str, command: argparse.ArgumentParser, group: argparse.ArgumentParser
) -> None:
    unexplained = [
        action.dest
        for action in command._actions
        if not action.help and not isinstance(action, argparse._SubParsersAction)
    ]

    assert unexplained == [], name
