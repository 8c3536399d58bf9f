"""The one renderer: settings (+ secrets' hashes, + a layout of paths and hosts) -> config files.

The local runner and the Pulumi Docker program both call `render()`; only the Layout differs
(paths and host names), never the tuning or the pool arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from infra import backup_repos, tuning
from infra import credentials as sec
from infra import topology as topo
from infra.databases import REPO_ROOT
from infra.settings import Settings

CONFIG_DIR = REPO_ROOT / "config"
# Server connections PostgreSQL keeps beyond the pools: superuser reserve, exporter, migrations, psql.
EXTRA_CONNECTIONS = 10
CRON_WORKERS = 4
# The pgBackRest stanza: one per cluster, and each stack has its own repository (infra/backup.py).
PGBACKREST_STANZA = "agentdb"
# The common names of the repository host's and the database side's TLS certificates (tls-server-auth).
PGBACKREST_REPO_CN = "pgbackrest-repo"
PGBACKREST_DB_CN = "pgbackrest-db"


@dataclass(frozen=True)
class Layout:
    """Where things are for one realization: directories as the services see them, and host names."""

    etc: str
    run: str
    secrets: str
    postgres_data: str
    redis_data: str
    prometheus_data: str
    alertmanager_data: str
    logs: str
    postgres_logs: str  # PostgreSQL's logging collector writes its CSV files here (agentdb report reads them)
    listen: str  # the address services bind to
    postgres_host: str
    pgbouncer_host: str
    redis_host: str
    alertmanager_host: str
    webhook_host: str
    exporter_hosts: dict[str, str] = field(default_factory=dict)  # exporter -> host Prometheus scrapes
    client_networks: tuple[str, ...] = ("127.0.0.1/32", "::1/128")
    postgres_major: int = 15
    unit_hosts: bool = False  # each unit has its own host name (its container's), else all share `listen`
    # pgBackRest's repository host: its own configuration, certificates, logs and locks, and the repository.
    repo_home: str = "/var/lib/pgbackrest"
    repo_path: str = "/var/lib/pgbackrest/repo"

    @property
    def data_root(self) -> str:
        """The directory that holds PostgreSQL's data directories (one per cluster node)."""
        return self.postgres_data.rsplit("/", 1)[0]

    @property
    def pg_bindir(self) -> str:
        return f"/usr/lib/postgresql/{self.postgres_major}/bin"

    def host_of(self, unit: str) -> str:
        """The address other units reach `unit` at: its container's host name, or the one listen address.

        A host name may not hold an underscore (RFC 1123), so `postgres_exporter-pg-1` is reached as
        `postgres-exporter-pg-1`, the name the Pulumi program gives that unit's container.
        """
        return unit.replace("_", "-") if self.unit_hosts else self.listen

    @classmethod
    def local(cls, state_dir: Path, settings: Settings, postgres_major: int) -> Layout:
        host = settings.bind_address
        return cls(
            etc=str(state_dir / "etc"),
            run=str(state_dir / "run"),
            secrets=str(state_dir / "secrets"),
            postgres_data=str(state_dir / "data" / "postgres"),
            redis_data=str(state_dir / "data" / "redis"),
            prometheus_data=str(state_dir / "data" / "prometheus"),
            alertmanager_data=str(state_dir / "data" / "alertmanager"),
            logs=str(state_dir / "logs"),
            postgres_logs=str(state_dir / "logs" / "postgresql"),
            listen=host,
            postgres_host=host,
            pgbouncer_host=host,
            redis_host=host,
            alertmanager_host=host,
            webhook_host=host,
            exporter_hosts={"postgres_exporter": host, "pgbouncer_exporter": host, "redis_exporter": host},
            postgres_major=postgres_major,
            repo_home=str(state_dir / "repo-host"),
            repo_path=str(state_dir / settings.backup_repo_path),  # an absolute path stays as it is
        )

    @classmethod
    def docker(cls, settings: Settings, postgres_major: int = 17) -> Layout:
        """Paths inside the containers, and each service's host name on the stack's private network.

        Services listen on every interface of their own container; PostgreSQL accepts clients from
        the networks it is attached to (`samenet`), which is the private network and nothing else.
        """
        return cls(
            etc="/etc/agentdb",
            run="/run/agentdb",
            secrets="/etc/agentdb/secrets",
            postgres_data="/var/lib/agentdb/postgres/data",
            redis_data="/var/lib/agentdb/redis",
            prometheus_data="/var/lib/agentdb/prometheus",
            alertmanager_data="/var/lib/agentdb/alertmanager",
            logs="/var/log/agentdb",
            # On PostgreSQL's data volume, beside the data directory: the logs outlive the container.
            postgres_logs="/var/lib/agentdb/postgres/log",
            listen="0.0.0.0",
            postgres_host="postgres",
            pgbouncer_host="pgbouncer",
            redis_host="redis",
            alertmanager_host="alertmanager",
            webhook_host="webhook",
            exporter_hosts={
                "postgres_exporter": "postgres-exporter",
                "pgbouncer_exporter": "pgbouncer-exporter",
                "redis_exporter": "redis-exporter",
            },
            client_networks=("samenet",),
            postgres_major=postgres_major,
            unit_hosts=True,
        )


