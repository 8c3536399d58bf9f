"""The Docker conformance run's session: images built, the declared containers up, the schema applied.

Collected only when AGENTDB_DOCKER=1 (scripts/docker-conformance.sh sets it, after starting dockerd
and making the Debian base image); `make test` skips these tests.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

import dockerstack  # noqa: E402
from mockstack import REPO, deploy  # noqa: E402

from infra.program import schema  # noqa: E402
from infra.settings import Settings  # noqa: E402

STACK = "conformance"
CLUSTER_STACK = "conformance-cluster"
ENABLED = os.environ.get("AGENTDB_DOCKER") == "1"
PROVIDERS = {
    "baseline": schema.BaselineProvider,
    "migrations": schema.MigrationsProvider,
    "cron": schema.CronJobsProvider,
}


def pytest_collection_modifyitems(config, items):
    skip = pytest.mark.skip(reason="the Docker conformance run: scripts/docker-conformance.sh (make test-docker)")
    for item in items:
        if "/tests/docker/" in str(item.fspath):
            item.add_marker(pytest.mark.docker)
            if not ENABLED:
                item.add_marker(skip)


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def stack_file(directory: Path, stack: str = STACK, overrides: dict | None = None) -> Path:
    """The dev stack file on free ports and quick scrapes, so the run never collides with a real stack."""
    from pydantic.alias_generators import to_camel

    doc = yaml.safe_load((REPO / "Pulumi.dev.yaml").read_text())
    config = doc["config"]
    names = list(Settings().ports())
    for name, port in zip(names, free_ports(len(names)), strict=True):
        config[f"agentdb:{to_camel(name + '_port')}"] = port
    config.update({"agentdb:memoryMb": 1024, "agentdb:scrapeIntervalS": 2, "agentdb:alertForScale": 0.05})
    # The repository encrypted at rest, as staging and prod have it (dev's own default is off).
    config["agentdb:backupEncryption"] = True
    # pgAdmin's image (pip inside the build) is not part of this run yet: its container is checked under
    # Pulumi's mocks (tests/pulumi) and pgAdmin itself by tests/tools on the local runner.
    config["agentdb:tools"] = False
    if os.environ.get("AGENTDB_DOCKER_TLS") == "1":  # the staging / prod path: TLS on PostgreSQL and PgBouncer
        config["agentdb:tls"] = True
    config.update(overrides or {})
    path = directory / f"Pulumi.{stack}.yaml"
    path.write_text(yaml.safe_dump({"config": config}))
    return path


def kind_of(resource) -> str:
    return resource.name.rsplit("-", 1)[-1]


def apply_schema(stack: dockerstack.DockerStack) -> dict[str, dict]:
    """Call each declared schema resource's provider `create`, in declaration order, as `pulumi up` would."""
    outs = {}
    order = list(PROVIDERS)  # baseline, then migrations, then cron jobs: the declared dependencies
    # The schema's resources (the certificates' dynamic resource was created under the mocks already).
    schema_resources = [r for r in stack.deployment.of_type(dockerstack.DYNAMIC) if kind_of(r) in PROVIDERS]
    resources = sorted(schema_resources, key=lambda r: order.index(kind_of(r)))
    for resource in resources:
        kind = kind_of(resource)
        props = {k: v for k, v in resource.inputs.items() if not k.startswith("__") and v is not None}
        props["admin_dsn"] = stack.real_dsn(props["admin_dsn"])
        start = time.monotonic()
        outs[resource.name] = PROVIDERS[kind]().create(props).outs
        dockerstack.log(f"{resource.name} applied in {time.monotonic() - start:.1f}s")
    return outs


def cluster_overrides() -> dict:
    """A three-node cluster sized for this 2-core machine: small memory, Patroni's shortest lock ttl.

    Node and member ports stay inside their containers (each has its own address), so the defaults
    serve, below the free ports' range: node and member N use base + N - 1. HAProxy's two are
    published (the dev stack publishes PostgreSQL's endpoints) beside PgBouncer's, on free ports.
    """
    rw, ro = free_ports(2)
    defaults = Settings()
    return {
        **{
            f"agentdb:{key}": getattr(defaults, name)
            for key, name in (
                ("postgresPort", "postgres_port"),
                ("patroniPort", "patroni_port"),
                ("etcdClientPort", "etcd_client_port"),
                ("etcdPeerPort", "etcd_peer_port"),
            )
        },
        "agentdb:replicas": 2,
        "agentdb:synchronousMode": True,
        "agentdb:memoryMb": 512,
        # Three exporters, three Patronis and three etcds scraped on 2 cores: with scrapes every 2 s and a
        # busy machine, the leader's REST answers passed HAProxy's 1 s check timeout while the baseline
        # ran (CREATE DATABASE), and HAProxy cut the baseline's session. Fewer scrapes lighten the nodes.
        "agentdb:scrapeIntervalS": 5,
        "agentdb:patroniTtl": 20,
        "agentdb:patroniLoopWait": 1,
        "agentdb:haproxyPort": rw,
        "agentdb:haproxyReplicaPort": ro,
    }


@pytest.fixture(scope="module")
def docker_cluster(tmp_path_factory):
    """The cluster stack's containers, up for one test module, then removed (the dev stack's run follows)."""
    yield from run_stack(
        CLUSTER_STACK, stack_file(tmp_path_factory.mktemp("cluster"), CLUSTER_STACK, cluster_overrides())
    )


@pytest.fixture(scope="session")
def docker_stack(tmp_path_factory):
    yield from run_stack(STACK, stack_file(tmp_path_factory.mktemp("conformance")))


def run_stack(name: str, path: Path):
    """Build, start and apply the schema of the stack the program declares for `path`; remove it after."""
    start = time.monotonic()
    deployment = deploy(name, path)
    dockerstack.down(deployment)  # what an interrupted run may have left
    try:
        dockerstack.build_images(deployment)
        stack = dockerstack.up(deployment)
        dockerstack.log(f"containers healthy {time.monotonic() - start:.0f}s after the start")
        stack.schema = apply_schema(stack)
        dockerstack.log(f"{name} ready {time.monotonic() - start:.0f}s after the start")
        yield stack
    finally:
        if os.environ.get("AGENTDB_DOCKER_KEEP") != "1":
            dockerstack.down(deployment)
