"""The cluster (agentdb:replicas: 2) as real processes: Patroni nodes, etcd members, HAProxy, PgBouncer.

The first tests only read; the ones marked `faults` switch the leader over and crash it under write
load, keeping a client-side ledger of acknowledged writes, and add their figures to reports/faults.json.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

import psutil
import psycopg
import pytest

from infra import cluster
from infra.runner import SERVICE_USER
from tests.faults.load import WriteLoad, lost_writes, wait_for

NODES = ["pg-1", "pg-2", "pg-3"]
MEMBERS = ["etcd-1", "etcd-2", "etcd-3"]


def _leader(cstack) -> cluster.Member:
    found = cluster.leader(cstack.local)
    assert found is not None, cluster.problems(cstack.local)
    return found


def _node_dsn(cstack, port: int, db: str | None = None) -> str:
    return cstack.local.dsn(db, port=port)


def test_three_nodes_one_leader_two_streaming_replicas(cstack):
    members = cluster.members(cstack.local)
    assert [m.name for m in members] == NODES
    roles = sorted(m.role for m in members)
    # synchronousMode: one replica is the synchronous standby.
    assert roles == ["leader", "replica", "sync_standby"]
    assert [m.state for m in members if m.role != "leader"] == ["streaming", "streaming"]


def test_the_leader_streams_to_both_replicas_one_synchronously(cstack):
    leader = _leader(cstack)
    with psycopg.connect(_node_dsn(cstack, leader.port)) as conn:
        rows = conn.execute("SELECT application_name, state, sync_state FROM pg_stat_replication").fetchall()
    assert sorted(r[0] for r in rows) == sorted(set(NODES) - {leader.name})
    assert {r[1] for r in rows} == {"streaming"}
    assert sorted(r[2] for r in rows) == ["async", "sync"]


def test_haproxy_routes_writes_to_the_leader_and_reads_to_the_replicas(cstack):
    leader = _leader(cstack)
    up = {(b.listener, b.node) for b in cluster.backends(cstack.local) if b.status == "UP"}
    replicas = set(NODES) - {leader.name}
    assert up == {("primary", leader.name)} | {("replicas", n) for n in replicas}


def test_every_etcd_member_is_healthy(cstack):
    assert cluster.etcd_health(cstack.local) == dict.fromkeys(MEMBERS, "healthy")


@pytest.mark.parametrize("node", NODES)
def test_every_node_preloads_the_extensions(cstack, node):
    port = cstack.local.topology.unit(node).port_of("postgres")
    with psycopg.connect(_node_dsn(cstack, port)) as conn:
        preload = conn.execute("SHOW shared_preload_libraries").fetchone()[0]
    assert {"pg_cron", "pg_stat_statements"} <= set(preload.split(","))


def _postmaster_pid(cstack, node: str) -> int:
    data = Path(cstack.local.layout.data_root) / cstack.local.topology.unit(node).data
    return int((data / "postmaster.pid").read_text().splitlines()[0])


@pytest.mark.parametrize("unit", [*NODES, *MEMBERS, "haproxy"])
def test_cluster_units_run_as_the_unprivileged_user_on_their_ports(cstack, unit):
    pids = [int(cstack.local._ctl("pid", unit).stdout.strip())]
    if unit in NODES:
        # Patroni starts its postmaster in a session of its own, so that it outlives a Patroni crash.
        pids.append(_postmaster_pid(cstack, unit))
    processes = [psutil.Process(pid) for pid in pids]
    processes += [child for p in processes for child in p.children(recursive=True)]
    expected_user = SERVICE_USER if os.geteuid() == 0 else psutil.Process().username()
    assert {p.username() for p in processes} == {expected_user}
    listening = {c.laddr.port for p in processes for c in p.net_connections("tcp") if c.status == "LISTEN"}
    assert {p.number for p in cstack.local.topology.unit(unit).ports} <= listening


def test_status_shows_roles_members_and_backends(cstack):
    out = cstack.cli("status").stdout
    leader = _leader(cstack)
    assert any(line.split()[:3] == [leader.name, "leader", "running"] for line in out.splitlines()), out
    assert sum(line.split()[1:3] == ["sync_standby", "streaming"] for line in out.splitlines() if line) == 1, out
    for member in MEMBERS:
        assert f"{member}  healthy" in out
    assert f"primary   {leader.name}     UP" in out


def test_env_adds_a_replica_url_per_database(cstack):
    out = cstack.cli("env").stdout
    for db in cstack.settings.enabled:
        assert f"export {db.key.upper()}_REPLICA_DATABASE_URL=" in out
        assert f"/{db.name}_replica" in out


def test_writes_through_the_app_dsn_are_read_through_the_replica_url(cstack):
    state = f"replica-read-{uuid.uuid4()}"
    with psycopg.connect(cstack.dsn("qlearning", "app", "pgbouncer"), autocommit=True) as conn:
        conn.execute("SELECT upsert_q_value('test-generator', %s, '{}', 'act', '{}', 0.5)", (state,))
    replica_ports = {m.port for m in cluster.members(cstack.local) if m.role != "leader"}

    def seen_on_a_replica() -> bool:
        with psycopg.connect(cstack.dsn("qlearning", "readonly", "replica"), autocommit=True) as conn:
            row = conn.execute(
                "SELECT inet_server_port(), pg_is_in_recovery(), count(*) FROM q_values WHERE state_hash = %s",
                (state,),
            ).fetchone()
        assert row[0] in replica_ports and row[1] is True, row
        return row[2] == 1

    wait_for(seen_on_a_replica, "the write on a replica", limit=10)


def test_a_replica_refuses_writes(cstack):
    with (
        psycopg.connect(cstack.dsn("qlearning", "readonly", "replica"), autocommit=True) as conn,
        pytest.raises(psycopg.errors.ReadOnlySqlTransaction),
    ):
        conn.execute("CREATE TEMP TABLE t (x int)")


def test_switchover_to_an_unknown_node_is_refused_by_name(cstack):
    result = cstack.cli("switchover", "--to", "pg-9", check=False)
    assert result.returncode == 1
    assert "--to: no node 'pg-9'; nodes: pg-1, pg-2, pg-3" in result.stderr


def test_restore_on_a_cluster_is_refused_before_anything_stops(cstack):
    result = cstack.cli("restore", "--to", "2026-01-01T00:00:00+00:00", check=False)
    assert result.returncode == 1
    assert "restore of a cluster (agentdb:replicas: 2) is not supported yet" in result.stderr
    assert not cluster.problems(cstack.local)


def _longest_pause(ack_times: list[float], start: float, end: float) -> float:
    """The longest time without an acknowledged write between `start` and `end`."""
    times = sorted(t for t in ack_times if start <= t <= end)
    edges = [start, *times, end]
    return max(b - a for a, b in zip(edges, edges[1:], strict=False))


@pytest.mark.faults
def test_switchover_under_write_load_loses_nothing(cstack, report):
    before = _leader(cstack)
    with WriteLoad(cstack.dsn("qlearning", "app", "pgbouncer"), "switchover") as load:
        wait_for(lambda: load.ledger.acked() >= 200, "200 acknowledged writes before the switchover")
        start = time.monotonic()
        result = cstack.cli("switchover")
        end = time.monotonic()
        acked_then = load.ledger.acked()
        wait_for(lambda: load.ledger.acked() >= acked_then + 200, "200 more writes after the switchover")
    after = _leader(cstack)
    assert after.name != before.name, result.stdout
    assert f"switchover: {after.name} serves writes through PgBouncer" in result.stdout
    lost = lost_writes(cstack.dsn("qlearning"), load.ledger)
    pause = _longest_pause(load.ledger.ack_times, start, end + 5)
    report["cluster_switchover"] = {
        "fault": "agentdb switchover (planned) during upsert + trajectory/reward load (4 clients via PgBouncer)",
        "writes_acknowledged": load.ledger.acked(),
        "writes_lost": sum(map(len, lost.values())),
        "write_pause_s": round(pause, 2),
        "switchover_s": round(end - start, 2),
        "client_errors": len(load.ledger.errors),
    }
    assert lost == {"q_values": [], "trajectories_with_rewards": []}
    cluster.wait_ready(cstack.local, progress=lambda _: None)


@pytest.mark.faults
def test_leader_crash_under_write_load_loses_nothing_and_the_old_leader_rejoins(cstack, report):
    before = _leader(cstack)
    timeline = before.timeline
    patroni_pid = int(cstack.local._ctl("pid", before.name).stdout.strip())
    postmaster_pid = _postmaster_pid(cstack, before.name)
    with WriteLoad(cstack.dsn("qlearning", "app", "pgbouncer"), "leaderkill") as load:
        wait_for(lambda: load.ledger.acked() >= 200, "200 acknowledged writes before the crash")
        killed_at = time.monotonic()
        # Patroni and its postmaster together, as if the machine died.
        os.kill(patroni_pid, signal.SIGKILL)
        os.kill(postmaster_pid, signal.SIGKILL)
        wait_for(lambda: load.ledger.first_error_after(killed_at) is not None, "an error caused by the crash")
        wait_for(lambda: load.ledger.recovered_at() is not None, "a write after the crash", limit=60)
        acked_then = load.ledger.acked()
        wait_for(lambda: load.ledger.acked() >= acked_then + 200, "200 more writes after recovery")
    recovery_s = load.ledger.recovered_at() - killed_at
    after = _leader(cstack)
    lost = lost_writes(cstack.dsn("qlearning"), load.ledger)
    # The old leader comes back by itself (supervisord restarts its Patroni, pg_rewind if needed)
    # and the cluster is whole again: replicas + 1 members, the replicas streaming.
    rejoin_s = cluster.wait_ready(cstack.local, progress=lambda _: None, timeout=120)
    members = {m.name: m for m in cluster.members(cstack.local)}
    report["cluster_leader_crash"] = {
        "fault": "kill -9 of the leader's Patroni and postmaster together (synchronousMode on) during"
        " upsert + trajectory/reward load (4 clients via PgBouncer)",
        "writes_acknowledged": load.ledger.acked(),
        "writes_lost": sum(map(len, lost.values())),
        "recovery_s": round(recovery_s, 2),
        "new_leader_is_other_node": after.name != before.name,
        "old_leader_rejoined_s_after_recovery": round(rejoin_s, 2),
        "client_errors": len(load.ledger.errors),
    }
    assert lost == {"q_values": [], "trajectories_with_rewards": []}
    assert members[before.name].role != "leader" or after.name == before.name
    assert members[before.name].state in {"streaming", "running"}
    assert members[after.name].timeline > timeline
