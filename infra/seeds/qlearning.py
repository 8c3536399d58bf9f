"""Data for qlearning_db: a small sample, and seed 000's 30-day volume for load tests and benchmarks.

`agentdb seed --db qlearning --sample` calls `sample(conn)`: the seed 001 quick-start Q-value and a
small, coherent learning history. Every row has a fixed key, so running it twice changes nothing.
`agentdb seed --db qlearning --volume 30d [--scale X]` calls `volume(conn, scale, seed)`, which
replaces the learning data with the volume of seed 000's storage estimate. The 18 agent types
themselves are reference data (migration 0002), neither sample nor volume.
"""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
from psycopg import sql
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
                    Jsonb([{"action": a} for _, a, *_ in rewards]),
                    Jsonb([{"state": s} for s, *_ in rewards]),
                    Jsonb([{"reward": r} for _, _, r, *_ in rewards]),
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


# ----- volume: seed 000's "Storage Estimates (30 Days)" ------------------------------------------
# 18 agents x 100 tasks/day x 30 days; 1,000 (state, action) pairs and 50 patterns per agent type,
# 2 instances each, 10 tasks per session and 10 steps (one reward each) per trajectory.
VOLUME_30D = {
    "sessions": 5_400,
    "q_values": 18_000,
    "trajectories": 54_000,
    "patterns": 900,
    "agent_states": 36,
}
STEPS = 10
ACTIONS_PER_STATE = 5
HISTORY_DAYS = 30
VOLUME_TABLES = ["sessions", "q_values", "trajectories", "rewards", "patterns", "agent_states"]

MODULES = ["auth", "billing", "core", "api", "ui", "search", "payments", "reports", "sync", "admin"]
ACTIONS = ["generate_unit_test", "generate_property_test", "run_parallel", "rank_gaps", "mutate_input"]
PATTERN_WORDS = [
    ["Boundary value", "Arrange-Act-Assert", "Uncovered branch", "Retry flaky", "Snapshot diff",
     "Mutation guided", "Contract first", "Risk weighted", "Parallel shard", "Golden master"],
    ["unit test", "integration check", "coverage sweep", "regression gate", "load probe"],
    ["template", "strategy", "rule", "heuristic", "playbook"],
]  # fmt: skip
PATTERN_TYPES = ["test_template", "coverage_strategy", "quality_rule", "execution_plan", "triage_rule"]
REWARD_SOURCES = ["tests_passed", "coverage_up", "tests_failed", "gaps_found", "flake_detected"]


def volume_counts(scale: float = 1.0) -> dict[str, int]:
    """Rows per table for `scale` times the 30-day volume (rewards are STEPS per trajectory)."""
    if isinstance(scale, bool) or not isinstance(scale, int | float) or not scale > 0:
        raise ValueError(f"scale must be a number greater than 0, got {scale!r}")
    counts = {table: max(1, round(rows * scale)) for table, rows in VOLUME_30D.items()}
    counts["rewards"] = counts["trajectories"] * STEPS
    return counts


def _u(salt: str, *parts: str) -> str:
    """SQL for a number in [0, 1) fixed by (seed, salt, parts): 48 bits of md5, no session state."""
    key = " || ':' || ".join(parts)
    return f"(('x' || substr(md5(%(seed)s::text || ':{salt}:' || {key}), 1, 12))::bit(48)::bigint / 281474976710656.0)"


def _hash(kind: str, *parts: str) -> str:
    """SQL for a SHA-256 hex key (the seeds' state_hash / action_hash) of readable parts."""
    key = " || ':' || ".join(parts)
    return f"encode(sha256(convert_to('{kind}:' || {key}, 'UTF8')), 'hex')"


# Keys in insertion order (kind, seed, row number) keep every B-tree insert at the right-hand edge.
_UUID_KINDS = {"session": "5e55", "trajectory": "7a1e", "pattern": "9a77"}


def _uuid(kind: str, part: str) -> str:
    return (
        f"(lpad(to_hex(%(seed)s::bigint %% 4294967296), 8, '0') || '-{_UUID_KINDS[kind]}-4000-8000-'"
        f" || lpad(to_hex(({part})::bigint), 12, '0'))::uuid"
    )


