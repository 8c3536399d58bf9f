"""Every service of the local runner listens on 127.0.0.1 only: nothing on 0.0.0.0, :: or another address."""

from __future__ import annotations

import psutil
import pytest

from tests.conftest import SERVICES

MONITORING = ["postgres_exporter", "pgbouncer_exporter", "redis_exporter", "prometheus", "alertmanager", "webhook"]


def _listening(pid: int) -> list[tuple[str, str, int]]:
    """(kind, address, port) of every listening TCP socket and bound UDP socket of a process tree."""
    root = psutil.Process(pid)
    out = []
    for proc in [root, *root.children(recursive=True)]:
        for conn in proc.net_connections(kind="inet"):
            if conn.type == 1 and conn.status == psutil.CONN_LISTEN:  # SOCK_STREAM
                out.append(("tcp", conn.laddr.ip, conn.laddr.port))
            elif conn.type == 2 and not conn.raddr:  # SOCK_DGRAM, not connected: a receiver
                out.append(("udp", conn.laddr.ip, conn.laddr.port))
    return out


def test_the_stack_binds_to_loopback(stack):
    assert stack.settings.bind_address == "127.0.0.1"


@pytest.mark.parametrize("service", SERVICES)
def test_service_listens_on_loopback_only(stack, service):
    pid = int(stack.local._ctl("pid", service).stdout.strip())
    sockets = _listening(pid)
    port = stack.local.topology.unit(service).port or None  # the unit's, whatever its setting is called
    if port is None:  # a service without a port (the backup scheduler) listens on nothing
        assert sockets == [], f"{service} listens on {sockets}"
        return
    assert ("tcp", "127.0.0.1", port) in sockets, sockets
    exposed = [s for s in sockets if s[1] != "127.0.0.1"]
    assert not exposed, f"{service} listens on {exposed}"


def test_the_monitoring_services_are_all_checked():
    assert set(MONITORING) <= set(SERVICES)
