"""The agentic database contains every object story S0-1.1 (seed 004) and its QA review name."""

from __future__ import annotations

import pytest

from .test_agentic_support import connect

# The story's seven tables, users and schema_versions, and the tables the retention design adds.
TABLES = [
    "users",
    "schema_versions",
    "agents",
    "agent_sessions",
    "agent_decisions",
    "trust_metrics",
    "agent_knowledge",
    "conversation_history",
    "agent_audit_log",
    "agent_decisions_archive",
    "conversation_history_archive",
    "trust_metrics_daily",
    "trust_level_thresholds",
]

# Every column of the story's CREATE TABLE statements, plus the QA fixes (version, expires_at).
COLUMNS = {
    "agents": [
        "agent_id",
        "name",
        "persona_type",
        "capabilities",
        "config",
        "created_at",
        "updated_at",
        "is_active",
        "version",
    ],
    "agent_sessions": [
        "session_id",
        "agent_id",
        "user_id",
        "trust_level",
        "context",
        "started_at",
        "ended_at",
        "session_state",
        "metadata",
        "expires_at",
        "version",
    ],
    "agent_decisions": [
        "decision_id",
        "session_id",
        "decision_type",
        "input_context",
        "decision_rationale",
        "action_taken",
        "confidence_score",
        "user_feedback",
        "created_at",
        "execution_time_ms",
    ],
    "trust_metrics": [
        "metric_id",
        "session_id",
        "metric_type",
        "metric_value",
        "measurement_context",
        "recorded_at",
    ],
    "agent_knowledge": [
        "knowledge_id",
        "agent_id",
        "knowledge_type",
        "domain",
        "content",
        "embedding",
        "usage_count",
        "success_rate",
        "created_at",
        "last_used_at",
    ],
    "conversation_history": [
        "message_id",
        "session_id",
        "role",
        "content",
        "message_type",
        "parent_message_id",
        "created_at",
        "tokens_used",
        "model_used",
    ],
    "agent_audit_log": [
        "audit_id",
        "agent_id",
        "session_id",
        "action_type",
        "action_details",
        "risk_level",
        "user_id",
        "timestamp",
        "ip_address",
        "user_agent",
    ],
    "users": ["user_id", "email", "display_name", "created_at", "is_active"],
    "schema_versions": ["version", "description", "applied_at"],
}
COLUMN_CASES = [(table, column) for table, columns in COLUMNS.items() for column in columns]

# Every foreign key with its explicit delete rule (QA critical issue 1): c = CASCADE, r = RESTRICT.
FOREIGN_KEYS = [
    ("agent_sessions", "agent_id", "agents", "c"),
    ("agent_sessions", "user_id", "users", "c"),
    ("agent_decisions", "session_id", "agent_sessions", "c"),
    ("agent_decisions_archive", "session_id", "agent_sessions", "c"),
    ("trust_metrics", "session_id", "agent_sessions", "c"),
    ("trust_metrics_daily", "session_id", "agent_sessions", "c"),
    ("agent_knowledge", "agent_id", "agents", "c"),
    ("conversation_history", "session_id", "agent_sessions", "c"),
    ("conversation_history_archive", "session_id", "agent_sessions", "c"),
    ("agent_audit_log", "agent_id", "agents", "r"),
    ("agent_audit_log", "session_id", "agent_sessions", "r"),
    ("agent_audit_log", "user_id", "users", "r"),
]

# The story's Performance Considerations and the QA review's "Missing Indexes".
INDEXES = [
    ("agent_decisions", "idx_agent_decisions_decision_type"),  # QA
    ("agent_audit_log", "idx_agent_audit_log_risk_level"),  # QA
    ("conversation_history", "idx_conversation_history_session_id_created_at"),  # QA
    ("agent_decisions", "idx_agent_decisions_session_id_created_at"),  # session_id on related tables
    ("trust_metrics", "idx_trust_metrics_session_id_metric_type_recorded_at"),
    ("agent_audit_log", "idx_agent_audit_log_session_id"),
    ("agent_sessions", "idx_agent_sessions_agent_id_started_at"),  # (agent_id, created_at) history
    ("agent_knowledge", "idx_agent_knowledge_agent_id_created_at"),
    ("agent_audit_log", "idx_agent_audit_log_agent_id_timestamp"),
    ("agent_sessions", "idx_agent_sessions_user_id_active"),  # partial index on active sessions
    ("agents", "idx_agents_capabilities"),  # JSONB GIN
    ("agent_sessions", "idx_agent_sessions_context"),
    ("agent_knowledge", "idx_agent_knowledge_content"),
    ("agent_audit_log", "idx_agent_audit_log_action_details"),
    ("agent_decisions", "idx_agent_decisions_input_context"),
]
PARTIAL_INDEXES = ["idx_agent_sessions_user_id_active", "idx_agents_persona_type_active"]
GIN_INDEXES = [
    "idx_agents_capabilities",
    "idx_agent_sessions_context",
    "idx_agent_knowledge_content",
    "idx_agent_audit_log_action_details",
    "idx_agent_decisions_input_context",
]

