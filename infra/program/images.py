"""The service images, built from the Dockerfiles in docker/ on the stack's Debian base."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pulumi
import pulumi_docker as docker

from infra import tools
from infra import topology as topo
from infra.databases import REPO_ROOT
from infra.program.common import POSTGRES_MAJOR, REPO_UID, SERVICE_UID
from infra.settings import Settings

DOCKER_DIR = REPO_ROOT / "docker"
# image key -> build context; the python image carries our exporter and webhook from infra/.
IMAGES: dict[str, Path] = {
    "postgres": DOCKER_DIR,
    "pgbouncer": DOCKER_DIR,
    "redis": DOCKER_DIR,
    "prometheus": DOCKER_DIR,
    "alertmanager": DOCKER_DIR,
    "postgres-exporter": DOCKER_DIR,
    "redis-exporter": DOCKER_DIR,
    "python": REPO_ROOT / "infra",
    "patroni": DOCKER_DIR,
    "etcd": DOCKER_DIR,
    "haproxy": DOCKER_DIR,
    # The python image plus PostgreSQL of the server's major version: the restore drill starts its copy.
    "drill": REPO_ROOT / "infra",
}
# The single PostgreSQL's image, or the cluster's: only what the stack runs is built.
SINGLE_ONLY = {"postgres"}
CLUSTER_ONLY = {"patroni", "etcd", "haproxy"}
BACKUP_ONLY = {"drill"}  # none where the provider of an external server takes the backups
# What the python image's Dockerfile copies from infra/: a change to any of them is a new tag.
PYTHON_SOURCES = (
    "__init__.py",
    "webhook.py",
    "backup_scheduler.py",
    "backup_metrics.py",
    "drill.py",
    "scheduler.py",
    "exporters/__init__.py",
    "exporters/pgbouncer.py",
)
# Images built from another image's Dockerfile, as one of its stages: key -> (Dockerfile's key, stage).
# pgadmin is the python image plus pgAdmin in a virtualenv of its own (agentdb:tools only).
STAGES: dict[str, tuple[str, str]] = {
    "python": ("python", "python"),
    "pgadmin": ("python", "pgadmin"),
    "drill": ("python", "drill"),
}
TOOLS_IMAGES = {"pgadmin": REPO_ROOT / "infra"}
PGADMIN_SOURCES = ("pgadmin_launcher.py",)


def keys(settings: Settings) -> list[str]:
    """The images the stack's topology needs."""
    topology = topo.build(settings)
    # An external server needs neither: the provider runs PostgreSQL.
    skip = SINGLE_ONLY | CLUSTER_ONLY if topology.external else SINGLE_ONLY if topology.clustered else CLUSTER_ONLY
    if not topology.of_kind("backup_checks"):
        skip = skip | BACKUP_ONLY
    return [key for key in IMAGES if key not in skip]


def dockerfile(key: str) -> Path:
    return DOCKER_DIR / STAGES.get(key, (key, ""))[0] / "Dockerfile"


def build_args(settings: Settings) -> dict[str, str]:
    return {
        "BASE_IMAGE": settings.base_image,
        "SERVICE_UID": str(SERVICE_UID),
        "REPO_UID": str(REPO_UID),
        "POSTGRES_MAJOR": str(POSTGRES_MAJOR),
        # The same pins as the local runner's pgAdmin virtualenv (pyproject.toml).
        "PGADMIN_REQUIREMENTS": " ".join(tools.pgadmin_requirements()),
    }


def images_of(settings: Settings) -> dict[str, Path]:
    """The images this stack builds: those its topology needs, and the tools' when agentdb:tools is on."""
    return {**{key: IMAGES[key] for key in keys(settings)}, **(TOOLS_IMAGES if settings.tools else {})}


def tag(key: str, settings: Settings) -> str:
    """A pinned tag: the base image and a digest of everything the build reads, never `latest`."""
    digest = hashlib.sha256(settings.base_image.encode())
    digest.update(dockerfile(key).read_bytes())
    if key in STAGES:
        for rel in PYTHON_SOURCES + (PGADMIN_SOURCES if key == "pgadmin" else ()):
            digest.update(rel.encode())
            digest.update((REPO_ROOT / "infra" / rel).read_bytes())
    if key == "pgadmin":
        digest.update(build_args(settings)["PGADMIN_REQUIREMENTS"].encode())
    base_tag = settings.base_image.rpartition(":")[2]
    return f"agentdb/{key}:{base_tag}-{digest.hexdigest()[:12]}"


class Images(pulumi.ComponentResource):
    """One local image per service (not pushed); `refs` maps each key to its pinned reference."""

    def __init__(self, name: str, settings: Settings, opts: pulumi.ResourceOptions | None = None):
        super().__init__("agentdb:index:Images", name, None, opts)
        self.images = {
            key: docker.Image(
                f"{name}-{key}",
                image_name=tag(key, settings),
                build=docker.DockerBuildArgs(
                    context=str(context),
                    dockerfile=str(dockerfile(key)),
                    args=build_args(settings),
                    target=STAGES[key][1] if key in STAGES else None,
                ),
                skip_push=True,
                opts=pulumi.ResourceOptions(parent=self),
            )
            for key, context in images_of(settings).items()
        }
        self.refs: dict[str, pulumi.Input[str]] = {key: image.image_name for key, image in self.images.items()}
        self.refs["grafana"] = settings.grafana_image  # the official image, pinned by the settings
        self.register_outputs({"images": self.refs})
