"""The administrative commands (`tenant`, `key`, `credential`), run for real in a subprocess: what an operator
sees when something is wrong. A mistake is one line on stderr and exit status 1, and it does not send the
operator looking for a database outage."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.gateway import GatewayHarness

OUTAGE_HINT = "is the database reachable"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> GatewayHarness:
    harness = GatewayHarness(Path(tmp_path_factory.mktemp("admin-cli")), {"openai": {"type": "openai"}})
    harness.cli("db", "upgrade")
    harness.cli("tenant", "create", "acme")
    return harness


def refused(result: subprocess.CompletedProcess[str]) -> str:
    """The one line a refused command printed, after checking that it was refused in one line."""
    assert result.returncode == 1, result
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("tollgate: "), result.stderr
    return result.stderr.removeprefix("tollgate: ").rstrip("\n")


@pytest.mark.parametrize(
    ("command", "stdin", "message"),
    [
        (("tenant", "create", "acme"), None, "tenant 'acme' exists already"),
        (
            ("key", "revoke", "key_0123456789abcdef0123"),
            None,
            "key 'key_0123456789abcdef0123' does not exist",
        ),
        (("key", "create", "--tenant", "nosuch"), None, "tenant 'nosuch' does not exist"),
        (("key", "list", "--tenant", "nosuch"), None, "tenant 'nosuch' does not exist"),
        (("credential", "list", "--tenant", "nosuch"), None, "tenant 'nosuch' does not exist"),
        (
            ("credential", "delete", "--tenant", "nosuch", "--provider", "openai"),
            None,
            "tenant 'nosuch' does not exist",
        ),
        (
            ("credential", "set", "--tenant", "nosuch", "--provider", "openai"),
            "sk-test-0001",
            "tenant 'nosuch' does not exist",
        ),
    ],
    ids=[
        "duplicate-tenant",
        "unknown-key",
        "key-for-unknown-tenant",
        "keys-of-unknown-tenant",
        "credentials-of-unknown-tenant",
        "credential-delete-of-unknown-tenant",
        "credential-for-unknown-tenant",
    ],
)
def test_an_unknown_or_duplicate_record_is_named_in_one_line_without_suggesting_an_outage(
    gateway: GatewayHarness, command: tuple[str, ...], stdin: str | None, message: str
) -> None:
    result = gateway.cli(*command, stdin=stdin, check=False)

    assert refused(result) == message
    assert OUTAGE_HINT not in result.stderr


def test_a_database_without_its_tables_is_still_reported_as_a_database_problem(tmp_path: Path) -> None:
    harness = GatewayHarness(tmp_path, {"openai": {"type": "openai"}})  # never upgraded: no tables

    assert OUTAGE_HINT in refused(harness.cli("tenant", "create", "acme", check=False))


def test_an_expiry_that_cannot_be_stored_is_refused_naming_the_option(gateway: GatewayHarness) -> None:
    result = gateway.cli(
        "key", "create", "--tenant", "acme", "--expires-at", "9999-12-31T23:59:59-01:00", check=False
    )

    assert refused(result).startswith("--expires-at 9999-12-31T23:59:59-01:00 is past 9999-12-31T23:59:59Z")


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (
            ("key", "create", "--tenant", "acme", "--label", "x" * 201),
            "a key's label is at most 200 characters, got 201",
        ),
        (
            ("tenant", "create", "globex", "--name", "x" * 201),
            "a tenant's name is at most 200 characters, got 201",
        ),
    ],
    ids=["label", "tenant-name"],
)
def test_a_text_longer_than_its_column_is_refused_in_one_line(
    gateway: GatewayHarness, command: tuple[str, ...], message: str
) -> None:
    assert refused(gateway.cli(*command, check=False)) == message


def test_key_revoke_given_the_key_itself_revokes_it_and_never_prints_it(gateway: GatewayHarness) -> None:
    key = gateway.create_key("acme", "--label", "leaked")

    result = gateway.cli("key", "revoke", key)

    assert result.stdout.startswith(f"revoked {gateway.key_id(key)} (tenant acme)")
    assert key not in result.stdout + result.stderr
    listed = json.loads(gateway.cli("key", "list", "--json").stdout)
    assert [k["revoked_at"] is not None for k in listed if k["id"] == gateway.key_id(key)] == [True]


def test_key_revoke_given_an_unknown_key_refuses_without_printing_it(gateway: GatewayHarness) -> None:
    unknown = "tg-" + "A" * 43

    result = gateway.cli("key", "revoke", unknown, check=False)

    assert refused(result) == "no key matches the Tollgate key given (not repeated here)"
    assert "A" * 43 not in result.stderr


def test_a_master_key_file_others_can_read_is_named_on_stderr_with_its_mode_and_still_used(
    tmp_path: Path,
) -> None:
    harness = GatewayHarness(tmp_path, {"openai": {"type": "openai"}})
    harness.cli("db", "upgrade")
    harness.cli("tenant", "create", "acme")
    harness.master_key_path.chmod(0o644)

    result = harness.cli(
        "credential", "set", "--tenant", "acme", "--provider", "openai", stdin="sk-test-0001"
    )

    assert result.stderr == (
        f"master key file {harness.master_key_path} has mode 0644: users other than its owner can read "
        f"or change it (chmod 600 {harness.master_key_path})\n"
    )
    assert result.stdout.startswith("stored openai credential")


def test_credential_delete_says_how_long_running_gateways_may_still_use_it(gateway: GatewayHarness) -> None:
    gateway.cli("credential", "set", "--tenant", "acme", "--provider", "openai", stdin="sk-test-0001")

    result = gateway.cli("credential", "delete", "--tenant", "acme", "--provider", "openai")

    assert (
        result.stdout
        == "deleted the openai credential of acme; running gateways may use it for up to 30s more\n"
    )


@pytest.mark.parametrize(
    ("owner", "provider", "message"),
    [
        (("--tenant", "acme"), "nosuch", "provider 'nosuch' is not configured (configured: openai)"),
        (("--tenant", "nosuch"), "openai", "tenant 'nosuch' does not exist"),
    ],
    ids=["unknown-provider", "unknown-tenant"],
)
def test_credential_set_refuses_an_unknown_owner_or_provider_before_asking_for_the_secret(
    gateway: GatewayHarness, owner: tuple[str, ...], provider: str, message: str
) -> None:
    """The secret is not asked for (here: its variable is not even set) when it could not be stored."""
    result = gateway.cli(
        "credential", "set", *owner, "--provider", provider, "--from-env", "TOLLGATE_TEST_UNSET", check=False
    )

    assert refused(result) == message


def test_master_key_generate_into_a_folder_says_it_is_one(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "master-key", "generate", str(tmp_path)],
        capture_output=True,
        text=True,
    )

    assert refused(result) == f"{tmp_path} is a directory; name the file to write, e.g. {tmp_path}/master.key"


def test_master_key_generate_under_a_file_says_why_it_cannot_write(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "plain-file"
    not_a_folder.write_text("x")
    target = not_a_folder / "master.key"

    result = subprocess.run(
        [sys.executable, "-m", "gateway", "master-key", "generate", str(target)],
        capture_output=True,
        text=True,
    )

    assert refused(result) == f"cannot write the master key to {target}: {not_a_folder} is not a directory"
