"""PostgreSQL's logs for an operator: pgBadger reports and readable tails of the CSV log files.

PostgreSQL's logging collector writes csvlog files into the layout's `postgres_logs` directory
(config/postgresql.conf.j2); `agentdb report` hands them to Debian's pgbadger.
"""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from infra import tools

# --out's extension -> pgbadger's output format (-x).
FORMATS = {".html": "html", ".json": "json"}
_RELATIVE = re.compile(r"^(\d+)([mhd])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}
# csvlog columns (PostgreSQL 14 to 17 share the first fifteen).
_TIME, _USER, _DATABASE, _SEVERITY, _MESSAGE, _DETAIL = 0, 1, 2, 11, 13, 14


class ReportError(RuntimeError):
    """No report could be made: the message says why and what to do."""


def log_files(directory: Path) -> list[Path]:
    """The non-empty csvlog files in `directory` and in each cluster node's `<directory>-<node>`, oldest first."""
    dirs = [d for d in (directory, *directory.parent.glob(f"{directory.name}-*")) if d.is_dir()]
    files = [p for d in dirs for p in d.glob("postgresql-*.csv") if p.is_file() and p.stat().st_size > 0]
    return sorted(files, key=lambda p: p.stat().st_mtime)


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """A UTC moment from `30m`, `6h`, `2d` (ago) or an ISO 8601 timestamp (UTC unless it has a zone)."""
    now = now or datetime.now(UTC)
    match = _RELATIVE.match(text.strip())
    if match:
        return now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ReportError(
            f"--since: {text!r} is neither a duration such as 30m, 6h or 2d nor an ISO 8601 timestamp"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if moment > now:
        raise ReportError(f"--since: {text!r} is in the future")
    return moment.astimezone(UTC)


def output_format(out: Path) -> str:
    """pgBadger's -x value for the file name's extension; other extensions are refused."""
    fmt = FORMATS.get(out.suffix.lower())
    if fmt is None:
        raise ReportError(f"--out: {out} must end with {' or '.join(FORMATS)}")
    return fmt


def build(
    directory: Path,
    out: Path,
    since: datetime | None = None,
    progress: Callable[[str], None] = print,
) -> Path:
    """Run pgbadger over every csvlog file in `directory` into `out` (HTML or JSON by its extension).

    pgBadger's own progress bar goes to the terminal; the report appears at `out` only when
    pgbadger succeeded (it is written beside it first), so a failed run leaves no half report.
    """
    fmt = output_format(out)
    files = log_files(directory)
    if not files:
        raise ReportError(f"no PostgreSQL logs in {directory}: the stack has not logged anything yet (is it up?)")
    pgbadger = tools.binary("pgbadger")
    size = sum(p.stat().st_size for p in files)
    window = f" since {since:%Y-%m-%d %H:%M:%S} UTC" if since else ""
    progress(f"pgbadger: parsing {len(files)} log files ({size / 2**20:.1f} MiB){window} into {out}")
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial")
    cmd = [str(pgbadger), "--format", "csv", "--extension", fmt, "--outfile", str(partial)]
    if since:
        # pgBadger 12 keeps entries whose whole second is after --begin, so an entry in the very
        # second of `since` would be left out: begin one second earlier.
        begin = since.replace(microsecond=0) - timedelta(seconds=1)
        cmd += ["--begin", f"{begin:%Y-%m-%d %H:%M:%S}"]
    # The progress bar is only worth drawing where someone watches it.
    if not sys.stderr.isatty():
        cmd.append("--no-progressbar")
    try:
        # pgbadger's messages and progress bar go straight to the terminal.
        result = subprocess.run([*cmd, *map(str, files)], check=False)
        if result.returncode != 0 or not partial.is_file():
            raise ReportError(f"pgbadger failed (exit {result.returncode}); its messages are above")
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
    return out


def tail(directory: Path, lines: int) -> str:
    """The last `lines` entries of the newest csvlog file as `time severity: user@db message`."""
    files = log_files(directory)
    if not files:
        return f"(no PostgreSQL log files in {directory})"
    with files[-1].open(newline="", errors="replace") as handle:
        # A log file can be 100 MiB: keep only the last rows while reading it.
        rows = deque(csv.reader(handle), maxlen=lines)
    out = [f"==> {files[-1]} <=="]
    for row in rows:
        if len(row) <= _DETAIL:
            continue
        who = f"{row[_USER]}@{row[_DATABASE]} " if row[_USER] else ""
        detail = f" ({row[_DETAIL]})" if row[_DETAIL] else ""
        out.append(f"{row[_TIME]} {row[_SEVERITY]}: {who}{row[_MESSAGE]}{detail}")
    return "\n".join(out)
