"""The one typed settings model, read from the `agentdb:` keys of `Pulumi.<stack>.yaml`.

The Pulumi program and the local runner both call `load()`, so one stack file drives both.
Every key is camelCase in the stack file, snake_case here; every field carries its description
and default, from which `Pulumi.yaml`'s `config:` block is written (`agentdb settings-schema`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

from infra.backup_repos import RepoEntry
from infra.databases import DATABASES, REPO_ROOT

NAMESPACE = "agentdb"
# Keys that only Pulumi's encrypted config may hold; in clear in a stack file they are refused.
SECRET_KEYS = {
    "postgresAdminPassword": "never in clear in a stack file: `pulumi config set --secret"
    " agentdb:postgresAdminPassword` for Pulumi, or export AGENTDB_POSTGRES_ADMIN_PASSWORD for the local runner",
}
STACK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class SettingsError(ValueError):
    """Invalid settings: the message names the key and the rule."""


def _f(default: Any, description: str, **kw: Any) -> Any:
    return Field(default, description=description, **kw)


class Settings(BaseModel):
    """Everything a stack declares. Sizes feed infra.tuning; ports and pools feed the rendered files."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)

    # Sizes: the tuning inputs, and the container limits in the Docker realization.
    memory_mb: int = _f(2048, "Memory for PostgreSQL in MiB; tuning and the container limit use it", gt=0)
    cpus: int = _f(2, "CPUs for PostgreSQL; tuning and the container limit use it", gt=0, le=256)
    storage: Literal["ssd", "hdd", "san"] = _f("ssd", "Storage kind behind the data directory")
    workload: Literal["web", "oltp", "dw", "mixed", "desktop"] = _f("oltp", "PGTune workload profile")

    # Where services listen.
    bind_address: str = _f("127.0.0.1", "Address every service binds to in the local runner")
    postgres_port: int = _f(
        5432,
        "PostgreSQL port; in a cluster node N listens on this port + N - 1; with postgresMode external the"
        " managed server's port",
        ge=1,
        le=65535,
    )
    pgbouncer_port: int = _f(6432, "PgBouncer port (applications connect here)", ge=1, le=65535)
    redis_port: int = _f(6379, "Redis port", ge=1, le=65535)
    prometheus_port: int = _f(9090, "Prometheus port", ge=1, le=65535)
    alertmanager_port: int = _f(9093, "Alertmanager port", ge=1, le=65535)
    webhook_port: int = _f(9095, "Local Alertmanager webhook receiver port", ge=1, le=65535)
    postgres_exporter_port: int = _f(
        9187, "postgres_exporter port; in a cluster node N's exporter uses this + N - 1", ge=1, le=65535
    )
    pgbouncer_exporter_port: int = _f(9127, "pgbouncer_exporter port", ge=1, le=65535)
    redis_exporter_port: int = _f(9121, "redis_exporter port", ge=1, le=65535)
    grafana_port: int = _f(3000, "Grafana port (started only where a grafana-server binary exists)", ge=1, le=65535)
    pgadmin_port: int = _f(5050, "Tools: pgAdmin 4 web port (agentdb:tools)", ge=1, le=65535)
    # The cluster's ports (agentdb:replicas > 0); per node or member N the port is the base + N - 1,
    # as in Patroni's own example files.
    patroni_port: int = _f(8008, "Cluster: Patroni REST API port of node 1; node N uses this + N - 1", ge=1, le=65535)
    etcd_client_port: int = _f(
        2379, "Cluster: etcd client port of member 1; member N uses this + N - 1", ge=1, le=65535
    )
    etcd_peer_port: int = _f(2382, "Cluster: etcd peer port of member 1; member N uses this + N - 1", ge=1, le=65535)
    haproxy_port: int = _f(5000, "Cluster: HAProxy read-write port, routed to the leader", ge=1, le=65535)
    haproxy_replica_port: int = _f(
        5001, "Cluster: HAProxy read-only port, routed to replicas within replicaMaxLag", ge=1, le=65535
    )

    # Where PostgreSQL runs: agentdb's own server (local), or one it does not own (external: RDS, Cloud SQL,
    # Supabase, ...). The admin's password is a secret, never a setting (infra/external.py reads it).
    postgres_mode: Literal["local", "external"] = _f(
        "local", "local: agentdb runs PostgreSQL; external: it uses the server at postgresHost:postgresPort"
    )
    postgres_host: str = _f("localhost", "External: host name or address of the PostgreSQL agentdb does not run")
    postgres_admin_user: str = _f(
        "postgres", "External: the admin role agentdb connects as (CREATEROLE and CREATEDB; no superuser needed)"
    )
    postgres_ssl_mode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] = _f(
        "require", "External: libpq sslmode of every connection to the server (PgBouncer, exporter, migrations)"
    )

    # High availability: Patroni nodes with etcd as the DCS and HAProxy in front (infra/topology.py).
    replicas: int = _f(
        0, "Replicas beside the leader; 0 runs one PostgreSQL without Patroni, etcd or HAProxy", ge=0, le=8
    )
    synchronous_mode: bool = _f(
        False, "Cluster: Patroni synchronous_mode, so no acknowledged commit is lost at failover"
    )
    maximum_lag_on_failover: int = _f(
        1048576, "Cluster: bytes a replica may lag and still be promoted by a failover", ge=0
    )
    replica_max_lag: int = _f(
        1048576, "Cluster: bytes a replica may lag and still get reads through the read-only port", ge=0
    )
    patroni_ttl: int = _f(
        30, "Cluster: seconds the leader lock lives; a dead leader is replaced after about this long", ge=20, le=3600
    )
    patroni_loop_wait: int = _f(10, "Cluster: seconds between Patroni's HA loop runs", ge=1, le=600)

    # Operator tools: pgAdmin 4 with every enabled database registered (infra/pgadmin.py).
    tools: bool = _f(False, "Run the operator tools (pgAdmin 4 on pgadminPort); on in dev, off in staging and prod")

    # Which application databases exist.
    databases: list[str] = _f(
        ["qlearning", "orchestrator", "afs", "agentic"], "Enabled application databases", min_length=1
    )

    # PgBouncer.
    pool_mode: Literal["transaction", "session", "statement"] = _f("transaction", "PgBouncer pool_mode")
    default_pool_size: int = _f(20, "Server connections per database and user pair", ge=1, le=10000)
    reserve_pool_size: int = _f(5, "Extra server connections a busy pool may borrow", ge=0, le=10000)
    max_client_conn: int = _f(1000, "Client connections PgBouncer accepts", ge=1, le=100000)
    max_prepared_statements: int = _f(200, "Prepared statements PgBouncer tracks per server connection", ge=0)

    # Redis.
    redis_maxmemory_mb: int = _f(256, "Redis maxmemory in MiB", gt=0)
    redis_maxmemory_policy: Literal[
        "noeviction",
        "allkeys-lru",
        "allkeys-lfu",
        "allkeys-random",
        "volatile-lru",
        "volatile-lfu",
        "volatile-random",
        "volatile-ttl",
    ] = _f("allkeys-lru", "Redis eviction policy")
    redis_persistence: Literal["none", "rdb", "aof"] = _f("rdb", "Redis persistence: none, RDB snapshots or AOF")

    # Retention, in the units the schemas use.
    retention_days: int = _f(
        30,
        "Q-learning TTL: a new or upserted q_values, trajectories or patterns row expires this many days later",
        gt=0,
        le=36500,
    )
    partition_premake_months: int = _f(
        3, "Monthly partitions pg_partman keeps made ahead (orchestrator and agentic)", ge=2, le=24
    )
    partition_retention_months: int = _f(12, "Months after which old partitions are detached", gt=0)
    afs_query_log_retention_days: int = _f(90, "AFS: days query_logs are kept", gt=0)
    afs_fork_cleanup_hours: int = _f(24, "AFS: hours after which a finished execution's fork_id is cleared", gt=0)
    agentic_conversation_active_days: int = _f(90, "agentic: days a conversation stays active", gt=0)
    agentic_conversation_archive_days: int = _f(365, "agentic: days before archived conversation is deleted", gt=0)
    agentic_decision_active_days: int = _f(182, "agentic: days a decision stays active", gt=0)
    agentic_decision_archive_days: int = _f(730, "agentic: days before archived decisions are deleted", gt=0)
    agentic_audit_retention_days: int = _f(1095, "agentic: days the audit log is kept", gt=0)
    agentic_trust_rollup_after_days: int = _f(30, "agentic: days after which trust metrics roll up daily", gt=0)
    backup_retention_full: int = _f(2, "pgBackRest: full backups kept", ge=1)
    backup_metrics_port: int = _f(
        9199, "Backup scheduler's Prometheus metrics port (backups, verify, restore drill, repository)", ge=1, le=65535
    )
    backup_drill_interval_days: int = _f(
        7, "Days between scheduled restore drills; RestoreDrillFailing warns after this + 1 day", ge=1, le=90
    )
    backup_retention_diff: int = _f(
        6, "pgBackRest: differential backups kept (a week of dailies between weekly fulls)", ge=1
    )
    backup_retention_archive: int = _f(
        0,
        "pgBackRest: full backups whose WAL is kept for point-in-time recovery (older ones keep only the WAL"
        " that makes them consistent); 0 keeps it for every kept full backup",
        ge=0,
    )
    # The repository host (infra/repository.py): pgBackRest's TLS server under its own user, away from the data.
    backup_repo_path: str = _f(
        "repo",
        "pgBackRest repository host: where the repository is kept; a relative path is under the stack's state"
        " directory (local runner)",
    )
    backup_repo_port: int = _f(8432, "pgBackRest repository host's TLS server port", ge=1, le=65535)
    backup_agent_port: int = _f(
        8442,
        "The database side's pgBackRest TLS server port: the repository host takes backups through it",
        ge=1,
        le=65535,
    )
    backup_repos: list[RepoEntry] = _f(
        [],
        "pgBackRest: further repositories, rendered as repo2, repo3, ...: each {type: posix, path},"
        " {type: s3, endpoint, bucket, region, path, uriStyle} or {type: host, host, port, config, caFile,"
        " certFile, keyFile} (docs/backup.md)",
        max_length=3,
    )
    backup_encryption: bool = _f(
        False, "pgBackRest: encrypt the repository (aes-256-cbc) with a generated passphrase kept with the secrets"
    )

    # What PostgreSQL logs, for `agentdb report` (pgBadger). -1 turns a threshold off where PostgreSQL allows it.
    log_slow_statement_ms: int = _f(
        100,
        "Log every statement that runs at least this many ms (log_min_duration_statement; -1 off); the seeds'"
        " latency alert is 100 ms",
        ge=-1,
    )
    log_lock_wait_ms: int = _f(
        1000,
        "Log a session that waits this many ms for a lock (deadlock_timeout, with log_lock_waits on); deadlocks"
        " are also detected after this wait",
        ge=1,
    )
    log_temp_files_kb: int = _f(
        0, "Log temporary files of at least this many kB (log_temp_files; 0 all, -1 off)", ge=-1
    )
    log_autovacuum_ms: int = _f(
        1000,
        "Log autovacuum and autoanalyze runs of at least this many ms (log_autovacuum_min_duration; -1 off)",
        ge=-1,
    )
    log_checkpoint_warning_s: int = _f(
        30,
        "Warn when WAL fills up and forces checkpoints closer than this many seconds (checkpoint_warning; 0 off);"
        " every checkpoint is logged",
        ge=0,
    )
    log_rotation_age_min: int = _f(
        60,
        "Start a new PostgreSQL log file every this many minutes (log_rotation_age); must divide a day, file"
        " names repeat after a week and are then overwritten",
        ge=1,
        le=1440,
    )
    log_rotation_size_mb: int = _f(
        100, "Start a new PostgreSQL log file once one reaches this many MiB (log_rotation_size; 0 off)", ge=0, le=2047
    )

    # Monitoring.
    scrape_interval_s: int = _f(15, "Prometheus scrape and evaluation interval in seconds", ge=1, le=3600)
    alert_for_scale: float = _f(1.0, "Multiplier on every alert's `for:` duration (tests use less)", gt=0, le=10)
    runbook_base_url: str = _f(
        "docs/runbooks/",
        "Prefix of every alert's runbook_url, followed by <AlertName>.md (for example your repository's"
        " web address of docs/runbooks/)",
    )

    # Security and the Docker realization.
    tls: bool = _f(False, "TLS for PostgreSQL and PgBouncer client connections")
    publish_postgres: bool = _f(False, "Docker: publish PostgreSQL's port on the host (never in prod)")
    publish_redis: bool = _f(False, "Docker: publish Redis's port on the host")
    publish_prometheus: bool = _f(False, "Docker: publish Prometheus's port on the host")
    base_image: str = _f("debian:trixie-slim", "Docker: Debian base image for the service images")
    grafana_image: str = _f("grafana/grafana-oss:11.3.0", "Docker: pinned Grafana image")
    drop_data_on_destroy: bool = _f(
        False, "Docker: pulumi destroy downgrades the schemas, unschedules the jobs and deletes the data volumes"
    )

    @field_validator("databases")
    @classmethod
    def _known_databases(cls, value: list[str]) -> list[str]:
        unknown = [name for name in value if name not in DATABASES]
        if unknown:
            raise ValueError(f"unknown database {unknown[0]!r}; known: {', '.join(DATABASES)}")
        if len(set(value)) != len(value):
            raise ValueError("a database is listed twice")
        return value

    @field_validator("bind_address")
    @classmethod
    def _address(cls, value: str) -> str:
        import ipaddress

        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address") from None
        return value

    @field_validator("postgres_host")
    @classmethod
    def _host(cls, value: str) -> str:
        # It lands in pgbouncer.ini and libpq URLs: one token of a DNS name or an address, nothing else.
        if not re.fullmatch(r"[A-Za-z0-9_.:-]{1,253}", value):
            raise ValueError(f"{value!r} is not a host name or address")
        return value

    @field_validator("postgres_admin_user")
    @classmethod
    def _role_name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$-]{0,62}", value):
            raise ValueError(f"{value!r} is not a PostgreSQL role name (letters, digits, _ $ -; at most 63)")
        return value

    @field_validator("log_rotation_age_min")
    @classmethod
    def _divides_a_day(cls, value: int) -> int:
        # Log file names carry the weekday, hour and minute: rotations at the same times every day make
        # the same names come back a week later, where log_truncate_on_rotation overwrites them.
        if 1440 % value:
            raise ValueError(f"{value} must divide a day (1440 minutes), for example 15, 60 or 1440")
        return value

    @field_validator("backup_repo_path")
    @classmethod
    def _repo_path(cls, value: str) -> str:
        # The path is written into pgbackrest.conf: a line break or a '..' would put the repository elsewhere.
        if not value.strip() or any(not c.isprintable() for c in value) or ".." in value.split("/"):
            raise ValueError(f"{value!r} must be a path with no '..' parts or control characters")
        # Inside the database side's state the repository would be lost with it, which is what it is for.
        if value.rstrip("/") == "" or value.split("/")[0] in {"etc", "run", "logs", "secrets", "data", "repo-host"}:
            raise ValueError(
                f"{value!r} is the root or inside the stack's own state (etc, run, logs, secrets, data, repo-host)"
            )
        return value.rstrip("/")

    @field_validator("runbook_base_url")
    @classmethod
    def _runbook_base(cls, value: str) -> str:
        if not value.endswith("/") or any(c.isspace() or c in "\"'{}" for c in value):
            raise ValueError(f"{value!r} must end with / and hold no spaces, quotes or braces")
        return value

    @field_validator("base_image", "grafana_image")
    @classmethod
    def _pinned(cls, value: str) -> str:
        name, _, tag = value.rpartition(":")
        if not name or not tag or tag == "latest" or "/" in tag:
            raise ValueError(f"image {value!r} must be pinned to a tag other than latest")
        return value

    @model_validator(mode="after")
    def _cross_checks(self) -> Settings:
        if self.default_pool_size + self.reserve_pool_size > self.max_client_conn:
            raise ValueError(
                "defaultPoolSize + reservePoolSize "
                f"({self.default_pool_size + self.reserve_pool_size}) exceeds maxClientConn ({self.max_client_conn})"
            )
        if self.patroni_loop_wait * 2 > self.patroni_ttl:
            # Patroni needs ttl >= loop_wait + 2 * retry_timeout, and retry_timeout must stay >= loop_wait/2.
            raise ValueError(
                f"patroniLoopWait ({self.patroni_loop_wait}) must be at most half of patroniTtl ({self.patroni_ttl})"
            )
        if self.postgres_mode == "external" and self.replicas:
            # Replication of a server agentdb does not run is its provider's (read replicas, failover).
            raise ValueError(
                f"replicas ({self.replicas}) must be 0 with postgresMode external: the provider runs the replicas"
            )
        if self.backup_retention_archive > self.backup_retention_full:
            raise ValueError(
                f"backupRetentionArchive ({self.backup_retention_archive}) must be at most backupRetentionFull"
                f" ({self.backup_retention_full}): WAL is kept only for full backups that are kept"
            )
        posix = [r.path for r in self.backup_repos if r.type == "posix"]
        if len(set(posix)) != len(posix):
            raise ValueError("backupRepos: two posix entries name the same path; each repository needs its own")
        from infra import topology  # the topology says what runs, so it knows which ports must differ

        topology.check_ports(self)
        return self

    def ports(self) -> dict[str, int]:
        """Setting name (without `_port`) -> base port, for every port setting.

        What listens where, per node and member, is `infra.topology.build(settings)`.
        """
        return {
            name.removesuffix("_port"): getattr(self, name)
            for name in type(self).model_fields
            if name.endswith("_port")
        }

    @property
    def enabled(self) -> list:
        """The enabled databases as infra.databases.Database records, in declared order."""
        return [DATABASES[key] for key in self.databases]


