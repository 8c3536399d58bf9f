"""Our cron-job scheduler, for a PostgreSQL where pg_cron cannot run the jobs (agentdb:postgresMode external).

The jobs stay declared once, in sql/<db>/cron.yaml: whoever deploys renders them through
infra.cron.jobs into one JSON file (`write_config`), and this long-running process runs them on
their schedules, pg_cron's way: standard five-field cron expressions in UTC or pg_cron's
"N seconds", each run on a new connection to the job's database as the database's owner
(`SET ROLE`, the admin being a member of every owner), in autocommit so VACUUM runs too.

- One run of a job at a time: a job still running when it is due again is skipped, and the skip is logged.
- A failed run is logged with the job's name and the error; the next run happens on schedule.
- Who runs a database's jobs is decided at start and on every re-check (`recheck_s`): pg_cron when
  it is installed and usable from the admin's database (`pg_cron_unusable`), this process otherwise.
  The file is read again at each re-check when it changed, so `agentdb up` brings new jobs.
- Each job's last run and result, its counters and who runs it are kept in the table
  `agentdb_monitor.scheduler_jobs` of the admin's database, the schema where pg_cron's run history is
  exposed to the monitoring role: `agentdb status` and the monitoring read it there. A table, not a
  state file, because the Docker realization runs this process in a container of its own, and both
  readers connect to PostgreSQL anyway; error messages are kept from the monitoring role.
- SIGTERM (or SIGINT) stops it: no new runs, running ones get GRACE_S to finish, then are cancelled.

At import it needs only the standard library, psycopg and croniter: the Docker realization runs it
in the python image (docker/python/Dockerfile).

    python -m infra.scheduler --config etc/scheduler.json --pgpassfile secrets/scheduler.pgpass
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from croniter import croniter
from psycopg import sql
from psycopg.rows import dict_row

CONFIG_FILE = "scheduler.json"  # in the stack's etc directory
PGPASS_FILE = "scheduler.pgpass"  # in the stack's secrets directory
STATE_SCHEMA = "agentdb_monitor"
STATE_TABLE = "scheduler_jobs"
RECHECK_S = 60  # how often who-runs-what is decided again
GRACE_S = 5.0  # how long runs may finish after SIGTERM before they are cancelled
PG_CRON = "pg_cron"
AGENTDB = "agentdb"
RUNNER_NAMES = {PG_CRON: "pg_cron", AGENTDB: "the agentdb scheduler"}
_SECONDS = re.compile(r"^\s*([1-9]|[1-5][0-9])\s+seconds?\s*$")

# The columns the monitoring role may read: not last_message, which can carry data from an error.
_MONITORED = (
    "jobname",
    "database",
    "runner",
    "first_start",
    "last_start",
    "last_end",
    "last_success_end",
    "last_status",
    "runs",
    "failures",
    "skipped",
)


class ConfigError(ValueError):
    """A scheduler configuration that cannot be run: the message names the file and the job."""


# ----- schedules ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Schedule:
    """A pg_cron schedule: a cron expression (UTC, as pg_cron's default cron.timezone) or "N seconds"."""

    text: str

    def __post_init__(self) -> None:
        if not _SECONDS.match(self.text) and not croniter.is_valid(self.text):
            raise ValueError(f"schedule {self.text!r} is neither a cron expression nor pg_cron's 'N seconds' (1-59)")

    def next_after(self, moment: dt.datetime) -> dt.datetime:
        """The first moment strictly after `moment` (aware, UTC) when the schedule fires."""
        seconds = _SECONDS.match(self.text)
        if seconds:
            return moment + dt.timedelta(seconds=int(seconds.group(1)))
        return croniter(self.text, moment).get_next(dt.datetime)


# ----- configuration --------------------------------------------------------------------------
@dataclass(frozen=True)
class ScheduledJob:
    name: str
    schedule: Schedule
    command: str


@dataclass(frozen=True)
class JobDatabase:
    key: str
    name: str
    owner: str
    jobs: tuple[ScheduledJob, ...]


@dataclass(frozen=True)
class Config:
    """What the process runs: a libpq conninfo without password or database, and the databases' jobs."""

    conninfo: str
    admin_database: str
    monitor_role: str
    recheck_s: float
    databases: tuple[JobDatabase, ...]


def read_config(path: Path) -> Config:
    """Read and check the JSON file `write_config` writes (ConfigError names what is wrong)."""
    try:
        doc = json.loads(path.read_text())
        databases = tuple(
            JobDatabase(
                str(d["key"]),
                str(d["name"]),
                str(d["owner"]),
                tuple(ScheduledJob(str(j["name"]), Schedule(str(j["schedule"])), str(j["command"])) for j in d["jobs"]),
            )
            for d in doc["databases"]
        )
        return Config(
            str(doc["conninfo"]),
            str(doc.get("admin_database", "postgres")),
            str(doc.get("monitor_role", "")),
            float(doc.get("recheck_s", RECHECK_S)),
            databases,
        )
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path}: not a scheduler configuration: {exc}") from None


