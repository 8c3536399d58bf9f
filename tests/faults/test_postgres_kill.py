"""kill -9 of the postmaster under an upsert + trajectory load: every acknowledged write survives."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from infra import report as report_logs
from tests.faults.load import WriteLoad, lost_writes, wait_for

pytestmark = pytest.mark.faults


@pytest.mark.parametrize("setting", ["fsync", "synchronous_commit", "full_page_writes"])
def test_durability_settings_stay_on(fstack, setting):
    assert fstack.psql("qlearning", f"SHOW {setting}").strip() == "on"


def test_postmaster_killed_loses_no_acknowledged_write(fstack, report):
    pid = int(fstack.local._ctl("pid", "postgres").stdout.strip())
    with WriteLoad(fstack.dsn("qlearning", "app", "pgbouncer"), "pgkill") as load:
        wait_for(lambda: load.ledger.acked() >= 200, "200 acknowledged writes before the kill")
        killed_at = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        # Backends outlive their postmaster for a moment and may still acknowledge commits (durably:
        # their WAL is flushed); the clients are whole again at the first ack after the last error.
        wait_for(lambda: load.ledger.first_error_after(killed_at) is not None, "an error caused by the kill")
        wait_for(lambda: load.ledger.recovered_at() is not None, "a write after the kill")
        acked_then = load.ledger.acked()
        wait_for(lambda: load.ledger.acked() >= acked_then + 200, "200 more writes after recovery")
    recovery_s = load.ledger.recovered_at() - killed_at
    new_pid = int(fstack.local._ctl("pid", "postgres").stdout.strip())
    assert new_pid != pid, "supervisord did not restart the postmaster"
    # Crash recovery is logged by the new postmaster's logging collector, into the CSV files.
    log = "\n".join(p.read_text() for p in report_logs.log_files(Path(fstack.local.layout.postgres_logs)))
    assert "automatic recovery in progress" in log, "PostgreSQL did not go through crash recovery"
    lost = lost_writes(fstack.dsn("qlearning"), load.ledger)
    ledger = load.ledger
    report["postgres_killed"] = {
        "fault": "kill -9 of the postmaster during upsert + trajectory/reward load (4 clients via PgBouncer)",
        "writes_acknowledged": ledger.acked(),
        "writes_lost": sum(map(len, lost.values())),
        "recovery_s": round(recovery_s, 2),
        "client_errors": len(ledger.errors),
    }
    assert lost == {"q_values": [], "trajectories_with_rewards": []}
