"""PgBouncer 1.24 in front of PostgreSQL: the one published database endpoint."""

from __future__ import annotations

from collections.abc import Sequence

import pulumi

from infra.program.common import POSTGRES_MAJOR, StackContext, rendered_upload, service_container
from infra.program.postgres import tls_bootstrap


class PgBouncer(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        ctx: StackContext,
        depends_on: Sequence[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("agentdb:index:PgBouncer", name, None, opts)
        s, lay = ctx.settings, ctx.layout
        run = f"exec pgbouncer {lay.etc}/pgbouncer.ini"
        tls = tls_bootstrap(lay.secrets, lay.pgbouncer_host) if s.tls else ""
        self.container = service_container(
            self,
            name,
            ctx,
            "pgbouncer",
            command=["/bin/sh", "-c", tls + run],
            health=[
                f"/usr/lib/postgresql/{POSTGRES_MAJOR}/bin/pg_isready",
                "-q",
                "-h",
                "127.0.0.1",
                "-p",
                str(s.pgbouncer_port),
                "-d",
                "pgbouncer",
            ],
            uploads=[rendered_upload(ctx, "pgbouncer.ini"), rendered_upload(ctx, "userlist.txt")],
            port=s.pgbouncer_port,
            publish=True,
            depends_on=depends_on,
            wait=True,
            stop_signal="SIGINT",
        )
        self.register_outputs({"container": self.container.name})
