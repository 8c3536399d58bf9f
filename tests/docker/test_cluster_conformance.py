"""The cluster in Docker: three Patroni nodes on PostgreSQL 17, three etcd members and HAProxy, exactly as
the Pulumi program declares them for a stack with `agentdb:replicas: 2` and synchronousMode on.

Writes go through PgBouncer to HAProxy's read-write port, reads through the `<db>_replica` pools to its
read-only port. Prometheus scrapes a postgres_exporter per node, Patroni and etcd; the leader archives
WAL over TLS to pgBackRest's repository host (its own container and volume), which takes a full backup
from a standby through the database side's pgBackRest server. The
last test partitions the leader from the network under write load, with a client-side ledger of
acknowledged writes (tests/faults/load.py), and prints its figures.
"""

from __future__ import annotations

import json
import re
import statistics
import time
import urllib.parse
import urllib.request

import dockerstack
import psycopg
import pytest
import testinfra

from infra import credentials as sec
from infra import render
from infra.databases import DATABASES
from infra.program.common import SERVICE_UID
from tests.faults.load import WriteLoad, lost_writes, wait_for

NODES = ["pg-1", "pg-2", "pg-3"]
PROBE_PGPASS = "/run/agentdb/probe.pgpass"  # the superuser's password for the write probe, never on a command line
MEMBERS = ["etcd-1", "etcd-2", "etcd-3"]
PGBACKREST = f"pgbackrest --config=/etc/agentdb/pgbackrest.conf --stanza={render.PGBACKREST_STANZA}"
BACKUP_PGPASS = "/etc/agentdb/secrets/pgbackrest.pgpass"  # pgbackrest-db's own, uploaded by the program
# The repository host's side: its configuration, in backup-scheduler (where backups run) and pgbackrest-repo.
REPO_PGBACKREST = f"pgbackrest --config=/var/lib/pgbackrest/pgbackrest.conf --stanza={render.PGBACKREST_STANZA}"


def settings(stack):
    return stack.deployment.settings


def rest(stack, node: str, path: str = "/cluster") -> dict:
    index = NODES.index(node)
    url = f"http://{stack.ip(node)}:{settings(stack).patroni_port + index}{path}"
    with urllib.request.urlopen(url, timeout=2) as resp:
        return json.load(resp)


def members(stack, asked: str | None = None) -> list[dict]:
    """Patroni's view of the cluster, from the first node that answers (or from `asked`)."""
    for node in [asked] if asked else NODES:
        try:
            return rest(stack, node)["members"]
        except OSError:
            continue
    return []


def leader(stack, exclude: str = "") -> str | None:
    names = [m["name"] for m in members(stack) if m["role"] == "leader" and m["name"] != exclude]
    return names[0] if names else None


def app_dsn(stack, key: str, replica: bool = False) -> str:
    s, db = settings(stack), DATABASES[key]
    user = db.readonly_role if replica else db.app_role
    name = f"{db.name}_replica" if replica else db.name
    password = stack.deployment.passwords()[user]
    return f"postgresql://{user}:{password}@{s.bind_address}:{s.pgbouncer_port}/{name}"


def haproxy_dsn(stack, dbname: str = "postgres", replica: bool = False) -> str:
    s = settings(stack)
    port = s.haproxy_replica_port if replica else s.haproxy_port
    password = stack.deployment.passwords()[sec.SUPERUSER]
    return f"postgresql://{sec.SUPERUSER}:{password}@{stack.ip('haproxy')}:{port}/{dbname}"


def streaming(stack) -> bool:
    view = members(stack)
    replicas = [m for m in view if m["role"] != "leader"]
    return len(view) == 3 and len(replicas) == 2 and all(m["state"] == "streaming" for m in replicas)


@pytest.fixture(scope="module")
def cluster(docker_cluster):
    wait_for(lambda: streaming(docker_cluster), "a leader and two streaming replicas", limit=120)
    return docker_cluster


