"""The cluster in the Pulumi program: what a stack with replicas declares, read from infra/topology.py.

A stack with `agentdb:replicas: 2` (Pulumi.prod.yaml's, and a dev stack raised to 2 here) declares three
Patroni nodes with a volume each, three etcd members with a volume each and HAProxy; PgBouncer and the
schema resources reach the leader through HAProxy. Each node has its own postgres_exporter; every node
archives WAL over TLS to the repository host's container (its own volume), and pgbackrest-db mounts every
node's volume at the path pgbackrest.conf names. With replicas 0 nothing of the cluster is declared.
"""

from __future__ import annotations

import re
import tomllib

import pytest
import yaml
from mockstack import IMAGE, REPO, deploy, reveal, visible

from infra import render
from infra import topology as topo
from infra.program.backup import NODE_VOLUMES
from infra.program.common import ETCD_DATA, POSTGRES_MAJOR, REPO_VOLUME, SERVICE_UID, limits
from infra.settings import load

STACK = "dev"
EXTRA = {"agentdb:replicas": "2"}
NODES = ["pg-1", "pg-2", "pg-3"]
MEMBERS = ["etcd-1", "etcd-2", "etcd-3"]


@pytest.fixture(scope="module")
def cluster():
    """The dev stack file with replicas 2: (its settings, what the program declares)."""
    settings = load(STACK).model_copy(update={"replicas": 2})
    return settings, deploy(STACK, extra_config=EXTRA)


@pytest.fixture(scope="module")
def single(deployments):
    return deployments[STACK]


def volume_names(deployment) -> list[str]:
    return [r.inputs["name"] for r in deployment.resources if r.type == "docker:index/volume:Volume"]


def uploaded(container, name: str) -> str:
    return next(u["content"] for u in reveal(container.inputs["uploads"]) if u["file"] == f"/etc/agentdb/{name}")


def test_three_nodes_three_members_and_haproxy(cluster):
    _, deployment = cluster
    containers = deployment.containers()
    assert sorted(n for n in containers if n.startswith(("pg-", "etcd-", "haproxy"))) == [*MEMBERS, "haproxy", *NODES]
    assert "postgres" not in containers and "postgres-exporter" not in containers
    assert {"pgbackrest-repo", "pgbackrest-db", "backup-scheduler", "backup-checks"} <= set(containers)


def pgbackrest_conf(deployment, container: str = "pgbackrest-db") -> dict[str, str]:
    """The rendered pgbackrest.conf a container receives, as `key -> value` (every section's keys)."""
    lines = uploaded(deployment.containers()[container], "pgbackrest.conf").splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))


@pytest.mark.parametrize("member", MEMBERS)
def test_each_member_has_its_own_volume(cluster, member):
    _, deployment = cluster
    volume = f"agentdb-{STACK}-{member}-data"
    assert volume in volume_names(deployment)
    assert deployment.containers()[member].inputs["volumes"] == [{"volumeName": volume, "containerPath": ETCD_DATA}]


@pytest.mark.parametrize("index", [1, 2, 3])
def test_each_node_has_its_volume_shares_the_socket_directory_and_archives_to_the_repository_host(cluster, index):
    settings, deployment = cluster
    layout = render.Layout.docker(settings, POSTGRES_MAJOR)
    node = f"pg-{index}"
    conf = pgbackrest_conf(deployment, node)
    assert conf[f"pg{index}-path"] == f"{layout.data_root}/{node}"  # the data directory, inside its volume
    mounts = {m["volumeName"]: m["containerPath"] for m in deployment.containers()[node].inputs["volumes"]}
    assert mounts == {
        f"agentdb-{STACK}-{node}-data": layout.data_root,
        # Every node's socket in one directory (each named by its own port) ...
        f"agentdb-{STACK}-postgres-run-data": conf[f"pg{index}-socket-path"],
    }
    # The leader's archive_command pushes to the repository host over TLS, whoever the leader is.
    assert conf["repo1-host"] == "pgbackrest-repo" and conf["repo1-host-type"] == "tls"
    repo = deployment.containers()["pgbackrest-repo"]
    assert repo.urn in deployment.containers()[node].dependencies
    assert {m["volumeName"] for m in repo.inputs["volumes"]} == {f"agentdb-{STACK}-{REPO_VOLUME}-data"}


