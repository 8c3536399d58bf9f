"""PostgreSQL 17 with pg_cron, pg_partman and pgvector, on the rendered postgresql.conf and pg_hba.conf."""

from __future__ import annotations

import shlex
from collections.abc import Sequence

import pulumi

from infra import credentials as sec
from infra import render
from infra.program.backup import db_tls_uploads
from infra.program.common import (
    POSTGRES_MAJOR,
    StackContext,
    rendered_upload,
    secret_upload,
    service_container,
)

BINDIR = f"/usr/lib/postgresql/{POSTGRES_MAJOR}/bin"
BACKUP_CONFIG = "pgbackrest.conf"


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
        # archive_command pushes WAL with pgBackRest to the repository host: the stanza should exist before the
        # first segment (pgbackrest-db makes sure of it too, and PostgreSQL keeps WAL until it is archived).
        init += (
            f"pgbackrest --config={lay.etc}/{BACKUP_CONFIG} --stanza={render.PGBACKREST_STANZA}"
            " stanza-create --no-online --log-level-console=warn; "
        )
    run = f"exec {BINDIR}/postgres -D {data} -c config_file={shlex.quote(lay.etc + '/postgresql.conf')}"
    return ["/bin/sh", "-c", init + tls + run]


class Postgres(pulumi.ComponentResource):
    """The PostgreSQL container; `pulumi up` waits until it is healthy before PgBouncer starts."""

    def __init__(
        self,
        name: str,
        ctx: StackContext,
        repository: Sequence[pulumi.Resource] = (),
        opts: pulumi.ResourceOptions | None = None,
    ):
        """`repository`: pgBackRest's repository host container, which archiving needs from the first segment."""
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
                *db_tls_uploads(ctx),
                secret_upload(ctx, sec.SUPERUSER),
            ],
            port=s.postgres_port,
            publish=s.publish_postgres,
            # The socket directory is a volume too: pgbackrest-db and the drill reach the server through it.
            volumes=["postgres", "postgres-run"],
            depends_on=list(repository),
            wait=True,
            stop_signal="SIGINT",  # fast shutdown, as the local runner stops it
            # Parallel queries use POSIX shared memory: Docker's 64 MiB /dev/shm is too small for real work.
            extra={"shm_size": max(64, s.memory_mb // 4)},
        )
        # The schema resources reach PostgreSQL at this address on the private network (routed on Linux).
        self.address = self.container.network_datas.apply(lambda nets: nets[0].ip_address)
        self.register_outputs({"container": self.container.name, "address": self.address})
