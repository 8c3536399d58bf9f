"""Every agentic retention job keeps fresh rows and archives or removes old ones (back-dated rows).

Each test calls the function its pg_cron job runs (sql/agentic/cron.yaml), with the numbers from
settings, as the owner the job runs as.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from .test_agentic_support import add_decision, add_message, connect, count, make_tenant


def days(n: float) -> timedelta:
    return timedelta(days=n)


@pytest.fixture
def owner(stack):
    """The superuser connection acting as agentic_owner, the role pg_cron runs the jobs as."""
    with connect(stack) as conn:
        tenant = make_tenant(conn)
        conn.execute("SET ROLE agentic_owner")
        yield conn, tenant


def test_jobs_call_these_functions_with_the_settings_numbers(stack):
    s = stack.settings
    expected = {
        "agentic-archive-conversation-history": "SELECT * FROM agentic_archive_conversation_history("
        f"{s.agentic_conversation_active_days}, {s.agentic_conversation_archive_days})",
        "agentic-archive-decisions": "SELECT * FROM agentic_archive_decisions("
        f"{s.agentic_decision_active_days}, {s.agentic_decision_archive_days})",
        "agentic-purge-audit-log": f"SELECT agentic_purge_audit_log({s.agentic_audit_retention_days})",
        "agentic-rollup-trust-metrics": "SELECT * FROM agentic_rollup_trust_metrics("
        f"{s.agentic_trust_rollup_after_days})",
    }
    for name, command in expected.items():
        assert stack.psql(None, f"SELECT command FROM cron.job WHERE jobname = '{name}'").strip() == command


def test_conversation_history_moves_to_the_archive_then_is_deleted(stack, owner):
    conn, t = owner
    s = stack.settings
    active, archive = s.agentic_conversation_active_days, s.agentic_conversation_archive_days
    fresh = add_message(conn, t.session_id, age=days(active - 1))
    old = add_message(conn, t.session_id, age=days(active + 1))
    ancient = add_message(conn, t.session_id, age=days(archive + 1))
    conn.execute("SELECT * FROM agentic_archive_conversation_history(%s, %s)", (active, archive))
    live = {
        r[0] for r in conn.execute("SELECT message_id FROM conversation_history WHERE session_id = %s", (t.session_id,))
    }
    archived = {
        r[0]
        for r in conn.execute(
            "SELECT message_id FROM conversation_history_archive WHERE session_id = %s", (t.session_id,)
        )
    }
    assert live == {fresh}
    assert archived == {old}
    assert ancient not in live | archived


def test_decisions_move_to_the_archive_then_are_deleted(stack, owner):
    conn, t = owner
    s = stack.settings
    active, archive = s.agentic_decision_active_days, s.agentic_decision_archive_days
    fresh = add_decision(conn, t.session_id, age=days(active - 1))
    old = add_decision(conn, t.session_id, age=days(active + 1))
    ancient = add_decision(conn, t.session_id, age=days(archive + 1))
    conn.execute("SELECT * FROM agentic_archive_decisions(%s, %s)", (active, archive))
    live = {
        r[0] for r in conn.execute("SELECT decision_id FROM agent_decisions WHERE session_id = %s", (t.session_id,))
    }
    archived = {
        r[0]
        for r in conn.execute("SELECT decision_id FROM agent_decisions_archive WHERE session_id = %s", (t.session_id,))
    }
    assert live == {fresh}
    assert archived == {old}
    assert ancient not in live | archived


def test_audit_log_is_kept_for_the_retention_period_then_purged(stack, owner):
    conn, t = owner
    keep = stack.settings.agentic_audit_retention_days
    for age, action in ((keep - 1, "keep"), (keep + 1, "purge")):
        conn.execute(
            "INSERT INTO agent_audit_log (agent_id, session_id, user_id, action_type, action_details,"
            ' "timestamp")'
            " VALUES (%s, %s, %s, %s, '{}', now() - %s)",
            (t.agent_id, t.session_id, t.user_id, f"retention-{action}", days(age)),
        )
    deleted = conn.execute("SELECT agentic_purge_audit_log(%s)", (keep,)).fetchone()[0]
    assert deleted >= 1
    actions = [
        r[0]
        for r in conn.execute(
            "SELECT action_type FROM agent_audit_log WHERE session_id = %s AND action_type LIKE 'retention-%%'",
            (t.session_id,),
        )
    ]
    assert actions == ["retention-keep"]
    # The purge's permission does not outlive its call.
    assert conn.execute("SELECT current_setting('agentic.audit_purge_before', true)").fetchone()[0] in (
        "",
        None,
    )


def test_trust_metrics_roll_up_into_daily_rows(stack, owner):
    conn, t = owner
    after = stack.settings.agentic_trust_rollup_after_days
    day = conn.execute("SELECT ((now() - %s) AT TIME ZONE 'UTC')::date", (days(after + 5),)).fetchone()[0]
    for value in (60, 80, 100):
        conn.execute(
            "INSERT INTO trust_metrics (session_id, metric_type, metric_value, recorded_at)"
            " VALUES (%s, 'accuracy', %s, (%s::date + time '12:00') AT TIME ZONE 'UTC')",
            (t.session_id, value, day),
        )
    conn.execute(
        "INSERT INTO trust_metrics (session_id, metric_type, metric_value, recorded_at)"
        " VALUES (%s, 'accuracy', 90, now() - %s)",
        (t.session_id, days(after - 1)),
    )
    rolled, daily = conn.execute("SELECT * FROM agentic_rollup_trust_metrics(%s)", (after,)).fetchone()
    assert rolled >= 3 and daily >= 1
    assert count(conn, "SELECT count(*) FROM trust_metrics WHERE session_id = %s", (t.session_id,)) == 1
    row = conn.execute(
        "SELECT metric_date, sample_count, min_value, max_value, avg_value FROM trust_metrics_daily"
        " WHERE session_id = %s AND metric_type = 'accuracy'",
        (t.session_id,),
    ).fetchone()
    assert row == (day, 3, 60, 100, 80)
    # A second run with more old rows for the same day merges into the same daily row.
    conn.execute(
        "INSERT INTO trust_metrics (session_id, metric_type, metric_value, recorded_at)"
        " VALUES (%s, 'accuracy', 40, (%s::date + time '13:00') AT TIME ZONE 'UTC')",
        (t.session_id, day),
    )
    conn.execute("SELECT * FROM agentic_rollup_trust_metrics(%s)", (after,))
    row = conn.execute(
        "SELECT sample_count, min_value, max_value, avg_value FROM trust_metrics_daily"
        " WHERE session_id = %s AND metric_type = 'accuracy'",
        (t.session_id,),
    ).fetchone()
    assert row == (4, 40, 100, 70)


@pytest.mark.parametrize(
    ("call", "names"),
    [
        ("SELECT * FROM agentic_archive_conversation_history(0, 365)", "p_active_days"),
        ("SELECT * FROM agentic_archive_conversation_history(90, 30)", "p_archive_days"),
        ("SELECT * FROM agentic_archive_decisions(NULL, 730)", "p_active_days"),
        ("SELECT agentic_purge_audit_log(0)", "p_retention_days"),
        ("SELECT * FROM agentic_rollup_trust_metrics(-1)", "p_after_days"),
    ],
)
def test_retention_functions_reject_bad_numbers(owner, call, names):
    import psycopg

    conn, _ = owner
    with pytest.raises(psycopg.Error) as info:
        conn.execute(call)
    assert info.value.sqlstate == "22023"
    assert names in str(info.value)


def test_partition_maintenance_keeps_children_out_of_reach_of_the_app(stack, owner):
    import psycopg

    conn, _ = owner
    children = conn.execute("SELECT agentic_run_partition_maintenance()").fetchone()[0]
    assert children >= 2
    child = conn.execute(
        "SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = 'conversation_history'::regclass LIMIT 1"
    ).fetchone()[0]
    with connect(stack, role="app") as app, pytest.raises(psycopg.Error) as info:
        app.execute(f"SELECT count(*) FROM {child}")
    assert info.value.sqlstate == "42501"
