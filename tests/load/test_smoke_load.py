"""The smoke load on the test stack: both phases on two Locust workers; every operation runs, none fails.

Latency and throughput are judged by `agentdb load` and `make bench`, never here. The stack gets a
small volume first (qlearning at a tenth of the 30-day volume, the others at a twentieth), which
also checks that `agentdb seed --volume 30d --scale` gives the proportional row counts. The run
is short: two operations alone for a few seconds each (pgbench, then Locust), then the mixed profile.
"""

from __future__ import annotations

import json
import subprocess
import threading

import pytest

from loadtests.verdict import DEFAULT_TARGETS, load_targets

SMOKE_SECONDS = 12
SMOKE_CAPACITY_SECONDS = 3
SMOKE_USERS = 6  # at least one of each of the five user classes
SMOKE_WORKERS = 2  # Locust's distributed path: the samples of both must reach the master
CAPACITY = ["qlearning.get_best_action", "qlearning.upsert_q_value", "qlearning.upsert_batch_100"]

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
    """Run the load; returns (summary, report directory, CLI result, every command line seen meanwhile)."""
    report = tmp_path_factory.mktemp("load")
    seen: set[str] = set()
    done = threading.Event()

    def watch() -> None:  # the process list while the load runs: pgbench, the master, the workers
        while not done.wait(0.3):
            ps = subprocess.run(["ps", "-eww", "-o", "args"], capture_output=True, text=True, check=False)
            seen.update(ps.stdout.splitlines())

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    result = volume.cli(
        "load",
        "--duration",
        f"{SMOKE_SECONDS}s",
        "--capacity-duration",
        f"{SMOKE_CAPACITY_SECONDS}s",
        "--capacity-operations",
        ",".join(CAPACITY),
        "--users",
        str(SMOKE_USERS),
        "--workers",
        str(SMOKE_WORKERS),
        "--report-dir",
        str(report),
        check=False,
    )
    done.set()
    watcher.join()
    # 0 = no target missed, 1 = a target missed (expected on small machines); anything else is a fault.
    assert result.returncode in (0, 1), result.stdout + result.stderr
    return json.loads((report / "summary.json").read_text()), report, result, seen


@pytest.mark.parametrize("phase", ["capacity", "mixed"])
def test_smoke_load_has_no_failed_request(smoke, phase):
    summary, _, _, _ = smoke
    failed = {op: m["failures"] for op, m in summary["phases"][phase]["operations"].items() if m["failures"]}
    assert failed == {}, summary["errors"]


@pytest.mark.parametrize("operation", OPERATIONS)
def test_smoke_load_ran_the_operation_in_the_mixed_phase(smoke, operation):
    summary, _, _, _ = smoke
    assert summary["phases"]["mixed"]["operations"].get(operation, {}).get("requests", 0) > 0


@pytest.mark.parametrize("operation", CAPACITY)
def test_the_capacity_phase_runs_the_operation_alone(smoke, operation):
    _, report, _, _ = smoke
    samples = json.loads((report / "samples.json").read_text())
    stage = samples["samples"][f"capacity:{operation}"]
    assert list(stage) == [operation]
    assert sum(stage[operation]["histogram_us"].values()) > 0


@pytest.mark.parametrize("phase", ["capacity:" + CAPACITY[0], "mixed"])
def test_every_worker_reports_its_cpu_to_the_master(smoke, phase):
    _, report, _, _ = smoke
    samples = json.loads((report / "samples.json").read_text())
    assert len(samples["workers"]) == SMOKE_WORKERS
    assert all(stages[phase]["wall_s"] > 0 for stages in samples["workers"].values())


@pytest.mark.parametrize("operation", CAPACITY)
def test_every_capacity_verdict_row_carries_pgbench_from_the_same_run(smoke, operation):
    summary, _, _, _ = smoke
    rows = {r["metric"]: r for r in summary["verdicts"] if r["phase"] == "capacity" and r["operation"] == operation}
    assert set(rows) == set(load_targets(DEFAULT_TARGETS)[operation])
    assert all(r["pgbench"] and r["verdict"] in ("met", "missed", "generator-bound") for r in rows.values())
    bench = summary["pgbench"][operation]
    assert {m: r["pgbench"] for m, r in rows.items()} == {m: bench["tps" if m == "throughput_ops" else m] for m in rows}


@pytest.mark.parametrize(
    "artifact",
    ["report.html", "verdicts.csv", "phases.csv", "summary.json", "latency.png", "locust.html", "locust_stats.csv"],
)
def test_load_writes_the_report(smoke, artifact):
    _, report, result, _ = smoke
    assert (report / artifact).stat().st_size > 0
    assert "verdict" in result.stdout


@pytest.mark.parametrize("phase", ["capacity", "mixed"])
def test_the_report_shows_both_phases(smoke, phase):
    _, report, _, _ = smoke
    assert f"Phase: {phase}" in (report / "report.html").read_text()
    assert f"\n{phase}," in (report / "phases.csv").read_text()


@pytest.mark.parametrize("process", ["pgbench", "locust -f", "--master", "--worker"])
def test_the_load_started_its_processes(smoke, process):
    """The process list below was watched while they ran."""
    *_, seen = smoke
    assert any(process in line for line in seen)


def test_no_password_on_any_command_line_during_the_load(smoke, volume):
    *_, seen = smoke
    passwords = [v for v in volume.local.secrets().values() if len(v) >= 12]
    assert passwords
    assert [p for p in passwords if any(p in line for line in seen)] == []


def test_load_keeps_no_password_in_the_report(smoke, volume):
    _, report, result, _ = smoke
    passwords = [v for v in volume.local.secrets().values() if len(v) >= 12]
    texts = [result.stdout, result.stderr] + [f.read_text(errors="replace") for f in report.iterdir() if f.is_file()]
    assert passwords
    assert [p for p in passwords if any(p in t for t in texts)] == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--duration", "soon"], "--duration"),
        (["--capacity-duration", "0"], "--capacity-duration"),
        (["--workers", "0"], "--workers must be at least 1"),
        (["--capacity-operations", "qlearning.nope"], "unknown operation"),
        (["--worker"], "--worker needs --master-host"),
        (["--master-host", "10.0.0.1"], "--master-host is for --worker"),
        (["--master"], "--master needs --workers N"),
    ],
)
def test_load_refuses_bad_input(volume, args, message):
    result = volume.cli("load", *args, check=False)
    assert result.returncode == 2
    assert message in result.stderr
