"""Data for the afs database: the e-commerce demo tables of seed 003, reproducible from a seed number.

`volume` replaces users, orders and payments with the document's volumes and distributions; every
value comes from md5 of (seed, column, row number) in set-based SQL, so the same seed gives the
same rows (timestamps are offsets back from `anchor`, which defaults to the transaction time).
`sample` loads a small slice of that plus the document's worked example of one AFS task.
The caller commits (`agentdb seed` does).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import psycopg

USERS = 1_000
ORDERS = 10_000
# Order status shares (seed 003, "Status Distribution"); payments copy their order's status.
STATUS_SHARES = {"completed": 0.75, "pending": 0.125, "processing": 0.125}
TOTAL_MIN_CENTS = 1_000  # $10.00
TOTAL_MAX_CENTS = 50_000  # $500.00
HISTORY_DAYS = 365  # created_at is spread over the past year
SAMPLE_SCALE = 0.01

FIRST_NAMES = [
    "olivia", "liam", "emma", "noah", "ava", "elijah", "sophia", "lucas", "mia", "mateo",
    "isabella", "levi", "amelia", "ezra", "harper", "leo", "aria", "kai", "luna", "owen",
]  # fmt: skip
LAST_NAMES = [
    "smith", "garcia", "johnson", "martinez", "brown", "lopez", "davis", "wilson", "nguyen", "kim",
    "patel", "silva", "muller", "rossi", "tanaka", "novak", "dubois", "khan", "cohen", "costa",
]  # fmt: skip
DOMAINS = ["example.com", "example.org", "example.net"]


def _uniform(salt: str, row: str) -> str:
    """SQL for a number in [0, 1) fixed by (seed, salt, row): 48 bits of md5, no session state."""
    return f"(('x' || substr(md5(%(seed)s::text || ':{salt}:' || {row}), 1, 12))::bit(48)::bigint / 281474976710656.0)"


def _counts(scale: float) -> tuple[int, int]:
    if not scale > 0:
        raise ValueError(f"scale must be greater than 0, got {scale}")
    users, orders = round(USERS * scale), round(ORDERS * scale)
    if users < 1:
        raise ValueError(f"scale {scale} gives no users; the smallest scale is {1 / USERS}")
    return users, orders


def _status_cutoffs(orders: int) -> tuple[int, int]:
    """Rank boundaries so that the status counts are exact: 75% / 12.5% / the rest."""
    completed = round(orders * STATUS_SHARES["completed"])
    pending = round(orders * STATUS_SHARES["pending"])
    return completed, completed + pending


USERS_SQL = f"""
INSERT INTO users (id, email, created_at)
SELECT g.i,
       (%(first)s::text[])[1 + floor({_uniform("first", "g.i")} * cardinality(%(first)s::text[]))::int]
       || '.' ||
       (%(last)s::text[])[1 + floor({_uniform("last", "g.i")} * cardinality(%(last)s::text[]))::int]
       || g.i || '@' ||
       (%(domains)s::text[])[1 + floor({_uniform("domain", "g.i")} * cardinality(%(domains)s::text[]))::int],
       %(anchor)s - {_uniform("user_created", "g.i")} * make_interval(days => %(days)s)
  FROM generate_series(1, %(users)s) AS g (i)
 ORDER BY g.i
"""

# The first `users` orders go one to each user, so every user has orders; the rest lean towards
# low ids (u^1.5) for varied order counts. An order is placed after its user signed up.
ORDERS_SQL = f"""
WITH o AS (
    SELECT g.i,
           CASE WHEN g.i <= %(users)s THEN g.i
                ELSE 1 + floor(%(users)s * power({_uniform("user", "g.i")}, 1.5))::int END AS user_id,
           (%(cents_min)s + floor({_uniform("total", "g.i")} * (%(cents_max)s - %(cents_min)s + 1))) / 100.0
               AS total,
           row_number() OVER (ORDER BY md5(%(seed)s::text || ':status:' || g.i), g.i) AS status_rank,
           {_uniform("order_created", "g.i")} AS created_share
      FROM generate_series(1, %(orders)s) AS g (i)
)
INSERT INTO orders (id, user_id, total, status, created_at)
SELECT o.i, o.user_id, o.total,
       CASE WHEN o.status_rank <= %(completed_upto)s THEN 'completed'
            WHEN o.status_rank <= %(pending_upto)s THEN 'pending'
            ELSE 'processing' END,
       u.created_at + o.created_share * (%(anchor)s - u.created_at)
  FROM o
  JOIN users AS u ON u.id = o.user_id
 ORDER BY o.i