@pytest.mark.parametrize("index", [1, 2, 3])
def test_a_node_runs_patroni_on_its_file_with_its_rest_health_check(cluster, index):
    settings, deployment = cluster
    node = deployment.containers()[f"pg-{index}"].inputs
    assert node["command"] == ["patroni", f"/etc/agentdb/patroni-pg-{index}.yml"]
    assert node["image"].startswith("agentdb/patroni:")
    rest = settings.patroni_port + index - 1
    assert node["healthcheck"]["tests"] == ["CMD", "curl", "-fsS", "-o", "/dev/null", f"http://127.0.0.1:{rest}/health"]
    patroni = uploaded(deployment.containers()[f"pg-{index}"], f"patroni-pg-{index}.yml")
    assert f"connect_address: pg-{index}:{settings.postgres_port + index - 1}" in patroni
    assert f"connect_address: pg-{index}:{rest}" in patroni
    upload = next(u for u in node["uploads"] if u["file"].endswith(f"patroni-pg-{index}.yml"))
    assert upload["permissions"] == "0600"


@pytest.mark.parametrize("index", [1, 2, 3])
def test_a_member_runs_etcd_in_a_three_member_cluster(cluster, index):
    settings, deployment = cluster
    member = deployment.containers()[f"etcd-{index}"].inputs
    client, peer = settings.etcd_client_port + index - 1, settings.etcd_peer_port + index - 1
    command = member["command"]
    assert command[0] == "etcd" and f"--name=etcd-{index}" in command
    assert f"--listen-client-urls=http://0.0.0.0:{client}" in command
    assert f"--initial-advertise-peer-urls=http://etcd-{index}:{peer}" in command
    peers = ",".join(f"etcd-{i}=http://etcd-{i}:{settings.etcd_peer_port + i - 1}" for i in (1, 2, 3))
    assert f"--initial-cluster={peers}" in command
    assert member["healthcheck"]["tests"][-1] == f"http://127.0.0.1:{client}/health"


def test_haproxy_routes_by_its_rendered_file_and_dependents_wait_for_it(cluster):
    settings, deployment = cluster
    containers = deployment.containers()
    haproxy = containers["haproxy"]
    assert haproxy.inputs["command"] == ["haproxy", "-W", "-db", "-f", "/etc/agentdb/haproxy.cfg"]
    assert haproxy.inputs["healthcheck"]["tests"][-1] == str(settings.haproxy_port)
    assert haproxy.inputs["wait"]
    assert {containers[n].urn for n in NODES} <= set(haproxy.dependencies)
    config = uploaded(haproxy, "haproxy.cfg")
    for index, node in enumerate(NODES, 1):
        postgres, rest = settings.postgres_port + index - 1, settings.patroni_port + index - 1
        server = f"server {node} {node}:{postgres} check port {rest}"
        assert config.count(server) == 2  # in the read-write and the read-only listener


def test_pgbouncer_pools_point_at_haproxy_read_write_and_read_only_ports(cluster):
    settings, deployment = cluster
    pgbouncer = deployment.containers()["pgbouncer"]
    assert deployment.containers()["haproxy"].urn in pgbouncer.dependencies
    ini = uploaded(pgbouncer, "pgbouncer.ini")
    for db in settings.enabled:
        assert re.search(rf"^{db.name} = host=haproxy port={settings.haproxy_port} ", ini, re.M)
        assert re.search(rf"^{db.name}_replica = host=haproxy port={settings.haproxy_replica_port} ", ini, re.M)


def test_schema_reaches_the_leader_through_haproxy(cluster):
    settings, deployment = cluster
    baseline = next(r for r in deployment.resources if r.name == "schema-baseline")
    assert deployment.containers()["haproxy"].urn in baseline.dependencies
    assert f":{settings.haproxy_port}/postgres" in reveal(baseline.inputs["admin_dsn"])


