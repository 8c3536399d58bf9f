"""The running cluster as its engines report it: Patroni's REST API, etcd's health and HAProxy's stats.

`up` waits here for a leader, streaming replicas and HAProxy's backends; `agentdb status`,
`switchover` and `failover` read and act through the same calls (Patroni's `/cluster`,
`/switchover` and `/failover`, as patronictl's verbs of the same names do).
"""

from __future__ import annotations

import base64
import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from infra import credentials as sec

if TYPE_CHECKING:
    from infra.runner import LocalStack

READY_TIMEOUT_S = 120
Progress = Callable[[str], None]


class ClusterError(RuntimeError):
    """The cluster is not in the state asked for: the message says what it is in."""


@dataclass(frozen=True)
class Member:
    """One node as Patroni's /cluster reports it."""

    name: str
    role: str  # leader, sync_standby, replica
    state: str  # running, streaming, starting, stopped, ...
    timeline: int | None
    lag: int | None  # bytes behind the leader; None for the leader or when unknown
    port: int


@dataclass(frozen=True)
class Backend:
    """One HAProxy server line: which listener, which node, UP or DOWN."""

    listener: str
    node: str
    status: str


def _rest(stack: LocalStack, port: int, path: str, body: dict | None = None, timeout: float = 5) -> tuple[int, str]:
    """Call one node's Patroni REST API; POSTs carry the REST user's credentials."""
    url = f"http://{stack.settings.bind_address}:{port}{path}"
    request = urllib.request.Request(url, method="POST" if body is not None else "GET")
    if body is not None:
        request.data = json.dumps(body).encode()
        request.add_header("Content-Type", "application/json")
        password = stack.secrets()[sec.PATRONI_REST_USER]
        token = base64.b64encode(f"{sec.PATRONI_REST_USER}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def members(stack: LocalStack) -> list[Member]:
    """Every node with its role, state, timeline and lag, from the first node that answers `/cluster`."""
    last: Exception | None = None
    for node in stack.topology.nodes:
        try:
            status, text = _rest(stack, node.port_of("rest"), "/cluster", timeout=2)
        except OSError as exc:
            last = exc
            continue
        if status != 200:
            continue
        out = []
        for m in json.loads(text).get("members", []):
            lag = m.get("lag")
            out.append(
                Member(
                    name=m["name"],
                    role=m.get("role", "?"),
                    state=m.get("state", "?"),
                    timeline=m.get("timeline"),
                    lag=lag if isinstance(lag, int) else None,
                    port=int(m.get("port", 0)),
                )
            )
        return sorted(out, key=lambda m: m.name)
    raise ClusterError(f"no Patroni node answers /cluster ({last})")


def leader(stack: LocalStack) -> Member | None:
    """The running leader, or None while there is none."""
    return next((m for m in members(stack) if m.role == "leader" and m.state == "running"), None)


def etcd_health(stack: LocalStack) -> dict[str, str]:
    """etcd member -> healthy / unhealthy / down, from each member's own /health."""
    out = {}
    for member in stack.topology.members:
        url = f"http://{stack.settings.bind_address}:{member.port_of('client')}/health"
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                healthy = json.loads(resp.read()).get("health") == "true"
            out[member.name] = "healthy" if healthy else "unhealthy"
        except urllib.error.HTTPError:
            out[member.name] = "unhealthy"
        except OSError:
            out[member.name] = "down"
    return out


def backends(stack: LocalStack) -> list[Backend]:
    """HAProxy's server lines (listener primary or replicas), from its stats socket."""
    path = stack.run_dir / "haproxy.sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(2)
        sock.connect(str(path))
        sock.sendall(b"show stat\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    lines = b"".join(chunks).decode().splitlines()
    header = lines[0].lstrip("# ").split(",")
    col = {name: i for i, name in enumerate(header)}
    out = []
    for line in lines[1:]:
        fields = line.split(",")
        if len(fields) < len(header) or fields[col["svname"]] in {"FRONTEND", "BACKEND"}:
            continue
        out.append(Backend(fields[col["pxname"]], fields[col["svname"]], fields[col["status"]]))
    return out


def problems(stack: LocalStack) -> list[str]:
    """What keeps the cluster from being whole: no leader, replicas not streaming, backends down."""
    expected = stack.settings.replicas
    try:
        nodes = members(stack)
    except ClusterError as exc:
        return [str(exc)]
    found = []
    leaders = [m for m in nodes if m.role == "leader" and m.state == "running"]
    if len(leaders) != 1:
        found.append(f"{len(leaders)} running leaders")
    streaming = [m for m in nodes if m.role != "leader" and m.state == "streaming"]
    if len(streaming) < expected:
        found.append(f"{len(streaming)} of {expected} replicas streaming")
    if stack.settings.synchronous_mode and not any(m.role == "sync_standby" for m in nodes):
        found.append("no synchronous standby")
    try:
        lines = backends(stack)
    except OSError as exc:
        return [*found, f"HAProxy stats unavailable ({exc})"]
    up_primary = [b for b in lines if b.listener == "primary" and b.status == "UP"]
    up_replicas = [b for b in lines if b.listener == "replicas" and b.status == "UP"]
    if [b.node for b in up_primary] != [m.name for m in leaders]:
        found.append(f"HAProxy's read-write backends up: {[b.node for b in up_primary]}")
    if len(up_replicas) < expected:
        found.append(f"{len(up_replicas)} of {expected} HAProxy read-only backends up")
    return found


def wait_ready(stack: LocalStack, progress: Progress = print, timeout: float = READY_TIMEOUT_S) -> float:
    """Wait for one leader, every replica streaming and HAProxy routing to them; return the seconds taken."""
    start = time.monotonic()
    found: list[str] = []
    while time.monotonic() - start < timeout:
        found = problems(stack)
        if not found:
            took = time.monotonic() - start
            progress(f"  {'cluster':<20} ready: a leader, {stack.settings.replicas} replicas streaming ({took:.1f}s)")
            return took
        time.sleep(0.5)
    raise ClusterError(f"the cluster did not become ready within {timeout:.0f}s: {'; '.join(found)}")


def _writable_via_pgbouncer(stack: LocalStack, port: int) -> bool:
    """True when a write through PgBouncer's app pool lands on the node listening on `port`."""
    import psycopg

    db = stack.settings.enabled[0]
    try:
        with psycopg.connect(stack.dsn(db, "app", "pgbouncer"), connect_timeout=2, autocommit=True) as conn:
            # txid_current() assigns a transaction id: only a primary can.
            row = conn.execute("SELECT inet_server_port(), pg_is_in_recovery(), txid_current()").fetchone()
    except psycopg.Error:
        return False
    return row is not None and row[0] == port and row[1] is False


def _candidate(stack: LocalStack, to: str | None, current: Member | None) -> Member:
    nodes = members(stack)
    names = [m.name for m in nodes]
    if to is not None:
        match = next((m for m in nodes if m.name == to), None)
        if match is None:
            raise ClusterError(f"--to: no node {to!r}; nodes: {', '.join(names)}")
        if current is not None and match.name == current.name:
            raise ClusterError(f"--to: {to} is already the leader")
        return match
    replicas = [m for m in nodes if m.role != "leader" and m.state in {"streaming", "running"}]
    if not replicas:
        raise ClusterError("no running replica to take over")
    # Like Patroni's own choice: the synchronous standby first, then the least lag.
    return min(replicas, key=lambda m: (m.role != "sync_standby", m.lag if m.lag is not None else 1 << 62))


def _change(stack: LocalStack, verb: str, to: str | None, progress: Progress, timeout: float) -> tuple[str, float]:
    current = leader(stack)
    if verb == "switchover" and current is None:
        raise ClusterError("no running leader to switch over from; use `agentdb failover`")
    target = _candidate(stack, to, current)
    body = {"candidate": target.name}
    if verb == "switchover":
        body["leader"] = current.name
    start = time.monotonic()
    progress(f"{verb}: {current.name if current else '(no leader)'} -> {target.name}")
    for node in stack.topology.nodes:
        try:
            status, text = _rest(stack, node.port_of("rest"), f"/{verb}", body, timeout=timeout)
        except OSError:
            continue
        break
    else:
        raise ClusterError(f"no Patroni node accepted /{verb}")
    if status != 200:
        raise ClusterError(f"Patroni refused the {verb} (HTTP {status}): {text.strip()}")
    while not _writable_via_pgbouncer(stack, target.port):
        if time.monotonic() - start > timeout:
            raise ClusterError(f"{target.name} did not serve writes through PgBouncer within {timeout:.0f}s")
        time.sleep(0.1)
    took = time.monotonic() - start
    progress(f"{verb}: {target.name} serves writes through PgBouncer ({took:.1f}s)")
    return target.name, took


def switchover(
    stack: LocalStack, to: str | None = None, progress: Progress = print, timeout: float = 60
) -> tuple[str, float]:
    """A planned leader change; returns (new leader, seconds until it served writes through PgBouncer)."""
    return _change(stack, "switchover", to, progress, timeout)


def failover(
    stack: LocalStack, to: str | None = None, progress: Progress = print, timeout: float = 60
) -> tuple[str, float]:
    """A forced leader change, also without a healthy leader; returns like switchover()."""
    return _change(stack, "failover", to, progress, timeout)


def format_cluster(stack: LocalStack) -> str:
    """The nodes (role, state, timeline, lag), then the etcd members and HAProxy's backends."""

    def table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
        cells = [header, *rows]
        widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
        return "\n".join("  ".join(c.ljust(widths[i]) for i, c in enumerate(r)).rstrip() for r in cells)

    try:
        nodes = [
            (m.name, m.role, m.state, str(m.timeline or "-"), "-" if m.lag is None else str(m.lag))
            for m in members(stack)
        ]
    except ClusterError as exc:
        nodes = [("?", str(exc), "", "", "")]
    out = [table(("NODE", "ROLE", "STATE", "TIMELINE", "LAG_BYTES"), nodes)]
    out.append(table(("ETCD", "HEALTH"), sorted(etcd_health(stack).items())))
    try:
        lines = [(b.listener, b.node, b.status) for b in backends(stack)]
    except OSError as exc:
        lines = [("?", f"stats unavailable: {exc}", "")]
    out.append(table(("HAPROXY", "BACKEND", "STATUS"), lines))
    return "\n\n".join(out)
