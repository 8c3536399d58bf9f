"""pgAdmin's rendered files, login and storage directory (the live checks are in tests/tools/)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from infra import credentials as sec
from infra import pgadmin, render, tools
from infra.pgadmin_launcher import storage_name
from infra.settings import Settings

STATE = Path("/srv/agentdb-test")


def _files(settings: Settings, layout: render.Layout) -> dict[str, render.RenderedFile]:
    secrets = {name: f"password-of-{name}" for name in sec.secret_names(settings)}
    return render.render(settings, secrets, layout)


@pytest.mark.parametrize(("tools_on", "expected"), [(False, set()), (True, {sec.PGADMIN_LOGIN, sec.PGADMIN_PASSWORD})])
def test_pgadmin_secrets_exist_only_with_the_tools(tools_on, expected):
    names = set(sec.secret_names(Settings(tools=tools_on)))
    assert names & {sec.PGADMIN_LOGIN, sec.PGADMIN_PASSWORD} == expected


@pytest.mark.parametrize("tools_on", [False, True])
def test_pgadmin_files_are_rendered_only_with_the_tools(tools_on):
    files = _files(Settings(tools=tools_on), render.Layout.local(STATE, Settings(tools=tools_on), 15))
    assert (
        {pgadmin.CONFIG, pgadmin.SERVERS, pgadmin.PGPASS} <= set(files)
        if tools_on
        else not any(name.startswith("pgadmin/") for name in files)
    )


def test_generated_login_is_an_email_address_and_differs_per_stack(tmp_path):
    settings = Settings(tools=True)
    first = sec.ensure(tmp_path / "a", settings)[sec.PGADMIN_LOGIN]
    second = sec.ensure(tmp_path / "b", settings)[sec.PGADMIN_LOGIN]
    assert re.fullmatch(r"admin-[0-9a-f]{8}@agentdb\.example\.com", first) and first != second


@pytest.mark.parametrize("realization", ["local", "docker"])
def test_servers_json_goes_through_pgbouncer_as_each_readonly_role(realization):
    settings = Settings(tools=True, pgbouncer_port=6543, tls=realization == "docker")
    layout = render.Layout.local(STATE, settings, 15) if realization == "local" else render.Layout.docker(settings)
    files = _files(settings, layout)
    servers = list(json.loads(files[pgadmin.SERVERS].content)["Servers"].values())
    assert [(s["Name"], s["Username"], s["Host"], s["Port"]) for s in servers] == [
        (db.name, db.readonly_role, layout.pgbouncer_host, 6543) for db in settings.enabled
    ]
    assert {s["PassFile"] for s in servers} == {"/pgpass"} and {s["Group"] for s in servers} == {"agentdb"}
    assert {s["SSLMode"] for s in servers} == {"require" if settings.tls else "prefer"}
    pgpass = files[pgadmin.PGPASS]
    assert pgpass.mode == 0o600
    assert pgpass.content.splitlines() == [
        f"{layout.pgbouncer_host}:6543:{db.name}:{db.readonly_role}:password-of-{db.readonly_role}"
        for db in settings.enabled
    ]


def test_config_puts_pgadmin_data_beside_the_other_services_data():
    settings = Settings(tools=True)
    files = _files(settings, render.Layout.local(STATE, settings, 15))
    config = files[pgadmin.CONFIG].content
    assert f"DATA_DIR = '{STATE}/data/pgadmin'" in config and "SERVER_MODE = True" in config


@pytest.mark.parametrize(
    ("login", "directory"),
    [("admin-1a2b@agentdb.example.com", "admin-1a2b_agentdb.example.com"), ("1x@y.z", "pga_user_1x_y.z")],
)
def test_storage_directory_is_named_as_pgadmin_names_it(login, directory):
    assert storage_name(login) == directory


def test_pgadmin_pins_come_from_pyproject():
    assert tools.pgadmin_requirements() == ["pgadmin4==9.18", "gunicorn==27.0.1"]
    assert tools.pgadmin_venv().name == "pgadmin-pgadmin4-9.18-gunicorn-27.0.1"
