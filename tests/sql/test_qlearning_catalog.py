"""qlearning_db holds every table, column, index, view and function seeds 000 and 001 name, and the roles
have the privileges the baseline promises (app: DML + EXECUTE, no DDL; readonly: SELECT only)."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import errors

KEY = "qlearning"

# Seed 000's ER diagram, table by table (plus created_at/updated_at where we keep them).
TABLE_COLUMNS = {
    "agent_types": [
        "agent_type",
        "display_name",
        "description",
        "state_space_dimensions",
        "action_space_dimensions",
        "learning_rate",
        "discount_factor",
        "exploration_rate",
        "is_active",
        "metadata",
    ],
    "sessions": [
        "session_id",
        "agent_type",
        "session_name",
        "start_time",
        "end_time",
        "status",
        "task_count",
        "total_reward",
        "environment",
        "metadata",
    ],
    "q_values": [
        "q_value_id",
        "agent_type",
        "session_id",
        "state_hash",
        "state_data",
        "action_hash",
        "action_data",
        "q_value",
        "visit_count",
        "confidence_score",
        "uncertainty",
        "last_updated",
        "expires_at",
        "metadata",
    ],
    "trajectories": [
        "trajectory_id",
        "agent_type",
        "session_id",
        "task_id",
        "initial_state",
        "final_state",
        "actions_taken",
        "states_visited",
        "step_rewards",
        "total_reward",
        "discounted_reward",
        "execution_time_ms",
        "success",
        "error_message",
        "started_at",
        "completed_at",
        "expires_at",
        "metadata",
    ],
    "rewards": [
        "reward_id",
        "agent_type",
        "session_id",
        "trajectory_id",
        "state_hash",
        "action_hash",
        "reward_value",
        "reward_type",
        "reward_source",
        "observed_at",
        "metadata",
    ],
    "patterns": [
        "pattern_id",
        "agent_type",
        "parent_pattern_id",
        "pattern_name",
        "pattern_type",
        "pattern_category",
        "pattern_data",
        "trigger_conditions",
        "expected_outcome",
        "usage_count",
        "success_count",
        "failure_count",
        "avg_reward",
        "confidence_score",
        "first_seen",
        "last_used",
        "expires_at",
        "version",
        "metadata",
    ],
    "agent_states": [
        "state_id",
        "agent_type",
        "agent_instance_id",
        "total_tasks",
        "successful_tasks",
        "failed_tasks",
        "total_reward",
        "avg_reward",
        "current_exploration_rate",
        "current_learning_rate",
        "success_rate",
        "patterns_learned",
        "q_values_stored",
        "status",
        "last_activity",
        "initialized_at",
        "updated_at",
        "metadata",
    ],
}

# Types the diagram fixes: (table, column, udt_name).
COLUMN_TYPES = [
    ("agent_types", "agent_type", "varchar"),
    ("sessions", "session_id", "uuid"),
    ("q_values", "q_value_id", "int8"),
    ("q_values", "state_data", "jsonb"),
    ("q_values", "action_data", "jsonb"),
    ("q_values", "q_value", "numeric"),
    ("trajectories", "trajectory_id", "uuid"),
    ("trajectories", "actions_taken", "jsonb"),
    ("trajectories", "states_visited", "jsonb"),
    ("trajectories", "step_rewards", "jsonb"),
    ("rewards", "reward_id", "int8"),
    ("patterns", "pattern_id", "uuid"),
    ("patterns", "pattern_data", "jsonb"),
    ("agent_states", "state_id", "uuid"),
    ("agent_states", "success_rate", "numeric"),
] + [(t, "metadata", "jsonb") for t in TABLE_COLUMNS]

# Primary keys and foreign keys of the diagram: (table, kind, columns, referenced table).
KEYS = [
    ("agent_types", "p", ["agent_type"], None),
    ("sessions", "p", ["session_id"], None),
    ("q_values", "p", ["q_value_id"], None),
    ("trajectories", "p", ["trajectory_id"], None),
    ("rewards", "p", ["reward_id"], None),
    ("patterns", "p", ["pattern_id"], None),
    ("agent_states", "p", ["state_id"], None),
    ("sessions", "f", ["agent_type"], "agent_types"),
    ("q_values", "f", ["agent_type"], "agent_types"),
    ("q_values", "f", ["session_id"], "sessions"),
    ("trajectories", "f", ["agent_type"], "agent_types"),
    ("trajectories", "f", ["session_id"], "sessions"),
    # A reward's agent type is its trajectory's: one key to both since revision 0009, and through
    # trajectories' own key the agent type is in agent_types.
    ("rewards", "f", ["trajectory_id", "agent_type"], "trajectories"),
    ("rewards", "f", ["session_id"], "sessions"),
    ("trajectories", "u", ["trajectory_id", "agent_type"], None),
    ("patterns", "f", ["agent_type"], "agent_types"),
    ("patterns", "f", ["parent_pattern_id"], "patterns"),
    ("agent_states", "f", ["agent_type"], "agent_types"),
    ("q_values", "u", ["agent_type", "state_hash", "action_hash"], None),
    ("patterns", "u", ["agent_type", "pattern_name", "version"], None),
    ("agent_states", "u", ["agent_type", "agent_instance_id"], None),
]

# Seed 000's index strategy (and seed 001's named indexes): (index, table, definition after USING).
INDEXES = [
    # primary indexes
    (
        "uniq_q_values_agent_type_state_hash_action_hash",
        "q_values",
        "btree (agent_type, state_hash, action_hash)",
    ),
    ("idx_trajectories_agent_type", "trajectories", "btree (agent_type)"),
    ("idx_trajectories_session_id", "trajectories", "btree (session_id) WHERE (session_id IS NOT NULL)"),
    ("idx_trajectories_task_id", "trajectories", "btree (task_id)"),
    (
        "uniq_patterns_agent_type_pattern_name_version",
        "patterns",
        "btree (agent_type, pattern_name, version)",
    ),
    # performance indexes
    ("idx_q_values_lookup", "q_values", "btree (agent_type, state_hash, q_value DESC)"),
    ("idx_patterns_agent_type_avg_reward", "patterns", "btree (agent_type, avg_reward DESC)"),
    ("idx_trajectories_total_reward", "trajectories", "btree (total_reward DESC)"),
    # GIN indexes on JSONB
    ("idx_q_values_state_data", "q_values", "gin (state_data)"),
    ("idx_q_values_action_data", "q_values", "gin (action_data)"),
    ("idx_sessions_metadata", "sessions", "gin (metadata)"),
    ("idx_patterns_pattern_data", "patterns", "gin (pattern_data)"),
    ("idx_patterns_trigger_conditions", "patterns", "gin (trigger_conditions)"),
    ("idx_trajectories_metadata", "trajectories", "gin (metadata)"),
    # partial indexes
    ("idx_sessions_status", "sessions", "btree (status) WHERE ((status)::text = 'active'::text)"),
    ("idx_q_values_expires_at", "q_values", "btree (expires_at) WHERE (expires_at IS NOT NULL)"),
    # trigram index
    ("idx_patterns_pattern_name_trgm", "patterns", "gin (pattern_name gin_trgm_ops)"),
    # TTL cleanup and foreign keys
    ("idx_trajectories_expires_at", "trajectories", "btree (expires_at) WHERE (expires_at IS NOT NULL)"),
    ("idx_patterns_expires_at", "patterns", "btree (expires_at) WHERE (expires_at IS NOT NULL)"),
    ("idx_rewards_trajectory_id", "rewards", "btree (trajectory_id)"),
    ("uniq_trajectories_trajectory_id_agent_type", "trajectories", "btree (trajectory_id, agent_type)"),
    # views: a unique index each, for REFRESH ... CONCURRENTLY
    ("uniq_agent_performance_summary_agent_type", "agent_performance_summary", "btree (agent_type)"),
    ("uniq_pattern_effectiveness_pattern_id", "pattern_effectiveness", "btree (pattern_id)"),
]

VIEW_COLUMNS = {
    "agent_performance_summary": [
        "agent_type",
        "total_sessions",
        "total_trajectories",
        "successful_trajectories",
        "avg_reward",
        "cumulative_reward",
        "avg_execution_time_ms",
        "unique_patterns",
        "avg_state_visits",
        "last_active",
        "active_instances",
    ],
    "pattern_effectiveness": [
        "pattern_id",
        "usage_count",
        "success_count",
        "failure_count",
        "success_rate",
        "avg_reward",
        "confidence_score",
        "trajectories_using_pattern",
        "avg_trajectory_reward",
        "last_used",
        "days_since_used",
    ],
}

# (name, identity arguments, result)
FUNCTIONS = [
    ("agentdb_retention_interval", "", "interval"),
    (
        "upsert_q_value",
        "p_agent_type character varying, p_state_hash character varying, p_state_data jsonb, "
        "p_action_hash character varying, p_action_data jsonb, p_q_value double precision, p_session_id uuid",
        "bigint",
    ),
    (
        "get_best_action",
        "p_agent_type character varying, p_state_hash character varying",
        "TABLE(action_hash character varying, action_data jsonb, q_value numeric, visit_count integer, "
        "confidence_score numeric)",
    ),
    (
        "cleanup_expired_data",
        "p_batch_size integer, p_max_batches integer",
        "TABLE(table_name text, deleted_count bigint)",
    ),
    ("refresh_materialized_views", "", "void"),
    (
        "q_learning_update",
        "p_agent_type character varying, p_state_hash character varying, p_action_hash character varying, "
        "p_reward double precision, p_next_state_hash character varying",
        "numeric",
    ),
    (
        "upsert_q_values",
        "p_agent_type character varying, p_state_hashes character varying[], p_action_hashes character varying[], "
        "p_q_values double precision[], p_state_data jsonb[], p_action_data jsonb[], p_session_id uuid",
        "TABLE(state_hash character varying, action_hash character varying, q_value_id bigint)",
    ),
    ("insert_trajectories", "p_trajectories jsonb", "TABLE(trajectory_id uuid)"),
]

# The 18 QE agent types of the Agentic QE Fleet (the registry rows of migration 0002).
QE_AGENT_TYPES = [
    "test-generator",
    "test-executor",
    "coverage-analyzer",
    "quality-gate",
    "quality-analyzer",
    "performance-tester",
    "security-scanner",
    "requirements-validator",
    "production-intelligence",
    "fleet-commander",
    "deployment-readiness",
    "regression-risk-analyzer",
    "test-data-architect",
    "api-contract-validator",
    "flaky-test-hunter",
    "visual-tester",
    "chaos-engineer",
    "code-complexity",
]


@pytest.fixture(scope="module")
def admin(stack):
    with psycopg.connect(stack.dsn(KEY, role="admin"), autocommit=True) as conn:
        yield conn


def test_the_seven_tables_exist_and_no_others(admin):
    """The seeds' seven tables, and beside them only the refresh log that monitoring reads and the
    one-row settings table behind the TTL (test_runtime_settings.py)."""
    rows = admin.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        " AND tablename NOT IN ('alembic_version', 'agentdb_mv_refresh', 'agentdb_settings')"
    ).fetchall()
    assert sorted(r[0] for r in rows) == sorted(TABLE_COLUMNS)


@pytest.mark.parametrize(("table", "column"), [(t, c) for t, cols in TABLE_COLUMNS.items() for c in cols])
def test_column_exists(admin, table, column):
    row = admin.execute(
        "SELECT 1 FROM information_schema.columns "
        "WHERE table_schema = 'public' AND table_name = %s AND column_name = %s",
        (table, column),
    ).fetchone()
    assert row, f"{table}.{column} is missing"


@pytest.mark.parametrize(("table", "column", "udt"), COLUMN_TYPES)
def test_column_type(admin, table, column, udt):
    row = admin.execute(
        "SELECT udt_name FROM information_schema.columns "
        "WHERE table_schema = 'public' AND table_name = %s AND column_name = %s",
        (table, column),
    ).fetchone()
    assert row and row[0] == udt


@pytest.mark.parametrize(("table", "kind", "columns", "ref"), KEYS)
def test_key_constraint(admin, table, kind, columns, ref):
    rows = admin.execute(
        """
        SELECT array_agg(a.attname ORDER BY k.ord), c.confrelid::regclass::text
        FROM pg_constraint c
        CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)
        JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
        WHERE c.conrelid = %s::regclass AND c.contype = %s
        GROUP BY c.oid, c.confrelid
        """,
        (table, kind),
    ).fetchall()
    wanted = (columns, ref if ref else "-")
    assert wanted in [(cols, r or "-") for cols, r in rows]


@pytest.mark.parametrize(("index", "table", "definition"), INDEXES)
def test_index(admin, index, table, definition):
    row = admin.execute(
        "SELECT tablename, indexdef FROM pg_indexes WHERE schemaname = 'public' AND indexname = %s", (index,)
    ).fetchone()
    assert row, f"index {index} is missing"
    assert row[0] == table
    assert row[1].endswith("USING " + definition), row[1]


def test_agent_type_state_hash_lookup_is_served_by_an_index(admin):
    """Seed 000's (agent_type, state_hash) primary index: the leading columns of idx_q_values_lookup."""
    plan = admin.execute(
        "EXPLAIN (FORMAT JSON) SELECT * FROM q_values WHERE agent_type = 'test-gen' AND state_hash = 'abc'"
    ).fetchone()[0]
    assert "idx_q_values_lookup" in str(plan) or "uniq_q_values_agent_type_state_hash_action_hash" in str(plan)


