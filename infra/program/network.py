"""The stack's private Docker network and the named volumes that hold its data."""

from __future__ import annotations

import pulumi
import pulumi_docker as docker

from infra import topology as topo
from infra.program.common import CHECKS_VOLUME, REPO_VOLUME, STATUS_VOLUME, posix_repo_volumes
from infra.settings import Settings

# postgres-run holds PostgreSQL's socket (on a cluster every node's, each named by its port) and the
# database side's pgBackRest locks and spool, shared with pgbackrest-db and the restore drill.
SINGLE_EXTRA = ("postgres-run",)
CLUSTER_EXTRA = ("postgres-run",)
# pgBackRest's repository host keeps the repository on a volume of its own (and one per posix entry of
# agentdb:backupRepos); verify's results and the drill's have theirs, so they outlive their containers.
BACKUP_EXTRA = (REPO_VOLUME, STATUS_VOLUME, CHECKS_VOLUME)
# Grafana runs only in the Docker realization, so the topology does not list it; pgadmin only with
# agentdb:tools.
EXTRA = ("grafana",)
TOOLS_VOLUMES = ("pgadmin",)


def volumes(settings: Settings) -> list[str]:
    """One volume per unit of the topology that keeps data (each cluster node and etcd member), plus the
    Docker-only ones."""
    topology = topo.build(settings)
    data = [unit.data for unit in topology.units if unit.data]
    tools = TOOLS_VOLUMES if settings.tools else ()
    extra = CLUSTER_EXTRA if topology.clustered else () if topology.external else SINGLE_EXTRA
    backup = (*BACKUP_EXTRA, *posix_repo_volumes(settings)) if topology.of_kind("pgbackrest_repo") else ()
    return [*data, *extra, *backup, *EXTRA, *tools]


class Network(pulumi.ComponentResource):
    """A private bridge network and one named volume per stateful service.

    With `keep_data` the volumes outlive `pulumi destroy` (retain_on_delete), so the data survives.
    """

    def __init__(
        self, name: str, stack: str, settings: Settings, keep_data: bool, opts: pulumi.ResourceOptions | None = None
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
            for service in volumes(settings)
        }
        self.register_outputs({"network": self.network.name, "volumes": {k: v.name for k, v in self.volumes.items()}})
