"""The restore drill: restore the latest backup into a scratch directory, start it, check it, remove it.

A backup is only as good as its last successful restore. The drill asks the repository through the
stack's rendered pgbackrest.conf (posix path or repository host alike) for its latest backup,
restores it beside the live data with `--pg1-path` to a scratch directory, recovers to the end of
that backup with archiving off (the copy pushes nothing into the repository), and starts it on a
free port, reachable only through its own socket directory. Then it checks:

- every database the live server has is there, and every table that has rows on the live server
  has rows in the copy (a sanity check, not an equality: the live server moved on since the backup);
- `bt_index_check` (amcheck) passes on every B-tree index of the application schemas: each table's
  primary key and the seeds' lookup indexes among them.

The copy is stopped and removed whatever happens, and the result and duration are recorded where
the backup scheduler's metrics read them (infra/backup_metrics.py). Runs from the scheduler (as the
service user) and as `agentdb drill` (as root, which runs pgBackRest and PostgreSQL as the service user).
"""

from __future__ import annotations

import configparser
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from infra import backup_metrics

if TYPE_CHECKING:
    from infra.runner import LocalStack

RESTORE_TIMEOUT_S = 1800
START_TIMEOUT_S = 600
# Schemas of PostgreSQL and of extensions, not of the application.
SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "cron", "partman", "pg_toast")

# On the command line as well as in the copy's postgresql.conf: they outrank the restored
# postgresql.auto.conf, whatever ALTER SYSTEM put there on the live server.
OVERRIDES = "-c archive_mode=off -c shared_preload_libraries='' -c listen_addresses=''"

Progress = Callable[[str], None]


class DrillError(RuntimeError):
    """The drill failed: the message names the step and what was wrong."""

    result: DrillResult | None = None  # what the drill had found when it failed


@dataclass
class DrillResult:
    ok: bool
    duration_s: float
    backup: str = ""
    databases: int = 0
    tables: int = 0
    rows: int = 0
    indexes: int = 0
    error: str = ""
    empty_tables: list[str] = field(default_factory=list)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as(user: str | None, cmd: list[str]) -> list[str]:
    return ["runuser", "-u", user, "--", *cmd] if user else cmd


def _live(config: Path, stanza: str) -> dict[str, str]:
    """Where the live server is, as the rendered pgbackrest.conf names it (pg1 of the stanza)."""
    parser = configparser.RawConfigParser()
    parser.read(config)
    if not parser.has_section(stanza):
        raise DrillError(f"{config}: no [{stanza}] section: is this the stack's pgbackrest.conf?")
    section = parser[stanza]
    return {
        "host": section.get("pg1-socket-path", "/var/run/postgresql"),
        "port": section.get("pg1-port", "5432"),
        "user": section.get("pg1-user", "postgres"),
    }


def _run(cmd: list[str], env: dict[str, str], what: str, timeout: float) -> str:
    try:
        result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd="/")
    except subprocess.TimeoutExpired:
        raise DrillError(f"{what}: did not finish within {timeout:.0f}s") from None
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-10:])
        raise DrillError(f"{what} failed (exit {result.returncode}):\n{tail}")
    return result.stdout


def _tables(conn) -> dict[str, int]:
    """Rows of every application table (partitioned parents counted whole, their partitions not again)."""
    names = [
        row[0]
        for row in conn.execute(
            "SELECT format('%%I.%%I', n.nspname, c.relname) FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND n.nspname <> ALL(%s)"
            " AND n.nspname NOT LIKE 'pg_temp%%' ORDER BY 1",
            (list(SYSTEM_SCHEMAS),),
        )
    ]
    counts = {}
    for name in names:
        try:
            counts[name] = conn.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
        except Exception as exc:  # a corrupt page or a missing file: name the table it belongs to
            raise DrillError(
                f"drill: {conn.info.dbname}: counting the rows of {name} failed: {str(exc).strip()}"
            ) from None
    return counts


def _databases(conn) -> list[str]:
    return [
        row[0]
        for row in conn.execute(
            "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate AND datname <> 'postgres'"
            " ORDER BY 1"
        )
    ]


def _check_indexes(conn) -> int:
    """bt_index_check on every valid B-tree index of the application schemas; the number checked."""
    conn.execute("CREATE EXTENSION IF NOT EXISTS amcheck")  # in the scratch copy only
    indexes = conn.execute(
        "SELECT format('%%I.%%I', n.nspname, c.relname), c.oid FROM pg_index i"
        " JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
        " JOIN pg_am a ON a.oid = c.relam"
        " WHERE a.amname = 'btree' AND c.relkind = 'i' AND i.indisvalid AND i.indisready"
        " AND n.nspname <> ALL(%s) ORDER BY 1",
        (list(SYSTEM_SCHEMAS),),
    ).fetchall()
    for name, oid in indexes:
        try:
            conn.execute("SELECT bt_index_check(%s)", (oid,))
        except Exception as exc:
            raise DrillError(
                f"drill: {conn.info.dbname}: amcheck: index {name} is corrupt: {str(exc).strip()}"
            ) from None
    return len(indexes)


