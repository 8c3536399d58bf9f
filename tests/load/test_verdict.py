"""The exact histogram, the verdict logic and the report's chart, on synthetic samples (no servers)."""

from __future__ import annotations

import pytest

from loadtests.histogram import LatencyHistogram
from loadtests.verdict import (
    DEFAULT_TARGETS,
    Generator,
    Measured,
    Pgbench,
    TargetsError,
    judge,
    load_targets,
    verdict,
)

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


IDLE = Generator(cpu_percent=(40.0, 35.0))
BUSY = Generator(cpu_percent=(40.0, 96.0))  # one worker at the limit is enough
WARNED = Generator(cpu_percent=(60.0,), cpu_warnings=1)  # Locust's own warning, whatever the average


def _judge_alone(samples, seconds, pgbench=None, generator=IDLE):
    targets = {"op": {"p50_ms": 0.8, "p99_ms": 3.0, "throughput_ops": 10_000}}
    capacity = {"op": _measured(samples, seconds)}
    return judge(targets, capacity, {}, {"op": pgbench} if pgbench else {}, {"op": generator}, IDLE)


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
def test_verdict_per_metric_with_an_idle_generator_and_no_pgbench(samples, seconds, expected):
    rows = _judge_alone(samples, seconds)
    assert {r.metric: r.verdict for r in rows if r.phase == "capacity"} == expected


# 345 lookups/s against 10,000/s (the report): whose fault depends on the run's other figures.
@pytest.mark.parametrize(
    ("pgbench", "generator", "expected"),
    [
        (None, BUSY, "generator-bound"),  # a worker saturated
        (None, WARNED, "generator-bound"),  # Locust warned about its CPU
        (Pgbench(45_000), IDLE, "generator-bound"),  # the ceiling: pgbench did it alone in this run
        (Pgbench(45_000), BUSY, "generator-bound"),
        (Pgbench(6_000), BUSY, "missed"),  # pgbench misses it too: the database's, saturated or not
        (Pgbench(6_000), IDLE, "missed"),
        (None, IDLE, "missed"),  # nothing else to blame
    ],
)
def test_throughput_shortfall_verdict(pgbench, generator, expected):
    rows = _judge_alone([1.0] * 345, 1.0, pgbench, generator)
    (row,) = [r for r in rows if r.metric == "throughput_ops"]
    assert (row.measured, row.verdict) == (345.0, expected)
    assert row.pgbench == (pgbench.tps if pgbench else None)
    assert row.worker_cpu == generator.max_demand
    assert row.reason


@pytest.mark.parametrize(
    ("metric", "target", "measured", "pgbench", "generator", "ceiling", "expected"),
    [
        ("p99_ms", 3.0, 2.0, 9.0, BUSY, True, "met"),  # met is met, whatever else happened
        ("p99_ms", 3.0, 7.0, 2.0, IDLE, True, "generator-bound"),
        ("p99_ms", 3.0, 7.0, 2.0, IDLE, False, "missed"),  # pgbench alone is no ceiling for the mix
        ("p99_ms", 3.0, 7.0, 2.0, BUSY, False, "generator-bound"),
        ("p99_ms", 3.0, 7.0, 4.0, BUSY, True, "missed"),
        ("p50_ms", 0.8, None, 0.5, BUSY, True, "missed"),  # never ran
        ("throughput_ops", 100.0, 100.0, None, IDLE, True, "met"),
    ],
)
def test_verdict_rule(metric, target, measured, pgbench, generator, ceiling, expected):
    assert verdict(metric, target, measured, pgbench, generator, ceiling)[0] == expected


@pytest.mark.parametrize(
    ("cpu", "warnings", "waiting", "saturated"),
    [
        ((), 0, (), False),
        ((89.9,), 0, (), False),
        ((90.0,), 0, (), True),
        ((10.0, 95.0), 0, (), True),
        ((10.0,), 2, (), True),
        # On a machine shared with the database: on a CPU 30 %, waiting for one 65 % of the stage.
        ((30.0,), 0, (65.0,), True),
        ((30.0,), 0, (50.0,), False),
    ],
)
def test_generator_saturation(cpu, warnings, waiting, saturated):
    assert Generator(cpu, warnings, waiting).saturated is saturated


def test_a_starved_worker_is_named_in_the_reason():
    result, reason = verdict("p50_ms", 0.8, 5.0, None, Generator((30.0,), 0, (65.0,)), ceiling=False)
    assert result == "generator-bound"
    assert reason == "a Locust worker needed 95% of a core (30% on it, 65% waiting for it)"


