"""The one migration code path: Alembic, one history per database, SQL files beside thin revisions.

`agentdb migrate`, `agentdb up` and the Pulumi dynamic resources all call these functions.

Besides the revisions, a history may hold repeatable steps, `sql/<key>/repeatable/*.sql`: idempotent
SQL run after every upgrade, in the same transaction as the owner. They bring a database to a
state that depends on the server rather than on the revision, such as converting a fallback column
once the server gains the extension it stood in for (a revision that ran as a fallback never runs
again). A step reports what it changed with `RAISE INFO`; upgrade() returns those messages.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from pydantic import ValidationError

from infra import credentials, privileges
from infra.databases import DATABASES, REPO_ROOT, Database
from infra.settings import Settings

ALEMBIC_INI = REPO_ROOT / "alembic.ini"
# Alembic's own variable: both CLIs read the same file, so a copy of a history is reachable from both.
ALEMBIC_CONFIG_ENV = "ALEMBIC_CONFIG"
LOCK_TIMEOUT = "10s"
REFRESH_LOG = "agentdb_mv_refresh"  # (matview, refreshed_at): read by the matview-age exporter query

# Settings a database reads at run time (Database.runtime_settings): the table each lives in and the
# statement that writes it, changing nothing when the value is already there (rowcount 0). They are
# written on every upgrade, in the migration's transaction, so a changed value applies on the next
# `agentdb up` or `agentdb migrate` (or Pulumi update) without a new revision. A table read by the
# SQL at each call, not a database GUC: a GUC reaches only new sessions, and PgBouncer keeps its
# server sessions open for hours.
RUNTIME_SETTINGS: dict[str, tuple[tuple[str, str], ...]] = {
    # qlearning 0005: the TTL behind the expires_at defaults and the upserts (agentdb_retention_interval()).
    "retention_days": (
        (
            "public.agentdb_settings",
            "INSERT INTO public.agentdb_settings AS s (is_singleton, retention_days) VALUES (true, %(value)s)"
            " ON CONFLICT (is_singleton) DO UPDATE SET retention_days = EXCLUDED.retention_days, updated_at = now()"
            " WHERE s.retention_days IS DISTINCT FROM EXCLUDED.retention_days",
        ),
    ),
    # pg_partman's own setting, for every partitioned table of the database: the next maintenance run
    # (the database's partition-maintenance cron job) makes that many months ahead. Without
    # pg_partman, the same setting in the table our partition function reads (agentdb_partitions).
    "partition_premake_months": (
        (
            "partman.part_config",
            "UPDATE partman.part_config SET premake = %(value)s"
            " WHERE parent_table LIKE 'public.%%' AND premake IS DISTINCT FROM %(value)s",
        ),
        (
            "public.agentdb_partitions",
            "UPDATE public.agentdb_partitions SET premake_months = %(value)s"
            " WHERE premake_months IS DISTINCT FROM %(value)s",
        ),
    ),
}


class MigrationError(RuntimeError):
    """A migration failed; the database was left as it was before the call."""


def _database(key: str) -> Database:
    try:
        return DATABASES[key]
    except KeyError:
        raise MigrationError(f"unknown database {key!r}; known: {', '.join(DATABASES)}") from None


def ini_path() -> Path:
    """The Alembic config both CLIs read: $ALEMBIC_CONFIG when set, else the repository's alembic.ini."""
    return Path(os.environ.get(ALEMBIC_CONFIG_ENV) or ALEMBIC_INI)


def _config(key: str) -> Config:
    _database(key)
    ini = ini_path()
    if not ini.is_file():
        raise MigrationError(f"{ini}: no such Alembic config file (${ALEMBIC_CONFIG_ENV} or alembic.ini)")
    cfg = Config(str(ini), ini_section=key)
    if not cfg.file_config.has_option(key, "script_location"):
        raise MigrationError(f"{ini}: no [{key}] section with a script_location for database {key!r}")
    return cfg