@pytest.mark.parametrize("view", list(VIEW_COLUMNS))
def test_materialized_view_columns(admin, view):
    rows = admin.execute(
        "SELECT a.attname FROM pg_attribute a JOIN pg_matviews m ON a.attrelid = (m.schemaname || '.' || "
        "m.matviewname)::regclass WHERE m.matviewname = %s AND a.attnum > 0",
        (view,),
    ).fetchall()
    assert rows, f"materialized view {view} is missing"
    missing = set(VIEW_COLUMNS[view]) - {r[0] for r in rows}
    assert not missing


@pytest.mark.parametrize(("name", "args", "result"), FUNCTIONS)
def test_function_signature(admin, name, args, result):
    rows = admin.execute(
        "SELECT pg_get_function_identity_arguments(p.oid), pg_get_function_result(p.oid) "
        "FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace AND p.proname = %s",
        (name,),
    ).fetchall()
    assert rows == [(args, result)]


def test_success_rate_is_generated(admin):
    row = admin.execute(
        "SELECT attgenerated FROM pg_attribute WHERE attrelid = 'agent_states'::regclass AND attname = 'success_rate'"
    ).fetchone()
    assert row == ("s",)


def test_registry_holds_the_18_qe_agent_types(admin):
    rows = admin.execute(
        "SELECT agent_type, display_name, learning_rate, discount_factor, exploration_rate FROM agent_types"
    ).fetchall()
    assert sorted(r[0] for r in rows) == sorted(QE_AGENT_TYPES)
    for agent_type, display_name, alpha, gamma, epsilon in rows:
        assert display_name.strip(), agent_type
        assert 0 < alpha <= 1 and 0 <= gamma <= 1 and 0 <= epsilon <= 1, agent_type