def test_the_mixed_phase_judges_latency_only_and_says_so():
    targets = {"op": {"p99_ms": 3.0, "throughput_ops": 10_000}}
    rows = judge(targets, {}, {"op": _measured([1.0] * 10, 1.0)}, {"op": Pgbench(20_000, 0.5, 2.0)}, {}, IDLE)
    assert [(r.phase, r.metric, r.verdict, r.pgbench) for r in rows] == [("mixed", "p99_ms", "met", 2.0)]


def test_an_operation_that_never_ran_misses_every_target():
    targets = {"op": {"p99_ms": 5.0, "throughput_ops": 1.0}}
    rows = judge(targets, {"op": Measured(0, 0, None, None, None, 0.0)}, {}, {}, {}, IDLE)
    assert [(r.phase, r.metric, r.measured, r.verdict) for r in rows] == [
        ("capacity", "p99_ms", None, "missed"),
        ("capacity", "throughput_ops", None, "missed"),
        ("mixed", "p99_ms", None, "missed"),
    ]


def test_an_operation_without_target_is_reported_not_judged():
    rows = judge({}, {}, {"extra": _measured([2.0])}, {}, {}, IDLE)
    assert [(r.phase, r.operation, r.verdict, r.measured) for r in rows] == [("mixed", "extra", "info", 2.0)]


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


@pytest.mark.parametrize(("machine", "stack", "workers"), [(2, 2, 1), (8, 2, 6), (4, 8, 1), (1, 1, 1)])
def test_default_workers_are_the_cpus_left_over_never_less_than_one(machine, stack, workers):
    from loadtests.load import default_workers

    assert default_workers(stack, machine) == workers


def test_capacity_plan_refuses_an_unknown_operation():
    from loadtests.load import capacity_plan

    with pytest.raises(ValueError, match="unknown operation.*qlearning.nope"):
        capacity_plan({}, ["qlearning.get_best_action"], ["qlearning.nope"])


def test_capacity_plan_defaults_to_every_targeted_operation_the_locustfile_has():
    from loadtests.load import capacity_plan

    targets = {"b": {"p99_ms": 1.0}, "a": {"p99_ms": 1.0}, "gone": {"p99_ms": 1.0}}
    assert capacity_plan(targets, ["a", "b", "c"], None) == ["a", "b"]


def test_pgbench_percentiles_come_from_its_transaction_log(tmp_path):
    from loadtests.bench import _log_percentiles

    # pgbench -l: client_id transaction_no latency_us script_no epoch_s epoch_us
    (tmp_path / "pgbench_log.1").write_text("".join(f"0 {i} {i * 10} 0 1 2\n" for i in range(1, 101)))
    assert _log_percentiles(tmp_path) == (0.5, 0.99)


@pytest.mark.parametrize(
    ("dsn", "url", "password"),
    [
        (
            "postgresql://app:s%40cret@127.0.0.1:6432/qlearning_db",
            "postgresql://app@127.0.0.1:6432/qlearning_db",
            "s@cret",
        ),
        ("postgresql://app@127.0.0.1/qlearning_db", "postgresql://app@127.0.0.1/qlearning_db", None),
    ],
)
def test_a_command_line_dsn_leaves_its_password_in_the_environment(dsn, url, password):
    from infra.credentials import without_password

    assert without_password(dsn)[0] == url
    assert without_password(dsn)[1].get("PGPASSWORD") == password


def _summary(ops: int) -> dict:
    m = {"requests": 10, "failures": 0, "p50_ms": 1.0, "p99_ms": 100.0, "max_ms": 200.0, "throughput_ops": 1e5}
    names = [f"db.operation_{i}" for i in range(ops)]
    return {
        "phases": {
            "capacity": {"operations": dict.fromkeys(names, m)},
            "mixed": {"operations": dict.fromkeys(names, m)},
        },
        "pgbench": {n: {"tps": 2e5, "p50_ms": 0.5, "p99_ms": 300.0} for n in names},
    }


@pytest.mark.parametrize("ops", [1, 16, 40])
def test_the_chart_legend_covers_no_bar(ops):
    """The legend must sit outside every panel, whatever the number of operations."""
    import matplotlib.pyplot as plt

    from loadtests.report import figure

    fig = figure(_summary(ops), {}, "test")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legend = fig.legends[0].get_window_extent(renderer)
    try:
        for ax in fig.axes:
            assert not legend.overlaps(ax.get_window_extent(renderer)), ax.get_xlabel()
            for bar in ax.patches:
                assert not legend.overlaps(bar.get_window_extent(renderer))
    finally:
        plt.close(fig)
