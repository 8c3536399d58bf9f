"""The platform baseline `up` applies after the services are healthy, then migrations and cron jobs.

Idempotent: roles, databases and extensions are created when missing and brought to the declared
state when present (passwords, grants, default privileges). The admin need not be a superuser
(agentdb:postgresMode external): what only a superuser may do is done where the admin may, and
what the server lacks is reported once as a downgrade (infra/external.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import psycopg
from psycopg import sql

from infra import credentials as sec
from infra import cron, external, migrations
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


def _role(cur: psycopg.Cursor, name: str, *, login: bool, password: str | None, superuser: bool = True) -> None:
    exists = cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone()
    verb = "ALTER" if exists else "CREATE"
    options = "LOGIN" if login else "NOLOGIN"
    # Naming SUPERUSER or REPLICATION at all takes a superuser, even to say NO; a role made by a
    # CREATEROLE admin has neither.
    attributes = "NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION" if superuser else "NOCREATEDB NOCREATEROLE"
    stmt = sql.SQL("{} ROLE {} WITH {} {}").format(
        sql.SQL(verb), sql.Identifier(name), sql.SQL(options), sql.SQL(attributes)
    )
    if password is not None:
        # A SCRAM verifier, never the password itself, reaches the server.
        stmt = stmt + sql.SQL(" PASSWORD {}").format(sql.Literal(sec.scram_sha256(name, password)))
    else:
        stmt = stmt + sql.SQL(" PASSWORD NULL")
    cur.execute(stmt)


def apply_cluster(
    conn: psycopg.Connection, settings: Settings, secrets: dict[str, str], caps: external.Capabilities | None = None
) -> list[str]:
    """Roles and databases (autocommit connection to the `postgres` database as the admin).

    Returns the capabilities the server lacks (names of infra.external.DOWNGRADES).
    """
    caps = caps or external.capabilities(conn)
    missing: list[str] = []
    cur = conn.cursor()
    su = caps.superuser
    _role(cur, sec.MONITOR_ROLE, login=True, password=secrets[sec.MONITOR_ROLE], superuser=su)
    try:
        cur.execute(sql.SQL("GRANT pg_monitor TO {}").format(sql.Identifier(sec.MONITOR_ROLE)))
    except psycopg.errors.InsufficientPrivilege:
        # A CREATEROLE admin may grant pg_monitor up to PostgreSQL 15, later only with ADMIN OPTION on it.
        missing.append("pg_monitor")
    if su:
        cur.execute("CREATE EXTENSION IF NOT EXISTS pg_cron")
    installed = {row[0] for row in cur.execute("SELECT extname FROM pg_extension")}
    if caps.usable("pg_stat_statements", installed):
        cur.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    else:
        missing.append("pg_stat_statements")
    if not (su or external.capabilities(conn).cron):
        missing.append("pg_cron")
        return missing + _apply_databases(cur, settings, secrets, su)
    if not cur.execute("SELECT has_database_privilege(current_database(), 'CREATE')").fetchone()[0]:
        missing.append("cron_monitor")  # a managed server's `postgres` database may be closed to the admin
        return missing + _apply_databases(cur, settings, secrets, su)
    # pg_cron's tables show each role only its own jobs (row-level security). Views owned by the
    # superuser let the monitoring role count every job's runs, without commands or messages and
    # without BYPASSRLS.
    cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(MONITOR_SCHEMA)))
    job, runs = "cron.job", "cron.job_run_details"
    if not su:
        # pg_cron's policy compares a row's username with CURRENT_USER, which in a view is the reader:
        # SECURITY DEFINER functions read as the admin, who schedules every job of the stack, and return
        # only the columns the views show.
        job, runs = _cron_readers(cur)
    cur.execute(
        sql.SQL(
            "CREATE OR REPLACE VIEW {}.cron_job AS SELECT jobid, jobname, database, username, schedule, active FROM {}"
        ).format(sql.Identifier(MONITOR_SCHEMA), sql.SQL(job))
    )
    cur.execute(
        sql.SQL(
            "CREATE OR REPLACE VIEW {}.cron_job_run_details AS SELECT runid, jobid, status, start_time, end_time"
            " FROM {}"
        ).format(sql.Identifier(MONITOR_SCHEMA), sql.SQL(runs))
    )
    cur.execute(
        sql.SQL("GRANT USAGE ON SCHEMA {0} TO {1}; GRANT SELECT ON ALL TABLES IN SCHEMA {0} TO {1}").format(
            sql.Identifier(MONITOR_SCHEMA), sql.Identifier(sec.MONITOR_ROLE)
        )
    )
    return missing + _apply_databases(cur, settings, secrets, su)


def _cron_readers(cur: psycopg.Cursor) -> tuple[str, str]:
    """Functions reading pg_cron's jobs and runs as their owner (the admin); the FROM items of the views."""
    readers = {
        "cron_job_rows": (
            "jobid bigint, jobname text, database text, username text, schedule text, active boolean",
            "SELECT jobid, jobname::text, database, username, schedule, active FROM cron.job",
        ),
        "cron_job_run_rows": (
            "runid bigint, jobid bigint, status text, start_time timestamptz, end_time timestamptz",
            "SELECT runid, jobid, status, start_time, end_time FROM cron.job_run_details",
        ),
    }
    schema, monitor = sql.Identifier(MONITOR_SCHEMA), sql.Identifier(sec.MONITOR_ROLE)
    for name, (columns, body) in readers.items():
        cur.execute(
            sql.SQL(
                "CREATE OR REPLACE FUNCTION {}.{}() RETURNS TABLE ({}) LANGUAGE sql STABLE SECURITY DEFINER"
                " SET search_path = pg_catalog, pg_temp AS {}"
            ).format(schema, sql.Identifier(name), sql.SQL(columns), sql.Literal(body))
        )
        cur.execute(
            sql.SQL("REVOKE ALL ON FUNCTION {0}.{1}() FROM PUBLIC; GRANT EXECUTE ON FUNCTION {0}.{1}() TO {2}").format(
                schema, sql.Identifier(name), monitor
            )
        )
    return f"{MONITOR_SCHEMA}.cron_job_rows()", f"{MONITOR_SCHEMA}.cron_job_run_rows()"


