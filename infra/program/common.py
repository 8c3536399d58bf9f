"""What every container of the Docker realization shares: the stack context, limits and one factory.

Every service container runs as the unprivileged SERVICE_UID, has a healthcheck, a restart policy,
memory and CPU limits, and receives its configuration and secrets as uploaded files (never through
the environment or the command line).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_docker as docker

from infra import pgadmin, render
from infra import topology as topo
from infra.settings import Settings

POSTGRES_MAJOR = 17  # the Debian base's (trixie) PostgreSQL
SERVICE_UID = 10001  # the `agentdb` user the images create; uploads are chowned to it
# The python image's `pgbackrest` user: the repository host's containers run as it, so the database
# side's user can read neither the repository nor the repository host's key and passphrase.
REPO_UID = 10002
PYTHON_HOME = "/opt/agentdb"  # where docker/python/Dockerfile puts agentdb's Python services
RESTART = "unless-stopped"
HEALTH_INTERVAL = "5s"
HEALTH_TIMEOUT = "3s"
HEALTH_RETRIES = 10
WAIT_TIMEOUT_S = 180  # `pulumi up` waits this long for a container to turn healthy before dependents start
ETCD_DATA = "/var/lib/agentdb/etcd"  # an etcd member's volume; etcd makes its data directory below it
REPO_VOLUME = "pgbackrest-repo"  # the repository host's repository (repo1-path of pgbackrest-repo.conf)
# verify's results, written on the repository host's side and read by the backup metrics on the database side
STATUS_VOLUME = "pgbackrest-status"
STATUS_DIR = "/var/lib/pgbackrest-status"
# the restore drill's results (and when backups began to be expected), kept across container replacements
CHECKS_VOLUME = "backup-checks"
CHECKS_DIR = "/var/lib/agentdb/backup-status"


@dataclass(frozen=True)
class Limits:
    memory_mb: int
    cpus: float


def limits(settings: Settings) -> dict[str, Limits]:
    """Memory and CPU limits per service: PostgreSQL (each cluster node too) gets exactly what the tuning was
    computed for."""
    small = Limits(128, 0.5)
    return {
        "postgres": Limits(settings.memory_mb, settings.cpus),
        "pgbouncer": Limits(256, 1),
        # A fork for RDB or AOF rewrite may copy every page: twice maxmemory keeps Redis clear of the
        # OOM killer.
        "redis": Limits(2 * settings.redis_maxmemory_mb, 1),
        "postgres-exporter": small,
        "pgbouncer-exporter": small,
        "redis-exporter": small,
        "webhook": small,
        "pgbackrest-repo": Limits(256, 0.5),
        "pgbackrest-db": Limits(256, 0.5),
        "backup-scheduler": Limits(256, 0.5),
        # The restore drill starts a restored copy of PostgreSQL (64 MiB of shared buffers) beside pgBackRest.
        "backup-checks": Limits(512, 0.5),
        "scheduler": Limits(128, 0.5),
        "alertmanager": Limits(256, 0.5),
        "prometheus": Limits(1024, 1),
        "grafana": Limits(512, 1),
        "etcd": Limits(256, 0.5),
        "haproxy": small,
        "pgadmin": Limits(512, 1),
    }


@dataclass
class StackContext:
    """What the components share: names, settings, the docker layout, images and rendered files."""

    stack: str
    settings: Settings
    layout: render.Layout
    files: pulumi.Output  # Output[dict[str, RenderedFile]]: secret, since some files carry secrets
    passwords: dict[str, pulumi.Output]  # secret name -> secret Output[str]
    network_name: pulumi.Output | None = None
    images: dict[str, pulumi.Input[str]] = field(default_factory=dict)  # image key -> pinned image reference
    volumes: dict[str, pulumi.Output] = field(default_factory=dict)  # service -> volume name
    # pgBackRest's TLS PEMs (infra/program/backup_tls.py), by output name; empty with no backups of ours
    backup_tls: dict[str, pulumi.Output] = field(default_factory=dict)

    def container_name(self, service: str) -> str:
        return f"agentdb-{self.stack}-{service}"


def rendered_upload(
    ctx: StackContext, name: str, path: str | None = None, owner: int = SERVICE_UID
) -> docker.ContainerUploadArgs:
    """Upload one rendered file to the etc directory (or `path`), with the renderer's mode, owned by the
    service user (or `owner`).

    Files of mode 0644 carry no secret by the renderer's contract, so they stay readable in diffs; a file
    whose mode is not known before rendering (one per cluster node) stays secret whatever its mode.
    """
    probe = render.FILES.get(name)
    static = probe[1] if probe else (0o644 if name.startswith("rules/") else pgadmin.MODES.get(name))
    content = ctx.files.apply(lambda files: files[name].content)
    if static is not None and static & 0o077:
        content = pulumi.Output.unsecret(content)
    if static is None:
        permissions = pulumi.Output.unsecret(ctx.files.apply(lambda files: f"{files[name].mode:04o}"))
    else:
        permissions = f"{static:04o}"
    return docker.ContainerUploadArgs(
        file=path or f"{ctx.layout.etc}/{name}",
        content=content,
        owner=str(owner),
        group=str(owner),
        permissions=permissions,
    )


def secret_upload(ctx: StackContext, name: str, owner: int = SERVICE_UID) -> docker.ContainerUploadArgs:
    """Upload one password as a 0600 file in the secrets directory."""
    return docker.ContainerUploadArgs(
        file=f"{ctx.layout.secrets}/{name}",
        content=pulumi.Output.secret(ctx.passwords[name]),
        owner=str(owner),
        group=str(owner),
        permissions="0600",
    )


def service_container(
    parent: pulumi.Resource,
    name: str,
    ctx: StackContext,
    service: str,
    *,
    command: Sequence[str],
    health: Sequence[str],
    uploads: Sequence[docker.ContainerUploadArgs] = (),
    envs: Sequence[str] = (),
    port: int,
    publish: bool = False,
    extra_ports: Sequence[int] = (),
    volumes: Sequence[str | tuple[str, str]] = (),
    depends_on: Sequence[pulumi.Resource] = (),
    image: str | None = None,
    user: str | None = str(SERVICE_UID),
    wait: bool = False,
    stop_signal: str = "SIGTERM",
    extra: dict | None = None,
    limit: str | None = None,
) -> docker.Container:
    """One service container: healthcheck, restart policy, limits, uploads, private network alias.

    `name` is the component's name (children are named from it); `image` is a key of ctx.images
    when the service's image has another name (the python image runs two services); `limit` likewise
    names its key in `limits` (every cluster node has PostgreSQL's). `extra_ports` are published with
    `port` when `publish` is set. A volume is mounted at `volume_path`, or at the path given with it as
    `(volume, path)`.
    """
    lim = limits(ctx.settings)[limit or service]
    mounts = [
        docker.ContainerVolumeArgs(volume_name=ctx.volumes[volume], container_path=path)
        for volume, path in ((v, volume_path(ctx, v)) if isinstance(v, str) else v for v in volumes)
    ]
    ports = []
    if publish:
        ports += [
            docker.ContainerPortArgs(internal=p, external=p, ip=ctx.settings.bind_address) for p in (port, *extra_ports)
        ]
    return docker.Container(
        f"{name}-{service}",
        name=ctx.container_name(service),
        image=ctx.images[image or service],
        command=list(command),
        envs=list(envs) or None,
        user=user,
        hostname=service,
        networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=ctx.network_name, aliases=[service])],
        ports=ports or None,
        volumes=mounts or None,
        uploads=list(uploads) or None,
        healthcheck=docker.ContainerHealthcheckArgs(
            tests=["CMD", *health] if health[0] != "CMD-SHELL" else list(health),
            interval=HEALTH_INTERVAL,
            timeout=HEALTH_TIMEOUT,
            retries=HEALTH_RETRIES,
            start_period="10s",
        ),
        restart=RESTART,
        memory=lim.memory_mb,
        cpus=str(lim.cpus),
        stop_signal=stop_signal,
        stop_timeout=60,
        wait=wait,
        wait_timeout=WAIT_TIMEOUT_S if wait else None,
        labels=[
            docker.ContainerLabelArgs(label="agentdb.stack", value=ctx.stack),
            docker.ContainerLabelArgs(label="agentdb.service", value=service),
        ],
        **(extra or {}),
        opts=pulumi.ResourceOptions(parent=parent, depends_on=list(depends_on)),
    )


def posix_repo_volumes(settings: Settings) -> dict[str, str]:
    """A volume for each posix entry of agentdb:backupRepos (repoN), by name -> the entry's path."""
    return {f"{REPO_VOLUME}{i + 2}": r.path for i, r in enumerate(settings.backup_repos) if r.type == "posix"}


def volume_path(ctx: StackContext, volume: str) -> str:
    """Where each named volume is mounted inside its container."""
    lay = ctx.layout
    if volume in (posix := posix_repo_volumes(ctx.settings)):
        return posix[volume]
    kinds = {unit.data: unit.kind for unit in topo.build(ctx.settings).units if unit.data}
    # A node's volume holds its data directory as the local runner's data root does (Patroni makes it).
    if kinds.get(volume) == "patroni":
        return lay.data_root
    if kinds.get(volume) == "etcd":
        return ETCD_DATA
    return {
        "postgres": lay.postgres_data.rsplit("/", 1)[0],  # initdb wants an empty directory below the mount
        "postgres-run": lay.run,
        # The repository host's repository: repo1-path of config/pgbackrest-repo.conf.j2.
        REPO_VOLUME: lay.repo_path,
        STATUS_VOLUME: STATUS_DIR,
        CHECKS_VOLUME: CHECKS_DIR,
        "redis": lay.redis_data,
        "prometheus": lay.prometheus_data,
        "alertmanager": lay.alertmanager_data,
        "grafana": "/var/lib/grafana",
        "pgadmin": pgadmin.data_dir(lay),
    }[volume]


def http_health(port: int, path: str) -> list[str]:
    return ["curl", "-fsS", "-o", "/dev/null", f"http://127.0.0.1:{port}{path}"]


def python_health(health: topo.Health) -> list[str]:
    """A `tcp` or `http` health check run by the python image's own Python (it has no curl)."""
    if health.kind == "tcp":
        probe = f"import socket; socket.create_connection(('127.0.0.1', {health.port}), 2).close()"
    elif health.kind == "http":
        probe = (
            f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{health.port}{health.path}', timeout=2)"
        )
    else:
        raise ValueError(f"no python healthcheck for a {health.kind!r} health check")
    return ["python3", "-c", probe]
