"""The qlearning pg_cron jobs are scheduled as sql/qlearning/cron.yaml says and run by hand without error.

The down/up round trip of every history is in test_migrations_roundtrip.py."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql

from infra import cron
from infra.databases import DATABASES

KEY = "qlearning"
DB = DATABASES[KEY]

# The jobs: (name, schedule).
JOBS = [
    ("qlearning-cleanup-expired", "0 2 * * *"),
    ("qlearning-refresh-views", "0 * * * *"),
]


@pytest.fixture(scope="module")
def jobs(stack):
    with psycopg.connect(stack.dsn(None, role="admin")) as conn:
        rows = conn.execute(
            "SELECT jobname, schedule, command, database, username, active FROM cron.job WHERE jobname LIKE %s",
            (f"{KEY}-%",),
        ).fetchall()
    return {row[0]: row[1:] for row in rows}


@pytest.mark.parametrize(("name", "schedule"), JOBS)
def test_cron_job_is_scheduled_in_qlearning_db(jobs, name, schedule):
    assert name in jobs, f"pg_cron job {name} is missing"
    got_schedule, _command, database, _username, active = jobs[name]
    assert (got_schedule, database, active) == (schedule, DB.name, True)


def test_cron_jobs_are_exactly_the_declared_ones(stack, jobs):
    declared = {job.name: job.command for job in cron.jobs(DB, stack.settings)}
    assert {name for name, _ in JOBS} == set(declared) == set(jobs)
    assert {name: row[1] for name, row in jobs.items()} == declared


@pytest.mark.parametrize(("name", "schedule"), JOBS)
def test_cron_job_command_runs_by_hand_as_its_user(stack, jobs, name, schedule):
    _schedule, command, database, username, _active = jobs[name]
    with psycopg.connect(stack.dsn(KEY, role="admin")) as conn:
        assert conn.execute("SELECT current_database()").fetchone()[0] == database
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(username)))
        conn.execute(command)
        conn.commit()