def test_a_leader_and_two_replicas_streaming_one_of_them_synchronous(cluster):
    view = members(cluster)
    roles = sorted(m["role"] for m in view)
    assert roles == ["leader", "replica", "sync_standby"], view
    with psycopg.connect(haproxy_dsn(cluster)) as conn:
        rows = conn.execute("SELECT application_name, state, sync_state FROM pg_stat_replication").fetchall()
    assert sorted((name, state) for name, state, _ in rows) == sorted(
        (m["name"], "streaming") for m in view if m["role"] != "leader"
    )
    assert sorted(sync for *_, sync in rows) == ["async", "sync"]


@pytest.mark.parametrize("node", NODES)
def test_each_node_runs_patroni_and_postgresql_17_as_the_service_user(cluster, node):
    h = testinfra.get_host(f"docker://{cluster.container(node)}")
    patroni = h.process.filter(comm="patroni")
    postmaster = [p for p in h.process.filter(comm="postgres") if "-D" in p.args]
    # As PID 1 Patroni forks itself: the parent only reaps orphans (Patroni's own docker support).
    assert patroni and len(postmaster) == 1, f"{node}: {patroni} {postmaster}"
    assert {p.user for p in [*patroni, *postmaster]} == {"agentdb"}
    assert h.user().uid == SERVICE_UID
    version = h.check_output("/usr/lib/postgresql/17/bin/postgres --version")
    assert "PostgreSQL) 17." in version


@pytest.mark.parametrize("member", MEMBERS)
def test_each_etcd_member_is_healthy(cluster, member):
    index = MEMBERS.index(member)
    url = f"http://{cluster.ip(member)}:{settings(cluster).etcd_client_port + index}/health"
    with urllib.request.urlopen(url, timeout=2) as resp:
        assert json.load(resp)["health"] == "true"


def test_haproxy_routes_writes_to_the_leader_and_reads_to_replicas(cluster):
    with psycopg.connect(haproxy_dsn(cluster)) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone()[0] is False
    for _ in range(4):  # round robin over both replicas
        with psycopg.connect(haproxy_dsn(cluster, replica=True)) as conn:
            assert conn.execute("SELECT pg_is_in_recovery()").fetchone()[0] is True


def test_writes_through_pgbouncer_are_read_back_through_the_replica_pool(cluster):
    marker = f"docker-cluster-{time.time_ns()}"
    with psycopg.connect(app_dsn(cluster, "qlearning"), autocommit=True, prepare_threshold=None) as conn:
        conn.execute("SELECT upsert_q_value('test-generator', %s, '{}', 'act', '{}', 0.5)", (marker,))
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone()[0] is False

    def seen() -> bool:
        with psycopg.connect(app_dsn(cluster, "qlearning", replica=True), prepare_threshold=None) as conn:
            assert conn.execute("SELECT pg_is_in_recovery()").fetchone()[0] is True
            return bool(conn.execute("SELECT 1 FROM q_values WHERE state_hash = %s", (marker,)).fetchone())

    wait_for(seen, "the write on a replica", limit=10)


def prometheus(stack, path: str) -> dict:
    url = f"http://{stack.ip('prometheus')}:{settings(stack).prometheus_port}{path}"
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.load(resp)["data"]


def target_health(stack, job: str, label: str) -> dict[str, str]:
    """Prometheus' active targets of `job`: the `label` (node or member) of each -> up / down / unknown."""
    targets = prometheus(stack, "/api/v1/targets?state=active")["activeTargets"]
    return {t["labels"].get(label): t["health"] for t in targets if t["labels"]["job"] == job}


@pytest.mark.parametrize(
    ("job", "label", "expected"), [("postgres", "node", NODES), ("patroni", "node", NODES), ("etcd", "member", MEMBERS)]
)
def test_prometheus_has_every_target_of_the_cluster_up(cluster, job, label, expected):
    want = dict.fromkeys(expected, "up")
    try:
        wait_for(lambda: target_health(cluster, job, label) == want, f"every {job} target up", limit=60)
    finally:
        print(f"\n[docker-conformance] {job} targets: {target_health(cluster, job, label)}")


def test_each_node_s_exporter_reads_its_own_node(cluster):
    # pg_settings_port is the port of the server the exporter is connected to: each node's own, not HAProxy's.
    expected = {node: str(settings(cluster).postgres_port + i) for i, node in enumerate(NODES)}

    def ports() -> dict[str, str]:
        query = urllib.parse.quote("pg_settings_port and on(node) pg_up == 1")
        return {
            r["metric"]["node"]: r["value"][1] for r in prometheus(cluster, f"/api/v1/query?query={query}")["result"]
        }

    wait_for(lambda: ports() == expected, f"pg_settings_port per node {expected}", limit=60)


