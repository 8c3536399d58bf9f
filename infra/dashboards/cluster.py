"""The cluster row of the PostgreSQL overview: Patroni's roles, members, lag and timelines, and etcd.

Sources: Patroni 4.1's `/metrics` (job `patroni`, label `node`) and etcd 3.4's (job `etcd`, label
`member`), the same series as config/rules/cluster.yml.j2. The counts are sums of 0/1 series rather
than `count(...) or vector(0)`, so a single-node stack (agentdb:replicas 0, no such series) shows
"No data" instead of an alarming 0, while a cluster without a leader shows 0.
"""

from infra.dashboards.common import RATE, graph, row, single

PATRONI = '{job="patroni"}'
ETCD = '{job="etcd"}'


def lag(position: str) -> str:
    """Bytes each replica's `position` (replayed or received) is behind the leader's flushed WAL.

    The alerts' measure, so the panel shows what PatroniReplicationLag compares.
    """
    return (
        f"scalar(max(patroni_xlog_location{PATRONI} and on (instance) patroni_primary{PATRONI} == 1))"
        f" - (patroni_xlog_{position}_location{PATRONI} and on (instance) patroni_replica{PATRONI} == 1)"
    )


def panels() -> list:
    """The row and its panels, in order."""
    return [
        row("Cluster (Patroni and etcd)"),
        single(
            "Leaders",
            f"sum(patroni_primary{PATRONI})",
            description="Nodes running PostgreSQL as primary: exactly 1 in a healthy cluster.",
            thresholds=[(None, "red"), (1, "green"), (2, "red")],
        ),
        single(
            "Members running",
            f"sum(patroni_postgres_running{PATRONI})",
            description="Nodes whose Patroni answers and whose PostgreSQL runs (agentdb:replicas + 1 expected).",
        ),
        single(
            "Replicas streaming",
            f"sum(patroni_postgres_streaming{PATRONI} and on (instance) patroni_replica{PATRONI} == 1)",
        ),
        single(
            "Sync standby streaming",
            f"sum(patroni_sync_standby{PATRONI} * on (instance) patroni_postgres_streaming{PATRONI})",
            description="1 while agentdb:synchronousMode protects commits; 0 when it is off or no replica qualifies.",
        ),
        single("Timeline", f"max(patroni_postgres_timeline{PATRONI})", description="Rises by one per promotion."),
        single(
            "etcd members with a leader",
            f"sum(etcd_server_has_leader{ETCD})",
            description="A majority (2 of 3) keeps the quorum Patroni's leader lock needs.",
        ),
        graph(
            "Role by node (2 leader, 1 replica, 0 neither)",
            [(f"max by (node) (2 * patroni_primary{PATRONI} + patroni_replica{PATRONI})", "{{node}}")],
        ),
        graph(
            "Replication lag behind the leader",
            [
                (lag("replayed"), "{{node}} replayed"),
                (lag("received"), "{{node}} received"),
            ],
            unit="bytes",
            description="Replayed: what HAProxy's /replica?lag= check compares with agentdb:replicaMaxLag. "
            "Received: what failover compares with agentdb:maximumLagOnFailover.",
        ),
        graph(
            "Timeline by node",
            [(f"max by (node) (patroni_postgres_timeline{PATRONI})", "{{node}}")],
            description="0 while a node's PostgreSQL is down.",
        ),
        graph(
            "etcd leader changes and failed proposals",
            [
                (f"sum(increase(etcd_server_leader_changes_seen_total{ETCD}[{RATE}]))", "leader changes"),
                (f"sum by (member) (rate(etcd_server_proposals_failed_total{ETCD}[{RATE}]))", "failed/s {{member}}"),
            ],
        ),
    ]