# Sessions: oldest first across the window, one agent type after another; the newest are active.
_SESSIONS_SQL = f"""
INSERT INTO sessions (session_id, agent_type, session_name, start_time, end_time, status, task_count,
                      environment, metadata)
SELECT {_uuid("session", "g.i")},
       (%(agents)s::text[])[1 + (g.i - 1) %% %(n_agents)s],
       'volume session ' || g.i,
       s.start_time,
       CASE WHEN s.start_time > %(anchor)s - interval '2 hours' THEN NULL
            ELSE s.start_time + interval '100 minutes' END,
       CASE WHEN s.start_time > %(anchor)s - interval '2 hours' THEN 'active'
            WHEN {_u("session_failed", "g.i")} < 0.05 THEN 'failed'
            ELSE 'completed' END,
       %(tasks_per_session)s,
       (ARRAY['development', 'staging', 'production'])[1 + floor({_u("env", "g.i")} * 3)::int],
       jsonb_build_object('volume', true, 'batch', g.i %% 100)
  FROM generate_series(1, %(sessions)s) AS g (i)
 CROSS JOIN LATERAL (
       SELECT %(anchor)s - make_interval(secs => %(days)s * 86400.0 * (%(sessions)s - g.i + 1) / %(sessions)s)
              AS start_time
 ) AS s
"""

# Q-values: per agent type, states x ACTIONS_PER_STATE pairs with SHA-256 keys.
_Q_VALUES_SQL = f"""
INSERT INTO q_values (agent_type, session_id, state_hash, state_data, action_hash, action_data, q_value,
                      visit_count, confidence_score, uncertainty, created_at, last_updated, expires_at)
SELECT (%(agents)s::text[])[1 + q.a],
       CASE WHEN {_u("q_session", "q.j")} < 0.5
            THEN {_uuid("session", "1 + ((q.j - 1) %% %(sessions)s)")} END,
       {_hash("state", "q.a", "q.st")},
       jsonb_build_object('module', (%(modules)s::text[])[1 + q.st %% cardinality(%(modules)s::text[])],
                          'complexity', (ARRAY['low', 'medium', 'high'])[1 + q.st %% 3],
                          'branch_coverage', round({_u("coverage", "q.a", "q.st")}::numeric, 3),
                          'state_index', q.st),
       {_hash("action", "q.a", "q.act")},
       jsonb_build_object('action', (%(actions)s::text[])[1 + q.act], 'framework', 'pytest', 'retries', q.act %% 3),
       round(({_u("q", "q.j")} * 2 - 1)::numeric, 6),
       q.visits,
       round(q.visits::numeric / (q.visits + 1), 4),
       round(1 / sqrt(q.visits::numeric), 4),
       q.updated - interval '1 day',
       q.updated,
       q.updated + make_interval(days => %(days)s)
  FROM (
       SELECT g.j, (g.j - 1) %% %(n_agents)s AS a,
              ((g.j - 1) / %(n_agents)s) / %(actions_per_state)s AS st,
              ((g.j - 1) / %(n_agents)s) %% %(actions_per_state)s AS act,
              1 + floor({_u("visits", "g.j")} * 50)::int AS visits,
              %(anchor)s - make_interval(secs => {_u("q_age", "g.j")} * %(days)s * 86400) AS updated
         FROM generate_series(1, %(q_values)s) AS g (j)
  ) AS q
"""

