"""Secrets never reach logs, command output or the process list, over a full up / status / down on a
dedicated stack. Only `agentdb env` prints them, by design (tests/integration/test_stack.py)."""

from __future__ import annotations

import subprocess

import pytest

from .conftest import dedicated_stack


@pytest.fixture(scope="module")
def lifecycle():
    """Run the lifecycle; return the secrets, the process list while up, and the stack (down by then)."""
    with dedicated_stack("agentdb-secrets-", {"agentdb:databases": ["qlearning"], "agentdb:tls": True}) as ts:
        ts.cli("status")
        ts.cli("up")  # the second, idempotent up prints too
        processes = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
        ts.cli("down")
        secrets = ts.local.secrets()
        logs = {p: p.read_text(errors="replace") for p in sorted((ts.state_dir / "logs").rglob("*")) if p.is_file()}
        yield secrets, processes, ts.outputs, logs


def test_the_stack_has_secrets_and_logs(lifecycle):
    secrets, processes, outputs, logs = lifecycle
    assert len(secrets) >= 9
    assert all(len(value) >= 32 for value in secrets.values())
    assert any(path.name == "postgres.log" for path in logs)
    assert len(outputs) == 8  # stdout and stderr of up, status, up, down


def _leaks(secrets: dict[str, str], texts: dict[str, str]) -> list[str]:
    return [f"{name} in {where}" for where, text in texts.items() for name, value in secrets.items() if value in text]


def test_no_secret_in_any_log_file(lifecycle):
    secrets, _, _, logs = lifecycle
    assert _leaks(secrets, {str(p): text for p, text in logs.items()}) == []


def test_no_secret_in_the_output_of_up_status_down(lifecycle):
    secrets, _, outputs, _ = lifecycle
    assert _leaks(secrets, {f"output {i}": text for i, text in enumerate(outputs)}) == []


def test_no_secret_in_the_process_list(lifecycle):
    secrets, processes, _, _ = lifecycle
    assert "postgres" in processes and "redis-server" in processes
    assert _leaks(secrets, {"ps -eo args": processes}) == []
