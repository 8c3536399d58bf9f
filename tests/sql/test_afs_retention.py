"""The afs pg_cron jobs keep fresh rows and remove old ones, driven by back-dated timestamps.

Each job runs exactly the command that sql/afs/cron.yaml renders from settings, as the owner (the
role pg_cron runs it as).
"""

from __future__ import annotations

import psycopg
import pytest

from infra.cron import jobs
from infra.databases import DATABASES

KEY = "afs"
DB = DATABASES[KEY]
MARK = "afs-retention-test"


def run_job(stack, name: str) -> None:
    command = {job.name: job.command for job in jobs(DB, stack.settings)}[name]
    with psycopg.connect(stack.dsn(KEY), autocommit=True) as conn:
        conn.execute(f'SET ROLE "{DB.owner}"')
        conn.execute(command)


# query_logs ages in days, relative to the retention period R: (case, age, kept)
LOG_AGES = [
    ("just now", lambda r: 0, True),
    ("a day inside", lambda r: r - 1, True),
    ("a day past", lambda r: r + 1, False),
    ("long past", lambda r: 3 * r, False),
]


@pytest.fixture(scope="module")
def purged(stack):
    """Which of the back-dated query_logs rows survive the weekly purge job."""
    days = stack.settings.afs_query_log_retention_days
    with psycopg.connect(stack.dsn(KEY), autocommit=True) as conn:
        conn.execute("DELETE FROM query_logs WHERE model_name = %s", (MARK,))
        for case, age, _ in LOG_AGES:
            conn.execute(
                "INSERT INTO query_logs (query_text, executed_at, model_name)"
                " VALUES (%s, now() - make_interval(days => %s), %s)",
                (case, age(days), MARK),
            )
        run_job(stack, "afs-purge-query-logs")
        left = {row[0] for row in conn.execute("SELECT query_text FROM query_logs WHERE model_name = %s", (MARK,))}
        conn.execute("DELETE FROM query_logs WHERE model_name = %s", (MARK,))
    return left


@pytest.mark.parametrize(("case", "kept"), [(c, k) for c, _, k in LOG_AGES], ids=[c for c, _, _ in LOG_AGES])
def test_query_log_purge(purged, case, kept):
    assert (case in purged) is kept


# Executions with forks, ages in hours relative to the threshold H:
# (case, status, fork age from its fork_id timestamp (None: a non-standard id), started hours ago, cleared)
FORKS = [
    ("finished, fork past threshold", "completed", lambda h: h + 1, lambda h: h + 2, True),
    ("failed, fork past threshold", "failed", lambda h: 2 * h, lambda h: 2 * h, True),
    ("finished, fork inside threshold", "completed", lambda h: h - 1, lambda h: h + 5, False),
    ("still running, old fork", "running", lambda h: 3 * h, lambda h: 3 * h, False),
    ("finished, custom fork id, old start", "completed", None, lambda h: h + 1, True),
    ("finished, custom fork id, recent start", "completed", None, lambda h: h - 1, False),
]


@pytest.fixture(scope="module")
def cleared(stack):
    """Per case: (fork_id after the daily job, the log row for it or None)."""
    hours = stack.settings.afs_fork_cleanup_hours
    out = {}
    with psycopg.connect(stack.dsn(KEY), autocommit=True) as conn:
        task_id = conn.execute(
            "INSERT INTO tasks (type, target_query, description)"
            " VALUES ('query_optimization', 'SELECT 1', %s) RETURNING id",
            (MARK,),
        ).fetchone()[0]
        now = conn.execute("SELECT extract(epoch FROM now())::bigint").fetchone()[0]
        rows = {}
        for case, status, fork_age, started_age, _ in FORKS:
            if fork_age is None:
                fork_id = f"custom-fork-{len(rows)}"
            else:
                fork_id = f"afs-fork-gemini-2.5-pro-task{task_id}-{now - fork_age(hours) * 3600}"
            rows[case] = conn.execute(
                "INSERT INTO agent_executions (task_id, agent_type, fork_id, status, started_at)"
                " VALUES (%s, 'gemini-2.5-pro', %s, %s, now() - make_interval(hours => %s)) RETURNING id",
                (task_id, fork_id, status, started_age(hours)),
            ).fetchone()[0]
        run_job(stack, "afs-clear-stale-forks")
        for case, execution_id in rows.items():
            fork_id = conn.execute("SELECT fork_id FROM agent_executions WHERE id = %s", (execution_id,)).fetchone()[0]
            log = conn.execute(
                "SELECT fork_id, execution_status, task_id FROM fork_cleanup_logs WHERE agent_execution_id = %s",
                (execution_id,),
            ).fetchall()
            out[case] = (fork_id, log)
        conn.execute("DELETE FROM tasks WHERE id = %s", (task_id,))
    return out


@pytest.mark.parametrize(
    ("case", "status", "is_cleared"), [(c, s, k) for c, s, _, _, k in FORKS], ids=[c for c, *_ in FORKS]
)
def test_stale_fork_cleanup(cleared, case, status, is_cleared):
    fork_id, log = cleared[case]
    if is_cleared:
        assert fork_id is None
        assert len(log) == 1 and log[0][1] == status
        assert log[0][0].startswith(("afs-fork-", "custom-fork-"))  # the log keeps what was cleared
    else:
        assert fork_id is not None
        assert log == []


def test_the_cleanup_log_outlives_the_task(stack, cleared):
    with psycopg.connect(stack.dsn(KEY)) as conn:
        logged = conn.execute(
            "SELECT count(*) FROM fork_cleanup_logs l WHERE NOT EXISTS"
            " (SELECT 1 FROM agent_executions e WHERE e.id = l.agent_execution_id)"
        ).fetchone()[0]
    assert logged >= sum(1 for *_, k in FORKS if k)


@pytest.mark.parametrize("call", ["purge_query_logs(0)", "clear_stale_forks(0)", "purge_query_logs(NULL)"])
def test_job_functions_refuse_a_nonsense_threshold(stack, call):
    with (
        psycopg.connect(stack.dsn(KEY), autocommit=True) as conn,
        pytest.raises(psycopg.errors.InvalidParameterValue, match="must be at least 1"),
    ):
        conn.execute(f"SELECT {call}")