@pytest.mark.parametrize("index", [1, 2, 3])
def test_each_node_has_a_postgres_exporter_reading_that_node(cluster, index):
    settings, deployment = cluster
    containers = deployment.containers()
    exporter = containers[f"postgres-exporter-pg-{index}"]
    inputs = exporter.inputs
    port = settings.postgres_exporter_port + index - 1  # the topology's rule: base + index - 1
    # Its own node's PostgreSQL, not HAProxy's: a replica's lag and statistics exist only on that replica.
    uri = f"DATA_SOURCE_URI=pg-{index}:{settings.postgres_port + index - 1}/postgres?sslmode=disable"
    assert uri in inputs["envs"]
    assert f"--web.listen-address=0.0.0.0:{port}" in inputs["command"]
    assert inputs["healthcheck"]["tests"] == [
        "CMD",
        "curl",
        "-fsS",
        "-o",
        "/dev/null",
        f"http://127.0.0.1:{port}/metrics",
    ]
    assert inputs["restart"] == "unless-stopped" and inputs["user"] == str(SERVICE_UID)
    small = limits(settings)["postgres-exporter"]
    assert (inputs["memory"], float(inputs["cpus"])) == (small.memory_mb, small.cpus)
    assert containers[f"pg-{index}"].urn in exporter.dependencies
    assert exporter.urn in containers["prometheus"].dependencies
    # The monitoring role's password arrives as a 0600 file, never in the environment or the command.
    secret = next(u for u in inputs["uploads"] if u["file"].endswith("/secrets/agentdb_monitor"))
    assert secret["permissions"] == "0600"
    exposed = str([inputs["envs"], inputs["command"], inputs["healthcheck"]])
    assert not [name for name, pw in deployment.passwords().items() if pw in exposed]


def test_prometheus_scrapes_each_node_s_exporter_patroni_and_etcd(cluster):
    settings, deployment = cluster
    config = uploaded(deployment.containers()["prometheus"], "prometheus.yml")
    for index, node in enumerate(NODES, 1):
        exporter = f'"postgres-exporter-{node}:{settings.postgres_exporter_port + index - 1}"'
        assert f'- targets: [{exporter}]\n        labels: {{node: "{node}"}}' in config
        assert f'"{node}:{settings.patroni_port + index - 1}"' in config
    for index, member in enumerate(MEMBERS, 1):
        assert f'"{member}:{settings.etcd_client_port + index - 1}"' in config


def test_the_database_side_pgbackrest_server_sees_every_node_where_pgbackrest_conf_names_it(cluster):
    settings, deployment = cluster
    layout = render.Layout.docker(settings, POSTGRES_MAJOR)
    backup = deployment.containers()["pgbackrest-db"]
    conf = pgbackrest_conf(deployment)
    repo_conf = dict(
        line.split("=", 1)
        for line in next(
            u["content"]
            for u in reveal(deployment.containers()["backup-scheduler"].inputs["uploads"])
            if u["file"] == f"{layout.repo_home}/pgbackrest.conf"
        ).splitlines()
        if "=" in line and not line.startswith("#")
    )
    # The repository host takes the backups from a replica, reading every node through pgbackrest-db.
    assert repo_conf["backup-standby"] == "y"
    assert [repo_conf[f"pg{i}-host"] for i in (1, 2, 3)] == ["pgbackrest-db"] * 3
    mounts = {m["volumeName"]: m["containerPath"] for m in backup.inputs["volumes"]}
    assert mounts[f"agentdb-{STACK}-postgres-run-data"] == conf["pg1-socket-path"]
    assert not any(REPO_VOLUME in name for name in mounts)
    script = backup.inputs["command"][-1]
    for index, node in enumerate(NODES, 1):
        volume = mounts[f"agentdb-{STACK}-{node}-data"]
        assert volume == f"{NODE_VOLUMES}/{node}"
        # The node mounts its volume at the data root: its data directory is `<node>` inside the volume.
        assert conf[f"pg{index}-path"] == f"{layout.data_root}/{node}"
        assert f"ln -sfn {volume}/{node} {conf[f'pg{index}-path']} && " in script
    # The stanza (once HAProxy reaches the leader) before the server.
    assert script.index("stanza-create") < script.index("exec pgbackrest --config=/etc/agentdb/pgbackrest.conf server")
    assert "export PGPASSFILE=/etc/agentdb/secrets/pgbackrest.pgpass && " in script
    assert deployment.containers()["haproxy"].urn in backup.dependencies


