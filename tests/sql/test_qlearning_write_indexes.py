"""Revision 0008 (issue 15): a trajectory and its rewards write only the index entries some reader uses,
and the readers of the changed indexes still get them; down restores 0007's indexes."""

from __future__ import annotations

import psycopg
import pytest

from infra import migrations

KEY = "qlearning"


class _Rollback(Exception):
    pass


@pytest.fixture(scope="module")
def admin(stack):
    with psycopg.connect(stack.dsn(KEY, role="admin"), autocommit=True) as conn:
        yield conn


def _indexes(conn: psycopg.Connection, table: str) -> dict[str, str]:
    rows = conn.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename = %s", (table,)
    ).fetchall()
    return {name: definition.split(" USING ", 1)[1] for name, definition in rows}


def _plan_nodes(plan: dict) -> list[dict]:
    nodes = [plan]
    for child in plan.get("Plans", []):
        nodes += _plan_nodes(child)
    return nodes


def test_rewards_carry_only_the_indexes_their_readers_use(admin):
    """Ten rewards per trajectory: each index of rewards is ten entries per trajectory. The primary key,
    the trajectory (the cascade, the cleanup, the views) and the session (its foreign key) are read."""
    assert _indexes(admin, "rewards") == {
        "rewards_pkey": "btree (reward_id)",
        "idx_rewards_trajectory_id": "btree (trajectory_id)",
        "idx_rewards_session_id": "btree (session_id) WHERE (session_id IS NOT NULL)",
    }


@pytest.mark.parametrize("plan_cache_mode", ["force_custom_plan", "force_generic_plan"])
def test_a_sessions_trajectories_are_found_through_an_index_without_sessionless_rows(admin, plan_cache_mode):
    """`session_id = $1` implies NOT NULL, so a partial index serves it, a generic plan's parameter too
    (what the foreign key's ON DELETE SET NULL runs). Sequential scans off: a plan must use the index or
    fall back to the scan the planner was told to avoid."""
    with pytest.raises(_Rollback), admin.transaction():
        admin.execute("SET LOCAL enable_seqscan = off")
        admin.execute(f"SET LOCAL plan_cache_mode = {plan_cache_mode}")
        admin.execute("PREPARE by_session(uuid) AS SELECT trajectory_id FROM trajectories WHERE session_id = $1")
        plan = admin.execute(
            "EXPLAIN (FORMAT JSON) EXECUTE by_session('00000000-0000-0000-0000-000000000015')"
        ).fetchone()[0][0]["Plan"]
        admin.execute("DEALLOCATE by_session")
        raise _Rollback
    assert any(n.get("Index Name") == "idx_trajectories_session_id" for n in _plan_nodes(plan)), plan
    assert _indexes(admin, "trajectories")["idx_trajectories_session_id"].endswith("WHERE (session_id IS NOT NULL)")


def test_down_to_0007_restores_its_indexes_and_up_drops_them_again(stack, admin):
    dsn = stack.dsn(KEY)
    try:
        migrations.downgrade(dsn, KEY, "0007")
        assert (
            _indexes(admin, "rewards")["idx_rewards_agent_type_observed_at"] == "btree (agent_type, observed_at DESC)"
        )
        assert _indexes(admin, "trajectories")["idx_trajectories_session_id"] == "btree (session_id)"
    finally:  # the session's stack must end at head whatever happened
        migrations.upgrade(dsn, KEY)
    assert "idx_rewards_agent_type_observed_at" not in _indexes(admin, "rewards")
    assert _indexes(admin, "trajectories")["idx_trajectories_session_id"] == (
        "btree (session_id) WHERE (session_id IS NOT NULL)"
    )
