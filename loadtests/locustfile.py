"""The agents: qlearning, the hot cache, orchestrator, agentic and AFS, as Locust users (tasks only).

Run by `agentdb load` (loadtests/load.py) as a Locust master and its workers; it passes the
connection settings and the plan, and loadtests/collect.py gathers the exact microsecond
histograms. The plan (`Plan`, a LoadTestShape) runs stages one after the other:

- `capacity:<operation>`: every user runs that one operation alone (an `Alone_*` class per task),
  the way the seeds state their throughput ("18 concurrent agents" on one operation);
- `mixed`: the weights give the seeds' 18 agents as 10 Q-learning, 2 hot-cache, 2 orchestrator,
  2 agentic and 2 AFS users.

An operation is named `<database>.<task method>`, the name its task reports.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import time
import uuid
from functools import cache

from locust import LoadTestShape, constant, task
from psycopg.types.json import Jsonb

from loadtests import collect
from loadtests.hotcache import HotCache
from loadtests.users import PostgresUser, RedisUser, config

PLAN_ENV = "AGENTDB_LOAD_PLAN"
DRAIN_S = 2  # between two stages: time for the workers to stop the users of the first

# ----- Q-learning ---------------------------------------------------------------------------------
_agent_numbers = itertools.count()
TYPOS = ["boundry value", "arange act asert", "uncoverd branch", "retry flakey", "snapshot dif", "mutaton guided"]

TRAJECTORY_SQL = """
WITH t AS (
    INSERT INTO trajectories (agent_type, task_id, initial_state, final_state, actions_taken, states_visited,
                              step_rewards, total_reward, execution_time_ms, success, started_at, completed_at)
    VALUES (%(agent)s, %(task)s, '{"module": "load"}', '{"done": true}', %(actions)s, %(states)s, %(rewards_json)s,
            %(total)s, 1200, true, now() - interval '2 seconds', now())
    RETURNING trajectory_id
)
INSERT INTO rewards (agent_type, trajectory_id, state_hash, action_hash, reward_value, reward_type)
SELECT %(agent)s, t.trajectory_id, r.state_hash, r.action_hash, r.reward,
       CASE WHEN r.step = cardinality(%(state_hashes)s::text[]) THEN 'terminal' ELSE 'immediate' END
  FROM t, unnest(%(state_hashes)s::text[], %(action_hashes)s::text[], %(reward_values)s::float8[])
          WITH ORDINALITY AS r (state_hash, action_hash, reward, step)
"""


def _agent_and_pairs(conn, limit: int) -> tuple[str, list[tuple[str, str]]]:
    """This simulated agent's type (round robin over the registry) and up to `limit` of its (state, action) pairs."""
    types = [r[0] for r in conn.execute("SELECT agent_type FROM agent_types ORDER BY agent_type")]
    agent_type = types[next(_agent_numbers) % len(types)]
    pairs = conn.execute(
        "SELECT state_hash, action_hash FROM q_values WHERE agent_type = %s ORDER BY random() LIMIT %s",
        (agent_type, limit),
    ).fetchall()
    if not pairs:
        raise RuntimeError("qlearning_db has no q_values: run `agentdb seed --db qlearning --volume 30d`")
    return agent_type, pairs


