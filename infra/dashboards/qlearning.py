"""qlearning_db workload: Q-value upserts, best-action lookups, trajectories, TTL cleanup, cron, views.

Rates come from pg_stat_user_tables (agentdb_table_*) and pg_stat_statements (agentdb_statements_*)
through the exporter's agentdb_* queries.
"""

from infra.dashboards.common import RATE, dashboard, graph, row, single
from infra.databases import DATABASES

DB = DATABASES["qlearning"]
UID = "agentdb-workload-qlearning"


def build():
    d = f'datname="{DB.name}"'
    lookups = f'{d}, query=~".*get_best_action.*"'
    ttl_tables = 'relname=~"q_values|trajectories|patterns"'
    return dashboard(
        UID,
        "Workload: qlearning",
        f"The Q-learning workload of {DB.name}.",
        [
            row("Learning"),
            graph(
                "Q-value upserts/s (rows inserted + updated in q_values)",
                [
                    (
                        f'sum(rate(agentdb_table_inserted{{{d}, relname="q_values"}}[{RATE}]))'
                        f' + sum(rate(agentdb_table_updated{{{d}, relname="q_values"}}[{RATE}]))',
                        "upserts/s",
                    ),
                ],
                unit="ops",
            ),
            graph(
                "Best-action lookups/s (get_best_action calls)",
                [
                    (f"sum(rate(agentdb_statements_calls{{{lookups}}}[{RATE}]))", "lookups/s"),
                ],
                unit="ops",
            ),
            graph(
                "Lookup latency (mean since reset; stands in for p95)",
                [
                    (f"max(agentdb_statements_mean_seconds{{{lookups}}})", "mean"),
                    (f"max(agentdb_statements_max_seconds{{{lookups}}})", "max"),
                ],
                unit="s",
            ),
            graph(
                "Trajectories/s (rows inserted)",
                [
                    (f'sum(rate(agentdb_table_inserted{{{d}, relname="trajectories"}}[{RATE}]))', "trajectories/s"),
                ],
                unit="ops",
            ),
            row("Retention and maintenance"),
            graph(
                "Cleanup: rows deleted/s",
                [
                    (
                        f"sum by (relname) (rate(agentdb_table_deleted{{{d}, {ttl_tables}}}[{RATE}]))",
                        "{{relname}}",
                    ),
                ],
                unit="ops",
            ),
            graph(
                "Expired rows awaiting cleanup",
                [
                    (f"agentdb_ttl_expired_rows{{{d}}}", "expired {{relname}}"),
                    (f"agentdb_ttl_overdue_rows{{{d}}}", "overdue {{relname}}"),
                ],
            ),
            graph(
                "Cron runs in the last hour",
                [
                    (
                        f'sum by (jobname, status) (agentdb_cron_runs_last_hour{{database="{DB.name}"}})',
                        "{{jobname}} {{status}}",
                    ),
                ],
            ),
            graph(
                "View refresh age",
                [
                    (f"max by (matview) (agentdb_matview_refresh_age_seconds{{{d}}})", "{{matview}}"),
                    (
                        f'max by (jobname) (agentdb_cron_job_last_success_age_seconds{{database="{DB.name}",'
                        f' jobname=~".+-refresh-.+"}})',
                        "since {{jobname}} succeeded",
                    ),
                ],
                unit="s",
            ),
            single("Table size", f"sum(agentdb_table_size_bytes{{{d}}})", unit="bytes"),
            single(
                "Dead-tuple ratio (worst table)",
                f"max(agentdb_table_dead_ratio{{{d}}})",
                unit="percentunit",
                thresholds=[(None, "green"), (0.1, "orange"), (0.3, "red")],
            ),
        ],
    )