def admin_parts(admin_dsn: str) -> tuple[str, str, str]:
    """(conninfo without password and database, the admin's database, a pgpass line) of the admin's libpq URL."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = conninfo_to_dict(admin_dsn)
    password = str(params.pop("password", "") or "")
    database = str(params.pop("dbname", "postgres") or "postgres")

    def esc(value: object) -> str:
        return str(value).replace("\\", "\\\\").replace(":", "\\:")

    line = ":".join(esc(params.get(k, "*") or "*") for k in ("host", "port")) + f":*:{esc(params['user'])}:"
    return make_conninfo(**params), database, line + esc(password) + "\n"


def write_config(
    admin_dsn: str, settings: Any, job_files: dict[str, Path] | None = None, recheck_s: float = RECHECK_S
) -> tuple[str, str]:
    """The scheduler's file (JSON, no secret) and its pgpass file (0600), from the admin's libpq URL.

    The jobs come from infra.cron.jobs, the one reader of sql/<db>/cron.yaml. `job_files` (database
    key -> a cron.yaml of one's own) limits the file to those databases, for trials and tests.
    """
    from infra import credentials, cron
    from infra.databases import DATABASES

    conninfo, database, pgpass = admin_parts(admin_dsn)
    selected = [DATABASES[key] for key in job_files] if job_files else settings.enabled
    doc = {
        "conninfo": conninfo,
        "admin_database": database,
        "monitor_role": credentials.MONITOR_ROLE,
        "recheck_s": recheck_s,
        "databases": [
            {
                "key": db.key,
                "name": db.name,
                "owner": db.owner,
                "jobs": [
                    {"name": j.name, "schedule": j.schedule, "command": j.command}
                    for j in cron.jobs(db, settings, (job_files or {}).get(db.key))
                ],
            }
            for db in selected
        ],
    }
    return json.dumps(doc, indent=2, sort_keys=True) + "\n", pgpass


# ----- who runs the jobs ----------------------------------------------------------------------
def pg_cron_unusable(conn: psycopg.Connection) -> str | None:
    """Why pg_cron cannot run the jobs from `conn`'s database (the admin's), or None when it can.

    It can when its extension is installed in this very database (pg_cron's CREATE EXTENSION succeeds only
    where its preloaded library's cron.database_name points), it has schedule_in_database (pg_cron 1.4+),
    and the connected role may call that. cron.database_name itself is readable only with
    pg_read_all_settings, which a managed server's admin may lack: pg_settings hides it then.
    """
    row = conn.execute(
        "SELECT (SELECT setting FROM pg_settings WHERE name = 'cron.database_name'), current_database(),"
        " EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron'),"
        " to_regprocedure('cron.schedule_in_database(text,text,text,text,text,boolean)') IS NOT NULL,"
        " 'pg_cron' = ANY (string_to_array(replace(coalesce((SELECT setting FROM pg_settings"
        " WHERE name = 'shared_preload_libraries'), ''), ' ', ''), ','))"
    ).fetchone()
    cron_database, here, installed, has_function, preloaded = row
    if not installed:
        if (
            not cron_database
            and not preloaded
            and conn.execute(
                "SELECT pg_has_role('pg_read_all_settings', 'USAGE') OR"
                " (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)"
            ).fetchone()[0]
        ):
            return "pg_cron is not in shared_preload_libraries"
        where = f" (cron.database_name is {cron_database})" if cron_database else ""
        return f"the pg_cron extension is not installed in database {here}{where}"
    if not has_function:
        return "this pg_cron has no cron.schedule_in_database (pg_cron 1.4 or later has it)"
    if not conn.execute(
        "SELECT has_function_privilege('cron.schedule_in_database(text,text,text,text,text,boolean)', 'EXECUTE')"
    ).fetchone()[0]:
        return "the admin role may not execute cron.schedule_in_database"
    return None


# ----- the state table ------------------------------------------------------------------------
def ensure_state(conn: psycopg.Connection, monitor_role: str) -> None:
    """The state table in the admin's database, readable (without messages) by the monitoring role."""
    ident = sql.Identifier
    table = sql.SQL("{}.{}").format(ident(STATE_SCHEMA), ident(STATE_TABLE))
    conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(ident(STATE_SCHEMA)))
    conn.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} ("
            " jobname text PRIMARY KEY, database text NOT NULL, schedule text NOT NULL, runner text NOT NULL,"
            " first_start timestamptz, last_start timestamptz, last_end timestamptz, last_success_end timestamptz,"
            " last_status text, last_message text,"
            " runs bigint NOT NULL DEFAULT 0, failures bigint NOT NULL DEFAULT 0, skipped bigint NOT NULL DEFAULT 0)"
        ).format(table)
    )
    if monitor_role and conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (monitor_role,)).fetchone():
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(ident(STATE_SCHEMA), ident(monitor_role)))
        conn.execute(
            sql.SQL("GRANT SELECT ({}) ON {} TO {}").format(
                sql.SQL(", ").join(map(ident, _MONITORED)), table, ident(monitor_role)
            )
        )