"""

PAYMENTS_SQL = """
INSERT INTO payments (id, order_id, amount, status, created_at)
SELECT id, id, total, status, created_at FROM orders ORDER BY id
"""


def volume(
    conn: psycopg.Connection, scale: float = 1.0, seed: int = 42, anchor: datetime | None = None
) -> dict[str, int]:
    """Replace users, orders and payments with the document's volumes times `scale`; returns the counts."""
    users, orders = _counts(scale)
    completed_upto, pending_upto = _status_cutoffs(orders)
    params: dict[str, Any] = {
        "seed": seed,
        "users": users,
        "orders": orders,
        "first": FIRST_NAMES,
        "last": LAST_NAMES,
        "domains": DOMAINS,
        "days": HISTORY_DAYS,
        "cents_min": TOTAL_MIN_CENTS,
        "cents_max": TOTAL_MAX_CENTS,
        "completed_upto": completed_upto,
        "pending_upto": pending_upto,
    }
    with conn.cursor() as cur:
        cur.execute("SELECT coalesce(%s::timestamptz, now())", (anchor,))
        params["anchor"] = cur.fetchone()[0]
        cur.execute("TRUNCATE payments, orders, users RESTART IDENTITY")
        cur.execute(USERS_SQL, params)
        cur.execute(ORDERS_SQL, params)
        cur.execute(PAYMENTS_SQL)
        for table in ("users", "orders", "payments"):
            cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) FROM {table}")
        cur.execute("ANALYZE users, orders, payments")
    return {"users": users, "orders": orders, "payments": orders}


# The document's worked example (seed 003, "JSONB Structures"): one task, three agents, their
# proposals with four benchmarks each, and the consensus decision naming the best one.
EXAMPLE_METADATA = {
    "priority": "high",
    "complexity_hint": "medium",
    "target_tables": ["orders", "users"],
    "user_preferences": {"max_storage_mb": 50, "risk_tolerance": "low"},
}
EXAMPLE_QUERY = (
    "SELECT u.email, count(*), sum(o.total) FROM users u JOIN orders o ON o.user_id = u.id"
    " WHERE o.status = 'completed' GROUP BY u.email"
)
EXAMPLE_AGENTS = [
    # agent_type, proposal_type, sql, estimated impact, scores (perf, storage, complexity, risk,
    # weighted_total), improvement_pct
    (
        "gemini-2.5-pro",
        "partial_index",
        "CREATE INDEX idx_orders_user_completed ON orders (user_id) WHERE status = 'completed'",
        {"query_time_improvement": 80.0, "storage_overhead_mb": 12.5, "complexity": "low", "risk": "low",
         "additional_notes": "Partial index reduces size by covering only completed orders"},
        (90.86, 98.67, 90.0, 95.0, 92.66),
        82.6,
    ),
    (
        "gemini-2.5-flash",
        "composite_index",
        "CREATE INDEX idx_orders_user_status ON orders (user_id, status)",
        {"query_time_improvement": 90.0, "storage_overhead_mb": 40.0, "complexity": "medium",
         "risk": "medium"},
        (100.0, 60.0, 70.0, 70.0, 81.00),
        93.5,
    ),
    (
        "gemini-2.0-flash",
        "materialized_view",
        "CREATE MATERIALIZED VIEW user_completed_totals AS " + EXAMPLE_QUERY,
        {"query_time_improvement": 60.0, "storage_overhead_mb": 25.0, "complexity": "high", "risk": "medium"},
        (67.65, 75.0, 50.0, 70.0, 64.83),
        61.5,
    ),
]  # fmt: skip
EXAMPLE_BENCHMARKS = [("baseline", 450.23), ("test_limit", 12.4), ("test_filter", 30.1), ("test_sort", 41.7)]
EXAMPLE_EXPLAIN_PLAN = {
    "planning_time_ms": 0.5,
    "execution_time_ms": 450.23,
    "total_cost": 1234.56,
    "actual_rows": 1000,
    "plan_type": "Index Scan",
    "index_name": "idx_orders_user_completed",
    "filter_removed_rows": 0,
    "buffers": {"shared_hit": 128, "shared_read": 4},
}
EXAMPLE_QUERY_LOGS = [
    ("SELECT date_trunc('month', created_at), sum(total) FROM orders GROUP BY 1 -- monthly revenue", 812.4),
    ("SELECT * FROM orders WHERE user_id = 42 AND status = 'pending'", 35.2),
    ("SELECT u.email FROM users u JOIN payments p ON p.order_id = u.id WHERE p.status = 'completed'", 120.9),
]


