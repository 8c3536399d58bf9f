"""testinfra: the pgBackRest repository host on the session stack keeps to itself (infra/repository.py)."""

from __future__ import annotations

import pytest
import testinfra

from infra import repository
from infra.runner import SERVICE_USER


@pytest.fixture(scope="module")
def host():
    return testinfra.get_host("local://")


@pytest.mark.parametrize(
    ("relative", "mode"),
    [("pgbackrest.conf", 0o600), ("tls/ca.crt", 0o600), ("tls/repo.crt", 0o600), ("tls/repo.key", 0o600)],
)
def test_the_repository_hosts_files_are_its_own(host, stack, relative, mode):
    f = host.file(str(repository.home(stack.local) / relative))
    assert (f.user, f.mode) == (repository.REPO_USER, mode)


@pytest.mark.parametrize("name", ["pgbackrest-ca.crt", "pgbackrest-db.crt", "pgbackrest-db.key"])
def test_the_database_sides_certificate_is_postgres_users(host, stack, name):
    f = host.file(str(stack.state_dir / "secrets" / name))
    assert (f.user, f.mode) == (SERVICE_USER, 0o600)


@pytest.mark.parametrize("path", ["repo", "repo-host", "repo-host/pgbackrest.conf", "repo-host/tls/repo.key"])
def test_the_database_side_cannot_read_the_repository_or_its_key(host, stack, path):
    target = stack.state_dir / path
    assert target.exists()
    read = host.run(f"runuser -u {SERVICE_USER} -- cat {target} || runuser -u {SERVICE_USER} -- ls {target}")
    assert read.rc != 0 and "Permission denied" in read.stderr


@pytest.mark.parametrize("command", ["check", "repo-ls", "info"])
def test_pgbackrest_from_the_database_side_reaches_the_repository(host, stack, command):
    """What monitoring and operators run: the database side's rendered configuration, over TLS."""
    config = stack.state_dir / "etc" / "pgbackrest.conf"
    pgpass = stack.state_dir / "secrets" / "pgbackrest.pgpass"  # check connects to PostgreSQL, as infra.backup does
    result = host.run(
        f"cd / && runuser -u {SERVICE_USER} -- env PGPASSFILE={pgpass} pgbackrest --config={config} --stanza=agentdb"
        f" {command} --log-level-console=warn"
    )
    assert result.rc == 0, result.stdout + result.stderr
