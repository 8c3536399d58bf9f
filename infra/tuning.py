"""postgresql.conf parameters derived from the declared machine, following PGTune's formulas.

The reference is PGTune (https://pgtune.leopard.in.ua, le0pard/pgtune) for a Linux host: the same
inputs (memory, CPUs, storage, workload, connections) give the same memory, WAL, planner and
parallelism values, printed with the same units. On top of that agentdb adds what its own stack
needs: pg_cron background workers, the preloaded extensions, I/O timing and an autovacuum baseline.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, get_args

Storage = Literal["ssd", "hdd", "san"]
Workload = Literal["web", "oltp", "dw", "mixed", "desktop"]

MIN_PG_MAJOR = 14

_KB_PER_MB = 1024
_KB_PER_GB = 1024 * 1024

# PGTune's per-workload tables. Memory is in kB because PGTune computes in kB and floors each step.
_SHARED_BUFFERS_DIVISOR = {"web": 4, "oltp": 4, "dw": 4, "mixed": 4, "desktop": 16}
_MAINTENANCE_WORK_MEM_DIVISOR = {"web": 16, "oltp": 16, "dw": 8, "mixed": 16, "desktop": 16}
# work_mem is shared by more concurrent sorts/hashes in analytical workloads, and a desktop
# must leave room for everything else on the machine.
_WORK_MEM_DIVISOR = {"web": 1, "oltp": 1, "dw": 2, "mixed": 2, "desktop": 6}
_MIN_WAL_SIZE_MB = {"web": 1024, "oltp": 2048, "dw": 4096, "mixed": 1024, "desktop": 100}
_MAX_WAL_SIZE_MB = {"web": 4096, "oltp": 8192, "dw": 16384, "mixed": 4096, "desktop": 2048}
_DEFAULT_STATISTICS_TARGET = {"web": 100, "oltp": 100, "dw": 500, "mixed": 100, "desktop": 100}
_RANDOM_PAGE_COST = {"ssd": "1.1", "hdd": "4", "san": "1.1"}
_EFFECTIVE_IO_CONCURRENCY = {"ssd": 200, "hdd": 2, "san": 300}

_MAINTENANCE_WORK_MEM_CAP_KB = 2 * _KB_PER_GB
_WAL_BUFFERS_CAP_KB = 16 * _KB_PER_MB
# PGTune rounds wal_buffers up to the 16MB cap once 3% of shared_buffers passes 14MB.
_WAL_BUFFERS_ROUND_UP_FROM_KB = 14 * _KB_PER_MB
_WAL_BUFFERS_MIN_KB = 32
_WORK_MEM_MIN_KB = 64
# PGTune suggests huge pages from 32GB of memory, where the page-table savings become worth it;
# 'try' still starts the server when the kernel has no huge pages reserved.
_HUGE_PAGES_FROM_KB = 32 * _KB_PER_GB
# Parallel query only pays off from 4 CPUs; below that PGTune leaves the parallel settings alone.
_PARALLEL_FROM_CPUS = 4
_PARALLEL_PER_GATHER_CAP = 4  # except dw, where big scans keep gaining from more workers
_PARALLEL_MAINTENANCE_CAP = 4
# PostgreSQL's default max_worker_processes, which PGTune assumes when it sets no parallel values.
_DEFAULT_MAX_WORKER_PROCESSES = 8

_MEMORY_UNITS = {"B": 1, "kB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}
_MEMORY_RE = re.compile(r"^\s*(\d+)\s*([A-Za-z]+)\s*$")


@dataclass(frozen=True)
class Machine:
    """The resources PostgreSQL gets and how it is used: PGTune's inputs."""

    memory_mb: int  # memory given to PostgreSQL
    cpus: int
    storage: Storage
    workload: Workload
    max_connections: int  # already sized by the caller for the pooler's server connections
    pg_major: int = 15

    def __post_init__(self) -> None:
        for field, minimum in (("memory_mb", 1), ("cpus", 1), ("max_connections", 1)):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(f"{field} must be an integer >= {minimum}, got {value!r}")
        if isinstance(self.pg_major, bool) or not isinstance(self.pg_major, int):
            raise ValueError(f"pg_major must be an integer, got {self.pg_major!r}")
        if self.pg_major < MIN_PG_MAJOR:
            raise ValueError(f"pg_major must be {MIN_PG_MAJOR} or newer, got {self.pg_major}")
        if self.storage not in get_args(Storage):
            raise ValueError(f"storage must be one of {', '.join(get_args(Storage))}, got {self.storage!r}")
        if self.workload not in get_args(Workload):
            raise ValueError(f"workload must be one of {', '.join(get_args(Workload))}, got {self.workload!r}")


