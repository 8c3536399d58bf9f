"""`agentdb load`: headless Locust against a running stack, judged against a target profile.

It runs loadtests/locustfile.py in a Locust subprocess (Locust monkey-patches the process with
gevent, which the CLI process should not be), collects the exact microsecond histograms the
locustfile writes, prints target / measured / verdict, and writes `reports/<timestamp>/`:
Locust's HTML report and CSVs, `summary.json`, and `latency.png` (each operation's p50 and p99
against its target). Exit status: 0 every target met, 1 a target missed, 2 bad input.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

from infra.databases import REPO_ROOT
from loadtests.histogram import LatencyHistogram
from loadtests.verdict import DEFAULT_TARGETS, Measured, Row, format_table, judge, load_targets

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
REPORTS = REPO_ROOT / "reports"
DEFAULT_USERS = 18  # the seeds' 18 concurrent agents
DEFAULT_DURATION_S = 60
# Databases the scenarios use, and how to tell that each has its volume (`agentdb seed --volume 30d`);
# `agentdb load` seeds a database whose query returns 0.
REQUIRED = {
    "qlearning": "SELECT count(*) FROM q_values",
    "orchestrator": "SELECT count(*) FROM task_queues WHERE name = 'volume'",
    "agentic": "SELECT count(*) FROM agent_sessions WHERE metadata @> '{\"volume\": true}'",
    "afs": "SELECT 1",
}


class LoadError(RuntimeError):
    """The stack cannot be loaded: the message says what to run first."""


def parse_duration(text: str) -> int:
    """'60', '60s', '2m' -> seconds."""
    units = {"s": 1, "m": 60, "h": 3600}
    value, unit = (text[:-1], text[-1]) if text and text[-1] in units else (text, "s")
    if not value.isdigit() or int(value) <= 0:
        raise ValueError(f"--duration: {text!r} must be a positive number of seconds, like 60, 60s or 2m")
    return int(value) * units[unit]


def ensure_volume(stack, seed_scale: float | None = 1.0, progress=print) -> None:
    """Seed the volume of each database the scenarios need and that has none yet.

    `seed_scale` is the volume to generate (1.0 is the 30-day volume); None refuses instead, naming
    the `agentdb seed` command to run.
    """
    from infra.databases import DATABASES
    from infra.seeds import SeedError, seed

    missing = [key for key in REQUIRED if key not in stack.settings.databases]
    if missing:
        raise LoadError(f"stack {stack.name} does not enable {', '.join(missing)} (agentdb:databases)")
    for key, query in REQUIRED.items():
        if int(stack.psql(key, query).strip() or 0):
            continue
        command = f"agentdb seed --db {key} --volume 30d"
        if seed_scale is None:
            raise LoadError(f"{key} has no volume data: run `{command}` first, or leave out --no-seed")
        progress(f"{key} has no volume data: seeding it first ({command} --scale {seed_scale:g})")
        start = time.monotonic()
        try:
            seed(stack.dsn(key), DATABASES[key], scale=seed_scale)
        except SeedError as exc:
            raise LoadError(f"seeding {key}: {exc}") from None
        progress(f"{key}: seeded in {time.monotonic() - start:.1f}s")


def load_config(stack) -> dict:
    """Connection settings for the locustfile: app roles through PgBouncer, and Redis."""
    dsn = {key: stack.dsn(key, "app", "pgbouncer") for key in REQUIRED}
    dsn["agentic_readonly"] = stack.dsn("agentic", "readonly", "pgbouncer")
    return {"dsn": dsn, "redis_url": stack.env()["REDIS_URL"]}


def run_locust(config: dict, users: int, seconds: int, out: Path) -> dict:
    """Run the scenarios headless; returns the locustfile's samples ({"seconds", "operations", "errors"})."""
    out.mkdir(parents=True, exist_ok=True)
    config_file = out / "config.json"
    config_file.write_text(json.dumps(config))
    config_file.chmod(0o600)
    samples = out / "samples.json"
    env = {
        **os.environ,
        "AGENTDB_LOAD_CONFIG": str(config_file),
        "AGENTDB_LOAD_SAMPLES": str(samples),
        "PYTHONPATH": str(REPO_ROOT),
    }
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--users",
        str(users),
        "--spawn-rate",
        str(users),
        "--run-time",
        f"{seconds}s",
        "--stop-timeout",
        "10",
        "--csv",
        str(out / "locust"),
        "--html",
        str(out / "locust.html"),
        "--only-summary",
        "--loglevel",
        "WARNING",
    ]
    result = subprocess.run(command, env=env, cwd=REPO_ROOT, capture_output=True, text=True)
    (out / "locust.log").write_text(result.stdout + result.stderr)
    config_file.unlink()  # it holds passwords
    if not samples.exists():
        raise LoadError(f"locust exited {result.returncode} without results; see {out / 'locust.log'}")
    return json.loads(samples.read_text())


