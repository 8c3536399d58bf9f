"""The one migration code path: Alembic, one history per database, SQL files beside thin revisions.

`agentdb migrate`, `agentdb up` and the Pulumi dynamic resources all call these functions.

Besides the revisions, a history may hold repeatable steps, `sql/<key>/repeatable/*.sql`: idempotent
SQL run after every upgrade, in the same transaction as the owner. They bring a database to a
state that depends on the server rather than on the revision, such as converting a fallback column
once the server gains the extension it stood in for (a revision that ran as a fallback never runs
again). A step reports what it changed with `RAISE INFO`; upgrade() returns those messages.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from infra import credentials
from infra.databases import DATABASES, REPO_ROOT, Database

ALEMBIC_INI = REPO_ROOT / "alembic.ini"
LOCK_TIMEOUT = "10s"
REFRESH_LOG = "agentdb_mv_refresh"  # (matview, refreshed_at): read by the matview-age exporter query


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


def repeatable_steps(key: str) -> list[Path]:
    """The repeatable steps of history `key`, in the order they run (by file name)."""
    return sorted((_database(key).sql_dir / "repeatable").glob("*.sql"))


def _run_repeatable(conn: sa.Connection, key: str) -> list[str]:
    """Run every repeatable step of `key` (as the owner, same transaction); their INFO messages."""
    reports: list[str] = []

    def collect(diagnostic) -> None:
        # Only INFO: NOTICEs come from elsewhere too (pgvector's "ivfflat index created with little data").
        if diagnostic.severity_nonlocalized == "INFO":
            reports.append(diagnostic.message_primary)

    dbapi = conn.connection.dbapi_connection
    dbapi.add_notice_handler(collect)
    try:
        for path in repeatable_steps(key):
            with dbapi.cursor() as cur:
                try:
                    cur.execute(path.read_text())
                except Exception as exc:
                    name = path.relative_to(REPO_ROOT)
                    raise MigrationError(f"{key}: repeatable step {name} failed, nothing was changed: {exc}") from exc
    finally:
        dbapi.remove_notice_handler(collect)
    return reports


def _run(dsn: str, key: str, action: str, target: str) -> list[str]:
    cfg = _config(key)
    reports: list[str] = []
    try:
        with _owner_transaction(dsn, key) as conn:
            cfg.attributes["connection"] = conn
            getattr(command, action)(cfg, target)
            if action == "upgrade":
                reports = _run_repeatable(conn, key)
            _after_run(conn, key)
    except MigrationError:
        raise
    except Exception as exc:  # every failure is reported with the database and target, nothing applied
        detail = getattr(exc, "orig", None) or exc
        raise MigrationError(f"{key}: {action} to {target} failed, nothing was changed: {detail}") from exc
    return reports


def upgrade(dsn: str, key: str, target: str = "head") -> list[str]:
    """Upgrade database `key` (superuser libpq URL `dsn`) to `target`, then run its repeatable steps.

    One transaction for both; returns what the repeatable steps reported changing (often nothing).
    """
    return _run(dsn, key, "upgrade", target)


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
    """SHA-256 over every file of the history and its repeatable steps: a changed file is a new state."""
    digest = hashlib.sha256()
    versions = _database(key).sql_dir / "versions"
    for path in [*(sorted(versions.glob("*")) if versions.is_dir() else []), *repeatable_steps(key)]:
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