FUNCTIONS = [
    "agentic_current_user_id",
    "agentic_evaluate_trust_level",
    "agentic_archive_conversation_history",
    "agentic_archive_decisions",
    "agentic_purge_audit_log",
    "agentic_rollup_trust_metrics",
    "agentic_run_partition_maintenance",
]

TRIGGERS = [
    ("agents", "agents_check_version"),
    ("agent_sessions", "agent_sessions_check_version"),
    ("agent_decisions", "agent_decisions_require_usable_session"),
    ("conversation_history", "conversation_history_require_usable_session"),
    ("conversation_history", "conversation_history_check_parent"),
    ("agent_decisions", "agent_decisions_audit"),
    ("agent_audit_log", "agent_audit_log_append_only"),
    ("agent_audit_log", "agent_audit_log_no_truncate"),
]

# Tenant-owned tables carry row-level security.
RLS_TABLES = [
    "users",
    "agent_sessions",
    "agent_decisions",
    "agent_decisions_archive",
    "trust_metrics",
    "trust_metrics_daily",
    "conversation_history",
    "conversation_history_archive",
    "agent_audit_log",
]

CRON_JOBS = [
    "agentic-archive-conversation-history",
    "agentic-archive-decisions",
    "agentic-purge-audit-log",
    "agentic-rollup-trust-metrics",
    "agentic-partition-maintenance",
]


@pytest.fixture(scope="module")
def db(stack):
    with connect(stack) as conn:
        yield conn


@pytest.mark.parametrize("table", TABLES)
def test_table_exists(db, table):
    assert db.execute("SELECT to_regclass(%s)", (f"public.{table}",)).fetchone()[0] is not None


@pytest.mark.parametrize(("table", "column"), COLUMN_CASES)
def test_column_exists(db, table, column):
    row = db.execute(
        "SELECT 1 FROM information_schema.columns WHERE table_schema = 'public' AND table_name = %s"
        " AND column_name = %s",
        (table, column),
    ).fetchone()
    assert row, f"{table}.{column} is missing"


@pytest.mark.parametrize(("table", "column", "target", "rule"), FOREIGN_KEYS)
def test_foreign_key_has_explicit_delete_rule(db, table, column, target, rule):
    rows = db.execute(
        "SELECT c.confdeltype FROM pg_constraint c"
        " JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)"
        " WHERE c.contype = 'f' AND c.conrelid = %s::regclass AND c.conparentid = 0 AND a.attname = %s"
        " AND c.confrelid = %s::regclass",
        (f"public.{table}", column, f"public.{target}"),
    ).fetchall()
    assert [r[0] for r in rows] == [rule]


def test_every_foreign_key_is_listed(db):
    """No foreign key without an explicit CASCADE/RESTRICT slips in unlisted."""
    rows = db.execute(
        "SELECT c.conrelid::regclass::text, c.confdeltype FROM pg_constraint c"
        " JOIN pg_namespace n ON n.oid = c.connamespace"
        " WHERE c.contype = 'f' AND n.nspname = 'public' AND c.conparentid = 0"
        " AND c.conrelid::regclass::text NOT LIKE 'conversation_history_p%'"
        " AND c.conrelid::regclass::text <> 'conversation_history_default'"
    ).fetchall()
    assert len(rows) == len(FOREIGN_KEYS)
    assert {rule for _, rule in rows} <= {"c", "r"}


@pytest.mark.parametrize(("table", "index"), INDEXES)
def test_index_exists(db, table, index):
    row = db.execute(
        "SELECT tablename FROM pg_indexes WHERE schemaname = 'public' AND indexname = %s", (index,)
    ).fetchone()
    assert row == (table,)


