"""Sample data for ai_agent_orchestrator: the development set of seed 002's "Seed Data" section.

`agentdb seed --db orchestrator --sample` calls `sample(conn)`: 10 agents of various tiers and types,
10 tasks in various states, 10 achievements, 3 voting sessions, 3 brainstorm sessions, trust
relationships, battles, leaderboards and mentorship pairings. Rows go in through the schema's own
triggers and functions (task completion, points, Elo, EigenTrust, tallies), so the derived columns are
what the system itself would compute. The set is loaded once: a second call finds agent-01 and stops.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import psycopg
from psycopg.types.json import Jsonb

_NS = uuid.UUID("3b8f2c61-5d1e-4c0a-9a7e-62f4d8b1c905")


def _id(name: str) -> uuid.UUID:
    """A fixed key per readable name, so the sample is the same on every machine."""
    return uuid.uuid5(_NS, name)


# (key, name, type, status, total_points, tier, elo_rating)
AGENTS = [
    ("agent-01", "Atlas", "team-leader", "active", 42000, "diamond", 1510),
    ("agent-02", "Beacon", "coordinator", "active", 16500, "platinum", 1420),
    ("agent-03", "Cipher", "specialist", "busy", 7200, "gold", 1380),
    ("agent-04", "Delta", "worker", "active", 5400, "gold", 1290),
    ("agent-05", "Echo", "worker", "idle", 2600, "silver", 1240),
    ("agent-06", "Flux", "reviewer", "active", 1800, "silver", 1210),
    ("agent-07", "Glyph", "researcher", "active", 900, "bronze", 1180),
    ("agent-08", "Helix", "worker", "idle", 400, "bronze", 1150),
    ("agent-09", "Ion", "worker", "offline", 150, "bronze", 1120),
    ("agent-10", "Jade", "specialist", "active", 6100, "gold", 1330),
]

# (key, title, priority, final status, assignee, quality, minutes taken, points)
TASKS = [
    ("task-01", "Summarise incident report", "high", "completed", "agent-03", 92, 12, 50),
    ("task-02", "Refactor billing module", "critical", "completed", "agent-04", 85, 45, 120),
    ("task-03", "Write onboarding guide", "medium", "completed", "agent-05", 78, 30, 40),
    ("task-04", "Triage flaky tests", "high", "failed", "agent-08", None, 20, 60),
    ("task-05", "Review pull request 481", "medium", "in_progress", "agent-06", None, None, 30),
    ("task-06", "Benchmark vector search", "low", "assigned", "agent-10", None, None, 25),
    ("task-07", "Plan Q3 roadmap", "high", "pending", None, None, None, 80),
    ("task-08", "Translate FAQ", "low", "pending", None, None, None, 15),
    ("task-09", "Migrate cron jobs", "medium", "completed", "agent-03", 88, 25, 45),
    ("task-10", "Audit access logs", "critical", "cancelled", None, None, None, 70),
]

# (key, name, category, points, rarity)
ACHIEVEMENTS = [
    ("first-task", "First Steps", "performance", 10, "common"),
    ("ten-tasks", "Getting Things Done", "performance", 50, "common"),
    ("quality-90", "Craftsmanship", "performance", 100, "uncommon"),
    ("team-player", "Team Player", "collaboration", 40, "common"),
    ("idea-machine", "Idea Machine", "innovation", 60, "uncommon"),
    ("iron-streak", "Iron Streak", "reliability", 150, "rare"),
    ("battle-victor", "Victor", "performance", 80, "uncommon"),
    ("mentor", "Guiding Light", "leadership", 120, "rare"),
    ("quick-learner", "Quick Learner", "learning", 30, "common"),
    ("legend", "Living Legend", "special", 500, "legendary"),
]

# (from, to, local_trust, interactions)
TRUST = [
    ("agent-01", "agent-02", 0.9, 40),
    ("agent-01", "agent-03", 0.8, 25),
    ("agent-02", "agent-01", 0.95, 38),
    ("agent-02", "agent-04", 0.6, 12),
    ("agent-03", "agent-01", 0.85, 20),
    ("agent-03", "agent-10", 0.7, 9),
    ("agent-04", "agent-03", 0.75, 14),
    ("agent-05", "agent-04", 0.5, 6),
    ("agent-06", "agent-03", 0.8, 11),
    ("agent-07", "agent-06", 0.4, 3),
    ("agent-08", "agent-05", 0.3, 2),
    ("agent-10", "agent-03", 0.9, 16),
    ("agent-10", "agent-01", 0.7, 8),
    ("agent-09", "agent-08", 0.2, 1),
]


def sample(conn: psycopg.Connection) -> None:
    """Load the development data set once (a no-op when agent-01 exists)."""
    if conn.execute("SELECT 1 FROM agents WHERE agent_id = 'agent-01'").fetchone():
        return
    a = {key: _id(key) for key, *_ in AGENTS}
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO agents (id, agent_id, name, type, status, total_points, current_tier,"
            " elo_rating, metadata)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [(a[k], k, n, t, s, p, tier, elo, Jsonb({"sample": True})) for k, n, t, s, p, tier, elo in AGENTS],
        )
        cur.executemany(
            "INSERT INTO agent_skills (agent_id, skill_name, proficiency) VALUES (%s, %s, %s)",
            [(a[k], skill, 60 + 4 * i) for i, (k, *_) in enumerate(AGENTS) for skill in ("planning", "python")],
        )
        cur.execute(
            "INSERT INTO teams (id, name, leader_id) VALUES (%s, 'Core', %s)",
            (_id("team-core"), a["agent-01"]),
        )
        cur.executemany(
            "INSERT INTO team_members (team_id, agent_id) VALUES (%s, %s)",
            [(_id("team-core"), a[k]) for k in ("agent-01", "agent-03", "agent-04", "agent-05")],
        )

        # Tasks go through their lifecycle so the completion trigger computes each agent's stats.
        for key, title, prio, status, who, quality, minutes, points in TASKS:
            tid = _id(key)
            first = status if status in ("pending", "assigned", "in_progress") else "in_progress" if who else "pending"
            started = timedelta(minutes=minutes) if minutes else None
            cur.execute(
                "INSERT INTO tasks (id, task_id, title, priority, points_reward, assigned_to,"
                " status, started_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, now() - %s::interval)",
                (tid, key, title, prio, points, a.get(who), first, started),
            )
            if status != first:
                cur.execute(
                    "UPDATE tasks SET status = %s, quality_score = %s, completed_at = now() WHERE id = %s",
                    (status, quality, tid),
                )
        cur.execute(
            "INSERT INTO task_dependencies (task_id, depends_on_task_id) VALUES (%s, %s)",
            (_id("task-08"), _id("task-03")),
        )

        cur.executemany(
            "INSERT INTO achievements (id, achievement_id, name, category, points_reward, rarity,"
            " requirements)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)",
            [(_id(k), k, n, c, p, r, Jsonb({"key": k})) for k, n, c, p, r in ACHIEVEMENTS],
        )
        cur.executemany(
            "INSERT INTO agent_achievements (agent_id, achievement_id) VALUES (%s, %s)",
            [
                (a["agent-03"], _id("first-task")),
                (a["agent-04"], _id("first-task")),
                (a["agent-01"], _id("mentor")),
                (a["agent-03"], _id("quality-90")),
            ],
        )

        # Voting: one closed by simple majority, one open weighted, one ranked choice closed.
        options = Jsonb(["postgres", "mysql", "sqlite"])
        for key, algo in (
            ("vote-db", "simple_majority"),
            ("vote-budget", "weighted"),
            ("vote-name", "ranked_choice"),
        ):
            cur.execute(
                "INSERT INTO voting_sessions (id, session_id, topic, algorithm, options, created_by)"
                " VALUES (%s, %s, %s, %s, %s, %s)",
                (_id(key), key, f"Sample decision {key}", algo, options, a["agent-01"]),
            )
        ballots = [
            ("agent-01", "postgres", ["postgres", "sqlite"]),
            ("agent-02", "postgres", ["postgres", "mysql"]),
            ("agent-03", "mysql", ["mysql", "postgres"]),
            ("agent-04", "sqlite", ["sqlite", "postgres"]),
            ("agent-05", "postgres", ["postgres"]),
        ]
        for session in ("vote-db", "vote-budget", "vote-name"):
            cur.executemany(
                "INSERT INTO votes (session_id, agent_id, vote_option, ranking, confidence, weight,"
                " tokens_spent)"
                " VALUES (%s, %s, %s, %s, 0.9, 1.0, 4)",
                [(_id(session), a[k], opt, rank) for k, opt, rank in ballots],
            )
        cur.execute("SELECT close_voting_session(%s)", (_id("vote-db"),))
        cur.execute("SELECT close_voting_session(%s)", (_id("vote-name"),))

        # Brainstorming.
        for i, key in enumerate(("bs-onboarding", "bs-latency", "bs-naming")):
            sid = _id(key)
            cur.execute(
                "INSERT INTO brainstorm_sessions (id, session_id, topic, facilitator_id) VALUES (%s, %s, %s, %s)",
                (sid, key, f"Brainstorm: {key[3:]}", a["agent-02"]),
            )
            members = ["agent-02", f"agent-0{i + 3}", f"agent-0{i + 6}"]
            cur.executemany(
                "INSERT INTO brainstorm_participants (session_id, agent_id) VALUES (%s, %s)",
                [(sid, a[m]) for m in members],
            )
            for j, m in enumerate(members):
                cur.execute(
                    "INSERT INTO ideas (id, session_id, agent_id, title, content) VALUES (%s, %s, %s, %s, %s)",
                    (_id(f"{key}-idea-{j}"), sid, a[m], f"Idea {j + 1}", f"Proposal {j + 1} for {key}"),
                )
            cur.execute(
                "INSERT INTO idea_combinations (session_id, source_idea_ids, combined_by, rationale)"
                " VALUES (%s, %s, %s, 'Merged the two strongest proposals')",
                (sid, [_id(f"{key}-idea-0"), _id(f"{key}-idea-1")], a["agent-02"]),
            )
            cur.executemany(
                "INSERT INTO idea_votes (idea_id, agent_id, score) VALUES (%s, %s, %s)",
                [(_id(f"{key}-idea-0"), a[members[1]], 4), (_id(f"{key}-idea-1"), a[members[2]], 5)],
            )

        # Reputation: trust graph, two pre-trusted peers, ratings, then one EigenTrust run.
        cur.executemany(
            "INSERT INTO trust_graph (from_agent_id, to_agent_id, local_trust, interaction_count)"
            " VALUES (%s, %s, %s, %s)",
            [(a[f], a[t], v, n) for f, t, v, n in TRUST],
        )
        cur.executemany(
            "INSERT INTO pre_trusted_agents (agent_id, reason) VALUES (%s, 'founding agent')",
            [(a["agent-01"],), (a["agent-02"],)],
        )
        cur.executemany(
            "INSERT INTO peer_ratings (rater_id, ratee_id, task_id, rating) VALUES (%s, %s, %s, %s)",
            [
                (a["agent-01"], a["agent-03"], _id("task-01"), 4.8),
                (a["agent-02"], a["agent-04"], _id("task-02"), 4.2),
                (a["agent-06"], a["agent-05"], _id("task-03"), 3.9),
            ],
        )
        cur.execute("SELECT compute_eigentrust()")

        # Battles: two completed (Elo applied by the completion trigger), one scheduled.
        for key, mode, players, scores in (
            ("battle-01", "head_to_head", ["agent-03", "agent-04"], [91, 84]),
            ("battle-02", "free_for_all", ["agent-01", "agent-02", "agent-10"], [77, 88, 70]),
            ("battle-03", "head_to_head", ["agent-05", "agent-06"], [None, None]),
        ):
            bid = _id(key)
            cur.execute(
                "INSERT INTO battles (id, battle_id, title, mode, prize_pool) VALUES (%s, %s, %s, %s, 100)",
                (bid, key, f"Sample {key}", mode),
            )
            cur.executemany(
                "INSERT INTO battle_participants (battle_id, agent_id) VALUES (%s, %s)",
                [(bid, a[p]) for p in players],
            )
            if scores[0] is not None:
                for p, s in zip(players, scores, strict=True):
                    cur.execute("SELECT record_battle_result(%s, %s, %s)", (bid, a[p], s))
                cur.execute("UPDATE battles SET status = 'completed' WHERE id = %s", (bid,))

        for period in ("daily", "weekly", "monthly", "all_time"):
            cur.execute("SELECT refresh_leaderboard_rankings(%s)", (period,))
        cur.execute(
            "INSERT INTO hall_of_fame (agent_id, tier, title, badge, citation) VALUES"
            " (%s, 'diamond', 'Founding Leader', 'crown', 'Led the first hundred tasks')",
            (a["agent-01"],),
        )

        # Mentorship.
        for lvl, skill in ((1, "python"), (2, "python"), (1, "planning")):
            cur.execute(
                "INSERT INTO mentorship_curriculum (id, skill_name, level, title, objectives,"
                " assessment_tasks)"
                " VALUES (%s, %s, %s, %s, %s, %s)",
                (
                    _id(f"cur-{skill}-{lvl}"),
                    skill,
                    lvl,
                    f"{skill.title()} level {lvl}",
                    [f"{skill} objective A", f"{skill} objective B"],
                    Jsonb([{"task": f"{skill} exercise {lvl}"}]),
                ),
            )
        cur.executemany(
            "INSERT INTO mentor_profiles (agent_id, specialties) VALUES (%s, %s)",
            [(a["agent-01"], ["planning"]), (a["agent-03"], ["python"])],
        )
        for key, mentor, mentee, skill, status, done in (
            ("pair-1", "agent-03", "agent-07", "python", "active", 6),
            ("pair-2", "agent-01", "agent-08", "planning", "active", 2),
            ("pair-3", "agent-03", "agent-09", "python", "completed", 4),
        ):
            pid = _id(key)
            cur.execute(
                "INSERT INTO mentorship_pairings (id, mentor_id, mentee_id, skill_focus, status,"
                " planned_sessions)"
                " VALUES (%s, %s, %s, %s, %s, %s)",
                (pid, a[mentor], a[mentee], skill, status, 10 if status == "active" else 4),
            )
            cur.executemany(
                "INSERT INTO mentorship_sessions (pairing_id, session_number, topic, curriculum_id,"
                " mentor_rating,"
                " mentee_rating, duration_minutes) VALUES (%s, %s, %s, %s, 5, 4, 45)",
                [(pid, n, f"Session {n}", _id(f"cur-{skill}-1")) for n in range(1, done + 1)],
            )
            cur.execute(
                "INSERT INTO mentee_progress (pairing_id, curriculum_id, progress_percentage, mastery_level)"
                " VALUES (%s, %s, %s, %s)",
                (pid, _id(f"cur-{skill}-1"), min(100, done * 15), "beginner" if done < 5 else "intermediate"),
            )

        # Rewards and penalties.
        cur.executemany(
            "INSERT INTO resource_pools (resource_type, unit, total_capacity, available) VALUES (%s, %s, %s, %s)",
            [
                ("gpu_hours", "hours", 500, 500),
                ("api_quota", "calls", 100000, 100000),
                ("memory_gb", "GB", 256, 256),
            ],
        )
        cur.execute(
            "INSERT INTO resource_allocations (pool_id, agent_id, resource_type, amount,"
            " performance_tier, expires_at)"
            " SELECT id, %s, resource_type, 40, 'diamond', now() + interval '7 days' FROM resource_pools"
            " WHERE resource_type = 'gpu_hours'",
            (a["agent-01"],),
        )
        cur.executemany(
            "INSERT INTO rewards (reward_key, name, reward_type, cost_points, required_tier) VALUES"
            " (%s, %s, %s, %s, %s)",
            [
                ("extra-gpu", "Extra GPU hours", "resource", 500, "gold"),
                ("fast-lane", "Priority queue access", "priority", 300, "silver"),
                ("golden-badge", "Golden badge", "badge", 0, "gold"),
            ],
        )
        cur.executemany(
            "INSERT INTO penalty_rules (violation_type, severity, penalty_points, requires_retraining)"
            " VALUES (%s, %s, %s, %s)",
            [("timeout", 1, 5, False), ("low_quality", 2, 20, False), ("collusion", 4, 200, True)],
        )
        cur.execute(
            "INSERT INTO violations (id, agent_id, violation_type, severity, description) VALUES"
            " (%s, %s, 'timeout', 1, 'Missed the deadline of task-04')",
            (_id("violation-1"), a["agent-08"]),
        )
        cur.execute(
            "INSERT INTO appeals (violation_id, agent_id, reason) VALUES (%s, %s, 'The runner was down')",
            (_id("violation-1"), a["agent-08"]),
        )
        cur.execute("SELECT log_agent_activity(%s, 'login', 'Sample session start')", (a["agent-01"],))
        cur.execute("SELECT refresh_reputation_views()")


# ----- volume -------------------------------------------------------------------------------------
# Seed 002 names its high-volume tables (activity log, task history, point transactions, ...) but no
# row counts, so the volume is a fleet of 100 agents finishing 300 tasks a day for 30 days (each
# through the history, stats and points triggers, which cost about 2 ms a task), a point transaction
# per completed task, and a standing queue of pending work for the load test's claims.
VOLUME_30D = {"agents": 100, "tasks": 9_000, "pending_tasks": 2_000}
VOLUME_QUEUE = "volume"
VOLUME_PREFIX = "vol-"
HISTORY_DAYS = 30

_VOLUME_AGENTS_SQL = """
INSERT INTO agents (agent_id, name, type, status, elo_rating, capabilities, metadata)
SELECT %(prefix)s || 'agent-' || lpad(g.i::text, 4, '0'),
       'Volume agent ' || g.i,
       (enum_range(NULL::agent_type))[1 + g.i %% 6],
       'active',
       1100 + (g.i * 37) %% 400,
       '["python", "sql"]'::jsonb,
       '{"volume": true}'::jsonb
  FROM generate_series(1, %(agents)s) AS g (i)
