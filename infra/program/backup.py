"""pgBackRest in the Docker realization, mapped from infra/topology.py's backup units, as the local runner maps them.

- `pgbackrest-repo` (unit pgbackrest_repo): the dedicated repository host, `pgbackrest server` (TLS) as
  the python image's `pgbackrest` user, the repository on a volume of its own. Its configuration (with
  the repository's passphrase when agentdb:backupEncryption is on) and its key are 0600 uploads of its
  own user, in no other container but the backup schedule's, which runs on the repository's side.
- `pgbackrest-db` (pgbackrest_db): the database side's `pgbackrest server`, beside PostgreSQL: it mounts
  the data volume(s) and the socket directory, so the repository host reads the data directories
  through it when it takes a backup. It creates the stanza first (on a cluster, once the leader is up).
- `backup-scheduler` (backup_scheduler): backups and `pgbackrest verify` on the repository's side
  (pgBackRest takes backups only on a repository host), recording verify's results on a volume the
  metrics read.
- `backup-checks` (backup_checks): the restore drill and the backup metrics from the database side,
  through the TLS path archiving takes, in the `drill` image (the python image plus PostgreSQL of the
  server's major version, to start the restored copy).

PostgreSQL's own containers (the single server, or every cluster node) push WAL over TLS with the
database side's certificate (`db_tls_uploads`). The certificates come from infra/program/backup_tls.py.
"""

from __future__ import annotations

import shlex

import pulumi
import pulumi_docker as docker

from infra import credentials as sec
from infra import render, repository
from infra import topology as topo
from infra.program.backup_tls import OUTPUTS, Certificates
from infra.program.common import (
    CHECKS_DIR,
    CHECKS_VOLUME,
    POSTGRES_MAJOR,
    PYTHON_HOME,
    REPO_UID,
    REPO_VOLUME,
    SERVICE_UID,
    STATUS_DIR,
    STATUS_VOLUME,
    StackContext,
    posix_repo_volumes,
    python_health,
    rendered_upload,
    service_container,
)
from infra.settings import Settings, SettingsError

CONFIG = "pgbackrest.conf"  # the database side's
REPO_CONFIG = repository.CONFIG  # the repository host's rendered file
PGPASS = "pgbackrest.pgpass"
DRILL_SCRATCH = "/var/lib/agentdb/drill"  # the drill restores below it, into a directory it removes after
# Where pgbackrest-db mounts each cluster node's volume; the data directory inside it is reached through a
# link at the path pgbackrest.conf names (pgN-path), as PostgreSQL on that node reports it. Docker 20.10
# (Debian's) cannot mount a subdirectory of a volume (volume-subpath needs API 1.45), hence the links.
NODE_VOLUMES = "/var/lib/agentdb/nodes"
# Each side's TLS files, by certificate output -> file name (infra.repository's names for each side).
DB_TLS = dict(zip(("ca_crt", "db_crt", "db_key"), repository.DB_TLS, strict=True))
REPO_TLS = dict(zip(("ca_crt", "repo_crt", "repo_key"), repository.REPO_TLS, strict=True))
STANZA = render.PGBACKREST_STANZA
KINDS = ("pgbackrest_repo", "pgbackrest_db", "backup_scheduler", "backup_checks")


# agentdb:backupRepos types the Docker realization wires: a posix entry is a volume of the repository host's.
# An s3 entry's keys and a host entry's certificate files have no way into the containers yet.
DOCKER_REPO_TYPES = ("posix",)


def check_backup_repos(stack: str, settings: Settings) -> None:
    """Refuse, before anything is created, an agentdb:backupRepos entry the containers could not use."""
    for i, repo in enumerate(settings.backup_repos):
        if repo.type not in DOCKER_REPO_TYPES:
            raise SettingsError(
                f"Pulumi.{stack}.yaml: agentdb:backupRepos[{i}]: type {repo.type!r} is not supported by the Docker"
                f" realization yet (only {', '.join(DOCKER_REPO_TYPES)}); the local runner (agentdb up) supports it"
            )


def repo_config(ctx: StackContext) -> str:
    """The repository host's configuration inside its containers (the database side names it as host-config)."""
    return f"{ctx.layout.repo_home}/pgbackrest.conf"


