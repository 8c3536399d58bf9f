"""Targets (a YAML profile) against measurements: one row per judged figure, met, missed or generator-bound."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from loadtests.histogram import LatencyHistogram

DEFAULT_TARGETS = Path(__file__).with_name("targets.yaml")
METRICS = ("p50_ms", "p99_ms", "throughput_ops")


class TargetsError(ValueError):
    """A target profile that cannot be used; the message names the file, the operation and the key."""


@dataclass(frozen=True)
class Measured:
    """What one operation did in a run."""

    requests: int
    failures: int
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    throughput_ops: float

    @classmethod
    def from_histogram(cls, hist: LatencyHistogram, failures: int, seconds: float) -> Measured:
        if hist.total == 0:
            return cls(0, failures, None, None, None, 0.0)
        return cls(
            hist.total,
            failures,
            hist.percentile_ms(50),
            hist.percentile_ms(99),
            hist.max_ms(),
            hist.total / seconds,
        )


# Locust's own CPU warning fires above 90 % of one core; a worker at that level is the bottleneck.
SATURATED_CPU_PERCENT = 90.0


@dataclass(frozen=True)
class Generator:
    """How hard the load generator worked in one stage, per worker, in % of one core.

    `cpu_percent` is the time a worker ran on a CPU; `waiting_percent` the time it was ready to run
    but waited for one (a machine shared with the database). A worker needs one core: on a CPU or
    waiting for one for SATURATED_CPU_PERCENT of the stage, its own loop is the bottleneck, and the
    latencies it measures include its wait.
    """

    cpu_percent: tuple[float, ...] = ()
    cpu_warnings: int = 0
    waiting_percent: tuple[float, ...] = ()

    @property
    def max_cpu(self) -> float | None:
        return max(self.cpu_percent) if self.cpu_percent else None

    @property
    def max_demand(self) -> float | None:
        return max(self.demand_percent) if self.cpu_percent else None

    @property
    def demand_percent(self) -> tuple[float, ...]:
        """Per worker: on a CPU plus waiting for one."""
        return tuple(c + w for c, w in zip(self.cpu_percent, self.waiting_or_zero, strict=True))

    @property
    def waiting_or_zero(self) -> tuple[float, ...]:
        return self.waiting_percent or (0.0,) * len(self.cpu_percent)

    @property
    def saturated(self) -> bool:
        return self.cpu_warnings > 0 or any(d >= SATURATED_CPU_PERCENT for d in self.demand_percent)


@dataclass(frozen=True)
class Pgbench:
    """pgbench's figures for one operation alone at the same concurrency, from the same run."""

    tps: float
    p50_ms: float | None = None
    p99_ms: float | None = None

    def figure(self, metric: str) -> float | None:
        return self.tps if metric == "throughput_ops" else getattr(self, metric)


