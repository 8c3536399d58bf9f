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


def test_each_write_path_shows_its_wal_and_waits_per_transaction():
    """What bounds a path is in the section: its WAL bytes per transaction and its largest waits."""
    run = {
        "tps": 100.0, "avg_ms": 1.0, "p99_ms": 2.0, "failed": 0, "updates": 0, "hot_updates": 0, "inserts": 0,
        "waits": {"LWLock:WALWrite": 0.8, "CPU": 0.2}, "wal_bytes": 6_000_000, "multixact_pages": 1000, "wal_fpi": 50,
    }  # fmt: skip
    result = {
        "revisions": {"before": "0006", "after": "0009"},
        "clients": 18,
        "seconds": 10,
        "rounds": 1,
        "ops": {"qlearning.trajectory_insert": {"before": [dict(run, wal_bytes=7_000_000)], "after": [run]}},
    }
    row = next(
        line for line in writes.render(result).splitlines() if line.startswith("| qlearning.trajectory_insert | 7,")
    )
    assert (
        row
        == "| qlearning.trajectory_insert | 7,000 | 6,000 | 0.050 | 1.00 | 1.00 | 0/0 | LWLock:WALWrite 80%, CPU 20% |"
    )


def test_the_section_under_its_earlier_heading_is_replaced_not_repeated():
    doc = f"# Benchmarks\n\n{writes.OLD_HEADINGS[0]}\n\nold figures\n\n## History\n"
    spliced = writes.splice(doc, writes.HEADING + "\n\nnew figures\n")
    assert "old figures" not in spliced and writes.OLD_HEADINGS[0] not in spliced
    assert spliced.index(writes.HEADING) < spliced.index("## History")
