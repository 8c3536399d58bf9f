"""The stack's private Docker network and the named volumes that hold its data."""

from __future__ import annotations

import pulumi
import pulumi_docker as docker

# postgres-run holds PostgreSQL's socket and pgBackRest's locks, shared with the backup container.
VOLUMES = ("postgres", "postgres-run", "redis", "prometheus", "alertmanager", "grafana")
TOOLS_VOLUMES = ("pgadmin",)  # only with agentdb:tools


class Network(pulumi.ComponentResource):
    """A private bridge network and one named volume per stateful service.

    With `keep_data` the volumes outlive `pulumi destroy` (retain_on_delete), so the data survives.
    """

    def __init__(
        self, name: str, stack: str, keep_data: bool, tools: bool = False, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("agentdb:index:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.network = docker.Network(
            f"{name}-network",
            name=f"agentdb-{stack}",
            driver="bridge",
            labels=[docker.NetworkLabelArgs(label="agentdb.stack", value=stack)],
            opts=child,
        )
        self.volumes: dict[str, docker.Volume] = {
            service: docker.Volume(
                f"{name}-{service}-data",
                name=f"agentdb-{stack}-{service}-data",
                labels=[docker.VolumeLabelArgs(label="agentdb.stack", value=stack)],
                opts=pulumi.ResourceOptions(parent=self, retain_on_delete=keep_data),
            )
            for service in (*VOLUMES, *(TOOLS_VOLUMES if tools else ()))
        }
        self.register_outputs({"network": self.network.name, "volumes": {k: v.name for k, v in self.volumes.items()}})
