"""Redis with ACL users from the rendered users.acl (hashes only) and its data on a named volume."""

from __future__ import annotations

import pulumi

from infra import credentials as sec
from infra.program.common import StackContext, rendered_upload, secret_upload, service_container


class Redis(pulumi.ComponentResource):
    def __init__(self, name: str, ctx: StackContext, opts: pulumi.ResourceOptions | None = None):
        super().__init__("agentdb:index:Redis", name, None, opts)
        s, lay = ctx.settings, ctx.layout
        # The healthcheck logs in as the exporter user (PING is all it may do); the password stays in a file.
        ping = (
            f'REDISCLI_AUTH="$(cat {lay.secrets}/redis_exporter)" redis-cli --no-auth-warning'
            f" --user {sec.REDIS_EXPORTER_USER} -p {s.redis_port} ping | grep -q PONG"
        )
        self.container = service_container(
            self,
            name,
            ctx,
            "redis",
            command=["redis-server", f"{lay.etc}/redis.conf"],
            health=["CMD-SHELL", ping],
            uploads=[
                rendered_upload(ctx, "redis.conf"),
                rendered_upload(ctx, "users.acl"),
                secret_upload(ctx, "redis_exporter"),
            ],
            port=s.redis_port,
            publish=s.publish_redis,
            volumes=["redis"],
            wait=True,
        )
        self.register_outputs({"container": self.container.name})
