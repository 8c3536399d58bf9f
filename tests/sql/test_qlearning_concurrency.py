"""Concurrent agents lose nothing: upserts count every visit, Q-learning updates serialize on the row,
and the views refresh concurrently while readers keep reading."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import ROUND_HALF_UP, Decimal, localcontext

import psycopg
import pytest
from psycopg.types.json import Jsonb

KEY = "qlearning"
AGENTS = 18  # seed 000: "18 agents writing simultaneously"


def _run_agents(stack, count: int, work) -> list:
    """Run `work(conn, agent_index)` in `count` threads, each with its own connection through PgBouncer,
    all released at once."""
    barrier = threading.Barrier(count)

    def agent(i: int):
        with psycopg.connect(stack.dsn(KEY, role="app", via="pgbouncer"), autocommit=True) as conn:
            barrier.wait()
            return work(conn, i)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(agent, range(count)))


def test_18_writers_upserting_one_key_count_every_visit(stack):
    state = f"concurrent-{uuid.uuid4().hex}"
    per_agent = 100

    def work(conn, i):
        ids = set()
        for n in range(per_agent):
            ids.add(
                conn.execute(
                    "SELECT upsert_q_value(%s, %s, %s, %s, %s, %s)",
                    ("test-generator", state, Jsonb({"agent": i}), "act", Jsonb({"n": n}), i + n / 1000),
                ).fetchone()[0]
            )
        return ids

    ids = set().union(*_run_agents(stack, AGENTS, work))
    with psycopg.connect(stack.dsn(KEY, role="admin")) as conn:
        rows = conn.execute(
            "SELECT q_value_id, visit_count FROM q_values WHERE agent_type = 'test-generator' AND state_hash = %s",
            (state,),
        ).fetchall()
        conn.execute("DELETE FROM q_values WHERE state_hash = %s", (state,))
    assert len(rows) == 1
    assert ids == {rows[0][0]}
    assert rows[0][1] == AGENTS * per_agent


@pytest.fixture
def slow_learner(stack):
    """An agent type of its own with a small learning rate, so each of many updates still shows."""
    name = f"qa-learner-{uuid.uuid4().hex[:8]}"
    with psycopg.connect(stack.dsn(KEY, role="admin"), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO agent_types (agent_type, display_name, learning_rate, discount_factor) "
            "VALUES (%s, 'QA learner', 0.01, 0.9)",
            (name,),
        )
        yield name
        conn.execute("DELETE FROM q_values WHERE agent_type = %s", (name,))
        conn.execute("DELETE FROM agent_types WHERE agent_type = %s", (name,))


def test_concurrent_q_learning_updates_lose_no_update(stack, slow_learner):
    per_agent = 20
    reward, next_q = Decimal("1"), Decimal("2.5")
    with psycopg.connect(stack.dsn(KEY, role="app"), autocommit=True) as conn:
        conn.execute("SELECT upsert_q_value(%s, 'next', '{}', 'best', '{}', %s)", (slow_learner, float(next_q)))

    def work(conn, _i):
        for _ in range(per_agent):
            conn.execute("SELECT q_learning_update(%s, 'now', 'act', %s, 'next')", (slow_learner, reward))

    _run_agents(stack, AGENTS, work)

    # The same update applied AGENTS * per_agent times, each rounded as NUMERIC(12, 6) stores it.
    alpha, gamma = Decimal("0.01"), Decimal("0.9")
    expected = Decimal(0)
    with localcontext() as ctx:
        ctx.prec = 60
        for _ in range(AGENTS * per_agent):
            expected = (expected + alpha * (reward + gamma * next_q - expected)).quantize(
                Decimal("0.000001"), ROUND_HALF_UP
            )
    with psycopg.connect(stack.dsn(KEY, role="admin")) as conn:
        q, visits = conn.execute(
            "SELECT q_value, visit_count FROM q_values WHERE agent_type = %s AND state_hash = 'now'",
            (slow_learner,),
        ).fetchone()
    assert visits == AGENTS * per_agent
    assert q == expected


def test_a_reader_is_not_blocked_while_a_refresh_holds_its_locks(stack):
    """REFRESH ... CONCURRENTLY takes an EXCLUSIVE lock, which lets SELECTs through; a plain refresh
    (ACCESS EXCLUSIVE) would make the reader wait and hit its lock_timeout."""
    with (
        psycopg.connect(stack.dsn(KEY, role="app")) as refresher,
        psycopg.connect(stack.dsn(KEY, role="readonly")) as reader,
    ):
        refresher.execute("SELECT refresh_materialized_views()")  # transaction left open: locks held
        held = refresher.execute(
            "SELECT c.relname, l.mode FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
            "WHERE l.pid = pg_backend_pid() "
            "AND c.relname IN ('agent_performance_summary', 'pattern_effectiveness')"
        ).fetchall()
        assert ("agent_performance_summary", "ExclusiveLock") in held
        assert ("pattern_effectiveness", "ExclusiveLock") in held
        reader.execute("SET lock_timeout = '5s'")
        assert reader.execute("SELECT count(*) FROM agent_performance_summary").fetchone()[0] >= 18
        reader.execute("SELECT count(*) FROM pattern_effectiveness")
        refresher.commit()


def test_readers_always_see_a_complete_view_during_refreshes(stack):
    stop = threading.Event()
    seen: list[int] = []
    errors: list[BaseException] = []

    def read():
        try:
            with psycopg.connect(stack.dsn(KEY, role="readonly", via="pgbouncer"), autocommit=True) as conn:
                while not stop.is_set():
                    seen.append(conn.execute("SELECT count(*) FROM agent_performance_summary").fetchone()[0])
        except BaseException as exc:  # reported below
            errors.append(exc)

    with psycopg.connect(stack.dsn(KEY, role="admin")) as conn:
        agent_types = conn.execute("SELECT count(*) FROM agent_types").fetchone()[0]
    readers = [threading.Thread(target=read) for _ in range(4)]
    for t in readers:
        t.start()
    try:
        with psycopg.connect(stack.dsn(KEY, role="app", via="pgbouncer"), autocommit=True) as conn:
            for _ in range(10):
                conn.execute("SELECT refresh_materialized_views()")
    finally:
        stop.set()
        for t in readers:
            t.join()
    assert not errors
    assert seen and set(seen) == {agent_types}
