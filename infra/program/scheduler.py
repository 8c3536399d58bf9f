"""Our cron-job scheduler (infra/scheduler.py) in a container from the python image, for an external server."""

from __future__ import annotations

import pulumi
import pulumi_docker as docker

from infra import scheduler
from infra.program.common import PYTHON_HOME, SERVICE_UID, StackContext, service_container

HEARTBEAT_MAX_AGE_S = 30  # the loop turns at least every second; a stuck one is unhealthy


class Scheduler(pulumi.ComponentResource):
    """The scheduler container: its file (the jobs, the admin's conninfo) and a 0600 pgpass as uploads.

    `admin_dsn` is the admin's libpq URL (a secret Output); nothing of it but the pgpass carries the
    password. The process touches a heartbeat file on every turn of its loop: the health check.
    """

    def __init__(
        self,
        name: str,
        ctx: StackContext,
        admin_dsn: pulumi.Output,
        depends_on: list[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("agentdb:index:Scheduler", name, None, opts)
        lay = ctx.layout
        rendered = pulumi.Output.secret(admin_dsn).apply(lambda dsn: scheduler.write_config(dsn, ctx.settings))
        config, pgpass = f"{lay.etc}/{scheduler.CONFIG_FILE}", f"{lay.secrets}/{scheduler.PGPASS_FILE}"
        heartbeat = f"{lay.run}/scheduler.alive"

        def upload(path: str, content: pulumi.Output, mode: str) -> docker.ContainerUploadArgs:
            return docker.ContainerUploadArgs(
                file=path, content=content, owner=str(SERVICE_UID), group=str(SERVICE_UID), permissions=mode
            )

        self.container = service_container(
            self,
            name,
            ctx,
            "scheduler",
            image="python",
            command=[
                "python3",
                "-m",
                "infra.scheduler",
                f"--config={config}",
                f"--pgpassfile={pgpass}",
                f"--heartbeat={heartbeat}",
            ],
            health=[
                "CMD-SHELL",
                f"test $(( $(date +%s) - $(stat -c %Y {heartbeat}) )) -lt {HEARTBEAT_MAX_AGE_S}",
            ],
            uploads=[
                # The file holds no password (write_config keeps it for the pgpass): readable in diffs.
                upload(config, pulumi.Output.unsecret(rendered.apply(lambda r: r[0])), "0644"),
                upload(pgpass, pulumi.Output.secret(rendered.apply(lambda r: r[1])), "0600"),
            ],
            port=0,  # listens nowhere
            depends_on=depends_on,
            extra={"working_dir": PYTHON_HOME},
        )
        self.register_outputs({"container": self.container.name})
