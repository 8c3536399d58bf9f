"""The orchestrator's business logic on real data: partitions, task stats, points and tiers, Elo,
EigenTrust, voting tallies, row-level security, and the bad input the issue lists."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import psycopg
import pytest
from psycopg import errors
from psycopg.types.json import Jsonb

KEY = "orchestrator"
PARTITIONED = [
    "agent_activity_log",
    "task_history",
    "point_transactions",
    "reputation_history",
    "penalty_history",
]


@pytest.fixture
def conn(stack):
    """A superuser connection whose work is rolled back after the test."""
    with psycopg.connect(stack.dsn(KEY)) as c:
        yield c
        c.rollback()


def agent(conn, **cols) -> uuid.UUID:
    cols = {"agent_id": f"t-{uuid.uuid4()}", "name": "Test agent", "type": "worker", **cols}
    names = ", ".join(cols)
    marks = ", ".join(["%s"] * len(cols))
    return conn.execute(f"INSERT INTO agents ({names}) VALUES ({marks}) RETURNING id", list(cols.values())).fetchone()[
        0
    ]


def month_start(offset: int) -> datetime:
    now = datetime.now(UTC)
    y, m = divmod(now.month - 1 + offset, 12)
    return datetime(now.year + y, m + 1, 1, 12, tzinfo=UTC)


def insert_history_row(conn, table: str, at: datetime) -> str:
    a = agent(conn)
    if table == "task_history":
        t = conn.execute(
            "INSERT INTO tasks (task_id, title) VALUES (%s, 'p') RETURNING id", (f"t-{uuid.uuid4()}",)
        ).fetchone()[0]
        sql = "INSERT INTO task_history (task_id, event_type, created_at) VALUES (%s, 'probe', %s)"
        args = (t, at)
    elif table == "point_transactions":
        sql = "INSERT INTO point_transactions (agent_id, category, base_points, created_at) VALUES (%s, 'probe', 1, %s)"
        args = (a, at)
    elif table == "reputation_history":
        sql = (
            "INSERT INTO reputation_history (agent_id, eigentrust_score, composite_score,"
            " trust_level, created_at)"
            " VALUES (%s, 0.1, 0.1, 'low', %s)"
        )
        args = (a, at)
    else:
        column = "activity_type" if table == "agent_activity_log" else "event_type"
        sql = f"INSERT INTO {table} (agent_id, {column}, created_at) VALUES (%s, 'probe', %s)"
        args = (a, at)
    return conn.execute(sql + " RETURNING tableoid::regclass::text", args).fetchone()[0]


# ---------------------------------------------------------------------------------------------- partitions
@pytest.mark.parametrize("offset", [0, 1, 2])
@pytest.mark.parametrize("table", PARTITIONED)
def test_row_lands_in_its_monthly_partition(conn, table, offset):
    at = month_start(offset)
    partition = insert_history_row(conn, table, at)
    assert partition.startswith(table + "_p") and not partition.endswith("_default"), partition
    bounds = conn.execute(
        "SELECT pg_get_expr(relpartbound, oid) FROM pg_class WHERE oid = %s::regclass", (partition,)
    ).fetchone()[0]
    assert at.strftime("%Y-%m-01") in bounds


def _children(conn):
    return conn.execute(
        "SELECT array_agg(c.relname::text ORDER BY c.relname) FROM pg_inherits i JOIN pg_class c ON"
        " c.oid = i.inhrelid "
        "WHERE i.inhparent::regclass::text = ANY(%s)",
        (PARTITIONED,),
    ).fetchone()[0]


def test_create_next_month_partitions_is_idempotent(conn):
    conn.execute("SELECT create_next_month_partitions()")
    first = _children(conn)
    conn.execute("SELECT create_next_month_partitions()")
    assert _children(conn) == first


def test_partition_maintenance_runs_as_the_owner(conn):
    conn.execute("SET ROLE ai_agent_owner")
    conn.execute("SELECT run_partition_maintenance(12)")
    assert conn.execute(
        "SELECT DISTINCT retention FROM partman.part_config WHERE parent_table = ANY(%s)",
        ([f"public.{t}" for t in PARTITIONED],),
    ).fetchall() == [("12 months",)]


def test_partition_maintenance_rejects_a_bad_retention(conn):
    with pytest.raises(errors.RaiseException, match="retention must be at least 1 month"):
        conn.execute("SELECT run_partition_maintenance(0)")


# ---------------------------------------------------------------------------------------------- tasks
def test_task_completion_updates_agent_stats_exactly(conn):
    a = agent(conn)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for status, quality, seconds in [("completed", 80, 60), ("completed", 90, 120), ("failed", None, 30)]:
        t = conn.execute(
            "INSERT INTO tasks (task_id, title, assigned_to, status, started_at) VALUES (%s, 'x',"
            " %s, 'in_progress', %s)"
            " RETURNING id",
            (f"t-{uuid.uuid4()}", a, start),
        ).fetchone()[0]
        conn.execute(
            "UPDATE tasks SET status = %s, quality_score = %s, completed_at = %s WHERE id = %s",
            (status, quality, start + timedelta(seconds=seconds), t),
        )
    row = conn.execute(
        "SELECT tasks_completed, tasks_failed, success_rate, average_quality_score, "
        "average_task_time_ms FROM agents WHERE id = %s",
        (a,),
    ).fetchone()
    assert row == (2, 1, Decimal("66.67"), Decimal("85.00"), 90000)
    assert (
        conn.execute(
            "SELECT count(*) FROM task_history h JOIN tasks t ON t.id = h.task_id "
            "WHERE t.assigned_to = %s AND h.event_type = 'status_changed'",
            (a,),
        ).fetchone()[0]
        == 3
    )


# ---------------------------------------------------------------------------------------------- points
def test_points_move_total_and_tier(conn):
    a = agent(conn)
    conn.execute("INSERT INTO point_transactions (agent_id, category, base_points) VALUES (%s, 'task', 100)", (a,))
    assert conn.execute("SELECT total_points, current_tier FROM agents WHERE id = %s", (a,)).fetchone() == (
        100,
        "bronze",
    )
    conn.execute("INSERT INTO point_transactions (agent_id, category, base_points) VALUES (%s, 'task', 1000)", (a,))
    assert conn.execute("SELECT total_points, current_tier FROM agents WHERE id = %s", (a,)).fetchone() == (
        1100,
        "silver",
    )
    assert conn.execute("SELECT old_tier, new_tier FROM tier_history WHERE agent_id = %s", (a,)).fetchall() == [
        ("bronze", "silver")
    ]
    # silver multiplies by 1.10; the streak is still on its first day.
    final = conn.execute(
        "INSERT INTO point_transactions (agent_id, category, base_points) VALUES (%s, 'task', 100)"
        " RETURNING final_points",
        (a,),
    ).fetchone()[0]
    assert final == 110


def test_streak_raises_the_multiplier(conn):
    a = agent(conn)
    day = datetime(2026, 11, 1, 12, tzinfo=UTC)
    for d in range(3):
        conn.execute(
            "INSERT INTO point_transactions (agent_id, category, base_points, created_at) VALUES (%s, 'task', 100, %s)",
            (a, day + timedelta(days=d)),
        )
    assert conn.execute("SELECT current_count, longest_count FROM streaks WHERE agent_id = %s", (a,)).fetchone() == (
        3,
        3,
    )
    # bronze 1.00 * (1 + 0.05 * 2) on the third consecutive day
    assert conn.execute(
        "SELECT multiplier FROM point_transactions WHERE agent_id = %s ORDER BY created_at DESC LIMIT 1", (a,)
    ).fetchone()[0] == Decimal("1.10")


# ---------------------------------------------------------------------------------------------- battles
def battle(conn, players, **cols):
    b = conn.execute(
        "INSERT INTO battles (battle_id, title) VALUES (%s, 'b') RETURNING id", (f"b-{uuid.uuid4()}",)
    ).fetchone()[0]
    for p in players:
        conn.execute("INSERT INTO battle_participants (battle_id, agent_id) VALUES (%s, %s)", (b, p))
    return b


@pytest.mark.parametrize(("winner", "expected"), [("a", (1208, 992)), ("b", (1176, 1024))])
def test_elo_on_a_hand_computed_example(conn, winner, expected):
    # K = 32; E(a) = 1 / (1 + 10^((1000 - 1200) / 400)) = 0.7597.
    # a wins: a + 32 * 0.2403 = 1207.69 -> 1208, b - 7.69 -> 992.
    # b wins: b + 32 * 0.7597 = 1024.31 -> 1024, a - 24.31 -> 1176.
    assert (
        conn.execute("SELECT setting_value FROM system_settings WHERE setting_key = 'elo_k_factor'").fetchone()[0] == 32
    )
    a, b = agent(conn, elo_rating=1200), agent(conn, elo_rating=1000)
    bid = battle(conn, [a, b])
    conn.execute("SELECT record_battle_result(%s, %s, %s)", (bid, a, 10 if winner == "a" else 5))
    conn.execute("SELECT record_battle_result(%s, %s, %s)", (bid, b, 10 if winner == "b" else 5))
    conn.execute("UPDATE battles SET status = 'completed' WHERE id = %s", (bid,))
    got = tuple(conn.execute("SELECT elo_rating FROM agents WHERE id = %s", (x,)).fetchone()[0] for x in (a, b))
    assert got == expected
    history = conn.execute(
        "SELECT agent_id, old_rating, new_rating, change FROM elo_history WHERE battle_id = %s", (bid,)
    ).fetchall()
    assert sorted(history) == sorted(
        [(a, 1200, expected[0], expected[0] - 1200), (b, 1000, expected[1], expected[1] - 1000)]
    )
    assert conn.execute("SELECT winner_id FROM battles WHERE id = %s", (bid,)).fetchone()[0] == (
        a if winner == "a" else b
    )


def test_new_agent_starts_at_the_initial_rating(conn):
    a = agent(conn)
    assert conn.execute(
        "SELECT a.elo_rating = s.setting_value FROM agents a, system_settings s "
        "WHERE a.id = %s AND s.setting_key = 'elo_initial_rating'",
        (a,),
    ).fetchone()[0]


# ---------------------------------------------------------------------------------------------- EigenTrust
def eigentrust_numpy(n, edges, pre, alpha, eps, max_iter):
    c = np.zeros((n, n))
    for i, j, v in edges:
        c[i, j] = v
    p = np.zeros(n)
    p[pre] = 1.0 / len(pre)
    sums = c.sum(axis=1)
    for i in range(n):
        c[i] = c[i] / sums[i] if sums[i] > 0 else p
    t = p.copy()
    for _ in range(max_iter):
        nxt = (1 - alpha) * c.T @ t + alpha * p
        delta = np.abs(nxt - t).sum()
        t = nxt
        if delta < eps:
            break
    return t


def test_eigentrust_matches_numpy_power_iteration(conn):
    # Only this test's agents are live inside the (rolled back) transaction.
    conn.execute("UPDATE agents SET deleted_at = now() WHERE deleted_at IS NULL")
    conn.execute("DELETE FROM pre_trusted_agents")
    ids = sorted(agent(conn) for _ in range(5))
    edges = [(0, 1, 0.9), (0, 2, 0.3), (1, 2, 0.8), (1, 0, 0.5), (2, 0, 1.0), (3, 2, 0.6), (3, 1, 0.2)]
    for i, j, v in edges:
        conn.execute(
            "INSERT INTO trust_graph (from_agent_id, to_agent_id, local_trust) VALUES (%s, %s, %s)",
            (ids[i], ids[j], v),
        )
    conn.execute("INSERT INTO pre_trusted_agents (agent_id) VALUES (%s), (%s)", (ids[0], ids[3]))
    conn.execute("SELECT compute_eigentrust(0.15, 1e-12, 1000)")
    expected = eigentrust_numpy(5, edges, [0, 3], 0.15, 1e-12, 1000)
    got = [
        float(conn.execute("SELECT eigentrust_score FROM global_trust_scores WHERE agent_id = %s", (i,)).fetchone()[0])
        for i in ids
    ]
    assert got == pytest.approx(list(expected), abs=1e-9)
    assert math.isclose(sum(got), 1.0, abs_tol=1e-8)
    assert conn.execute("SELECT count(*) FROM reputation_history WHERE agent_id = ANY(%s)", (ids,)).fetchone()[0] == 5
    assert conn.execute("SELECT converged FROM eigentrust_runs ORDER BY finished_at DESC LIMIT 1").fetchone()[0]


# ---------------------------------------------------------------------------------------------- voting
def session(conn, algorithm, options=("a", "b", "c"), **cols):
    return conn.execute(
        "INSERT INTO voting_sessions (session_id, topic, algorithm, options) VALUES (%s, 't', %s, %s) RETURNING id",
        (f"v-{uuid.uuid4()}", algorithm, Jsonb(list(options))),
    ).fetchone()[0]


def vote(conn, s, option, ranking=None, confidence=1, weight=1, tokens=0):
    conn.execute(
        "INSERT INTO votes (session_id, agent_id, vote_option, ranking, confidence, weight, tokens_spent) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (s, agent(conn), option, ranking, confidence, weight, tokens),
    )


def test_simple_majority_tally(conn):
    s = session(conn, "simple_majority")
    for o in ("a", "a", "b"):
        vote(conn, s, o)
    result = conn.execute("SELECT close_voting_session(%s)", (s,)).fetchone()[0]
    assert result["winner"] == "a" and result["tally"] == {"a": 2, "b": 1, "c": 0}


def test_weighted_tally(conn):
    s = session(conn, "weighted")
    vote(conn, s, "a", weight=1)
    vote(conn, s, "a", weight=1)
    vote(conn, s, "b", weight=3)
    assert conn.execute("SELECT tally_votes(%s)", (s,)).fetchone()[0]["winner"] == "b"


def test_quadratic_tally(conn):
    s = session(conn, "quadratic")
    vote(conn, s, "a", tokens=16)  # 4 votes
    vote(conn, s, "b", tokens=9)  # 3 votes
    vote(conn, s, "b", tokens=4)  # 2 votes
    result = conn.execute("SELECT tally_votes(%s)", (s,)).fetchone()[0]
    assert result["winner"] == "b" and float(result["tally"]["a"]) == 4


def test_ranked_choice_tally_runs_off(conn):
    s = session(conn, "ranked_choice")
    for ranking in (["a", "b"], ["a", "b"], ["b", "a"], ["c", "b"], ["c", "b"]):
        vote(conn, s, ranking[0], ranking=ranking)
    # Round 1: a 2, c 2, b 1 -> b out; round 2: a 3, c 2 -> a.
    result = conn.execute("SELECT tally_votes(%s)", (s,)).fetchone()[0]
    assert result["winner"] == "a" and len(result["rounds"]) == 2


def test_consensus_tally_needs_the_threshold(conn):
    s = session(conn, "consensus")
    for o in ("a", "a", "b"):
        vote(conn, s, o)
    assert conn.execute("SELECT tally_votes(%s)", (s,)).fetchone()[0]["winner"] is None
    vote(conn, s, "a")
    vote(conn, s, "a")
    vote(conn, s, "a")
    assert conn.execute("SELECT tally_votes(%s)", (s,)).fetchone()[0]["winner"] == "a"


# ---------------------------------------------------------------------------------------------- bad input
def _closed_session_vote(conn):
    s = session(conn, "simple_majority")
    conn.execute("SELECT close_voting_session(%s)", (s,))
    return (
        "INSERT INTO votes (session_id, agent_id, vote_option) VALUES (%s, %s, 'a')",
        (s, agent(conn)),
        "votes",
        errors.CheckViolation,
        "is closed",
    )


def _self_trust(conn):
    a = agent(conn)
    return (
        "INSERT INTO trust_graph (from_agent_id, to_agent_id, local_trust) VALUES (%s, %s, 0.5)",
        (a, a),
        "trust_graph",
        errors.CheckViolation,
        "chk_trust_graph_no_self_trust",
    )


def _trust_out_of_range(conn):
    return (
        "INSERT INTO trust_graph (from_agent_id, to_agent_id, local_trust) VALUES (%s, %s, 1.5)",
        (agent(conn), agent(conn)),
        "trust_graph",
        errors.CheckViolation,
        "chk_trust_graph_local_trust_range",
    )


def _battle_result_for_outsider(conn):
    b = battle(conn, [agent(conn), agent(conn)])
    return (
        "SELECT record_battle_result(%s, %s, 10)",
        (b, agent(conn)),
        "elo_history",
        errors.CheckViolation,
        "is not a participant",
    )


def _battle_winner_outsider(conn):
    b = battle(conn, [agent(conn), agent(conn)])
    return (
        "UPDATE battles SET winner_id = %s, status = 'completed' WHERE id = %s",
        (agent(conn), b),
        "elo_history",
        errors.CheckViolation,
        "is not a participant",
    )


def _appeal_on_other_agents_violation(conn):
    owner, other = agent(conn), agent(conn)
    v = conn.execute(
        "INSERT INTO violations (agent_id, violation_type, severity) VALUES (%s, 'spam', 2) RETURNING id",
        (owner,),
    ).fetchone()[0]
    return (
        "INSERT INTO appeals (violation_id, agent_id, reason) VALUES (%s, %s, 'not me')",
        (v, other),
        "appeals",
        errors.InsufficientPrivilege,
        "may appeal only its own violations",
    )


def _invalid_enum(conn):
    return (
        "INSERT INTO agents (agent_id, name, type) VALUES (%s, 'x', 'wizard')",
        (f"t-{uuid.uuid4()}",),
        "agents",
        errors.InvalidTextRepresentation,
        "agent_type",
    )


def _severity_out_of_range(conn):
    return (
        "INSERT INTO violations (agent_id, violation_type, severity) VALUES (%s, 'spam', 6)",
        (agent(conn),),
        "violations",
        errors.CheckViolation,
        "chk_violations_severity_range",
    )


BAD_INPUT = {
    "self-trust": _self_trust,
    "trust out of range": _trust_out_of_range,
    "vote on a closed session": _closed_session_vote,
    "battle result for a non-participant": _battle_result_for_outsider,
    "battle winner who is not a participant": _battle_winner_outsider,
    "appeal on another agent's violation": _appeal_on_other_agents_violation,
    "invalid ENUM value": _invalid_enum,
    "severity outside 1-5": _severity_out_of_range,
}


@pytest.mark.parametrize("case", BAD_INPUT)
def test_bad_input_is_a_clear_error_and_writes_nothing(conn, case):
    sql, args, table, error, message = BAD_INPUT[case](conn)
    before = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    conn.execute("SAVEPOINT bad")
    with pytest.raises(error, match=message):
        conn.execute(sql, args)
    conn.execute("ROLLBACK TO SAVEPOINT bad")
    assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == before


# ---------------------------------------------------------------------------------------------- security
@pytest.fixture
def two_agents_with_violations(stack):
    with psycopg.connect(stack.dsn(KEY), autocommit=True) as c:
        a, b = agent(c), agent(c)
        for who, n in ((a, 2), (b, 1)):
            for _ in range(n):
                c.execute(
                    "INSERT INTO violations (agent_id, violation_type, severity) VALUES (%s, 'timeout', 1)",
                    (who,),
                )
    return a, b


def test_agent_sees_only_its_own_violations(stack, two_agents_with_violations):
    a, _ = two_agents_with_violations
    with psycopg.connect(stack.dsn(KEY, role="app")) as c:
        c.execute("SELECT set_config('app.current_agent_id', %s, true)", (str(a),))
        rows = c.execute("SELECT agent_id FROM violations").fetchall()
        assert rows == [(a,), (a,)]


def test_app_without_agent_context_sees_no_violations(stack, two_agents_with_violations):
    with psycopg.connect(stack.dsn(KEY, role="app")) as c:
        assert c.execute("SELECT count(*) FROM violations").fetchone()[0] == 0


def test_readonly_reads_but_cannot_write(stack, two_agents_with_violations):
    with psycopg.connect(stack.dsn(KEY, role="readonly")) as c:
        c.read_only = False  # the privileges must refuse without the readonly role's read-only default
        assert c.execute("SELECT count(*) FROM violations").fetchone()[0] >= 3
        with pytest.raises(errors.InsufficientPrivilege):
            c.execute("INSERT INTO agents (agent_id, name, type) VALUES ('ro', 'ro', 'worker')")
        c.rollback()
        with pytest.raises(errors.InsufficientPrivilege):
            c.execute("UPDATE violations SET severity = 1")


def test_app_cannot_run_maintenance_functions(stack):
    with psycopg.connect(stack.dsn(KEY, role="app")) as c, pytest.raises(errors.InsufficientPrivilege):
        c.execute("SELECT run_partition_maintenance(12)")
