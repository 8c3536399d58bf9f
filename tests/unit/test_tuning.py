"""infra.tuning against PGTune's published output, computed by hand from PGTune's formulas.

Reference: PGTune (pgtune.leopard.in.ua, le0pard/pgtune src/features/configuration/configurationSlice.js),
OS Linux, memory in kB throughout, every division floored:
  shared_buffers = RAM/4 (desktop RAM/16); effective_cache_size = RAM*3/4 (desktop RAM/4);
  maintenance_work_mem = RAM/16 (dw RAM/8), capped at 2GB;
  wal_buffers = 3% of shared_buffers, capped at 16MB, rounded up to 16MB above 14MB, at least 32kB;
  work_mem = (RAM - shared_buffers) / ((max_connections + workers) * 3) / (dw, mixed 2; desktop 6),
    workers = CPUs from 4 CPUs, else 8; at least 64kB;
  parallel settings only from 4 CPUs; huge_pages = try from 32GB of RAM.
Values are displayed in GB when exact, else MB when exact, else kB.
"""

from __future__ import annotations

import pytest

from infra.tuning import Machine, max_connections_for, to_bytes, tune

CRON_WORKERS = 4

# One row per machine: (id, Machine, PGTune's output for it). max_worker_processes is PGTune's value
# plus CRON_WORKERS (8 + CRON_WORKERS below 4 CPUs, where PGTune does not print it).
PGTUNE_CASES = [
    (
        # PGTune: Linux, web, 2 GB, 2 CPUs, 100 connections, SSD
        # work_mem = (2097152 - 524288) / ((100 + 8) * 3) = 4854.5 -> 4854kB
        # wal_buffers = 3% of 524288 = 15728kB > 14MB -> 16MB
        "2GB-2cpu-web-ssd",
        Machine(memory_mb=2048, cpus=2, storage="ssd", workload="web", max_connections=100),
        {
            "max_connections": "100",
            "shared_buffers": "512MB",
            "effective_cache_size": "1536MB",
            "maintenance_work_mem": "128MB",
            "checkpoint_completion_target": "0.9",
            "wal_buffers": "16MB",
            "default_statistics_target": "100",
            "random_page_cost": "1.1",
            "effective_io_concurrency": "200",
            "work_mem": "4854kB",
            "huge_pages": "off",
            "min_wal_size": "1GB",
            "max_wal_size": "4GB",
            "max_worker_processes": "12",
        },
    ),
    (
        # PGTune: Linux, oltp, 8 GB, 4 CPUs, 200 connections, SSD
        # work_mem = (8388608 - 2097152) / ((200 + 4) * 3) = 10280.2 -> 10280kB
        "8GB-4cpu-oltp-ssd",
        Machine(memory_mb=8192, cpus=4, storage="ssd", workload="oltp", max_connections=200),
        {
            "max_connections": "200",
            "shared_buffers": "2GB",
            "effective_cache_size": "6GB",
            "maintenance_work_mem": "512MB",
            "checkpoint_completion_target": "0.9",
            "wal_buffers": "16MB",
            "default_statistics_target": "100",
            "random_page_cost": "1.1",
            "effective_io_concurrency": "200",
            "work_mem": "10280kB",
            "huge_pages": "off",
            "min_wal_size": "2GB",
            "max_wal_size": "8GB",
            "max_worker_processes": "8",
            "max_parallel_workers_per_gather": "2",
            "max_parallel_workers": "4",
            "max_parallel_maintenance_workers": "2",
        },
    ),
    (
        # PGTune: Linux, mixed, 32 GB, 8 CPUs, 100 connections, HDD
        # work_mem = (33554432 - 8388608) / ((100 + 8) * 3) / 2 = 38836.1 -> 38836kB
        # maintenance_work_mem = 33554432 / 16 = 2097152 -> at the 2GB cap
        "32GB-8cpu-mixed-hdd",
        Machine(memory_mb=32768, cpus=8, storage="hdd", workload="mixed", max_connections=100),
        {
            "max_connections": "100",
            "shared_buffers": "8GB",
            "effective_cache_size": "24GB",
            "maintenance_work_mem": "2GB",
            "checkpoint_completion_target": "0.9",
            "wal_buffers": "16MB",
            "default_statistics_target": "100",
            "random_page_cost": "4",
            "effective_io_concurrency": "2",
            "work_mem": "38836kB",
            "huge_pages": "try",
            "min_wal_size": "1GB",
            "max_wal_size": "4GB",
            "max_worker_processes": "12",
            "max_parallel_workers_per_gather": "4",
            "max_parallel_workers": "8",
            "max_parallel_maintenance_workers": "4",
        },
    ),
    (
        # PGTune: Linux, dw, 64 GB, 16 CPUs, 40 connections, SAN
        # work_mem = (67108864 - 16777216) / ((40 + 16) * 3) / 2 = 149796.6 -> 149796kB
        # maintenance_work_mem = 67108864 / 8 = 8GB -> capped at 2GB; per_gather = ceil(16/2), no cap for dw
        "64GB-16cpu-dw-san",
        Machine(memory_mb=65536, cpus=16, storage="san", workload="dw", max_connections=40),
        {
            "max_connections": "40",
            "shared_buffers": "16GB",
            "effective_cache_size": "48GB",
            "maintenance_work_mem": "2GB",
            "checkpoint_completion_target": "0.9",
            "wal_buffers": "16MB",
            "default_statistics_target": "500",
            "random_page_cost": "1.1",
            "effective_io_concurrency": "300",
            "work_mem": "149796kB",
            "huge_pages": "try",
            "min_wal_size": "4GB",
            "max_wal_size": "16GB",
            "max_worker_processes": "20",
            "max_parallel_workers_per_gather": "8",
            "max_parallel_workers": "16",
            "max_parallel_maintenance_workers": "4",
        },
    ),
    (
        # PGTune: Linux, desktop, 1 GB, 1 CPU, 20 connections, SSD
        # shared_buffers = 1048576 / 16 = 64MB; wal_buffers = 3% of 65536 = 1966kB
        # work_mem = (1048576 - 65536) / ((20 + 8) * 3) / 6 = 1950.5 -> 1950kB
        "1GB-1cpu-desktop-ssd",
        Machine(memory_mb=1024, cpus=1, storage="ssd", workload="desktop", max_connections=20),
        {
            "max_connections": "20",
            "shared_buffers": "64MB",
            "effective_cache_size": "256MB",
            "maintenance_work_mem": "64MB",
            "checkpoint_completion_target": "0.9",
            "wal_buffers": "1966kB",
            "default_statistics_target": "100",
            "random_page_cost": "1.1",
            "effective_io_concurrency": "200",
            "work_mem": "1950kB",
            "huge_pages": "off",
            "min_wal_size": "100MB",
            "max_wal_size": "2GB",
            "max_worker_processes": "12",
        },
    ),
    (
        # PGTune: Linux, desktop, 256 MB, 2 CPUs, 500 connections, HDD: the floors
        # wal_buffers = 3% of 16384 = 491kB
        # work_mem = (262144 - 16384) / ((500 + 8) * 3) / 6 = 26.9 -> 64kB floor
        "256MB-2cpu-desktop-hdd",
        Machine(memory_mb=256, cpus=2, storage="hdd", workload="desktop", max_connections=500),
        {
            "max_connections": "500",
            "shared_buffers": "16MB",
            "effective_cache_size": "64MB",
            "maintenance_work_mem": "16MB",
            "checkpoint_completion_target": "0.9",
            "wal_buffers": "491kB",
            "default_statistics_target": "100",
            "random_page_cost": "4",
            "effective_io_concurrency": "2",
            "work_mem": "64kB",
            "huge_pages": "off",
            "min_wal_size": "100MB",
            "max_wal_size": "2GB",
            "max_worker_processes": "12",
        },
    ),
]

