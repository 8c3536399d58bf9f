"""Backups and point-in-time recovery through `agentdb backup` and `agentdb restore --to`.

Write rows, note T, write more, restore to T: exactly the rows committed before T are there.
"""

from __future__ import annotations

import time

import psycopg
import pytest

from infra import backup

pytestmark = pytest.mark.faults

ROWS = 50


def insert_trajectories(stack, prefix: str) -> set[str]:
    names = {f"{prefix}-{i}" for i in range(ROWS)}
    with psycopg.connect(stack.dsn("qlearning", "app", "pgbouncer"), prepare_threshold=None) as conn:
        for name in sorted(names):
            conn.execute("INSERT INTO trajectories (agent_type, task_id) VALUES ('test-generator', %s)", (name,))
            conn.commit()  # one committed transaction per row
    return names


def pitr_rows(stack) -> set[str]:
    return set(stack.psql("qlearning", "SELECT task_id FROM trajectories WHERE task_id LIKE 'pitr-%'").split())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["backup", "--type", "weekly"], "invalid choice"),
        (["restore", "--to", "yesterday"], "--to: 'yesterday' is not an ISO 8601 timestamp"),
        (["restore", "--to", "2999-01-01T00:00:00Z"], "is in the future"),
        (["restore", "--to", "2001-01-01T00:00:00Z"], "is before the oldest backup"),
    ],
)
def test_bad_backup_and_restore_input_is_refused(fstack, args, message):
    if args[0] == "restore" and not backup.info(fstack.local):
        fstack.cli("backup", "--type", "full")
    result = fstack.cli(*args, check=False)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr


def test_restore_to_t_has_exactly_the_rows_committed_before_t(fstack, report):
    started = time.monotonic()
    fstack.cli("backup", "--type", "full")
    backup_s = time.monotonic() - started
    fstack.cli("backup", "--type", "diff")
    # pgBackRest keeps a backup's stop time in whole seconds: a target in that same second finds no backup.
    time.sleep(1.5)
    before = insert_trajectories(fstack, "pitr-before")
    target = fstack.psql(
        None, "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
    )
    time.sleep(0.05)
    after = insert_trajectories(fstack, "pitr-after")
    assert pitr_rows(fstack) == before | after
    size = int(fstack.psql(None, "SELECT sum(pg_database_size(datname)) FROM pg_database"))

    started = time.monotonic()
    result = fstack.cli("restore", "--to", target.strip())
    restore_s = time.monotonic() - started

    assert pitr_rows(fstack) == before
    assert fstack.psql(None, "SELECT pg_is_in_recovery()").strip() == "f"
    assert "previous data directory is kept" in result.stdout
    # The restored cluster serves applications through PgBouncer again, and archives WAL again.
    insert_trajectories(fstack, "pitr-later")
    fstack.cli("backup", "--type", "incr")
    report["restore"] = {
        "fault": "restore to a moment T between two batches of committed rows (agentdb restore --to)",
        "writes_acknowledged": len(before) + len(after),
        "writes_lost": len(before - pitr_rows(fstack)),
        "rows_after_t_present": len(after & pitr_rows(fstack)),
        "cluster_bytes": size,
        "full_backup_s": round(backup_s, 1),
        "restore_s": round(restore_s, 1),
        "volume": "what the stack holds after the other faults (infra/seeds/qlearning.py has no volume())",
    }
