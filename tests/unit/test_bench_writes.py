"""`make bench-writes` (loadtests/writes.py): the lookup measured beside the write paths, held to no ratio."""

from __future__ import annotations

from loadtests import writes

AGENTS = ["test-generator", "test-executor"]


def _runs(tps: float) -> list[dict]:
    return [{"tps": tps, "avg_ms": 1.0, "p99_ms": 2.0, "failed": 0, "updates": 0, "hot_updates": 0}]


def test_get_best_action_runs_the_same_script_on_both_sides():
    before, after = writes.scripts(AGENTS)["qlearning.get_best_action"]
    assert before == after
    assert "SELECT * FROM get_best_action(" in after


def test_the_lookup_row_is_a_read_not_a_missed_ratio():
    result = {
        "revisions": {"before": "0006", "after": "0008"},
        "clients": 18,
        "seconds": 10,
        "rounds": 1,
        "ops": {"qlearning.get_best_action": {"before": _runs(10_000), "after": _runs(9_000)}},
    }
    row = next(line for line in writes.render(result).splitlines() if line.startswith("| qlearning.get_best_action"))
    assert "0.90× (a read)" in row
    assert "(< 1.3)" not in row