PARALLEL_KEYS = [
    "max_parallel_workers_per_gather",
    "max_parallel_workers",
    "max_parallel_maintenance_workers",
]

AGENTDB_PARAMS = {
    "shared_preload_libraries": "'pg_cron,pg_stat_statements'",
    "pg_stat_statements.track": "all",
    "track_io_timing": "on",
    "autovacuum_vacuum_scale_factor": "0.05",
    "autovacuum_analyze_scale_factor": "0.02",
}
AUTOVACUUM_KEYS = ["autovacuum_max_workers", "autovacuum_naptime", "autovacuum_vacuum_cost_limit"]

MEMORY_KEYS = [
    "shared_buffers",
    "effective_cache_size",
    "maintenance_work_mem",
    "wal_buffers",
    "work_mem",
    "min_wal_size",
    "max_wal_size",
]


def _machine(**changes: object) -> Machine:
    fields: dict[str, object] = dict(memory_mb=8192, cpus=4, storage="ssd", workload="oltp", max_connections=200)
    fields.update(changes)
    return Machine(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("machine", "param", "expected"),
    [
        pytest.param(machine, param, value, id=f"{case_id}:{param}")
        for case_id, machine, expected in PGTUNE_CASES
        for param, value in expected.items()
    ],
)
def test_matches_pgtune(machine: Machine, param: str, expected: str) -> None:
    assert tune(machine, cron_workers=CRON_WORKERS).get(param) == expected


@pytest.mark.parametrize(("machine", "expected"), [pytest.param(m, e, id=case_id) for case_id, m, e in PGTUNE_CASES])
def test_parallel_keys_exactly_as_pgtune(machine: Machine, expected: dict[str, str]) -> None:
    params = tune(machine, cron_workers=CRON_WORKERS)
    assert [k for k in PARALLEL_KEYS if k in params] == [k for k in PARALLEL_KEYS if k in expected]