_PATTERNS_SQL = f"""
INSERT INTO patterns (pattern_id, agent_type, pattern_name, pattern_type, pattern_category, pattern_data,
                      trigger_conditions, expected_outcome, usage_count, success_count, failure_count,
                      avg_reward, confidence_score, first_seen, last_used, expires_at, metadata)
SELECT {_uuid("pattern", "p.j")},
       (%(agents)s::text[])[1 + p.a],
       (%(w1)s::text[])[1 + p.j %% cardinality(%(w1)s::text[])] || ' '
           || (%(w2)s::text[])[1 + (p.j / 3) %% cardinality(%(w2)s::text[])] || ' '
           || (%(w3)s::text[])[1 + (p.j / 7) %% cardinality(%(w3)s::text[])] || ' #' || p.j,
       (%(pattern_types)s::text[])[1 + p.j %% cardinality(%(pattern_types)s::text[])],
       (%(modules)s::text[])[1 + p.j %% cardinality(%(modules)s::text[])],
       jsonb_build_object('steps', jsonb_build_array('arrange', 'act', 'assert'),
                          'template', repeat('assert result == expected; ', 20),
                          'module', (%(modules)s::text[])[1 + p.j %% cardinality(%(modules)s::text[])]),
       jsonb_build_object('agent_type', (%(agents)s::text[])[1 + p.a], 'min_coverage', 0.5),
       jsonb_build_object('success', true, 'coverage_gain', 0.05),
       p.used, p.wins, p.used - p.wins,
       round(({_u("p_reward", "p.j")} * 1.5 - 0.25)::numeric, 4),
       round({_u("p_conf", "p.j")}::numeric, 4),
       %(anchor)s - make_interval(days => %(days)s),
       p.last_used,
       p.last_used + make_interval(days => %(days)s),
       jsonb_build_object('volume', true)
  FROM (
       SELECT g.j, (g.j - 1) %% %(n_agents)s AS a,
              10 + floor({_u("p_used", "g.j")} * 200)::int AS used,
              floor({_u("p_wins", "g.j")} * 10)::int AS wins,
              %(anchor)s - make_interval(secs => {_u("p_age", "g.j")} * %(days)s * 86400) AS last_used
         FROM generate_series(1, %(patterns)s) AS g (j)
  ) AS p
"""

# Every step of every trajectory, computed once: the trajectories' arrays and the rewards come from it.
_STEPS_SQL = f"""
CREATE TEMPORARY TABLE volume_steps ON COMMIT DROP AS
SELECT t.i, k.k, t.a, t.started_at,
       {_hash("state", "t.a", "((t.i + k.k) %% %(states_per_agent)s)")} AS state_hash,
       {_hash("action", "t.a", "((t.i * k.k) %% %(actions_per_state)s)")} AS action_hash,
       round(({_u("reward", "t.i", "k.k")} * 1.2 - 0.2)::numeric, 4) AS reward,
       {_u("reward_type", "t.i", "k.k")} AS kind
  FROM (
       SELECT g.i, (((g.i - 1) %% %(sessions)s)) %% %(n_agents)s AS a,
              %(anchor)s - make_interval(secs => %(days)s * 86400.0
                  * (%(sessions)s - ((g.i - 1) %% %(sessions)s)) / %(sessions)s)
                  + make_interval(mins => 10 * ((g.i - 1) / %(sessions)s)) AS started_at
         FROM generate_series(1, %(trajectories)s) AS g (i)
  ) AS t
 CROSS JOIN generate_series(1, %(steps)s) AS k (k)
"""

_TRAJECTORIES_SQL = f"""
INSERT INTO trajectories (trajectory_id, agent_type, session_id, task_id, initial_state, final_state,
                          actions_taken, states_visited, step_rewards, total_reward, discounted_reward,
                          execution_time_ms, success, error_message, started_at, completed_at, expires_at,
                          metadata)
SELECT {_uuid("trajectory", "s.i")},
       (%(agents)s::text[])[1 + s.a],
       {_uuid("session", "1 + ((s.i - 1) %% %(sessions)s)")},
       'task-' || s.i,
       jsonb_build_object('module', (%(modules)s::text[])[1 + s.i %% cardinality(%(modules)s::text[])],
                          'coverage', 0.5),
       jsonb_build_object('module', (%(modules)s::text[])[1 + s.i %% cardinality(%(modules)s::text[])],
                          'coverage', 0.6, 'done', true),
       jsonb_agg(jsonb_build_object('step', s.k, 'action_hash', s.action_hash,
                                    'action', (%(actions)s::text[])[1 + (s.i * s.k) %% %(actions_per_state)s],
                                    'params', jsonb_build_object('timeout_s', 30, 'retries', 1))
                 ORDER BY s.k),
       jsonb_agg(jsonb_build_object('step', s.k, 'state_hash', s.state_hash,
                                    'tests_run', 10 * s.k, 'branch_coverage', 0.5 + s.k / 100.0)
                 ORDER BY s.k),
       jsonb_agg(jsonb_build_object('step', s.k, 'reward', s.reward) ORDER BY s.k),
       sum(s.reward),
       round(sum(s.reward * power(0.95, s.k - 1))::numeric, 4),
       100 * %(steps)s + floor(max(s.kind) * 5000)::int,
       sum(s.reward) > 0.4 * %(steps)s,
       CASE WHEN sum(s.reward) > 0.4 * %(steps)s THEN NULL ELSE 'assertion failed in step ' || %(steps)s END,
       min(s.started_at),
       min(s.started_at) + make_interval(secs => 60),
       min(s.started_at) + make_interval(days => %(days)s),
       CASE WHEN s.i %% 2 = 0 AND s.a + 1 + %(n_agents)s * (s.i %% %(patterns_per_agent)s) <= %(patterns)s
            THEN jsonb_build_object('pattern_id',
                     {_uuid("pattern", "(s.a + 1 + %(n_agents)s * (s.i %% %(patterns_per_agent)s))")})
            ELSE jsonb_build_object('volume', true) END
  FROM volume_steps AS s
 GROUP BY s.i, s.a
"""

