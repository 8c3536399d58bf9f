"""On the bare server (no pg_cron), our scheduler itself runs a declared job, as the database's owner."""

from __future__ import annotations

import time

import psycopg

from tests.integration.test_scheduler import DB, _start, _stop

TABLE = "external_scheduler_runs"
JOBS = f"""
jobs:
  - name: qlearning-external-tick
    schedule: "1 seconds"
    command: "INSERT INTO {TABLE} (who) VALUES (current_user)"
"""


def _sql(stack, query: str):
    with psycopg.connect(stack.dsn(DB.key), autocommit=True) as conn:
        conn.execute(f"SET ROLE {DB.owner}")
        cur = conn.execute(query)
        return cur.fetchall() if cur.description else None


def test_the_scheduler_runs_a_job_on_a_server_without_pg_cron(ext_stack, tmp_path):
    _sql(ext_stack, f"CREATE TABLE IF NOT EXISTS {TABLE} (who text, at timestamptz DEFAULT now())")
    try:
        (tmp_path / "cron.yaml").write_text(JOBS)
        proc, log = _start(ext_stack, tmp_path)  # no --force: pg_cron is not there to leave the job to
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and len(_sql(ext_stack, f"SELECT who FROM {TABLE}")) < 2:
                time.sleep(0.5)
        finally:
            code, _ = _stop(proc)
        rows = _sql(ext_stack, f"SELECT who FROM {TABLE}")
        assert len(rows) >= 2, log.read_text()
        assert {who for (who,) in rows} == {DB.owner}
        assert "qlearning: the agentdb scheduler runs its 1 jobs" in log.read_text()
        assert code == 0
    finally:
        _sql(ext_stack, f"DROP TABLE IF EXISTS {TABLE}")
