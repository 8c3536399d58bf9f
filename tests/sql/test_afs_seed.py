"""`agentdb seed --db afs` data: seed 003's exact volumes and distributions, reproducible from the seed."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest

from infra.databases import DATABASES
from infra.seeds import afs

KEY = "afs"
ANCHOR = datetime(2026, 1, 1, tzinfo=UTC)

# (status, orders at scale 1, percent): seed 003, "Status Distribution".
STATUSES = [("completed", 7_500, 75.0), ("pending", 1_250, 12.5), ("processing", 1_250, 12.5)]
VOLUMES = [("users", 1_000), ("orders", 10_000), ("payments", 10_000)]

FINGERPRINT = """
SELECT (SELECT md5(string_agg(concat_ws('|', id, email, created_at), ',' ORDER BY id)) FROM users),
       (SELECT md5(string_agg(concat_ws('|', id, user_id, total, status, created_at), ',' ORDER BY id))
          FROM orders),
       (SELECT md5(string_agg(concat_ws('|', id, order_id, amount, status, created_at), ',' ORDER BY id))
          FROM payments)
"""


@pytest.fixture(scope="module")
def conn(stack):
    """The seeded database as `agentdb seed --db afs` leaves it: owner role, default seed, committed."""
    with psycopg.connect(stack.dsn(KEY)) as c:
        c.execute(f'SET ROLE "{DATABASES[KEY].owner}"')
        assert afs.volume(c) == dict(VOLUMES)
        c.commit()
        yield c


def scalar(conn, sql: str, *args):
    return conn.execute(sql, args).fetchone()[0]


@pytest.mark.parametrize(("table", "rows"), VOLUMES)
def test_exact_volume(conn, table, rows):
    assert scalar(conn, f"SELECT count(*) FROM {table}") == rows


@pytest.mark.parametrize(("status", "orders", "percent"), STATUSES)
def test_order_status_share(conn, status, orders, percent):
    count, share = conn.execute(
        "SELECT count(*), round(100.0 * count(*) / (SELECT count(*) FROM orders), 1) FROM orders WHERE status = %s",
        (status,),
    ).fetchone()
    assert (count, float(share)) == (orders, percent)


def test_no_other_order_status(conn):
    assert scalar(conn, "SELECT count(*) FROM orders WHERE status <> ALL (%s)", [s[0] for s in STATUSES]) == 0


def test_totals_between_10_and_500_dollars(conn):
    low, high, distinct = conn.execute("SELECT min(total), max(total), count(DISTINCT total) FROM orders").fetchone()
    assert 10 <= low < 11 and 499 < high <= 500
    assert distinct > 5_000  # random amounts, not a handful of prices


@pytest.mark.parametrize("table", ["users", "orders", "payments"])
def test_created_at_spread_over_the_past_year(conn, table):
    early, late, months = conn.execute(
        f"SELECT min(created_at) >= now() - interval '366 days', max(created_at) <= now(),"
        f" count(DISTINCT date_trunc('month', created_at)) FROM {table}"
    ).fetchone()
    assert early and late
    assert months >= 12


def test_every_user_has_orders_in_varied_numbers(conn):
    users, fewest, most = conn.execute(
        "SELECT count(*), min(n), max(n) FROM (SELECT count(*) AS n FROM orders GROUP BY user_id) AS per_user"
    ).fetchone()
    assert users == 1_000
    assert fewest >= 1 and most >= 5 * fewest


def test_orders_follow_their_user(conn):
    assert (
        scalar(
            conn,
            "SELECT count(*) FROM orders o JOIN users u ON u.id = o.user_id WHERE o.created_at < u.created_at",
        )
        == 0
    )


def test_emails_are_unique_and_look_real(conn):
    assert (
        scalar(
            conn,
            "SELECT count(*) FROM users WHERE email !~ '^[a-z]+\\.[a-z]+[0-9]+@example\\.(com|org|net)$'",
        )
        == 0
    )


def test_payments_are_one_to_one_with_matching_amount_status_and_time(conn):
    matched, orders = conn.execute(
        "SELECT count(DISTINCT p.order_id), (SELECT count(*) FROM orders) FROM payments p JOIN orders o"
        " ON o.id = p.order_id AND o.total = p.amount AND o.status = p.status AND o.created_at = p.created_at"
    ).fetchone()
    assert matched == orders == scalar(conn, "SELECT count(*) FROM payments")


def test_sequences_continue_after_the_seeded_ids(conn):
    for table in ("users", "orders", "payments"):
        assert scalar(conn, f"SELECT last_value FROM {table}_id_seq") == scalar(conn, f"SELECT max(id) FROM {table}")


def fingerprint(conn, **kwargs) -> tuple[str, str, str]:
    afs.volume(conn, **kwargs)
    return conn.execute(FINGERPRINT).fetchone()


def test_the_same_seed_gives_the_same_rows(conn):
    try:
        first = fingerprint(conn, seed=42, anchor=ANCHOR)
        second = fingerprint(conn, seed=42, anchor=ANCHOR)
        other = fingerprint(conn, seed=7, anchor=ANCHOR)
    finally:
        conn.rollback()
    assert first == second
    assert all(a != b for a, b in zip(first, other, strict=True))


def test_scale_keeps_the_shares_exact(conn):
    try:
        assert afs.volume(conn, scale=0.1, seed=3) == {"users": 100, "orders": 1_000, "payments": 1_000}
        rows = dict(conn.execute("SELECT status, count(*) FROM orders GROUP BY status").fetchall())
    finally:
        conn.rollback()
    assert rows == {status: orders // 10 for status, orders, _ in STATUSES}


@pytest.mark.parametrize("scale", [0, -1.0, 0.0001])
def test_a_scale_without_users_is_refused(conn, scale):
    with pytest.raises(ValueError, match="scale"):
        afs.volume(conn, scale=scale)
    conn.rollback()


def test_sample_loads_the_documents_worked_example(conn):
    try:
        result = afs.sample(conn)
        winner, applied, agents, baselines = conn.execute(
            "SELECT p.proposal_type, d.applied_to_main,"
            " (SELECT count(*) FROM jsonb_object_keys(d.all_scores)),"
            " (SELECT count(*) FROM benchmark_results b JOIN optimization_proposals q ON q.id = b.proposal_id"
            "   JOIN agent_executions e ON e.id = q.agent_execution_id"
            "  WHERE e.task_id = d.task_id AND b.query_name = 'baseline')"
            " FROM consensus_decisions d JOIN optimization_proposals p ON p.id = d.winning_proposal_id"
            " WHERE d.task_id = %s",
            (result["task_id"],),
        ).fetchone()
    finally:
        conn.rollback()
    assert result["users"] == 10 and result["orders"] == 100
    assert (winner, applied, agents, baselines) == ("partial_index", False, 3, 3)


def test_agentdb_seed_loads_the_documents_volumes(stack, conn):
    conn.rollback()  # hold no lock while the CLI truncates
    stack.cli("seed", "--db", KEY)
    counts = conn.execute(
        "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM orders), (SELECT count(*) FROM payments),"
        " (SELECT count(*) FROM orders WHERE status = 'completed')"
    ).fetchone()
    assert counts == (1_000, 10_000, 10_000, 7_500)