_REWARDS_SQL = f"""
INSERT INTO rewards (agent_type, session_id, trajectory_id, state_hash, action_hash, reward_value, reward_type,
                     reward_source, observed_at, metadata)
SELECT (%(agents)s::text[])[1 + s.a],
       {_uuid("session", "1 + ((s.i - 1) %% %(sessions)s)")},
       {_uuid("trajectory", "s.i")},
       s.state_hash, s.action_hash, s.reward,
       CASE WHEN s.k = %(steps)s THEN 'terminal' WHEN s.kind < 0.3 THEN 'delayed' ELSE 'immediate' END,
       (%(sources)s::text[])[1 + floor(s.kind * cardinality(%(sources)s::text[]))::int],
       s.started_at + make_interval(secs => 6 * s.k),
       jsonb_build_object('step', s.k)
  FROM volume_steps AS s
"""

_SESSION_TOTALS_SQL = """
UPDATE sessions AS s SET total_reward = t.total
  FROM (SELECT session_id, sum(total_reward) AS total FROM trajectories GROUP BY session_id) AS t
 WHERE t.session_id = s.session_id
"""

_AGENT_STATES_SQL = f"""
INSERT INTO agent_states (agent_type, agent_instance_id, total_tasks, successful_tasks, failed_tasks,
                          total_reward, avg_reward, current_exploration_rate, current_learning_rate,
                          patterns_learned, q_values_stored, status, last_activity, metadata)
SELECT (%(agents)s::text[])[1 + x.a],
       (%(agents)s::text[])[1 + x.a] || '-' || (1 + (x.j - 1) / %(n_agents)s),
       x.total, x.wins, x.total - x.wins,
       round((x.total * 0.6)::numeric, 4), 0.6,
       0.1, 0.1,
       %(patterns_per_agent)s, %(pairs_per_agent)s,
       (ARRAY['idle', 'active', 'learning'])[1 + x.j %% 3],
       %(anchor)s - make_interval(mins => x.j),
       jsonb_build_object('volume', true)
  FROM (
       SELECT g.j, (g.j - 1) %% %(n_agents)s AS a,
              %(trajectories)s / %(agent_states)s AS total,
              floor(%(trajectories)s / %(agent_states)s * (0.7 + 0.2 * {_u("as_wins", "g.j")}))::int AS wins
         FROM generate_series(1, %(agent_states)s) AS g (j)
  ) AS x
"""


# (child table, columns, parent table, parent columns): every foreign key the volume fills. A
# reward's key is its trajectory and that trajectory's agent type (revision 0009).
_FOREIGN_KEYS = [
    ("sessions", ("agent_type",), "agent_types", ("agent_type",)),
    ("q_values", ("agent_type",), "agent_types", ("agent_type",)),
    ("q_values", ("session_id",), "sessions", ("session_id",)),
    ("trajectories", ("agent_type",), "agent_types", ("agent_type",)),
    ("trajectories", ("session_id",), "sessions", ("session_id",)),
    ("rewards", ("session_id",), "sessions", ("session_id",)),
    ("rewards", ("trajectory_id", "agent_type"), "trajectories", ("trajectory_id", "agent_type")),
    ("patterns", ("agent_type",), "agent_types", ("agent_type",)),
    ("agent_states", ("agent_type",), "agent_types", ("agent_type",)),
]


def _skip_row_by_row_foreign_keys(cur: psycopg.Cursor) -> None:
    """Bulk-load mode for this transaction when the login role may set it (a superuser).

    `session_replication_role = replica` skips the foreign-key triggers, which would otherwise run
    one lookup per row and key (1.6 million for the rewards); `_check_foreign_keys` then proves the
    same with one anti-join per key. Other roles load with the triggers on, only slower.
    """
    is_super = cur.execute("SELECT rolsuper FROM pg_roles WHERE rolname = session_user").fetchone()
    if not (is_super and is_super[0]):
        return
    role = cur.execute("SELECT current_user").fetchone()[0]
    cur.execute("RESET ROLE")
    cur.execute("SET LOCAL session_replication_role = replica")
    cur.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))


