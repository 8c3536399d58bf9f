"""`agentdb report`: PostgreSQL's CSV logs become a pgBadger report that shows a slow statement and a lock wait."""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from infra import report
from tests.conftest import agentdb, write_stack_file

DB = "qlearning"


def _slow_statement(stack, marker: str) -> None:
    """A statement twice as slow as the stack's logging threshold, by the app role through PgBouncer."""
    seconds = 2 * stack.settings.log_slow_statement_ms / 1000
    with psycopg.connect(stack.dsn(DB, "app", "pgbouncer"), autocommit=True) as conn:
        conn.execute(f"SELECT pg_sleep({seconds}) /* {marker} */")


def _lock_wait(stack, marker: str) -> None:
    """A transaction holds an advisory lock three times the logging threshold while another waits for it."""
    key = uuid.uuid4().int % 2**31
    hold = 3 * stack.settings.log_lock_wait_ms / 1000
    with (
        psycopg.connect(stack.dsn(DB, "app", "pgbouncer")) as holder,
        psycopg.connect(stack.dsn(DB, "app", "pgbouncer")) as waiter,
    ):
        holder.execute("SELECT pg_advisory_xact_lock(%s)", (key,))
        waiting = threading.Thread(target=waiter.execute, args=(f"SELECT pg_advisory_xact_lock({key}) /* {marker} */",))
        waiting.start()
        time.sleep(hold)
        holder.commit()
        waiting.join(timeout=30)
        waiter.commit()
    assert not waiting.is_alive()


def _wait_logged(stack, *markers: str) -> None:
    """Wait until the logging collector has written every marker: it writes a moment after the client has its answer."""
    directory = Path(stack.local.layout.postgres_logs)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        text = "".join(p.read_text(errors="replace") for p in report.log_files(directory))
        if all(marker in text for marker in markers):
            return
        time.sleep(0.1)
    raise AssertionError(f"{markers} not in the logs of {directory} after 30 s")


@pytest.fixture(scope="module")
def reported(stack, tmp_path_factory):
    """A slow statement, a lock wait, then the report in JSON and in HTML."""
    slow, locked = f"slow_{uuid.uuid4().hex}", f"locked_{uuid.uuid4().hex}"
    _slow_statement(stack, slow)
    _lock_wait(stack, locked)
    _wait_logged(stack, slow, locked)
    out = tmp_path_factory.mktemp("report")
    runs = {fmt: stack.cli("report", "--out", str(out / f"report.{fmt}")) for fmt in ("json", "html")}
    return slow, locked, json.loads((out / "report.json").read_text()), (out / "report.html").read_text(), runs


def test_slow_statement_is_in_the_slowest_queries(stack, reported):
    slow, _, report, _, _ = reported
    durations = [float(entry[0]) for rows in report["top_slowest"].values() for entry in rows if slow in entry[2]]
    assert durations, [entry[2][:80] for rows in report["top_slowest"].values() for entry in rows]
    assert durations[0] >= 2 * stack.settings.log_slow_statement_ms


def test_lock_wait_is_in_the_most_locked_queries(stack, reported):
    _, locked, report, _, _ = reported
    waits = [float(entry[0]) for rows in report["top_locked_info"].values() for entry in rows if locked in entry[2]]
    assert waits, report["top_locked_info"]
    assert waits[0] >= stack.settings.log_lock_wait_ms


def test_html_report_shows_both(reported):
    slow, locked, _, html, _ = reported
    assert slow in html and locked in html


def test_report_says_what_it_parses(reported):
    *_, runs = reported
    for fmt, run in runs.items():
        assert "pgbadger: parsing" in run.stdout and "MiB" in run.stdout, run.stdout
        assert "report written to" in run.stdout and f"report.{fmt}" in run.stdout, run.stdout


def test_since_leaves_out_what_came_before(stack, tmp_path):
    before, after = f"before_{uuid.uuid4().hex}", f"after_{uuid.uuid4().hex}"
    _slow_statement(stack, before)
    # The next whole second, and the later statement after it: pgBadger's --begin has whole seconds.
    since = (datetime.now(UTC) + timedelta(seconds=1)).replace(microsecond=0)
    time.sleep((since - datetime.now(UTC)).total_seconds() + 0.1)
    _slow_statement(stack, after)
    _wait_logged(stack, before, after)
    stack.cli("report", "--since", since.isoformat(), "--out", str(tmp_path / "r.json"))
    text = (tmp_path / "r.json").read_text()
    assert after in text and before not in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "no PostgreSQL logs in"),
        (("--since", "yesterday"), "--since: 'yesterday' is neither a duration"),
        (("--since", "2999-01-01T00:00:00"), "is in the future"),
        (("--out", "report.pdf"), "--out: report.pdf must end with .html or .json"),
    ],
)
def test_bad_report_requests_are_refused(tmp_path, args, message):
    """No stack runs here: the refusals need none, and nothing is written."""
    stack_file = write_stack_file(tmp_path, "nologs")
    out = () if "--out" in args else ("--out", str(tmp_path / "r.html"))
    state = tmp_path / "state"
    result = agentdb(
        "report",
        "--stack",
        "nologs",
        "--stack-file",
        str(stack_file),
        "--state-dir",
        str(state),
        *args,
        *out,
        check=False,
    )
    assert result.returncode == 2, result
    assert message in result.stderr, result.stderr
    assert not (tmp_path / "r.html").exists() and not state.exists()


@pytest.mark.parametrize(
    ("parameter", "expected"),
    [
        ("logging_collector", "on"),
        ("log_destination", "csvlog"),
        ("log_truncate_on_rotation", "on"),
        ("log_rotation_age", "1h"),
        ("log_rotation_size", "100MB"),
        ("log_min_duration_statement", "100ms"),
        ("deadlock_timeout", "200ms"),
        ("log_lock_waits", "on"),
        ("log_checkpoints", "on"),
        ("log_timezone", "UTC"),
    ],
)
def test_running_server_logs_as_rendered(stack, parameter, expected):
    assert stack.psql(None, f"SHOW {parameter}").strip() == expected


def test_server_writes_its_csv_log_under_the_state_directory(stack):
    current = Path(stack.psql(None, "SELECT pg_current_logfile('csvlog')").strip())
    assert current.parent == stack.state_dir / "logs" / "postgresql"
    assert current.name.startswith("postgresql-") and current.suffix == ".csv"
    assert oct(current.stat().st_mode & 0o777) == oct(0o600)
