"""Every qlearning_db constraint rejects its bad input with an error naming the field, and writes nothing."""

from __future__ import annotations

import uuid

import psycopg
import pytest

KEY = "qlearning"
MARK = "qa-bad-input"  # every row these tests try to write carries this marker
TRAJECTORY_ID = uuid.uuid5(uuid.NAMESPACE_URL, "agentdb/tests/qlearning/bad-input")

# A valid row per table; each case replaces one column with a bad value.
VALID = {
    "agent_types": {"agent_type": f"'{MARK}'", "display_name": "'Bad input'"},
    "sessions": {"agent_type": "'test-generator'", "session_name": f"'{MARK}'"},
    "q_values": {
        "agent_type": "'test-generator'",
        "state_hash": f"'{MARK}'",
        "action_hash": "'a'",
        "q_value": "0.5",
    },
    "trajectories": {"agent_type": "'test-generator'", "task_id": f"'{MARK}'"},
    "rewards": {
        "agent_type": "'test-generator'",
        "trajectory_id": f"'{TRAJECTORY_ID}'",
        "state_hash": f"'{MARK}'",
        "action_hash": "'a'",
        "reward_value": "1",
    },
    "patterns": {
        "agent_type": "'test-generator'",
        "pattern_name": f"'{MARK}'",
        "pattern_type": "'test_template'",
        "pattern_data": "'{}'",
    },
    "agent_states": {"agent_type": "'test-generator'", "agent_instance_id": f"'{MARK}'"},
}

# Where to look for a written row: the column that carries the marker.
MARKER_COLUMN = {
    "agent_types": "agent_type",
    "sessions": "session_name",
    "q_values": "state_hash",
    "trajectories": "task_id",
    "rewards": "state_hash",
    "patterns": "pattern_name",
    "agent_states": "agent_instance_id",
}

NOT_NULL, CHECK, FOREIGN_KEY, OVERFLOW = "23502", "23514", "23503", "22003"