class QLearningAgent(PostgresUser):
    """One QE agent of one agent type: lookups, upserts, trajectories and pattern searches."""

    database = "qlearning"
    weight = 10
    wait_time = constant(0)

    def on_start(self) -> None:
        super().on_start()
        self.agent_type, self.pairs = _agent_and_pairs(self.pg.conn, 500)

    def _trajectory(self) -> dict:
        steps = random.sample(self.pairs, min(10, len(self.pairs)))
        rewards = [round(random.uniform(-0.2, 1.0), 4) for _ in steps]
        return {
            "agent": self.agent_type,
            "task": f"load-{uuid.uuid4().hex[:12]}",
            "actions": Jsonb([{"step": i, "action_hash": a} for i, (_, a) in enumerate(steps, 1)]),
            "states": Jsonb([{"step": i, "state_hash": s} for i, (s, _) in enumerate(steps, 1)]),
            "rewards_json": Jsonb([{"step": i, "reward": r} for i, r in enumerate(rewards, 1)]),
            "total": sum(rewards),
            "state_hashes": [s for s, _ in steps],
            "action_hashes": [a for _, a in steps],
            "reward_values": rewards,
        }

    @task(10)
    def get_best_action(self) -> None:
        state, _ = random.choice(self.pairs)
        with self.pg.measure("qlearning.get_best_action"):
            self.pg.conn.execute("SELECT * FROM get_best_action(%s, %s)", (self.agent_type, state)).fetchall()

    @task(5)
    def upsert_q_value(self) -> None:
        state, action = random.choice(self.pairs)
        with self.pg.measure("qlearning.upsert_q_value"):
            self.pg.conn.execute(
                "SELECT upsert_q_value(%s, %s, NULL, %s, NULL, %s)",
                (self.agent_type, state, action, random.uniform(-1, 1)),
            ).fetchone()

    @task(1)
    def upsert_batch_100(self) -> None:
        # Sorted keys: two batches touching the same rows lock them in the same order (no deadlock).
        batch = sorted(random.sample(self.pairs, min(100, len(self.pairs))))
        with self.pg.measure("qlearning.upsert_batch_100"):
            self.pg.conn.execute(
                "SELECT count(upsert_q_value(%s, u.s, NULL, u.a, NULL, u.q))"
                " FROM unnest(%s::text[], %s::text[], %s::float8[]) WITH ORDINALITY AS u (s, a, q, n)",
                (
                    self.agent_type,
                    [s for s, _ in batch],
                    [a for _, a in batch],
                    [random.uniform(-1, 1) for _ in batch],
                ),
            ).fetchone()

    @task(3)
    def trajectory_insert(self) -> None:
        params = self._trajectory()
        with self.pg.measure("qlearning.trajectory_insert"):
            self.pg.conn.execute(TRAJECTORY_SQL, params)

    @task(1)
    def trajectory_batch_10(self) -> None:
        batch = [self._trajectory() for _ in range(10)]
        conn = self.pg.conn
        with self.pg.measure("qlearning.trajectory_batch_10"), conn.transaction(), conn.cursor() as cur:
            cur.executemany(TRAJECTORY_SQL, batch)

    @task(2)
    def pattern_search_fuzzy(self) -> None:
        term = random.choice(TYPOS)
        with self.pg.measure("qlearning.pattern_search_fuzzy"):
            self.pg.conn.execute(
                "SELECT pattern_id, pattern_name, similarity(pattern_name, %s) AS score FROM patterns"
                " WHERE pattern_name %% %s ORDER BY score DESC LIMIT 10",
                (term, term),
            ).fetchall()

    @task(2)
    def patterns_top_by_reward(self) -> None:
        with self.pg.measure("qlearning.patterns_top_by_reward"):
            self.pg.conn.execute(
                "SELECT pattern_id, pattern_name, avg_reward FROM patterns WHERE agent_type = %s"
                " ORDER BY avg_reward DESC LIMIT 10",
                (self.agent_type,),
            ).fetchall()


class HotCacheAgent(RedisUser, PostgresUser):
    """Reads best actions through Redis (loadtests.hotcache), falling back to get_best_action."""

    database = "qlearning"
    weight = 2
    wait_time = constant(0)

    def on_start(self) -> None:
        super().on_start()
        # A small hot set, as a hot cache serves: 50 states of this agent type.
        self.agent_type, self.pairs = _agent_and_pairs(self.pg.conn, 50)
        self.cache = HotCache(self.cache_client.redis, self.pg.conn, prefix=f"load:{self.agent_type}")

    @task(20)
    def hot_cache_lookup(self) -> None:
        state, _ = random.choice(self.pairs)
        with self.cache_client.measure("qlearning.hot_cache_lookup"):
            self.cache.best_action(self.agent_type, state)

    @task(1)
    def hot_cache_upsert(self) -> None:
        state, action = random.choice(self.pairs)
        with self.cache_client.measure("qlearning.hot_cache_upsert"):
            self.cache.upsert(self.agent_type, state, None, action, None, random.uniform(-1, 1))


