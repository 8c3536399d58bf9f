"""PostgreSQL 17 with pg_cron, pg_partman and pgvector, on the rendered postgresql.conf and pg_hba.conf."""

from __future__ import annotations

import shlex

import pulumi
import pulumi_docker as docker

from infra import credentials as sec
from infra import render
from infra import topology as topo
from infra.program.cluster import backup_command, backup_volumes
from infra.program.common import (
    POSTGRES_MAJOR,
    PYTHON_HOME,
    SERVICE_UID,
    StackContext,
    rendered_upload,
    secret_upload,
    service_container,
)

BINDIR = f"/usr/lib/postgresql/{POSTGRES_MAJOR}/bin"
BACKUP_CONFIG = "pgbackrest.conf"
BACKUP_PGPASS = "pgbackrest.pgpass"


def tls_bootstrap(secrets_dir: str, common_name: str) -> str:
    """A shell step making a self-signed certificate on first start when TLS is on and none was provided."""
    crt, key = f"{secrets_dir}/server.crt", f"{secrets_dir}/server.key"
    return (
        f"test -s {crt} || (umask 077 && openssl req -x509 -nodes -newkey rsa:2048 -days 825"
        f" -subj /CN={common_name} -keyout {key} -out {crt} 2>/dev/null); "
    )


def command(ctx: StackContext) -> list[str]:
    lay, s = ctx.layout, ctx.settings
    data = lay.postgres_data
    init = (
        f"test -s {data}/PG_VERSION || {BINDIR}/initdb -D {data} -U {sec.SUPERUSER}"
        f" --pwfile={lay.secrets}/{sec.SUPERUSER} --auth=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8"
        " --data-checksums >/dev/null; "
    )
    tls = tls_bootstrap(lay.secrets, lay.postgres_host) if s.tls else ""
    if BACKUP_CONFIG in render.FILES:
        # archive_command pushes WAL with pgBackRest: its stanza must exist before the first segment.
        init += (
            f"pgbackrest --config={lay.etc}/{BACKUP_CONFIG} --stanza={render.PGBACKREST_STANZA}"
            " stanza-create --no-online --log-level-console=warn; "
        )
    run = f"exec {BINDIR}/postgres -D {data} -c config_file={shlex.quote(lay.etc + '/postgresql.conf')}"
    return ["/bin/sh", "-c", init + tls + run]


class Postgres(pulumi.ComponentResource):
    """The PostgreSQL container; `pulumi up` waits until it is healthy before PgBouncer starts."""

    def __init__(self, name: str, ctx: StackContext, opts: pulumi.ResourceOptions | None = None):
        super().__init__("agentdb:index:Postgres", name, None, opts)
        s, lay = ctx.settings, ctx.layout
        self.container = service_container(
            self,
            name,
            ctx,
            "postgres",
            command=command(ctx),
            health=[f"{BINDIR}/pg_isready", "-q", "-h", lay.run, "-p", str(s.postgres_port)],
            uploads=[
                rendered_upload(ctx, "postgresql.conf"),
                rendered_upload(ctx, "pg_hba.conf"),
                *([rendered_upload(ctx, BACKUP_CONFIG)] if BACKUP_CONFIG in render.FILES else []),
                secret_upload(ctx, sec.SUPERUSER),
            ],
            port=s.postgres_port,
            publish=s.publish_postgres,
            # The socket directory is a volume too: the backup container reaches the server through it.
            volumes=["postgres", "postgres-run"],
            wait=True,
            stop_signal="SIGINT",  # fast shutdown, as the local runner stops it
            # Parallel queries use POSIX shared memory: Docker's 64 MiB /dev/shm is too small for real work.
            extra={"shm_size": max(64, s.memory_mb // 4)},
        )
        # The schema resources reach PostgreSQL at this address on the private network (routed on Linux).
        self.address = self.container.network_datas.apply(lambda nets: nets[0].ip_address)
        self.register_outputs({"container": self.container.name, "address": self.address})


class Backup(pulumi.ComponentResource):
    """The backup schedule: infra/backup_scheduler.py (as in the local runner) runs pgBackRest, full weekly
    and differential daily, in its own container from the python image.

    It mounts PostgreSQL's data volume (the data directory and the pgBackRest repository) and its
    socket volume at the same paths as the PostgreSQL container, so pgBackRest works as on the
    database host; the superuser's password reaches it as a 0600 pgpass file. On a cluster it mounts
    every node's volume instead, and takes its backups from a replica (infra/program/cluster.py).
    """

    def __init__(
        self, name: str, ctx: StackContext, postgres: pulumi.Resource, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("agentdb:index:Backup", name, None, opts)
        lay = ctx.layout
        clustered = topo.build(ctx.settings).clustered
        config = f"--config={lay.etc}/{BACKUP_CONFIG}"
        stanza = render.PGBACKREST_STANZA
        pgpass = docker.ContainerUploadArgs(
            file=f"{lay.secrets}/{BACKUP_PGPASS}",
            content=pulumi.Output.secret(ctx.passwords[sec.SUPERUSER]).apply(
                lambda password: f"*:*:*:{sec.SUPERUSER}:{password}\n"
            ),
            owner=str(SERVICE_UID),
            group=str(SERVICE_UID),
            permissions="0600",
        )
        scheduler = [
            "python3",
            "-m",
            "infra.backup_scheduler",
            config,
            f"--stanza={stanza}",
            f"--pgpassfile={lay.secrets}/{BACKUP_PGPASS}",
            # Verify results beside the repository (PostgreSQL's volume on a single server); no drill
            # here: the python image has no PostgreSQL to start a restored copy with.
            f"--status-dir={lay.data_root}/backup-status",
            f"--metrics-listen=0.0.0.0:{ctx.settings.backup_metrics_port}",
            f"--drill-every-days={ctx.settings.backup_drill_interval_days}",
        ]
        self.container = service_container(
            self,
            name,
            ctx,
            "backup",
            image="python",
            # On a cluster (infra/program/cluster.py): every node's volume, and the stanza made first.
            command=backup_command(ctx, scheduler, f"{lay.secrets}/{BACKUP_PGPASS}") if clustered else scheduler,
            # pgBackRest reads its configuration and the repository on the shared volume.
            health=["pgbackrest", config, f"--stanza={stanza}", "info", "--output=json"],
            uploads=[rendered_upload(ctx, BACKUP_CONFIG), pgpass],
            port=ctx.settings.backup_metrics_port,
            volumes=backup_volumes(ctx) if clustered else ["postgres", "postgres-run"],
            depends_on=[postgres],
            extra={"working_dir": PYTHON_HOME},
        )
        self.register_outputs({"container": self.container.name})