# (table, column, bad SQL value, SQLSTATE, text the error must contain: the field or its rule)
CASES = [
    # NULL or empty keys
    ("agent_types", "agent_type", "NULL", NOT_NULL, "agent_type"),
    ("agent_types", "agent_type", "''", CHECK, "agent_types_agent_type_not_blank"),
    ("agent_types", "agent_type", "'   '", CHECK, "agent_types_agent_type_not_blank"),
    ("agent_types", "display_name", "''", CHECK, "agent_types_display_name_not_blank"),
    ("sessions", "agent_type", "NULL", NOT_NULL, "agent_type"),
    ("q_values", "agent_type", "NULL", NOT_NULL, "agent_type"),
    ("q_values", "state_hash", "NULL", NOT_NULL, "state_hash"),
    ("q_values", "state_hash", "''", CHECK, "q_values_state_hash_not_blank"),
    ("q_values", "action_hash", "NULL", NOT_NULL, "action_hash"),
    ("q_values", "action_hash", "' '", CHECK, "q_values_action_hash_not_blank"),
    ("trajectories", "task_id", "NULL", NOT_NULL, "task_id"),
    ("trajectories", "task_id", "''", CHECK, "trajectories_task_id_not_blank"),
    ("rewards", "trajectory_id", "NULL", NOT_NULL, "trajectory_id"),
    ("rewards", "state_hash", "''", CHECK, "rewards_state_hash_not_blank"),
    ("rewards", "action_hash", "NULL", NOT_NULL, "action_hash"),
    ("patterns", "pattern_name", "''", CHECK, "patterns_pattern_name_not_blank"),
    ("patterns", "pattern_name", "NULL", NOT_NULL, "pattern_name"),
    ("agent_states", "agent_instance_id", "''", CHECK, "agent_states_agent_instance_id_not_blank"),
    # unknown agent_type (and other unknown parents)
    ("sessions", "agent_type", "'no-such-agent'", FOREIGN_KEY, "sessions_agent_type_fkey"),
    ("q_values", "agent_type", "'no-such-agent'", FOREIGN_KEY, "q_values_agent_type_fkey"),
    ("q_values", "agent_type", "''", FOREIGN_KEY, "q_values_agent_type_fkey"),
    ("trajectories", "agent_type", "'no-such-agent'", FOREIGN_KEY, "trajectories_agent_type_fkey"),
    # A reward's key is (its trajectory, that trajectory's agent type) since revision 0009.
    ("rewards", "agent_type", "'no-such-agent'", FOREIGN_KEY, "rewards_trajectory_id_agent_type_fkey"),
    ("rewards", "agent_type", "'test-executor'", FOREIGN_KEY, "rewards_trajectory_id_agent_type_fkey"),
    ("patterns", "agent_type", "'no-such-agent'", FOREIGN_KEY, "patterns_agent_type_fkey"),
    ("agent_states", "agent_type", "'no-such-agent'", FOREIGN_KEY, "agent_states_agent_type_fkey"),
    ("rewards", "trajectory_id", f"'{uuid.UUID(int=1)}'", FOREIGN_KEY, "rewards_trajectory_id_agent_type_fkey"),
    ("q_values", "session_id", f"'{uuid.UUID(int=1)}'", FOREIGN_KEY, "q_values_session_id_fkey"),
    (
        "patterns",
        "parent_pattern_id",
        f"'{uuid.UUID(int=1)}'",
        FOREIGN_KEY,
        "patterns_parent_pattern_id_fkey",
    ),
    # q_value NaN or infinite (infinity cannot fit the column's precision)
    ("q_values", "q_value", "'NaN'", CHECK, "q_values_q_value_finite"),
    ("q_values", "q_value", "'Infinity'", OVERFLOW, "infinite"),
    ("q_values", "q_value", "'-Infinity'", OVERFLOW, "infinite"),
    ("q_values", "q_value", "NULL", NOT_NULL, "q_value"),
    ("rewards", "reward_value", "'NaN'", CHECK, "rewards_reward_value_finite"),
    ("trajectories", "total_reward", "'NaN'", CHECK, "trajectories_total_reward_finite"),
    ("patterns", "avg_reward", "'NaN'", CHECK, "patterns_avg_reward_finite"),
    ("sessions", "total_reward", "'NaN'", CHECK, "sessions_total_reward_finite"),
    # confidence / uncertainty / rates outside 0..1
    ("q_values", "confidence_score", "1.01", CHECK, "q_values_confidence_score_range"),
    ("q_values", "confidence_score", "-0.01", CHECK, "q_values_confidence_score_range"),
    ("q_values", "confidence_score", "'NaN'", CHECK, "q_values_confidence_score_range"),
    ("q_values", "uncertainty", "1.5", CHECK, "q_values_uncertainty_range"),
    ("q_values", "uncertainty", "-0.5", CHECK, "q_values_uncertainty_range"),
    ("patterns", "confidence_score", "2", CHECK, "patterns_confidence_score_range"),
    ("patterns", "confidence_score", "-1", CHECK, "patterns_confidence_score_range"),
    ("agent_types", "learning_rate", "0", CHECK, "agent_types_learning_rate_range"),
    ("agent_types", "learning_rate", "1.5", CHECK, "agent_types_learning_rate_range"),
    ("agent_types", "discount_factor", "1.1", CHECK, "agent_types_discount_factor_range"),
    ("agent_types", "exploration_rate", "-0.1", CHECK, "agent_types_exploration_rate_range"),
    ("agent_states", "current_exploration_rate", "1.5", CHECK, "agent_states_exploration_rate_range"),
    ("agent_states", "current_learning_rate", "-0.5", CHECK, "agent_states_learning_rate_range"),
    # status / reward_type / environment outside their sets
    ("sessions", "status", "'running'", CHECK, "sessions_status_valid"),
    ("sessions", "status", "'ACTIVE'", CHECK, "sessions_status_valid"),
    ("sessions", "environment", "'qa'", CHECK, "sessions_environment_valid"),
    ("agent_states", "status", "'sleeping'", CHECK, "agent_states_status_valid"),
    ("rewards", "reward_type", "'bonus'", CHECK, "rewards_reward_type_valid"),
    ("rewards", "reward_type", "NULL", NOT_NULL, "reward_type"),
    # negative counts
    ("sessions", "task_count", "-1", CHECK, "sessions_task_count_non_negative"),
    ("q_values", "visit_count", "-1", CHECK, "q_values_visit_count_non_negative"),
    ("trajectories", "execution_time_ms", "-5", CHECK, "trajectories_execution_time_ms_non_negative"),
    # A trajectory's actions, states and step rewards are each one JSON array (issue 18).
    ("trajectories", "actions_taken", """'{"step": 1}'""", CHECK, "trajectories_actions_taken_is_array"),
    ("trajectories", "states_visited", "'\"s1\"'", CHECK, "trajectories_states_visited_is_array"),
    ("trajectories", "step_rewards", "'0.5'", CHECK, "trajectories_step_rewards_is_array"),
    ("trajectories", "step_rewards", "'null'", CHECK, "trajectories_step_rewards_is_array"),
    ("trajectories", "actions_taken", "NULL", NOT_NULL, "actions_taken"),
    ("patterns", "usage_count", "-1", CHECK, "usage_count"),
    ("patterns", "success_count", "-1", CHECK, "patterns_success_count_non_negative"),
    ("patterns", "failure_count", "-1", CHECK, "patterns_failure_count_non_negative"),
    ("patterns", "success_count", "3", CHECK, "patterns_usage_count_covers_outcomes"),
    ("patterns", "version", "0", CHECK, "patterns_version_positive"),
    ("agent_states", "total_tasks", "-1", CHECK, "total_tasks"),
    ("agent_states", "successful_tasks", "-1", CHECK, "agent_states_successful_tasks_non_negative"),
    ("agent_states", "failed_tasks", "-1", CHECK, "agent_states_failed_tasks_non_negative"),
    ("agent_states", "successful_tasks", "5", CHECK, "agent_states_total_tasks_covers_outcomes"),
    ("agent_states", "patterns_learned", "-1", CHECK, "agent_states_patterns_learned_non_negative"),
    ("agent_states", "q_values_stored", "-1", CHECK, "agent_states_q_values_stored_non_negative"),
    ("agent_types", "state_space_dimensions", "-1", CHECK, "agent_types_state_space_dimensions_positive"),
    ("agent_types", "action_space_dimensions", "0", CHECK, "agent_types_action_space_dimensions_positive"),
    # time order
    ("sessions", "end_time", "now() - interval '1 day'", CHECK, "sessions_end_after_start"),
    (
        "trajectories",
        "completed_at",
        "now() - interval '1 day'",
        CHECK,
        "trajectories_completed_after_started",
    ),
]