@dataclass(frozen=True)
class RenderedFile:
    content: str
    mode: int = 0o644  # 0600 for anything derived from a secret


def machine(settings: Settings, postgres_major: int = 15) -> tuning.Machine:
    """The tuning inputs: declared sizes, and max_connections sized for PgBouncer's server side."""
    return tuning.Machine(
        memory_mb=settings.memory_mb,
        cpus=settings.cpus,
        storage=settings.storage,
        workload=settings.workload,
        max_connections=tuning.max_connections_for(
            pools=len(settings.databases),
            pool_size=settings.default_pool_size,
            reserve_pool_size=settings.reserve_pool_size,
            extra=EXTRA_CONNECTIONS,
        ),
        pg_major=postgres_major,
    )


def postgres_parameters(settings: Settings, postgres_major: int = 15) -> dict[str, str]:
    return tuning.tune(machine(settings, postgres_major), cron_workers=CRON_WORKERS)


def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(CONFIG_DIR)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


# rendered path -> (template, mode)
FILES: dict[str, tuple[str, int]] = {
    "postgresql.conf": ("postgresql.conf.j2", 0o644),
    "pg_hba.conf": ("pg_hba.conf.j2", 0o644),
    "pgbouncer.ini": ("pgbouncer.ini.j2", 0o644),
    "userlist.txt": ("userlist.txt.j2", 0o600),
    "redis.conf": ("redis.conf.j2", 0o644),
    "users.acl": ("users.acl.j2", 0o600),
    "prometheus.yml": ("prometheus.yml.j2", 0o644),
    "alertmanager.yml": ("alertmanager.yml.j2", 0o644),
    "pgpass": ("pgpass.j2", 0o600),
    "pgbackrest.conf": ("pgbackrest.conf.j2", 0o644),
    # The repository host's: the local runner moves it into that host's own directory (infra/repository.py).
    "pgbackrest-repo.conf": ("pgbackrest-repo.conf.j2", 0o600),
}


# The files of a PostgreSQL agentdb runs itself (none for postgresMode external).
_SERVER_FILES = {"postgresql.conf", "pg_hba.conf", "pgbackrest.conf"}

# postgresql.conf lines that name this node's own paths or ports: Patroni sets them per node.
_NODE_PARAMETERS = {
    "listen_addresses",
    "port",
    "hba_file",
    "unix_socket_directories",
    "archive_command",
    "log_directory",
}