def script_dir(key: str) -> Path:
    """The directory of the history of `key` (script_location of its alembic.ini section)."""
    return Path(ScriptDirectory.from_config(_config(key)).dir)


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
    - EXECUTE on every function follows `sql/<db>/privileges.yaml` (infra/privileges.py), so a
      function a revision adds is never committed with a grant it should not have.
    """
    db = _database(key)
    privileges.enforce(conn, db)
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
        written = 0
        for table, statement in RUNTIME_SETTINGS[name]:
            # Below the revision that creates the table, or on a server without its extension, nothing to write.
            if conn.exec_driver_sql("SELECT to_regclass(%(table)s)", {"table": table}).scalar() is None:
                continue
            written += conn.exec_driver_sql(statement, {"value": value}).rowcount
        if written:
            changed.append(f"{name}={value}")
    return changed


@dataclass
class Outcome:
    """What an upgrade changed besides the revision: repeatable steps' reports, runtime settings written."""

    reports: list[str] = field(default_factory=list)
    written: list[str] = field(default_factory=list)


@contextmanager
def session(
    dsn: str, key: str, what: str, outcome: Outcome | None = None, values: dict[str, Any] | None = None
) -> Iterator[sa.Connection]:
    """The owner transaction every migration runs in, with the post-revision steps before the commit.

    `agentdb migrate` and the Alembic CLI (infra/alembic_env.py) both run revisions inside it. An upgrade
    passes `outcome`: the repeatable steps then run after the revisions, and `values` (runtime settings)
    are written; what they changed is recorded in it. `_after_run` always runs. Any failure rolls
    everything back and is raised as a MigrationError naming the database and `what`.
    """
    try:
        with _owner_transaction(dsn, key) as conn:
            yield conn
            if outcome is not None:
                outcome.reports.extend(_run_repeatable(conn, key))
            _after_run(conn, key)
            if outcome is not None and values is not None:
                outcome.written.extend(_write_values(conn, key, values))
    except MigrationError:
        raise
    except Exception as exc:  # every failure is reported with the database and target, nothing applied
        detail = getattr(exc, "orig", None) or exc
        raise MigrationError(f"{key}: {what} failed, nothing was changed: {detail}") from exc


# A migration that loses a lock to the live workload (a deadlock with a reader such as an exporter's
# query or a cron job, or LOCK_TIMEOUT spent waiting) changed nothing: it is tried again, this often.
LOCK_ATTEMPTS = 3
LOCK_BACKOFF_S = 2.0


