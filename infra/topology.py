"""What runs, said once: the units a stack's settings ask for, with their ports, files and health checks.

Pure (no I/O): the local runner maps each unit to a supervisord program, and the Pulumi program is
meant to map each to a container. With `agentdb:replicas: 0` the stack is one PostgreSQL; above 0 it
is a cluster as Patroni's own examples run one: etcd members as the DCS, one Patroni per PostgreSQL
node, and HAProxy routing a read-write port to the leader and a read-only port to the replicas.
Ports per node or member follow one rule, the setting's base port + index - 1, in both realizations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic.alias_generators import to_camel

if TYPE_CHECKING:
    from infra.settings import Settings

ETCD_MEMBERS = 3  # a quorum survives one lost member; more buys nothing on one machine

HealthKind = Literal["postgres", "pgbouncer", "redis", "http", "process", "tcp"]


@dataclass(frozen=True)
class Health:
    """How to tell a unit is healthy, as data: the realizations turn it into a probe."""

    kind: HealthKind
    port: int = 0
    path: str = ""


@dataclass(frozen=True)
class Port:
    """One port a unit listens on, with the setting it derives from (named in conflict errors)."""

    role: str
    number: int
    setting: str  # snake_case field of Settings

    @property
    def key(self) -> str:
        """The stack-file key the port derives from, as error messages name it."""
        return f"agentdb:{to_camel(self.setting)}"


@dataclass(frozen=True)
class Unit:
    """One supervisord program, one container."""

    name: str
    kind: str  # the binary family: postgres, patroni, etcd, haproxy, pgbouncer, ...
    group: str  # the Pulumi component it belongs to
    ports: tuple[Port, ...]
    health: Health
    after: tuple[str, ...] = ()
    files: tuple[str, ...] = ()  # rendered files (under etc/) it reads
    data: str | None = None  # its data directory (a volume in Docker)
    index: int = 0  # 1-based position among its kind's members (cluster nodes, etcd members)
    target: str | None = None  # the unit it reads metrics from (an exporter of one cluster node)
    after_baseline: bool = False  # started once the baseline (roles, migrations, cron sync) is applied

    @property
    def port(self) -> int:
        """Its main port (0 when it listens nowhere)."""
        return self.ports[0].number if self.ports else 0

    def port_of(self, role: str) -> int:
        """The port this unit serves `role` on (postgres, rest, client, peer, primary, replica, ...)."""
        return next(p.number for p in self.ports if p.role == role)


@dataclass(frozen=True)
class ExternalServer:
    """A PostgreSQL agentdb does not run: where it is, how to reach it, as whom agentdb administers it."""

    host: str
    port: int
    ssl_mode: str
    admin_user: str


@dataclass(frozen=True)
class Topology:
    """The units, and the endpoints clients and PgBouncer use."""

    units: tuple[Unit, ...]
    primary_port: int  # where writes go: PostgreSQL itself, or HAProxy's read-write port
    replica_port: int | None  # HAProxy's read-only port; None without replicas
    server: ExternalServer | None = None  # the server agentdb does not run (postgresMode external); None: its own

    @property
    def external(self) -> bool:
        """True when PostgreSQL is a server agentdb does not run: no PostgreSQL unit, no backups of ours."""
        return self.server is not None

    @property
    def external_host(self) -> str | None:
        """The external server's host, None when agentdb runs PostgreSQL itself."""
        return self.server.host if self.server else None

    @property
    def clustered(self) -> bool:
        """True when Patroni, etcd and HAProxy run (agentdb:replicas > 0)."""
        return self.replica_port is not None

    def of_kind(self, kind: str) -> list[Unit]:
        """The units of one kind, in order."""
        return [u for u in self.units if u.kind == kind]

    @property
    def nodes(self) -> list[Unit]:
        """The PostgreSQL nodes Patroni manages (empty for a single PostgreSQL)."""
        return self.of_kind("patroni")

    @property
    def members(self) -> list[Unit]:
        """The etcd members."""
        return self.of_kind("etcd")

    def unit(self, name: str) -> Unit:
        """The unit called `name` (KeyError listing the units otherwise)."""
        for unit in self.units:
            if unit.name == name:
                return unit
        raise KeyError(f"no unit {name!r}; units: {', '.join(u.name for u in self.units)}")

    def depth(self, name: str) -> int:
        """How many units must start before this one, along the longest `after` chain."""
        after = self.unit(name).after
        return 1 + max((self.depth(a) for a in after), default=-1)


