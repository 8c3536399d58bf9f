"""Revision 0009 (issue 15): a reward has one foreign key, (trajectory_id, agent_type) -> its trajectory,
instead of one to agent_types and one to trajectories. The guarantees stay: a reward's trajectory exists,
its agent type is its trajectory's (so it is in agent_types), deleting the trajectory deletes its rewards,
and an agent type in use cannot be deleted. What goes: a reward no longer locks the agent_types row."""

from __future__ import annotations

import json
import uuid

import psycopg
import pytest

from infra import migrations

KEY = "qlearning"
AGENT = "test-generator"
FOREIGN_KEY = "23503"
REWARD_KEY = "rewards_trajectory_id_agent_type_fkey"


@pytest.fixture(scope="module")
def app(stack):
    with psycopg.connect(stack.dsn(KEY, role="app"), autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="module")
def admin(stack):
    with psycopg.connect(stack.dsn(KEY, role="admin"), autocommit=True) as conn:
        yield conn


@pytest.fixture
def trajectory(app):
    """A committed trajectory of AGENT with one reward; removed (with its rewards) afterwards."""
    trajectory_id = uuid.uuid4()
    app.execute(
        "INSERT INTO trajectories (trajectory_id, agent_type, task_id) VALUES (%s, %s, 'qa-reward-key')",
        (trajectory_id, AGENT),
    )
    app.execute(
        "INSERT INTO rewards (agent_type, trajectory_id, state_hash, action_hash, reward_value)"
        " VALUES (%s, %s, 's', 'a', 1)",
        (AGENT, trajectory_id),
    )
    yield trajectory_id
    app.execute("DELETE FROM trajectories WHERE trajectory_id = %s", (trajectory_id,))


def _foreign_keys(conn: psycopg.Connection, table: str) -> dict[str, str]:
    rows = conn.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'f'",
        (table,),
    ).fetchall()
    return dict(rows)


def _rewards(conn: psycopg.Connection, trajectory_id: uuid.UUID) -> int:
    return conn.execute("SELECT count(*) FROM rewards WHERE trajectory_id = %s", (trajectory_id,)).fetchone()[0]


def test_a_reward_has_one_key_to_its_trajectory_and_none_to_agent_types(admin):
    assert _foreign_keys(admin, "rewards") == {
        "rewards_session_id_fkey": "FOREIGN KEY (session_id) REFERENCES sessions(session_id) ON DELETE SET NULL",
        REWARD_KEY: "FOREIGN KEY (trajectory_id, agent_type) REFERENCES trajectories(trajectory_id, agent_type)"
        " ON DELETE CASCADE",
    }


@pytest.mark.parametrize(
    ("agent_type", "why"),
    [("test-executor", "another agent type than its trajectory's"), ("no-such-agent", "an unknown agent type")],
)
def test_a_reward_with_an_agent_type_not_its_trajectorys_is_refused_by_name(app, trajectory, agent_type, why):
    with pytest.raises(psycopg.errors.ForeignKeyViolation) as caught:
        app.execute(
            "INSERT INTO rewards (agent_type, trajectory_id, state_hash, action_hash, reward_value)"
            " VALUES (%s, %s, 's', 'a', 1)",
            (agent_type, trajectory),
        )
    err = caught.value.diag
    assert err.constraint_name == REWARD_KEY, why
    assert f"(trajectory_id, agent_type)=({trajectory}, {agent_type})" in err.message_detail
    assert _rewards(app, trajectory) == 1


def test_insert_trajectories_refuses_a_reward_of_another_agent_type_and_writes_nothing(app):
    task = f"qa-reward-key-{uuid.uuid4().hex[:8]}"
    batch = [
        {"agent_type": AGENT, "task_id": task, "rewards": [{"state_hash": "s", "action_hash": "a", "reward_value": 1}]},
        {
            "agent_type": AGENT,
            "task_id": task,
            "rewards": [{"agent_type": "test-executor", "state_hash": "s", "action_hash": "a", "reward_value": 1}],
        },
    ]
    with pytest.raises(psycopg.errors.ForeignKeyViolation) as caught:
        app.execute("SELECT * FROM insert_trajectories(%s)", (json.dumps(batch),))
    assert caught.value.diag.constraint_name == REWARD_KEY
    assert app.execute("SELECT count(*) FROM trajectories WHERE task_id = %s", (task,)).fetchone()[0] == 0


def test_deleting_a_trajectory_deletes_its_rewards(app, trajectory):
    app.execute("DELETE FROM trajectories WHERE trajectory_id = %s", (trajectory,))
    assert _rewards(app, trajectory) == 0