def state_rows(conn: psycopg.Connection) -> list[dict[str, Any]]:
    """Every job the scheduler knows, with its runner and last run (empty before it ever ran)."""
    if conn.execute("SELECT to_regclass(%s)", (f"{STATE_SCHEMA}.{STATE_TABLE}",)).fetchone()[0] is None:
        return []
    cur = conn.cursor(row_factory=dict_row)
    return cur.execute(
        sql.SQL("SELECT * FROM {}.{} ORDER BY database, jobname").format(
            sql.Identifier(STATE_SCHEMA), sql.Identifier(STATE_TABLE)
        )
    ).fetchall()


def describe(admin_dsn: str, settings: Any) -> str:
    """Per enabled database, who runs its cron jobs; with each job's last run when our scheduler does."""
    with psycopg.connect(admin_dsn, autocommit=True, connect_timeout=5) as conn:
        reason = pg_cron_unusable(conn)
        rows = state_rows(conn)
    lines = ["CRON JOBS"]
    width = max(len(db.key) for db in settings.enabled)
    for db in settings.enabled:
        mine = [r for r in rows if r["database"] == db.name and r["runner"] == AGENTDB]
        if mine:
            lines.append(f"{db.key:<{width}}  {RUNNER_NAMES[AGENTDB]}")
            name_width = max(len(r["jobname"]) for r in mine)
            for r in mine:
                parts = []
                if r["last_start"] is not None and (r["last_end"] is None or r["last_end"] < r["last_start"]):
                    parts.append(f"running since {r['last_start']:%Y-%m-%d %H:%M:%S} UTC")
                if r["last_end"] is not None:
                    result = r["last_status"] + (f": {r['last_message']}" if r["last_status"] == "failed" else "")
                    parts.append(f"last run ended {r['last_end']:%Y-%m-%d %H:%M:%S} UTC, {result}")
                last = "; ".join(parts) or "never run"
                counts = f"runs {r['runs']}, failed {r['failures']}, skipped {r['skipped']}"
                lines.append(f"  {r['jobname']:<{name_width}}  {last} ({counts})")
        elif reason is None:
            lines.append(f"{db.key:<{width}}  {RUNNER_NAMES[PG_CRON]}")
        elif settings.postgres_mode == "external":
            lines.append(f"{db.key:<{width}}  {RUNNER_NAMES[AGENTDB]} ({reason}; no run recorded)")
        else:
            lines.append(f"{db.key:<{width}}  nobody: {reason}")
    return "\n".join(lines)


# ----- the process ----------------------------------------------------------------------------
def log(message: str) -> None:
    """One line on stdout with a UTC timestamp (supervisord or Docker keeps it)."""
    print(f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M:%S} UTC {message}", flush=True)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@dataclass
class _Slot:
    """One job's place in the loop: when it is due next and the run in progress, if any."""

    db: JobDatabase
    job: ScheduledJob
    due: dt.datetime
    thread: threading.Thread | None = None
    conn: psycopg.Connection | None = None

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()


