"""A three-node cluster stack of the cluster tests' own (agentdb:replicas: 2, synchronousMode on).

Sized for a 2-core machine in its stack file: small memory, and Patroni's shortest lock (ttl 20 s,
the least Patroni accepts) with a 1 s loop. The cluster's ports are taken below the kernel's
ephemeral range: Patroni, etcd and HAProxy open many local connections, and an outgoing
connection's source port inside the range would take a node's port before the node binds it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from loadtests.stack import free_port_blocks
from tests.conftest import TestStack, dedicated_stack
from tests.faults.conftest import report  # noqa: F401  (the faults' figures file, reports/faults.json)

# etcd client and peer ports of 3 members, Patroni REST, PostgreSQL and postgres_exporter of 3 nodes,
# HAProxy's 2.
CLUSTER_PORTS = {
    "etcdClientPort": 3,
    "etcdPeerPort": 3,
    "patroniPort": 3,
    "postgresPort": 3,
    "postgresExporterPort": 3,
    "haproxyPort": 2,
}


def cluster_overrides() -> dict:
    bases = free_port_blocks(CLUSTER_PORTS)
    return {
        "agentdb:replicas": 2,
        "agentdb:synchronousMode": True,
        "agentdb:memoryMb": 512,
        "agentdb:patroniTtl": 20,
        "agentdb:patroniLoopWait": 1,
        **{f"agentdb:{key}": port for key, port in bases.items()},
        "agentdb:haproxyReplicaPort": bases["haproxyPort"] + 1,
    }


@pytest.fixture(scope="package")
def cstack() -> Iterator[TestStack]:
    with dedicated_stack("agentdb-cluster-", cluster_overrides(), name="cluster") as ts:
        yield ts
