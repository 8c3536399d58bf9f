"""PostgreSQL overview: availability, the cluster, connections, throughput, slow statements, tables, maintenance."""

from infra.dashboards import backup, cluster
from infra.dashboards.common import RATE, dashboard, graph, row, single, top_table

UID = "agentdb-postgres"


def build():
    return dashboard(
        UID,
        "PostgreSQL overview",
        "PostgreSQL through postgres_exporter and the agentdb_* queries.",
        [
            row("Availability"),
            single("PostgreSQL up", "min(pg_up)", thresholds=[(None, "red"), (1, "green")]),
            single("Uptime", "time() - max(agentdb_postmaster_start_time_seconds)", unit="s"),
            single(
                "Connections used",
                "max(agentdb_connection_limits_used / (agentdb_connection_limits_max_connections"
                " - agentdb_connection_limits_superuser_reserved))",
                unit="percentunit",
                thresholds=[(None, "green"), (0.8, "orange"), (0.9, "red")],
            ),
            single(
                "Oldest transaction",
                "max(agentdb_activity_max_transaction_seconds)",
                unit="s",
                thresholds=[(None, "green"), (300, "orange"), (1800, "red")],
            ),
            single(
                "Wraparound used",
                "max(agentdb_database_wraparound_ratio)",
                unit="percentunit",
                thresholds=[(None, "green"), (0.5, "orange"), (0.75, "red")],
            ),
            single(
                "Replication lag",
                "max(agentdb_replication_lag_seconds) or vector(0)",
                unit="s",
                thresholds=[(None, "green"), (30, "orange"), (300, "red")],
            ),
            *cluster.panels(),
            *backup.panels(),
            row("Connections"),
            graph("Connections by state", [("sum by (state) (agentdb_connections_count)", "{{state}}")]),
            graph("Connections by database", [("sum by (datname) (agentdb_connections_count)", "{{datname}}")]),
            graph(
                "Longest active statement and idle-in-transaction",
                [
                    ("max by (datname) (agentdb_activity_max_active_seconds)", "active {{datname}}"),
                    ("max by (datname) (agentdb_activity_max_idle_in_transaction_seconds)", "idle in tx {{datname}}"),
                ],
                unit="s",
            ),
            graph("Deadlocks", [(f"sum by (datname) (increase(agentdb_deadlocks_deadlocks[{RATE}]))", "{{datname}}")]),
            row("Throughput"),
            graph(
                "Transactions/s",
                [
                    (
                        f'sum by (datname) (rate(pg_stat_database_xact_commit{{datname!~"template.*"}}[{RATE}]))',
                        "commit {{datname}}",
                    ),
                    (
                        f'sum by (datname) (rate(pg_stat_database_xact_rollback{{datname!~"template.*"}}[{RATE}]))',
                        "rollback {{datname}}",
                    ),
                ],
                unit="ops",
            ),
            graph(
                "Statements/s (pg_stat_statements, tracked statements)",
                [
                    (f"sum by (datname) (rate(agentdb_statements_calls[{RATE}]))", "{{datname}}"),
                ],
                unit="ops",
            ),
            top_table(
                "Slowest statements by mean time (mean stands in for p95)",
                "topk(15, agentdb_statements_mean_seconds)",
                unit="s",
            ),
            row("Tables and databases"),
            graph("Database size", [("max by (datname) (agentdb_database_size_bytes)", "{{datname}}")], unit="bytes"),
            graph("Largest tables", [("topk(10, agentdb_table_size_bytes)", "{{datname}}.{{relname}}")], unit="bytes"),
            graph(
                "Dead-tuple ratio (top 10)",
                [("topk(10, agentdb_table_dead_ratio)", "{{datname}}.{{relname}}")],
                unit="percentunit",
            ),
            graph(
                "Partitions made ahead (months)",
                [("min by (datname, parent) (agentdb_partitions_months_ahead)", "{{datname}}.{{parent}}")],
            ),
        ],
    )