# --- privileges ---------------------------------------------------------------------------------------

DDL = [
    "CREATE TABLE qlearning_intruder (id int)",
    "DROP TABLE rewards",
    "ALTER TABLE q_values ADD COLUMN intruder int",
    "CREATE INDEX idx_intruder ON q_values (visit_count)",
    "TRUNCATE q_values",
    "CREATE FUNCTION intruder() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    "REFRESH MATERIALIZED VIEW agent_performance_summary",
]


@pytest.mark.parametrize("role", ["app", "readonly"])
@pytest.mark.parametrize("statement", DDL)
def test_roles_cannot_run_ddl(stack, role, statement):
    with psycopg.connect(stack.dsn(KEY, role=role)) as conn, pytest.raises(errors.InsufficientPrivilege):
        conn.read_only = False  # the privileges must refuse without the readonly role's read-only default
        conn.execute(statement)


@pytest.mark.parametrize("table", list(TABLE_COLUMNS) + list(VIEW_COLUMNS))
@pytest.mark.parametrize("role", ["app", "readonly"])
def test_roles_can_select(stack, role, table):
    with psycopg.connect(stack.dsn(KEY, role=role)) as conn:
        conn.execute(f"SELECT * FROM {table} LIMIT 1")


@pytest.mark.parametrize("table", list(TABLE_COLUMNS))
def test_app_has_dml_and_readonly_has_none(admin, table):
    for role, wanted in (("qlearning_app", True), ("qlearning_readonly", False)):
        for privilege in ("INSERT", "UPDATE", "DELETE"):
            got = admin.execute("SELECT has_table_privilege(%s, %s, %s)", (role, table, privilege)).fetchone()[0]
            assert got is wanted, (role, table, privilege)