@pytest.mark.parametrize("index", PARTIAL_INDEXES)
def test_partial_index_has_predicate(db, index):
    assert db.execute("SELECT indexdef FROM pg_indexes WHERE indexname = %s", (index,)).fetchone()[0].count(" WHERE ")


@pytest.mark.parametrize("index", GIN_INDEXES)
def test_jsonb_index_is_gin(db, index):
    assert "USING gin" in db.execute("SELECT indexdef FROM pg_indexes WHERE indexname = %s", (index,)).fetchone()[0]


@pytest.mark.parametrize("table", ["agents", "agent_sessions"])
def test_optimistic_locking_column(db, table):
    row = db.execute(
        "SELECT data_type, is_nullable, column_default FROM information_schema.columns"
        " WHERE table_name = %s AND column_name = 'version'",
        (table,),
    ).fetchone()
    assert row == ("integer", "NO", "1")


@pytest.mark.parametrize("metric_type", ["accuracy", "autonomy", "complexity", "confidence"])
def test_trust_metrics_has_a_range_check_per_metric_type(db, metric_type):
    names = [
        r[0]
        for r in db.execute(
            "SELECT conname FROM pg_constraint WHERE conrelid = 'trust_metrics'::regclass AND contype = 'c'"
        )
    ]
    assert any(name.startswith(f"trust_metrics_{metric_type}_between_") for name in names)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_function_exists(db, function):
    assert db.execute("SELECT count(*) FROM pg_proc WHERE proname = %s", (function,)).fetchone()[0] == 1


@pytest.mark.parametrize(("table", "trigger"), TRIGGERS)
def test_trigger_exists(db, table, trigger):
    row = db.execute(
        "SELECT tgenabled FROM pg_trigger WHERE tgrelid = %s::regclass AND tgname = %s", (table, trigger)
    ).fetchone()
    assert row == ("O",)


@pytest.mark.parametrize("table", RLS_TABLES)
def test_row_level_security_is_enabled_with_a_tenant_policy(db, table):
    assert db.execute("SELECT relrowsecurity FROM pg_class WHERE oid = %s::regclass", (table,)).fetchone()[0]
    policies = [r[0] for r in db.execute("SELECT policyname FROM pg_policies WHERE tablename = %s", (table,))]
    assert any(p.endswith("_tenant") or p.startswith(f"{table}_tenant") for p in policies), policies


def test_conversation_history_is_partitioned_monthly_by_pg_partman(db):
    assert db.execute("SELECT relkind FROM pg_class WHERE oid = 'conversation_history'::regclass").fetchone()[0] == "p"
    interval = db.execute(
        "SELECT partition_interval FROM partman.part_config WHERE parent_table = 'public.conversation_history'"
    ).fetchone()[0]
    assert interval in ("1 mon", "1 month")
    children = db.execute(
        "SELECT count(*) FROM pg_inherits WHERE inhparent = 'conversation_history'::regclass"
    ).fetchone()[0]
    assert children >= 2


def test_embedding_is_vector_1536_with_an_ivfflat_cosine_index(db):
    col_type = db.execute(
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
        " WHERE attrelid = 'agent_knowledge'::regclass AND attname = 'embedding'"
    ).fetchone()[0]
    assert col_type == "vector(1536)"
    ann = db.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'idx_agent_knowledge_embedding'").fetchone()
    assert ann and "USING ivfflat (embedding vector_cosine_ops)" in ann[0]


def test_schema_versions_records_the_migration(db):
    assert db.execute("SELECT version FROM schema_versions ORDER BY version").fetchall() == [("0001",)]


@pytest.mark.parametrize("level", [0, 1, 2, 3, 4])
def test_trust_level_thresholds_cover_l0_to_l4(db, level):
    assert db.execute("SELECT count(*) FROM trust_level_thresholds WHERE trust_level = %s", (level,)).fetchone()[0]


@pytest.mark.parametrize("job", CRON_JOBS)
def test_cron_job_is_scheduled_in_the_agentic_database(stack, job):
    out = stack.psql(None, f"SELECT database || ' ' || username FROM cron.job WHERE jobname = '{job}'")
    assert out.strip() == "agentic agentic_owner"
