"""The topology: what runs for a stack's settings, said once, with its ports and health checks.

The expected unit lists are written out by hand per mode, so the tests do not merely restate the code.
"""

from __future__ import annotations

import pytest

from infra import topology
from infra.settings import Settings, SettingsError, parse

SINGLE = [
    "postgres",
    "pgbouncer",
    "redis",
    "postgres_exporter",
    "pgbouncer_exporter",
    "redis_exporter",
    "webhook",
    "alertmanager",
    "prometheus",
    "pgbackrest_repo",
    "pgbackrest_db",
    "backup_scheduler",
    "backup_checks",
]
CLUSTER_OF_2 = [
    "etcd-1",
    "etcd-2",
    "etcd-3",
    "pg-1",
    "pg-2",
    "haproxy",
    "pgbouncer",
    "redis",
    "postgres_exporter-pg-1",
    "postgres_exporter-pg-2",
    *SINGLE[4:],
]
CLUSTER_OF_3 = [
    "etcd-1",
    "etcd-2",
    "etcd-3",
    "pg-1",
    "pg-2",
    "pg-3",
    "haproxy",
    "pgbouncer",
    "redis",
    "postgres_exporter-pg-1",
    "postgres_exporter-pg-2",
    "postgres_exporter-pg-3",
    *SINGLE[4:],
]


@pytest.mark.parametrize(
    ("replicas", "expected"),
    [(0, SINGLE), (1, CLUSTER_OF_2), (2, CLUSTER_OF_3)],
    ids=["single", "two-nodes", "three-nodes"],
)
def test_units_per_mode(replicas, expected):
    assert [u.name for u in topology.build(Settings(replicas=replicas)).units] == expected


@pytest.mark.parametrize(("tools", "expected"), [(False, SINGLE), (True, [*SINGLE, "pgadmin"])], ids=["off", "on"])
def test_pgadmin_runs_only_with_tools(tools, expected):
    assert [u.name for u in topology.build(Settings(tools=tools)).units] == expected


def test_pgadmin_unit_listens_on_its_setting_and_starts_after_pgbouncer():
    unit = topology.build(Settings(tools=True, pgadmin_port=5151)).unit("pgadmin")
    assert (unit.port, unit.ports[0].key) == (5151, "agentdb:pgadminPort")
    assert unit.health == topology.Health("http", 5151, "/misc/ping")
    assert unit.after == ("pgbouncer",) and unit.data == "pgadmin"


def test_replicas_0_is_todays_stack_on_todays_ports():
    s = Settings()
    t = topology.build(s)
    assert not t.clustered and t.replica_port is None
    assert t.primary_port == s.postgres_port == 5432
    ports = {u.name: u.port for u in t.units}
    assert ports == {
        "postgres": 5432,
        "pgbouncer": 6432,
        "redis": 6379,
        "postgres_exporter": 9187,
        "pgbouncer_exporter": 9127,
        "redis_exporter": 9121,
        "webhook": 9095,
        "alertmanager": 9093,
        "prometheus": 9090,
        "pgbackrest_repo": 8432,
        "pgbackrest_db": 8442,
        "backup_scheduler": 0,
        "backup_checks": 9199,
    }


@pytest.mark.parametrize(
    ("unit", "role", "port"),
    [
        ("pg-1", "postgres", 5432),
        ("pg-2", "postgres", 5433),
        ("pg-3", "postgres", 5434),
        ("pg-1", "rest", 8008),
        ("pg-3", "rest", 8010),
        ("etcd-1", "client", 2379),
        ("etcd-3", "client", 2381),
        ("etcd-1", "peer", 2382),
        ("etcd-3", "peer", 2384),
        ("haproxy", "primary", 5000),
        ("haproxy", "replica", 5001),
        ("postgres_exporter-pg-1", "postgres_exporter", 9187),
        ("postgres_exporter-pg-3", "postgres_exporter", 9189),
    ],
)
def test_cluster_ports_are_base_plus_index(unit, role, port):
    assert topology.build(Settings(replicas=2)).unit(unit).port_of(role) == port


