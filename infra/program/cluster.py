"""The cluster's containers, mapped from infra/topology.py: one per Patroni node, one per etcd member, HAProxy.

The topology says what runs (names, ports, rendered files, data directories, health checks); this
module only says how each kind runs in a container, so a stack's nodes are never listed twice.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

import pulumi
import pulumi_docker as docker

from infra import render
from infra import topology as topo
from infra.program.common import (
    ETCD_DATA,
    POSTGRES_MAJOR,
    REPO_VOLUME,
    StackContext,
    http_health,
    rendered_upload,
    service_container,
)

# Where the backup container mounts each node's volume; the data directory inside it is reached through
# a link at the path pgbackrest.conf names (pgN-path), as PostgreSQL on that node reports it.
NODE_VOLUMES = "/var/lib/agentdb/nodes"
# What a node shares with the others and with the backup container: the socket directory, the repository.
SHARED_VOLUMES = ("postgres-run", REPO_VOLUME)


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


def backup_volumes(ctx: StackContext) -> list[str | tuple[str, str]]:
    """The backup container's volumes on a cluster: every node's, the shared socket directory, the repository.

    pgBackRest then sees every node as local, as on the local runner: it finds the primary through
    each node's socket and copies a backup from a replica's data directory (`backup-standby=y`).
    """
    nodes = topo.build(ctx.settings).nodes
    return [*((node.data, f"{NODE_VOLUMES}/{node.data}") for node in nodes), *SHARED_VOLUMES]


def backup_command(ctx: StackContext, scheduler: Sequence[str], pgpassfile: str) -> list[str]:
    """The backup container's command on a cluster: link each node's data directory where pgbackrest.conf
    names it, create the stanza (idempotent; archiving from the leader waits for it), then the schedule.

    The single server's container creates its stanza before PostgreSQL starts; a cluster's leader is only
    known once Patroni has bootstrapped it, and this container starts after HAProxy reaches it.
    """
    lay = ctx.layout
    links = [
        f"ln -sfn {NODE_VOLUMES}/{node.data}/{node.data} {lay.data_root}/{node.data}"
        for node in topo.build(ctx.settings).nodes
    ]
    stanza = shlex.join(
        [
            "pgbackrest",
            f"--config={lay.etc}/pgbackrest.conf",
            f"--stanza={render.PGBACKREST_STANZA}",
            "stanza-create",
            "--log-level-console=warn",
        ]
    )
    # pgBackRest's log-path (pgbackrest.conf), which the python image does not have.
    logs = f"mkdir -p {lay.logs}/pgbackrest"
    steps = [*links, logs, f"PGPASSFILE={shlex.quote(pgpassfile)} {stanza}", f"exec {shlex.join(scheduler)}"]
    return ["/bin/sh", "-c", " && ".join(steps)]


class Cluster(pulumi.ComponentResource):
    """etcd members, then the Patroni nodes, then HAProxy; `pulumi up` waits for HAProxy's read-write port.

    `primary` is the container PgBouncer, the exporters and the schema resources reach the leader through.
    """

    def __init__(self, name: str, ctx: StackContext, opts: pulumi.ResourceOptions | None = None):
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
                # The passwords Patroni needs are in its own 0600 file; archive_command reads pgbackrest.conf.
                uploads=[*(rendered_upload(ctx, f) for f in node.files), rendered_upload(ctx, "pgbackrest.conf")],
                port=node.port,
                volumes=[node.data, *SHARED_VOLUMES],
                depends_on=[self.containers[a] for a in node.after],
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