def _lost_a_lock(exc: BaseException) -> bool:
    """True when `exc` or what caused it is a deadlock or a lock timeout."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, psycopg.errors.DeadlockDetected | psycopg.errors.LockNotAvailable):
            return True
        seen = seen.__cause__ or getattr(seen, "orig", None)
    return False


def _run(dsn: str, key: str, action: str, target: str, values: dict[str, Any] | None = None) -> Outcome:
    cfg = _config(key)
    for attempt in range(1, LOCK_ATTEMPTS + 1):
        outcome = Outcome()
        try:
            with session(dsn, key, f"{action} to {target}", outcome if action == "upgrade" else None, values) as conn:
                # env.py (infra/alembic_env.py) runs on this connection instead of finding a stack itself.
                cfg.attributes["connection"] = conn
                getattr(command, action)(cfg, target)
            return outcome
        except MigrationError as exc:
            if attempt == LOCK_ATTEMPTS or not _lost_a_lock(exc):
                raise
            time.sleep(LOCK_BACKOFF_S * attempt)
    raise AssertionError("unreachable")


def upgrade(dsn: str, key: str, target: str = "head", values: dict[str, Any] | None = None) -> list[str]:
    """Upgrade database `key` (superuser libpq URL `dsn`) to `target`, in one transaction.

    The repeatable steps run after the revisions, and `values` (from `runtime_values`) are written, in
    the same transaction. Returns the runtime settings that changed (`name=value`); `upgrade_outcome`
    returns the repeatable steps' reports too.
    """
    return upgrade_outcome(dsn, key, target, values).written


def upgrade_outcome(dsn: str, key: str, target: str = "head", values: dict[str, Any] | None = None) -> Outcome:
    """`upgrade`, returning both what the repeatable steps reported and the runtime settings written."""
    return _run(dsn, key, "upgrade", target, values)


def downgrade(dsn: str, key: str, target: str = "base") -> None:
    """Downgrade database `key` to `target`, in one transaction."""
    _run(dsn, key, "downgrade", target)


@contextmanager
def reading(dsn: str) -> Iterator[sa.Connection]:
    """A connection that only reads (the version table): no owner role, nothing committed."""
    engine = _engine(dsn)
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def current(dsn: str, key: str) -> str | None:
    """The revision the database is at, or None before the first one."""
    _database(key)
    with reading(dsn) as conn:
        return MigrationContext.configure(conn).get_current_revision()


def heads(key: str) -> list[str]:
    """The head revisions of the history of `key` (one, for a linear history)."""
    return list(ScriptDirectory.from_config(_config(key)).get_heads())


def checksum(key: str) -> str:
    """SHA-256 over the history, its repeatable steps and the privileges file: a changed file is a new state."""
    digest = hashlib.sha256()
    db = _database(key)
    versions = script_dir(key) / "versions"
    files = sorted(versions.glob("*")) if versions.is_dir() else []
    for path in [*files, *repeatable_steps(key), db.sql_dir / privileges.FILE_NAME]:
        if path.is_file() and path.suffix in {".py", ".sql", ".yaml"}:
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def run_sql(revision_file: str, direction: str) -> None:
    """Execute `<revision>.<direction>.sql` beside the thin revision file, as one multi-statement string."""
    from alembic import op

    path = Path(revision_file).with_suffix(f".{direction}.sql")
    sql = path.read_text()
    if not _has_statement(sql):  # a fresh `agentdb revision` has empty files; the server refuses an empty query
        return
    dbapi = op.get_bind().connection.dbapi_connection
    with dbapi.cursor() as cur:
        try:
            cur.execute(sql)
        except Exception as exc:
            name = path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path
            raise MigrationError(f"{name}: {exc}") from exc


def _has_statement(sql: str) -> bool:
    """Whether `sql` holds anything but whitespace and comments."""
    return bool(re.sub(r"--[^\n]*|/\*.*?\*/", "", sql, flags=re.DOTALL).strip())


def new_revision(key: str, message: str) -> list[Path]:
    """Write the next revision of `key`: `NNNN_slug.py` (script.py.mako) and empty `.up.sql`/`.down.sql`.

    NNNN is one more than the highest numbered revision of the history and `down_revision` its head,
    so revisions others add are counted. No database is involved. Returns the three paths.
    """
    if not message or not re.search(r"\w", message):
        raise MigrationError("-m: the message must say what the revision does (it names the file)")
    if any(ch in message for ch in '"\\') or not message.isprintable():
        raise MigrationError(f"-m: {message!r}: one line, without quotes or backslashes (it is the docstring)")
    cfg = _config(key)
    cfg.cmd_opts = argparse.Namespace(quiet=True)  # the caller reports the three files, not Alembic
    script = ScriptDirectory.from_config(cfg)
    heads = script.get_heads()
    if len(heads) > 1:
        raise MigrationError(f"{key}: the history has several heads ({', '.join(sorted(heads))}); merge them first")
    numbers = [int(rev.revision) for rev in script.walk_revisions() if rev.revision.isdigit()]
    rev_id = f"{max(numbers, default=0) + 1:04d}"
    # Alembic's own writer: script.py.mako, file_template and slug rules as the alembic CLI has them.
    made = command.revision(cfg, message=message, rev_id=rev_id)
    py = Path(made.path)  # type: ignore[union-attr]
    sql_files = [py.with_suffix(f".{direction}.sql") for direction in ("up", "down")]
    for path in sql_files:
        path.touch(exist_ok=False)
    return [py, *sql_files]
