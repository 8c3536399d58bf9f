"""Sample data for qlearning_db: the seed 001 quick-start Q-value and a small, coherent learning history.

`agentdb seed --db qlearning --sample` calls `sample(conn)`. Every row has a fixed key, so running it
twice changes nothing. The 18 agent types themselves are reference data (migration 0002), not samples.
"""

from __future__ import annotations

import uuid

import psycopg
from psycopg.types.json import Jsonb

# Fixed keys make the sample idempotent: uuid5 of a readable name in one namespace.
_NS = uuid.UUID("6f1d3c2a-8e4b-4a7d-9c61-2b5e0f9a7d13")


def _id(name: str) -> uuid.UUID:
    return uuid.uuid5(_NS, name)


# (name, agent_type, label, status, environment, hours_ago)
SESSIONS = [
    ("auth-testgen", "test-generator", "Auth module test generation", "completed", "development", 3),
    ("core-coverage", "coverage-analyzer", "Core coverage gap analysis", "completed", "staging", 2),
    ("nightly-run", "test-executor", "Nightly unit suite", "active", "development", 1),
]

# The quick-start call of seed 001 first, then a few estimates per agent:
# (agent_type, session, state_hash, state_data, action_hash, action_data, q_value)
Q_VALUES = [
    ("test-generator", None, "abc123", {"module": "auth"}, "def456", {"action": "generate_test"}, 0.85),
    (
        "test-generator",
        "auth-testgen",
        "st-auth-hi",
        {"module": "auth", "complexity": "high"},
        "act-unit",
        {"action": "generate_unit_test", "framework": "pytest"},
        0.81,
    ),
    (
        "test-generator",
        "auth-testgen",
        "st-auth-hi",
        {"module": "auth", "complexity": "high"},
        "act-prop",
        {"action": "generate_property_test", "framework": "hypothesis"},
        0.64,
    ),
    (
        "coverage-analyzer",
        "core-coverage",
        "st-core-branch",
        {"module": "core", "branch_coverage": 0.58},
        "act-gaps",
        {"action": "rank_gaps", "by": "risk"},
        0.92,
    ),
    (
        "test-executor",
        "nightly-run",
        "st-suite-unit",
        {"suite": "unit", "workers": 4},
        "act-parallel",
        {"action": "run_parallel", "retries": 1},
        0.70,
    ),
]

# (name, agent_type, session, task_id, success, total_reward, execution_time_ms, pattern, rewards)
TRAJECTORIES = [
    (
        "traj-auth-1",
        "test-generator",
        "auth-testgen",
        "task-auth-login",
        True,
        0.9,
        1800,
        "aaa-unit",
        [
            ("st-auth-hi", "act-unit", 0.5, "immediate", "tests_passed"),
            ("st-auth-hi", "act-unit", 0.4, "terminal", "coverage_up"),
        ],
    ),
    (
        "traj-auth-2",
        "test-generator",
        "auth-testgen",
        "task-auth-logout",
        False,
        -0.2,
        2400,
        "aaa-unit",
        [("st-auth-hi", "act-prop", -0.2, "terminal", "tests_failed")],
    ),
    (
        "traj-core-1",
        "coverage-analyzer",
        "core-coverage",
        "task-core-gaps",
        True,
        1.1,
        900,
        "branch-first",
        [
            ("st-core-branch", "act-gaps", 0.6, "immediate", "gaps_found"),
            ("st-core-branch", "act-gaps", 0.5, "delayed", "gaps_closed"),
        ],
    ),
]

# (name, agent_type, pattern_name, pattern_type, category, usage, successes, failures, avg_reward, confidence)
PATTERNS = [
    (
        "aaa-unit",
        "test-generator",
        "Arrange-Act-Assert unit test",
        "test_template",
        "unit_testing",
        12,
        10,
        2,
        0.62,
        0.83,
    ),
    (
        "branch-first",
        "coverage-analyzer",
        "Uncovered branches first",
        "coverage_strategy",
        "gap_analysis",
        9,
        8,
        1,
        0.81,
        0.88,
    ),
    (
        "retry-flaky",
        "test-executor",
        "Retry once before failing",
        "quality_rule",
        "stability",
        4,
        2,
        1,
        0.20,
        0.40,
    ),
]

# (instance, agent_type, total, successes, failures, total_reward, status)
AGENT_STATES = [
    ("test-generator-1", "test-generator", 20, 17, 3, 13.6, "idle"),
    ("coverage-analyzer-1", "coverage-analyzer", 11, 10, 1, 9.2, "active"),
    ("test-executor-1", "test-executor", 30, 27, 3, 21.0, "learning"),
]


