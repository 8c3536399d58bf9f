"""The cluster (agentdb:replicas: 2) as real processes: Patroni nodes, etcd members, HAProxy, PgBouncer.

The first tests only read; the ones marked `faults` switch the leader over and crash it under write
load, keeping a client-side ledger of acknowledged writes, and add their figures to reports/faults.json.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import threading
import time
import uuid
from pathlib import Path

import psutil
import psycopg
import pytest
import testinfra

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


@pytest.fixture(scope="module")
def host():
    return testinfra.get_host("local://")


@pytest.mark.parametrize("unit", [*NODES, *MEMBERS, "haproxy"])
def test_cluster_units_run_as_the_unprivileged_user_on_their_ports(cstack, host, unit):
    pids = [int(cstack.local._ctl("pid", unit).stdout.strip())]
    if unit in NODES:
        # Patroni starts its postmaster in a session of its own, so that it outlives a Patroni crash.
        pids.append(_postmaster_pid(cstack, unit))
    expected_user = SERVICE_USER if host.user().name == "root" else host.user().name
    assert [host.process.get(pid=pid).user for pid in pids] == [expected_user] * len(pids)
    for port in cstack.local.topology.unit(unit).ports:
        assert host.socket(f"tcp://{cstack.settings.bind_address}:{port.number}").is_listening, port


def _prometheus(cstack, query: str) -> list[dict]:
    import json
    import urllib.parse
    import urllib.request

    s = cstack.settings
    url = f"http://{s.bind_address}:{s.prometheus_port}/api/v1/query?query={urllib.parse.quote(query)}"
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.load(resp)["data"]["result"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ('count(up{job="patroni"} == 1)', 3),
        ('count(up{job="etcd"} == 1)', 3),
        ("sum(patroni_primary)", 1),
        ("sum(patroni_sync_standby)", 1),
    ],
)
def test_prometheus_scrapes_patroni_and_etcd(cstack, query, expected):
    def answered() -> bool:
        result = _prometheus(cstack, query)
        return bool(result) and float(result[0]["value"][1]) == expected

    wait_for(answered, f"{query} == {expected}", limit=5 * cstack.settings.scrape_interval_s + 10)


@pytest.mark.parametrize(
    ("job", "label", "names"),
    [("patroni", "node", NODES), ("etcd", "member", MEMBERS), ("postgres", "node", NODES)],
)
def test_prometheus_has_every_node_and_member_up_with_its_label(cstack, job, label, names):
    # pg_up: each node's own exporter reaches its PostgreSQL, a replica's as well as the leader's.
    metric = "pg_up" if job == "postgres" else "up"

    def labelled_up() -> bool:
        return sorted(r["metric"].get(label, "") for r in _prometheus(cstack, f'{metric}{{job="{job}"}} == 1')) == names

    wait_for(
        labelled_up, f"{metric}{{job={job!r}}} == 1 for each {label}", limit=5 * cstack.settings.scrape_interval_s + 10
    )


def _cluster_rules(cstack) -> list[dict]:
    import json
    import urllib.request

    s = cstack.settings
    with urllib.request.urlopen(f"http://{s.bind_address}:{s.prometheus_port}/api/v1/rules", timeout=5) as resp:
        groups = json.load(resp)["data"]["groups"]
    return [rule for g in groups if g["name"].startswith("cluster-") for rule in g["rules"]]


def test_cluster_alerts_evaluate_and_are_quiet_on_a_healthy_cluster(cstack):
    """Prometheus evaluates every cluster rule against the real scrapes: no error, none pending or firing."""
    # Every scrape has been seen at least once (the previous test), then two evaluations.
    wait_for(
        lambda: all(r["health"] != "unknown" for r in _cluster_rules(cstack)),
        "every cluster rule evaluated",
        limit=5 * cstack.settings.scrape_interval_s + 10,
    )
    time.sleep(2 * cstack.settings.scrape_interval_s)
    rules = _cluster_rules(cstack)
    assert {r["name"] for r in rules} >= {
        "PatroniNoLeader",
        "PatroniMembersMissing",
        "PatroniReplicaNotStreaming",
        "PatroniReplicationLag",
        "PatroniFailover",
        "PatroniSyncStandbyMissing",
        "EtcdMembersDown",
    }
    assert [(r["name"], r["lastError"]) for r in rules if r["health"] != "ok"] == []
    assert [(r["name"], r["labels"]["severity"], r["state"]) for r in rules if r["state"] != "inactive"] == []
    # Quiet because the series are there and healthy, not because the expressions match nothing.
    assert _prometheus(cstack, "sum(patroni_postgres_streaming)")[0]["value"][1] == "2"


def test_no_password_in_the_cluster_logs_or_process_list(cstack):
    secrets = cstack.local.secrets()
    assert {"replicator", "patroni"} <= set(secrets)
    logs = {path.name: path.read_text(errors="replace") for path in (cstack.state_dir / "logs").rglob("*.log")}
    assert {"pg-1.log", "etcd-1.log", "haproxy.log"} <= set(logs)
    commands = [" ".join(p.info["cmdline"] or []) for p in psutil.process_iter(["cmdline"])]
    for name, secret in secrets.items():
        assert not [log for log, text in logs.items() if secret in text], name
        assert not [cmd for cmd in commands if secret in cmd], name


@pytest.mark.parametrize("node", NODES)
def test_patroni_files_are_0600_and_owned_by_the_service_user(cstack, host, node):
    file = host.file(str(cstack.state_dir / "etc" / f"patroni-{node}.yml"))
    assert file.mode == 0o600
    assert file.user == (SERVICE_USER if host.user().name == "root" else host.user().name)


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


# The seeds' analytics queries, verbatim: seed 001's monitoring queries, seed 002's views.
ANALYTICS = [
    ("qlearning", "SELECT * FROM agent_performance_summary;"),
    ("qlearning", "SELECT * FROM pattern_effectiveness ORDER BY success_rate DESC LIMIT 10;"),
    (
        "qlearning",
        "SELECT agent_type, COUNT(*) as q_value_count, AVG(q_value) as avg_q_value, MAX(visit_count) as max_visits"
        " FROM q_values GROUP BY agent_type ORDER BY q_value_count DESC;",
    ),
    ("orchestrator", "SELECT * FROM v_active_agents WHERE current_tier >= 'gold' ORDER BY total_points DESC;"),
    ("orchestrator", "SELECT * FROM v_current_leaderboard WHERE category = 'overall' ORDER BY rank;"),
    ("orchestrator", "SELECT * FROM v_active_mentorships WHERE completion_percentage > 50;"),
    (
        "orchestrator",
        "SELECT * FROM v_agent_reputation WHERE trust_level IN ('excellent', 'outstanding')"
        " ORDER BY eigentrust_score DESC;",
    ),
    ("orchestrator", "SELECT * FROM v_task_queue_summary WHERE status = 'pending' ORDER BY priority DESC;"),
]


@pytest.mark.parametrize(("db", "query"), ANALYTICS, ids=[re.search(r"FROM (\w+)", q).group(1) for _, q in ANALYTICS])
def test_the_seeds_analytics_queries_run_on_a_replica(cstack, db, query):
    replica_ports = {m.port for m in cluster.members(cstack.local) if m.role != "leader"}
    # One transaction through the transaction pool: the query and where it ran share a server.
    with psycopg.connect(cstack.dsn(db, "readonly", "replica")) as conn:
        where = conn.execute("SELECT inet_server_port(), pg_is_in_recovery()").fetchone()
        cur = conn.execute(query)
        cur.fetchall()
    assert where[0] in replica_ports and where[1] is True, where
    assert cur.description, query


def test_bench_measures_lookups_through_the_replica_pool_beside_the_primary(cstack):
    from loadtests.bench import pgbench_scripts, replica_lookups

    agents = cstack.local.psql("qlearning", "SELECT agent_type FROM agent_types ORDER BY agent_type").split()
    result = replica_lookups(cstack, pgbench_scripts(agents)["qlearning.get_best_action"], seconds=3)
    assert sorted(result) == ["pgbouncer", "replica"]
    assert [(via, r["failed"]) for via, r in result.items() if r["tps"] <= 0 or r["failed"]] == []


def test_a_replica_refuses_writes(cstack):
    with (
        psycopg.connect(cstack.dsn("qlearning", "readonly", "replica"), autocommit=True) as conn,
        pytest.raises(psycopg.errors.ReadOnlySqlTransaction),
    ):
        conn.execute("CREATE TEMP TABLE t (x int)")


def test_up_again_changes_nothing_and_keeps_the_leader(cstack):
    before = _leader(cstack)
    result = cstack.cli("up")
    assert "ready: a leader, 2 replicas streaming" in result.stdout
    assert _leader(cstack).name == before.name


def test_switchover_to_an_unknown_node_is_refused_by_name(cstack):
    result = cstack.cli("switchover", "--to", "pg-9", check=False)
    assert result.returncode == 1
    assert "--to: no node 'pg-9'; nodes: pg-1, pg-2, pg-3" in result.stderr


def _upsert(cstack, state: str) -> None:
    with psycopg.connect(cstack.dsn("qlearning", "app", "pgbouncer"), autocommit=True) as conn:
        conn.execute("SELECT upsert_q_value('test-generator', %s, '{}', 'act', '{}', 0.5)", (state,))


def _rows(cstack, state: str) -> int:
    with psycopg.connect(cstack.dsn("qlearning", "app", "pgbouncer"), autocommit=True) as conn:
        return conn.execute("SELECT count(*) FROM q_values WHERE state_hash = %s", (state,)).fetchone()[0]


@pytest.mark.faults
def test_restore_rebuilds_the_cluster_at_the_target_time(cstack, report):
    taken = cstack.cli("backup", "--type", "full")
    # backup-standby=y: pgBackRest copies the files from a replica once it has replayed the backup's start.
    assert "replay on the standby reached" in taken.stdout, taken.stdout
    # pgBackRest keeps a backup's stop time in whole seconds and looks for one strictly before the
    # target: a target in the same second as the stop finds no backup set.
    time.sleep(2)
    tag = uuid.uuid4()
    before, after = f"restore-before-{tag}", f"restore-after-{tag}"
    _upsert(cstack, before)
    with psycopg.connect(cstack.dsn(None), autocommit=True) as conn:
        target = conn.execute("SELECT clock_timestamp()").fetchone()[0]
    time.sleep(1.5)
    _upsert(cstack, after)
    timeline = _leader(cstack).timeline
    start = time.monotonic()
    result = cstack.cli("restore", "--to", target.isoformat())
    took = time.monotonic() - start
    assert "ready: a leader, 2 replicas streaming" in result.stdout, result.stdout
    assert (_rows(cstack, before), _rows(cstack, after)) == (1, 0)
    members = cluster.members(cstack.local)
    assert sorted(m.role for m in members) == ["leader", "replica", "sync_standby"]
    assert [m.state for m in members if m.role != "leader"] == ["streaming", "streaming"]
    # The replicas were cloned from the restored leader: they stream its new timeline.
    assert {m.timeline for m in members} == {_leader(cstack).timeline} and _leader(cstack).timeline > timeline
    report["cluster_restore"] = {
        "fault": "agentdb restore --to a moment between two writes, on a 3-node cluster (full backup from a replica)",
        "row_before_target": "present",
        "row_after_target": "absent",
        "restore_s": round(took, 2),
    }


def test_the_leader_archives_its_wal(cstack):
    with psycopg.connect(cstack.dsn(None), autocommit=True) as conn:
        segment = conn.execute("SELECT pg_walfile_name(pg_current_wal_lsn())").fetchone()[0]
        conn.execute("SELECT pg_switch_wal()")

        def archived() -> bool:
            last = conn.execute("SELECT last_archived_wal FROM pg_stat_archiver").fetchone()[0]
            return last is not None and last >= segment

        wait_for(archived, f"WAL segment {segment} archived by pgBackRest", limit=30)


class ReadLoad:
    """Threads reading through the replica URL until stopped: each read's time and outcome."""

    def __init__(self, dsn: str, threads: int = 3):
        self.dsn = dsn
        self.ok: list[float] = []
        self.failed: list[float] = []
        self.stop = threading.Event()
        self._workers = [threading.Thread(target=self._work, daemon=True) for _ in range(threads)]

    def __enter__(self) -> ReadLoad:
        for worker in self._workers:
            worker.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for worker in self._workers:
            worker.join(timeout=30)

    def _work(self) -> None:
        conn = None
        while not self.stop.is_set():
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(self.dsn, connect_timeout=2, autocommit=True)
                conn.execute("SELECT count(*) FROM q_values").fetchone()
                self.ok.append(time.monotonic())
            except psycopg.Error:
                self.failed.append(time.monotonic())
                if conn is not None:
                    conn.close()
                time.sleep(0.05)
        if conn is not None:
            conn.close()


