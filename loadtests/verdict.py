"""Targets (a YAML profile) against measurements: one row per judged figure, met or missed."""

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


@dataclass(frozen=True)
class Row:
    operation: str
    metric: str
    target: float | None
    measured: float | None
    verdict: str  # met, missed, or info (no target)

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


def judge(targets: dict[str, dict[str, float]], measured: dict[str, Measured]) -> list[Row]:
    """Latency targets are maxima, throughput targets minima; an operation that never ran misses all."""
    rows: list[Row] = []
    for op in sorted(set(targets) | set(measured)):
        m = measured.get(op)
        wanted = targets.get(op, {})
        if not wanted:
            rows.append(Row(op, "p99_ms", None, m.p99_ms if m else None, "info"))
            continue
        for metric in METRICS:
            if metric not in wanted:
                continue
            target = wanted[metric]
            value = getattr(m, metric) if m and m.requests else None
            if value is None:
                verdict = "missed"
            elif metric == "throughput_ops":
                verdict = "met" if value >= target else "missed"
            else:
                verdict = "met" if value <= target else "missed"
            rows.append(Row(op, metric, target, value, verdict))
    return rows


def format_table(rows: list[Row]) -> str:
    def fmt(value: float | None, metric: str) -> str:
        if value is None:
            return "-"
        return f"{value:,.0f}/s" if metric == "throughput_ops" else f"{value:.3f} ms"

    lines = [f"{'operation':34} {'metric':15} {'target':>12} {'measured':>14}  verdict"]
    for r in rows:
        lines.append(
            f"{r.operation:34} {r.metric:15} {fmt(r.target, r.metric):>12} {fmt(r.measured, r.metric):>14}  {r.verdict}"
        )
    return "\n".join(lines)