def tune(machine: Machine, *, cron_workers: int = 4) -> dict[str, str]:
    """postgresql.conf parameters -> value exactly as written in the file.

    Values look like '1GB', '4MB', '0.9', 'on' or "'pg_cron,pg_stat_statements'" (quotes included).
    """
    if isinstance(cron_workers, bool) or not isinstance(cron_workers, int) or cron_workers < 0:
        raise ValueError(f"cron_workers must be an integer >= 0, got {cron_workers!r}")
    m = machine
    memory_kb = m.memory_mb * _KB_PER_MB

    shared_buffers_kb = memory_kb // _SHARED_BUFFERS_DIVISOR[m.workload]
    effective_cache_size_kb = memory_kb // 4 if m.workload == "desktop" else memory_kb * 3 // 4
    maintenance_work_mem_kb = min(memory_kb // _MAINTENANCE_WORK_MEM_DIVISOR[m.workload], _MAINTENANCE_WORK_MEM_CAP_KB)

    wal_buffers_kb = min(3 * shared_buffers_kb // 100, _WAL_BUFFERS_CAP_KB)
    if wal_buffers_kb > _WAL_BUFFERS_ROUND_UP_FROM_KB:
        wal_buffers_kb = _WAL_BUFFERS_CAP_KB
    wal_buffers_kb = max(wal_buffers_kb, _WAL_BUFFERS_MIN_KB)

    parallel = _parallel_settings(m)
    pgtune_worker_processes = parallel.get("max_worker_processes", _DEFAULT_MAX_WORKER_PROCESSES)

    # (RAM - shared_buffers) / ((max_connections + max_worker_processes) x 3): each backend may use
    # work_mem several times in one query, and the margin keeps the OOM killer away. The worker
    # count is PGTune's (without the pg_cron slots added below) so the result stays PGTune's value;
    # cron jobs are short maintenance statements and the x3 factor already leaves that headroom.
    # PGTune divides in floating point and floors once per step; integer floor division of the
    # same numbers gives the same result.
    work_mem_kb = (memory_kb - shared_buffers_kb) // (
        (m.max_connections + pgtune_worker_processes) * 3 * _WORK_MEM_DIVISOR[m.workload]
    )
    work_mem_kb = max(work_mem_kb, _WORK_MEM_MIN_KB)

    params: dict[str, str] = {
        "max_connections": str(m.max_connections),
        "shared_buffers": _format_kb(shared_buffers_kb),
        "effective_cache_size": _format_kb(effective_cache_size_kb),
        "maintenance_work_mem": _format_kb(maintenance_work_mem_kb),
        "checkpoint_completion_target": "0.9",
        "wal_buffers": _format_kb(wal_buffers_kb),
        "default_statistics_target": str(_DEFAULT_STATISTICS_TARGET[m.workload]),
        "random_page_cost": _RANDOM_PAGE_COST[m.storage],
        "effective_io_concurrency": str(_EFFECTIVE_IO_CONCURRENCY[m.storage]),
        "work_mem": _format_kb(work_mem_kb),
        "huge_pages": "try" if memory_kb >= _HUGE_PAGES_FROM_KB else "off",
        "min_wal_size": _format_kb(_MIN_WAL_SIZE_MB[m.workload] * _KB_PER_MB),
        "max_wal_size": _format_kb(_MAX_WAL_SIZE_MB[m.workload] * _KB_PER_MB),
    }
    # pg_cron runs each job in a background worker (cron.use_background_workers = on), and those
    # come out of max_worker_processes. max_parallel_workers stays at the CPU count (or at the
    # default 8 below 4 CPUs), so parallel queries can never take the cron jobs' slots.
    params["max_worker_processes"] = str(pgtune_worker_processes + cron_workers)
    for name in (
        "max_parallel_workers_per_gather",
        "max_parallel_workers",
        "max_parallel_maintenance_workers",
    ):
        if name in parallel:
            params[name] = str(parallel[name])

    params.update(
        {
            "shared_preload_libraries": "'pg_cron,pg_stat_statements'",
            "pg_stat_statements.track": "all",
            "track_io_timing": "on",
        }
    )
    params.update(_autovacuum(m))
    return params


def _parallel_settings(m: Machine) -> dict[str, int]:
    """PGTune's parallel-query settings; empty below 4 CPUs, where PostgreSQL's defaults stay."""
    if m.cpus < _PARALLEL_FROM_CPUS:
        return {}
    half = -(-m.cpus // 2)  # ceil(cpus / 2)
    per_gather = half if m.workload == "dw" else min(half, _PARALLEL_PER_GATHER_CAP)
    return {
        "max_worker_processes": m.cpus,
        "max_parallel_workers_per_gather": per_gather,
        "max_parallel_workers": m.cpus,
        "max_parallel_maintenance_workers": min(half, _PARALLEL_MAINTENANCE_CAP),
    }


def _autovacuum(m: Machine) -> dict[str, str]:
    """A global autovacuum baseline for high-churn tables (agent state, queues, messages).

    PostgreSQL's defaults wait until 20% of a table is dead (10% changed for ANALYZE) and look
    every minute: on a table of millions of rows rewritten all day that means long bloat cycles
    and stale plans. Vacuuming at 5% and analyzing at 2%, checked every 15s, keeps hot tables
    small; the insert threshold does the same for append-only logs so their visibility map (and
    index-only scans) stays current. More workers let big tables not starve the small hot ones,
    and the higher cost limit (shared by all workers) lets them finish; HDDs get less, since
    their random I/O is what vacuum competes with queries for. Single tables that need more
    set their own storage parameters in their migration.
    """
    workers = max(3, min(m.cpus // 2, 6))
    return {
        "autovacuum_max_workers": str(workers),
        "autovacuum_naptime": "15s",
        "autovacuum_vacuum_scale_factor": "0.05",
        "autovacuum_vacuum_insert_scale_factor": "0.05",
        "autovacuum_analyze_scale_factor": "0.02",
        "autovacuum_vacuum_cost_limit": "400" if m.storage == "hdd" else "2000",
    }


def _format_kb(kb: int) -> str:
    """PGTune's display: the largest of GB/MB/kB that shows the value exactly as an integer."""
    if kb % _KB_PER_GB == 0:
        return f"{kb // _KB_PER_GB}GB"
    if kb % _KB_PER_MB == 0:
        return f"{kb // _KB_PER_MB}MB"
    return f"{kb}kB"


def to_bytes(value: str) -> int:
    """Bytes in a PostgreSQL memory setting such as '4MB', '1GB', '64kB' or '8kB' (case-sensitive units)."""
    match = _MEMORY_RE.match(value) if isinstance(value, str) else None
    if match is None or match.group(2) not in _MEMORY_UNITS:
        raise ValueError(
            f"memory value must be an integer with one of the units {', '.join(_MEMORY_UNITS)}, got {value!r}"
        )
    return int(match.group(1)) * _MEMORY_UNITS[match.group(2)]


def max_connections_for(pools: int, pool_size: int, reserve_pool_size: int, extra: int = 10) -> int:
    """PostgreSQL max_connections for a pooler: every pool full with its reserve, plus `extra`.

    `extra` covers the connections that do not go through the pooler: admin sessions, the
    exporter, migrations and superuser_reserved_connections.
    """
    for field, value, minimum in (
        ("pools", pools, 1),
        ("pool_size", pool_size, 1),
        ("reserve_pool_size", reserve_pool_size, 0),
        ("extra", extra, 0),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"{field} must be an integer >= {minimum}, got {value!r}")
    return pools * (pool_size + reserve_pool_size) + extra


# pgBackRest compresses WAL in archive_command and backup files as it copies them. lz4 costs least CPU
# per byte (a few hundred MB/s a core) at about half zstd's ratio; zstd level 3 packs roughly a third
# tighter for about three times the CPU. With few cores the CPU belongs to PostgreSQL, so lz4; from
# ZSTD_FROM_CPUS cores up, process-max workers (at most 4) leave cores to spare and the smaller
# repository (and restore read) is worth it.
ZSTD_FROM_CPUS = 8


def backup_compression(cpus: int) -> tuple[str, int]:
    """pgBackRest's compress-type and compress-level for a machine with `cpus` cores."""
    return ("zst", 3) if cpus >= ZSTD_FROM_CPUS else ("lz4", 1)