class Scheduler:
    """The loop: decides who runs each database's jobs, starts due runs, records results."""

    def __init__(self, config_path: Path, force: bool = False, heartbeat: Path | None = None):
        """`force` runs every job here even where pg_cron could (trials, tests, a pg_cron that does not run);
        `heartbeat` is a file touched on every turn of the loop, for a container's health check."""
        self.config_path = config_path
        self.force = force
        self._recording = True  # whether the last check could keep the state table
        self.heartbeat = heartbeat
        self.stop = threading.Event()
        self.config = read_config(config_path)
        self._mtime = config_path.stat().st_mtime_ns
        self.runners: dict[str, str] = {}  # database key -> PG_CRON or AGENTDB
        self.slots: dict[str, _Slot] = {}

    # -- connections
    def _connect(self, database: str, **kw: Any) -> psycopg.Connection:
        return psycopg.connect(
            self.config.conninfo, dbname=database, application_name="agentdb scheduler", connect_timeout=10, **kw
        )

    def _record(self, query: str, params: dict[str, Any]) -> None:
        """Write to the state table; a failure is logged, never fatal (the jobs matter more than their record)."""
        if not self._recording:
            return  # said once, when the check found the table out of reach
        try:
            with self._connect(self.config.admin_database, autocommit=True) as conn:
                conn.execute(
                    sql.SQL(query).format(table=sql.SQL(f"{STATE_SCHEMA}.{STATE_TABLE}")),
                    params,
                )
        except psycopg.Error as exc:
            log(f"could not record in {STATE_SCHEMA}.{STATE_TABLE}: {_first_line(exc)}")

    # -- deciding
    def check(self) -> None:
        """Read the file again if it changed, and decide per database who runs its jobs."""
        mtime = self.config_path.stat().st_mtime_ns
        if mtime != self._mtime:
            try:
                self.config = read_config(self.config_path)
                self._mtime = mtime
                log(f"read {self.config_path} again")
            except ConfigError as exc:
                log(f"keeping the jobs as they were: {exc}")
        with self._connect(self.config.admin_database, autocommit=True) as conn:
            try:
                ensure_state(conn, self.config.monitor_role)
                recording = True
            except psycopg.errors.InsufficientPrivilege as exc:
                # A managed server may close its admin database to the admin: the jobs still run,
                # only their record (for `agentdb status` and monitoring) is missing.
                recording = False
                if self._recording:
                    log(
                        f"job runs are not recorded in {self.config.admin_database}.{STATE_SCHEMA}: "
                        f"{_first_line(exc)} (GRANT CREATE ON DATABASE {self.config.admin_database} to the admin)"
                    )
            self._recording = recording
            reason = None if self.force else pg_cron_unusable(conn)
            rows = []
            for db in self.config.databases:
                runner = PG_CRON if reason is None and not self.force else AGENTDB
                if self.runners.get(db.key) != runner:
                    why = "forced" if self.force else (reason or "pg_cron is usable")
                    log(f"{db.key}: {RUNNER_NAMES[runner]} runs its {len(db.jobs)} jobs ({why})")
                    if self.runners.get(db.key) == AGENTDB:
                        # pg_cron came after us: only a sync (the baseline's) gives it the jobs.
                        log(f"{db.key}: `agentdb up` or `agentdb migrate` schedules its jobs in pg_cron")
                self.runners[db.key] = runner
                rows += [(j.name, db.name, j.schedule.text, runner) for j in db.jobs]
            if recording:
                # Jobs no longer declared leave the table, as sync unschedules them from pg_cron.
                conn.execute(
                    sql.SQL("DELETE FROM {}.{} WHERE NOT (jobname = ANY(%s))").format(
                        sql.Identifier(STATE_SCHEMA), sql.Identifier(STATE_TABLE)
                    ),
                    ([r[0] for r in rows],),
                )
                with conn.cursor() as cur:
                    cur.executemany(
                        sql.SQL(
                            "INSERT INTO {}.{} (jobname, database, schedule, runner) VALUES (%s, %s, %s, %s)"
                            " ON CONFLICT (jobname) DO UPDATE SET database = EXCLUDED.database,"
                            " schedule = EXCLUDED.schedule, runner = EXCLUDED.runner"
                        ).format(sql.Identifier(STATE_SCHEMA), sql.Identifier(STATE_TABLE)),
                        rows,
                    )
        now = dt.datetime.now(dt.UTC)
        wanted: dict[str, _Slot] = {}
        for db in self.config.databases:
            if self.runners[db.key] != AGENTDB:
                continue
            for job in db.jobs:
                old = self.slots.get(job.name)
                if old and old.job == job and (old.db.name, old.db.owner) == (db.name, db.owner):
                    wanted[job.name] = old
                else:
                    # A changed job keeps its run in progress, so the new one cannot overlap it.
                    wanted[job.name] = _Slot(db, job, job.schedule.next_after(now), old.thread if old else None)
        # A run of a job that left the file finishes; it is only not started again.
        self.slots = wanted

    # -- running
    def _run(self, slot: _Slot) -> None:
        job, db = slot.job, slot.db
        started = dt.datetime.now(dt.UTC)
        self._record(
            "UPDATE {table} SET last_start = %(t)s, first_start = coalesce(first_start, %(t)s)"
            " WHERE jobname = %(name)s",
            {"t": started, "name": job.name},
        )
        status, message = "succeeded", ""
        try:
            with self._connect(db.name, autocommit=True) as conn:
                slot.conn = conn
                # As pg_cron runs a job: as the database's owner, in the job's database.
                conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(db.owner)))
                conn.execute(job.command)
        except Exception as exc:  # every failure is the job's, reported and recorded; the loop goes on
            status, message = "failed", _first_line(exc)
        finally:
            slot.conn = None
        took = (dt.datetime.now(dt.UTC) - started).total_seconds()
        if status == "failed":
            log(f"job {job.name} failed after {took:.2f}s: {message}")
        else:
            log(f"job {job.name} succeeded in {took:.2f}s")
        self._record(
            "UPDATE {table} SET last_end = now(), last_status = %(status)s, last_message = %(message)s,"
            " last_success_end = CASE WHEN %(failed)s = 0 THEN now() ELSE last_success_end END,"
            " runs = runs + 1, failures = failures + %(failed)s WHERE jobname = %(name)s",
            {"status": status, "message": message, "failed": int(status == "failed"), "name": job.name},
        )

    def tick(self, now: dt.datetime) -> None:
        """Start every due run; skip (and log) a job whose previous run is still going."""
        for slot in self.slots.values():
            if now < slot.due:
                continue
            slot.due = slot.job.schedule.next_after(now)
            if slot.running:
                log(f"job {slot.job.name} skipped: its previous run is still going")
                self._record(
                    "UPDATE {table} SET skipped = skipped + 1 WHERE jobname = %(name)s", {"name": slot.job.name}
                )
                continue
            log(f"job {slot.job.name} starting")
            slot.thread = threading.Thread(target=self._run, args=(slot,), name=slot.job.name, daemon=True)
            slot.thread.start()

    def run(self) -> int:
        """Loop until stopped; returns the exit status."""
        next_check = dt.datetime.now(dt.UTC)
        while not self.stop.is_set():
            now = dt.datetime.now(dt.UTC)
            if now >= next_check:
                try:
                    self.check()
                except psycopg.Error as exc:
                    # Keep the previous decision; the jobs' own runs will report the server's trouble.
                    log(f"could not check who runs the jobs: {_first_line(exc)}")
                next_check = now + dt.timedelta(seconds=self.config.recheck_s)
            self.tick(now)
            if self.heartbeat:
                self.heartbeat.touch()
            wake = min([next_check, *(s.due for s in self.slots.values())])
            self.stop.wait(max(0.05, min(1.0, (wake - dt.datetime.now(dt.UTC)).total_seconds())))
        self._shutdown()
        return 0

    def _shutdown(self) -> None:
        running = [s for s in self.slots.values() if s.running]
        log(f"stopping; {len(running)} run(s) in progress")
        deadline = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=GRACE_S)
        for slot in running:
            slot.thread.join(max(0.0, (deadline - dt.datetime.now(dt.UTC)).total_seconds()))
            conn = slot.conn
            if slot.running and conn is not None:
                log(f"job {slot.job.name} cancelled at shutdown")
                conn.cancel_safe()
                slot.thread.join(GRACE_S)
        log("stopped")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, type=Path, help=f"the stack's {CONFIG_FILE}")
    parser.add_argument("--pgpassfile", help="libpq password file with the admin's password")
    parser.add_argument("--force", action="store_true", help="run the jobs here even where pg_cron could")
    parser.add_argument("--heartbeat", type=Path, help="touch this file on every turn of the loop (health checks)")
    args = parser.parse_args(argv)
    if args.pgpassfile:
        os.environ["PGPASSFILE"] = args.pgpassfile
    try:
        scheduler = Scheduler(args.config, force=args.force, heartbeat=args.heartbeat)
    except (ConfigError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    def stop(signum: int, _frame: Any) -> None:
        log(f"received {signal.Signals(signum).name}")
        scheduler.stop.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log(f"started with {args.config}: {sum(len(d.jobs) for d in scheduler.config.databases)} jobs")
    return scheduler.run()


if __name__ == "__main__":
    sys.exit(main())
