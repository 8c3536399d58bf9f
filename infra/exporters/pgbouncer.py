"""A PgBouncer exporter for PgBouncer 1.21+: pools, clients waiting, server connections, stats, limits.

Debian 12's prometheus-pgbouncer-exporter (1.7) reads SHOW STATS columns that PgBouncer dropped in
1.8 and crashes on start, so the stack ships this one. Metric names follow prometheus-community's
pgbouncer_exporter, so the usual dashboards and alert rules apply. The password comes from PGPASSFILE.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator

import psycopg
from prometheus_client import start_http_server
from prometheus_client.core import REGISTRY, CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

# SHOW POOLS column -> (metric suffix, help)
POOL_GAUGES = {
    "cl_active": ("pools_client_active_connections", "Client connections linked to a server connection"),
    "cl_waiting": ("pools_client_waiting_connections", "Client connections waiting for a server connection"),
    "sv_active": ("pools_server_active_connections", "Server connections linked to a client"),
    "sv_idle": ("pools_server_idle_connections", "Server connections idle and ready"),
    "sv_used": ("pools_server_used_connections", "Server connections idle past server_check_delay"),
    "sv_tested": ("pools_server_testing_connections", "Server connections being tested"),
    "sv_login": ("pools_server_login_connections", "Server connections logging in"),
}
# SHOW STATS column -> (metric suffix, help, divisor to base units)
STAT_COUNTERS = {
    "total_xact_count": ("stats_sql_transactions_pooled_total", "Transactions pooled", 1),
    "total_query_count": ("stats_queries_pooled_total", "Queries pooled", 1),
    "total_received": ("stats_received_bytes_total", "Bytes received from clients", 1),
    "total_sent": ("stats_sent_bytes_total", "Bytes sent to clients", 1),
    "total_xact_time": ("stats_sql_transactions_duration_seconds_total", "Time in transactions", 1e6),
    "total_query_time": ("stats_queries_duration_seconds_total", "Time in queries", 1e6),
    "total_wait_time": ("stats_client_wait_seconds_total", "Time clients waited for a server", 1e6),
}
DATABASE_GAUGES = {
    "pool_size": ("databases_pool_size", "Configured pool size"),
    "reserve_pool": ("databases_reserve_pool", "Configured reserve pool size"),
    "max_connections": ("databases_max_connections", "Configured max_db_connections (0 = unlimited)"),
    "current_connections": ("databases_current_connections", "Server connections open to this database"),
}


def _rows(conn: psycopg.Connection, command: str) -> list[dict[str, str | None]]:
    # The admin console speaks only the simple query protocol.
    result = conn.pgconn.exec_(command.encode())
    if result.status != psycopg.pq.ExecStatus.TUPLES_OK:
        raise RuntimeError(f"{command}: {result.error_message.decode(errors='replace').strip()}")
    names = [result.fname(i).decode() for i in range(result.nfields)]
    return [
        {names[c]: (v.decode() if (v := result.get_value(r, c)) is not None else None) for c in range(result.nfields)}
        for r in range(result.ntuples)
    ]


def _number(value: str | None) -> float:
    try:
        return float(value) if value not in (None, "") else 0.0
    except ValueError:
        return 0.0


class PgBouncerCollector(Collector):
    def __init__(self, conninfo: str):
        self.conninfo = conninfo

    def collect(self) -> Iterator:
        up = GaugeMetricFamily("pgbouncer_up", "1 when the admin console answered this scrape")
        try:
            with psycopg.connect(self.conninfo, autocommit=True, connect_timeout=3) as conn:
                families = list(self._collect(conn))
        except Exception:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _collect(self, conn: psycopg.Connection) -> Iterator:
        pools = {
            k: GaugeMetricFamily(f"pgbouncer_{n}", h, labels=["database", "user"]) for k, (n, h) in POOL_GAUGES.items()
        }
        maxwait = GaugeMetricFamily(
            "pgbouncer_pools_client_maxwait_seconds",
            "Longest wait of a client in the queue",
            labels=["database", "user"],
        )
        for row in _rows(conn, "SHOW POOLS"):
            labels = [row["database"] or "", row["user"] or ""]
            for column, family in pools.items():
                family.add_metric(labels, _number(row.get(column)))
            maxwait.add_metric(labels, _number(row.get("maxwait")) + _number(row.get("maxwait_us")) / 1e6)
        yield from pools.values()
        yield maxwait

        stats = {
            k: CounterMetricFamily(f"pgbouncer_{n}", h, labels=["database"]) for k, (n, h, _) in STAT_COUNTERS.items()
        }
        for row in _rows(conn, "SHOW STATS"):
            for column, family in stats.items():
                family.add_metric([row["database"] or ""], _number(row.get(column)) / STAT_COUNTERS[column][2])
        yield from stats.values()

        dbs = {k: GaugeMetricFamily(f"pgbouncer_{n}", h, labels=["name"]) for k, (n, h) in DATABASE_GAUGES.items()}
        for row in _rows(conn, "SHOW DATABASES"):
            for column, family in dbs.items():
                family.add_metric([row["name"] or ""], _number(row.get(column)))
        yield from dbs.values()

        config = {row["key"]: row["value"] for row in _rows(conn, "SHOW CONFIG")}
        for key in ("max_client_conn", "default_pool_size", "reserve_pool_size", "max_prepared_statements"):
            family = GaugeMetricFamily(f"pgbouncer_config_{key}", f"PgBouncer setting {key}")
            family.add_metric([], _number(config.get(key)))
            yield family

        lists = {row["list"]: row["items"] for row in _rows(conn, "SHOW LISTS")}
        used = GaugeMetricFamily("pgbouncer_used_clients", "Client connections in use (against max_client_conn)")
        used.add_metric([], _number(lists.get("used_clients")))
        yield used


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--listen", required=True, help="host:port to serve /metrics on")
    parser.add_argument("--pgbouncer", required=True, help="libpq conninfo of the admin console, no password")
    args = parser.parse_args()
    host, _, port = args.listen.rpartition(":")
    REGISTRY.register(PgBouncerCollector(args.pgbouncer))
    start_http_server(int(port), addr=host)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