@dataclass(frozen=True)
class Row:
    phase: str  # capacity (the operation alone) or mixed (the mixed profile)
    operation: str
    metric: str
    target: float | None
    measured: float | None
    pgbench: float | None  # pgbench's figure for the same metric, or None where it has no script
    worker_cpu: float | None  # the busiest Locust worker's CPU need in that stage (on one + waiting), % of a core
    verdict: str  # met, missed, generator-bound, or info (no target)
    reason: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def load_targets(path: Path = DEFAULT_TARGETS) -> dict[str, dict[str, float]]:
    """operation -> {metric: value}; raises TargetsError on anything it cannot judge."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise TargetsError(f"--targets {path}: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("operations"), dict):
        raise TargetsError(f"--targets {path}: needs a mapping `operations: {{<operation>: {{p50_ms: ...}}}}`")
    targets: dict[str, dict[str, float]] = {}
    for op, spec in data["operations"].items():
        if not isinstance(spec, dict):
            raise TargetsError(f"--targets {path}: operation {op}: expected a mapping of metrics")
        judged = {}
        for key, value in spec.items():
            if key == "source":
                continue
            if key not in METRICS:
                known = ", ".join(METRICS)
                raise TargetsError(f"--targets {path}: operation {op}: unknown key {key!r}; known: {known}")
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise TargetsError(f"--targets {path}: operation {op}: {key} must be a number > 0, got {value!r}")
            judged[key] = float(value)
        targets[op] = judged
    return targets


def _meets(metric: str, value: float, target: float) -> bool:
    # Throughput targets are minima, latency targets maxima; the target itself is met.
    return value >= target if metric == "throughput_ops" else value <= target


def _fmt(value: float | None, metric: str) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}/s" if metric == "throughput_ops" else f"{value:.3f} ms"


def verdict(
    metric: str,
    target: float,
    measured: float | None,
    pgbench: float | None,
    generator: Generator,
    ceiling: bool,
) -> tuple[str, str]:
    """(verdict, reason) for one figure.

    A shortfall is the database's ("missed") unless the generator is the limit: a worker at
    SATURATED_CPU_PERCENT or more, Locust's CPU warning, or (`ceiling`: pgbench ran the same
    operation alone at the same concurrency in this run) pgbench meeting the target where Locust
    did not. Where pgbench misses the target too, the database misses it whatever the generator did.
    """
    if measured is None:
        return "missed", "no request completed"
    if _meets(metric, measured, target):
        return "met", ""
    if pgbench is not None and not _meets(metric, pgbench, target):
        return "missed", f"pgbench misses it too ({_fmt(pgbench, metric)})"
    if generator.saturated:
        busiest = max(
            zip(generator.demand_percent, generator.cpu_percent, generator.waiting_or_zero, strict=True), default=None
        )
        cpu = ""
        if busiest and busiest[0] >= SATURATED_CPU_PERCENT:
            cpu = f"a Locust worker needed {busiest[0]:.0f}% of a core"
            if generator.waiting_percent:
                cpu += f" ({busiest[1]:.0f}% on it, {busiest[2]:.0f}% waiting for it)"
        warned = f"{generator.cpu_warnings} Locust CPU warning(s)" if generator.cpu_warnings else ""
        return "generator-bound", " and ".join(x for x in (cpu, warned) if x)
    if pgbench is not None and ceiling:
        return "generator-bound", f"pgbench reaches {_fmt(pgbench, metric)} on the same operation in this run"
    return "missed", "the generator had CPU to spare" + ("" if pgbench is not None else "; no pgbench figure")


def judge(
    targets: dict[str, dict[str, float]],
    capacity: dict[str, Measured],
    mixed: dict[str, Measured],
    pgbench: dict[str, Pgbench],
    capacity_generators: dict[str, Generator],
    mixed_generator: Generator,
) -> list[Row]:
    """Rows for both phases.

    Capacity (each operation alone): every target of every operation that was planned there
    (present in `capacity`, measured or not). Mixed: the latency targets only, since an
    operation's throughput there is its share of the profile; operations without a target are
    reported as "info".
    """
    rows: list[Row] = []
    for phase, measured in (("capacity", capacity), ("mixed", mixed)):
        for op in sorted(set(measured) | (set(targets) if phase == "mixed" else set())):
            m = measured.get(op)
            generator = capacity_generators.get(op, Generator()) if phase == "capacity" else mixed_generator
            bench = pgbench.get(op)
            wanted = {k: v for k, v in targets.get(op, {}).items() if phase == "capacity" or k != "throughput_ops"}
            if not wanted:
                if phase == "mixed":
                    value = m.p99_ms if m else None
                    rows.append(
                        Row(phase, op, "p99_ms", None, value, bench and bench.p99_ms, generator.max_demand, "info")
                    )
                continue
            for metric in METRICS:
                if metric not in wanted:
                    continue
                value = getattr(m, metric) if m and m.requests else None
                bench_value = bench.figure(metric) if bench else None
                result, reason = verdict(
                    metric, wanted[metric], value, bench_value, generator, ceiling=phase == "capacity"
                )
                rows.append(
                    Row(phase, op, metric, wanted[metric], value, bench_value, generator.max_demand, result, reason)
                )
    return rows


def format_table(rows: list[Row]) -> str:
    """The verdict table `agentdb load` prints: one line per phase, operation and metric."""
    lines = [
        f"{'phase':9} {'operation':33} {'metric':15} {'target':>11} {'Locust':>13} {'pgbench alone':>13}"
        f" {'worker CPU':>10}  verdict"
    ]
    for r in rows:
        cpu = "-" if r.worker_cpu is None else f"{r.worker_cpu:.0f}%"
        lines.append(
            f"{r.phase:9} {r.operation:33} {r.metric:15} {_fmt(r.target, r.metric):>11}"
            f" {_fmt(r.measured, r.metric):>13} {_fmt(r.pgbench, r.metric):>13} {cpu:>10}  {r.verdict}"
            + (f" ({r.reason})" if r.reason and r.verdict != "met" else "")
        )
    return "\n".join(lines)