def _p(role: str, number: int, setting: str) -> Port:
    return Port(role, number, setting)


def build(settings: Settings) -> Topology:
    """The units `settings` ask for, in the order `up` waits for their health."""
    s = settings
    cluster = s.replicas > 0
    units: list[Unit] = []
    if cluster:
        members = [
            Unit(
                f"etcd-{i}",
                "etcd",
                "cluster",
                (
                    _p("client", s.etcd_client_port + i - 1, "etcd_client_port"),
                    _p("peer", s.etcd_peer_port + i - 1, "etcd_peer_port"),
                ),
                Health("http", s.etcd_client_port + i - 1, "/health"),
                data=f"etcd-{i}",
                index=i,
            )
            for i in range(1, ETCD_MEMBERS + 1)
        ]
        nodes = [
            Unit(
                f"pg-{i}",
                "patroni",
                "cluster",
                (
                    _p("postgres", s.postgres_port + i - 1, "postgres_port"),
                    _p("rest", s.patroni_port + i - 1, "patroni_port"),
                ),
                # Patroni's /health answers 200 once its PostgreSQL runs, leader or replica.
                Health("http", s.patroni_port + i - 1, "/health"),
                after=tuple(m.name for m in members),
                files=(f"patroni-pg-{i}.yml",),
                data=f"pg-{i}",
                index=i,
            )
            for i in range(1, s.replicas + 2)
        ]
        units += members + nodes
        units.append(
            Unit(
                "haproxy",
                "haproxy",
                "cluster",
                (
                    _p("primary", s.haproxy_port, "haproxy_port"),
                    _p("replica", s.haproxy_replica_port, "haproxy_replica_port"),
                ),
                # Healthy when the leader answers through the read-write port.
                Health("postgres", s.haproxy_port),
                after=tuple(n.name for n in nodes),
                files=("haproxy.cfg",),
            )
        )
        database, servers = "haproxy", nodes
        primary_port, replica_port = s.haproxy_port, s.haproxy_replica_port
    elif s.postgres_mode == "external":
        # A topology with no PostgreSQL node: everything else points at the provider's server.
        database, servers = None, []
        primary_port, replica_port = s.postgres_port, None
    else:
        units.append(
            Unit(
                "postgres",
                "postgres",
                "postgres",
                (_p("postgres", s.postgres_port, "postgres_port"),),
                Health("postgres", s.postgres_port),
                files=("postgresql.conf", "pg_hba.conf"),
                data="postgres",
            )
        )
        database, servers = "postgres", units[-1:]
        primary_port, replica_port = s.postgres_port, None

    def service(name: str, kind: str, group: str, setting: str | None, health: Health, **kw) -> Unit:
        ports = (_p(kind, getattr(s, setting), setting),) if setting else ()
        return Unit(name, kind, group, ports, health, **kw)

    # A postgres_exporter per PostgreSQL: on a cluster each node's own (a replica's state, lag and
    # statistics exist only on it), on the same rule of ports as the nodes: base + index - 1.
    postgres_exporters = [
        Unit(
            f"postgres_exporter-{node.name}" if cluster else "postgres_exporter",
            "postgres_exporter",
            "monitoring",
            (_p("postgres_exporter", s.postgres_exporter_port + i, "postgres_exporter_port"),),
            Health("http", s.postgres_exporter_port + i, "/metrics"),
            after=(node.name,),
            files=("postgres_exporter_queries.yaml",),
            index=node.index,
            target=node.name,
        )
        for i, node in enumerate(servers)
    ]
    if database is None:
        # One exporter, as the monitoring role, against the external server.
        postgres_exporters = [
            Unit(
                "postgres_exporter",
                "postgres_exporter",
                "monitoring",
                (_p("postgres_exporter", s.postgres_exporter_port, "postgres_exporter_port"),),
                Health("http", s.postgres_exporter_port, "/metrics"),
                files=("postgres_exporter_queries.yaml",),
            )
        ]
    at_server = (database,) if database else ()
    units += [
        service(
            "pgbouncer",
            "pgbouncer",
            "pgbouncer",
            "pgbouncer_port",
            Health("pgbouncer", s.pgbouncer_port),
            after=at_server,
            files=("pgbouncer.ini", "userlist.txt"),
        ),
        service(
            "redis",
            "redis",
            "redis",
            "redis_port",
            Health("redis", s.redis_port),
            files=("redis.conf", "users.acl"),
            data="redis",
        ),
        *postgres_exporters,
        service(
            "pgbouncer_exporter",
            "pgbouncer_exporter",
            "monitoring",
            "pgbouncer_exporter_port",
            Health("http", s.pgbouncer_exporter_port, "/metrics"),
            after=("pgbouncer",),
            files=("pgpass",),
        ),
        service(
            "redis_exporter",
            "redis_exporter",
            "monitoring",
            "redis_exporter_port",
            Health("http", s.redis_exporter_port, "/metrics"),
            after=("redis",),
        ),
        service("webhook", "webhook", "monitoring", "webhook_port", Health("http", s.webhook_port, "/health")),
        service(
            "alertmanager",
            "alertmanager",
            "monitoring",
            "alertmanager_port",
            Health("http", s.alertmanager_port, "/-/ready"),
            after=("webhook",),
            files=("alertmanager.yml",),
            data="alertmanager",
        ),
        service(
            "prometheus",
            "prometheus",
            "monitoring",
            "prometheus_port",
            Health("http", s.prometheus_port, "/-/ready"),
            after=(*(e.name for e in postgres_exporters), "pgbouncer_exporter", "redis_exporter", "alertmanager"),
            files=("prometheus.yml",),
            data="prometheus",
        ),
    ]
    if database:
        # The provider takes an external server's backups: no pgBackRest of ours. Ours: pgBackRest's
        # dedicated repository host (its TLS server, its own user), the database side's TLS server through
        # which the repository host reads the data directories for a backup, the backup schedule on the
        # repository host (pgBackRest takes backups only there), and the checks from the database side
        # (verify, restore drill, and the backup metrics Prometheus scrapes, read through the same TLS
        # path as archiving, so an unreachable repository host shows).
        units += [
            service(
                "pgbackrest_repo",
                "pgbackrest_repo",
                "backup",
                "backup_repo_port",
                Health("tcp", s.backup_repo_port),
                files=("pgbackrest-repo.conf",),
            ),
            service(
                "pgbackrest_db",
                "pgbackrest_db",
                "backup",
                "backup_agent_port",
                Health("tcp", s.backup_agent_port),
                files=("pgbackrest.conf",),
            ),
            service(
                "backup_scheduler",
                "backup_scheduler",
                "backup",
                None,
                Health("process"),
                after=(database, "pgbackrest_repo", "pgbackrest_db"),
                files=("pgbackrest-repo.conf",),
            ),
            service(
                "backup_checks",
                "backup_checks",
                "backup",
                "backup_metrics_port",
                Health("http", s.backup_metrics_port, "/metrics"),
                after=(database, "pgbackrest_repo"),
                files=("pgbackrest.conf",),
            ),
        ]
    if s.postgres_mode == "external":
        # A managed server may lack pg_cron: then our scheduler runs the cron jobs (infra/scheduler.py).
        # It starts after the baseline, so it finds pg_cron as the baseline left it, and the schemas at head.
        units.append(
            service(
                "scheduler",
                "scheduler",
                "scheduler",
                None,
                Health("process"),
                files=("scheduler.json",),
                after_baseline=True,
            )
        )
    if s.tools:
        units.append(
            service(
                "pgadmin",
                "pgadmin",
                "tools",
                "pgadmin_port",
                # pgAdmin's own liveness endpoint; it answers once the configuration database exists.
                Health("http", s.pgadmin_port, "/misc/ping"),
                after=("pgbouncer",),
                files=("pgadmin/config_local.py", "pgadmin/servers.json", "pgadmin/pgpass"),
                data="pgadmin",
            )
        )
    server = (
        ExternalServer(s.postgres_host, s.postgres_port, s.postgres_ssl_mode, s.postgres_admin_user)
        if database is None
        else None
    )
    return Topology(tuple(units), primary_port, replica_port, server)


def check_ports(settings: Settings) -> None:
    """Refuse two units on one port, naming both settings keys (ValueError, as settings validators raise)."""
    seen: dict[int, tuple[str, Port]] = {}
    # Grafana runs only in the Docker realization, where it is published on its port.
    grafana = ("grafana", (_p("grafana", settings.grafana_port, "grafana_port"),))
    for name, ports in [*((u.name, u.ports) for u in build(settings).units), grafana]:
        for port in ports:
            if port.number > 65535:
                raise ValueError(f"{name}'s {port.role} port {port.number} (from {port.key}) is above 65535")
            if port.number in seen:
                other_unit, other = seen[port.number]
                raise ValueError(f"{other_unit} and {name} both use port {port.number} ({other.key} and {port.key})")
            seen[port.number] = (name, port)