"""

# Finished tasks go in already finished (quality, times), so the completion trigger's per-update
# recomputation is done once per agent afterwards.
_VOLUME_TASKS_SQL = """
INSERT INTO tasks (task_id, title, task_type, queue_id, status, priority, assigned_to, quality_score,
                   points_reward, assigned_at, started_at, completed_at, created_at, metadata)
SELECT %(prefix)s || 'task-' || g.i,
       'Volume task ' || g.i,
       (ARRAY['summarise', 'refactor', 'review', 'test', 'research'])[1 + g.i %% 5],
       %(queue)s,
       CASE WHEN g.i %% 10 = 0 THEN 'failed'::task_status ELSE 'completed'::task_status END,
       (enum_range(NULL::task_priority))[1 + g.i %% 4],
       a.id,
       CASE WHEN g.i %% 10 = 0 THEN NULL ELSE 60 + (g.i * 13) %% 41 END,
       10 + (g.i %% 10) * 5,
       t.created_at + interval '1 minute',
       t.created_at + interval '2 minutes',
       t.created_at + make_interval(mins => 5 + g.i %% 55),
       t.created_at,
       '{"volume": true}'::jsonb
  FROM generate_series(1, %(tasks)s) AS g (i)
  JOIN LATERAL (SELECT %(anchor)s - make_interval(secs => %(days)s * 86400.0 * (%(tasks)s - g.i + 1) / %(tasks)s)
                       AS created_at) AS t ON true
  JOIN agents AS a ON a.agent_id = %(prefix)s || 'agent-' || lpad((1 + g.i %% %(agents)s)::text, 4, '0')
