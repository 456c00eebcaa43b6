"""`tollgate credential set` on a terminal: the secret is asked for without echo, and an operator who
ends the input at the prompt (Ctrl-D) gets one line, not a traceback."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.gateway import GatewayHarness

PROMPT = b"openai credential (input hidden): "


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> GatewayHarness:
    harness = GatewayHarness(Path(tmp_path_factory.mktemp("prompt")), {"openai": {"type": "openai"}})
    harness.cli("db", "upgrade")
    harness.cli("tenant", "create", "acme")
    return harness


def _read(controller: int, until: bytes | None, timeout: float = 30.0) -> bytes:
    """What the terminal shows, up to `until` (or until the command closes it)."""
    output, deadline = b"", time.monotonic() + timeout
    while time.monotonic() < deadline and (until is None or until not in output):
        ready, _, _ = select.select([controller], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # EIO: the command has exited and closed the terminal
                break
            if not chunk:
                break
            output += chunk
    return output


def answer_the_prompt(gateway: GatewayHarness, typed: bytes) -> tuple[int, str]:
    """Run `credential set` on a pseudo-terminal of its own, type `typed` once the prompt shows, and return
    its exit status and what the terminal showed."""
    controller, terminal = os.openpty()
    environment = {k: v for k, v in os.environ.items() if k not in ("TOLLGATE_MASTER_KEY", "TOLLGATE_CONFIG")}
    command = [sys.executable, "-m", "gateway", "--config", str(gateway.config_path)]
    process = subprocess.Popen(
        [*command, "credential", "set", "--tenant", "acme", "--provider", "openai"],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        start_new_session=True,  # no controlling terminal but this one
        env=environment,
    )
    os.close(terminal)
    try:
        shown = _read(controller, PROMPT)
        assert PROMPT in shown, shown
        os.write(controller, typed)
        shown += _read(controller, None)
        return process.wait(timeout=30), shown.decode(errors="replace")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(controller)


def test_ending_the_input_at_the_prompt_is_one_line_and_exit_status_1(gateway: GatewayHarness) -> None:
    status, shown = answer_the_prompt(gateway, b"\x04")  # Ctrl-D

    assert status == 1
    assert "Traceback" not in shown and "EOFError" not in shown
    assert shown.endswith("tollgate: no credential entered (end of input at the prompt)\r\n")


def test_a_secret_typed_at_the_prompt_is_stored_and_not_shown(gateway: GatewayHarness) -> None:
    status, shown = answer_the_prompt(gateway, b"sk-typed-on-a-terminal\r")

    assert status == 0, shown
    assert "stored openai credential" in shown
    assert "sk-typed-on-a-terminal" not in shown


def test_a_stored_credential_says_how_soon_running_gateways_use_it(gateway: GatewayHarness) -> None:
    result = gateway.cli("credential", "set", "--tenant", "acme", "--provider", "openai", stdin="sk-piped")

    assert result.stdout.endswith("for acme; running gateways use it within 30s\n")
