"""Our scheduler as a real process against the test stack's PostgreSQL, with a job file of the test's own.

The session stack has pg_cron, so the process is started with --force to run the jobs itself; one
more run without it shows that it leaves them to pg_cron then. Jobs write into a scratch table of
qlearning_db: who ran them, and when each run started and ended.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
import yaml

from infra import credentials as sec
from infra import scheduler
from infra.databases import DATABASES, REPO_ROOT

DB = DATABASES["qlearning"]
TABLE = "scheduler_test_runs"
RUN_S = 9  # how long the forced process runs
JOBS = f"""
jobs:
  - name: qlearning-sched-tick
    schedule: "2 seconds"
    command: >-
      INSERT INTO {TABLE} (job, who, started_at, ended_at)
      VALUES ('tick', current_user, now(), clock_timestamp())
  # Runs 2.5 s, due every second: the runs due while one is going are skipped.
  - name: qlearning-sched-slow
    schedule: "1 seconds"
    command: >-
      INSERT INTO {TABLE} (job, who, started_at, ended_at)
      SELECT 'slow', current_user, now(), clock_timestamp() FROM pg_sleep(2.5)
  - name: qlearning-sched-fail
    schedule: "2 seconds"
    command: "SELECT 1/0"
"""


def _sql(stack, query: str, params=(), key: str | None = DB.key):
    with psycopg.connect(stack.dsn(key), autocommit=True) as conn:
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else None


def _start(stack, tmp: Path, *extra: str) -> tuple[subprocess.Popen, Path]:
    config, pgpass = scheduler.write_config(stack.dsn(None), stack.settings, {"qlearning": tmp / "cron.yaml"})
    (tmp / "scheduler.json").write_text(config)
    (tmp / "pgpass").write_text(pgpass)
    (tmp / "pgpass").chmod(0o600)
    return _launch(tmp, *extra)


def _launch(tmp: Path, *extra: str) -> tuple[subprocess.Popen, Path]:
    """The scheduler process on tmp's scheduler.json and pgpass as they are; its log is a new file of tmp."""
    log = tmp / f"scheduler{len(list(tmp.glob('scheduler*.log')))}.log"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "infra.scheduler",
            "--config",
            str(tmp / "scheduler.json"),
            "--pgpassfile",
            str(tmp / "pgpass"),
            *extra,
        ],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    return proc, log


def _stop(proc: subprocess.Popen) -> tuple[int, float]:
    start = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=30)
    return code, time.monotonic() - start


@pytest.fixture(scope="module")
def forced(stack, tmp_path_factory):
    """Run the scheduler with the test's jobs for RUN_S seconds, then SIGTERM; what it left behind."""
    tmp = tmp_path_factory.mktemp("scheduler")
    (tmp / "cron.yaml").write_text(JOBS)
    _sql(stack, f"CREATE TABLE {TABLE} (job text, who text, started_at timestamptz, ended_at timestamptz)")
    _sql(stack, f"ALTER TABLE {TABLE} OWNER TO {DB.owner}")
    proc, log = _start(stack, tmp, "--force")
    started = time.monotonic()
    try:
        time.sleep(RUN_S)
        status = stack.cli("status", check=False).stdout
        elapsed = time.monotonic() - started
        code, took = _stop(proc)
        rows_at_stop = _sql(stack, f"SELECT count(*) FROM {TABLE}")[0][0]
        time.sleep(3)
        yield {
            "tmp": tmp,
            "code": code,
            "took": took,
            "elapsed": elapsed,
            "log": log.read_text(),
            "status": status,
            "rows_at_stop": rows_at_stop,
            "rows_later": _sql(stack, f"SELECT count(*) FROM {TABLE}")[0][0],
            "runs": _sql(stack, f"SELECT job, who, started_at, ended_at FROM {TABLE} ORDER BY started_at"),
            "state": {r["jobname"]: r for r in _state(stack)},
        }
    finally:
        if proc.poll() is None:
            proc.kill()
        _sql(stack, f"DROP TABLE IF EXISTS {TABLE}")
        _sql(
            stack,
            f"DELETE FROM {scheduler.STATE_SCHEMA}.{scheduler.STATE_TABLE} WHERE jobname LIKE 'qlearning-sched-%%'",
            key=None,
        )


def _state(stack):
    with psycopg.connect(stack.dsn(None), autocommit=True) as conn:
        return scheduler.state_rows(conn)


def test_jobs_run_on_their_seconds_schedule_as_the_owner(forced):
    ticks = [r for r in forced["runs"] if r[0] == "tick"]
    # Every 2 s while it ran, give or take one at either end.
    assert forced["elapsed"] // 2 - 1 <= len(ticks) <= forced["elapsed"] // 2 + 1, forced["log"]
    assert {r[1] for r in forced["runs"]} == {DB.owner}
    gaps = [(b[2] - a[2]).total_seconds() for a, b in zip(ticks, ticks[1:], strict=False)]
    assert all(1.5 <= gap <= 2.5 for gap in gaps), gaps


def test_a_run_still_going_is_not_overlapped_but_skipped_and_logged(forced):
    slow = [r for r in forced["runs"] if r[0] == "slow"]
    assert len(slow) >= 2, forced["log"]
    for earlier, later in zip(slow, slow[1:], strict=False):
        assert later[2] >= earlier[3], f"run started at {later[2]} before the previous ended at {earlier[3]}"
    assert "job qlearning-sched-slow skipped: its previous run is still going" in forced["log"]
    assert forced["state"]["qlearning-sched-slow"]["skipped"] >= 2


