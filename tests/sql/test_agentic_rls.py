"""Row-level security between two tenants, as the app role through PgBouncer (transaction pooling).

With transaction pooling every transaction may land on another server connection, so the tenant is
set with set_config(..., true) (SET LOCAL) inside the same transaction as the queries.
"""

from __future__ import annotations

from contextlib import contextmanager

import psycopg
import pytest

from .test_agentic_support import add_decision, add_message, connect, make_tenant

# Tenant-owned tables and the column that ties a row to its tenant's session or user.
TENANT_TABLES = [
    ("users", "user_id"),
    ("agent_sessions", "user_id"),
    ("agent_decisions", "session_id"),
    ("trust_metrics", "session_id"),
    ("conversation_history", "session_id"),
    ("agent_audit_log", "user_id"),
    ("agent_decisions_archive", "session_id"),
    ("conversation_history_archive", "session_id"),
    ("trust_metrics_daily", "session_id"),
]


@pytest.fixture(scope="module")
def tenants(stack):
    """Two tenants, each with a session, a decision (and its audit row), a message and a trust metric."""
    with connect(stack) as admin:
        a, b = make_tenant(admin), make_tenant(admin)
        for t in (a, b):
            add_decision(admin, t.session_id)
            add_message(admin, t.session_id)
            admin.execute(
                "INSERT INTO trust_metrics (session_id, metric_type, metric_value) VALUES (%s, 'accuracy', 90)",
                (t.session_id,),
            )
            admin.execute(
                "INSERT INTO agent_decisions_archive (decision_id, session_id, decision_type, input_context,"
                " action_taken, created_at)"
                " VALUES (gen_random_uuid(), %s, 'review', '{}', '{\"type\": \"x\"}',"
                " now() - interval '200 days')",
                (t.session_id,),
            )
            admin.execute(
                "INSERT INTO conversation_history_archive (message_id, session_id, role, content, created_at)"
                " VALUES (gen_random_uuid(), %s, 'user', 'old', now() - interval '100 days')",
                (t.session_id,),
            )
            admin.execute(
                "INSERT INTO trust_metrics_daily (session_id, metric_type, metric_date, sample_count,"
                " sum_value, min_value, max_value) VALUES (%s, 'accuracy', current_date - 40, 1, 90, 90, 90)",
                (t.session_id,),
            )
    return a, b


@pytest.fixture(scope="module")
def app(stack):
    with connect(stack, role="app", via="pgbouncer", autocommit=False) as conn:
        yield conn


@contextmanager
def as_tenant(conn: psycopg.Connection, user_id):
    """One transaction with app.current_user_id set locally to it (safe under transaction pooling)."""
    with conn.transaction():
        conn.execute("SELECT set_config('app.current_user_id', %s, true)", (str(user_id),))
        yield conn


def _key(t, column):
    return t.user_id if column == "user_id" else t.session_id


@pytest.mark.parametrize(("table", "column"), TENANT_TABLES)
def test_a_tenant_sees_its_own_rows(app, tenants, table, column):
    a, _ = tenants
    with as_tenant(app, a.user_id):
        assert app.execute(f"SELECT count(*) FROM {table} WHERE {column} = %s", (_key(a, column),)).fetchone()[0] >= 1


@pytest.mark.parametrize(("table", "column"), TENANT_TABLES)
def test_a_cross_tenant_read_returns_nothing(app, tenants, table, column):
    a, b = tenants
    with as_tenant(app, a.user_id):
        assert app.execute(f"SELECT count(*) FROM {table} WHERE {column} = %s", (_key(b, column),)).fetchone()[0] == 0


@pytest.mark.parametrize(("table", "column"), TENANT_TABLES)
def test_without_a_tenant_nothing_is_visible(app, tenants, table, column):
    with app.transaction():
        assert app.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0


def test_the_tenant_setting_does_not_leak_to_the_next_transaction(app, tenants):
    a, _ = tenants
    with as_tenant(app, a.user_id):
        pass
    with app.transaction():
        assert app.execute("SELECT agentic_current_user_id()").fetchone()[0] is None
        assert app.execute("SELECT count(*) FROM agent_sessions").fetchone()[0] == 0


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO conversation_history (session_id, role, content) VALUES (%(b)s, 'user', 'intrusion')",
        "INSERT INTO agent_decisions (session_id, decision_type, input_context, action_taken)"
        " VALUES (%(b)s, 'review', '{}', '{\"type\": \"x\"}')",
        "INSERT INTO trust_metrics (session_id, metric_type, metric_value) VALUES (%(b)s, 'accuracy', 1)",
    ],
)
def test_a_tenant_cannot_write_into_another_tenants_session(app, tenants, statement):
    a, b = tenants
    with pytest.raises(psycopg.Error) as info, as_tenant(app, a.user_id):
        app.execute(statement, {"b": b.session_id})
    assert info.value.sqlstate in ("42501", "23503")  # RLS WITH CHECK, or the session lookup finds nothing


@pytest.mark.parametrize(
    ("statement", "table", "column"),
    [
        (
            "UPDATE agent_sessions SET context = '{}', version = version + 1 WHERE session_id = %(b)s",
            "agent_sessions",
            "session_id",
        ),
        ("DELETE FROM conversation_history WHERE session_id = %(b)s", "conversation_history", "session_id"),
        ("DELETE FROM agent_decisions WHERE session_id = %(b)s", "agent_decisions", "session_id"),
    ],
)
def test_a_tenant_cannot_change_another_tenants_rows(stack, app, tenants, statement, table, column):
    a, b = tenants
    with as_tenant(app, a.user_id):
        assert app.execute(statement, {"b": b.session_id}).rowcount == 0
    with connect(stack) as admin:
        assert admin.execute(f"SELECT count(*) FROM {table} WHERE {column} = %s", (b.session_id,)).fetchone()[0] >= 1


def test_the_readonly_role_reads_every_tenant(stack, tenants):
    a, b = tenants
    with connect(stack, role="readonly", via="pgbouncer") as ro:
        assert (
            ro.execute(
                "SELECT count(*) FROM agent_sessions WHERE session_id IN (%s, %s)",
                (a.session_id, b.session_id),
            ).fetchone()[0]
            == 2
        )