@pytest.mark.parametrize(("replicas", "targets"), [(0, ["postgres"]), (2, ["pg-1", "pg-2", "pg-3"])])
def test_a_postgres_exporter_reads_each_postgresql(replicas, targets):
    exporters = topology.build(Settings(replicas=replicas)).of_kind("postgres_exporter")
    assert [(e.target, e.after) for e in exporters] == [(t, (t,)) for t in targets]


def test_cluster_endpoints_are_haproxys_ports():
    t = topology.build(Settings(replicas=2, haproxy_port=7000, haproxy_replica_port=7001))
    assert (t.primary_port, t.replica_port) == (7000, 7001)
    assert t.unit("pgbouncer").after == ("haproxy",)


@pytest.mark.parametrize(
    ("unit", "kind", "port", "path"),
    [
        ("etcd-2", "http", 2380, "/health"),
        ("pg-2", "http", 8009, "/health"),
        ("haproxy", "postgres", 5000, ""),
        ("pgbouncer", "pgbouncer", 6432, ""),
        ("backup_checks", "http", 9199, "/metrics"),
        ("backup_scheduler", "process", 0, ""),
        ("pgbackrest_repo", "tcp", 8432, ""),
    ],
)
def test_health_checks_are_data(unit, kind, port, path):
    health = topology.build(Settings(replicas=2)).unit(unit).health
    assert (health.kind, health.port, health.path) == (kind, port, path)


def test_start_order_follows_after():
    t = topology.build(Settings(replicas=2))
    assert [t.depth(n) for n in ("etcd-1", "pg-1", "haproxy", "pgbouncer", "pgbouncer_exporter")] == [0, 1, 2, 3, 4]


def test_each_node_and_member_has_its_own_data_directory_and_file():
    t = topology.build(Settings(replicas=2))
    assert [n.data for n in t.nodes] == ["pg-1", "pg-2", "pg-3"]
    assert [n.files for n in t.nodes] == [("patroni-pg-1.yml",), ("patroni-pg-2.yml",), ("patroni-pg-3.yml",)]
    assert [m.data for m in t.members] == ["etcd-1", "etcd-2", "etcd-3"]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"agentdb:replicas": 2, "agentdb:patroniPort": 5433},
            "pg-1 and pg-2 both use port 5433 (agentdb:patroniPort and agentdb:postgresPort)",
        ),
        (
            {"agentdb:replicas": 1, "agentdb:etcdPeerPort": 2380},
            "etcd-1 and etcd-2 both use port 2380 (agentdb:etcdPeerPort and agentdb:etcdClientPort)",
        ),
        (
            {"agentdb:replicas": 1, "agentdb:haproxyPort": 6432},
            "haproxy and pgbouncer both use port 6432 (agentdb:haproxyPort and agentdb:pgbouncerPort)",
        ),
        ({"agentdb:replicas": 2, "agentdb:postgresPort": 65534}, "pg-3's postgres port 65536"),
        ({"agentdb:grafanaPort": 6379}, "redis and grafana both use port 6379"),
        (
            {"agentdb:tools": True, "agentdb:pgadminPort": 9090},
            "prometheus and pgadmin both use port 9090 (agentdb:prometheusPort and agentdb:pgadminPort)",
        ),
    ],
)
def test_cluster_port_conflicts_name_both_keys(config, message):
    with pytest.raises(SettingsError) as err:
        parse(config)
    assert message in str(err.value)


@pytest.mark.parametrize(
    "config",
    [
        {"agentdb:patroniPort": 5433},  # Patroni does not run without replicas
        {"agentdb:haproxyPort": 6432 + 1, "agentdb:etcdClientPort": 5432},
        {"agentdb:pgadminPort": 9090},  # pgAdmin does not run without agentdb:tools
    ],
)
def test_cluster_ports_are_free_to_clash_when_no_cluster_runs(config):
    assert parse(config).replicas == 0