def sample(conn: psycopg.Connection) -> None:
    """Load the sample rows (idempotent) and refresh the views; the caller commits."""
    with conn.transaction(), conn.cursor() as cur:
        for name, agent, label, status, env, hours in SESSIONS:
            cur.execute(
                """
                INSERT INTO sessions (session_id, agent_type, session_name, start_time, end_time, status,
                                      task_count, environment, metadata)
                VALUES (%s, %s, %s, now() - make_interval(hours => %s),
                        CASE WHEN %s = 'active' THEN NULL ELSE now() - make_interval(hours => %s - 1) END,
                        %s, 2, %s, %s)
                ON CONFLICT (session_id) DO NOTHING
                """,
                (_id(name), agent, label, hours, status, hours, status, env, Jsonb({"sample": True})),
            )
        for agent, session, s_hash, s_data, a_hash, a_data, q in Q_VALUES:
            cur.execute(
                """
                INSERT INTO q_values (agent_type, session_id, state_hash, state_data, action_hash,
                                      action_data, q_value)
                VALUES (%s, %s, %s, %s, %s, %s, %s)
                ON CONFLICT (agent_type, state_hash, action_hash) DO NOTHING
                """,
                (agent, session and _id(session), s_hash, Jsonb(s_data), a_hash, Jsonb(a_data), q),
            )
        for name, agent, session, task, ok, total, ms, pattern, rewards in TRAJECTORIES:
            cur.execute(
                """
                INSERT INTO trajectories (trajectory_id, agent_type, session_id, task_id, initial_state,
                                          final_state, actions_taken, states_visited, step_rewards,
                                          total_reward, discounted_reward, execution_time_ms, success,
                                          error_message, started_at, completed_at, metadata)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,
                        now() - interval '1 hour',
                        now() - interval '1 hour' + make_interval(secs => %s / 1000.0), %s)
                ON CONFLICT (trajectory_id) DO NOTHING
                """,
                (
                    _id(name),
                    agent,
                    _id(session),
                    task,
                    Jsonb({"task": task}),
                    Jsonb({"task": task, "done": True}),
                    [Jsonb({"action": a}) for _, a, *_ in rewards],
                    [Jsonb({"state": s}) for s, *_ in rewards],
                    [Jsonb({"reward": r}) for _, _, r, *_ in rewards],
                    total,
                    round(total * 0.95, 4),
                    ms,
                    ok,
                    None if ok else "assertion failed",
                    ms,
                    Jsonb({"pattern_id": str(_id(pattern))}),
                ),
            )
            for step, (s_hash, a_hash, value, kind, source) in enumerate(rewards):
                cur.execute(
                    """
                    INSERT INTO rewards (agent_type, session_id, trajectory_id, state_hash, action_hash,
                                         reward_value, reward_type, reward_source, metadata)
                    SELECT %s, %s, %s, %s, %s, %s, %s, %s, %s
                    WHERE NOT EXISTS (SELECT 1 FROM rewards WHERE trajectory_id = %s AND metadata @> %s)
                    """,
                    (
                        agent,
                        _id(session),
                        _id(name),
                        s_hash,
                        a_hash,
                        value,
                        kind,
                        source,
                        Jsonb({"step": step}),
                        _id(name),
                        Jsonb({"step": step}),
                    ),
                )
        for name, agent, p_name, p_type, category, used, wins, losses, avg, conf in PATTERNS:
            cur.execute(
                """
                INSERT INTO patterns (pattern_id, agent_type, pattern_name, pattern_type, pattern_category,
                                      pattern_data, trigger_conditions, expected_outcome, usage_count,
                                      success_count, failure_count, avg_reward, confidence_score, last_used)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now() - interval '2 hours')
                ON CONFLICT (pattern_id) DO NOTHING
                """,
                (
                    _id(name),
                    agent,
                    p_name,
                    p_type,
                    category,
                    Jsonb({"name": p_name}),
                    Jsonb({"agent": agent}),
                    Jsonb({"success": True}),
                    used,
                    wins,
                    losses,
                    avg,
                    conf,
                ),
            )
        for instance, agent, total, wins, losses, reward, status in AGENT_STATES:
            cur.execute(
                """
                INSERT INTO agent_states (agent_type, agent_instance_id, total_tasks, successful_tasks,
                                          failed_tasks, total_reward, avg_reward, status, last_activity)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, now())
                ON CONFLICT (agent_type, agent_instance_id) DO NOTHING
                """,
                (agent, instance, total, wins, losses, reward, round(reward / total, 4), status),
            )
        cur.execute("SELECT refresh_materialized_views()")
