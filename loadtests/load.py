"""`agentdb load`: headless Locust against a running stack, judged against a target profile.

One run has two phases, and every figure says which one it comes from:

- capacity: each operation with a target alone, all users on it (the seeds state their throughput
  as "18 concurrent agents" on one operation), `--capacity-duration` each; before it, pgbench runs
  the same operation alone with as many clients (loadtests/bench.py's scripts), so every verdict
  row carries pgbench's figure from the same run;
- mixed: the mixed profile (locustfile.py's weights) for `--duration`; latency targets only.

Locust runs in its own distributed mode: a master and `--workers` worker processes (default: the
CPUs this machine has beyond the stack's `agentdb:cpus`, at least 1), or `--master` here with
workers started elsewhere by `agentdb load --worker --master-host`. The locustfile's collector
(loadtests/collect.py) sends each worker's exact histograms and CPU use to the master. A target
the generator could not reach is "generator-bound", not "missed" (loadtests/verdict.py).

Writes `reports/<timestamp>/`: summary.json, verdicts.csv, phases.csv, report.html, latency.png,
and Locust's own locust.html and CSVs. Exit status: 0 no target missed (generator-bound ones
included), 1 a target missed, 2 bad input.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from infra.databases import REPO_ROOT
from loadtests import report
from loadtests.histogram import LatencyHistogram
from loadtests.verdict import (
    DEFAULT_TARGETS,
    Generator,
    Measured,
    Pgbench,
    Row,
    format_table,
    judge,
    load_targets,
)

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
REPORTS = REPO_ROOT / "reports"
DEFAULT_USERS = 18  # the seeds' 18 concurrent agents
DEFAULT_DURATION_S = 60
DEFAULT_CAPACITY_S = 10
# How long the master waits for its workers to connect before it gives up.
EXPECT_WORKERS_S = 60
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


def parse_duration(text: str, option: str = "--duration") -> int:
    """'60', '60s', '2m' -> seconds."""
    units = {"s": 1, "m": 60, "h": 3600}
    value, unit = (text[:-1], text[-1]) if text and text[-1] in units else (text, "s")
    if not value.isdigit() or int(value) <= 0:
        raise ValueError(f"{option}: {text!r} must be a positive number of seconds, like 60, 60s or 2m")
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


def default_workers(stack_cpus: int, machine_cpus: int | None = None) -> int:
    """Locust workers for this machine: the CPUs left over after the stack's own, never less than 1."""
    return max(1, (machine_cpus or os.cpu_count() or 1) - stack_cpus)