def write_probe_pgpass(stack, node: str) -> None:
    """The superuser's password as a 0600 file in the node's container, for psql and pgBackRest run there."""
    password = stack.deployment.passwords()[sec.SUPERUSER]
    dockerstack.docker(
        "exec",
        "-i",
        stack.container(node),
        "sh",
        "-c",
        f"umask 077 && cat > {PROBE_PGPASS}",
        input=f"*:*:*:{sec.SUPERUSER}:{password}\n".encode(),
    )


def test_pgbackrest_check_passes_on_the_leader(cluster):
    node = leader(cluster)
    assert node, "no leader"
    write_probe_pgpass(cluster, node)
    # `check` switches WAL on the primary and waits until the segment is in the repository: the leader's
    # own archive_command, over TLS to the repository host.
    result = testinfra.get_host(f"docker://{cluster.container(node)}").run(
        f"PGPASSFILE={PROBE_PGPASS} {PGBACKREST} check --log-level-console=info"
    )
    print(f"\n[docker-conformance] pgbackrest check on the leader {node}:\n{result.stdout}{result.stderr}")
    assert result.rc == 0 and "check repo1 archive for WAL (primary)" in result.stdout, result.stdout + result.stderr
    assert "successfully archived to '/var/lib/pgbackrest/repo/" in result.stdout, result.stdout
    # The leader's container sees only its own data directory, so pgBackRest there skips the standbys'
    # pg_control; pgbackrest-db, which mounts every node, checks a standby's configuration too.
    backup = testinfra.get_host(f"docker://{cluster.container('pgbackrest-db')}")
    result = backup.run(f"PGPASSFILE={BACKUP_PGPASS} {PGBACKREST} check --log-level-console=info")
    assert result.rc == 0 and "check repo1 (standby)" in result.stdout, result.stdout + result.stderr
    assert "WARN" not in result.stdout + result.stderr, result.stdout + result.stderr


