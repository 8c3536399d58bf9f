"""The backup schedule, as a small process under supervisord: full weekly, differential daily (UTC).

pg_cron cannot run shell commands and the local runner has no system cron, so this loop sleeps until
the next slot and runs `pgbackrest backup`. A differential with no full backup in the repository is
taken as a full one by pgBackRest, so a new stack has a full backup within a day of its first `up`.
The Docker realization runs the same file in its backup container, so it uses the standard library
only.

    python -m infra.backup_scheduler --config etc/pgbackrest.conf --stanza agentdb \
        --pgpassfile secrets/pgbackrest.pgpass
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import time

# The schedule (UTC): a full backup every week, a differential every other day.
FULL_WEEKDAY = 6  # Sunday (datetime.weekday())
SCHEDULE_HOUR = 1


def next_slot(now: dt.datetime) -> tuple[dt.datetime, str]:
    """The next scheduled moment after `now` and the backup type taken then."""
    slot = now.replace(hour=SCHEDULE_HOUR, minute=0, second=0, microsecond=0)
    if slot <= now:
        slot += dt.timedelta(days=1)
    return slot, "full" if slot.weekday() == FULL_WEEKDAY else "diff"


def _log(message: str) -> None:
    print(f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M:%S} UTC {message}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="pgbackrest.conf of the stack")
    parser.add_argument("--stanza", required=True, help="the stack's pgBackRest stanza")
    parser.add_argument("--pgpassfile", required=True, help="pgpass file with the superuser's password")
    args = parser.parse_args(argv)
    env = {**os.environ, "PGPASSFILE": args.pgpassfile}
    while True:
        slot, kind = next_slot(dt.datetime.now(dt.UTC))
        _log(f"next backup: {kind} at {slot:%Y-%m-%d %H:%M} UTC")
        while (wait := (slot - dt.datetime.now(dt.UTC)).total_seconds()) > 0:
            time.sleep(min(wait, 60))
        _log(f"starting {kind} backup")
        result = subprocess.run(
            [
                "pgbackrest",
                f"--config={args.config}",
                f"--stanza={args.stanza}",
                "backup",
                f"--type={kind}",
                "--log-level-console=info",
            ],
            env=env,
            capture_output=True,
            text=True,
        )
        sys.stdout.write(result.stdout + result.stderr)
        _log(f"{kind} backup {'done' if result.returncode == 0 else f'FAILED (exit {result.returncode})'}")


if __name__ == "__main__":
    sys.exit(main())
