"""What every `tollgate` command shares, run for real in a subprocess: where the global `--config` goes,
output cut short by its reader, a database out of reach, and the help that says how to read each
command's answer."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from gateway.storage.migrate import MIGRATIONS, head_revision
from tests.support.gateway import GatewayHarness, _environment

OUTAGE_HINT = "(is the database reachable, and up to date? `tollgate db upgrade`)"
SIGPIPE_STATUS = 141  # 128 + SIGPIPE: how a shell reports `yes | head`'s writer


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> GatewayHarness:
    harness = GatewayHarness(Path(tmp_path_factory.mktemp("cli-main")), {"openai": {"type": "openai"}})
    harness.cli("db", "upgrade")
    harness.cli("tenant", "create", "acme")
    return harness


def tollgate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        capture_output=True,
        text=True,
        env=_environment(),
        timeout=60,
    )


def test_config_given_after_the_command_is_refused_saying_where_it_goes(gateway: GatewayHarness) -> None:
    result = tollgate("tenant", "list", "--config", str(gateway.config_path))

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines()[-1] == (
        "tollgate: error: --config goes before the command: tollgate --config FILE tenant list ..."
    )


def test_an_argument_no_command_knows_is_still_named(gateway: GatewayHarness) -> None:
    result = tollgate("tenant", "list", "--colour", "blue")

    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == "tollgate: error: unrecognized arguments: --colour blue"


@pytest.mark.parametrize(
    "command", [("config", "schema"), ("tenant", "list"), ("usage",)], ids=["schema", "listing", "report"]
)
def test_output_whose_reader_has_gone_ends_quietly_as_a_pipe_ends_it(
    gateway: GatewayHarness, command: tuple[str, ...]
) -> None:
    """`tollgate ... | head -1`: the reader closes the pipe before the command has written everything."""
    with subprocess.Popen(
        [sys.executable, "-m", "gateway", "--config", str(gateway.config_path), *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_environment(),
    ) as process:
        assert process.stdout is not None and process.stderr is not None
        process.stdout.close()  # no reader is left: every write the command makes fails with EPIPE
        stderr = process.stderr.read().decode()
        process.wait(timeout=60)

    assert stderr == ""
    assert process.returncode == SIGPIPE_STATUS


def test_a_database_out_of_reach_is_named_with_the_drivers_reason(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-folder" / "tollgate.db"
    harness = GatewayHarness(tmp_path, {}, database_url=f"sqlite:///{missing}")

    result = harness.cli("tenant", "list", check=False)

    assert result.returncode == 1
    assert result.stderr == f"tollgate: sqlite:///{missing}: unable to open database file {OUTAGE_HINT}\n"


def test_a_database_password_is_never_printed_with_the_reason(tmp_path: Path) -> None:
    harness = GatewayHarness(
        tmp_path, {}, database_url="postgresql://tollgate:hunter2-secret@127.0.0.1:1/tollgate"
    )

    result = harness.cli("tenant", "list", check=False)

    assert result.returncode == 1
    assert result.stderr.startswith("tollgate: postgresql://tollgate:***@127.0.0.1:1/tollgate: ")
    assert result.stderr.endswith(f" {OUTAGE_HINT}\n") and result.stderr.count("\n") == 1
    assert "hunter2" not in result.stderr


def help_text(*command: str) -> str:
    """The command's --help, its lines joined as one text."""
    return " ".join(tollgate(*command, "--help").stdout.split())


def test_serve_help_gives_its_exit_statuses() -> None:
    text = help_text("serve")

    assert "Exit status 1 when a check fails, 3 when the server, or one of its workers, cannot start" in text


def test_db_current_help_says_it_exits_1_when_the_schema_is_behind() -> None:
    assert "Exit status 1 when the database is at another revision" in help_text("db", "current")


def test_key_revoke_help_shows_a_key_id_as_key_create_makes_it(gateway: GatewayHarness) -> None:
    made = gateway.key_id(gateway.create_key("acme"))
    shown = re.findall(r"tollgate key revoke (key_\S+)", tollgate("key", "revoke", "--help").stdout)

    assert len(shown) == 1
    assert re.fullmatch(r"key_[0-9a-f]+", shown[0]) and len(shown[0]) == len(made)


def test_usage_help_names_every_processing_tier_and_the_defaults_of_until_and_limit() -> None:
    text = help_text("usage")

    for tier in ("flex", "priority", "fast", "ultrafast"):
        assert tier in text.split("service_tier is", 1)[1].split("times (--since", 1)[0]
    assert "Gemini's" in text
    assert "to (exclusive; default: now)" in text
    assert "most groups shown (default: 1000, at most 1000000)" in text
    assert "groups skipped first, for paging (default: 0)" in text


@pytest.mark.parametrize("action", ["upgrade", "current"])
def test_db_commands_name_the_database_they_cannot_reach(tmp_path: Path, action: str) -> None:
    harness = GatewayHarness(
        tmp_path, {}, database_url="postgresql://tollgate:hunter2-secret@127.0.0.1:1/tollgate"
    )

    result = harness.cli("db", action, check=False)

    assert result.returncode == 1
    assert result.stderr.startswith("tollgate: postgresql://tollgate:***@127.0.0.1:1/tollgate: ")
    assert result.stderr.endswith(" (is the database reachable?)\n") and result.stderr.count("\n") == 1
    assert "hunter2" not in result.stderr


def _stamped(tmp_path: Path, revision: str) -> GatewayHarness:
    """A SQLite database upgraded by this version, then marked as being at `revision`."""
    harness = GatewayHarness(tmp_path, {})
    harness.cli("db", "upgrade")
    with sqlite3.connect(tmp_path / "tollgate.db") as connection:
        connection.execute("UPDATE alembic_version SET version_num = ?", (revision,))
    return harness


def test_db_upgrade_of_a_schema_a_later_version_wrote_says_so_in_one_line(tmp_path: Path) -> None:
    harness = _stamped(tmp_path, "9999")

    result = harness.cli("db", "upgrade", check=False)

    assert result.returncode == 1 and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "'9999'" in result.stderr
    assert f"this version's latest is {head_revision()}: a later Tollgate upgraded" in result.stderr


def test_db_upgrade_refused_by_a_database_that_answers_gives_no_reachability_hint(tmp_path: Path) -> None:
    previous = ScriptDirectory(str(MIGRATIONS)).get_revision(head_revision()).down_revision
    harness = _stamped(tmp_path, str(previous))  # what the last migration creates exists already

    result = harness.cli("db", "upgrade", check=False)

    assert result.returncode == 1 and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.endswith(" (the database answers: the migration failed)\n")


def test_the_top_level_help_lists_every_exit_status() -> None:
    text = help_text()

    assert (
        "Exit status: 0 done; 1 refused or failed, with one line on stderr saying why (`db current`: the "
        "schema is at another revision); 2 a command line it cannot parse, with the command's usage; 3 "
        "`serve` could not start; 130 interrupted (Ctrl-C); 141 its output's reader left (`tollgate usage "
        "| head`)."
    ) in text
