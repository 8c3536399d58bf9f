"""Secrets never reach logs, command output, reports or the process list, over a full up / status /
load / down on a dedicated stack. Only `agentdb env` prints them, by design (tests/integration/test_stack.py)."""

from __future__ import annotations

import subprocess

import pytest

from loadtests.load import REQUIRED
from tests.conftest import dedicated_stack


@pytest.fixture(scope="module")
def lifecycle():
    """Run the lifecycle; return the secrets, the process list while up, and the stack (down by then).

    The stack starts without volume data, so the lifecycle also shows what `agentdb load` does then:
    with --no-seed it refuses, and by default it seeds a sliver of the volume first.
    """
    with dedicated_stack("agentdb-secrets-", {"agentdb:tls": True}) as ts:
        ts.cli("status")
        ts.cli("up")  # the second, idempotent up prints too
        report = ts.state_dir.parent / "report"
        # One operation alone (pgbench, then Locust) and the mix: every process agentdb load starts.
        short = ["--users", "4", "--duration", "5s", "--report-dir", str(report)]
        short += ["--capacity-duration", "2s", "--capacity-operations", "qlearning.upsert_batch_100"]
        refused = ts.cli("load", "--no-seed", *short, check=False)
        # A short run: its verdict on the targets does not matter here, only what it prints and writes.
        seeded = ts.cli("load", "--seed-scale", "0.001", *short, check=False)
        volume = {key: int(ts.psql(key, query)) for key, query in REQUIRED.items()}
        processes = subprocess.run(["ps", "-eww", "-o", "args"], capture_output=True, text=True, check=True).stdout
        ts.cli("down")
        secrets = ts.local.secrets()
        files = [*(ts.state_dir / "logs").rglob("*"), *report.rglob("*")]
        logs = {p: p.read_text(errors="replace") for p in sorted(files) if p.is_file()}
        yield secrets, processes, ts.outputs, logs, (refused, seeded, volume)


def test_the_stack_has_secrets_and_logs(lifecycle):
    secrets, processes, outputs, logs, _ = lifecycle
    assert len(secrets) >= 9
    assert all(len(value) >= 32 for value in secrets.values())
    assert any(path.name == "postgres.log" for path in logs)
    assert any(path.name == "summary.json" for path in logs), f"agentdb load wrote no report: {outputs[-4:-2]}"
    assert len(outputs) == 12  # stdout and stderr of up, status, up, load, load, down


def test_load_without_volume_data_and_no_seed_refuses_naming_the_seed_command(lifecycle):
    refused, _, _ = lifecycle[4]
    assert refused.returncode == 2
    assert "has no volume data: run `agentdb seed --db qlearning --volume 30d` first" in refused.stderr


def test_load_seeds_each_database_without_volume_data_first(lifecycle):
    _, seeded, volume = lifecycle[4]
    assert seeded.returncode in (0, 1), seeded.stdout + seeded.stderr
    for key in ("qlearning", "orchestrator", "agentic"):
        assert f"{key} has no volume data: seeding it first" in seeded.stdout
        assert volume[key] > 0, key
    assert "afs has no volume data" not in seeded.stdout  # its scenario makes its own rows


def _leaks(secrets: dict[str, str], texts: dict[str, str]) -> list[str]:
    return [f"{name} in {where}" for where, text in texts.items() for name, value in secrets.items() if value in text]


def test_no_secret_in_any_log_file_or_report(lifecycle):
    secrets, _, _, logs, _ = lifecycle
    assert _leaks(secrets, {str(p): text for p, text in logs.items()}) == []


def test_no_secret_in_the_output_of_up_status_load_down(lifecycle):
    secrets, _, outputs, _, _ = lifecycle
    assert _leaks(secrets, {f"output {i}": text for i, text in enumerate(outputs)}) == []


def test_no_secret_in_the_process_list(lifecycle):
    secrets, processes, _, _, _ = lifecycle
    assert "postgres" in processes and "redis-server" in processes
    assert _leaks(secrets, {"ps -eo args": processes}) == []