def _wait_promoted(
    conninfo: str, data: Path, scratch: Path, run_as: str | None, pg_ctl: str, env: dict, progress: Progress
) -> None:
    """Wait until the copy has replayed to the end of the backup and accepts connections as a primary."""
    import psycopg

    started = time.monotonic()
    last: Exception | None = None
    while time.monotonic() - started < START_TIMEOUT_S:
        try:
            with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
                if not conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
                    progress(f"drill: the copy recovered and accepts connections ({time.monotonic() - started:.1f}s)")
                    return
        except psycopg.OperationalError as exc:
            last = exc
        # pg_ctl status exits 3 once the postmaster is gone: recovery failed, the log says why.
        status = subprocess.run(_as(run_as, [pg_ctl, "-D", str(data), "status"]), capture_output=True, cwd="/")
        if status.returncode != 0:
            log = scratch / "postgres.log"
            tail = log.read_text(errors="replace").strip().splitlines()[-10:] if log.exists() else []
            raise DrillError("drill: the restored copy stopped during recovery:\n" + "\n".join(tail))
        time.sleep(0.5)
    raise DrillError(f"drill: the restored copy did not finish recovery within {START_TIMEOUT_S}s ({last})")


def drill(
    config: Path,
    stanza: str,
    pgpass: Path,
    bindir: Path,
    scratch_root: Path,
    progress: Progress = print,
    run_as: str | None = None,
    after_restore: Callable[[Path], None] | None = None,
) -> DrillResult:
    """Run the drill; raise DrillError naming what failed. The scratch copy is always removed.

    `after_restore` runs on the restored directory before it starts (the tests corrupt it there).
    """
    import psycopg

    started = time.monotonic()
    env = {**os.environ, "PGPASSFILE": str(pgpass)}
    live = _live(config, stanza)
    scratch_root.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="drill-", dir=scratch_root))
    owner = None
    if run_as:
        import pwd

        entry = pwd.getpwnam(run_as)
        owner = (entry.pw_uid, entry.pw_gid)
        os.chown(scratch, *owner)
    data, sockets = scratch / "data", scratch / "socket"
    for directory in (data, sockets):
        directory.mkdir(mode=0o700)
        if owner:
            os.chown(directory, *owner)
    port = _free_port()
    pg_ctl = str(bindir / "pg_ctl")
    started_server = False
    result = DrillResult(ok=False, duration_s=0.0)
    try:
        progress(f"drill: restoring the latest backup into {data}")
        restored = _run(
            _as(
                run_as,
                [
                    "pgbackrest",
                    f"--config={config}",
                    f"--stanza={stanza}",
                    "restore",
                    f"--pg1-path={data}",
                    # The end of the backup: consistent, and nothing of the live WAL stream is needed.
                    "--type=immediate",
                    "--target-action=promote",
                    # The copy must never push WAL into the repository it was restored from.
                    "--archive-mode=off",
                    "--log-level-console=info",
                ],
            ),
            env,
            "drill: pgbackrest restore",
            RESTORE_TIMEOUT_S,
        )
        label = re.search(r"restore backup set (\S+)", restored)
        result.backup = label.group(1).rstrip(",") if label else ""
        progress(f"drill: restored backup {result.backup or '(label not reported)'}")
        # A cluster's backups come from a replica, whose standby.signal would keep the copy following
        # a leader forever instead of stopping at the end of the backup.
        (data / "standby.signal").unlink(missing_ok=True)
        if after_restore:
            after_restore(data)
        # Its own configuration: no TCP listener, no archiving, no pg_cron running the live jobs on
        # the copy, and only the superuser through the socket directory with its SCRAM password.
        (scratch / "pg_hba.conf").write_text(f"local all {live['user']} scram-sha-256\n")
        (scratch / "postgresql.conf").write_text(
            f"port = {port}\nlisten_addresses = ''\nunix_socket_directories = '{sockets}'\n"
            f"hba_file = '{scratch / 'pg_hba.conf'}'\n"
            "archive_mode = off\nshared_preload_libraries = ''\nhot_standby = off\nlogging_collector = off\n"
            "max_connections = 20\nshared_buffers = '64MB'\n"
        )
        for name in ("pg_hba.conf", "postgresql.conf"):
            if owner:
                os.chown(scratch / name, *owner)
        progress(f"drill: starting the copy on port {port} (socket in {sockets})")
        started_server = True
        _run(
            _as(
                run_as,
                [
                    pg_ctl,
                    "-D",
                    str(data),
                    "-o",
                    f"-c config_file={scratch / 'postgresql.conf'} {OVERRIDES}",
                    "-l",
                    str(scratch / "postgres.log"),
                    "-w",
                    "-t",
                    str(START_TIMEOUT_S),
                    "start",
                ],
            ),
            env,
            "drill: starting the restored copy",
            START_TIMEOUT_S + 30,
        )

        def dsn(host: str, port_: str | int, dbname: str) -> str:
            return psycopg.conninfo.make_conninfo(
                host=host, port=str(port_), user=live["user"], dbname=dbname, passfile=str(pgpass)
            )

        with psycopg.connect(dsn(live["host"], live["port"], "postgres"), autocommit=True) as conn:
            live_databases = _databases(conn)
        _wait_promoted(dsn(str(sockets), port, "postgres"), data, scratch, run_as, pg_ctl, env, progress)
        with psycopg.connect(dsn(str(sockets), port, "postgres"), autocommit=True) as conn:
            copy_databases = _databases(conn)
        missing = sorted(set(live_databases) - set(copy_databases))
        if missing:
            raise DrillError(f"drill: the restored copy lacks the database(s) {', '.join(missing)}")
        for name in live_databases:
            with psycopg.connect(dsn(live["host"], live["port"], name), autocommit=True) as conn:
                live_rows = _tables(conn)
            with psycopg.connect(dsn(str(sockets), port, name), autocommit=True) as conn:
                copy_rows = _tables(conn)
                result.indexes += _check_indexes(conn)
            lost = sorted(t for t in live_rows if t not in copy_rows)
            if lost:
                raise DrillError(f"drill: {name}: the restored copy lacks the table(s) {', '.join(lost)}")
            result.empty_tables += [f"{name}:{t}" for t, n in live_rows.items() if n and not copy_rows[t]]
            result.tables += len(copy_rows)
            result.rows += sum(copy_rows.values())
            result.databases += 1
            progress(f"drill: {name}: {len(copy_rows)} tables, {sum(copy_rows.values())} rows; indexes pass amcheck")
        if result.empty_tables:
            raise DrillError(
                "drill: table(s) with rows on the live server are empty in the restored copy: "
                + ", ".join(result.empty_tables)
            )
        result.ok = True
    except DrillError as exc:
        result.error = str(exc)
        exc.result = result
        raise
    except Exception as exc:  # a database error in a check: name it as the drill's
        result.error = f"drill: {type(exc).__name__}: {str(exc).strip()}"
        error = DrillError(result.error)
        error.result = result
        raise error from exc
    finally:
        result.duration_s = time.monotonic() - started
        if started_server:
            subprocess.run(
                _as(run_as, [pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"]),
                capture_output=True,
                text=True,
                cwd="/",
            )
        shutil.rmtree(scratch, ignore_errors=True)
        progress(f"drill: removed {scratch}")
    result.duration_s = time.monotonic() - started
    return result


def run_and_record(
    config: Path,
    stanza: str,
    pgpass: Path,
    bindir: Path,
    scratch_root: Path,
    status_dir: Path,
    progress: Progress = print,
    run_as: str | None = None,
    after_restore: Callable[[Path], None] | None = None,
) -> DrillResult:
    """Run the drill and record its result and duration for the metrics; never raises DrillError."""
    started = time.monotonic()
    try:
        result = drill(config, stanza, pgpass, bindir, scratch_root, progress, run_as, after_restore)
    except DrillError as exc:
        result = exc.result or DrillResult(ok=False, duration_s=time.monotonic() - started, error=str(exc))
    backup_metrics.record(
        status_dir,
        "drill",
        ok=result.ok,
        finished=time.time(),
        duration_s=result.duration_s,
        error=result.error,
        backup=result.backup,
        databases=result.databases,
        tables=result.tables,
        rows=result.rows,
        indexes=result.indexes,
    )
    if run_as:
        import pwd

        entry = pwd.getpwnam(run_as)
        for path in status_dir.glob("*.json"):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    progress(
        f"drill: passed in {result.duration_s:.1f}s ({result.databases} databases, {result.tables} tables,"
        f" {result.rows} rows, {result.indexes} indexes checked)"
        if result.ok
        else f"drill: FAILED after {result.duration_s:.1f}s (recorded in {status_dir / 'drill.json'})"
    )
    return result


def status_dir(stack: LocalStack) -> Path:
    """Where a local stack records its verify and drill results (the scheduler's metrics read them)."""
    return stack.data / "backup-status"


def run_local(stack: LocalStack, progress: Progress = print) -> DrillResult:
    """`agentdb drill`: the drill on a local stack, recorded like the scheduler's; DrillError when it fails."""
    from infra import backup
    from infra.render import PGBACKREST_STANZA

    run_as = None
    if stack._owner():
        from infra.runner import SERVICE_USER

        run_as = SERVICE_USER
    backup._prepare(stack)  # the pgpass file the drill connects with
    result = run_and_record(
        backup.config_path(stack),
        PGBACKREST_STANZA,
        backup.pgpass_path(stack),
        stack.pg_bindir,
        stack.data,
        status_dir(stack),
        progress,
        run_as,
    )
    if not result.ok:
        raise DrillError(result.error)
    return result
