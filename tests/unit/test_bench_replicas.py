"""`make bench`'s replica section: the small cluster's stack file, and the section in docs/benchmarks.md."""

from __future__ import annotations

from infra import topology
from infra.settings import load
from loadtests import replicas
from loadtests.stack import write_stack_file

RESULT = {
    "replicas": 1,
    "memory_mb_per_node": 1024,
    "clients": 18,
    "seconds": 10,
    "up_s": 30.0,
    "seed_s": 45.0,
    "caught_up_s": 2.0,
    "lookups": {
        "pgbouncer": {"tps": 9000.4, "latency_ms": 2.0, "failed": 0},
        "replica": {"tps": 8500.6, "latency_ms": 2.1, "failed": 0},
    },
}


def test_the_bench_cluster_is_the_dev_stack_with_a_replica_on_free_ports(tmp_path):
    path = write_stack_file(tmp_path, "bench-replicas", overrides=replicas.cluster_overrides())
    settings = load("bench-replicas", path=path)
    built = topology.build(settings)
    assert settings.replicas == replicas.REPLICAS
    assert [n.name for n in built.nodes] == ["pg-1", "pg-2"]
    assert built.replica_port == settings.haproxy_replica_port


def test_the_section_has_the_primary_and_the_replica_pool_from_one_run():
    section = replicas.render(RESULT)
    assert section.startswith(replicas.HEADING)
    assert "| qlearning.get_best_action | `qlearning_db` (app) | the leader | 9,000 | 2.00 | 0 |" in section
    assert (
        "| qlearning.get_best_action | `qlearning_db_replica` (readonly) | the replica | 8,501 | 2.10 | 0 |" in section
    )


def test_the_section_replaces_its_old_self_and_nothing_else():
    doc = "# Benchmarks\n\n## (a) pgbench\n\nrows\n\n## History\n\nold runs\n"
    once = replicas.splice(doc, replicas.render(RESULT))
    assert once.index("## (a) pgbench") < once.index(replicas.HEADING) < once.index("## History")
    again = replicas.splice(once, replicas.render({**RESULT, "up_s": 99.0}))
    assert again.count(replicas.HEADING) == 1
    assert "came up in 99.0 s" in again and "came up in 30.0 s" not in again
    assert again.replace(replicas.render({**RESULT, "up_s": 99.0}), "") == once.replace(replicas.render(RESULT), "")
