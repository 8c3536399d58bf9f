"""A PostgreSQL agentdb does not run (agentdb:postgresMode external): RDS, Cloud SQL, Supabase, or any server.

agentdb connects as an admin role that is not a superuser but has CREATEROLE and CREATEDB, as those
providers hand out. Before anything starts or changes, `preflight` proves the server is reachable,
takes the password, is new enough and lets the admin create roles and databases; each failure is one
line naming the setting to fix. `Capabilities` says what the server offers (extensions, pg_cron),
from which `downgrades` says, once per `up`, what runs differently.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import quote

import psycopg

from infra.settings import Settings

PASSWORD_ENV = "AGENTDB_POSTGRES_ADMIN_PASSWORD"
PASSWORD_KEY = "agentdb:postgresAdminPassword"  # Pulumi secret config, the Docker program's way in
MIN_SERVER_VERSION = 140000  # server_version_num: PostgreSQL 14
CONNECT_TIMEOUT_S = 5
CRON_DATABASE = "postgres"  # where providers install pg_cron (its cron.database_name default)

# What each missing capability means for the stack, as `up` says it.
DOWNGRADES = {
    "vector": "extension vector is not installed on this server (or not for this admin): embeddings are"
    " real[] columns without ANN indexes and hybrid search is full-text only, the documented fallback; a later"
    " migrate converts them once pgvector is there",
    "pg_cron": "pg_cron absent: agentdb's scheduler runs the jobs of sql/<db>/cron.yaml",
    "pg_monitor": "the admin may not grant pg_monitor: the monitoring role sees only what PUBLIC sees (grant"
    " the admin pg_monitor WITH ADMIN OPTION)",
    "cron_monitor": "pg_cron's job runs are not exported: the admin may not create the agentdb_monitor views in"
    " database postgres (GRANT CREATE ON DATABASE postgres to it)",
    "pg_partman": "pg_partman absent: the partitions are made ahead on a schedule by the same SQL functions",
    "pg_stat_statements": "pg_stat_statements absent: no per-query statistics (the exporter's query panels stay empty)",
}


class ExternalError(RuntimeError):
    """The external server cannot be used as configured: one line naming the setting and the fix."""


def admin_password() -> str:
    """The admin's password, from the environment (the local runner; the Docker program reads Pulumi's secret)."""
    password = os.environ.get(PASSWORD_ENV)
    if not password:
        raise ExternalError(
            f"{PASSWORD_KEY}: not set; export {PASSWORD_ENV} with the password of agentdb:postgresAdminUser"
        )
    return password


def dsn(settings: Settings, user: str, password: str, dbname: str) -> str:
    """A libpq URL to the external server with the stack's sslmode."""
    host = f"[{settings.postgres_host}]" if ":" in settings.postgres_host else settings.postgres_host
    return (
        f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}@{host}:{settings.postgres_port}"
        f"/{dbname}?sslmode={settings.postgres_ssl_mode}"
    )


def _connect_error(settings: Settings, exc: psycopg.OperationalError) -> ExternalError:
    """The setting a failed connection points at, from libpq's message (it carries no SQLSTATE)."""
    s = settings
    text = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
    where = f"{s.postgres_host}:{s.postgres_port}"
    if "password authentication failed" in text:
        return ExternalError(
            f"{PASSWORD_KEY}: the server at {where} refused the password of role {s.postgres_admin_user!r};"
            f" set the right one ({PASSWORD_ENV} or the Pulumi secret)"
        )
    if "does not exist" in text and "role" in text:
        return ExternalError(
            f"agentdb:postgresAdminUser: role {s.postgres_admin_user!r} does not exist on {where}; name the admin"
            " role the provider gave you"
        )
    if "SSL" in text or "ssl" in text:
        return ExternalError(f"agentdb:postgresSslMode: {s.postgres_ssl_mode} failed against {where}: {text}")
    return ExternalError(
        f"agentdb:postgresHost: cannot reach PostgreSQL at {where} ({text}); check agentdb:postgresHost and"
        " agentdb:postgresPort, and that the server accepts connections from this machine"
    )


def check_version(settings: Settings, version_num: int, minimum: int = MIN_SERVER_VERSION) -> None:
    """Refuse a server older than `minimum` (server_version_num form)."""
    if version_num < minimum:
        raise ExternalError(
            f"agentdb:postgresHost: the server at {settings.postgres_host}:{settings.postgres_port} runs PostgreSQL"
            f" {version_num // 10000}.{version_num % 10000}; agentdb needs {minimum // 10000} or later: upgrade it"
            " or point agentdb:postgresHost at a newer server"
        )


def connect(settings: Settings, password: str, dbname: str = "postgres", **kw) -> psycopg.Connection:
    """A connection as the admin; ExternalError naming the setting when the server refuses it."""
    try:
        return psycopg.connect(
            dsn(settings, settings.postgres_admin_user, password, dbname), connect_timeout=CONNECT_TIMEOUT_S, **kw
        )
    except psycopg.OperationalError as exc:
        raise _connect_error(settings, exc) from None


def preflight(settings: Settings, password: str, minimum: int = MIN_SERVER_VERSION) -> None:
    """Everything `up` needs of the server and the admin, checked before anything starts or changes."""
    with connect(settings, password, autocommit=True) as conn:
        check_version(settings, conn.info.server_version, minimum)
        rolsuper, createrole, createdb = conn.execute(
            "SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
    user = settings.postgres_admin_user
    for attribute, has in (("CREATEROLE", createrole), ("CREATEDB", createdb)):
        if not (rolsuper or has):
            raise ExternalError(
                f"agentdb:postgresAdminUser: role {user!r} lacks {attribute}; have it granted (ALTER ROLE {user}"
                f" {attribute}, as the provider's master user) or name a role that has it"
            )


@dataclass(frozen=True)
class Capabilities:
    """What the server lets this admin do, for the baseline's choices."""

    superuser: bool
    available: frozenset[str]  # extensions the server has files for
    creatable: frozenset[str]  # of those, the ones this admin may CREATE (superuser, or trusted)
    cron: bool  # pg_cron is installed where jobs are scheduled and the admin may schedule

    def usable(self, extension: str, installed: set[str]) -> bool:
        """True when `extension` is in `installed` (this database's) or the admin can create it."""
        return extension in installed or extension in self.creatable


def capabilities(conn: psycopg.Connection) -> Capabilities:
    """Read the capabilities from a connection to the `postgres` database as the admin."""
    superuser = bool(conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[0])
    rows = conn.execute(
        "SELECT a.name, coalesce(v.trusted, false) FROM pg_available_extensions a"
        " LEFT JOIN pg_available_extension_versions v ON v.name = a.name AND v.version = a.default_version"
    ).fetchall()
    available = frozenset(name for name, _ in rows)
    creatable = frozenset(name for name, trusted in rows if superuser or trusted)
    # One answer to "can pg_cron run the jobs", shared with the scheduler that runs them otherwise.
    from infra.scheduler import pg_cron_unusable

    cron = pg_cron_unusable(conn) is None
    return Capabilities(superuser, available, creatable, cron)


def downgrades(missing: list[str]) -> list[str]:
    """The lines `up` prints for the capabilities the server lacks, once each, in a fixed order."""
    return [f"  downgrade: {DOWNGRADES[name]}" for name in DOWNGRADES if name in missing]
