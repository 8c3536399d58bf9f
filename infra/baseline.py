"""The platform baseline `up` applies after the services are healthy, then migrations and cron jobs.

Idempotent: roles, databases and extensions are created when missing and brought to the declared
state when present (passwords, grants, default privileges).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import psycopg
from psycopg import sql

from infra import credentials as sec
from infra import cron, migrations
from infra.databases import Database
from infra.settings import Settings

EXTENSIONS = ("pg_stat_statements", "pg_trgm", "btree_gin", "uuid-ossp", "pgcrypto")
# Created where the server has them. pgvector: `make deps` installs it into the host's PostgreSQL;
# without it the schemas fall back to real[] embeddings until a later upgrade converts them.
OPTIONAL_EXTENSIONS = ("vector",)
MONITOR_SCHEMA = "agentdb_monitor"  # in the postgres database: what the monitoring role may read of pg_cron


class Target(Protocol):
    settings: Settings

    def secrets(self) -> dict[str, str]: ...
    def dsn(self, db: Database | None, role: str = "admin", via: str = "postgres") -> str: ...


def _role(cur: psycopg.Cursor, name: str, *, login: bool, password: str | None, extra: str = "") -> None:
    exists = cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone()
    verb = "ALTER" if exists else "CREATE"
    options = "LOGIN" if login else "NOLOGIN"
    stmt = sql.SQL("{} ROLE {} WITH {} NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION").format(
        sql.SQL(verb), sql.Identifier(name), sql.SQL(options)
    )
    if password is not None:
        # A SCRAM verifier, never the password itself, reaches the server.
        stmt = stmt + sql.SQL(" PASSWORD {}").format(sql.Literal(sec.scram_sha256(name, password)))
    else:
        stmt = stmt + sql.SQL(" PASSWORD NULL")
    cur.execute(stmt)
    if extra:
        cur.execute(sql.SQL(extra).format(role=sql.Identifier(name)))


def apply_cluster(conn: psycopg.Connection, settings: Settings, secrets: dict[str, str]) -> None:
    """Roles and databases (autocommit connection to the `postgres` database as the superuser)."""
    cur = conn.cursor()
    _role(
        cur,
        sec.MONITOR_ROLE,
        login=True,
        password=secrets[sec.MONITOR_ROLE],
        extra="GRANT pg_monitor TO {role}",
    )
    cur.execute("CREATE EXTENSION IF NOT EXISTS pg_cron")
    cur.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    # pg_cron's tables show each role only its own jobs (row-level security). Views owned by the
    # superuser let the monitoring role count every job's runs, without commands or messages and
    # without BYPASSRLS.
    cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(MONITOR_SCHEMA)))
    cur.execute(
        sql.SQL(
            "CREATE OR REPLACE VIEW {}.cron_job AS SELECT jobid, jobname, database, username, schedule, active"
            " FROM cron.job"
        ).format(sql.Identifier(MONITOR_SCHEMA))
    )
    cur.execute(
        sql.SQL(
            "CREATE OR REPLACE VIEW {}.cron_job_run_details AS SELECT runid, jobid, status, start_time, end_time"
            " FROM cron.job_run_details"
        ).format(sql.Identifier(MONITOR_SCHEMA))
    )
    cur.execute(
        sql.SQL("GRANT USAGE ON SCHEMA {0} TO {1}; GRANT SELECT ON ALL TABLES IN SCHEMA {0} TO {1}").format(
            sql.Identifier(MONITOR_SCHEMA), sql.Identifier(sec.MONITOR_ROLE)
        )
    )
    for db in settings.enabled:
        # pg_cron runs jobs only as LOGIN roles; with no password and SCRAM everywhere, nobody can log in as it.
        _role(cur, db.owner, login=True, password=None)
        _role(cur, db.app_role, login=True, password=secrets[db.app_role])
        _role(cur, db.readonly_role, login=True, password=secrets[db.readonly_role])
        # Defence in depth behind the privileges: a readonly session's transactions start read-only
        # (a client can still ask for READ WRITE, so the privileges alone must hold).
        cur.execute(
            sql.SQL("ALTER ROLE {} SET default_transaction_read_only = on").format(sql.Identifier(db.readonly_role))
        )
        if not cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db.name,)).fetchone():
            cur.execute(
                sql.SQL("CREATE DATABASE {} OWNER {} ENCODING 'UTF8' TEMPLATE template0").format(
                    sql.Identifier(db.name), sql.Identifier(db.owner)
                )
            )
        cur.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sql.Identifier(db.name)))
        cur.execute(
            sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}, {}, {}").format(
                sql.Identifier(db.name),
                sql.Identifier(db.app_role),
                sql.Identifier(db.readonly_role),
                sql.Identifier(sec.MONITOR_ROLE),
            )
        )


def apply_database(conn: psycopg.Connection, db: Database, with_partman: bool | None = None) -> None:
    """Extensions, schema ownership and default privileges inside one database (one transaction).

    pg_partman is created when `with_partman` says so, by default when the server offers it; without
    it the schemas make their partitions with their own function (sql/orchestrator/README.md).
    """
    ident = sql.Identifier
    owner, app, ro = ident(db.owner), ident(db.app_role), ident(db.readonly_role)
    with conn.transaction():
        for ext in EXTENSIONS:
            conn.execute(sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(ident(ext)))
        for ext in OPTIONAL_EXTENSIONS:
            if conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = %s", (ext,)).fetchone():
                conn.execute(sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(ident(ext)))
        if with_partman is None:
            with_partman = bool(
                conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_partman'").fetchone()
            )
        if with_partman:
            conn.execute("CREATE SCHEMA IF NOT EXISTS partman")
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_partman SCHEMA partman")
            conn.execute(sql.SQL("GRANT ALL ON SCHEMA partman TO {}").format(owner))
            for kind in ("TABLES", "SEQUENCES", "FUNCTIONS", "PROCEDURES"):
                conn.execute(sql.SQL("GRANT ALL ON ALL {} IN SCHEMA partman TO {}").format(sql.SQL(kind), owner))
            conn.execute(sql.SQL("GRANT USAGE ON SCHEMA partman TO {}, {}").format(app, ro))
            # pg_partman's functions come executable by PUBLIC; only the owner (pg_cron, the maintenance
            # functions) runs them. Applied on every `up`, so an ALTER EXTENSION UPDATE cannot widen it.
            conn.execute("REVOKE EXECUTE ON ALL ROUTINES IN SCHEMA partman FROM PUBLIC")
        conn.execute(sql.SQL("ALTER SCHEMA public OWNER TO {}").format(owner))
        conn.execute(sql.SQL("REVOKE ALL ON SCHEMA public FROM PUBLIC"))
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}, {}").format(app, ro))
        defaults = [
            "GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {app}",
            "GRANT USAGE, SELECT ON SEQUENCES TO {app}",
            "GRANT EXECUTE ON FUNCTIONS TO {app}",
            "GRANT SELECT ON TABLES TO {ro}",
            "GRANT SELECT ON SEQUENCES TO {ro}",
        ]
        for clause in defaults:
            conn.execute(
                sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public " + clause).format(
                    owner=owner, app=app, ro=ro
                )
            )
        # Functions are executable by PUBLIC by default; keep them to the database's own roles.
        conn.execute(
            sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC").format(owner)
        )
        # No default EXECUTE for the readonly role: a new function may write as the owner. The
        # migration step grants it what sql/<db>/privileges.yaml and the rules allow
        # (infra/privileges.py); the REVOKE takes back the default that earlier baselines granted.
        conn.execute(
            sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA public REVOKE EXECUTE ON FUNCTIONS FROM {}").format(
                owner, ro
            )
        )


def migrate_and_schedule(target: Target, db: Database, progress: Callable[[str], None]) -> None:
    """Upgrade one database to head, write the settings it reads at run time and sync its cron jobs.

    The path `up` and `agentdb migrate` share (the Pulumi providers call the same two functions).
    """
    admin = target.dsn(db)
    if migrations.heads(db.key):
        before = migrations.current(admin, db.key)
        outcome = migrations.upgrade_outcome(admin, db.key, values=migrations.runtime_values(db.key, target.settings))
        after = migrations.current(admin, db.key)
        if before != after:
            progress(f"  {db.key:<12} migrated {before or 'base'} -> {after}")
        for report in outcome.reports:
            progress(f"  {db.key:<12} {report}")
        if outcome.written:
            progress(f"  {db.key:<12} settings: {', '.join(outcome.written)}")
    schedule(target, db, progress)


def schedule(target: Target, db: Database, progress: Callable[[str], None]) -> None:
    """Sync the cron jobs of one database after its migrations committed (up, migrate, the alembic CLI).

    On a server agentdb does not own, pg_cron may be missing: our scheduler runs the jobs then.
    """
    reason = cron.deferred(target.dsn(None), target.settings)
    if reason:
        progress(f"  {db.key:<12} cron: the agentdb scheduler runs its jobs ({reason})")
        return
    changed = cron.sync(target.dsn(None), db, target.settings)
    if changed:
        progress(f"  {db.key:<12} cron: {', '.join(changed)}")


def apply(target: Target, progress: Callable[[str], None] = print) -> None:
    """Everything after health: cluster roles, each database's baseline, migrations, cron jobs."""
    secrets = target.secrets()
    with psycopg.connect(target.dsn(None), autocommit=True) as conn:
        apply_cluster(conn, target.settings, secrets)
        available = {row[0] for row in conn.execute("SELECT name FROM pg_available_extensions")}
    if "pg_partman" not in available:
        progress(
            "  extension pg_partman is not offered by this server: orchestrator and agentic make their monthly"
            " partitions with their own function, from the partition-maintenance cron job"
        )
    for ext in OPTIONAL_EXTENSIONS:
        if ext not in available:
            progress(f"  extension {ext} is not installed on this server: schemas use their fallbacks (make deps)")
    for db in target.settings.enabled:
        with psycopg.connect(target.dsn(db)) as conn:
            apply_database(conn, db)
        migrate_and_schedule(target, db, progress)
