"""Secrets never reach logs, command output, reports or the process list, over a full up / status /
load / down on a dedicated stack. Only `agentdb env` prints them, by design (tests/integration/test_stack.py)."""

from __future__ import annotations

import subprocess

import pytest

from tests.conftest import dedicated_stack


@pytest.fixture(scope="module")
def lifecycle():
    """Run the lifecycle; return the secrets, the process list while up, and the stack (down by then)."""
    with dedicated_stack("agentdb-secrets-", {"agentdb:tls": True}) as ts:
        ts.cli("status")
        ts.cli("up")  # the second, idempotent up prints too
        for key in ts.settings.databases:  # `load` needs volume data; a sliver of it is enough here
            ts.cli("seed", "--db", key, "--volume", "1d", "--scale", "0.02")
        report = ts.state_dir.parent / "report"
        # A short run: its verdict on the targets does not matter here, only what it prints and writes.
        ts.cli("load", "--users", "4", "--duration", "5s", "--report-dir", str(report), check=False)
        processes = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
        ts.cli("down")
        secrets = ts.local.secrets()
        files = [*(ts.state_dir / "logs").rglob("*"), *report.rglob("*")]
        logs = {p: p.read_text(errors="replace") for p in sorted(files) if p.is_file()}
        yield secrets, processes, ts.outputs, logs


def test_the_stack_has_secrets_and_logs(lifecycle):
    secrets, processes, outputs, logs = lifecycle
    assert len(secrets) >= 9
    assert all(len(value) >= 32 for value in secrets.values())
    assert any(path.name == "postgres.log" for path in logs)
    assert any(path.name == "summary.json" for path in logs), f"agentdb load wrote no report: {outputs[-4:-2]}"
    assert len(outputs) == 18  # stdout and stderr of up, status, up, 4 seeds, load, down


def _leaks(secrets: dict[str, str], texts: dict[str, str]) -> list[str]:
    return [f"{name} in {where}" for where, text in texts.items() for name, value in secrets.items() if value in text]


def test_no_secret_in_any_log_file_or_report(lifecycle):
    secrets, _, _, logs = lifecycle
    assert _leaks(secrets, {str(p): text for p, text in logs.items()}) == []


def test_no_secret_in_the_output_of_up_status_load_down(lifecycle):
    secrets, _, outputs, _ = lifecycle
    assert _leaks(secrets, {f"output {i}": text for i, text in enumerate(outputs)}) == []


def test_no_secret_in_the_process_list(lifecycle):
    secrets, processes, _, _ = lifecycle
    assert "postgres" in processes and "redis-server" in processes
    assert _leaks(secrets, {"ps -eo args": processes}) == []
