"""Every agentic validation rejects bad input with an error naming the field or rule, and writes nothing."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from psycopg import sql

from .test_agentic_support import add_decision, connect, count, make_tenant

CHECK, NOT_NULL, FOREIGN_KEY, STALE, DENIED = "23514", "23502", "23503", "40001", "42501"


@pytest.fixture(scope="module")
def admin(stack):
    with connect(stack) as conn:
        yield conn


@pytest.fixture(scope="module")
def tenant(admin):
    return make_tenant(admin)


def valid_rows(t) -> dict[str, dict[str, str]]:
    """A valid row per table, as SQL literals; each case replaces one column."""
    return {
        "users": {"email": "'valid@tests.agentdb.invalid'"},
        "agents": {"name": "'bad-input'", "persona_type": "'qa'", "capabilities": "'[\"review\"]'"},
        "agent_sessions": {"agent_id": f"'{t.agent_id}'", "user_id": f"'{t.user_id}'"},
        "agent_decisions": {
            "session_id": f"'{t.session_id}'",
            "decision_type": "'review'",
            "input_context": '\'{"prompt": "x"}\'',
            "action_taken": '\'{"type": "comment"}\'',
        },
        "trust_metrics": {
            "session_id": f"'{t.session_id}'",
            "metric_type": "'accuracy'",
            "metric_value": "50",
        },
        "agent_knowledge": {
            "agent_id": f"'{t.agent_id}'",
            "knowledge_type": "'pattern'",
            "domain": "'testing'",
            "content": '\'{"title": "x"}\'',
        },
        "conversation_history": {"session_id": f"'{t.session_id}'", "role": "'user'", "content": "'x'"},
        "agent_audit_log": {"action_type": "'review'", "action_details": "'{}'", "user_id": f"'{t.user_id}'"},
    }


# (table, column, bad SQL value, SQLSTATE, text the error must contain)
CASES = [
    ("users", "email", "'not-an-email'", CHECK, "users_email_has_one_at_sign"),
    # agents.capabilities: a non-empty JSON array of strings
    ("agents", "capabilities", "'{\"review\": true}'", CHECK, "agents_capabilities_nonempty_string_array"),
    ("agents", "capabilities", "'[]'", CHECK, "agents_capabilities_nonempty_string_array"),
    ("agents", "capabilities", "'[1, 2]'", CHECK, "agents_capabilities_nonempty_string_array"),
    ("agents", "capabilities", "'\"review\"'", CHECK, "agents_capabilities_nonempty_string_array"),
    ("agents", "capabilities", "NULL", NOT_NULL, "capabilities"),
    ("agents", "config", "'[]'", CHECK, "agents_config_is_object"),
    ("agents", "persona_type", "' '", CHECK, "agents_persona_type_not_blank"),
    # agent_sessions
    ("agent_sessions", "trust_level", "5", CHECK, "agent_sessions_trust_level_between_0_and_4"),
    ("agent_sessions", "trust_level", "-1", CHECK, "agent_sessions_trust_level_between_0_and_4"),
    ("agent_sessions", "session_state", "'sleeping'", CHECK, "agent_sessions_session_state_known"),
    ("agent_sessions", "context", "'[1]'", CHECK, "agent_sessions_context_is_object"),
    ("agent_sessions", "metadata", "'\"x\"'", CHECK, "agent_sessions_metadata_is_object"),
    ("agent_sessions", "user_id", f"'{uuid.UUID(int=7)}'", FOREIGN_KEY, "user_id"),
    # agent_decisions: input_context an object; action_taken an object with a string "type"
    ("agent_decisions", "input_context", "'[]'", CHECK, "agent_decisions_input_context_is_object"),
    (
        "agent_decisions",
        "action_taken",
        "'{}'",
        CHECK,
        "agent_decisions_action_taken_is_object_with_string_type",
    ),
    (
        "agent_decisions",
        "action_taken",
        "'{\"type\": 3}'",
        CHECK,
        "agent_decisions_action_taken_is_object_with_string_type",
    ),
    (
        "agent_decisions",
        "action_taken",
        '\'{"type": "x", "risk_level": "extreme"}\'',
        CHECK,
        "agent_decisions_action_taken_risk_level_known",
    ),
    ("agent_decisions", "confidence_score", "1.5", CHECK, "agent_decisions_confidence_score_between_0_and_1"),
    ("agent_decisions", "user_feedback", "'meh'", CHECK, "agent_decisions_user_feedback_known"),
    ("agent_decisions", "execution_time_ms", "-1", CHECK, "agent_decisions_execution_time_ms_not_negative"),
    # trust_metrics: a range per metric_type (QA critical issue 3)
    ("trust_metrics", "metric_type", "'vibes'", CHECK, "trust_metrics_metric_type_known"),
    ("trust_metrics", "metric_value", "100.01", CHECK, "trust_metrics_accuracy_between_0_and_100"),
    ("trust_metrics", "metric_value", "-0.01", CHECK, "trust_metrics_accuracy_between_0_and_100"),
    ("trust_metrics", "measurement_context", "'[]'", CHECK, "trust_metrics_measurement_context_is_object"),
    # agent_knowledge
    ("agent_knowledge", "knowledge_type", "'rumour'", CHECK, "agent_knowledge_knowledge_type_known"),
    ("agent_knowledge", "content", "'{}'", CHECK, "agent_knowledge_content_is_nonempty_object"),
    ("agent_knowledge", "content", "'[1]'", CHECK, "agent_knowledge_content_is_nonempty_object"),
    ("agent_knowledge", "success_rate", "1.01", CHECK, "agent_knowledge_success_rate_between_0_and_1"),
    ("agent_knowledge", "usage_count", "-1", CHECK, "agent_knowledge_usage_count_not_negative"),
    # conversation_history
    ("conversation_history", "role", "'robot'", CHECK, "conversation_history_role_known"),
    ("conversation_history", "message_type", "'video'", CHECK, "conversation_history_message_type_known"),
    ("conversation_history", "tokens_used", "-5", CHECK, "conversation_history_tokens_used_not_negative"),
    ("conversation_history", "parent_message_id", f"'{uuid.UUID(int=9)}'", FOREIGN_KEY, "parent_message_id"),
    # agent_audit_log
    ("agent_audit_log", "risk_level", "'extreme'", CHECK, "agent_audit_log_risk_level_known"),
    ("agent_audit_log", "action_details", "'[]'", CHECK, "agent_audit_log_action_details_is_object"),
]

# Each metric type against a value just outside its range.
METRIC_RANGES = [
    ("accuracy", "101"),
    ("accuracy", "-1"),
    ("autonomy", "4.01"),
    ("autonomy", "-1"),
    ("complexity", "0.99"),
    ("complexity", "10.01"),
    ("confidence", "100.01"),
    ("confidence", "-1"),
]


def _insert(table: str, row: dict[str, str]) -> sql.Composed:
    return sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
        sql.Identifier(table),
        sql.SQL(", ").join(sql.Identifier(c) for c in row),
        sql.SQL(", ").join(sql.SQL(v) for v in row.values()),
    )


def _expect_rejected(conn, statement, sqlstate: str, names: str, table: str) -> None:
    before = count(conn, sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
    with pytest.raises(psycopg.Error) as info:
        conn.execute(statement)
    assert info.value.sqlstate == sqlstate, info.value
    assert names in str(info.value)
    assert count(conn, sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))) == before


@pytest.mark.parametrize("table", sorted({case[0] for case in CASES}))
def test_the_valid_row_is_accepted(admin, tenant, table):
    """Without this the bad-input cases could fail for the wrong reason."""
    with admin.transaction(force_rollback=True):
        admin.execute(_insert(table, valid_rows(tenant)[table]))


@pytest.mark.parametrize(
    ("table", "column", "value", "sqlstate", "names"), CASES, ids=[f"{c[0]}.{c[1]}={c[2]}" for c in CASES]
)
def test_bad_input_is_rejected_and_nothing_is_written(admin, tenant, table, column, value, sqlstate, names):
    row = dict(valid_rows(tenant)[table], **{column: value})
    _expect_rejected(admin, _insert(table, row), sqlstate, names, table)


@pytest.mark.parametrize(("metric_type", "value"), METRIC_RANGES)
def test_each_metric_type_has_its_own_range(admin, tenant, metric_type, value):
    row = dict(valid_rows(tenant)["trust_metrics"], metric_type=f"'{metric_type}'", metric_value=value)
    _expect_rejected(
        admin, _insert("trust_metrics", row), CHECK, f"trust_metrics_{metric_type}_between_", "trust_metrics"
    )


def test_embedding_with_the_wrong_dimension_is_rejected(admin, tenant):
    row = dict(valid_rows(tenant)["agent_knowledge"], embedding="'[1,2,3]'")
    _expect_rejected(admin, _insert("agent_knowledge", row), "22000", "1536", "agent_knowledge")


@pytest.mark.parametrize("table", ["agents", "agent_sessions"])
def test_a_stale_version_is_rejected(stack, admin, tenant, table):
    key = "agent_id" if table == "agents" else "session_id"
    row_id = tenant.agent_id if table == "agents" else tenant.session_id
    with connect(stack, role="app") as app:
        app.execute("SELECT set_config('app.current_user_id', %s, false)", (str(tenant.user_id),))
        read = app.execute(
            sql.SQL("SELECT version FROM {} WHERE {} = %s").format(sql.Identifier(table), sql.Identifier(key)),
            (row_id,),
        ).fetchone()[0]
        update = (
            sql.SQL("UPDATE {} SET is_active = is_active, version = %s WHERE {} = %s").format(
                sql.Identifier(table), sql.Identifier(key)
            )
            if table == "agents"
            else sql.SQL("UPDATE {} SET context = '{{}}', version = %s WHERE {} = %s").format(
                sql.Identifier(table), sql.Identifier(key)
            )
        )
        app.execute(update, (read + 1, row_id))  # the first writer, with a fresh version
        for stale in (read + 1, read, read - 1):
            with pytest.raises(psycopg.Error) as info:
                app.execute(update, (stale, row_id))
            assert info.value.sqlstate == STALE
            assert f"{table}.version: stale version" in str(info.value)
    assert (
        count(
            admin,
            sql.SQL("SELECT version FROM {} WHERE {} = %s").format(sql.Identifier(table), sql.Identifier(key)),
            (row_id,),
        )
        == read + 1
    )


# Who tries what on the audit log, and the error they get.
AUDIT_EDITS = [
    ("agentic_app", "UPDATE agent_audit_log SET risk_level = 'low'", DENIED, "permission denied"),
    ("agentic_app", "DELETE FROM agent_audit_log", DENIED, "permission denied"),
    ("agentic_app", "TRUNCATE agent_audit_log", DENIED, "permission denied"),
    (
        "agentic_app",
        "ALTER TABLE agent_audit_log DISABLE TRIGGER agent_audit_log_append_only",
        DENIED,
        "must be owner",
    ),
    ("agentic_app", "DROP TRIGGER agent_audit_log_append_only ON agent_audit_log", DENIED, "must be owner"),
    ("agentic_app", "SELECT agentic_purge_audit_log(1)", DENIED, "permission denied"),
    ("agentic_readonly", "SELECT agentic_purge_audit_log(1)", DENIED, "permission denied"),
    ("agentic_owner", "UPDATE agent_audit_log SET risk_level = 'low'", DENIED, "append-only"),
    ("agentic_owner", "DELETE FROM agent_audit_log", DENIED, "append-only"),
    ("agentic_owner", "TRUNCATE agent_audit_log", DENIED, "append-only"),
    (None, "UPDATE agent_audit_log SET risk_level = 'low'", DENIED, "append-only"),  # even the superuser
    (None, "DELETE FROM agent_audit_log", DENIED, "append-only"),
]


@pytest.mark.parametrize(
    ("role", "statement", "sqlstate", "names"),
    AUDIT_EDITS,
    ids=[f"{a[0]}:{a[1].split()[0]}" for a in AUDIT_EDITS],
)
def test_any_edit_to_the_audit_log_is_rejected(admin, tenant, role, statement, sqlstate, names):
    add_decision(admin, tenant.session_id)  # writes one audit row through the trigger
    before = admin.execute(
        "SELECT count(*), count(*) FILTER (WHERE risk_level = 'low') FROM agent_audit_log"
    ).fetchone()
    assert before[0] > 0
    with admin.transaction(force_rollback=True):
        if role:
            admin.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
            admin.execute("SELECT set_config('app.current_user_id', %s, true)", (str(tenant.user_id),))
        with pytest.raises(psycopg.Error) as info, admin.transaction():
            admin.execute(statement)
        assert info.value.sqlstate == sqlstate, info.value
        assert names in str(info.value)
    after = admin.execute("SELECT count(*), count(*) FILTER (WHERE risk_level = 'low') FROM agent_audit_log").fetchone()
    assert after == before


def test_every_decision_is_audited(admin, tenant):
    decision_id = add_decision(admin, tenant.session_id)
    row = admin.execute(
        "SELECT action_type, user_id, session_id FROM agent_audit_log WHERE action_details ->> 'decision_id' = %s",
        (str(decision_id),),
    ).fetchone()
    assert row == ("decision", tenant.user_id, tenant.session_id)