@pytest.mark.faults
def test_replica_crash_reads_keep_succeeding_around_it(cstack, report):
    replica = next(m for m in cluster.members(cstack.local) if m.role == "replica")
    patroni_pid = int(cstack.local._ctl("pid", replica.name).stdout.strip())
    postmaster_pid = _postmaster_pid(cstack, replica.name)
    with ReadLoad(cstack.dsn("qlearning", "readonly", "replica")) as reads:
        wait_for(lambda: len(reads.ok) >= 100, "100 reads before the crash")
        killed_at = time.monotonic()
        os.kill(patroni_pid, signal.SIGKILL)
        os.kill(postmaster_pid, signal.SIGKILL)
        time.sleep(5)
        ok_after = [t for t in reads.ok if t > killed_at]
        failed_after = [t for t in reads.failed if t > killed_at]
    last_failure = max(failed_after, default=killed_at)
    rejoin_s = cluster.wait_ready(cstack.local, progress=lambda _: None)
    report["cluster_replica_crash"] = {
        "fault": "kill -9 of an async replica's Patroni and postmaster during reads through the replica URL"
        " (3 clients via PgBouncer's <db>_replica pool)",
        "reads_ok_in_5s_after": len(ok_after),
        "reads_failed": len(failed_after),
        "reads_failing_for_s": round(last_failure - killed_at, 2),
        "replica_back_streaming_s": round(rejoin_s, 2),
    }
    # Reads on the crashed replica's server connections fail once; HAProxy routes the next ones around it.
    assert len(ok_after) > 10 * max(1, len(failed_after))
    assert last_failure - killed_at < 2


