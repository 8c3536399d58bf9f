"""testinfra: what the running host really has, checked on the session stack (local backend)."""

from __future__ import annotations

import json
import time
import urllib.request

import psycopg
import pytest
import testinfra

from infra import render, repository, tuning
from infra.runner import REPO_HOST_KINDS, SERVICE_USER
from tests.conftest import LISTENING, SERVICES

SECRET_FILES = ["etc/userlist.txt", "etc/users.acl", "etc/pgpass", "etc/supervisord.conf"]


@pytest.fixture(scope="module")
def host():
    return testinfra.get_host("local://")


def _pid(stack, service: str) -> int:
    return int(stack.local._ctl("pid", service).stdout.strip())


@pytest.mark.parametrize("service", SERVICES)
def test_service_runs_as_the_unprivileged_user(host, stack, service):
    process = host.process.get(pid=_pid(stack, service))
    # The pgBackRest repository host's programs run as its own user (infra/repository.py).
    own = repository.REPO_USER if service in REPO_HOST_KINDS else SERVICE_USER
    expected = own if host.user().name == "root" else host.user().name
    assert process.user == expected


@pytest.mark.parametrize("service", LISTENING)
def test_service_listens_on_its_port(host, stack, service):
    port = stack.local.topology.unit(service).port
    assert host.socket(f"tcp://{stack.settings.bind_address}:{port}").is_listening


def test_secret_files_are_0600(host, stack):
    secrets = sorted((stack.state_dir / "secrets").iterdir())
    assert secrets
    for path in [*secrets, *(stack.state_dir / rel for rel in SECRET_FILES)]:
        f = host.file(str(path))
        assert f.exists, path
        assert f.mode == 0o600, f"{path} is {oct(f.mode)}"
    assert host.file(str(stack.state_dir / "secrets")).mode == 0o700


def _normal(value: str) -> str | int:
    value = value.strip().strip("'")
    try:
        return tuning.to_bytes(value)
    except ValueError:
        return value.lower()


def _expected_parameters():
    from infra.settings import Settings

    return list(render.postgres_parameters(Settings(), 15))


@pytest.mark.parametrize("name", _expected_parameters())
def test_running_server_has_the_tuned_value(host, stack, name):
    expected = render.postgres_parameters(stack.settings, stack.local.pg_major)[name]
    shown = host.run(f"{stack.local.pg_bindir}/psql -XqAt -c 'SHOW \"{name}\"' '{stack.dsn(None)}'")
    assert shown.rc == 0, shown.stderr
    assert _normal(shown.stdout) == _normal(expected)


@pytest.mark.parametrize("library", ["pg_cron", "pg_stat_statements"])
def test_preloaded_libraries_are_loaded(stack, library):
    assert library in stack.psql(None, "SHOW shared_preload_libraries")
    assert stack.psql(None, f"SELECT extname FROM pg_extension WHERE extname = '{library}'").strip() == library


def test_pgbouncer_show_pools_lists_each_database(host, stack):
    for db in stack.settings.enabled:
        with psycopg.connect(stack.dsn(db.key, "app", "pgbouncer")) as conn:
            conn.execute("SELECT 1")
    secrets = stack.local.secrets()
    from infra import credentials as sec

    url = (
        f"postgresql://{sec.PGBOUNCER_ADMIN}:{secrets[sec.PGBOUNCER_ADMIN]}@{stack.settings.bind_address}:"
        f"{stack.settings.pgbouncer_port}/pgbouncer"
    )
    out = host.run(f"{stack.local.pg_bindir}/psql -XqAt -c 'SHOW POOLS' '{url}'")
    assert out.rc == 0, out.stderr
    pools = {line.split("|")[0] for line in out.stdout.splitlines()}
    assert {db.name for db in stack.settings.enabled} <= pools


def test_redis_refuses_unauthenticated_commands(host, stack):
    out = host.run(f"redis-cli -h {stack.settings.bind_address} -p {stack.settings.redis_port} PING")
    assert "NOAUTH" in out.stdout + out.stderr


def test_prometheus_reports_every_scrape_target_up(stack):
    url = f"http://{stack.settings.bind_address}:{stack.settings.prometheus_port}/api/v1/targets"
    deadline = time.monotonic() + 60
    while True:
        with urllib.request.urlopen(url, timeout=5) as resp:
            targets = json.load(resp)["data"]["activeTargets"]
        health = {t["labels"]["job"]: t["health"] for t in targets}
        if health and all(h == "up" for h in health.values()) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert set(health) == {"prometheus", "postgres", "pgbouncer", "redis", "alertmanager", "backup"}
    assert all(h == "up" for h in health.values()), health