def test_the_database_side_of_a_single_server_mounts_its_volumes_and_the_repository_has_its_own(single):
    backup = single.containers()["pgbackrest-db"].inputs
    assert [m["volumeName"] for m in backup["volumes"]] == [
        f"agentdb-{STACK}-postgres-data",
        f"agentdb-{STACK}-postgres-run-data",
    ]
    # Only the repository host's side (its server and the backup schedule) mounts the repository.
    mounting = {
        name
        for name, c in single.containers().items()
        if any(m["volumeName"] == f"agentdb-{STACK}-{REPO_VOLUME}-data" for m in c.inputs.get("volumes") or [])
    }
    assert mounting == {"pgbackrest-repo", "backup-scheduler"}


def test_the_cluster_images_are_built_only_for_a_cluster(cluster, single):
    def built(deployment):
        return {r.name.removeprefix("images-") for r in deployment.of_type(IMAGE)}

    assert {"patroni", "etcd", "haproxy"} <= built(cluster[1]) and "postgres" not in built(cluster[1])
    assert "postgres" in built(single) and not {"patroni", "etcd", "haproxy"} & built(single)


def test_replicas_0_declares_no_cluster(single):
    assert not topo.build(load(STACK)).clustered
    containers = single.containers()
    assert "postgres" in containers and "pgbackrest-repo" in containers
    assert not any(name.startswith(("pg-", "etcd-", "haproxy")) for name in containers)
    assert f"agentdb-{STACK}-postgres-data" in volume_names(single)


def test_the_patroni_image_pins_the_venv_s_patroni():
    pins = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    venv = next(p for p in pins if p.startswith("patroni")).split("==")[1]
    dockerfile = (REPO / "docker" / "patroni" / "Dockerfile").read_text()
    assert f"ARG PATRONI_VERSION={venv}\n" in dockerfile


@pytest.mark.parametrize(
    ("service", "path"),
    [
        ("pgbackrest-repo", "/var/lib/pgbackrest/tls/repo.key"),
        ("backup-scheduler", "/var/lib/pgbackrest/tls/repo.key"),
        ("pgbackrest-db", "/etc/agentdb/secrets/pgbackrest-db.key"),
        ("backup-checks", "/etc/agentdb/secrets/pgbackrest-db.key"),
        ("postgres", "/etc/agentdb/secrets/pgbackrest-db.key"),
    ],
)
def test_each_side_gets_its_own_key_from_one_certificate_resource_as_a_secret_0600_file(single, service, path):
    (certificates,) = [r for r in single.resources if r.name == "backup-tls"]
    assert set(certificates.inputs["dns"]) == {"pgbackrest-repo", "pgbackrest-db"}
    upload = next(u for u in single.containers()[service].raw["uploads"] if u.get("file") == path)
    assert visible(upload)["content"] == "<secret>", f"{service}: {path} is not a secret input"
    (revealed,) = [u for u in reveal(single.containers()[service].inputs["uploads"]) if u["file"] == path]
    assert revealed["permissions"] == "0600" and revealed["content"].startswith("-----BEGIN PRIVATE KEY-----")


@pytest.mark.parametrize(
    ("entry", "declared"),
    [
        ({"type": "posix", "path": "/srv/backup2"}, True),
        ({"type": "s3", "endpoint": "s3.example.com", "bucket": "b", "region": "r"}, False),
        ({"type": "host", "host": "backup2", "caFile": "/c", "certFile": "/d", "keyFile": "/k"}, False),
    ],
)
def test_a_second_repository_is_a_volume_of_the_repository_host_or_refused_by_name(tmp_path, entry, declared):
    doc = yaml.safe_load((REPO / f"Pulumi.{STACK}.yaml").read_text())
    doc["config"]["agentdb:backupRepos"] = [entry]
    path = tmp_path / f"Pulumi.{STACK}.yaml"
    path.write_text(yaml.safe_dump(doc))
    if not declared:
        with pytest.raises(Exception, match=rf"agentdb:backupRepos\[0\]: type '{entry['type']}' is not supported"):
            deploy(STACK, path)
        return
    containers = deploy(STACK, path).containers()
    for service in ("pgbackrest-repo", "backup-scheduler"):
        mounts = {m["volumeName"]: m["containerPath"] for m in containers[service].inputs["volumes"]}
        assert mounts[f"agentdb-{STACK}-pgbackrest-repo2-data"] == "/srv/backup2"
    conf = next(
        u["content"]
        for u in reveal(containers["pgbackrest-repo"].inputs["uploads"])
        if u["file"].endswith("pgbackrest.conf")
    )
    assert "repo2-path=/srv/backup2" in conf.splitlines()