@pytest.mark.faults
def test_a_replica_held_back_beyond_replica_max_lag_gets_no_reads(cstack, report):
    lagging = next(m for m in cluster.members(cstack.local) if m.role == "replica")  # async: commits go on
    other = next(m for m in cluster.members(cstack.local) if m.role == "sync_standby")
    postmaster = psutil.Process(_postmaster_pid(cstack, lagging.name))
    (receiver,) = [p for p in postmaster.children() if "walreceiver" in " ".join(p.cmdline())]
    max_lag = cstack.settings.replica_max_lag

    def read_only(status: str) -> bool:
        lines = {(b.listener, b.node): b.status for b in cluster.backends(cstack.local)}
        return lines[("replicas", lagging.name)] == status

    receiver.send_signal(signal.SIGSTOP)  # it stops receiving WAL; the leader goes on writing
    try:
        with psycopg.connect(cstack.dsn(None), autocommit=True) as conn:
            # About 8 MB of WAL, well beyond replicaMaxLag (1 MiB by default).
            conn.execute(
                "CREATE TABLE lag_filler AS SELECT g, repeat('x', 100) AS pad FROM generate_series(1, 50000) g"
            )
        routed_around_s = wait_for(lambda: read_only("DOWN"), f"HAProxy to stop reading from {lagging.name}")
        lag = {m.name: m.lag for m in cluster.members(cstack.local)}[lagging.name]
        ports = set()
        for _ in range(20):
            with psycopg.connect(cstack.dsn("qlearning", "readonly", "replica"), autocommit=True) as conn:
                ports.add(conn.execute("SELECT inet_server_port()").fetchone()[0])
    finally:
        receiver.send_signal(signal.SIGCONT)
    back_s = wait_for(lambda: read_only("UP"), f"{lagging.name} back in the read-only pool")
    with psycopg.connect(cstack.dsn(None), autocommit=True) as conn:
        conn.execute("DROP TABLE lag_filler")
    report["cluster_replica_lag"] = {
        "fault": f"an async replica's WAL receiver stopped (SIGSTOP) while the leader wrote about 8 MB of WAL;"
        f" replicaMaxLag {max_lag} bytes",
        "lag_bytes_seen": lag,
        "out_of_read_pool_s": round(routed_around_s, 2),
        "reads_on_the_lagging_replica": sum(p == lagging.port for p in ports),
        "back_in_read_pool_s_after_resume": round(back_s, 2),
    }
    assert lag is not None and lag > max_lag
    assert ports == {other.port}


