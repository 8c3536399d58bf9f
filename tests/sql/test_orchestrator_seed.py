"""`agentdb seed --db orchestrator --sample` loads seed 002's development data set, once."""

from __future__ import annotations

import psycopg
import pytest

KEY = "orchestrator"

# The document's "Seed Data" list: at least this many rows of each.
EXPECTED = {
    "agents": 10,
    "tasks": 10,
    "achievements": 10,
    "voting_sessions": 3,
    "brainstorm_sessions": 3,
    "trust_graph": 10,
    "battles": 2,
    "leaderboard_rankings": 10,
    "mentorship_pairings": 3,
}


@pytest.fixture(scope="module")
def seeded(stack):
    stack.cli("seed", "--db", KEY, "--sample")
    stack.cli("seed", "--db", KEY, "--sample")  # a second run adds nothing
    with psycopg.connect(stack.dsn(KEY), autocommit=True) as c:
        yield c


@pytest.mark.parametrize(("table", "minimum"), EXPECTED.items())
def test_sample_rows(seeded, table, minimum):
    assert seeded.execute(f"SELECT count(*) FROM {table}").fetchone()[0] >= minimum


def test_sample_is_loaded_once(seeded):
    assert seeded.execute("SELECT count(*) FROM agents WHERE agent_id LIKE 'agent-__'").fetchone()[0] == 10


def test_sample_spans_tiers_and_task_states(seeded):
    tiers = seeded.execute("SELECT count(DISTINCT current_tier) FROM agents WHERE agent_id LIKE 'agent-__'")
    assert tiers.fetchone()[0] >= 4
    states = seeded.execute("SELECT count(DISTINCT status) FROM tasks WHERE task_id LIKE 'task-__'")
    assert states.fetchone()[0] >= 5
