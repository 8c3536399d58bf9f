"""The cluster's containers, mapped from infra/topology.py: one per Patroni node, one per etcd member, HAProxy.

The topology says what runs (names, ports, rendered files, data directories, health checks); this
module only says how each kind runs in a container, so a stack's nodes are never listed twice.
"""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_docker as docker

from infra import topology as topo
from infra.program.backup import db_tls_uploads
from infra.program.common import (
    ETCD_DATA,
    POSTGRES_MAJOR,
    StackContext,
    http_health,
    rendered_upload,
    service_container,
)

# What a node shares with the others and with pgbackrest-db: the socket directory (each node's socket is
# named by its port). The repository is the repository host's: archive_command pushes to it over TLS.
SHARED_VOLUMES = ("postgres-run",)


def health_command(health: topo.Health) -> list[str]:
    """The topology's health check as a container healthcheck command."""
    if health.kind == "http":
        return http_health(health.port, health.path)
    if health.kind == "postgres":
        return [f"/usr/lib/postgresql/{POSTGRES_MAJOR}/bin/pg_isready", "-q", "-h", "127.0.0.1", "-p", str(health.port)]
    raise ValueError(f"no container healthcheck for a {health.kind!r} health check")


def etcd_command(ctx: StackContext, unit: topo.Unit, members: list[topo.Unit]) -> list[str]:
    """etcd listening on every interface of its container, advertised under its container's host name."""
    lay = ctx.layout

    def url(member: topo.Unit, role: str) -> str:
        return f"http://{lay.host_of(member.name)}:{member.port_of(role)}"

    peers = ",".join(f"{m.name}={url(m, 'peer')}" for m in members)
    return [
        "etcd",
        f"--name={unit.name}",
        f"--data-dir={ETCD_DATA}/data",
        f"--listen-client-urls=http://{lay.listen}:{unit.port_of('client')}",
        f"--advertise-client-urls={url(unit, 'client')}",
        f"--listen-peer-urls=http://{lay.listen}:{unit.port_of('peer')}",
        f"--initial-advertise-peer-urls={url(unit, 'peer')}",
        f"--initial-cluster={peers}",
        f"--initial-cluster-token=agentdb-{ctx.stack}",
        "--initial-cluster-state=new",
        "--logger=zap",
        "--log-outputs=stderr",
    ]


class Cluster(pulumi.ComponentResource):
    """etcd members, then the Patroni nodes, then HAProxy; `pulumi up` waits for HAProxy's read-write port.

    `primary` is the container PgBouncer, the exporters and the schema resources reach the leader through.
    """

    def __init__(
        self,
        name: str,
        ctx: StackContext,
        repository: Sequence[pulumi.Resource] = (),
        opts: pulumi.ResourceOptions | None = None,
    ):
        """`repository`: pgBackRest's repository host container, which the leader archives to."""
        super().__init__("agentdb:index:Cluster", name, None, opts)
        s = ctx.settings
        topology = topo.build(s)
        self.containers: dict[str, docker.Container] = {}
        for member in topology.members:
            self.containers[member.name] = service_container(
                self,
                name,
                ctx,
                member.name,
                image="etcd",
                command=etcd_command(ctx, member, topology.members),
                health=health_command(member.health),
                port=member.port,
                volumes=[member.data],
                limit="etcd",
            )
        for node in topology.nodes:
            self.containers[node.name] = service_container(
                self,
                name,
                ctx,
                node.name,
                image="patroni",
                command=["patroni", f"{ctx.layout.etc}/{node.files[0]}"],
                health=health_command(node.health),
                # The passwords Patroni needs are in its own 0600 file; archive_command reads pgbackrest.conf
                # and pushes to the repository host with the database side's certificate.
                uploads=[
                    *(rendered_upload(ctx, f) for f in node.files),
                    rendered_upload(ctx, "pgbackrest.conf"),
                    *db_tls_uploads(ctx),
                ],
                port=node.port,
                volumes=[node.data, *SHARED_VOLUMES],
                depends_on=[*(self.containers[a] for a in node.after), *repository],
                limit="postgres",
                # Patroni stops PostgreSQL itself on SIGTERM, with a fast shutdown.
                extra={"shm_size": max(64, s.memory_mb // 4)},
            )
        haproxy = topology.unit("haproxy")
        self.primary = self.containers[haproxy.name] = service_container(
            self,
            name,
            ctx,
            haproxy.name,
            image="haproxy",
            command=["haproxy", "-W", "-db", "-f", f"{ctx.layout.etc}/{haproxy.files[0]}"],
            health=health_command(haproxy.health),
            uploads=[rendered_upload(ctx, f) for f in haproxy.files],
            port=haproxy.port,
            publish=s.publish_postgres,
            extra_ports=[haproxy.port_of("replica")],
            depends_on=[self.containers[a] for a in haproxy.after],
            wait=True,
            limit="haproxy",
        )
        self.address = self.primary.network_datas.apply(lambda nets: nets[0].ip_address)
        self.register_outputs({"containers": {k: c.name for k, c in self.containers.items()}, "address": self.address})