@pytest.mark.parametrize("cpus", [1, 2, 3])
def test_no_parallel_settings_below_4_cpus(cpus: int) -> None:
    params = tune(_machine(cpus=cpus), cron_workers=CRON_WORKERS)
    assert [k for k in PARALLEL_KEYS if k in params] == []
    assert params["max_worker_processes"] == str(8 + CRON_WORKERS)


def test_parallel_settings_from_4_cpus() -> None:
    params = tune(_machine(cpus=4), cron_workers=CRON_WORKERS)
    assert all(k in params for k in PARALLEL_KEYS)


@pytest.mark.parametrize(("cpus", "cron_workers", "expected"), [(2, 0, "8"), (2, 2, "10"), (12, 3, "15")])
def test_max_worker_processes_leaves_room_for_cron(cpus: int, cron_workers: int, expected: str) -> None:
    params = tune(_machine(cpus=cpus), cron_workers=cron_workers)
    assert params["max_worker_processes"] == expected


@pytest.mark.parametrize(
    ("memory_mb", "expected"),
    [
        # web: shared_buffers = 1843200 / 4 = 460800kB; 3% = 13824kB, below 14MB: kept
        (1800, "13824kB"),
        # web: shared_buffers = 1945600 / 4 = 486400kB; 3% = 14592kB, above 14MB: rounded up to 16MB
        (1900, "16MB"),
        # web: shared_buffers = 4GB; 3% = 125829kB: capped at 16MB
        (16384, "16MB"),
    ],
)
def test_wal_buffers_rounding(memory_mb: int, expected: str) -> None:
    assert tune(_machine(memory_mb=memory_mb, workload="web"))["wal_buffers"] == expected


@pytest.mark.parametrize(
    ("storage", "random_page_cost", "effective_io_concurrency"),
    [("ssd", "1.1", "200"), ("hdd", "4", "2"), ("san", "1.1", "300")],
)
def test_storage_branches(storage: str, random_page_cost: str, effective_io_concurrency: str) -> None:
    params = tune(_machine(storage=storage))
    assert (params["random_page_cost"], params["effective_io_concurrency"]) == (
        random_page_cost,
        effective_io_concurrency,
    )


@pytest.mark.parametrize(("param", "expected"), AGENTDB_PARAMS.items())
def test_agentdb_parameters(param: str, expected: str) -> None:
    assert tune(_machine()).get(param) == expected


@pytest.mark.parametrize("param", AUTOVACUUM_KEYS)
def test_autovacuum_baseline_present(param: str) -> None:
    assert param in tune(_machine())


@pytest.mark.parametrize("param", MEMORY_KEYS)
@pytest.mark.parametrize(("machine"), [pytest.param(m, id=case_id) for case_id, m, _ in PGTUNE_CASES])
def test_memory_values_parse_as_postgresql_units(machine: Machine, param: str) -> None:
    assert to_bytes(tune(machine)[param]) > 0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("8kB", 8 * 1024),
        ("64kB", 64 * 1024),
        ("4MB", 4 * 1024**2),
        ("1536MB", 1536 * 1024**2),
        ("1GB", 1024**3),
        ("2TB", 2 * 1024**4),
        ("100B", 100),
        ("16 MB", 16 * 1024**2),
    ],
)
def test_to_bytes(value: str, expected: int) -> None:
    assert to_bytes(value) == expected


@pytest.mark.parametrize("value", ["", "4", "4mb", "4KB", "1.5GB", "-1MB", "MB", "4 MiB"])
def test_to_bytes_rejects(value: str) -> None:
    with pytest.raises(ValueError, match="memory value"):
        to_bytes(value)


@pytest.mark.parametrize(
    ("args", "expected"),
    [((4, 20, 5), 4 * 25 + 10), ((1, 10, 0), 20), ((2, 50, 10, 0), 120), ((3, 25, 5, 15), 105)],
)
def test_max_connections_for(args: tuple[int, ...], expected: int) -> None:
    assert max_connections_for(*args) == expected


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ((0, 20, 5), "pools"),
        ((2, 0, 5), "pool_size"),
        ((2, 20, -1), "reserve_pool_size"),
        ((2, 20, 5, -1), "extra"),
    ],
)
def test_max_connections_for_rejects(args: tuple[int, ...], field: str) -> None:
    with pytest.raises(ValueError, match=f"^{field} "):
        max_connections_for(*args)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"memory_mb": 0}, "memory_mb"),
        ({"memory_mb": -1024}, "memory_mb"),
        ({"cpus": 0}, "cpus"),
        ({"cpus": -2}, "cpus"),
        ({"max_connections": 0}, "max_connections"),
        ({"storage": "nvme"}, "storage"),
        ({"workload": "batch"}, "workload"),
        ({"pg_major": 13}, "pg_major"),
    ],
)
def test_invalid_machine_names_the_field(changes: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=f"^{field} "):
        _machine(**changes)


def test_negative_cron_workers_rejected() -> None:
    with pytest.raises(ValueError, match="^cron_workers "):
        tune(_machine(), cron_workers=-1)