def test_a_failing_job_is_logged_with_its_error_and_runs_again(forced):
    failures = [line for line in forced["log"].splitlines() if "job qlearning-sched-fail failed" in line]
    assert len(failures) >= 3, forced["log"]
    assert all(line.endswith("division by zero") for line in failures)
    state = forced["state"]["qlearning-sched-fail"]
    assert (state["last_status"], state["last_message"]) == ("failed", "division by zero")
    assert state["failures"] == state["runs"] >= 3
    # The failures did not stop the other jobs.
    assert forced["state"]["qlearning-sched-tick"]["last_status"] == "succeeded"


def test_sigterm_stops_it_cleanly_and_nothing_runs_after(forced):
    assert forced["code"] == 0, forced["log"]
    assert forced["took"] < scheduler.GRACE_S + 3
    assert forced["log"].rstrip().endswith("stopped")
    assert forced["rows_later"] == forced["rows_at_stop"]


def test_status_says_the_agentdb_scheduler_runs_them_with_each_last_run(forced):
    lines = forced["status"].splitlines()
    assert f"{'qlearning':<12}  the agentdb scheduler" in lines, forced["status"]
    fail = next(line for line in lines if "qlearning-sched-fail" in line)
    assert "failed: division by zero" in fail and "last run" in fail
    # The other databases' jobs stay with pg_cron, which the test stack has.
    for key in ("orchestrator", "afs", "agentic"):
        assert f"{key:<12}  pg_cron" in lines


def _as_monitor(stack) -> psycopg.Connection:
    s = stack.settings
    password = stack.local.secrets()[sec.MONITOR_ROLE]
    url = f"postgresql://{sec.MONITOR_ROLE}@{s.bind_address}:{s.postgres_port}/postgres"
    return psycopg.connect(url, password=password, autocommit=True)


def test_the_monitoring_role_reads_the_runs_but_not_the_messages(stack, forced):
    with _as_monitor(stack) as conn:
        table = f"{scheduler.STATE_SCHEMA}.{scheduler.STATE_TABLE}"
        conn.execute(f"SELECT jobname, runner, last_status, runs, failures, skipped FROM {table}").fetchall()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(f"SELECT last_message FROM {table}")


def test_the_exporters_cron_job_query_reports_its_jobs_as_pg_crons(stack, forced):
    # The query postgres_exporter runs as the monitoring role: the CronJobFailed and staleness rules read it.
    queries = yaml.safe_load((REPO_ROOT / "config" / "postgres_exporter_queries.yaml").read_text())
    with _as_monitor(stack) as conn:
        rows = {r[0]: r[1:] for r in conn.execute(queries["agentdb_cron_job"]["query"]).fetchall()}
    tick, fail = rows["qlearning-sched-tick"], rows["qlearning-sched-fail"]
    assert (tick[0], fail[0]) == (DB.name, DB.name)
    assert (tick[2], fail[2]) == (0, 1)  # last_run_failed
    # Never succeeded: its age counts from its first run, which came before the tick's last success.
    assert 0 <= tick[1] < fail[1] < 60


def test_without_force_it_leaves_the_jobs_to_a_usable_pg_cron(stack, forced):
    before = _sql(stack, f"SELECT count(*) FROM {TABLE}")[0][0]
    proc, log = _start(stack, forced["tmp"])
    time.sleep(4)
    code, _ = _stop(proc)
    text = log.read_text()
    assert code == 0, text
    assert "qlearning: pg_cron runs its 3 jobs (pg_cron is usable)" in text
    assert "starting" not in text
    assert _sql(stack, f"SELECT count(*) FROM {TABLE}")[0][0] == before
    assert {r["runner"] for r in _state(stack) if r["jobname"].startswith("qlearning-sched-")} == {"pg_cron"}


def test_where_pg_cron_is_not_installed_it_runs_the_jobs_itself(stack, forced):
    # Seen from qlearning_db the server has no pg_cron (it lives in `postgres`): the admin's database
    # of an external server without it. The scheduler then keeps its table there too.
    tmp = forced["tmp"]
    assert _sql(stack, "SELECT to_regnamespace(%s)", (scheduler.STATE_SCHEMA,))[0][0] is None
    before = _sql(stack, f"SELECT count(*) FROM {TABLE} WHERE job = 'tick'")[0][0]
    config = json.loads((tmp / "scheduler.json").read_text())
    (tmp / "scheduler.json").write_text(json.dumps({**config, "admin_database": DB.name}))
    proc, log = _launch(tmp)
    try:
        time.sleep(5)
        code, _ = _stop(proc)
        text = log.read_text()
        assert code == 0, text
        assert "qlearning: the agentdb scheduler runs its 3 jobs (the pg_cron extension is not installed" in text
        assert _sql(stack, f"SELECT count(*) FROM {TABLE} WHERE job = 'tick'")[0][0] >= before + 1
    finally:
        if proc.poll() is None:
            proc.kill()
        _sql(stack, f"DROP SCHEMA IF EXISTS {scheduler.STATE_SCHEMA} CASCADE")
