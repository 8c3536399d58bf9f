"""An external stack on a server agentdb does not run, with an admin that is not a superuser (issue 16)."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import psycopg
import pytest

from infra import external
from infra.databases import DATABASES
from tests.conftest import EXTERNAL_SERVICES
from tests.external.conftest import ADMIN, BARE_DATABASES, BARE_DOWNGRADES
from tests.security.test_privileges import READONLY_WRITES, _catalog, _refused

# What runs beside an external server: everything but PostgreSQL and the backups of our own.
RUNNING = set(EXTERNAL_SERVICES)


def test_everything_but_postgresql_and_the_backups_runs(ext_stack):
    states = ext_stack.local.process_states()
    assert states == dict.fromkeys(RUNNING, "RUNNING")
    assert "taken by the provider" in ext_stack.up_output


def test_the_admin_is_not_a_superuser(ext_stack, server):
    rows = server.execute(f"SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = '{ADMIN}'")
    assert rows == [(False, True, True)]


@pytest.mark.parametrize("name", BARE_DOWNGRADES)
def test_up_says_each_downgrade_once(ext_stack, name):
    assert ext_stack.up_output.count(external.DOWNGRADES[name]) == 1, ext_stack.up_output


@pytest.mark.parametrize("key", BARE_DATABASES)
def test_the_baseline_made_the_roles_and_the_database(ext_stack, server, key):
    db = DATABASES[key]
    owner = server.execute(f"SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '{db.name}'")
    assert owner == [(db.owner,)]
    attributes = server.execute(
        "SELECT rolname, rolsuper, rolcreaterole, rolcreatedb, rolreplication FROM pg_roles"
        f" WHERE rolname IN ('{db.owner}', '{db.app_role}', '{db.readonly_role}') ORDER BY rolname"
    )
    assert [row[1:] for row in attributes] == [(False, False, False, False)] * 3
    assert server.execute(f"SELECT rolconfig FROM pg_roles WHERE rolname = '{db.readonly_role}'") == [
        (["default_transaction_read_only=on"],)
    ]


@pytest.mark.parametrize("key", BARE_DATABASES)
def test_the_history_goes_down_and_up_again(ext_stack, key):
    head = ext_stack.psql(key, "SELECT version_num FROM alembic_version").strip()
    ext_stack.cli("migrate", "--db", key, "--down", "base")
    assert ext_stack.psql(key, "SELECT count(*) FROM alembic_version").strip() == "0"
    ext_stack.cli("migrate", "--db", key)
    assert ext_stack.psql(key, "SELECT version_num FROM alembic_version").strip() == head


@pytest.mark.parametrize("statement", READONLY_WRITES.values(), ids=READONLY_WRITES.keys())
@pytest.mark.parametrize("key", BARE_DATABASES)
def test_the_readonly_role_cannot_write(ext_stack, key, statement):
    _refused(ext_stack, key, "readonly", statement)


@pytest.mark.parametrize("key", BARE_DATABASES)
def test_the_app_and_readonly_roles_create_nowhere(ext_stack, key):
    db = DATABASES[key]
    for role in (db.app_role, db.readonly_role):
        may = f"SELECT nspname FROM pg_namespace WHERE has_schema_privilege('{role}', oid, 'CREATE')"
        assert _catalog(ext_stack, key, may) == []


@pytest.mark.parametrize("role", ["app", "readonly"])
@pytest.mark.parametrize("key", BARE_DATABASES)
def test_clients_reach_the_server_through_pgbouncer_over_tls(ext_stack, server, key, role):
    with psycopg.connect(ext_stack.dsn(key, role, "pgbouncer")) as conn:
        assert conn.execute("SELECT current_user").fetchone()[0] == getattr(DATABASES[key], f"{role}_role")
    # PgBouncer's server connections to the provider's server are encrypted (postgresSslMode require).
    rows = server.execute(
        "SELECT bool_and(s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)"
        f" WHERE a.usename = '{getattr(DATABASES[key], f'{role}_role')}'"
    )
    assert rows == [(True,)]


def _metric(text: str, name: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(name)]


def test_postgres_exporter_scrapes_the_server_as_the_monitoring_role(ext_stack):
    s = ext_stack.settings
    with urllib.request.urlopen(f"http://{s.bind_address}:{s.postgres_exporter_port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    assert _metric(text, "pg_up ") == ["pg_up 1"]
    assert any(f'datname="{DATABASES[BARE_DATABASES[0]].name}"' in line for line in _metric(text, "pg_database_"))


def test_prometheus_scrapes_every_exporter(ext_stack):
    s = ext_stack.settings
    url = f"http://{s.bind_address}:{s.prometheus_port}/api/v1/query?query=up"
    import time

    deadline = time.monotonic() + 30
    while True:
        with urllib.request.urlopen(url, timeout=10) as resp:
            result = json.load(resp)["data"]["result"]
        up = {r["metric"]["job"]: r["value"][1] for r in result}
        if (up and set(up.values()) == {"1"}) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert up.get("postgres") == "1" and set(up.values()) == {"1"}, up


@pytest.mark.parametrize("verb", [["backup"], ["restore", "--to", "2026-01-01T00:00:00Z"]])
def test_backups_are_the_providers(ext_stack, verb):
    result = ext_stack.cli(*verb, check=False)
    assert result.returncode != 0
    assert "the provider takes the backups" in result.stderr


def test_no_service_holds_the_admin_password(ext_stack, server):
    pids = [int(p) for p in ext_stack.local._ctl("pid", "all").stdout.split() if p.isdigit()]
    assert len(pids) == len(RUNNING)
    supervisord = int((ext_stack.state_dir / "run" / "supervisord.pid").read_text())
    for pid in [supervisord, *pids]:
        for part in ("environ", "cmdline"):
            assert server.admin_password.encode() not in Path(f"/proc/{pid}/{part}").read_bytes(), (pid, part)


def test_a_second_up_changes_nothing_and_says_the_downgrades_again(ext_stack, server):
    roles = server.execute("SELECT rolname, rolpassword FROM pg_authid ORDER BY 1")
    output = ext_stack.cli("up").stdout
    assert "migrated" not in output
    for name in BARE_DOWNGRADES:
        assert output.count(external.DOWNGRADES[name]) == 1
    assert server.execute("SELECT rolname, rolpassword FROM pg_authid ORDER BY 1") == roles
