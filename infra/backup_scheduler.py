"""The backup schedule, as a small process under supervisord: backups, `pgbackrest verify`, restore drills.

pg_cron cannot run shell commands and the local runner has no system cron, so this loop sleeps until
the next slot and runs the job due then (UTC):

- 01:00 a backup: full on Sundays, differential the other days. A differential with no full backup
  in the repository is taken as a full one by pgBackRest, so a new stack has a full backup within a
  day of its first `up`;
- 02:00 `pgbackrest verify`: every file in the repository is read back and checked;
- 03:00 every `--drill-every-days` days (counted from the Unix epoch, so a restart keeps the rhythm)
  the restore drill of infra/drill.py, when `--bindir` names PostgreSQL's binaries.

It also serves Prometheus metrics on `--metrics-listen` (infra/backup_metrics.py): what the
repository holds, read through `pgbackrest info` at each scrape, and the recorded results of the last
verify and drill (JSON files in `--status-dir`). The Docker realization runs the same file in its
backup-scheduler and backup-checks containers, from the python image's Debian Python: everything but
the drill (psycopg, Debian's python3-psycopg there) uses the standard library only.

    python -m infra.backup_scheduler --config etc/pgbackrest.conf --stanza agentdb \
        --pgpassfile secrets/pgbackrest.pgpass --status-dir data/backup-status \
        --metrics-listen 127.0.0.1:9199 [--bindir /usr/lib/postgresql/15/bin --scratch data]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

from infra import backup_metrics

# The schedule (UTC): a full backup every week, a differential every other day.
FULL_WEEKDAY = 6  # Sunday (datetime.weekday())
SCHEDULE_HOUR = 1
VERIFY_HOUR = 2  # after the backup, which takes well under an hour at these sizes
DRILL_HOUR = 3
VERIFY_TIMEOUT_S = 3600
# What one process may be given: the backups run where the repository is (the repository host's
# user), verify and drills from the database side, which also serves the metrics.
JOBS = ("backup", "verify", "drill")


def next_slot(now: dt.datetime) -> tuple[dt.datetime, str]:
    """The next scheduled backup after `now` and the backup type taken then."""
    slot = now.replace(hour=SCHEDULE_HOUR, minute=0, second=0, microsecond=0)
    if slot <= now:
        slot += dt.timedelta(days=1)
    return slot, "full" if slot.weekday() == FULL_WEEKDAY else "diff"


def _daily(now: dt.datetime, hour: int) -> dt.datetime:
    slot = now.replace(hour=hour, minute=0, second=0, microsecond=0)
    return slot if slot > now else slot + dt.timedelta(days=1)


def next_job(
    now: dt.datetime, drill_every_days: int | None, jobs: frozenset[str] = frozenset(JOBS)
) -> tuple[dt.datetime, str]:
    """The next job after `now` among `jobs`: ("full" | "diff", "verify" or "drill") and when it runs."""
    slots = []
    if "backup" in jobs:
        slots.append(next_slot(now))
    if "verify" in jobs:
        slots.append((_daily(now, VERIFY_HOUR), "verify"))
    if drill_every_days and "drill" in jobs:
        slot = _daily(now, DRILL_HOUR)
        while (slot.date() - dt.date(1970, 1, 1)).days % drill_every_days:
            slot += dt.timedelta(days=1)
        slots.append((slot, "drill"))
    return min(slots)


def _log(message: str) -> None:
    print(f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M:%S} UTC {message}", flush=True)


def verify(config: str, stanza: str, env: dict[str, str], status_dir: Path) -> bool:
    """Run `pgbackrest verify` and record its result and time for the metrics."""
    started = time.time()
    try:
        result = subprocess.run(
            ["pgbackrest", f"--config={config}", f"--stanza={stanza}", "verify", "--log-level-console=info"],
            env=env,
            capture_output=True,
            text=True,
            timeout=VERIFY_TIMEOUT_S,
        )
        output, ok = result.stdout + result.stderr, result.returncode == 0
        error = "" if ok else f"pgbackrest verify exited {result.returncode}: {output.strip()[-500:]}"
    except subprocess.TimeoutExpired:
        output, ok, error = "", False, f"pgbackrest verify did not finish within {VERIFY_TIMEOUT_S}s"
    sys.stdout.write(output)
    backup_metrics.record(
        status_dir, "verify", ok=ok, finished=time.time(), duration_s=time.time() - started, error=error
    )
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="pgbackrest.conf of the stack")
    parser.add_argument("--stanza", required=True, help="the stack's pgBackRest stanza")
    parser.add_argument(
        "--pgpassfile",
        help="pgpass file with the superuser's password (needed where the drill or the database side's"
        " pgBackRest connects to PostgreSQL; the repository host's reaches it through the database side)",
    )
    parser.add_argument("--status-dir", help="where verify and drill results are recorded (needed by them)")
    parser.add_argument("--metrics-listen", help="HOST:PORT of the Prometheus metrics; none without it")
    parser.add_argument(
        "--verify-status-dir",
        help="where the metrics read verify's results when another process runs it (default: --status-dir)",
    )
    parser.add_argument(
        "--jobs",
        default=",".join(JOBS),
        help=f"comma-separated jobs this process schedules, of {', '.join(JOBS)} (default: all)",
    )
    parser.add_argument("--drill-every-days", type=int, default=7, help="days between restore drills")
    parser.add_argument("--bindir", help="PostgreSQL's bin directory; without it no drill runs here")
    parser.add_argument("--scratch", help="directory the drill restores into (a subdirectory, removed after)")
    parser.add_argument(
        "--once",
        choices=["full", "diff", "verify", "drill"],
        help="run this job now, once, and exit (status 1 when it fails) instead of the schedule",
    )
    args = parser.parse_args(argv)
    jobs = frozenset(j.strip() for j in args.jobs.split(",") if j.strip())
    if not jobs or jobs - set(JOBS):
        parser.error(f"--jobs {args.jobs!r}: name some of {', '.join(JOBS)}")
    if jobs & {"verify", "drill"} and not args.status_dir:
        parser.error("--status-dir is needed where verify or drills run")
    if "drill" in jobs and args.bindir and not args.pgpassfile:
        parser.error("--pgpassfile is needed where drills run")
    env = {**os.environ, **({"PGPASSFILE": args.pgpassfile} if args.pgpassfile else {})}
    status_dir = Path(args.status_dir) if args.status_dir else Path()
    drill_days = args.drill_every_days if args.bindir and "drill" in jobs else None
    if args.once:
        return 0 if run_job(args.once, args, env, status_dir) else 1
    if args.metrics_listen:
        host, _, port = args.metrics_listen.rpartition(":")
        verify_dir = Path(args.verify_status_dir) if args.verify_status_dir else None
        backup_metrics.serve(host, int(port), args.config, args.stanza, env, status_dir, bool(drill_days), verify_dir)
    while True:
        slot, job = next_job(dt.datetime.now(dt.UTC), drill_days, jobs)
        _log(f"next job: {job} at {slot:%Y-%m-%d %H:%M} UTC")
        while (wait := (slot - dt.datetime.now(dt.UTC)).total_seconds()) > 0:
            time.sleep(min(wait, 60))
        run_job(job, args, env, status_dir)


def run_job(job: str, args: argparse.Namespace, env: dict[str, str], status_dir: Path) -> bool:
    """Run one job (a backup type, verify or drill), log its start and outcome; True when it passed."""
    _log(f"starting {job}")
    if job == "verify":
        ok = verify(args.config, args.stanza, env, status_dir)
    elif job == "drill":
        from infra import drill  # needs psycopg, which only the local runner's Python has

        result = drill.run_and_record(
            Path(args.config),
            args.stanza,
            Path(args.pgpassfile),
            Path(args.bindir),
            Path(args.scratch),
            status_dir,
            progress=_log,
        )
        ok = result.ok
        if not ok:
            _log(result.error)
    else:
        taken = subprocess.run(
            [
                "pgbackrest",
                f"--config={args.config}",
                f"--stanza={args.stanza}",
                "backup",
                f"--type={job}",
                "--log-level-console=info",
            ],
            env=env,
            capture_output=True,
            text=True,
        )
        sys.stdout.write(taken.stdout + taken.stderr)
        ok = taken.returncode == 0
    _log(f"{job} {'done' if ok else 'FAILED'}")
    return ok


if __name__ == "__main__":
    sys.exit(main())
