"""PgBouncer restarted under load: clients reconnect and no acknowledged write is lost."""

from __future__ import annotations

import time

import pytest

from tests.faults.load import WriteLoad, lost_writes, wait_for

pytestmark = pytest.mark.faults


def test_pgbouncer_restart_loses_no_acknowledged_write(fstack, report):
    with WriteLoad(fstack.dsn("qlearning", "app", "pgbouncer"), "bouncer") as load:
        wait_for(lambda: load.ledger.acked() >= 200, "200 acknowledged writes before the restart")
        restarted_at = time.monotonic()
        result = fstack.local._ctl("restart", "pgbouncer")
        assert "started" in result.stdout, result.stdout + result.stderr
        wait_for(lambda: load.ledger.recovered_at() is not None, "a write after the restart")
        acked_then = load.ledger.acked()
        wait_for(lambda: load.ledger.acked() >= acked_then + 200, "200 more writes after the restart")
    resumed_s = load.ledger.recovered_at() - restarted_at
    ledger = load.ledger
    lost = lost_writes(fstack.dsn("qlearning"), ledger)
    report["pgbouncer_restarted"] = {
        "fault": "supervisorctl restart pgbouncer during upsert + trajectory/reward load (4 clients)",
        "writes_acknowledged": ledger.acked(),
        "writes_lost": sum(map(len, lost.values())),
        "recovery_s": round(resumed_s, 2),
        "client_errors": len(ledger.errors),
        "error_kinds": sorted({e.split(":")[0] for e in ledger.errors}),
    }
    assert lost == {"q_values": [], "trajectories_with_rewards": []}
    assert ledger.errors, "the restart caused no client error at all: was PgBouncer really restarted?"