@pytest.mark.faults
def test_one_etcd_member_lost_the_leader_stays_and_serves_writes(cstack, report):
    before = _leader(cstack)
    ttl = cstack.settings.patroni_ttl
    cstack.local._ctl("stop", "etcd-3")
    try:
        with WriteLoad(cstack.dsn("qlearning", "app", "pgbouncer"), "etcdloss", threads=2) as load:
            # Longer than one leader lock: the leader had to renew it through the two members left.
            time.sleep(ttl + 2)
        assert _leader(cstack).name == before.name
        assert cluster.etcd_health(cstack.local) == {"etcd-1": "healthy", "etcd-2": "healthy", "etcd-3": "down"}
    finally:
        cstack.local._ctl("start", "etcd-3")
    lost = lost_writes(cstack.dsn("qlearning"), load.ledger)
    report["cluster_etcd_member_lost"] = {
        "fault": f"1 of 3 etcd members stopped for {ttl + 2} s (longer than the {ttl} s leader lock) during write load",
        "writes_acknowledged": load.ledger.acked(),
        "writes_lost": sum(map(len, lost.values())),
        "client_errors": len(load.ledger.errors),
        "leader_changed": False,
    }
    assert load.ledger.errors == []
    assert lost == {"q_values": [], "trajectories_with_rewards": []}
    cluster.wait_ready(cstack.local, progress=lambda _: None)