def conf_parameters(text: str) -> dict[str, str]:
    """`name = value` lines of a postgresql.conf, values unquoted (for Patroni's parameters)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if not sep:
            raise ValueError(f"postgresql.conf line without '=': {line!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == "'":
            value = value[1:-1].replace("''", "'")
        out[name.strip()] = value
    return out


def _hba_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def render(settings: Settings, secrets: dict[str, str], layout: Layout) -> dict[str, RenderedFile]:
    """Every config file of the stack, keyed by file name."""
    env = _env()
    topology = topo.build(settings)
    context = {
        "topology": topology,
        "primary_host": topology.external_host
        or (layout.host_of("haproxy") if topology.clustered else layout.postgres_host),
        "settings": settings,
        "layout": layout,
        "pg": postgres_parameters(settings, layout.postgres_major),
        "databases": settings.enabled,
        "scram": {role: sec.scram_sha256(role, pw) for role, pw in secrets.items()},
        "redis_hash": {name: sec.redis_acl_hash(pw) for name, pw in secrets.items()},
        "secrets": secrets,
        "names": sec,
        "max_db_connections": settings.default_pool_size + settings.reserve_pool_size,
        "cron_workers": CRON_WORKERS,
        "pgbackrest": {
            "stanza": PGBACKREST_STANZA,
            "repo_cn": PGBACKREST_REPO_CN,
            "db_cn": PGBACKREST_DB_CN,
            "compress": tuning.backup_compression(settings.cpus),
            # repoN of each agentdb:backupRepos entry the repository host keeps (posix, s3), in order.
            "repo_index": [i + 2 for i, r in enumerate(settings.backup_repos) if r.type != "host"],
            "s3_secrets": backup_repos.s3_secret_names,
        },
    }
    files = {
        name: RenderedFile(env.get_template(template).render(**context), mode)
        for name, (template, mode) in FILES.items()
        # An external server's configuration and backups are its provider's.
        if not (topology.external and name in _SERVER_FILES)
    }
    if topology.clustered:
        # One Patroni file per node from one template; PostgreSQL's parameters are the ones
        # postgresql.conf would carry, so a node is tuned exactly like the single server.
        parameters = conf_parameters(files["postgresql.conf"].content)
        dcs_parameters = {k: v for k, v in parameters.items() if k not in _NODE_PARAMETERS}
        pg_hba = _hba_lines(files["pg_hba.conf"].content)
        loop_wait = settings.patroni_loop_wait
        cluster_context = {
            **context,
            "dcs_parameters": dcs_parameters,
            "pg_hba": pg_hba,
            "etcd_hosts": [f"{layout.host_of(m.name)}:{m.port_of('client')}" for m in topology.members],
            # Patroni needs ttl >= loop_wait + 2 * retry_timeout.
            "retry_timeout": (settings.patroni_ttl - loop_wait) // 2,
        }
        for node in topology.nodes:
            text = env.get_template("patroni.yml.j2").render(**cluster_context, node=node)
            files[f"patroni-{node.name}.yml"] = RenderedFile(text, 0o600)
        files["haproxy.cfg"] = RenderedFile(env.get_template("haproxy.cfg.j2").render(**context))
    if settings.tools:
        from infra import pgadmin  # it builds on this module's Layout and RenderedFile

        files.update(pgadmin.files(settings, secrets, layout))
    # Alert rules: *.yml.j2 are rendered (their `for:` scales with settings), *.yml copied as they are.
    rules = CONFIG_DIR / "rules"
    for path in sorted(rules.glob("*.yml*")) if rules.is_dir() else []:
        if path.name.endswith(".test.yml"):
            continue
        if path.suffix == ".j2":
            text = env.get_template(f"rules/{path.name}").render(**context)
            files[f"rules/{path.name.removesuffix('.j2')}"] = RenderedFile(text)
        else:
            files[f"rules/{path.name}"] = RenderedFile(path.read_text())
    return files


def write(files: dict[str, RenderedFile], directory: Path, owner: tuple[int, int] | None = None) -> None:
    """Write rendered files, each with its mode (and owner, when the services run as another user)."""
    import os

    directory.mkdir(parents=True, exist_ok=True)
    for name, rendered in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if owner:
            os.chown(path.parent, *owner)
        tmp = path.with_name(f".{path.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, rendered.mode)
        with os.fdopen(fd, "w") as handle:
            handle.write(rendered.content)
        os.chmod(tmp, rendered.mode)
        if owner:
            os.chown(tmp, *owner)
        os.replace(tmp, path)
