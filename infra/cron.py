"""The one cron-job code path: sql/<key>/cron.yaml, synced into pg_cron by job name."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import jinja2
import psycopg
import yaml

from infra.databases import Database
from infra.scheduler import Schedule, pg_cron_unusable
from infra.settings import Settings


class CronError(ValueError):
    """A cron.yaml that cannot be synced: the message names the file and the job."""


@dataclass(frozen=True)
class Job:
    name: str
    schedule: str
    command: str


def jobs(db: Database, settings: Settings, path: Path | None = None) -> list[Job]:
    """The jobs declared for `db` (in `path`, default sql/<key>/cron.yaml), rendered with `settings`."""
    path = path or db.sql_dir / "cron.yaml"
    if not path.exists():
        return []
    text = jinja2.Template(path.read_text(), undefined=jinja2.StrictUndefined).render(settings=settings)
    doc = yaml.safe_load(text) or {}
    out: list[Job] = []
    for i, entry in enumerate(doc.get("jobs") or []):
        try:
            job = Job(str(entry["name"]), str(entry["schedule"]), str(entry["command"]))
        except (KeyError, TypeError):
            raise CronError(f"{path}: job #{i + 1} needs name, schedule and command") from None
        if not job.name.startswith(f"{db.key}-"):
            raise CronError(f"{path}: job {job.name!r} must be named {db.key}-<something>")
        try:
            # The schedule our scheduler parses is the one pg_cron gets: refused here, for both, alike.
            Schedule(job.schedule)
        except ValueError:
            raise CronError(
                f"{path}: job {job.name!r}: schedule {job.schedule!r} is not a cron expression or 'N seconds' (1-59)"
            ) from None
        out.append(job)
    names = [job.name for job in out]
    if len(set(names)) != len(names):
        raise CronError(f"{path}: a job name is declared twice")
    return out


def deferred(admin_dsn: str, settings: Settings) -> str | None:
    """Why our scheduler, not pg_cron, runs the jobs (a server agentdb does not own, without a usable
    pg_cron: infra/scheduler.py), or None when they are synced into pg_cron."""
    if settings.postgres_mode != "external":
        return None
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        return pg_cron_unusable(conn)


def sync(admin_dsn: str, db: Database, settings: Settings, path: Path | None = None) -> list[str]:
    """Schedule, update and unschedule `db`'s jobs by name; returns what changed ("+name", "~name", "-name")."""
    wanted = {job.name: job for job in jobs(db, settings, path)}
    changed: list[str] = []
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        # pg_cron lets only a superuser schedule a job as another role. A managed server's admin (agentdb:
        # postgresMode external) schedules as itself: a member of the owner role, it holds the owner's rights.
        superuser = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[0]
        runner = db.owner if superuser else conn.info.user
        rows = conn.execute(
            "SELECT jobname, schedule, command, database, username, jobid FROM cron.job WHERE jobname LIKE %s",
            (f"{db.key}-%",),
        ).fetchall()
        existing = {row[0]: row[1:5] for row in rows}
        job_ids = {row[0]: row[5] for row in rows}
        for name, job in wanted.items():
            state = (job.schedule, job.command, db.name, runner)
            if existing.get(name) == state:
                continue
            conn.execute(
                "SELECT cron.schedule_in_database(%s, %s, %s, %s, %s, true)",
                (name, job.schedule, job.command, db.name, db.owner if superuser else None),
            )
            changed.append(("~" if name in existing else "+") + name)
        for name in existing.keys() - wanted.keys():
            # By id: unschedule(name) only finds the calling user's jobs, and these belong to the owner.
            conn.execute("SELECT cron.unschedule(%s::bigint)", (job_ids[name],))
            changed.append("-" + name)
    return changed
