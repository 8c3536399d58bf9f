"""What stops `up` against an external server: one line naming the setting and the fix, nothing applied."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from infra import external
from infra.settings import SettingsError, load
from loadtests.stack import free_ports
from tests.conftest import AGENTDB, REPO, write_stack_file
from tests.external.conftest import ADMIN, stack_config

LIMITED = "agentdb_limited"  # an admin with CREATEDB but without CREATEROLE


def _footprint(server) -> list[tuple]:
    """Every role and database of the server: what a half-applied `up` would leave behind."""
    return server.execute(
        "SELECT 'role', rolname FROM pg_roles UNION ALL SELECT 'database', datname FROM pg_database ORDER BY 1, 2"
    )


def _up(config: dict, password: str, directory: Path) -> tuple[subprocess.CompletedProcess, Path]:
    stack_file = write_stack_file(directory, "bad", config)
    env = {**os.environ, external.PASSWORD_ENV: password}
    args = ["up", "--stack", "bad", "--stack-file", str(stack_file), "--state-dir", str(directory / "state")]
    result = subprocess.run([*AGENTDB, *args], capture_output=True, text=True, cwd=REPO, env=env, timeout=120)
    return result, directory / "state"


@pytest.fixture(scope="module")
def limited_admin(server):
    password = "limited-" + server.admin_password
    server.execute(f"CREATE ROLE {LIMITED} LOGIN CREATEDB PASSWORD '{password}'")
    yield password
    server.execute(f"DROP ROLE {LIMITED}")


@pytest.mark.parametrize(
    ("case", "setting", "fix"),
    [
        ("unreachable host", "agentdb:postgresHost", "check agentdb:postgresHost and agentdb:postgresPort"),
        ("wrong password", "agentdb:postgresAdminPassword", "set the right one"),
        ("admin without CREATEROLE", "agentdb:postgresAdminUser", "lacks CREATEROLE"),
    ],
)
def test_up_stops_with_one_line_and_nothing_applied(server, limited_admin, case, setting, fix, tmp_path):
    config, password = stack_config(server), server.admin_password
    if case == "unreachable host":
        config["agentdb:postgresPort"] = free_ports(1)[0]  # nothing listens there
    elif case == "wrong password":
        password = "not-" + password
    else:
        config["agentdb:postgresAdminUser"], password = LIMITED, limited_admin
    before = _footprint(server)
    result, state = _up(config, password, tmp_path)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stdout + result.stderr
    assert len(lines) == 1 and lines[0].startswith(f"error: {setting}: ") and fix in lines[0], result.stderr
    assert password not in result.stdout + result.stderr
    # Nothing started, nothing made: no state directory, no role or database on the server.
    assert not state.exists()
    assert _footprint(server) == before


def test_a_missing_password_names_the_environment_variable(server, tmp_path):
    result, state = _up(stack_config(server), "", tmp_path)
    assert result.returncode == 2
    assert f"agentdb:postgresAdminPassword: not set; export {external.PASSWORD_ENV}" in result.stderr
    assert not state.exists()


def _server_version(server) -> int:
    return int(server.execute("SELECT current_setting('server_version_num')")[0][0])


@pytest.mark.parametrize("offset", [0, -1, 1], ids=["this version", "older minimum", "newer minimum"])
def test_the_version_check_reads_the_real_server(server, tmp_path, offset):
    path = write_stack_file(tmp_path, "version", stack_config(server))
    settings = load("version", path=path)
    minimum = _server_version(server) + offset
    if offset <= 0:
        external.preflight(settings, server.admin_password, minimum=minimum)
        return
    with pytest.raises(external.ExternalError) as caught:
        external.preflight(settings, server.admin_password, minimum=minimum)
    assert str(caught.value).startswith("agentdb:postgresHost: the server at ")
    assert "runs PostgreSQL 15." in str(caught.value) and "or later" in str(caught.value)


def test_postgresql_14_is_the_minimum(server, tmp_path):
    path = write_stack_file(tmp_path, "v", stack_config(server))
    settings = load("v", path=path)
    with pytest.raises(external.ExternalError, match="runs PostgreSQL 13.11; agentdb needs 14 or later"):
        external.check_version(settings, 130011)


def test_a_password_in_clear_in_the_stack_file_is_refused(tmp_path):
    path = write_stack_file(tmp_path, "clear", {"agentdb:postgresAdminPassword": "hunter2"})
    with pytest.raises(SettingsError) as caught:
        load("clear", path=path)
    assert "agentdb:postgresAdminPassword: never in clear in a stack file" in str(caught.value)
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("agentdb:postgresMode", "managed", "agentdb:postgresMode: Input should be 'local' or 'external'"),
        ("agentdb:postgresSslMode", "on", "agentdb:postgresSslMode: Input should be"),
        ("agentdb:postgresHost", "db host; drop", "agentdb:postgresHost: 'db host; drop' is not a host name"),
        ("agentdb:postgresAdminUser", "1admin", "agentdb:postgresAdminUser: '1admin' is not a PostgreSQL role"),
        ("agentdb:replicas", 2, "agentdb: replicas (2) must be 0 with postgresMode external"),
    ],
)
def test_bad_external_settings_name_the_key(server, tmp_path, key, value, message):
    path = write_stack_file(tmp_path, "x", {**stack_config(server), key: value})
    with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load("x", path=path)


def test_the_admin_of_the_running_stack_is_the_configured_one(ext_stack):
    assert ext_stack.psql(None, "SELECT current_user").strip() == ADMIN
