"""The local runner supervises our scheduler for a stack with agentdb:postgresMode external.

On the bare test server (no pg_cron) the scheduler runs every database's jobs; on the variant with
pg_cron it must find pg_cron usable and leave them to it. Either way supervisord starts it as the
service user from its rendered file and pgpass, with no secret on its command line.
"""

from __future__ import annotations

import os
import pwd
import stat
import time

import psutil
import psycopg
import pytest

from infra import cron, scheduler
from infra.runner import SERVICE_USER

# Who runs the jobs on each test server's stack: the bare server has no pg_cron, the variant a usable one.
RUNNERS = {"ext_stack": scheduler.AGENTDB, "cron_stack": scheduler.PG_CRON}


@pytest.fixture(scope="module", params=sorted(RUNNERS))
def ext(request):
    """(stack, the runner expected to run its jobs)."""
    return request.getfixturevalue(request.param), RUNNERS[request.param]


def _process(stack) -> psutil.Process:
    pid = int(stack.local._ctl("pid", "scheduler").stdout.strip())
    return psutil.Process(pid)


def test_supervisord_runs_it_as_the_service_user_without_a_secret_on_its_command_line(ext):
    stack, _ = ext
    assert stack.local.process_states()["scheduler"] == "RUNNING"
    proc = _process(stack)
    assert proc.username() == SERVICE_USER
    command = " ".join(proc.cmdline())
    assert "-m infra.scheduler --config" in command
    assert not any(password in command for password in stack.local.secrets().values())
    assert os.environ["AGENTDB_POSTGRES_ADMIN_PASSWORD"] not in command


def test_its_pgpass_is_the_service_users_alone(ext):
    stack, _ = ext
    info = os.stat(stack.local.secrets_dir / scheduler.PGPASS_FILE)
    assert stat.S_IMODE(info.st_mode) == 0o600
    assert pwd.getpwuid(info.st_uid).pw_name == SERVICE_USER


def test_it_decides_who_runs_every_databases_jobs_and_status_says_so(ext):
    stack, runner = ext
    wanted = {job.name for db in stack.settings.enabled for job in cron.jobs(db, stack.settings)}
    # The bare server's admin may not create the state table in `postgres`: the jobs run unrecorded.
    recorded = runner == scheduler.PG_CRON
    deadline = time.monotonic() + 30
    rows: dict[str, str] = {}
    while recorded and time.monotonic() < deadline:
        with psycopg.connect(stack.dsn(None)) as conn:
            rows = {r["jobname"]: r["runner"] for r in scheduler.state_rows(conn)}
        if set(rows) == wanted:
            break
        time.sleep(0.5)
    log = stack.local.log_tail("scheduler", 80)
    assert rows == (dict.fromkeys(wanted, runner) if recorded else {}), log
    for db in stack.settings.enabled:
        assert f"{db.key}: {scheduler.RUNNER_NAMES[runner]} runs its {len(cron.jobs(db, stack.settings))} jobs" in log
    assert ("job runs are not recorded" in log) is not recorded
    status = stack.cli("status", check=False).stdout.splitlines()
    for db in stack.settings.enabled:
        assert any(line.startswith(f"{db.key:<12}  {scheduler.RUNNER_NAMES[runner]}") for line in status), status
    assert any(line.startswith("scheduler ") and "RUNNING" in line for line in status)
