"""The Docker program against an external PostgreSQL: every container but PostgreSQL's, pointed at the server."""

from __future__ import annotations

import json

import pytest
import yaml
from mockstack import CONTAINER, DYNAMIC, IMAGE, SECRET_SIG, deploy, visible

from infra import credentials, render
from infra.settings import Settings
from tests.pulumi.test_policies import SERVICES

HOST, PORT, ADMIN = "db.example.com", 25060, "doadmin"
PASSWORD = "admin-password-from-the-secret-config"
CONFIG = {
    "agentdb:postgresMode": "external",
    "agentdb:postgresHost": HOST,
    "agentdb:postgresPort": PORT,
    "agentdb:postgresAdminUser": ADMIN,
    "agentdb:postgresSslMode": "verify-full",
}


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    path = tmp_path_factory.mktemp("external") / "Pulumi.dev.yaml"
    path.write_text(yaml.safe_dump({"config": CONFIG}))
    return deploy("dev", stack_file=path, extra_config={"agentdb:postgresAdminPassword": PASSWORD})


def test_every_container_but_postgresql_and_its_backups(deployment):
    # One exporter, for the provider's server, and the scheduler for the cron jobs pg_cron may not run.
    assert sorted(deployment.containers()) == sorted([*SERVICES, "postgres-exporter", "scheduler"])


def test_no_image_or_volume_of_a_postgresql(deployment):
    images = [r.name for r in deployment.of_type(IMAGE)]
    volumes = [r.name for r in deployment.of_type("docker:index/volume:Volume")]
    assert images and not [name for name in images if "postgres" in name and "exporter" not in name]
    assert volumes and not [name for name in volumes if "postgres" in name]


@pytest.mark.parametrize("component", ["agentdb:index:Postgres", "agentdb:index:Backup", "agentdb:index:Cluster"])
def test_no_component_of_a_server_of_our_own(deployment, component):
    assert deployment.of_type(component) == []


def test_the_exporter_reads_the_external_server_with_its_sslmode(deployment):
    envs = deployment.containers()["postgres-exporter"].inputs["envs"]
    assert f"DATA_SOURCE_URI={HOST}:{PORT}/postgres?sslmode=verify-full" in envs
    assert "DATA_SOURCE_USER=agentdb_monitor" in envs


def test_the_schema_is_applied_as_the_admin_and_the_dsn_stays_secret(deployment):
    baseline = next(r for r in deployment.of_type(DYNAMIC) if r.name == "schema-baseline")
    dsn = baseline.inputs["admin_dsn"]
    assert dsn.startswith(f"postgresql://{ADMIN}:{PASSWORD}@{HOST}:{PORT}/postgres?sslmode=verify-full")
    assert SECRET_SIG in json.dumps(baseline.raw["admin_dsn"])
    # Only the scheduler holds it, in its 0600 pgpass, and as a secret.
    assert PASSWORD not in json.dumps([visible(r.raw) for r in deployment.of_type(CONTAINER)])


def test_pgbouncer_points_at_the_server_and_verifies_it():
    settings = Settings.model_validate({k.split(":")[1]: v for k, v in CONFIG.items()})
    secrets = {name: "x" for name in credentials.secret_names(settings)}
    ini = render.render(settings, secrets, render.Layout.docker(settings))["pgbouncer.ini"].content
    assert f"host={HOST} port={PORT} dbname=qlearning_db" in ini
    assert "server_tls_sslmode = verify-full" in ini and "server_tls_ca_file = " in ini


def test_without_the_admin_password_nothing_is_declared(tmp_path):
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text(yaml.safe_dump({"config": CONFIG}))
    with pytest.raises(Exception, match="agentdb:postgresAdminPassword: not set; `pulumi config set --secret"):
        deploy("dev", stack_file=path)
