"""The machine-loss drill: the database side's whole state is deleted; the repository host alone brings it back.

Write rows, note T, write more; delete the data directory (WAL included) and the database side's
pgBackRest spool, lock and log files; `agentdb restore --to T` reads only the repository host. A
client-side ledger of committed rows says what must be back: everything committed before T, nothing after.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import psycopg
import pytest

pytestmark = pytest.mark.faults

ROWS = 40
ARCHIVE_TIMEOUT_S = 120


def write_ledger(stack, prefix: str) -> list[str]:
    """Insert ROWS trajectories, one committed transaction each; return those the server acknowledged."""
    committed = []
    with psycopg.connect(stack.dsn("qlearning", "app", "pgbouncer"), prepare_threshold=None) as conn:
        for i in range(ROWS):
            name = f"{prefix}-{i}"
            conn.execute("INSERT INTO trajectories (agent_type, task_id) VALUES ('test-generator', %s)", (name,))
            conn.commit()
            committed.append(name)
    return committed


def present(stack, prefix: str) -> set[str]:
    return set(stack.psql("qlearning", f"SELECT task_id FROM trajectories WHERE task_id LIKE '{prefix}-%'").split())


def wait_archived(stack) -> None:
    """Every WAL segment written so far is in the repository (a real loss costs at most archive_timeout)."""
    segment = stack.psql(None, "SELECT pg_walfile_name(pg_switch_wal())").strip()
    deadline = time.monotonic() + ARCHIVE_TIMEOUT_S
    while time.monotonic() < deadline:
        last = stack.psql(None, "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver").strip()
        if last >= segment:
            return
        time.sleep(0.5)
    raise AssertionError(f"WAL segment {segment} was not archived within {ARCHIVE_TIMEOUT_S}s")


def test_losing_the_database_host_loses_nothing_committed_before_t(fstack, report):
    local = fstack.local
    started = time.monotonic()
    fstack.cli("backup", "--type", "full")
    backup_s = time.monotonic() - started
    # pgBackRest keeps a backup's stop time in whole seconds: a target in that same second finds no backup.
    time.sleep(1.5)
    before = write_ledger(fstack, "loss-before")
    target = fstack.psql(
        None, "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
    ).strip()
    time.sleep(0.05)
    after = write_ledger(fstack, "loss-after")
    assert present(fstack, "loss-before") | present(fstack, "loss-after") == set(before) | set(after)
    wait_archived(fstack)
    size = int(fstack.psql(None, "SELECT sum(pg_database_size(datname)) FROM pg_database"))

    # The database host dies: its processes stop, and its whole state is gone.
    for service in ("postgres", "pgbackrest_db"):
        local._ctl("stop", service)
    lost = [
        Path(local.layout.postgres_data),  # the data directory, pg_wal included
        local.run_dir / "pgbackrest",  # pgBackRest's spool and locks
        local.logs / "pgbackrest",
        Path(local.layout.postgres_logs),
    ]
    for path in lost:
        shutil.rmtree(path)
    assert not any(path.exists() for path in lost)

    started = time.monotonic()
    fstack.cli("restore", "--to", target)
    restore_s = time.monotonic() - started
    fstack.cli("up")  # the database side's other services come back as on a rebuilt machine

    back_before, back_after = present(fstack, "loss-before"), present(fstack, "loss-after")
    assert set(before) - back_before == set(), "rows committed before T were lost"
    assert back_after == set(), "rows committed after T came back"
    assert fstack.psql(None, "SELECT pg_is_in_recovery()").strip() == "f"
    # The rebuilt database side archives and is backed up again.
    write_ledger(fstack, "loss-later")
    fstack.cli("backup", "--type", "incr")
    report["machine_loss"] = {
        "fault": "the database host's data directory, WAL and pgBackRest spool/locks/logs deleted; "
        "agentdb restore --to T from the repository host alone",
        "rows_committed_before_t": len(before),
        "rows_committed_before_t_lost": len(set(before) - back_before),
        "rows_committed_after_t": len(after),
        "rows_committed_after_t_present": len(back_after),
        "cluster_bytes": size,
        "full_backup_s": round(backup_s, 1),
        "restore_s": round(restore_s, 1),
        "encrypted": fstack.settings.backup_encryption,
    }