"""

_VOLUME_PENDING_SQL = """
INSERT INTO tasks (task_id, title, task_type, queue_id, status, priority, points_reward, metadata)
SELECT %(prefix)s || 'pending-' || g.i, 'Queued task ' || g.i, 'review', %(queue)s, 'pending',
       (enum_range(NULL::task_priority))[1 + g.i %% 4], 20, '{"volume": true}'::jsonb
  FROM generate_series(1, %(pending_tasks)s) AS g (i)
"""

# Through the trigger, in time order, so streaks, multipliers, balances and tiers are the system's own.
_VOLUME_POINTS_SQL = """
INSERT INTO point_transactions (agent_id, category, base_points, reason, reference_type, reference_id,
                                created_at)
SELECT t.assigned_to, 'task_completion', t.points_reward, 'Completed ' || t.task_id, 'task', t.id, t.completed_at
  FROM tasks AS t
 WHERE t.task_id LIKE %(prefix)s || 'task-%%' AND t.status = 'completed'
 ORDER BY t.completed_at
"""


def volume_counts(scale: float = 1.0) -> dict[str, int]:
    """Rows per kind for `scale` times the 30-day volume."""
    if isinstance(scale, bool) or not isinstance(scale, int | float) or not scale > 0:
        raise ValueError(f"scale must be a number greater than 0, got {scale!r}")
    return {kind: max(1, round(rows * scale)) for kind, rows in VOLUME_30D.items()}


def volume(conn: psycopg.Connection, scale: float = 1.0, seed: int = 42) -> dict[str, int]:
    """Replace the volume agents, tasks and points (prefix `vol-`) with 30 days' worth times `scale`.

    Rows outside the prefix (the sample) are left alone. `seed` is accepted for the common interface;
    the rows are a pure function of their number. The caller commits.
    """
    counts = volume_counts(scale)
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("DELETE FROM tasks WHERE task_id LIKE %s", (VOLUME_PREFIX + "%",))
        cur.execute("DELETE FROM agents WHERE agent_id LIKE %s", (VOLUME_PREFIX + "%",))
        cur.execute(
            "INSERT INTO task_queues (name, description, max_concurrency) VALUES (%s, 'load test queue', 100)"
            " ON CONFLICT (name) WHERE deleted_at IS NULL DO UPDATE SET updated_at = now() RETURNING id",
            (VOLUME_QUEUE,),
        )
        queue = cur.fetchone()[0]
        params = {
            **counts,
            "prefix": VOLUME_PREFIX,
            "queue": queue,
            "days": HISTORY_DAYS,
            "anchor": cur.execute("SELECT now()").fetchone()[0],
        }
        for statement in (_VOLUME_AGENTS_SQL, _VOLUME_TASKS_SQL, _VOLUME_PENDING_SQL, _VOLUME_POINTS_SQL):
            cur.execute(statement, params)
        cur.execute(
            "SELECT count(refresh_agent_task_stats(id)) FROM agents WHERE agent_id LIKE %s", (VOLUME_PREFIX + "%",)
        )
        for period in ("daily", "weekly", "monthly", "all_time"):
            cur.execute("SELECT refresh_leaderboard_rankings(%s)", (period,))
        cur.execute("ANALYZE agents, tasks, task_history, point_transactions, leaderboard_rankings")
    return counts