def _accepts_writes(cstack, node: str) -> bool:
    port = cstack.local.topology.unit(node).port_of("postgres")
    try:
        with psycopg.connect(_node_dsn(cstack, port), connect_timeout=2, autocommit=True) as conn:
            return conn.execute("SELECT NOT pg_is_in_recovery()").fetchone()[0]
    except psycopg.OperationalError:
        return False  # stopped: accepts nothing


def _reads_through_replica_url(cstack) -> bool:
    try:
        with psycopg.connect(cstack.dsn("qlearning", "readonly", "replica"), connect_timeout=2) as conn:
            conn.execute("SELECT count(*) FROM q_values").fetchone()
        return True
    except psycopg.Error:
        return False


@pytest.mark.faults
def test_etcd_quorum_lost_the_leader_demotes_and_comes_back(cstack, report):
    _leader(cstack)  # there is a leader to lose
    ttl = cstack.settings.patroni_ttl
    for member in ("etcd-2", "etcd-3"):
        cstack.local._ctl("stop", member)
    stopped_at = time.monotonic()
    try:
        with WriteLoad(cstack.dsn("qlearning", "app", "pgbouncer"), "quorumloss", threads=2) as load:
            # Patroni cannot renew the leader lock without a quorum: it demotes rather than risk two leaders.
            demoted_s = wait_for(
                lambda: load.ledger.first_error_after(stopped_at) is not None, "writes refused", limit=ttl + 15
            )
            time.sleep(2)
            acked_during = [t for t in load.ledger.ack_times if t > stopped_at + demoted_s + 1]
            writable = [node for node in NODES if _accepts_writes(cstack, node)]
            replica_reads = _reads_through_replica_url(cstack)
            # Quorum back while the clients still write: the ones PgBouncer holds finish, none hangs.
            for member in ("etcd-2", "etcd-3"):
                cstack.local._ctl("start", member)
            back_s = cluster.wait_ready(cstack.local, progress=lambda _: None)
            resumed_at = time.monotonic()
            wait_for(lambda: load.ledger.first_ack_after(resumed_at) is not None, "a write after the quorum is back")
    finally:
        for member in ("etcd-2", "etcd-3"):
            cstack.local._ctl("start", member)  # a no-op when they already run
    lost = lost_writes(cstack.dsn("qlearning"), load.ledger)
    report["cluster_etcd_quorum_lost"] = {
        "fault": "2 of 3 etcd members stopped during write load",
        "writes_acknowledged": load.ledger.acked(),
        "writes_lost": sum(map(len, lost.values())),
        "writes_refused_after_s": round(demoted_s, 2),
        "nodes_accepting_writes": len(writable),
        "reads_through_replica_url": "succeed" if replica_reads else "fail",
        "cluster_whole_again_s_after_quorum": round(back_s, 2),
    }
    assert writable == []
    assert acked_during == []
    assert lost == {"q_values": [], "trajectories_with_rewards": []}