READS = {"get_best_action", "agentdb_retention_interval"}


@pytest.mark.parametrize(("name", "args", "result"), FUNCTIONS)
def test_app_may_execute_and_readonly_only_reads(admin, name, args, result):
    types = ", ".join(a.split(" ", 1)[1] for a in args.split(", ")) if args else ""
    signature = f"{name}({types})"
    # get_best_action and the TTL are plain reads, so the readonly role may run them too
    for role, wanted in (("qlearning_app", True), ("qlearning_readonly", name in READS)):
        query = "SELECT has_function_privilege(%s, %s, 'EXECUTE')"
        assert admin.execute(query, (role, signature)).fetchone()[0] is wanted, (role, signature)


@pytest.mark.parametrize(
    "call",
    [
        "upsert_q_value('test-generator', 'ro', '{}', 'ro', '{}', 0.5)",
        "q_learning_update('test-generator', 'ro', 'ro', 1, NULL)",
        "upsert_q_values('test-generator', ARRAY['ro'], ARRAY['ro'], ARRAY[0.5])",
        'insert_trajectories(\'[{"agent_type": "test-generator", "task_id": "ro"}]\')',
        "cleanup_expired_data()",
        "refresh_materialized_views()",
        "set_updated_at()",
    ],
)
def test_readonly_cannot_write_through_a_function(stack, call):
    denied = pytest.raises(errors.InsufficientPrivilege)
    with psycopg.connect(stack.dsn(KEY, role="readonly")) as conn, denied:
        conn.execute(f"SELECT {call}")