# ----- orchestrator -------------------------------------------------------------------------------
class OrchestratorAgent(PostgresUser):
    """Claims queued tasks (FOR UPDATE SKIP LOCKED), earns points and reads the leaderboard."""

    database = "orchestrator"
    weight = 2
    wait_time = constant(0)

    def on_start(self) -> None:
        super().on_start()
        conn = self.pg.conn
        row = conn.execute(
            "SELECT a.id, q.id FROM agents AS a, task_queues AS q WHERE a.agent_id LIKE 'vol-%%'"
            " AND q.name = 'volume' AND q.deleted_at IS NULL ORDER BY random() LIMIT 1"
        ).fetchone()
        if row is None:
            raise RuntimeError("orchestrator has no volume data: run `agentdb seed --db orchestrator --volume 30d`")
        self.agent_id, self.queue_id = row

    @task(3)
    def task_claim(self) -> None:
        with self.pg.measure("orchestrator.task_claim"):
            self.pg.conn.execute(
                "UPDATE tasks SET status = 'assigned', assigned_to = %s"
                " WHERE id = (SELECT id FROM tasks WHERE queue_id = %s AND status = 'pending' AND deleted_at IS NULL"
                "             ORDER BY priority DESC, created_at LIMIT 1 FOR UPDATE SKIP LOCKED)"
                " RETURNING id",
                (self.agent_id, self.queue_id),
            ).fetchone()

    @task(3)
    def task_enqueue(self) -> None:
        # Keeps the queue as long as the claims make it shorter.
        with self.pg.measure("orchestrator.task_enqueue"):
            self.pg.conn.execute(
                "INSERT INTO tasks (task_id, title, queue_id, priority, points_reward)"
                " VALUES (%s, 'Load test task', %s, %s, 20)",
                (f"load-{uuid.uuid4()}", self.queue_id, random.choice(["low", "medium", "high", "critical"])),
            )

    @task(2)
    def point_transaction(self) -> None:
        with self.pg.measure("orchestrator.point_transaction"):
            self.pg.conn.execute(
                "INSERT INTO point_transactions (agent_id, category, base_points, reason)"
                " VALUES (%s, 'bonus', %s, 'load test')",
                (self.agent_id, random.randint(1, 20)),
            )

    @task(2)
    def leaderboard_read(self) -> None:
        with self.pg.measure("orchestrator.leaderboard_read"):
            self.pg.conn.execute(
                "SELECT rank, agent_id, name, score FROM v_current_leaderboard WHERE category = 'overall'"
                " ORDER BY rank LIMIT 10"
            ).fetchall()


# ----- agentic ------------------------------------------------------------------------------------
class AgenticAgent(PostgresUser):
    """Appends to a 10,000-message conversation and reads its recent history, under RLS."""

    database = "agentic"
    weight = 2
    wait_time = constant(0)

    def on_start(self) -> None:
        super().on_start()
        import psycopg

        # The app role sees no tenant until it names one, so the readonly role finds a session.
        with psycopg.connect(config()["dsn"]["agentic_readonly"], autocommit=True) as ro:
            row = ro.execute(
                "SELECT session_id, user_id FROM agent_sessions WHERE session_state = 'active'"
                " AND expires_at > now() AND metadata @> '{\"volume\": true}' ORDER BY random() LIMIT 1"
            ).fetchone()
        if row is None:
            raise RuntimeError("agentic has no volume sessions: run `agentdb seed --db agentic --volume 30d`")
        self.session_id, self.user_id = str(row[0]), str(row[1])

    def _tenant(self) -> None:
        self.pg.conn.execute("SELECT set_config('app.current_user_id', %s, true)", (self.user_id,))

    @task(1)
    def message_append(self) -> None:
        with self.pg.measure("agentic.message_append"), self.pg.conn.transaction():
            self._tenant()
            self.pg.conn.execute(
                "INSERT INTO conversation_history (session_id, role, content, message_type, tokens_used)"
                " VALUES (%s, 'user', 'load test message', 'text', 12)",
                (self.session_id,),
            )

    @task(3)
    def recent_messages(self) -> None:
        with self.pg.measure("agentic.recent_messages"), self.pg.conn.transaction():
            self._tenant()
            self.pg.conn.execute(
                "SELECT message_id, role, content, created_at FROM conversation_history"
                " WHERE session_id = %s ORDER BY created_at DESC LIMIT 50",
                (self.session_id,),
            ).fetchall()