def _apply_databases(cur: psycopg.Cursor, settings: Settings, secrets: dict[str, str], su: bool) -> list[str]:
    """Each database's roles, the database itself and who may connect to it."""
    for db in settings.enabled:
        # pg_cron runs jobs only as LOGIN roles; with no password and SCRAM everywhere, nobody can log in as it.
        _role(cur, db.owner, login=True, password=None, superuser=su)
        _role(cur, db.app_role, login=True, password=secrets[db.app_role], superuser=su)
        _role(cur, db.readonly_role, login=True, password=secrets[db.readonly_role], superuser=su)
        if not su:
            # A non-superuser admin creates the database for the owner and migrates as it (SET ROLE):
            # both take membership in the owner role.
            cur.execute(sql.SQL("GRANT {} TO CURRENT_USER").format(sql.Identifier(db.owner)))
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
    return []


def apply_database(
    conn: psycopg.Connection, db: Database, caps: external.Capabilities | None = None, with_partman: bool | None = None
) -> list[str]:
    """Extensions, schema ownership and default privileges inside one database (one transaction).

    Returns the extensions the admin could not have here (names of infra.external.DOWNGRADES, or others).
    pg_partman is created when `with_partman` says so, by default when the server offers it to the admin;
    without it the schemas make their partitions with their own function (sql/orchestrator/README.md).
    """
    ident = sql.Identifier
    owner, app, ro = ident(db.owner), ident(db.app_role), ident(db.readonly_role)
    caps = caps or external.capabilities(conn)
    missing: list[str] = []
    with conn.transaction():
        installed = {row[0] for row in conn.execute("SELECT extname FROM pg_extension")}
        for ext in EXTENSIONS:
            if caps.usable(ext, installed):
                conn.execute(sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(ident(ext)))
            else:
                missing.append(ext)
        for ext in OPTIONAL_EXTENSIONS:
            if ext in caps.available and caps.usable(ext, installed):
                conn.execute(sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(ident(ext)))
            else:
                missing.append(ext)
        partman = with_partman
        if partman is None:
            partman = "pg_partman" in caps.available and caps.usable("pg_partman", installed)
        if partman:
            conn.execute("CREATE SCHEMA IF NOT EXISTS partman")
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_partman SCHEMA partman")
            conn.execute(sql.SQL("GRANT ALL ON SCHEMA partman TO {}").format(owner))
            for kind in ("TABLES", "SEQUENCES", "FUNCTIONS", "PROCEDURES"):
                conn.execute(sql.SQL("GRANT ALL ON ALL {} IN SCHEMA partman TO {}").format(sql.SQL(kind), owner))
        else:
            missing.append("pg_partman")
        conn.execute(sql.SQL("ALTER SCHEMA public OWNER TO {}").format(owner))
        conn.execute(sql.SQL("REVOKE ALL ON SCHEMA public FROM PUBLIC"))
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}, {}").format(app, ro))
        if partman:
            conn.execute(sql.SQL("GRANT USAGE ON SCHEMA partman TO {}, {}").format(app, ro))
            # pg_partman's functions come executable by PUBLIC; only the owner (pg_cron, the maintenance
            # functions) runs them. Applied on every `up`, so an ALTER EXTENSION UPDATE cannot widen it.
            conn.execute("REVOKE EXECUTE ON ALL ROUTINES IN SCHEMA partman FROM PUBLIC")
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
    return missing


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

    On a server agentdb does not own, pg_cron may be missing or unusable: our scheduler runs the jobs
    then (`up` has said so once, among the downgrades).
    """
    if cron.deferred(target.dsn(None), target.settings):
        return
    changed = cron.sync(target.dsn(None), db, target.settings)
    if changed:
        progress(f"  {db.key:<12} cron: {', '.join(changed)}")


def apply(target: Target, progress: Callable[[str], None] = print) -> None:
    """Everything after health: cluster roles, each database's baseline, migrations, cron jobs."""
    secrets = target.secrets()
    with psycopg.connect(target.dsn(None), autocommit=True) as conn:
        caps = external.capabilities(conn)
        # Extensions the schemas cannot do without, checked before anything is created.
        for ext in EXTENSIONS:
            if ext not in external.DOWNGRADES and ext not in caps.creatable:
                raise external.ExternalError(
                    f"agentdb:postgresAdminUser: the admin cannot create extension {ext}, which the schemas need;"
                    f" have the provider enable {ext} or name an admin that may create it"
                )
        missing = apply_cluster(conn, target.settings, secrets, caps)
    for db in target.settings.enabled:
        with psycopg.connect(target.dsn(db)) as conn:
            missing += apply_database(conn, db, caps)
    for line in external.downgrades(missing):
        progress(line)
    for db in target.settings.enabled:
        migrate_and_schedule(target, db, progress)
