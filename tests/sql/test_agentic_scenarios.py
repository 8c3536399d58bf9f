"""The three Gherkin scenarios of the QA review of story S0-1.1, as tests.

Scenario timings are printed (run with -s) for docs/benchmarks.md; nothing here asserts on time.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta

import psycopg
import pytest

from .test_agentic_support import add_decision, connect, make_tenant

RECENT_MESSAGES = (
    "SELECT message_id, role, content, created_at FROM conversation_history"
    " WHERE session_id = %s ORDER BY created_at DESC LIMIT 50"
)


def test_trust_rises_after_five_successful_decisions(stack):
    """Given trust level 0, when the agent makes 5 successful decisions, the metrics show more confidence."""
    with connect(stack) as admin:
        t = make_tenant(admin)
    with connect(stack, role="app", via="pgbouncer", autocommit=False) as app, app.transaction():
        app.execute("SELECT set_config('app.current_user_id', %s, true)", (str(t.user_id),))
        assert (
            app.execute("SELECT trust_level FROM agent_sessions WHERE session_id = %s", (t.session_id,)).fetchone()[0]
            == 0
        )
        for n in range(1, 5):
            add_decision(app, t.session_id, "approved")
            assert app.execute("SELECT agentic_evaluate_trust_level(%s)", (t.session_id,)).fetchone()[0] == 0, n
        add_decision(app, t.session_id, "approved")
        assert app.execute("SELECT agentic_evaluate_trust_level(%s)", (t.session_id,)).fetchone()[0] == 1
        level, version = app.execute(
            "SELECT trust_level, version FROM agent_sessions WHERE session_id = %s", (t.session_id,)
        ).fetchone()
        assert (level, version) == (1, 2)  # the raise is an update like any other: the version moves
        autonomy = [
            r[0]
            for r in app.execute(
                "SELECT metric_value FROM trust_metrics WHERE session_id = %s AND metric_type = 'autonomy'"
                " ORDER BY recorded_at, metric_value",
                (t.session_id,),
            )
        ]
        assert autonomy[0] == 0 and autonomy[-1] == 1
        confidence = app.execute(
            "SELECT metric_value FROM trust_metrics WHERE session_id = %s AND metric_type = 'confidence'"
            " ORDER BY metric_value DESC LIMIT 1",
            (t.session_id,),
        ).fetchone()[0]
        assert confidence == 100


def test_trust_falls_when_outcomes_turn_bad(stack):
    """The same function lowers the level: rejections push the approval rate under the L1 threshold."""
    with connect(stack) as admin:
        t = make_tenant(admin)
        for _ in range(5):
            add_decision(admin, t.session_id, "approved")
        assert admin.execute("SELECT agentic_evaluate_trust_level(%s)", (t.session_id,)).fetchone()[0] == 1
        for _ in range(2):
            add_decision(admin, t.session_id, "rejected")
        assert admin.execute("SELECT agentic_evaluate_trust_level(%s)", (t.session_id,)).fetchone()[0] == 0


def test_trust_rises_one_level_per_evaluation(stack):
    with connect(stack) as admin:
        t = make_tenant(admin)
        for _ in range(20):
            add_decision(admin, t.session_id, "approved")
        levels = [
            admin.execute("SELECT agentic_evaluate_trust_level(%s)", (t.session_id,)).fetchone()[0] for _ in range(3)
        ]
        assert levels == [1, 2, 2]


def _plan_nodes(plan: dict) -> list[dict]:
    nodes = [plan]
    for child in plan.get("Plans", []):
        nodes += _plan_nodes(child)
    return nodes


def test_recent_messages_over_a_10000_message_history_use_an_index(stack):
    """Given 10,000 messages, querying a session's recent messages is an index scan (timing printed)."""
    with connect(stack) as admin:
        t = make_tenant(admin)
        other = make_tenant(admin)
        for session, n in ((t.session_id, 10_000), (other.session_id, 2_000)):
            admin.execute(
                "INSERT INTO conversation_history (session_id, role, content, message_type, created_at)"
                " SELECT %s, CASE WHEN i %% 2 = 0 THEN 'user' ELSE 'agent' END, 'message ' || i, 'text',"
                " now() - make_interval(mins => i * 10) FROM generate_series(1, %s) AS i",
                (session, n),
            )
        admin.execute("ANALYZE conversation_history")
    with connect(stack, role="app", autocommit=False) as app, app.transaction():
        app.execute("SELECT set_config('app.current_user_id', %s, true)", (str(t.user_id),))
        plan = app.execute(
            "EXPLAIN (FORMAT JSON) " + RECENT_MESSAGES.replace("%s", "%s::uuid"), (t.session_id,)
        ).fetchone()[0][0]["Plan"]
        scans = [
            n
            for n in _plan_nodes(plan)
            if n["Node Type"].endswith("Scan") and n.get("Relation Name", "").startswith("conversation_history")
        ]
        assert scans, json.dumps(plan, indent=1)
        assert all(n["Node Type"] in ("Index Scan", "Index Only Scan", "Bitmap Heap Scan") for n in scans), json.dumps(
            plan, indent=1
        )
        started = time.perf_counter()
        rows = app.execute(RECENT_MESSAGES, (t.session_id,)).fetchall()
        elapsed_ms = (time.perf_counter() - started) * 1000
        assert len(rows) == 50
        assert rows[0][2] == "message 1"
        analyzed = app.execute(
            "EXPLAIN (ANALYZE, FORMAT JSON) " + RECENT_MESSAGES.replace("%s", "%s::uuid"), (t.session_id,)
        ).fetchone()[0][0]
    print(
        f"\nagentic recent-messages (50 of 10,000, via RLS as the app role): "
        f"client {elapsed_ms:.2f} ms, server execution {analyzed['Execution Time']:.3f} ms, "
        f"scans {sorted({n['Node Type'] for n in scans})}"
    )