def test_an_agent_type_with_rewards_cannot_be_deleted(admin):
    """An agent type used only by one trajectory and its reward: its deletion is refused, by the
    trajectory's key now that the reward has none to agent_types, and nothing is deleted."""
    agent = f"qa-reward-key-{uuid.uuid4().hex[:8]}"
    trajectory_id = uuid.uuid4()
    admin.execute("INSERT INTO agent_types (agent_type, display_name) VALUES (%s, 'QA reward key')", (agent,))
    try:
        admin.execute(
            "INSERT INTO trajectories (trajectory_id, agent_type, task_id) VALUES (%s, %s, 'qa-reward-key')",
            (trajectory_id, agent),
        )
        admin.execute(
            "INSERT INTO rewards (agent_type, trajectory_id, state_hash, action_hash, reward_value)"
            " VALUES (%s, %s, 's', 'a', 1)",
            (agent, trajectory_id),
        )
        with pytest.raises(psycopg.errors.ForeignKeyViolation) as caught:
            admin.execute("DELETE FROM agent_types WHERE agent_type = %s", (agent,))
        assert caught.value.diag.constraint_name == "trajectories_agent_type_fkey"
        assert _rewards(admin, trajectory_id) == 1
    finally:
        admin.execute("DELETE FROM trajectories WHERE trajectory_id = %s", (trajectory_id,))
        admin.execute("DELETE FROM agent_types WHERE agent_type = %s", (agent,))


def test_a_trajectorys_agent_type_cannot_change_under_its_rewards(app, trajectory):
    with pytest.raises(psycopg.errors.ForeignKeyViolation) as caught:
        app.execute("UPDATE trajectories SET agent_type = 'test-executor' WHERE trajectory_id = %s", (trajectory,))
    assert caught.value.diag.constraint_name == REWARD_KEY
    assert app.execute("SELECT agent_type FROM trajectories WHERE trajectory_id = %s", (trajectory,)).fetchone() == (
        AGENT,
    )


def test_a_reward_does_not_lock_the_agent_types_row(stack, app, trajectory):
    """Before 0009 each reward took FOR KEY SHARE on its agent_types row, the row every concurrent agent of
    that type locks: a reward now waits for nothing while another transaction holds that row FOR UPDATE."""
    with psycopg.connect(stack.dsn(KEY, role="admin")) as holder:
        holder.execute("SELECT 1 FROM agent_types WHERE agent_type = %s FOR UPDATE", (AGENT,))
        with app.transaction():
            app.execute("SET LOCAL lock_timeout = '2s'")
            app.execute(
                "INSERT INTO rewards (agent_type, trajectory_id, state_hash, action_hash, reward_value)"
                " SELECT %s, %s, 's' || k, 'a', 0.5 FROM generate_series(1, 10) AS k",
                (AGENT, trajectory),
            )
        holder.rollback()
    assert _rewards(app, trajectory) == 11


def test_down_to_0008_restores_both_keys_and_up_replaces_them_again(stack, admin):
    dsn = stack.dsn(KEY)
    try:
        migrations.downgrade(dsn, KEY, "0008")
        keys = _foreign_keys(admin, "rewards")
        assert keys["rewards_agent_type_fkey"] == "FOREIGN KEY (agent_type) REFERENCES agent_types(agent_type)"
        assert keys["rewards_trajectory_id_fkey"] == (
            "FOREIGN KEY (trajectory_id) REFERENCES trajectories(trajectory_id) ON DELETE CASCADE"
        )
        assert REWARD_KEY not in keys
        assert not admin.execute(
            "SELECT 1 FROM pg_constraint WHERE conname = 'uniq_trajectories_trajectory_id_agent_type'"
        ).fetchall()
    finally:  # the session's stack must end at head whatever happened
        migrations.upgrade(dsn, KEY)
    assert REWARD_KEY in _foreign_keys(admin, "rewards")


def test_up_refuses_rewards_of_another_agent_type_naming_them_and_changes_nothing(stack, admin):
    """Rows a 0008 schema allowed (a reward of another agent type than its trajectory's) stop the upgrade
    with how many there are, before any key is dropped."""
    dsn = stack.dsn(KEY)
    trajectory_id = uuid.uuid4()
    try:
        migrations.downgrade(dsn, KEY, "0008")
        admin.execute(
            "INSERT INTO trajectories (trajectory_id, agent_type, task_id) VALUES (%s, %s, 'qa-reward-key')",
            (trajectory_id, AGENT),
        )
        admin.execute(
            "INSERT INTO rewards (agent_type, trajectory_id, state_hash, action_hash, reward_value)"
            " VALUES ('test-executor', %s, 's', 'a', 1)",
            (trajectory_id,),
        )
        with pytest.raises(Exception, match="1 rewards have an agent_type that is not their trajectory's"):
            migrations.upgrade(dsn, KEY)
        assert admin.execute("SELECT version_num FROM alembic_version").fetchone() == ("0008",)
        assert "rewards_agent_type_fkey" in _foreign_keys(admin, "rewards")
    finally:
        admin.execute("DELETE FROM trajectories WHERE trajectory_id = %s", (trajectory_id,))
        migrations.upgrade(dsn, KEY)
    assert REWARD_KEY in _foreign_keys(admin, "rewards")