class _DuplicateKey(yaml.YAMLError):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise _DuplicateKey(str(key))
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def stack_file(stack: str, root: Path = REPO_ROOT) -> Path:
    return root / f"Pulumi.{stack}.yaml"


def _key_of(loc: tuple) -> str:
    field = str(loc[0]) if loc else ""
    if field in Settings.model_fields:
        field = to_camel(field)
    # Inside a list of typed entries (agentdb:backupRepos): the entry's index and field, not its type tag.
    for part in loc[1:]:
        if isinstance(part, int):
            field += f"[{part}]"
        elif part not in {"posix", "s3", "host"}:
            field += f".{to_camel(str(part))}"
    return f"{NAMESPACE}:{field}" if field else NAMESPACE


def parse(config: dict[str, Any], source: str = "settings") -> Settings:
    """Build Settings from a Pulumi `config:` mapping; SettingsError names the first bad key."""
    values: dict[str, Any] = {}
    for key, value in (config or {}).items():
        namespace, sep, name = str(key).partition(":")
        if not sep:
            raise SettingsError(f"{source}: key {key!r} has no namespace; write {NAMESPACE}:{key}")
        if namespace != NAMESPACE:
            continue  # other providers' keys (docker:host, ...) are Pulumi's business
        if isinstance(value, dict) and "secure" in value:
            continue  # Pulumi secrets are read by the Pulumi program, not here
        if name in SECRET_KEYS:
            raise SettingsError(f"{source}: {key}: {SECRET_KEYS[name]}")
        values[name] = value
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = _key_of(err["loc"])
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown setting"
        raise SettingsError(f"{source}: {key}: {message}") from None


