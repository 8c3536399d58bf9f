"""A trajectory's actions, states and step rewards are one JSONB array each (issue 18, revision 0006).

A plain asyncpg client, as seed 001's clients write them, round-trips a trajectory exactly; the columns
refuse anything but an array; and the migration converts the 30-day volume (scaled down) up, down and
up again with the data identical. The full 30-day round trip is measured in docs/benchmarks.md.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from decimal import Decimal

import asyncpg
import psycopg
import pytest
from psycopg.types.json import Jsonb

from infra import migrations
from infra.seeds import qlearning as seeds

KEY = "qlearning"
ARRAYS = ["actions_taken", "states_visited", "step_rewards"]
VOLUME_SCALE = 0.02  # 1,080 trajectories of 10 steps: every shape of the generator, in a second


async def _client_round_trip(dsn: str, trajectory: dict) -> dict:
    # What a client of seed 001 writes: JSON documents as json.dumps() strings, read with json.loads().
    conn = await asyncpg.connect(dsn)
    try:
        trajectory_id = await conn.fetchval(
            """
            INSERT INTO trajectories (agent_type, task_id, initial_state, final_state, actions_taken,
                                      states_visited, step_rewards, total_reward, success, completed_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, true, now())
            RETURNING trajectory_id
            """,
            "test-generator",
            trajectory["task_id"],
            json.dumps(trajectory["initial_state"]),
            json.dumps(trajectory["final_state"]),
            json.dumps(trajectory["actions_taken"]),
            json.dumps(trajectory["states_visited"]),
            json.dumps(trajectory["step_rewards"]),
            trajectory["total_reward"],
        )
        row = await conn.fetchrow(
            "SELECT task_id, initial_state, final_state, actions_taken, states_visited, step_rewards, total_reward,"
            " jsonb_array_length(actions_taken) AS steps FROM trajectories WHERE trajectory_id = $1",
            trajectory_id,
        )
        await conn.execute("DELETE FROM trajectories WHERE trajectory_id = $1", trajectory_id)
    finally:
        await conn.close()
    got = {name: json.loads(row[name]) for name in ["initial_state", "final_state", *ARRAYS]}
    return {**got, "task_id": row["task_id"], "total_reward": row["total_reward"], "steps": row["steps"]}


def test_a_plain_asyncpg_client_round_trips_a_trajectory_exactly(stack):
    trajectory = {
        "task_id": f"client-{uuid.uuid4().hex[:8]}",
        "initial_state": {"module": "auth", "coverage": 0.5},
        "final_state": {"module": "auth", "coverage": 0.75, "done": True},
        "actions_taken": [{"step": 1, "action": "generate_unit_test", "params": {"retries": 1}}, {"step": 2}],
        "states_visited": [{"step": 1, "tests_run": 10}, {"step": 2, "branches": ["a", "ü"]}],
        "step_rewards": [0.5, -0.125],
        "total_reward": Decimal("0.3750"),
    }
    got = asyncio.run(_client_round_trip(stack.dsn(KEY, role="app", via="pgbouncer"), trajectory))
    assert got == {**trajectory, "steps": 2}


@pytest.mark.parametrize("column", ARRAYS)
def test_an_omitted_array_defaults_to_an_empty_json_array(stack, column):
    async def default() -> str:
        conn = await asyncpg.connect(stack.dsn(KEY, role="app", via="pgbouncer"))
        try:
            async with conn.transaction():
                value = await conn.fetchval(
                    f"INSERT INTO trajectories (agent_type, task_id) VALUES ('test-generator', $1) RETURNING {column}",
                    f"default-{uuid.uuid4().hex[:8]}",
                )
                raise _Rollback(value)
        except _Rollback as done:
            return done.args[0]
        finally:
            await conn.close()

    assert json.loads(asyncio.run(default())) == []


class _Rollback(Exception):
    pass


# --- the migration on data -------------------------------------------------------------------------------

SNAPSHOT = "SELECT count(*), md5(string_agg(t::text, '|' ORDER BY trajectory_id)) FROM trajectories AS t"
VALUES = f"SELECT trajectory_id, {', '.join(ARRAYS)} FROM trajectories ORDER BY trajectory_id"
TYPES = (
    "SELECT array_agg(format_type(atttypid, atttypmod) ORDER BY attname) FROM pg_attribute"
    " WHERE attrelid = 'trajectories'::regclass AND attname = ANY (%s)"
)
# Shapes beyond the generator's: empty arrays, nested arrays, JSON null and scalar elements, Unicode.
EDGE_ROWS = [
    ([], [], []),
    ([[1, 2], [], {"a": None}], ["s", 1, True, None], [0.5, -1e-7, 12345678.875]),
    ([{"ü": "ß", "emoji": "\u2705"}], [{"nested": {"deep": [{"x": 1}]}}], [None]),
]


@pytest.fixture
def volume(stack):
    """qlearning_db holding the 30-day volume at VOLUME_SCALE and the edge rows, at head."""
    with psycopg.connect(stack.dsn(KEY), autocommit=True) as conn:
        seeds.volume(conn, VOLUME_SCALE)
        for i, arrays in enumerate(EDGE_ROWS):
            conn.execute(
                f"INSERT INTO trajectories (agent_type, task_id, {', '.join(ARRAYS)})"
                " VALUES ('test-generator', %s, %s, %s, %s)",
                (f"edge-{i}", *map(Jsonb, arrays)),
            )
    return stack.dsn(KEY)


def test_migration_0006_converts_the_volume_down_and_up_with_the_data_identical(volume):
    with psycopg.connect(volume) as conn:
        before, values = conn.execute(SNAPSHOT).fetchone(), conn.execute(VALUES).fetchall()
    expected_rows = seeds.volume_counts(VOLUME_SCALE)["trajectories"] + len(EDGE_ROWS)
    assert before[0] == expected_rows
    try:
        migrations.downgrade(volume, KEY, "0005")
        with psycopg.connect(volume) as conn:
            assert conn.execute(TYPES, (ARRAYS,)).fetchone()[0] == ["jsonb[]"] * 3
            # psycopg reads a jsonb[] as a list of its elements: the same lists as the JSON arrays were.
            assert conn.execute(VALUES).fetchall() == values
    finally:  # the session's stack must end at head whatever happened
        migrations.upgrade(volume, KEY)
    with psycopg.connect(volume) as conn:
        assert conn.execute(TYPES, (ARRAYS,)).fetchone()[0] == ["jsonb"] * 3
        assert conn.execute(SNAPSHOT).fetchone() == before