def _tls_upload(content: pulumi.Output, path: str, owner: int) -> docker.ContainerUploadArgs:
    return docker.ContainerUploadArgs(
        file=path, content=pulumi.Output.secret(content), owner=str(owner), group=str(owner), permissions="0600"
    )


def db_tls_uploads(ctx: StackContext) -> list[docker.ContainerUploadArgs]:
    """The database side's CA, certificate and key (0600): PostgreSQL's containers push WAL with them."""
    if not ctx.backup_tls:
        return []
    return [
        _tls_upload(ctx.backup_tls[key], f"{ctx.layout.secrets}/{name}", SERVICE_UID) for key, name in DB_TLS.items()
    ]


def _repo_files(ctx: StackContext) -> list[docker.ContainerUploadArgs]:
    """The repository host's configuration (0600: the passphrase) and TLS files, owned by its own user."""
    home = ctx.layout.repo_home
    return [
        rendered_upload(ctx, REPO_CONFIG, path=repo_config(ctx), owner=REPO_UID),
        *(_tls_upload(ctx.backup_tls[key], f"{home}/tls/{name}", REPO_UID) for key, name in REPO_TLS.items()),
    ]


def _pgpass(ctx: StackContext) -> docker.ContainerUploadArgs:
    """The superuser's password as a 0600 pgpass file: pgBackRest and the drill connect to PostgreSQL with it."""
    return docker.ContainerUploadArgs(
        file=f"{ctx.layout.secrets}/{PGPASS}",
        content=pulumi.Output.secret(ctx.passwords[sec.SUPERUSER]).apply(
            lambda password: f"*:*:*:{sec.SUPERUSER}:{password}\n"
        ),
        owner=str(SERVICE_UID),
        group=str(SERVICE_UID),
        permissions="0600",
    )


def db_volumes(ctx: StackContext) -> list[str | tuple[str, str]]:
    """The database side's volumes: PostgreSQL's data (every node's on a cluster) and the socket directory."""
    topology = topo.build(ctx.settings)
    if not topology.clustered:
        return ["postgres", "postgres-run"]
    return [*((node.data, f"{NODE_VOLUMES}/{node.data}") for node in topology.nodes), "postgres-run"]


def repo_volumes(ctx: StackContext) -> list[str]:
    """The repository host's: its repository, and a volume for each posix entry of agentdb:backupRepos."""
    return [REPO_VOLUME, *posix_repo_volumes(ctx.settings)]


def db_command(ctx: StackContext) -> list[str]:
    """pgbackrest-db: link each node's data directory where pgbackrest.conf names it (a cluster), create the
    stanza (idempotent; it waits for PostgreSQL, on a cluster for the leader, and for the archive lock a
    queued archive-push may hold), then serve the repository host.
    """
    lay = ctx.layout
    topology = topo.build(ctx.settings)
    links = [f"ln -sfn {NODE_VOLUMES}/{node.data}/{node.data} {lay.data_root}/{node.data}" for node in topology.nodes]
    pgbackrest = ["pgbackrest", f"--config={lay.etc}/{CONFIG}"]
    stanza = shlex.join([*pgbackrest, f"--stanza={STANZA}", "stanza-create", "--log-level-console=warn"])
    steps = [
        *links,
        f"export PGPASSFILE={shlex.quote(f'{lay.secrets}/{PGPASS}')}",
        f"until {stanza}; do sleep 2; done",
        f"exec {shlex.join([*pgbackrest, 'server'])}",
    ]
    return ["/bin/sh", "-c", " && ".join(steps)]


def scheduler_command(ctx: StackContext, unit: topo.Unit) -> list[str]:
    """The schedule as the local runner runs it: backups and verify on the repository's side, the drill and
    the metrics from the database side."""
    lay, s = ctx.layout, ctx.settings
    base = ["python3", "-m", "infra.backup_scheduler", f"--stanza={STANZA}"]
    if unit.kind == "backup_scheduler":
        return [
            *base,
            "--jobs=backup,verify",
            f"--config={repo_config(ctx)}",
            f"--status-dir={STATUS_DIR}",
        ]
    return [
        *base,
        "--jobs=drill",
        f"--config={lay.etc}/{CONFIG}",
        f"--pgpassfile={lay.secrets}/{PGPASS}",
        f"--status-dir={CHECKS_DIR}",
        f"--metrics-listen=0.0.0.0:{unit.port}",
        f"--verify-status-dir={STATUS_DIR}",
        f"--drill-every-days={s.backup_drill_interval_days}",
        f"--bindir=/usr/lib/postgresql/{POSTGRES_MAJOR}/bin",
        f"--scratch={DRILL_SCRATCH}",
    ]


