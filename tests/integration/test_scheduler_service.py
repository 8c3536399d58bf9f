"""The local runner supervises our scheduler for a stack with agentdb:postgresMode external.

The stack's PostgreSQL has pg_cron, so the scheduler, started by supervisord as the service user from
its rendered file and pgpass, must find pg_cron usable and leave every database's jobs to it.
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
from tests.conftest import dedicated_stack


@pytest.fixture(scope="module")
def ext():
    with dedicated_stack("agentdb-sched-", {"agentdb:postgresMode": "external"}) as ts:
        yield ts


def _process(ext) -> psutil.Process:
    pid = int(ext.local._ctl("pid", "scheduler").stdout.strip())
    return psutil.Process(pid)


def test_supervisord_runs_it_as_the_service_user_without_a_secret_on_its_command_line(ext):
    assert ext.local.process_states()["scheduler"] == "RUNNING"
    proc = _process(ext)
    assert proc.username() == SERVICE_USER
    command = " ".join(proc.cmdline())
    assert "-m infra.scheduler --config" in command
    assert not any(password in command for password in ext.local.secrets().values())


def test_its_pgpass_is_the_service_users_alone(ext):
    info = os.stat(ext.local.secrets_dir / scheduler.PGPASS_FILE)
    assert stat.S_IMODE(info.st_mode) == 0o600
    assert pwd.getpwuid(info.st_uid).pw_name == SERVICE_USER


def test_it_leaves_every_databases_jobs_to_a_usable_pg_cron_and_status_says_so(ext):
    wanted = {job.name for db in ext.settings.enabled for job in cron.jobs(db, ext.settings)}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with psycopg.connect(ext.dsn(None)) as conn:
            rows = {r["jobname"]: r["runner"] for r in scheduler.state_rows(conn)}
        if set(rows) == wanted:
            break
        time.sleep(0.5)
    assert rows == dict.fromkeys(wanted, scheduler.PG_CRON)
    log = ext.local.log_tail("scheduler", 50)
    for db in ext.settings.enabled:
        assert f"{db.key}: pg_cron runs its {len(cron.jobs(db, ext.settings))} jobs (pg_cron is usable)" in log
    status = ext.cli("status", check=False).stdout.splitlines()
    for db in ext.settings.enabled:
        assert f"{db.key:<12}  pg_cron" in status
    assert any(line.startswith("scheduler ") and "RUNNING" in line for line in status)
