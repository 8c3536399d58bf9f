"""PgBouncer: clients, waiting, server connections against pool size, limits, throughput."""

from infra.dashboards.common import RATE, dashboard, graph, row, single

UID = "agentdb-pgbouncer"


def build():
    return dashboard(
        UID,
        "PgBouncer",
        "PgBouncer through agentdb's exporter (infra/exporters/pgbouncer.py).",
        [
            row("Availability and limits"),
            single("PgBouncer up", "min(pgbouncer_up)", thresholds=[(None, "red"), (1, "green")]),
            single(
                "Clients waiting",
                "sum(pgbouncer_pools_client_waiting_connections)",
                thresholds=[(None, "green"), (1, "orange")],
            ),
            single(
                "Longest wait",
                "max(pgbouncer_pools_client_maxwait_seconds)",
                unit="s",
                thresholds=[(None, "green"), (1, "orange"), (5, "red")],
            ),
            single(
                "Clients / max_client_conn",
                "max(pgbouncer_used_clients / pgbouncer_config_max_client_conn)",
                unit="percentunit",
                thresholds=[(None, "green"), (0.8, "orange"), (1, "red")],
            ),
            row("Pools"),
            graph(
                "Client connections by database",
                [
                    ("sum by (database) (pgbouncer_pools_client_active_connections)", "active {{database}}"),
                    ("sum by (database) (pgbouncer_pools_client_waiting_connections)", "waiting {{database}}"),
                ],
            ),
            graph(
                "Server connections against pool size",
                [
                    ("pgbouncer_databases_current_connections", "open {{name}}"),
                    ("pgbouncer_databases_pool_size + pgbouncer_databases_reserve_pool", "pool + reserve {{name}}"),
                ],
            ),
            graph(
                "Server connections by state",
                [
                    ("sum by (database) (pgbouncer_pools_server_active_connections)", "active {{database}}"),
                    ("sum by (database) (pgbouncer_pools_server_idle_connections)", "idle {{database}}"),
                ],
            ),
            graph(
                "Pool use (server connections / pool + reserve)",
                [
                    (
                        "pgbouncer_databases_current_connections / (pgbouncer_databases_pool_size"
                        " + pgbouncer_databases_reserve_pool)",
                        "{{name}}",
                    ),
                ],
                unit="percentunit",
            ),
            row("Throughput"),
            graph(
                "Queries and transactions/s",
                [
                    (f"sum by (database) (rate(pgbouncer_stats_queries_pooled_total[{RATE}]))", "queries {{database}}"),
                    (
                        f"sum by (database) (rate(pgbouncer_stats_sql_transactions_pooled_total[{RATE}]))",
                        "xacts {{database}}",
                    ),
                ],
                unit="ops",
            ),
            graph(
                "Client wait time per second",
                [
                    (f"sum by (database) (rate(pgbouncer_stats_client_wait_seconds_total[{RATE}]))", "{{database}}"),
                ],
                unit="s",
            ),
        ],
    )
