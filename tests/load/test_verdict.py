"""The exact histogram and the verdict logic, on synthetic samples (no servers)."""

from __future__ import annotations

import pytest

from loadtests.histogram import LatencyHistogram
from loadtests.verdict import DEFAULT_TARGETS, Measured, TargetsError, judge, load_targets

# The seeds' table (seed 001 "Benchmarks (18 Concurrent Agents)") and batch / agentic targets.
SEED_TARGETS = [
    ("qlearning.get_best_action", "p50_ms", 0.8),
    ("qlearning.get_best_action", "p99_ms", 3),
    ("qlearning.get_best_action", "throughput_ops", 10_000),
    ("qlearning.upsert_q_value", "p50_ms", 1.5),
    ("qlearning.upsert_q_value", "p99_ms", 5),
    ("qlearning.upsert_q_value", "throughput_ops", 5_000),
    ("qlearning.trajectory_insert", "p50_ms", 2),
    ("qlearning.trajectory_insert", "p99_ms", 8),
    ("qlearning.trajectory_insert", "throughput_ops", 3_000),
    ("qlearning.pattern_search_fuzzy", "p50_ms", 5),
    ("qlearning.pattern_search_fuzzy", "p99_ms", 15),
    ("qlearning.pattern_search_fuzzy", "throughput_ops", 2_000),
    ("qlearning.upsert_batch_100", "p99_ms", 50),
    ("qlearning.trajectory_batch_10", "p99_ms", 30),
    ("agentic.recent_messages", "p99_ms", 100),
    ("agentic.message_append", "p99_ms", 100),
]


@pytest.mark.parametrize(("operation", "metric", "value"), SEED_TARGETS)
def test_targets_file_holds_the_seed_target(operation, metric, value):
    assert load_targets(DEFAULT_TARGETS)[operation][metric] == value


def test_percentiles_are_exact_to_the_microsecond():
    hist = LatencyHistogram()
    for us in range(1, 1001):  # 0.001 ms .. 1.000 ms
        hist.record_ms(us / 1000)
    assert hist.total == 1000
    assert hist.percentile_us(50) == 500
    assert hist.percentile_us(99) == 990
    assert hist.percentile_ms(100) == 1.0


def test_sub_millisecond_values_stay_apart():
    """Locust would call both of these '1 ms'; the verdict must not."""
    hist = LatencyHistogram()
    for ms in [0.8] * 50 + [1.4] * 50:
        hist.record_ms(ms)
    assert hist.percentile_ms(50) == 0.8
    assert hist.percentile_ms(51) == 1.4


def test_histograms_merge_and_round_trip():
    a, b = LatencyHistogram(), LatencyHistogram()
    a.record_ms(0.25)
    b.record_ms(0.25)
    b.record_ms(3.0)
    merged = LatencyHistogram.from_dict(a.to_dict()).merge(b)
    assert merged.counts == {250: 2, 3000: 1}


@pytest.mark.parametrize("bad", [-1.0, float("nan")])
def test_a_negative_or_nan_latency_is_refused(bad):
    with pytest.raises(ValueError, match="latency"):
        LatencyHistogram().record_ms(bad)


def _measured(ms: list[float], seconds: float = 1.0, failures: int = 0) -> Measured:
    hist = LatencyHistogram()
    for x in ms:
        hist.record_ms(x)
    return Measured.from_histogram(hist, failures, seconds)


@pytest.mark.parametrize(
    ("samples", "seconds", "expected"),
    [
        ([0.5] * 100, 0.01, {"p50_ms": "met", "p99_ms": "met", "throughput_ops": "met"}),
        ([0.9] * 100, 0.01, {"p50_ms": "missed", "p99_ms": "met", "throughput_ops": "met"}),
        ([0.5] * 98 + [4.0] * 2, 0.01, {"p50_ms": "met", "p99_ms": "missed", "throughput_ops": "met"}),
        ([0.5] * 100, 1.0, {"p50_ms": "met", "p99_ms": "met", "throughput_ops": "missed"}),
        ([0.8] * 100, 0.01, {"p50_ms": "met", "p99_ms": "met", "throughput_ops": "met"}),  # at the target is met
    ],
)
def test_verdict_per_metric(samples, seconds, expected):
    targets = {"op": {"p50_ms": 0.8, "p99_ms": 3.0, "throughput_ops": 10_000}}
    rows = judge(targets, {"op": _measured(samples, seconds)})
    assert {r.metric: r.verdict for r in rows} == expected


def test_an_operation_that_never_ran_misses_every_target():
    rows = judge({"op": {"p99_ms": 5.0, "throughput_ops": 1.0}}, {})
    assert [(r.metric, r.measured, r.verdict) for r in rows] == [
        ("p99_ms", None, "missed"),
        ("throughput_ops", None, "missed"),
    ]


def test_an_operation_without_target_is_reported_not_judged():
    rows = judge({}, {"extra": _measured([2.0])})
    assert [(r.operation, r.verdict, r.measured) for r in rows] == [("extra", "info", 2.0)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("operations: [1, 2]", "needs a mapping"),
        ("operations: {op: {p50: 1}}", "unknown key 'p50'"),
        ("operations: {op: {p99_ms: -1}}", "p99_ms must be a number > 0"),
        ("operations: {op: {p99_ms: fast}}", "p99_ms must be a number > 0"),
        ("operations: {op: 3}", "expected a mapping"),
    ],
)
def test_a_bad_target_profile_names_the_problem(tmp_path, text, message):
    path = tmp_path / "targets.yaml"
    path.write_text(text)
    with pytest.raises(TargetsError, match=message):
        load_targets(path)