@pytest.mark.parametrize(
    ("table", "statement"),
    [
        (
            "conversation_history",
            "INSERT INTO conversation_history (session_id, role, content) VALUES (%s, 'user', 'late')",
        ),
        (
            "agent_decisions",
            "INSERT INTO agent_decisions (session_id, decision_type, input_context, action_taken)"
            " VALUES (%s, 'review', '{}', '{\"type\": \"x\"}')",
        ),
    ],
)
def test_using_an_expired_session_gives_a_clear_error(stack, table, statement):
    """Given a session that expired, using it fails with an error that says so, and nothing is written."""
    with connect(stack) as admin:
        t = make_tenant(admin)
        admin.execute(
            "UPDATE agent_sessions SET expires_at = now() - interval '1 second', version = version + 1"
            " WHERE session_id = %s",
            (t.session_id,),
        )
        with (
            connect(stack, role="app", via="pgbouncer", autocommit=False) as app,
            pytest.raises(psycopg.Error) as info,
            app.transaction(),
        ):
            app.execute("SELECT set_config('app.current_user_id', %s, true)", (str(t.user_id),))
            app.execute(statement, (t.session_id,))
        assert info.value.sqlstate == "55000"
        assert f"{table}.session_id: session {t.session_id} expired at" in str(info.value)
        assert admin.execute(f"SELECT count(*) FROM {table} WHERE session_id = %s", (t.session_id,)).fetchone()[0] == 0


def test_a_completed_session_gets_its_end_time_and_accepts_no_new_messages(stack):
    with connect(stack) as admin:
        t = make_tenant(admin, expires_in=timedelta(hours=1))
        admin.execute(
            "UPDATE agent_sessions SET session_state = 'completed', version = version + 1 WHERE session_id = %s",
            (t.session_id,),
        )
        assert admin.execute(
            "SELECT ended_at IS NOT NULL FROM agent_sessions WHERE session_id = %s", (t.session_id,)
        ).fetchone()[0]
        with pytest.raises(psycopg.Error) as info:
            admin.execute(
                "INSERT INTO conversation_history (session_id, role, content) VALUES (%s, 'user', 'x')",
                (t.session_id,),
            )
        assert info.value.sqlstate == "55000" and "is completed" in str(info.value)