def _check_foreign_keys(cur: psycopg.Cursor) -> None:
    for child, columns, parent, keys in _FOREIGN_KEYS:
        query = sql.SQL(
            "SELECT count(*) FROM {child} AS c WHERE {not_null}"
            " AND NOT EXISTS (SELECT 1 FROM {parent} AS p WHERE {match})"
        ).format(
            child=sql.Identifier(child),
            not_null=sql.SQL(" AND ").join(sql.SQL("c.{} IS NOT NULL").format(sql.Identifier(c)) for c in columns),
            parent=sql.Identifier(parent),
            match=sql.SQL(" AND ").join(
                sql.SQL("p.{} = c.{}").format(sql.Identifier(k), sql.Identifier(c))
                for k, c in zip(keys, columns, strict=True)
            ),
        )
        orphans = cur.execute(query).fetchone()[0]
        if orphans:
            raise RuntimeError(f"qlearning volume: {orphans} {child} ({', '.join(columns)}) rows have no {parent} row")


def volume(conn: psycopg.Connection, scale: float = 1.0, seed: int = 42) -> dict[str, int]:
    """Replace the learning data with seed 000's 30-day volume times `scale`; returns rows per table.

    Set-based SQL only (one statement per table); the same seed gives the same rows, with timestamps
    counted back from the transaction time. The 18 agent types (migration 0002) stay as they are.
    The tables are analyzed; the caller commits. The views are not refreshed here: the hourly job
    `qlearning-refresh-views` locks a view and then reads the tables, so refreshing inside this
    transaction (which holds the tables since TRUNCATE) could deadlock with it. Call
    `refresh_materialized_views()` after the commit when the views must be current at once.
    """
    counts = volume_counts(scale)
    agents = [row[0] for row in conn.execute("SELECT agent_type FROM agent_types ORDER BY agent_type")]
    if not agents:
        raise ValueError("qlearning: agent_types is empty; run the migrations first (agentdb migrate)")
    n = len(agents)
    pairs_per_agent = max(1, counts["q_values"] // n)
    params: dict[str, Any] = {
        **counts,
        "seed": seed,
        "agents": agents,
        "n_agents": n,
        "days": HISTORY_DAYS,
        "steps": STEPS,
        "tasks_per_session": max(1, counts["trajectories"] // counts["sessions"]),
        "actions_per_state": ACTIONS_PER_STATE,
        "states_per_agent": max(1, -(-pairs_per_agent // ACTIONS_PER_STATE)),
        "pairs_per_agent": pairs_per_agent,
        "patterns_per_agent": max(1, -(-counts["patterns"] // n)),
        "modules": MODULES,
        "actions": ACTIONS,
        "w1": PATTERN_WORDS[0],
        "w2": PATTERN_WORDS[1],
        "w3": PATTERN_WORDS[2],
        "pattern_types": PATTERN_TYPES,
        "sources": REWARD_SOURCES,
    }
    with conn.transaction(), conn.cursor() as cur:
        params["anchor"] = cur.execute("SELECT now()").fetchone()[0]
        _skip_row_by_row_foreign_keys(cur)
        # Room to group the half-million steps in memory instead of spilling sorts to disk.
        cur.execute("SET LOCAL work_mem = '256MB'")
        cur.execute("SET LOCAL temp_buffers = '256MB'")
        cur.execute(f"TRUNCATE {', '.join(VOLUME_TABLES)} RESTART IDENTITY")
        for statement in (
            _SESSIONS_SQL,
            _Q_VALUES_SQL,
            _PATTERNS_SQL,
            _STEPS_SQL,
            _TRAJECTORIES_SQL,
            _REWARDS_SQL,
            _SESSION_TOTALS_SQL,
            _AGENT_STATES_SQL,
        ):
            cur.execute(statement, params)
        cur.execute("DROP TABLE volume_steps")
        _check_foreign_keys(cur)
        cur.execute(f"ANALYZE {', '.join(VOLUME_TABLES)}")
    return counts
