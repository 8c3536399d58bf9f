"""The cluster in the Pulumi program: what a stack with replicas declares, read from infra/topology.py.

A stack with `agentdb:replicas: 2` (Pulumi.prod.yaml's, and a dev stack raised to 2 here) declares three
Patroni nodes with a volume each, three etcd members with a volume each and HAProxy; PgBouncer and the
schema resources reach the leader through HAProxy. With replicas 0 nothing of the cluster is declared.
"""

from __future__ import annotations

import re
import tomllib

import pytest
from mockstack import IMAGE, REPO, deploy, reveal

from infra import render
from infra import topology as topo
from infra.program.common import ETCD_DATA, POSTGRES_MAJOR
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
    assert "postgres" not in containers and "backup" not in containers


@pytest.mark.parametrize("unit", [*NODES, *MEMBERS])
def test_each_node_and_member_has_its_own_volume(cluster, unit):
    settings, deployment = cluster
    data_root = render.Layout.docker(settings, POSTGRES_MAJOR).data_root
    volume = f"agentdb-{STACK}-{unit}-data"
    assert volume in volume_names(deployment)
    mounts = deployment.containers()[unit].inputs["volumes"]
    path = data_root if unit.startswith("pg-") else ETCD_DATA
    assert mounts == [{"volumeName": volume, "containerPath": path}]


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


def test_schema_and_exporter_reach_the_leader_through_haproxy(cluster):
    settings, deployment = cluster
    baseline = next(r for r in deployment.resources if r.name == "schema-baseline")
    assert deployment.containers()["haproxy"].urn in baseline.dependencies
    assert f":{settings.haproxy_port}/postgres" in reveal(baseline.inputs["admin_dsn"])
    exporter = deployment.containers()["postgres-exporter"].inputs
    assert f"DATA_SOURCE_URI=haproxy:{settings.haproxy_port}/postgres?sslmode=disable" in exporter["envs"]


def test_prometheus_scrapes_patroni_and_etcd(cluster):
    settings, deployment = cluster
    config = uploaded(deployment.containers()["prometheus"], "prometheus.yml")
    for index, node in enumerate(NODES, 1):
        assert f'"{node}:{settings.patroni_port + index - 1}"' in config
    for index, member in enumerate(MEMBERS, 1):
        assert f'"{member}:{settings.etcd_client_port + index - 1}"' in config


def test_the_cluster_images_are_built_only_for_a_cluster(cluster, single):
    def built(deployment):
        return {r.name.removeprefix("images-") for r in deployment.of_type(IMAGE)}

    assert {"patroni", "etcd", "haproxy"} <= built(cluster[1]) and "postgres" not in built(cluster[1])
    assert "postgres" in built(single) and not {"patroni", "etcd", "haproxy"} & built(single)


def test_replicas_0_declares_no_cluster(single):
    assert not topo.build(load(STACK)).clustered
    containers = single.containers()
    assert "postgres" in containers and "backup" in containers
    assert not any(name.startswith(("pg-", "etcd-", "haproxy")) for name in containers)
    assert f"agentdb-{STACK}-postgres-data" in volume_names(single)


def test_the_patroni_image_pins_the_venv_s_patroni():
    pins = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    venv = next(p for p in pins if p.startswith("patroni")).split("==")[1]
    dockerfile = (REPO / "docker" / "patroni" / "Dockerfile").read_text()
    assert f"ARG PATRONI_VERSION={venv}\n" in dockerfile