def _case_id(case: tuple) -> str:
    table, column, value, *_ = case
    return f"{table}.{column}={value}"


@pytest.fixture(scope="module")
def app(stack):
    """The app role's connection, with a parent trajectory for the rewards cases."""
    with psycopg.connect(stack.dsn(KEY, role="app"), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO trajectories (trajectory_id, agent_type, task_id) VALUES (%s, 'test-generator', %s) "
            "ON CONFLICT DO NOTHING",
            (TRAJECTORY_ID, "qa-bad-input-parent"),
        )
        yield conn
        conn.execute("DELETE FROM trajectories WHERE trajectory_id = %s", (TRAJECTORY_ID,))


def _count(conn: psycopg.Connection, table: str) -> int:
    return conn.execute(f"SELECT count(*) FROM {table} WHERE {MARKER_COLUMN[table]} = %s", (MARK,)).fetchone()[0]


def test_the_valid_rows_are_accepted(app):
    """The baseline of every case: without the bad value each row is written (then removed)."""
    for table, row in VALID.items():
        with pytest.raises(_Rollback), app.transaction():
            app.execute(f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join(row.values())})")
            assert _count(app, table) == 1, table
            raise _Rollback


class _Rollback(Exception):
    pass


@pytest.mark.parametrize(("table", "column", "value", "sqlstate", "names"), CASES, ids=map(_case_id, CASES))
def test_bad_input_is_rejected_and_nothing_is_written(app, table, column, value, sqlstate, names):
    row = dict(VALID[table], **{column: value})
    if column == "success_count" and table == "patterns":
        row["usage_count"] = "2"
    if column == "successful_tasks" and value == "5":
        row["total_tasks"] = "4"
    if column == "end_time":
        row["start_time"] = "now()"
    if column == "completed_at":
        row["started_at"] = "now()"
    with pytest.raises(psycopg.Error) as caught:
        app.execute(f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join(row.values())})")
    err = caught.value
    assert err.sqlstate == sqlstate, err
    text = " ".join(filter(None, [err.diag.message_primary, err.diag.message_detail, err.diag.constraint_name]))
    assert names in text, text
    assert _count(app, table) == 0


