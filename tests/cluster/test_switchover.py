"""A planned switchover pauses PgBouncer's read-write pools, and every way out of the pause resumes them.

The switchover under write load itself (ledger, pause, no client errors) is in test_cluster.py with
the other faults; these check the pause: that clients wait in it, and that a pause which cannot
complete, an error inside it or a switchover Patroni refuses leaves no pool paused.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
import uuid

import psycopg
import pytest

from infra import cluster, pgbouncer_admin
from tests.conftest import REPO


def _paused(cstack) -> list[str]:
    return sorted(db for db, paused in pgbouncer_admin.paused_databases(cstack.local).items() if paused)


def _upsert(cstack, state: str) -> None:
    with psycopg.connect(cstack.dsn("qlearning", "app", "pgbouncer"), autocommit=True, connect_timeout=5) as conn:
        conn.execute("SELECT upsert_q_value('test-generator', %s, '{}', 'act', '{}', 0.5)", (state,))


def _rows(cstack, state: str) -> int:
    with psycopg.connect(cstack.dsn("qlearning"), autocommit=True) as conn:
        return conn.execute("SELECT count(*) FROM q_values WHERE state_hash = %s", (state,)).fetchone()[0]


def test_a_write_waits_in_pgbouncer_while_its_pool_is_paused(cstack):
    state, done, errors = f"paused-{uuid.uuid4()}", threading.Event(), []

    def write() -> None:
        try:
            _upsert(cstack, state)
        except psycopg.Error as exc:
            errors.append(exc)
        finally:
            done.set()

    with pgbouncer_admin.paused(cstack.local, ["qlearning_db"]):
        assert _paused(cstack) == ["qlearning_db"]
        threading.Thread(target=write, daemon=True).start()
        assert not done.wait(1.5), "the write went through a paused pool"
        assert _rows(cstack, state) == 0
    assert done.wait(10), "the write did not go through once the pool was resumed"
    assert errors == []
    assert _rows(cstack, state) == 1
    assert _paused(cstack) == []


def test_a_pause_a_transaction_blocks_is_refused_and_undone(cstack):
    state = f"held-{uuid.uuid4()}"
    # An open transaction keeps its server connection in transaction pooling: PAUSE waits for it.
    with psycopg.connect(cstack.dsn("qlearning", "app", "pgbouncer"), connect_timeout=5) as held:
        held.execute("SELECT upsert_q_value('test-generator', %s, '{}', 'act', '{}', 0.5)", (state,))
        start = time.monotonic()
        with (
            pytest.raises(
                pgbouncer_admin.PauseError,
                match="could not pause qlearning_db within 1s: a transaction still holds one of its server connections",
            ),
            pgbouncer_admin.paused(cstack.local, ["qlearning_db"], timeout=1),
        ):
            pytest.fail("the block ran although the pool could not be paused")
        assert time.monotonic() - start < 5
        assert _paused(cstack) == []
        held.commit()
    assert _rows(cstack, state) == 1
    _upsert(cstack, f"after-{state}")


def test_an_error_inside_the_pause_resumes_every_pool(cstack):
    pools = sorted(db.name for db in cstack.settings.enabled)
    with pytest.raises(RuntimeError, match="inside the pause"), pgbouncer_admin.paused(cstack.local, pools):
        assert _paused(cstack) == pools
        raise RuntimeError("inside the pause")
    assert _paused(cstack) == []


def test_a_switchover_patroni_refuses_leaves_pgbouncer_resumed(cstack):
    before = cluster.leader(cstack.local)
    # synchronousMode: Patroni switches over only to the synchronous standby.
    async_replica = next(m for m in cluster.members(cstack.local) if m.role == "replica")
    result = cstack.cli("switchover", "--to", async_replica.name, check=False)
    assert result.returncode == 1, result.stdout
    assert (
        "error: Patroni refused the switchover (HTTP 412): candidate name does not match with sync_standby"
        " (PgBouncer's pools were resumed)"
    ) in result.stderr
    assert _paused(cstack) == []
    assert cluster.leader(cstack.local).name == before.name
    _upsert(cstack, f"after-refusal-{uuid.uuid4()}")


def test_a_sigterm_during_the_pause_resumes_the_pools(cstack):
    # The CLI killed mid-switchover (SIGTERM, as supervisors and `timeout` send) must not leave writes held.
    program = (
        "import os, signal, sys, time\n"
        "from infra.runner import LocalStack\n"
        "from pathlib import Path\n"
        "from infra.settings import load\n"
        "from infra.pgbouncer_admin import paused\n"
        "stack = LocalStack(sys.argv[1], load(sys.argv[1], path=Path(sys.argv[2])), Path(sys.argv[3]))\n"
        "with paused(stack, ['qlearning_db']):\n"
        "    print('paused', flush=True)\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    time.sleep(30)\n"
    )
    args = [cstack.local.name, str(cstack.stack_file), str(cstack.state_dir)]
    result = subprocess.run(
        [sys.executable, "-c", program, *args], capture_output=True, text=True, timeout=60, cwd=REPO
    )
    assert result.stdout == "paused\n", result.stderr
    assert result.returncode == 128 + signal.SIGTERM
    assert _paused(cstack) == []
