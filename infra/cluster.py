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
CATCH_UP_S = 10  # how long a switchover's candidate may take to replay the leader's checkpoint
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


def _await_writes(
    stack: LocalStack, target: Member, verb: str, start: float, timeout: float, progress: Progress
) -> float:
    """Wait until `target` serves writes through PgBouncer; the seconds since `start`, the change's own clock."""
    while not _writable_via_pgbouncer(stack, target.port):
        if time.monotonic() - start > timeout:
            raise ClusterError(f"{target.name} did not serve writes through PgBouncer within {timeout:.0f}s")
        time.sleep(0.1)
    took = time.monotonic() - start
    progress(f"{verb}: {target.name} serves writes through PgBouncer ({took:.1f}s)")
    return took


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
    target = _candidate(stack, to, current)
    body = {"candidate": target.name}
    start = time.monotonic()
    progress(f"{verb}: {current.name if current else '(no leader)'} -> {target.name}")
    status, text = _request(stack, verb, body, None, timeout)
    if status != 200:
        raise ClusterError(f"Patroni refused the {verb} (HTTP {status}): {text.strip()}")
    return target.name, _await_writes(stack, target, verb, start, timeout, progress)


def _checkpoint_ahead(stack: LocalStack, current: Member, target: Member, progress: Progress) -> None:
    """CHECKPOINT the leader, then the candidate once it has replayed that checkpoint (a restartpoint).

    Both happen while clients still write, before the pause: the checkpoint Patroni runs before it
    stops the leader, and the one the candidate runs when it is promoted, then have only a moment's
    dirty buffers left to flush instead of everything since the last checkpoint (seconds of fsync on
    this machine, during which no write could commit).
    """
    import psycopg

    start = time.monotonic()
    with psycopg.connect(stack.dsn(None, port=current.port), connect_timeout=5, autocommit=True) as conn:
        conn.execute("CHECKPOINT")
        lsn = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
    with psycopg.connect(stack.dsn(None, port=target.port), connect_timeout=5, autocommit=True) as conn:
        deadline = time.monotonic() + CATCH_UP_S
        while not conn.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,)).fetchone()[0]:
            if time.monotonic() > deadline:
                progress(f"switchover: {target.name} has not replayed the checkpoint yet; no restartpoint")
                return
            time.sleep(0.05)
        conn.execute("CHECKPOINT")  # on a standby: a restartpoint at the replayed checkpoint
    progress(
        f"switchover: checkpoint on {current.name} and restartpoint on {target.name} ({time.monotonic() - start:.1f}s)"
    )


def _routed_to(stack: LocalStack, node: str) -> bool:
    """True when `node` is Patroni's primary, HAProxy routes writes to it alone and its PostgreSQL is promoted."""
    import psycopg

    unit = stack.topology.unit(node)
    try:
        status, _ = _rest(stack, unit.port_of("rest"), "/primary", timeout=1)
        if status != 200:
            return False
        # "UP 1/2" (one failed check of `fall 2`) still takes connections: only DOWN and MAINT do not.
        routable = [
            b for b in backends(stack) if b.listener == "primary" and not b.status.startswith(("DOWN", "MAINT"))
        ]
        if [(b.node, b.status) for b in routable] != [(node, "UP")]:
            return False
        # Patroni answers 200 as soon as it has asked PostgreSQL to promote, before the promotion ends:
        # a session opened then would be read-only.
        with psycopg.connect(stack.dsn(None, port=unit.port_of("postgres")), connect_timeout=1) as conn:
            return conn.execute("SELECT NOT pg_is_in_recovery()").fetchone()[0]
    except (OSError, psycopg.Error):
        return False


def _request(stack: LocalStack, verb: str, body: dict, first: str | None, timeout: float) -> tuple[int, str]:
    """POST `/verb` to the node named `first`, else to the first node that answers."""
    nodes = sorted(stack.topology.nodes, key=lambda n: n.name != first)
    for node in nodes:
        try:
            return _rest(stack, node.port_of("rest"), f"/{verb}", body, timeout=timeout)
        except OSError:
            continue
    raise ClusterError(f"no Patroni node accepted /{verb}")


def switchover(
    stack: LocalStack, to: str | None = None, progress: Progress = print, timeout: float = 60
) -> tuple[str, float]:
    """A planned leader change; returns (new leader, seconds until it served writes through PgBouncer).

    Clients see a wait, not errors: PgBouncer's read-write pools are paused (PAUSE) from just before
    Patroni's `/switchover` until the new leader is primary and HAProxy routes to it, then
    reconnected and resumed; they are resumed on every error too.
    """
    from concurrent.futures import ThreadPoolExecutor

    from infra import pgbouncer_admin

    current = leader(stack)
    if current is None:
        raise ClusterError("no running leader to switch over from; use `agentdb failover`")
    target = _candidate(stack, to, current)
    start = time.monotonic()
    progress(f"switchover: {current.name} -> {target.name}")
    _checkpoint_ahead(stack, current, target, progress)
    pools = [db.name for db in stack.settings.enabled]
    body = {"leader": current.name, "candidate": target.name}
    with ThreadPoolExecutor(max_workers=1) as pool:
        try:
            with pgbouncer_admin.paused(stack, pools):
                paused_at = time.monotonic()
                # To the leader's own REST API: it wakes that node's loop, which demotes at once. Patroni
                # answers only when it sees the new leader, polling once a second: we watch ourselves.
                reply = pool.submit(_request, stack, "switchover", body, current.name, timeout)
                while not _routed_to(stack, target.name):
                    if reply.done() and reply.result()[0] != 200:
                        status, text = reply.result()
                        raise ClusterError(f"Patroni refused the switchover (HTTP {status}): {text.strip()}")
                    if time.monotonic() - paused_at > timeout:
                        raise ClusterError(f"{target.name} did not become the routed leader within {timeout:.0f}s")
                    time.sleep(0.05)
                held = time.monotonic() - paused_at
        except pgbouncer_admin.PauseError as exc:
            raise ClusterError(str(exc)) from None
        except ClusterError as exc:
            raise ClusterError(f"{exc} (PgBouncer's pools were resumed)") from None
    progress(f"switchover: writes waited in PgBouncer for {held:.1f}s")
    return target.name, _await_writes(stack, target, "switchover", start, timeout, progress)


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