def _longest_pause(ack_times: list[float], start: float, end: float) -> float:
    """The longest time without an acknowledged write between `start` and `end`."""
    times = sorted(t for t in ack_times if start <= t <= end)
    edges = [start, *times, end]
    return max(b - a for a, b in zip(edges, edges[1:], strict=False))


@pytest.mark.faults
@pytest.mark.parametrize("run", [1, 2, 3])
def test_switchover_under_write_load_loses_nothing_and_clients_only_wait(cstack, report, run):
    before = _leader(cstack)
    with WriteLoad(cstack.dsn("qlearning", "app", "pgbouncer"), f"switchover{run}") as load:
        wait_for(lambda: load.ledger.acked() >= 200, "200 acknowledged writes before the switchover")
        start = time.monotonic()
        result = cstack.cli("switchover")
        end = time.monotonic()
        acked_then = load.ledger.acked()
        wait_for(lambda: load.ledger.acked() >= acked_then + 200, "200 more writes after the switchover")
    after = _leader(cstack)
    assert after.name != before.name, result.stdout
    assert f"switchover: {after.name} serves writes through PgBouncer" in result.stdout
    held = re.search(r"writes waited in PgBouncer for ([\d.]+)s", result.stdout)
    assert held, result.stdout
    lost = lost_writes(cstack.dsn("qlearning"), load.ledger)
    pause = _longest_pause(load.ledger.ack_times, start, end + 5)
    report[f"cluster_switchover_{run}"] = {
        "fault": "agentdb switchover (planned) during upsert + trajectory/reward load (4 clients via PgBouncer)",
        "writes_acknowledged": load.ledger.acked(),
        "writes_lost": sum(map(len, lost.values())),
        "write_pause_s": round(pause, 2),
        "paused_in_pgbouncer_s": float(held.group(1)),
        "switchover_s": round(end - start, 2),
        "client_errors": len(load.ledger.errors),
    }
    assert lost == {"q_values": [], "trajectories_with_rewards": []}
    # PgBouncer held the writes while the leader changed: they waited, none failed.
    assert load.ledger.errors == []
    cluster.wait_ready(cstack.local, progress=lambda _: None)


