"""The one migration code path: Alembic, one history per database, SQL files beside thin revisions.

`agentdb migrate`, `agentdb up` and the Pulumi dynamic resources all call these functions.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from pydantic import ValidationError

from infra import credentials
from infra.databases import DATABASES, REPO_ROOT, Database
from infra.settings import Settings

ALEMBIC_INI = REPO_ROOT / "alembic.ini"
LOCK_TIMEOUT = "10s"
REFRESH_LOG = "agentdb_mv_refresh"  # (matview, refreshed_at): read by the matview-age exporter query

# Settings a database reads at run time (Database.runtime_settings): the table each lives in and the
# statement that writes it, changing nothing when the value is already there (rowcount 0). They are
# written on every upgrade, in the migration's transaction, so a changed value applies on the next
# `agentdb up` or `agentdb migrate` (or Pulumi update) without a new revision. A table read by the
# SQL at each call, not a database GUC: a GUC reaches only new sessions, and PgBouncer keeps its
# server sessions open for hours.
RUNTIME_SETTINGS: dict[str, tuple[str, str]] = {
    # qlearning 0005: the TTL behind the expires_at defaults and the upserts (agentdb_retention_interval()).
    "retention_days": (
        "public.agentdb_settings",
        "INSERT INTO public.agentdb_settings AS s (is_singleton, retention_days) VALUES (true, %(value)s)"
        " ON CONFLICT (is_singleton) DO UPDATE SET retention_days = EXCLUDED.retention_days, updated_at = now()"
        " WHERE s.retention_days IS DISTINCT FROM EXCLUDED.retention_days",
    ),
    # pg_partman's own setting, for every partitioned table of the database: the next maintenance run
    # (the database's partition-maintenance cron job) makes that many months ahead.
    "partition_premake_months": (
        "partman.part_config",
        "UPDATE partman.part_config SET premake = %(value)s"
        " WHERE parent_table LIKE 'public.%%' AND premake IS DISTINCT FROM %(value)s",
    ),
}


class MigrationError(RuntimeError):
    """A migration failed; the database was left as it was before the call."""


def _database(key: str) -> Database:
    try:
        return DATABASES[key]
    except KeyError:
        raise MigrationError(f"unknown database {key!r}; known: {', '.join(DATABASES)}") from None


def _config(key: str) -> Config:
    db = _database(key)
    cfg = Config(str(ALEMBIC_INI), ini_section=key)
    cfg.set_main_option("script_location", str(db.sql_dir))
    return cfg


def _engine(dsn: str) -> sa.Engine:
    url = dsn
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            url = "postgresql+psycopg://" + url[len(prefix) :]
    return sa.create_engine(url, poolclass=sa.NullPool)


@contextmanager
def _owner_transaction(dsn: str, key: str) -> Iterator[sa.Connection]:
    """One transaction as the database owner: all revisions of a call commit or none do."""
    owner = _database(key).owner
    engine = _engine(dsn)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
            conn.exec_driver_sql(f'SET LOCAL ROLE "{owner}"')
            yield conn
    finally:
        engine.dispose()


def _after_run(conn: sa.Connection, key: str) -> None:
    """Privileges every run leaves in place, whatever revision it reached (as the owner, same transaction).

    - The owner's default privileges would let the app role write alembic_version; only the owner may.
    - The monitoring role may see which rows are past their TTL (expires_at), not the data itself,
      and when each materialized view was last refreshed (the refresh log, where a schema keeps one).
    """
    db = _database(key)
    if conn.exec_driver_sql("SELECT to_regclass('public.alembic_version')").scalar() is not None:
        conn.exec_driver_sql(f'REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON public.alembic_version FROM "{db.app_role}"')
    monitor = credentials.MONITOR_ROLE
    if conn.exec_driver_sql("SELECT 1 FROM pg_roles WHERE rolname = %s", (monitor,)).scalar() is None:
        return
    conn.exec_driver_sql(f'GRANT USAGE ON SCHEMA public TO "{monitor}"')
    tables = conn.exec_driver_sql(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'expires_at' AND NOT a.attisdropped"
        " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition"
        " AND pg_get_userbyid(c.relowner) = current_user"
    ).scalars()
    for table in list(tables):
        conn.exec_driver_sql(f'GRANT SELECT (expires_at) ON public."{table}" TO "{monitor}"')
    if conn.exec_driver_sql(f"SELECT to_regclass('public.{REFRESH_LOG}')").scalar() is not None:
        conn.exec_driver_sql(f'GRANT SELECT ON public."{REFRESH_LOG}" TO "{monitor}"')


def runtime_values(key: str, settings: Settings) -> dict[str, Any]:
    """The settings database `key` reads at run time, by field name, as `upgrade(values=...)` takes them."""
    return {name: getattr(settings, name) for name in _database(key).runtime_settings}


def _write_values(conn: sa.Connection, key: str, values: dict[str, Any]) -> list[str]:
    """Write `values` where the database keeps them (as the owner, same transaction); returns what changed."""
    wanted = set(_database(key).runtime_settings)
    if set(values) != wanted:
        raise MigrationError(
            f"{key}: runtime settings must be exactly {sorted(wanted)}, got {sorted(values)}; nothing was changed"
        )
    # Through the settings model: its ranges apply, and Pulumi's wire form (7.0 for 7) becomes the type.
    try:
        checked = Settings.model_validate(values)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise MigrationError(f"{key}: runtime setting {err['loc'][0]}: {err['msg']}; nothing was changed") from None
    changed = []
    for name, value in sorted((name, getattr(checked, name)) for name in values):
        table, statement = RUNTIME_SETTINGS[name]
        # Below the revision that creates the table there is nothing to write yet.
        if conn.exec_driver_sql("SELECT to_regclass(%(table)s)", {"table": table}).scalar() is None:
            continue
        if conn.exec_driver_sql(statement, {"value": value}).rowcount:
            changed.append(f"{name}={value}")
    return changed


def _run(dsn: str, key: str, action: str, target: str, values: dict[str, Any] | None = None) -> list[str]:
    cfg = _config(key)
    try:
        with _owner_transaction(dsn, key) as conn:
            cfg.attributes["connection"] = conn
            getattr(command, action)(cfg, target)
            _after_run(conn, key)
            return _write_values(conn, key, values) if values is not None else []
    except MigrationError:
        raise
    except Exception as exc:  # every failure is reported with the database and target, nothing applied
        detail = getattr(exc, "orig", None) or exc
        raise MigrationError(f"{key}: {action} to {target} failed, nothing was changed: {detail}") from exc


def upgrade(dsn: str, key: str, target: str = "head", values: dict[str, Any] | None = None) -> list[str]:
    """Upgrade database `key` (superuser libpq URL `dsn`) to `target`, in one transaction.

    `values` (from `runtime_values`) are written in the same transaction; returns those that changed.
    """
    return _run(dsn, key, "upgrade", target, values)


def downgrade(dsn: str, key: str, target: str = "base") -> None:
    """Downgrade database `key` to `target`, in one transaction."""
    _run(dsn, key, "downgrade", target)


def current(dsn: str, key: str) -> str | None:
    """The revision the database is at, or None before the first one."""
    _database(key)
    engine = _engine(dsn)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def heads(key: str) -> list[str]:
    """The head revisions of the history of `key` (one, for a linear history)."""
    return list(ScriptDirectory.from_config(_config(key)).get_heads())


def checksum(key: str) -> str:
    """SHA-256 over every file of the history, so a changed SQL file is a new state to apply."""
    digest = hashlib.sha256()
    versions = _database(key).sql_dir / "versions"
    for path in sorted(versions.glob("*")) if versions.is_dir() else []:
        if path.suffix in {".py", ".sql"}:
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def run_sql(revision_file: str, direction: str) -> None:
    """Execute `<revision>.<direction>.sql` beside the thin revision file, as one multi-statement string."""
    from alembic import op

    path = Path(revision_file).with_suffix(f".{direction}.sql")
    sql = path.read_text()
    dbapi = op.get_bind().connection.dbapi_connection
    with dbapi.cursor() as cur:
        try:
            cur.execute(sql)
        except Exception as exc:
            name = path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path
            raise MigrationError(f"{name}: {exc}") from exc
