"""The workload dashboard of an application database without a dedicated module: writes, reads,
statements, cleanup, cron runs and partitions, all filtered to that database."""

from infra.dashboards.common import RATE, dashboard, graph, row, single, top_table
from infra.databases import Database


def uid(db: Database) -> str:
    return f"agentdb-workload-{db.key}"


def build(db: Database):
    d = f'datname="{db.name}"'
    return dashboard(
        uid(db),
        f"Workload: {db.key}",
        f"The workload of {db.name}.",
        [
            row("Activity"),
            graph(
                "Rows written/s by table (top 10)",
                [
                    (
                        f"topk(10, sum by (relname) (rate(agentdb_table_inserted{{{d}}}[{RATE}])"
                        f" + rate(agentdb_table_updated{{{d}}}[{RATE}])))",
                        "{{relname}}",
                    ),
                ],
                unit="ops",
            ),
            graph(
                "Scans/s by table (top 10)",
                [
                    (
                        f"topk(10, sum by (relname) (rate(agentdb_table_idx_scan{{{d}}}[{RATE}])"
                        f" + rate(agentdb_table_seq_scan{{{d}}}[{RATE}])))",
                        "{{relname}}",
                    ),
                ],
                unit="ops",
            ),
            graph(
                "Statements/s by role",
                [
                    (f"sum by (usename) (rate(agentdb_statements_calls{{{d}}}[{RATE}]))", "{{usename}}"),
                ],
                unit="ops",
            ),
            top_table(
                "Slowest statements (mean stands in for p95)",
                f"topk(10, agentdb_statements_mean_seconds{{{d}}})",
                unit="s",
            ),
            row("Retention and maintenance"),
            graph(
                "Rows deleted/s by table (top 10)",
                [
                    (f"topk(10, sum by (relname) (rate(agentdb_table_deleted{{{d}}}[{RATE}])))", "{{relname}}"),
                ],
                unit="ops",
            ),
            graph(
                "Cron runs in the last hour",
                [
                    (
                        f'sum by (jobname, status) (agentdb_cron_runs_last_hour{{database="{db.name}"}})',
                        "{{jobname}} {{status}}",
                    ),
                ],
            ),
            graph(
                "Partitions made ahead (months)",
                [
                    (f"min by (parent) (agentdb_partitions_months_ahead{{{d}}})", "{{parent}}"),
                ],
            ),
            single("Database size", f"max(agentdb_database_size_bytes{{{d}}})", unit="bytes"),
            single(
                "Dead-tuple ratio (worst table)",
                f"max(agentdb_table_dead_ratio{{{d}}})",
                unit="percentunit",
                thresholds=[(None, "green"), (0.1, "orange"), (0.3, "red")],
            ),
        ],
    )