def score_entry(proposal_id: int, agent_scores: tuple, rank: int, improvement: float) -> dict[str, Any]:
    """One agent's entry in `consensus_decisions.all_scores`, in the shape the JSONB validation requires."""
    perf, storage, complexity, risk, total = agent_scores
    return {
        "proposal_id": proposal_id,
        "performance_score": perf,
        "storage_score": storage,
        "complexity_score": complexity,
        "risk_score": risk,
        "weighted_total": total,
        "rank": rank,
        "improvement_pct": improvement,
    }


def sample(conn: psycopg.Connection) -> dict[str, int]:
    """A small e-commerce slice plus the document's worked example; returns the counts and the task id."""
    counts = volume(conn, scale=SAMPLE_SCALE)
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO tasks (type, description, target_query, status, metadata)"
            " VALUES ('index_recommendation', 'Speed up revenue per user', %s, 'completed', %s) RETURNING id",
            (EXAMPLE_QUERY, json.dumps(EXAMPLE_METADATA)),
        )
        task_id = cur.fetchone()[0]
        scores: dict[str, dict[str, Any]] = {}
        winner = None
        for rank, (agent, kind, sql, impact, agent_scores, improvement) in enumerate(EXAMPLE_AGENTS, start=1):
            cur.execute(
                "INSERT INTO agent_executions (task_id, agent_type, fork_id, status, completed_at)"
                " VALUES (%s, %s, %s, 'completed', now()) RETURNING id",
                (task_id, agent, f"afs-fork-{agent}-task{task_id}-1699901234"),
            )
            execution_id = cur.fetchone()[0]
            cur.execute(
                "INSERT INTO optimization_proposals"
                " (agent_execution_id, proposal_type, sql_commands, rationale, estimated_impact)"
                " VALUES (%s, %s, %s, %s, %s) RETURNING id",
                (execution_id, kind, [sql, "ANALYZE orders"], f"{kind} by {agent}", json.dumps(impact)),
            )
            proposal_id = cur.fetchone()[0]
            winner = winner or proposal_id
            for name, ms in EXAMPLE_BENCHMARKS:
                cur.execute(
                    "INSERT INTO benchmark_results (proposal_id, query_name, query_executed,"
                    " execution_time_ms, rows_returned, explain_plan, storage_impact_mb)"
                    " VALUES (%s, %s, %s, %s, 1000, %s, %s)",
                    (
                        proposal_id,
                        name,
                        EXAMPLE_QUERY,
                        ms,
                        json.dumps(EXAMPLE_EXPLAIN_PLAN),
                        None if name == "baseline" else impact["storage_overhead_mb"],
                    ),
                )
            scores[agent] = score_entry(proposal_id, agent_scores, rank, improvement)
        cur.execute(
            "INSERT INTO consensus_decisions (task_id, winning_proposal_id, all_scores, decision_rationale)"
            " VALUES (%s, %s, %s, 'Highest weighted total: small partial index, low risk')",
            (task_id, winner, json.dumps(scores)),
        )
        cur.executemany("INSERT INTO query_logs (query_text, execution_time_ms) VALUES (%s, %s)", EXAMPLE_QUERY_LOGS)
    return {**counts, "task_id": task_id}