def measurements(samples: dict) -> dict[str, Measured]:
    seconds = max(samples["seconds"], 1e-9)
    return {
        op: Measured.from_histogram(LatencyHistogram.from_dict(data["histogram_us"]), data["failures"], seconds)
        for op, data in samples["operations"].items()
    }


def chart(measured: dict[str, Measured], targets: dict[str, dict[str, float]], path: Path, title: str) -> None:
    """Horizontal bars of p50 and p99 per operation (log scale), with the targets marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ops = sorted(op for op, m in measured.items() if m.requests)
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(ops) + 1.5))
    y = range(len(ops))
    ax.barh([i + 0.2 for i in y], [measured[o].p50_ms for o in ops], height=0.4, label="p50 measured")
    ax.barh([i - 0.2 for i in y], [measured[o].p99_ms for o in ops], height=0.4, label="p99 measured")
    for i, op in enumerate(ops):
        for metric, offset, marker in (("p50_ms", 0.2, "|"), ("p99_ms", -0.2, "|")):
            if metric in targets.get(op, {}):
                ax.plot(targets[op][metric], i + offset, marker=marker, color="black", markersize=14, mew=2)
    ax.plot([], [], marker="|", color="black", linestyle="none", markersize=14, mew=2, label="target")
    ax.set_yticks(list(y), ops)
    ax.set_xscale("log")
    ax.set_xlabel("latency (ms, log scale)")
    ax.set_title(title)
    ax.legend(loc="lower right")
    ax.grid(axis="x", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(
    stack,
    users: int = DEFAULT_USERS,
    seconds: int = DEFAULT_DURATION_S,
    targets_path: Path = DEFAULT_TARGETS,
    report_dir: Path | None = None,
    seed_scale: float | None = 1.0,
) -> tuple[list[Row], dict, Path]:
    """Seed what is missing, run, judge and report; returns (rows, summary, report directory)."""
    if users < 1:
        raise ValueError(f"--users must be at least 1, got {users}")
    targets = load_targets(targets_path)
    report_dir = report_dir or REPORTS / time.strftime("%Y%m%d-%H%M%S")
    ensure_volume(stack, seed_scale)
    samples = run_locust(load_config(stack), users, seconds, report_dir)
    measured = measurements(samples)
    rows = judge(targets, measured)
    summary = {
        "stack": stack.name,
        "users": users,
        "seconds": samples["seconds"],
        "targets": str(targets_path),
        "operations": {op: asdict(m) for op, m in sorted(measured.items())},
        "errors": samples["errors"],
        "verdicts": [r.as_dict() for r in rows],
        "all_met": all(r.verdict != "missed" for r in rows),
    }
    (report_dir / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True))
    chart(measured, targets, report_dir / "latency.png", f"agentdb load: {users} users, {seconds} s")
    return rows, summary, report_dir


def main(
    stack,
    users: int,
    duration: str,
    targets: str | None,
    report_dir: str | None,
    seed_scale: float | None = 1.0,
) -> int:
    """What `agentdb load` runs; returns the exit status."""
    from loadtests.verdict import TargetsError

    try:
        seconds = parse_duration(duration)
        if seed_scale is not None and not seed_scale > 0:
            raise ValueError(f"--seed-scale must be a number greater than 0, got {seed_scale:g}")
        rows, summary, out = run(
            stack,
            users,
            seconds,
            Path(targets) if targets else DEFAULT_TARGETS,
            Path(report_dir) if report_dir else None,
            seed_scale,
        )
    except (ValueError, TargetsError, LoadError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_table(rows))
    failed = {op: m["failures"] for op, m in summary["operations"].items() if m["failures"]}
    if failed:
        print(f"\nfailed requests: {failed}; first errors: {summary['errors']}")
    print(f"\nreport: {out} (locust.html, locust_stats.csv, summary.json, latency.png)")
    missed = [r for r in rows if r.verdict == "missed"]
    if missed:
        print(f"{len(missed)} target(s) missed")
        return 1
    return 0