def test_the_leader_archives_wal_to_the_shared_repository(cluster):
    with psycopg.connect(haproxy_dsn(cluster), autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS archive_probe (id int); DROP TABLE archive_probe")
        segment = conn.execute("SELECT pg_walfile_name(pg_current_wal_lsn())").fetchone()[0]
        conn.execute("SELECT pg_switch_wal()")

        def archiver() -> tuple:
            return conn.execute(
                "SELECT archived_count, last_archived_wal, last_archived_time, last_failed_time FROM pg_stat_archiver"
            ).fetchone()

        wait_for(lambda: (archiver()[1] or "") >= segment, f"WAL segment {segment} archived", limit=60)
        count, last, archived_at, failed_at = archiver()
    # Segments may have failed before pgbackrest-db created the stanza; none since.
    assert count > 0 and (failed_at is None or failed_at < archived_at), (count, last, archived_at, failed_at)
    repo = testinfra.get_host(f"docker://{cluster.container('pgbackrest-repo')}")
    (info,) = json.loads(repo.check_output(f"{REPO_PGBACKREST} info --output=json"))
    assert info["archive"][0]["max"] >= segment, info["archive"]
    print(
        f"\n[docker-conformance] archived through {last} ({count} segments); repository max {info['archive'][0]['max']}"
    )


def test_the_repository_host_copies_a_full_backup_from_a_standby(cluster):
    # What backup-scheduler runs at 01:00 UTC, run now, at detail level: every copied file is named with the
    # data directory pgbackrest-db read it from.
    primary = leader(cluster)
    backup = testinfra.get_host(f"docker://{cluster.container('backup-scheduler')}")
    start = time.monotonic()
    result = backup.run(f"{REPO_PGBACKREST} backup --type=full --log-level-console=detail")
    took = time.monotonic() - start
    assert result.rc == 0, result.stdout[-3000:] + result.stderr
    assert "replay on the standby reached" in result.stdout, result.stdout[-3000:]
    copied = re.findall(r"backup file (?:[\w-]+:)?/var/lib/agentdb/postgres/(pg-\d+)/", result.stdout)
    sources = {node: copied.count(node) for node in sorted(set(copied))}
    print(f"\n[docker-conformance] full backup in {took:.1f}s, leader {primary}, files copied from: {sources}")
    # backup-standby=y: the data files come from a replica; only what is not replicated comes from the primary.
    standby = max(sources, key=sources.get)
    assert standby != primary and sources[standby] > 10 * sources.get(primary, 0), sources
    (info,) = json.loads(backup.check_output(f"{REPO_PGBACKREST} info --output=json"))
    assert [b["type"] for b in info["backup"]][-1:] == ["full"] and info["status"]["code"] == 0, info


def old_leader_accepts_writes(stack, node: str) -> bool:
    """Whether PostgreSQL on `node` still acknowledges a write, asked inside its container over the socket.

    A primary that lost its synchronous standby takes the write but never acknowledges it: the commit
    waits, so `timeout` ends the client, as an application's own timeout would.
    """
    index = NODES.index(node)
    h = testinfra.get_host(f"docker://{stack.container(node)}")
    write = "CREATE TABLE partition_probe (id int); DROP TABLE partition_probe"
    result = h.run(
        f"PGPASSFILE={PROBE_PGPASS} PGCONNECT_TIMEOUT=2 timeout 5 /usr/lib/postgresql/17/bin/psql"
        f" -h /run/agentdb -p {settings(stack).postgres_port + index} -U {sec.SUPERUSER} -d postgres"
        f" -v ON_ERROR_STOP=1 -tAc '{write}'"
    )
    return result.rc == 0


def test_network_partition_of_the_leader_elects_a_new_one_and_loses_no_acknowledged_write(cluster):
    network = next(r for r in cluster.deployment.resources if r.type == "docker:index/network:Network")
    old = leader(cluster)
    assert old, "no leader before the partition"
    old_container = cluster.container(old)
    write_probe_pgpass(cluster, old)
    assert old_leader_accepts_writes(cluster, old), "the write probe fails on the healthy leader"
    net = network.inputs["name"]
    with WriteLoad(app_dsn(cluster, "qlearning"), tag=f"partition-{time.time_ns()}") as load:
        wait_for(lambda: load.ledger.acked() > 50, "writes before the partition")
        cut = time.monotonic()
        dockerstack.docker("network", "disconnect", net, old_container)
        try:
            # Cut off, the old leader cannot reach its synchronous standby: a write there is never acknowledged.
            wait_for(lambda: not old_leader_accepts_writes(cluster, old), "the old leader fenced", limit=90)
            fenced = time.monotonic() - cut
            wait_for(lambda: leader(cluster, exclude=old) is not None, "a new leader", limit=90)
            elected = time.monotonic() - cut
            wait_for(lambda: load.ledger.first_ack_after(cut + elected) is not None, "writes on the new leader")
            time.sleep(2)
        finally:
            dockerstack.docker("network", "connect", "--alias", old, net, old_container)
    recovered = load.ledger.recovered_at()
    lost = lost_writes(haproxy_dsn(cluster, DATABASES["qlearning"].name), load.ledger)
    gaps = [b - a for a, b in zip(load.ledger.ack_times, load.ledger.ack_times[1:], strict=False)]
    figures = {
        "acknowledged": load.ledger.acked(),
        "lost": sum(map(len, lost.values())),
        "new_leader_after_s": round(elected, 1),
        "old_leader_fenced_after_s": round(fenced, 1),
        "writes_back_after_s": round(recovered - cut, 1) if recovered else None,
        "longest_write_gap_s": round(max(gaps), 1) if gaps else None,
        "median_write_gap_ms": round(statistics.median(gaps) * 1000, 1) if gaps else None,
    }
    print(f"\n[docker-conformance] network partition of the leader {old}: {json.dumps(figures)}")
    assert lost == {"q_values": [], "trajectories_with_rewards": []}
    assert leader(cluster) != old
    # The old leader rejoins as a replica by itself once its network is back.
    wait_for(lambda: streaming(cluster), "the old leader streaming again", limit=120)