def load(stack: str, root: Path = REPO_ROOT, path: Path | None = None) -> Settings:
    """Read and validate `Pulumi.<stack>.yaml` (or `path`)."""
    if not STACK_NAME.match(stack):
        raise SettingsError(f"stack name {stack!r} must be letters, digits, '-', '_' or '.'")
    file = path or stack_file(stack, root)
    if not file.is_file():
        raise SettingsError(f"{file}: no such stack file; create it or pick another --stack")
    try:
        doc = yaml.load(file.read_text(), Loader=_StrictLoader) or {}
    except _DuplicateKey as exc:
        raise SettingsError(f"{file}: {exc.key}: given twice; keep one") from None
    except yaml.YAMLError as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SettingsError(f"{file}: not valid YAML{where}: {problem}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("config", {}), dict):
        raise SettingsError(f"{file}: expected a mapping with a `config:` mapping")
    return parse(doc.get("config") or {}, source=str(file.name))


def pulumi_config_schema() -> dict[str, dict[str, Any]]:
    """The `config:` block of Pulumi.yaml: every key with its type, description and default."""
    types = {bool: "boolean", int: "integer", float: "string", str: "string", list: "array"}
    schema: dict[str, dict[str, Any]] = {}
    for name, field in Settings.model_fields.items():
        default = field.default
        entry: dict[str, Any] = {"type": types.get(type(default), "string"), "description": field.description}
        if isinstance(default, list):
            # backupRepos holds mappings (infra/backup_repos.py); every other list holds names.
            entry["items"] = {"type": "object" if name == "backup_repos" else "string"}
        entry["default"] = str(default) if isinstance(default, float) else default
        schema[f"{NAMESPACE}:{to_camel(name)}"] = entry
    return schema
