"""Redis: availability, memory against maxmemory, clients, rejections, commands, hit ratio."""

from infra.dashboards.common import RATE, dashboard, graph, row, single

UID = "agentdb-redis"


def build():
    return dashboard(
        UID,
        "Redis",
        "Redis through redis_exporter.",
        [
            row("Availability"),
            single("Redis up", "min(redis_up)", thresholds=[(None, "red"), (1, "green")]),
            single(
                "Memory / maxmemory",
                "max(redis_memory_used_bytes / (redis_memory_max_bytes > 0))",
                unit="percentunit",
                thresholds=[(None, "green"), (0.9, "orange"), (0.98, "red")],
            ),
            single("Connected clients", "sum(redis_connected_clients)"),
            single(
                "Rejected connections (1h)",
                "sum(increase(redis_rejected_connections_total[1h]))",
                thresholds=[(None, "green"), (1, "red")],
            ),
            row("Memory and load"),
            graph(
                "Memory",
                [
                    ("redis_memory_used_bytes", "used {{instance}}"),
                    ("redis_memory_max_bytes", "maxmemory {{instance}}"),
                ],
                unit="bytes",
            ),
            graph("Commands/s", [(f"sum(rate(redis_commands_processed_total[{RATE}]))", "commands")], unit="ops"),
            graph(
                "Keyspace hit ratio",
                [
                    (
                        f"sum(rate(redis_keyspace_hits_total[{RATE}])) / (sum(rate(redis_keyspace_hits_total[{RATE}]))"
                        f" + sum(rate(redis_keyspace_misses_total[{RATE}])))",
                        "hit ratio",
                    ),
                ],
                unit="percentunit",
            ),
            graph(
                "Evicted and expired keys/s",
                [
                    (f"sum(rate(redis_evicted_keys_total[{RATE}]))", "evicted"),
                    (f"sum(rate(redis_expired_keys_total[{RATE}]))", "expired"),
                ],
                unit="ops",
            ),
        ],
    )
