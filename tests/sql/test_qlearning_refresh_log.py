"""refresh_materialized_views() records each view's refresh; monitoring reads its age, nobody else writes it."""

from __future__ import annotations

import time
import urllib.request

import psycopg
import pytest

from infra import credentials

KEY = "qlearning"
VIEWS = ["agent_performance_summary", "pattern_effectiveness"]


def test_a_refresh_records_each_view(stack):
    with psycopg.connect(stack.dsn(KEY, "app", "pgbouncer")) as conn:
        conn.execute("SELECT refresh_materialized_views()")
        conn.commit()
        rows = conn.execute(
            "SELECT matview, now() - refreshed_at < interval '1 minute', duration_ms >= 0 FROM agentdb_mv_refresh"
        ).fetchall()
    assert sorted(rows) == [(view, True, True) for view in VIEWS]


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO agentdb_mv_refresh VALUES ('x', now(), 0)",
        "UPDATE agentdb_mv_refresh SET refreshed_at = now()",
        "DELETE FROM agentdb_mv_refresh",
        "TRUNCATE agentdb_mv_refresh",
    ],
)
def test_the_app_cannot_forge_a_refresh(stack, statement):
    with psycopg.connect(stack.dsn(KEY, "app")) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(statement)


def test_the_monitoring_role_reads_the_log(stack):
    secret = stack.local.secrets()[credentials.MONITOR_ROLE]
    s = stack.settings
    url = f"postgresql://{credentials.MONITOR_ROLE}:{secret}@{s.bind_address}:{s.postgres_port}/qlearning_db"
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM agentdb_mv_refresh").fetchone()[0] >= 0
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT q_value FROM q_values LIMIT 1")


def test_the_exporter_reports_each_views_refresh_age(stack):
    with psycopg.connect(stack.dsn(KEY, "app", "pgbouncer")) as conn:
        conn.execute("SELECT refresh_materialized_views()")
        conn.commit()
    url = f"http://{stack.settings.bind_address}:{stack.settings.postgres_exporter_port}/metrics"
    deadline = time.monotonic() + 30
    while True:
        with urllib.request.urlopen(url, timeout=10) as resp:
            lines = [
                line
                for line in resp.read().decode().splitlines()
                if line.startswith("agentdb_matview_refresh_age_seconds{") and 'datname="qlearning_db"' in line
            ]
        if len(lines) == len(VIEWS) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert sorted(view for view in VIEWS if any(f'matview="{view}"' in line for line in lines)) == VIEWS
    for line in lines:
        assert float(line.rsplit(" ", 1)[1]) < 600, line