def known_operations() -> list[str]:
    """The operations the locustfile defines (read in a subprocess: importing Locust patches gevent in)."""
    result = subprocess.run(
        [sys.executable, "-c", "from loadtests.locustfile import OPERATIONS; print(' '.join(OPERATIONS))"],
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.split()


def capacity_plan(targets: dict, known: list[str], only: list[str] | None) -> list[str]:
    """Operations for the capacity phase: `only`, or every operation with a target; unknown names refused."""
    wanted = only if only is not None else [op for op in sorted(targets) if op in known]
    unknown = [op for op in wanted if op not in known]
    if unknown:
        raise ValueError(f"--capacity-operations: unknown operation(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return wanted


class _Config:
    """The connection settings in a file only this user can read, removed afterwards (it holds passwords)."""

    def __init__(self, config: dict):
        self.dir = Path(tempfile.mkdtemp(prefix="agentdb-load-"))
        self.path = self.dir / "config.json"
        self.path.touch(mode=0o600)
        self.path.write_text(json.dumps(config))

    def __enter__(self) -> Path:
        return self.path

    def __exit__(self, *exc: object) -> None:
        self.path.unlink(missing_ok=True)
        self.dir.rmdir()


def _locust(*args: str) -> list[str]:
    return [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--loglevel", "WARNING", *args]


def _env(config_file: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "AGENTDB_LOAD_CONFIG": str(config_file),
        "PYTHONPATH": str(REPO_ROOT),
        **extra,
    }


def run_locust(
    config: dict, plan: dict, workers: int, out: Path, master_host: str = "127.0.0.1", master_port: int | None = None
) -> dict:
    """Run the plan on a Locust master and its workers; returns loadtests.collect's snapshot.

    With `master_port` None the master listens on a free loopback port and this starts `workers`
    local workers; otherwise it listens on master_host:master_port and waits for `workers` workers
    started elsewhere (`agentdb load --worker --master-host`).
    """
    from loadtests.stack import free_ports

    out.mkdir(parents=True, exist_ok=True)
    samples = out / "samples.json"
    samples.unlink(missing_ok=True)
    local = master_port is None
    port = free_ports(1)[0] if local else master_port
    seconds = sum(stage["seconds"] for stage in plan["stages"])
    with _Config(config) as config_file:
        env = _env(config_file, AGENTDB_LOAD_SAMPLES=str(samples), AGENTDB_LOAD_PLAN=json.dumps(plan))
        master_cmd = _locust(
            "--master",
            "--headless",
            "--master-bind-host",
            master_host,
            "--master-bind-port",
            str(port),
            "--expect-workers",
            str(workers),
            "--expect-workers-max-wait",
            str(EXPECT_WORKERS_S),
            "--stop-timeout",
            "10",
            "--csv",
            str(out / "locust"),
            "--html",
            str(out / "locust.html"),
            "--only-summary",
        )
        logs = [(out / "locust.log").open("w")]
        procs = [subprocess.Popen(master_cmd, env=env, cwd=REPO_ROOT, stdout=logs[0], stderr=subprocess.STDOUT)]
        if local:
            for i in range(workers):
                logs.append((out / f"worker-{i + 1}.log").open("w"))
                procs.append(
                    subprocess.Popen(
                        _locust("--worker", "--master-host", "127.0.0.1", "--master-port", str(port)),
                        env=env,
                        cwd=REPO_ROOT,
                        stdout=logs[-1],
                        stderr=subprocess.STDOUT,
                    )
                )
        try:
            # Generous: each stage also stops its predecessor's users and starts its own.
            procs[0].wait(timeout=seconds + 5 * len(plan["stages"]) + EXPECT_WORKERS_S + 120)
            for proc in procs[1:]:
                proc.wait(timeout=30)  # the master's quit message ends them
        except subprocess.TimeoutExpired:
            pass
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            for log in logs:
                log.close()
    if not samples.exists():
        raise LoadError(f"locust exited {procs[0].returncode} without results; see {out / 'locust.log'}")
    return json.loads(samples.read_text())


def run_worker(config: dict, master_host: str, master_port: int) -> int:
    """One Locust worker here for a master elsewhere (`agentdb load --worker`); returns its exit status."""
    with _Config(config) as config_file:
        cmd = _locust("--worker", "--master-host", master_host, "--master-port", str(master_port))
        return subprocess.run(cmd, env=_env(config_file), cwd=REPO_ROOT).returncode


def measurements(samples: dict, stage: str) -> dict[str, Measured]:
    """Each operation's figures in one stage; throughput over the stage's first to last request."""
    first, last = samples["windows"].get(stage, (0.0, 0.0))
    seconds = max(last - first, 1e-9)
    return {
        op: Measured.from_histogram(LatencyHistogram.from_dict(data["histogram_us"]), data["failures"], seconds)
        for op, data in samples["samples"].get(stage, {}).items()
    }


def generator(samples: dict, stage: str) -> Generator:
    """Each worker's CPU in one stage (% of one core: on it, waiting for it) and Locust's CPU warnings there."""
    cpu, waiting, warnings = [], [], 0
    for stages in samples["workers"].values():
        use = stages.get(stage)
        if use and use["wall_s"] > 0:
            cpu.append(round(100 * use["cpu_s"] / use["wall_s"], 1))
            waiting.append(round(100 * use.get("waiting_s", 0.0) / use["wall_s"], 1))
            warnings += int(use["warnings"])
    return Generator(tuple(cpu), warnings, tuple(waiting))


def run_pgbench(stack, operations: list[str], users: int, seconds: int, progress=print) -> dict[str, Pgbench]:
    """pgbench on each operation that has a script, alone, `users` clients, through PgBouncer."""
    from infra.seeds import qlearning as qvol
    from loadtests.bench import pgbench, pgbench_scripts

    agents = stack.psql("qlearning", "SELECT agent_type FROM agent_types ORDER BY agent_type").split()
    # The scripts pick keys from the volume actually seeded (a smaller --seed-scale has fewer states).
    q_values = int(stack.psql("qlearning", "SELECT count(*) FROM q_values").strip() or 0)
    scripts = pgbench_scripts(agents, scale=max(q_values, 1) / qvol.volume_counts(1.0)["q_values"])
    results = {}
    for op in operations:
        if op not in scripts:
            continue
        try:
            r = pgbench(
                stack.dsn(op.split(".")[0], "app", "pgbouncer"), scripts[op], seconds, clients=users, latencies=True
            )
        except RuntimeError as exc:
            raise LoadError(f"pgbench on {op}: {exc}") from None
        results[op] = Pgbench(r.tps, r.p50_ms, r.p99_ms)
        progress(f"pgbench {op}: {r.tps:,.0f}/s, p50 {r.p50_ms} ms, p99 {r.p99_ms} ms")
    return results


def run(
    stack,
    users: int = DEFAULT_USERS,
    seconds: int = DEFAULT_DURATION_S,
    targets_path: Path = DEFAULT_TARGETS,
    report_dir: Path | None = None,
    seed_scale: float | None = 1.0,
    workers: int | None = None,
    capacity_seconds: int = DEFAULT_CAPACITY_S,
    capacity_operations: list[str] | None = None,
    master: tuple[str, int] | None = None,
    progress=print,
) -> tuple[list[Row], dict, Path]:
    """Seed what is missing, run both phases, judge and report; returns (rows, summary, report directory).

    `master` (host, port) listens for `workers` workers started elsewhere instead of starting them here.
    """
    if users < 1:
        raise ValueError(f"--users must be at least 1, got {users}")
    workers = default_workers(stack.settings.cpus) if workers is None else workers
    if workers < 1:
        raise ValueError(f"--workers must be at least 1, got {workers}")
    targets = load_targets(targets_path)
    capacity_ops = capacity_plan(targets, known_operations(), capacity_operations)
    report_dir = report_dir or REPORTS / time.strftime("%Y%m%d-%H%M%S")
    ensure_volume(stack, seed_scale, progress)
    progress(f"capacity phase: pgbench on {len(capacity_ops)} operation(s), {capacity_seconds} s each")
    bench = run_pgbench(stack, capacity_ops, users, capacity_seconds, progress)
    plan = {
        "users": users,
        "stages": [{"stage": f"capacity:{op}", "seconds": capacity_seconds} for op in capacity_ops]
        + [{"stage": "mixed", "seconds": seconds}],
    }
    progress(
        f"Locust: {workers} worker(s), {len(capacity_ops)} operation(s) alone for {capacity_seconds} s each,"
        f" then the mixed profile for {seconds} s"
    )
    samples = run_locust(load_config(stack), plan, workers, report_dir, *(master or ("127.0.0.1", None)))
    capacity = {
        op: measurements(samples, f"capacity:{op}").get(op, Measured(0, 0, None, None, None, 0.0))
        for op in capacity_ops
    }
    mixed = measurements(samples, "mixed")
    capacity_gen = {op: generator(samples, f"capacity:{op}") for op in capacity_ops}
    mixed_gen = generator(samples, "mixed")
    rows = judge(targets, capacity, mixed, bench, capacity_gen, mixed_gen)
    summary = {
        "stack": stack.name,
        "users": users,
        "workers": workers,
        "capacity_seconds": capacity_seconds,
        "mixed_seconds": seconds,
        "targets": str(targets_path),
        "phases": {
            "capacity": {
                "operations": {op: asdict(m) for op, m in sorted(capacity.items())},
                "generator": {op: _generator_dict(g) for op, g in capacity_gen.items()},
            },
            "mixed": {
                "operations": {op: asdict(m) for op, m in sorted(mixed.items())},
                "generator": {"*": _generator_dict(mixed_gen)},
            },
        },
        "pgbench": {op: asdict(b) for op, b in sorted(bench.items())},
        # The mixed phase, as before the capacity phase existed (make bench reads it).
        "operations": {op: asdict(m) for op, m in sorted(mixed.items())},
        "errors": samples["errors"],
        "locust_cpu_warning": samples["locust_cpu_warning"],
        "verdicts": [r.as_dict() for r in rows],
        "all_met": all(r.verdict != "missed" for r in rows),
    }
    (report_dir / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True))
    report.write_csv(summary, rows, report_dir)
    report.write_html(summary, rows, report_dir)
    report.chart(
        summary,
        targets,
        report_dir / "latency.png",
        f"agentdb load: {users} users, {workers} worker(s);"
        f" {capacity_seconds} s per operation alone, {seconds} s mixed",
    )
    return rows, summary, report_dir


def _generator_dict(g: Generator) -> dict:
    return {
        "cpu_percent": list(g.cpu_percent),
        "waiting_percent": list(g.waiting_percent),
        "max_cpu": g.max_cpu,
        "max_demand": g.max_demand,
        "warnings": g.cpu_warnings,
        "saturated": g.saturated,
    }


def main(
    stack,
    users: int,
    duration: str,
    targets: str | None,
    report_dir: str | None,
    seed_scale: float | None = 1.0,
    workers: int | None = None,
    capacity_duration: str = f"{DEFAULT_CAPACITY_S}s",
    capacity_operations: str | None = None,
    master: tuple[str, int] | None = None,
) -> int:
    """What `agentdb load` runs; returns the exit status."""
    from loadtests.verdict import TargetsError

    try:
        seconds = parse_duration(duration)
        capacity_seconds = parse_duration(capacity_duration, "--capacity-duration")
        if seed_scale is not None and not seed_scale > 0:
            raise ValueError(f"--seed-scale must be a number greater than 0, got {seed_scale:g}")
        only = None
        if capacity_operations is not None:
            only = [op.strip() for op in capacity_operations.split(",") if op.strip()]
        rows, summary, out = run(
            stack,
            users,
            seconds,
            Path(targets) if targets else DEFAULT_TARGETS,
            Path(report_dir) if report_dir else None,
            seed_scale,
            workers,
            capacity_seconds,
            only,
            master,
        )
    except (ValueError, TargetsError, LoadError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_table(rows))
    failed = {
        f"{phase}:{op}": m["failures"]
        for phase, data in summary["phases"].items()
        for op, m in data["operations"].items()
        if m["failures"]
    }
    if failed:
        print(f"\nfailed requests: {failed}; first errors: {summary['errors']}")
    print(f"\nreport: {out} (report.html, verdicts.csv, phases.csv, summary.json, latency.png, locust.html)")
    counts = {v: sum(r.verdict == v for r in rows) for v in ("met", "generator-bound", "missed")}
    print(", ".join(f"{n} {v}" for v, n in counts.items()))
    return 1 if counts["missed"] else 0