class Backup(pulumi.ComponentResource):
    """The certificates and the repository host first (`pulumi up` waits for it: PostgreSQL archives to it
    from its first segment), then `database_side()` adds the containers that need PostgreSQL running."""

    def __init__(self, name: str, ctx: StackContext, opts: pulumi.ResourceOptions | None = None):
        super().__init__("agentdb:index:Backup", name, None, opts)
        self._name, self._ctx = name, ctx
        lay = ctx.layout
        self.topology = topo.build(ctx.settings)
        certificates = Certificates(
            f"{name}-tls",
            ctx.stack,
            [lay.host_of("pgbackrest_repo"), lay.host_of("pgbackrest_db")],
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.tls = {key: getattr(certificates, key) for key in OUTPUTS}
        # PostgreSQL's containers, made after this one, upload the database side's files from the context.
        ctx.backup_tls = self.tls
        unit = self.topology.unit("pgbackrest_repo")
        self.containers: dict[str, docker.Container] = {}
        self.repository = self.containers[unit.name] = service_container(
            self,
            name,
            ctx,
            lay.host_of(unit.name),
            image="python",
            user=str(REPO_UID),
            command=["pgbackrest", f"--config={repo_config(ctx)}", "server"],
            health=python_health(unit.health),
            uploads=_repo_files(ctx),
            port=unit.port,
            volumes=repo_volumes(ctx),
            wait=True,
        )

    def database_side(self, servers: dict[str, pulumi.Resource]) -> None:
        """The units that read PostgreSQL: `servers` maps the topology's unit names (postgres, or haproxy and
        the nodes) to their containers, for the units' `after`."""
        ctx, lay, name = self._ctx, self._ctx.layout, self._name
        for unit in self.topology.units:
            if unit.kind not in KINDS[1:]:
                continue
            after = [self.containers.get(a) or servers[a] for a in unit.after]
            if unit.kind == "pgbackrest_db":
                # The stanza it creates first needs PostgreSQL (the leader, through HAProxy) and the repository.
                after = [servers["haproxy" if self.topology.clustered else "postgres"], self.repository]
                spec = {
                    "image": "python",
                    "command": db_command(ctx),
                    "uploads": [rendered_upload(ctx, CONFIG), *db_tls_uploads(ctx), _pgpass(ctx)],
                    "volumes": db_volumes(ctx),
                }
            elif unit.kind == "backup_scheduler":
                spec = {
                    "image": "python",
                    "user": str(REPO_UID),
                    "command": scheduler_command(ctx, unit),
                    "uploads": _repo_files(ctx),
                    "volumes": [*repo_volumes(ctx), STATUS_VOLUME],
                    "extra": {"working_dir": PYTHON_HOME},
                }
            else:
                spec = {
                    "image": "drill",
                    "command": scheduler_command(ctx, unit),
                    "uploads": [rendered_upload(ctx, CONFIG), *db_tls_uploads(ctx), _pgpass(ctx)],
                    "volumes": ["postgres-run", STATUS_VOLUME, CHECKS_VOLUME],
                    "extra": {"working_dir": PYTHON_HOME},
                }
            health = (
                # The repository host's view of the stanza: its configuration and its repository answer.
                ["pgbackrest", f"--config={repo_config(ctx)}", f"--stanza={STANZA}", "info"]
                if unit.health.kind == "process"
                else python_health(unit.health)
            )
            self.containers[unit.name] = service_container(
                self, name, ctx, lay.host_of(unit.name), health=health, port=unit.port, depends_on=after, **spec
            )
        self.register_outputs({"containers": {k: c.name for k, c in self.containers.items()}})
