"""The second variant: pg_cron on the external server, so the jobs are scheduled in it (issue 16)."""

from __future__ import annotations

import time

import psycopg
import pytest

from infra import credentials, cron, external
from infra.databases import DATABASES
from tests.external.conftest import ADMIN, BARE_DATABASES, BARE_DOWNGRADES


def test_up_does_not_report_pg_cron_missing(cron_stack):
    assert external.DOWNGRADES["pg_cron"] not in cron_stack.up_output
    for name in set(BARE_DOWNGRADES) - {"pg_cron"}:
        assert cron_stack.up_output.count(external.DOWNGRADES[name]) == 1


@pytest.mark.parametrize("key", BARE_DATABASES)
def test_every_declared_job_is_scheduled_in_its_database(cron_stack, cron_server, key):
    db = DATABASES[key]
    declared = {(j.name, j.schedule, j.command) for j in cron.jobs(db, cron_stack.settings)}
    rows = cron_server.execute(
        f"SELECT jobname, schedule, command, database, username, active FROM cron.job WHERE jobname LIKE '{key}-%'"
    )
    assert {row[:3] for row in rows} == declared
    # The admin schedules as itself: pg_cron keeps other roles' jobs to superusers.
    assert {row[3:] for row in rows} == {(db.name, ADMIN, True)}


def test_a_scheduled_job_runs_in_the_application_database(cron_stack, cron_server, tmp_path):
    db = DATABASES["qlearning"]
    probe = tmp_path / "cron.yaml"
    probe.write_text(
        # Every minute: pg_cron 1.4 (Debian 12's) has no schedules in seconds.
        'jobs:\n  - name: qlearning-probe\n    schedule: "* * * * *"\n    command: "SELECT count(*) FROM q_values"\n'
    )
    admin = cron_stack.dsn(None)
    assert cron.sync(admin, db, cron_stack.settings, probe)[0] == "+qlearning-probe"
    try:
        deadline, runs = time.monotonic() + 75, []
        while not runs and time.monotonic() < deadline:
            time.sleep(1)
            runs = cron_server.execute(
                "SELECT d.status, d.database, d.username FROM cron.job_run_details d JOIN cron.job j USING (jobid)"
                " WHERE j.jobname = 'qlearning-probe' AND d.status IN ('succeeded', 'failed')"
            )
        assert runs and runs[0] == ("succeeded", db.name, ADMIN), runs
    finally:
        cron.sync(admin, db, cron_stack.settings)
    names = {row[0] for row in cron_server.execute("SELECT jobname FROM cron.job")}
    assert "qlearning-probe" not in names
    assert {job.name for job in cron.jobs(db, cron_stack.settings)} <= names


def test_the_monitoring_role_sees_the_jobs_through_the_monitor_views(cron_stack):
    settings = cron_stack.settings
    password = cron_stack.local.secrets()[credentials.MONITOR_ROLE]
    with psycopg.connect(external.dsn(settings, credentials.MONITOR_ROLE, password, "postgres")) as conn:
        names = {row[0] for row in conn.execute("SELECT jobname FROM agentdb_monitor.cron_job")}
    declared = {job.name for key in BARE_DATABASES for job in cron.jobs(DATABASES[key], settings)}
    assert declared <= names


@pytest.mark.parametrize("function", ["cron_job_rows", "cron_job_run_rows"])
def test_the_definer_readers_are_the_monitoring_roles_alone(cron_server, function, cron_stack):
    # SECURITY DEFINER, run as the admin: no readonly or application role (nor PUBLIC) may call them.
    signature = f"agentdb_monitor.{function}()"
    roles = [credentials.MONITOR_ROLE, *(r for key in BARE_DATABASES for r in (DATABASES[key].readonly_role,
             DATABASES[key].app_role))]  # fmt: skip
    granted = {
        role: cron_server.execute(f"SELECT has_function_privilege('{role}', '{signature}', 'EXECUTE')")[0][0]
        for role in roles
    }
    assert granted == {role: role == credentials.MONITOR_ROLE for role in roles}
