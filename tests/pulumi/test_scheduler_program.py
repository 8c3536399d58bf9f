"""The Docker program runs our cron-job scheduler against an external server, from the python image."""

from __future__ import annotations

import json

import pytest
import yaml
from mockstack import deploy

from tests.pulumi.test_external_program import ADMIN, CONFIG, HOST, PASSWORD


@pytest.fixture(scope="module")
def external(tmp_path_factory):
    path = tmp_path_factory.mktemp("external") / "Pulumi.dev.yaml"
    path.write_text(yaml.safe_dump({"config": CONFIG}))
    return deploy("dev", stack_file=path, extra_config={"agentdb:postgresAdminPassword": PASSWORD})


def test_no_scheduler_container_on_a_local_postgres(deployments):
    assert "scheduler" not in deployments["dev"].containers()


def test_the_scheduler_container_runs_infra_scheduler_with_a_heartbeat_health_check(external):
    container = external.containers()["scheduler"].inputs
    assert container["command"][:3] == ["python3", "-m", "infra.scheduler"]
    assert (
        container["healthcheck"]["tests"][0] == "CMD-SHELL"
        and "scheduler.alive" in container["healthcheck"]["tests"][1]
    )
    assert container["restart"] == "unless-stopped"


def test_its_jobs_file_has_every_databases_jobs_and_the_password_only_its_0600_pgpass(external):
    uploads = {u["file"].rsplit("/", 1)[-1]: u for u in external.containers()["scheduler"].inputs["uploads"]}
    # The provider's admin, with the password from the secret config: in the 0600 pgpass alone.
    password = PASSWORD
    config = json.loads(uploads["scheduler.json"]["content"])
    assert password not in uploads["scheduler.json"]["content"]
    assert [d["key"] for d in config["databases"]] == external.settings.databases
    assert uploads["scheduler.json"]["permissions"] == "0644"
    assert uploads["scheduler.pgpass"]["permissions"] == "0600"
    assert uploads["scheduler.pgpass"]["content"].endswith(f":{ADMIN}:{password}\n")
    assert HOST in uploads["scheduler.pgpass"]["content"]


def test_it_starts_after_the_schema_resources(external):
    # Migrations and cron sync first, so it finds pg_cron as they left it (as the runner: after the baseline).
    deps = external.containers()["scheduler"].dependencies
    for key in external.settings.databases:
        assert any(dep.endswith(f"::schema-{key}-cron") for dep in deps), deps