@pytest.mark.faults
@pytest.mark.parametrize("run", [1, 2, 3])
def test_leader_crash_under_write_load_loses_nothing_and_the_old_leader_rejoins(cstack, report, run):
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
    report[f"cluster_leader_crash_{run}"] = {
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


@pytest.mark.faults
def test_leader_frozen_like_a_dead_machine_fails_over_after_the_lock_expires(cstack, report):
    """Every process of the leader stopped at once (SIGSTOP): nothing restarts it, nothing answers.

    Unlike a kill, supervisord sees no exit, so this is the machine that died: the replicas must wait
    for the leader lock to expire (ttl) before one of them takes over.
    """
    before = _leader(cstack)
    patroni = psutil.Process(int(cstack.local._ctl("pid", before.name).stdout.strip()))
    postmaster = psutil.Process(_postmaster_pid(cstack, before.name))
    frozen = [patroni, *patroni.children(recursive=True), postmaster, *postmaster.children(recursive=True)]
    try:
        with WriteLoad(cstack.dsn("qlearning", "app", "pgbouncer"), "leaderfreeze") as load:
            wait_for(lambda: load.ledger.acked() >= 200, "200 acknowledged writes before the freeze")
            frozen_at = time.monotonic()
            for process in frozen:
                process.send_signal(signal.SIGSTOP)
            wait_for(lambda: load.ledger.first_error_after(frozen_at) is not None, "an error caused by the freeze")
            limit = cstack.settings.patroni_ttl + 30
            wait_for(lambda: load.ledger.recovered_at() is not None, "a write after the freeze", limit=limit)
            acked_then = load.ledger.acked()
            wait_for(lambda: load.ledger.acked() >= acked_then + 200, "200 more writes after recovery")
    finally:
        # The machine comes back: its processes die, supervisord starts its Patroni again.
        for process in frozen:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.send_signal(signal.SIGKILL)
    recovery_s = load.ledger.recovered_at() - frozen_at
    after = _leader(cstack)
    lost = lost_writes(cstack.dsn("qlearning"), load.ledger)
    rejoin_s = cluster.wait_ready(cstack.local, progress=lambda _: None, timeout=120)
    report["cluster_leader_frozen"] = {
        "fault": "SIGSTOP of every process of the leader (Patroni, postmaster, backends), as a dead machine,"
        " during upsert + trajectory/reward load (4 clients via PgBouncer); then SIGKILL and restart",
        "writes_acknowledged": load.ledger.acked(),
        "writes_lost": sum(map(len, lost.values())),
        "recovery_s": round(recovery_s, 2),
        "ttl_s": cstack.settings.patroni_ttl,
        "old_leader_rejoined_s": round(rejoin_s, 2),
        "client_errors": len(load.ledger.errors),
    }
    assert after.name != before.name
    assert lost == {"q_values": [], "trajectories_with_rewards": []}
    assert {m.name: m.state for m in cluster.members(cstack.local)}[before.name] == "streaming"


@pytest.mark.faults
def test_pg_cron_runs_jobs_on_the_new_primary_after_a_failover(cstack):
    before = _leader(cstack)
    cstack.cli("failover")
    leader = _leader(cstack)
    assert leader.name != before.name
    with psycopg.connect(cstack.dsn(None), autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS cluster_cron_proof (port int, ran_at timestamptz DEFAULT now())")
        # A background worker has no client socket: the node names itself by its configured port.
        conn.execute(
            "SELECT cron.schedule('cluster-cron-proof', '* * * * *',"
            " $$INSERT INTO cluster_cron_proof (port) SELECT current_setting('port')::int$$)"
        )
        scheduled_at = conn.execute("SELECT now()").fetchone()[0]

        def ran_on_the_leader() -> bool:
            query = "SELECT count(*) FROM cluster_cron_proof WHERE port = %s AND ran_at > %s"
            return conn.execute(query, (leader.port, scheduled_at)).fetchone()[0] > 0

        try:
            # pg_cron 1.4 schedules by the minute: the job's first run is at most a minute away.
            wait_for(ran_on_the_leader, f"the cron job to run on the new primary {leader.name}", limit=75)
        finally:
            conn.execute("SELECT cron.unschedule('cluster-cron-proof')")