# The functions validate their arguments before writing: (call, SQLSTATE, text the error must contain).
FUNCTION_CASES = [
    ("upsert_q_value(NULL, 'qa-fn', '{}', 'a', '{}', 0.5)", NOT_NULL, "agent_type"),
    ("upsert_q_value('', 'qa-fn', '{}', 'a', '{}', 0.5)", NOT_NULL, "agent_type"),
    ("upsert_q_value('test-generator', NULL, '{}', 'a', '{}', 0.5)", NOT_NULL, "state_hash"),
    ("upsert_q_value('test-generator', '', '{}', 'a', '{}', 0.5)", NOT_NULL, "state_hash"),
    ("upsert_q_value('test-generator', 'qa-fn', '{}', NULL, '{}', 0.5)", NOT_NULL, "action_hash"),
    ("upsert_q_value('test-generator', 'qa-fn', '{}', ' ', '{}', 0.5)", NOT_NULL, "action_hash"),
    ("upsert_q_value('no-such-agent', 'qa-fn', '{}', 'a', '{}', 0.5)", FOREIGN_KEY, "agent_type"),
    ("upsert_q_value('test-generator', 'qa-fn', '{}', 'a', '{}', 'NaN')", "22023", "q_value"),
    ("upsert_q_value('test-generator', 'qa-fn', '{}', 'a', '{}', 'Infinity')", "22023", "q_value"),
    ("upsert_q_value('test-generator', 'qa-fn', '{}', 'a', '{}', '-Infinity')", "22023", "q_value"),
    ("upsert_q_value('test-generator', 'qa-fn', '{}', 'a', '{}', NULL)", "22023", "q_value"),
    ("q_learning_update(NULL, 'qa-fn', 'a', 1, NULL)", NOT_NULL, "agent_type"),
    ("q_learning_update('test-generator', '', 'a', 1, NULL)", NOT_NULL, "state_hash"),
    ("q_learning_update('test-generator', 'qa-fn', NULL, 1, NULL)", NOT_NULL, "action_hash"),
    ("q_learning_update('test-generator', 'qa-fn', 'a', 1, '')", CHECK, "next_state_hash"),
    ("q_learning_update('no-such-agent', 'qa-fn', 'a', 1, NULL)", FOREIGN_KEY, "agent_type"),
    ("q_learning_update('test-generator', 'qa-fn', 'a', 'NaN', NULL)", "22023", "reward"),
    ("q_learning_update('test-generator', 'qa-fn', 'a', 'Infinity', NULL)", "22023", "reward"),
    ("q_learning_update('test-generator', 'qa-fn', 'a', NULL, NULL)", "22023", "reward"),
    ("cleanup_expired_data(0)", "22023", "batch_size"),
    ("cleanup_expired_data(10, 0)", "22023", "max_batches"),
]


@pytest.mark.parametrize(("call", "sqlstate", "names"), FUNCTION_CASES, ids=[c[0] for c in FUNCTION_CASES])
def test_function_rejects_bad_arguments_and_writes_nothing(app, call, sqlstate, names):
    with pytest.raises(psycopg.Error) as caught:
        app.execute(f"SELECT * FROM {call}")
    err = caught.value
    assert err.sqlstate == sqlstate, err
    assert names in err.diag.message_primary, err.diag.message_primary
    assert app.execute("SELECT count(*) FROM q_values WHERE state_hash IN ('qa-fn', '')").fetchone()[0] == 0
