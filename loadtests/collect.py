"""Samples from every Locust worker, per stage, gathered on the master with Locust's own messages.

A stage is one step of a run: `capacity:<operation>` (that operation alone) or `mixed` (the mixed
profile). Each worker keeps an exact microsecond histogram per (stage, operation), the first and
last sample time per stage, its own CPU time per stage (psutil) and the time it waited for a CPU
(the kernel's schedstat), and ships them with every
stats report (`report_to_master`); the master merges them (`worker_report`) and, once the final
reports are in (`quit`), writes them to the file named by AGENTDB_LOAD_SAMPLES. Workers on other
machines therefore need no shared disk.
"""

from __future__ import annotations

import json
import os
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import gevent
import psutil
from locust import events
from locust.runners import MasterRunner, WorkerRunner

from loadtests.histogram import LatencyHistogram

SAMPLES_ENV = "AGENTDB_LOAD_SAMPLES"
REPORT_KEY = "agentdb"
CPU_SAMPLE_S = 0.5  # fine enough for stages of a few seconds

_histograms: dict[str, dict[str, LatencyHistogram]] = defaultdict(lambda: defaultdict(LatencyHistogram))
_failures: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
_windows: dict[str, list[float]] = {}  # stage -> [first request start, last request end] (epoch s)
_errors: dict[str, str] = {}
# Worker side: stage -> {"cpu_s", "wall_s", "warnings"}; master side: worker id -> that mapping.
_cpu: dict[str, dict[str, float]] = defaultdict(lambda: {"cpu_s": 0.0, "waiting_s": 0.0, "wall_s": 0.0, "warnings": 0})
_cpu_by_worker: dict[str, dict] = {}
_stage_of_class: dict[str, str] = {}
_environment: list[Any] = []


def register(user_classes: list[type]) -> None:
    """Hook the collectors into Locust's events; `user_classes` map class names to their stage."""
    _stage_of_class.update({cls.__name__: cls.stage for cls in user_classes})
    events.init.add_listener(_init)
    events.request.add_listener(_record)
    events.report_to_master.add_listener(_ship)
    events.worker_report.add_listener(_merge)
    events.cpu_warning.add_listener(_cpu_warning)
    events.quit.add_listener(_write)


def _init(environment, **_kwargs) -> None:
    _environment.append(environment)
    if not isinstance(environment.runner, MasterRunner):  # the process that runs users
        gevent.spawn(_watch_cpu, environment.runner)


def _running_stage(runner) -> str | None:
    """The one stage whose users run on this worker now; None while idle or between two stages."""
    stages = {_stage_of_class.get(name) for name, count in runner.user_classes_count.items() if count}
    return stages.pop() if len(stages) == 1 else None


def _waiting_s() -> float:
    """Seconds this process's main thread (the gevent loop) has waited for a CPU while runnable."""
    try:
        # Linux /proc/<pid>/schedstat: time on a CPU, time waiting on a run queue (ns), timeslices.
        return int(Path("/proc/self/schedstat").read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0  # no schedstat (another kernel): CPU use and Locust's warning still count


def _watch_cpu(runner) -> None:
    process = psutil.Process()
    last = (sum(process.cpu_times()[:2]), _waiting_s(), time.monotonic())
    while True:
        gevent.sleep(CPU_SAMPLE_S)
        now = (sum(process.cpu_times()[:2]), _waiting_s(), time.monotonic())
        stage = _running_stage(runner)
        if stage:
            for key, before, after in zip(("cpu_s", "waiting_s", "wall_s"), last, now, strict=True):
                _cpu[stage][key] += after - before
        last = now


def _cpu_warning(environment, cpu_usage, **_kwargs) -> None:
    # Locust's own warning (above 90 % of a core), counted against the stage it happened in.
    stage = _running_stage(environment.runner)
    if stage:
        _cpu[stage]["warnings"] += 1


def _record(name, response_time, exception, context=None, **_kwargs) -> None:
    stage = (context or {}).get("stage", "mixed")
    now = time.time()
    window = _windows.setdefault(stage, [now - response_time / 1000, now])
    window[1] = max(window[1], now)
    if exception is None:
        _histograms[stage][name].record_ms(response_time)
    else:
        _failures[stage][name] += 1
        _errors.setdefault(name, f"{type(exception).__name__}: {exception}")


def _drain() -> dict:
    """This worker's samples since its last report (histograms are deltas, the rest cumulative)."""
    samples = {
        stage: {
            op: {"histogram_us": _histograms[stage][op].to_dict(), "failures": _failures[stage][op]}
            for op in set(_histograms[stage]) | set(_failures[stage])
        }
        for stage in set(_histograms) | set(_failures)
    }
    _histograms.clear()
    _failures.clear()
    return {"samples": samples, "windows": dict(_windows), "errors": dict(_errors), "cpu": dict(_cpu)}


def _ship(client_id, data, **_kwargs) -> None:
    data[REPORT_KEY] = _drain()


def _merge(client_id, data, **_kwargs) -> None:
    part = data.get(REPORT_KEY)
    if not part:
        return
    for stage, ops in part["samples"].items():
        for op, sample in ops.items():
            _histograms[stage][op].merge(LatencyHistogram.from_dict(sample["histogram_us"]))
            _failures[stage][op] += sample["failures"]
    for stage, (first, last) in part["windows"].items():
        mine = _windows.setdefault(stage, [first, last])
        mine[0], mine[1] = min(mine[0], first), max(mine[1], last)
    for op, error in part["errors"].items():
        _errors.setdefault(op, error)
    _cpu_by_worker[client_id] = part["cpu"]


def snapshot() -> dict:
    """What the master gathered: {"samples", "windows", "errors", "workers", "locust_cpu_warning"}."""
    runner = _environment[0].runner if _environment else None
    # Without a master (plain `locust -f`), this process ran the users itself.
    workers = _cpu_by_worker if isinstance(runner, MasterRunner) else {"local": dict(_cpu)}
    return {
        "samples": {
            stage: {
                op: {"histogram_us": _histograms[stage][op].to_dict(), "failures": _failures[stage][op]}
                for op in sorted(set(_histograms[stage]) | set(_failures[stage]))
            }
            for stage in sorted(set(_histograms) | set(_failures))
        },
        "windows": _windows,
        "errors": _errors,
        "workers": workers,
        "locust_cpu_warning": bool(runner and getattr(runner, "worker_cpu_warning_emitted", False)),
    }


def _write(exit_code, **_kwargs) -> None:
    out = os.environ.get(SAMPLES_ENV)
    if out and _environment and not isinstance(_environment[0].runner, WorkerRunner):
        Path(out).write_text(json.dumps(snapshot()))