# ----- AFS ----------------------------------------------------------------------------------------
class AfsAgent(PostgresUser):
    """One AFS task from pending to a consensus decision: executions, proposals, benchmarks."""

    database = "afs"
    weight = 2
    wait_time = constant(0)

    @task
    def task_lifecycle(self) -> None:
        from infra.seeds import afs

        conn = self.pg.conn
        with self.pg.measure("afs.task_lifecycle"), conn.transaction():
            (task_id,) = conn.execute(
                "INSERT INTO tasks (type, description, target_query, metadata) VALUES"
                " ('index_recommendation', 'load test', %s, %s) RETURNING id",
                (afs.EXAMPLE_QUERY, Jsonb(afs.EXAMPLE_METADATA)),
            ).fetchone()
            conn.execute("UPDATE tasks SET status = 'in_progress' WHERE id = %s", (task_id,))
            scores = {}
            for rank, (agent, kind, sql_text, impact, agent_scores, improvement) in enumerate(afs.EXAMPLE_AGENTS, 1):
                (execution_id,) = conn.execute(
                    "INSERT INTO agent_executions (task_id, agent_type, fork_id) VALUES (%s, %s, %s) RETURNING id",
                    (task_id, agent, f"afs-fork-{agent}-task{task_id}-{int(time.time())}"),
                ).fetchone()
                (proposal_id,) = conn.execute(
                    "INSERT INTO optimization_proposals (agent_execution_id, proposal_type, sql_commands, rationale,"
                    " estimated_impact) VALUES (%s, %s, %s, 'load test', %s) RETURNING id",
                    (execution_id, kind, [sql_text], Jsonb(impact)),
                ).fetchone()
                conn.execute(
                    "INSERT INTO benchmark_results (proposal_id, query_name, query_executed, execution_time_ms)"
                    " VALUES (%s, 'baseline', %s, 450.2), (%s, 'test_limit', %s, 12.4)",
                    (proposal_id, afs.EXAMPLE_QUERY, proposal_id, afs.EXAMPLE_QUERY),
                )
                conn.execute(
                    "UPDATE agent_executions SET status = 'completed', completed_at = now() WHERE id = %s",
                    (execution_id,),
                )
                scores[agent] = afs.score_entry(proposal_id, agent_scores, rank, improvement)
            winner = next(s["proposal_id"] for s in scores.values() if s["rank"] == 1)
            conn.execute(
                "INSERT INTO consensus_decisions (task_id, winning_proposal_id, all_scores, decision_rationale)"
                " VALUES (%s, %s, %s, 'load test')",
                (task_id, winner, Jsonb(scores)),
            )
            conn.execute("UPDATE tasks SET status = 'completed', completed_at = now() WHERE id = %s", (task_id,))


# ----- the plan: each operation alone, then the mixed profile -------------------------------------
MIXED = [QLearningAgent, HotCacheAgent, OrchestratorAgent, AgenticAgent, AfsAgent]


def _operations(user_class: type) -> dict[str, object]:
    """Operation name -> task function, in declaration order (Locust repeats a task per weight)."""
    return {f"{user_class.database}.{fn.__name__}": fn for fn in dict.fromkeys(user_class.tasks)}


def _alone(user_class: type, operation: str, fn: object) -> type:
    alone = type(f"Alone_{operation.replace('.', '_')}", (user_class,), {"stage": f"capacity:{operation}"})
    alone.tasks = [fn]  # set after creation: Locust's metaclass would add the parent's tasks
    return alone


ALONE = {op: _alone(cls, op, fn) for cls in MIXED for op, fn in _operations(cls).items()}
OPERATIONS = sorted(ALONE)
globals().update({cls.__name__: cls for cls in ALONE.values()})  # Locust finds users by module name
STAGE_CLASSES = {"mixed": MIXED} | {f"capacity:{op}": [cls] for op, cls in ALONE.items()}
collect.register([*MIXED, *ALONE.values()])


@cache
def plan() -> dict:
    """{"users": n, "stages": [{"stage": ..., "seconds": ...}, ...]}; without a plan, 60 s mixed."""
    text = os.environ.get(PLAN_ENV)
    return json.loads(text) if text else {"users": 18, "stages": [{"stage": "mixed", "seconds": 60}]}


class Plan(LoadTestShape):
    """Runs the plan's stages in order, all users on each stage's user classes, then stops.

    Locust's dispatcher only applies a new list of user classes to users it starts, so a stage
    first stops every user of the one before (DRAIN_S with no users), then starts its own.
    """

    def tick(self) -> tuple[int, float, list[type] | None] | None:
        elapsed, end = self.get_run_time(), 0.0
        users = plan()["users"]
        for i, stage in enumerate(plan()["stages"]):
            if i:
                end += DRAIN_S
                if elapsed < end:
                    return 0, users, None
            end += stage["seconds"]
            if elapsed < end:
                return users, users, STAGE_CLASSES[stage["stage"]]
        return None
