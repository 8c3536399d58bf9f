"""The 20-second smoke load on the test stack: every operation runs and none fails.

Latency and throughput are judged by `agentdb load` and `make bench`, never here. The stack gets a
small volume first (qlearning at a tenth of the 30-day volume, the others at a twentieth), which
also checks that `agentdb seed --volume 30d --scale` gives the proportional row counts.
"""

from __future__ import annotations

import json

import pytest

SMOKE_SECONDS = 20
SMOKE_USERS = 6  # at least one of each of the five user classes

# Seed 000's 30-day volume times 0.1 (agent_states: 36 x 0.1 = 3.6, rounded).
QLEARNING_AT_TENTH = [
    ("agent_types", 18),
    ("sessions", 540),
    ("q_values", 1_800),
    ("trajectories", 5_400),
    ("rewards", 54_000),
    ("patterns", 90),
    ("agent_states", 4),
]

# Every operation the issue lists, by the name its Locust user reports.
OPERATIONS = [
    "qlearning.get_best_action",
    "qlearning.upsert_q_value",
    "qlearning.upsert_batch_100",
    "qlearning.trajectory_insert",
    "qlearning.trajectory_batch_10",
    "qlearning.pattern_search_fuzzy",
    "qlearning.patterns_top_by_reward",
    "qlearning.hot_cache_lookup",
    "qlearning.hot_cache_upsert",
    "orchestrator.task_claim",
    "orchestrator.task_enqueue",
    "orchestrator.point_transaction",
    "orchestrator.leaderboard_read",
    "agentic.message_append",
    "agentic.recent_messages",
    "afs.task_lifecycle",
]


@pytest.fixture(scope="module")
def volume(stack):
    stack.cli("seed", "--db", "qlearning", "--volume", "30d", "--scale", "0.1")
    for key in ("orchestrator", "agentic", "afs"):
        stack.cli("seed", "--db", key, "--volume", "30d", "--scale", "0.05")
    return stack


@pytest.mark.parametrize(("table", "rows"), QLEARNING_AT_TENTH)
def test_qlearning_volume_at_a_tenth_has_proportional_counts(volume, table, rows):
    assert int(volume.psql("qlearning", f"SELECT count(*) FROM {table}")) == rows


def test_every_trajectory_has_its_ten_rewards(volume):
    uneven = volume.psql(
        "qlearning",
        "SELECT count(*) FROM (SELECT t.trajectory_id FROM trajectories AS t"
        " LEFT JOIN rewards AS r USING (trajectory_id) GROUP BY 1 HAVING count(r.*) <> 10) AS x",
    )
    assert int(uneven) == 0


def test_agentic_volume_has_a_10000_message_history(volume):
    longest = volume.psql(
        "agentic",
        "SELECT max(n) FROM (SELECT count(*) AS n FROM conversation_history GROUP BY session_id) AS s",
    )
    assert int(longest) >= 10_000


def test_volume_refuses_a_non_positive_scale(volume):
    result = volume.cli("seed", "--db", "qlearning", "--volume", "30d", "--scale", "0", check=False)
    assert result.returncode == 2
    assert "scale must be a number greater than 0" in result.stderr


@pytest.fixture(scope="module")
def smoke(volume, tmp_path_factory):
    report = tmp_path_factory.mktemp("load")
    result = volume.cli(
        "load", "--duration", f"{SMOKE_SECONDS}s", "--users", str(SMOKE_USERS), "--report-dir", str(report), check=False
    )
    # 0 = every target met, 1 = a target missed (expected on small machines); anything else is a fault.
    assert result.returncode in (0, 1), result.stdout + result.stderr
    return json.loads((report / "summary.json").read_text()), report, result


def test_smoke_load_has_no_failed_request(smoke):
    summary, _, _ = smoke
    failed = {op: m["failures"] for op, m in summary["operations"].items() if m["failures"]}
    assert failed == {}, summary["errors"]


@pytest.mark.parametrize("operation", OPERATIONS)
def test_smoke_load_ran_the_operation(smoke, operation):
    summary, _, _ = smoke
    assert summary["operations"].get(operation, {}).get("requests", 0) > 0


@pytest.mark.parametrize("artifact", ["locust.html", "locust_stats.csv", "summary.json", "latency.png"])
def test_load_writes_the_report(smoke, artifact):
    _, report, result = smoke
    assert (report / artifact).stat().st_size > 0
    assert "verdict" in result.stdout


def test_load_refuses_a_bad_duration(volume):
    result = volume.cli("load", "--duration", "soon", check=False)
    assert result.returncode == 2
    assert "--duration" in result.stderr
