"""The qlearning history goes down to base and back up to an identical schema, and its pg_cron jobs are
scheduled as sql/qlearning/cron.yaml says and run by hand without error."""

from __future__ import annotations

import subprocess

import psycopg
import pytest
from psycopg import sql

from infra import cron, migrations, tools
from infra.databases import DATABASES

KEY = "qlearning"
DB = DATABASES[KEY]

# The jobs: (name, schedule).
JOBS = [
    ("qlearning-cleanup-expired", "0 2 * * *"),
    ("qlearning-refresh-views", "0 * * * *"),
]


def _schema(dsn: str) -> str:
    """pg_dump --schema-only, without the per-run random \\restrict key of recent pg_dump versions."""
    out = subprocess.run(
        [str(tools.postgres_bindir() / "pg_dump"), "--schema-only", "--dbname", dsn],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return "\n".join(line for line in out.splitlines() if not line.startswith(("\\restrict", "\\unrestrict")))


def _our_objects(dsn: str) -> list[tuple[str, str]]:
    """Relations and functions in public that no extension owns (alembic's own table aside)."""
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            """
            SELECT 'relation', c.relname FROM pg_class c
            WHERE c.relnamespace = 'public'::regnamespace AND c.relname NOT LIKE 'alembic_version%'
              AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                              AND d.objid = c.oid AND d.deptype = 'e')
            UNION ALL
            SELECT 'function', p.proname FROM pg_proc p
            WHERE p.pronamespace = 'public'::regnamespace
              AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                              AND d.objid = p.oid AND d.deptype = 'e')
            """
        ).fetchall()


def test_downgrade_to_base_and_upgrade_again_gives_an_identical_schema(stack):
    dsn = stack.dsn(KEY, role="admin")
    head = migrations.heads(KEY)
    assert migrations.current(dsn, KEY) in head
    before = _schema(dsn)

    try:
        migrations.downgrade(dsn, KEY, "base")
        assert migrations.current(dsn, KEY) is None
        assert _our_objects(dsn) == []
    finally:  # the session's stack must end at head whatever happened
        migrations.upgrade(dsn, KEY)
    assert migrations.current(dsn, KEY) in head
    assert _schema(dsn) == before


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
