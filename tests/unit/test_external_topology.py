"""An external server is a topology with no PostgreSQL node (agentdb:postgresMode external)."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra import credentials, render, topology
from infra.settings import Settings

EXTERNAL = {"postgres_mode": "external", "postgres_host": "db.example.com", "postgres_port": 25060}


@pytest.mark.parametrize(
    "kind",
    ["postgres", "patroni", "etcd", "haproxy", "pgbackrest_repo", "pgbackrest_db", "backup_scheduler", "backup_checks"],
)
def test_no_unit_of_a_server_of_our_own(kind):
    assert topology.build(Settings(**EXTERNAL)).of_kind(kind) == []


def test_everything_else_runs_and_points_at_the_server():
    topo = topology.build(Settings(**EXTERNAL))
    assert [u.name for u in topo.units] == [
        "pgbouncer",
        "redis",
        "postgres_exporter",
        "pgbouncer_exporter",
        "redis_exporter",
        "webhook",
        "alertmanager",
        "prometheus",
        "scheduler",
    ]
    assert topo.server == topology.ExternalServer("db.example.com", 25060, "require", "postgres")
    assert topo.primary_port == 25060 and not topo.clustered


def test_the_servers_port_is_not_a_local_one():
    # PostgreSQL listens on another host: PgBouncer may take the same port number here.
    Settings(**{**EXTERNAL, "pgbouncer_port": 25060})


@pytest.mark.parametrize("name", ["postgresql.conf", "pg_hba.conf", "pgbackrest.conf"])
def test_no_server_file_is_rendered(name):
    settings = Settings(**EXTERNAL)
    secrets = {n: "x" for n in credentials.secret_names(settings)}
    files = render.render(settings, secrets, render.Layout.local(Path("/srv/agentdb-test"), settings, 15))
    assert "pgbouncer.ini" in files and name not in files
