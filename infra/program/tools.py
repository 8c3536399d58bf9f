"""The operator tools (agentdb:tools): pgAdmin 4, on the stack's network, published on the bind address."""

from __future__ import annotations

from collections.abc import Sequence

import pulumi

from infra import credentials as sec
from infra import pgadmin
from infra.program.common import StackContext, rendered_upload, secret_upload, service_container

PGADMIN_VENV = "/opt/pgadmin"  # where docker/python/Dockerfile's pgadmin stage installs it


class Tools(pulumi.ComponentResource):
    """pgAdmin 4 from the pgadmin image (the python image plus pgAdmin), its servers through PgBouncer."""

    def __init__(
        self,
        name: str,
        ctx: StackContext,
        depends_on: Sequence[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("agentdb:index:Tools", name, None, opts)
        s, lay = ctx.settings, ctx.layout
        port = s.pgadmin_port
        args = pgadmin.launcher_args(lay.etc, lay.secrets, lay, f"0.0.0.0:{port}", PGADMIN_VENV)
        self.pgadmin = service_container(
            self,
            name,
            ctx,
            "pgadmin",
            command=["python3", "-m", "infra.pgadmin_launcher", *args],
            health=[
                "python3",
                "-c",
                f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{port}/misc/ping', timeout=2)",
            ],
            uploads=[
                *(rendered_upload(ctx, name) for name in (pgadmin.CONFIG, pgadmin.SERVERS, pgadmin.PGPASS)),
                secret_upload(ctx, sec.PGADMIN_LOGIN),
                secret_upload(ctx, sec.PGADMIN_PASSWORD),
            ],
            port=port,
            publish=True,  # a web UI: reachable on the bind address only
            volumes=["pgadmin"],
            depends_on=depends_on,
        )
        self.register_outputs({"container": self.pgadmin.name})
