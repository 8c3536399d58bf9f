"""Policies of the Pulumi program, one per test, checked on what each stack file makes it declare.

The program (infra/__main__.py) runs under pulumi.runtime.set_mocks: nothing is created, every
resource's inputs and dependencies are recorded (tests/pulumi/mockstack.py).
"""

from __future__ import annotations

import json

import pulumi
import pytest
from mockstack import IMAGE, REPO, STACKS, config_of, deploy, visible

from infra import migrations, render, tools
from infra import topology as topo
from infra.program import PUBLISHABLE, check_publishing, settings_from_config
from infra.program.common import POSTGRES_MAJOR, REPO_UID, SERVICE_UID, limits
from infra.settings import Settings, SettingsError, load, stack_file

# The services the issue names, each one container, beside the database's own: the single PostgreSQL
# or the cluster's etcd members, Patroni nodes and HAProxy, with pgBackRest's repository host, the database
# side's pgBackRest server, the backup schedule and the backup checks, and a postgres_exporter per PostgreSQL.
SERVICES = [
    "pgbouncer",
    "redis",
    "pgbouncer-exporter",
    "redis-exporter",
    "webhook",
    "alertmanager",
    "prometheus",
    "grafana",
]
BACKUP = ["pgbackrest-repo", "pgbackrest-db", "backup-scheduler", "backup-checks"]
REPO_SIDE = {"pgbackrest-repo", "backup-scheduler"}
TOOLS = ["pgadmin"]  # agentdb:tools: on in dev, off in staging and prod


def tool_services(stack: str) -> list[str]:
    """The tools containers a stack file asks for."""
    return TOOLS if load(stack).tools else []


# Published by default, and published only where the stack says so (never in prod).
ALWAYS_PUBLISHED = {"pgbouncer", "grafana", "pgadmin"}
PUBLISHED_BY_SETTING = {
    "postgres": "publish_postgres",
    "haproxy": "publish_postgres",  # a cluster's PostgreSQL endpoints
    "redis": "publish_redis",
    "prometheus": "publish_prometheus",
}


def settings_of(stack: str) -> Settings:
    return load(stack)


def database_services(stack: str) -> list[str]:
    """The containers of the database tier: read from the topology, as the program maps it."""
    topology = topo.build(settings_of(stack))
    if topology.clustered:
        return [u.name for u in (*topology.members, *topology.nodes, topology.unit("haproxy"))] + BACKUP
    return ["postgres", *BACKUP]


def exporters(stack: str) -> dict[str, str]:
    """Each postgres_exporter container -> the PostgreSQL container it reads (one per cluster node)."""
    topology = topo.build(settings_of(stack))
    layout = render.Layout.docker(settings_of(stack), POSTGRES_MAJOR)
    return {layout.host_of(u.name): u.target for u in topology.of_kind("postgres_exporter")}


def primary(stack: str) -> str:
    """The container writes go through: HAProxy's read-write port on a cluster."""
    return "haproxy" if topo.build(settings_of(stack)).clustered else "postgres"


def limit_key(stack: str, service: str) -> str:
    if service in exporters(stack):
        return "postgres-exporter"
    kinds = {u.name: u.kind for u in topo.build(settings_of(stack)).units}
    return {"patroni": "postgres", "etcd": "etcd", "haproxy": "haproxy"}.get(kinds.get(service, ""), service)


def all_services(stack: str) -> list[str]:
    return [*database_services(stack), *exporters(stack), *SERVICES, *tool_services(stack)]


CASES = [(stack, service) for stack in STACKS for service in all_services(stack)]
# Leader -> PgBouncer -> exporters: (container, containers it must start after); "primary" is the leader's.
ORDER = [
    ("pgbouncer", ["primary"]),
    ("pgbouncer-exporter", ["primary", "pgbouncer"]),
    ("redis-exporter", ["redis"]),
    ("prometheus", ["pgbouncer-exporter", "redis-exporter", "alertmanager"]),
    ("pgbackrest-db", ["primary", "pgbackrest-repo"]),
    ("backup-scheduler", ["primary", "pgbackrest-repo", "pgbackrest-db"]),
    ("backup-checks", ["primary", "pgbackrest-repo"]),
]


def order(stack: str) -> list[tuple[str, list[str]]]:
    """ORDER, with each postgres_exporter after its own PostgreSQL and before Prometheus, and the cluster's
    own: nodes after etcd, HAProxy after nodes."""
    topology = topo.build(settings_of(stack))
    own = [(exporter, [server]) for exporter, server in exporters(stack).items()]
    own.append(("prometheus", list(exporters(stack))))
    # The repository host before PostgreSQL (every node), which archives to it from its first segment.
    if not topology.clustered:
        return [*ORDER, *own, ("postgres", ["pgbackrest-repo"])]
    nodes = [n.name for n in topology.nodes]
    members = [m.name for m in topology.members]
    return [*ORDER, *own, *((n, [*members, "pgbackrest-repo"]) for n in nodes), ("haproxy", nodes)]


@pytest.mark.parametrize("stack", STACKS)
def test_each_stack_file_validates_and_the_program_reads_the_same_settings(stack):
    pulumi.runtime.set_all_config(config_of(stack_file(stack)))
    assert settings_from_config(pulumi.Config("agentdb"), stack) == load(stack)


@pytest.mark.parametrize("stack", STACKS)
def test_program_declares_every_service(deployments, stack):
    assert sorted(deployments[stack].containers()) == sorted(all_services(stack))


@pytest.mark.parametrize(("stack", "expected"), [("dev", True), ("staging", False), ("prod", False)])
def test_pgadmin_runs_where_the_stack_turns_the_tools_on(deployments, stack, expected):
    assert ("pgadmin" in deployments[stack].containers()) == expected


def test_pgadmin_is_the_python_image_plus_pgadmin_at_the_pinned_versions(deployments):
    deployment = deployments["dev"]
    image = deployment.containers()["pgadmin"].inputs["image"]
    build = next(r.inputs["build"] for r in deployment.of_type(IMAGE) if r.inputs["imageName"] == image)
    assert build["dockerfile"].endswith("docker/python/Dockerfile") and build["target"] == "pgadmin"
    assert build["args"]["PGADMIN_REQUIREMENTS"].split() == tools.pgadmin_requirements()
    python = next(r.inputs["build"] for r in deployment.of_type(IMAGE) if "/python:" in r.inputs["imageName"])
    assert python["target"] == "python"


def test_pgadmin_starts_after_pgbouncer_and_reads_its_pgpass_from_a_0600_upload(deployments):
    containers = deployments["dev"].containers()
    pgadmin = containers["pgadmin"]
    assert containers["pgbouncer"].urn in pgadmin.dependencies
    modes = {u["file"].rsplit("/", 2)[-1]: u["permissions"] for u in pgadmin.inputs["uploads"]}
    assert modes["pgpass"] == "0600" and modes["servers.json"] == "0644"
    assert modes["pgadmin"] == modes["pgadmin_login"] == "0600"  # the login and its password
    assert any(v["containerPath"] == "/var/lib/agentdb/pgadmin" for v in pgadmin.inputs["volumes"])


@pytest.mark.parametrize(("stack", "service"), CASES)
def test_every_container_has_a_healthcheck_and_a_restart_policy(deployments, stack, service):
    container = deployments[stack].containers()[service].inputs
    health = container.get("healthcheck") or {}
    assert health.get("tests") and health["tests"][0] in {"CMD", "CMD-SHELL"}, f"{service}: no healthcheck"
    assert health.get("interval") and health.get("retries"), f"{service}: healthcheck without interval/retries"
    assert container.get("restart") in {"unless-stopped", "always", "on-failure"}, f"{service}: no restart policy"


@pytest.mark.parametrize(("stack", "service"), CASES)
def test_every_container_runs_as_the_unprivileged_service_user(deployments, stack, service):
    user = deployments[stack].containers()[service].inputs.get("user")
    # Grafana's official image runs as its own unprivileged user (GRAFANA_UID), which the image sets; the
    # repository host's side as its own, which the database side's cannot read.
    expected = None if service == "grafana" else str(REPO_UID) if service in REPO_SIDE else str(SERVICE_UID)
    assert user == expected, f"{service}: runs as {user!r}"


@pytest.mark.parametrize("stack", STACKS)
def test_no_password_appears_outside_a_secret(deployments, stack):
    deployment = deployments[stack]
    passwords = deployment.passwords()
    assert passwords, "the mocks generated no password"
    for resource in deployment.resources:
        text = json.dumps(visible(resource.raw))
        for name, password in passwords.items():
            assert password not in text, f"{resource.type} {resource.name}: password {name} in plain text"
    for output, (value, is_secret) in deployment.outputs.items():
        if any(password in json.dumps(value, default=str) for password in passwords.values()):
            assert is_secret, f"stack output {output} carries a password but is not a secret"


@pytest.mark.parametrize(("stack", "service"), CASES)
def test_no_password_reaches_a_container_through_env_or_command(deployments, stack, service):
    deployment = deployments[stack]
    container = deployment.containers()[service].inputs
    exposed = json.dumps([container.get("envs"), container.get("command"), container.get("healthcheck")])
    for name, password in deployment.passwords().items():
        assert password not in exposed, f"{service}: password {name} in env, command or healthcheck"


@pytest.mark.parametrize(("stack", "service"), CASES)
def test_ports_are_published_only_where_the_stack_says(deployments, stack, service):
    settings = settings_of(stack)
    ports = deployments[stack].containers()[service].inputs.get("ports") or []
    if service in ALWAYS_PUBLISHED:
        expected = True
    elif service in PUBLISHED_BY_SETTING:
        expected = getattr(settings, PUBLISHED_BY_SETTING[service])
    else:
        expected = False
    assert bool(ports) == expected, f"{service}: published={bool(ports)}, expected {expected}"
    for port in ports:
        assert port["ip"] == settings.bind_address


@pytest.mark.parametrize("service", database_services("prod"))
def test_postgres_is_not_published_in_prod(deployments, service):
    assert not deployments["prod"].containers()[service].inputs.get("ports")


@pytest.mark.parametrize("setting", PUBLISHABLE)
def test_prod_refuses_to_publish(setting):
    settings = load("prod").model_copy(update={setting: True})
    with pytest.raises(SettingsError, match="never published in prod"):
        check_publishing("prod", settings)


def test_the_program_fails_on_a_prod_stack_that_publishes_postgres(tmp_path):
    path = tmp_path / "Pulumi.prod.yaml"
    path.write_text((REPO / "Pulumi.prod.yaml").read_text() + "  agentdb:publishPostgres: true\n")
    with pytest.raises(Exception, match="publishPostgres: never published in prod"):
        deploy("prod", path)


@pytest.mark.parametrize(("stack", "service"), CASES)
def test_every_image_is_pinned(deployments, stack, service):
    deployment = deployments[stack]
    image = deployment.containers()[service].inputs["image"]
    name, _, tag = image.rpartition(":")
    assert name and tag and tag != "latest" and "/" not in tag, f"{service}: image {image!r} is not pinned"
    built = {r.inputs["imageName"]: r.inputs for r in deployment.of_type(IMAGE)}
    if service == "grafana":
        assert image == settings_of(stack).grafana_image
    else:
        assert image in built, f"{service}: {image} is not built by the program"
        assert built[image]["build"]["args"]["BASE_IMAGE"] == settings_of(stack).base_image


@pytest.mark.parametrize(("stack", "service"), CASES)
def test_resource_limits_equal_the_tuning_inputs(deployments, stack, service):
    settings = settings_of(stack)
    container = deployments[stack].containers()[service].inputs
    expected = limits(settings)[limit_key(stack, service)]
    assert container["memory"] == expected.memory_mb
    assert float(container["cpus"]) == expected.cpus
    if limit_key(stack, service) == "postgres":  # the numbers infra.tuning computed postgresql.conf for
        machine = render.machine(settings, POSTGRES_MAJOR)
        assert (container["memory"], float(container["cpus"])) == (machine.memory_mb, machine.cpus)


@pytest.mark.parametrize("stack", STACKS)
def test_rendered_files_equal_those_of_the_renderer(deployments, stack):
    deployment = deployments[stack]
    settings = settings_of(stack)
    layout = render.Layout.docker(settings, POSTGRES_MAJOR)
    expected = render.render(settings, deployment.passwords(), layout)
    if topo.build(settings).clustered:
        # Inputs of the Patroni files (their parameters and pg_hba lines): Patroni writes both itself.
        del expected["postgresql.conf"], expected["pg_hba.conf"]
    uploaded = {}
    for container in deployment.containers().values():
        for upload in container.inputs.get("uploads") or []:
            if upload["file"].startswith(layout.etc + "/") and not upload["file"].startswith(layout.secrets):
                uploaded[upload["file"].removeprefix(layout.etc + "/")] = upload
            if upload["file"] == f"{layout.repo_home}/pgbackrest.conf":  # the repository host's own
                uploaded["pgbackrest-repo.conf"] = upload
    for name, rendered in expected.items():
        assert name in uploaded, f"{name} is rendered but reaches no container"
        assert uploaded[name]["content"] == rendered.content, f"{name} differs from infra.render's"
        assert int(uploaded[name]["permissions"], 8) == rendered.mode, f"{name}: mode differs"
        owner = REPO_UID if name == "pgbackrest-repo.conf" else SERVICE_UID
        assert uploaded[name]["owner"] == str(owner)


@pytest.mark.parametrize(("stack", "after", "before"), [(s, a, b) for s in STACKS for a, bs in order(s) for b in bs])
def test_dependency_order(deployments, stack, after, before):
    containers = deployments[stack].containers()
    before = primary(stack) if before == "primary" else before
    assert containers[before].urn in containers[after].dependencies, f"{after} does not start after {before}"
    if before in {"postgres", "haproxy", "pgbouncer", "redis"}:
        assert containers[before].inputs.get("wait"), f"{before}: dependents do not wait for it to be healthy"


@pytest.mark.parametrize("stack", STACKS)
def test_schema_resources_follow_postgres(deployments, stack):
    deployment = deployments[stack]
    postgres = deployment.containers()[primary(stack)].urn
    dynamic = [r for r in deployment.resources if r.type == "pulumi-python:dynamic:Resource"]
    baseline = next(r for r in dynamic if r.name == "schema-baseline")
    assert postgres in baseline.dependencies
    for key in settings_of(stack).databases:
        migration = next(r for r in dynamic if r.name == f"schema-{key}-migrations")
        cron = next(r for r in dynamic if r.name == f"schema-{key}-cron")
        assert baseline.urn in migration.dependencies
        assert migration.urn in cron.dependencies


@pytest.mark.parametrize("stack", STACKS)
def test_each_migrations_resource_carries_the_settings_its_database_reads(deployments, stack):
    dynamic = [r for r in deployments[stack].resources if r.type == "pulumi-python:dynamic:Resource"]
    settings = settings_of(stack)
    for key in settings.databases:
        migration = next(r for r in dynamic if r.name == f"schema-{key}-migrations")
        assert migration.inputs["values"] == migrations.runtime_values(key, settings)


@pytest.mark.parametrize("stack", STACKS)
def test_outputs(deployments, stack):
    outputs = deployments[stack].outputs
    settings = settings_of(stack)
    strings, is_secret = outputs["connection_strings"]
    assert is_secret
    assert sorted(strings) == sorted(f"{k}_{r}" for k in settings.databases for r in ("app", "readonly"))
    assert outputs["grafana_url"][0] == f"http://{settings.bind_address}:{settings.grafana_port}"
    assert str(settings.prometheus_port) in outputs["prometheus_url"][0]
    assert sorted(outputs["revisions"][0]) == sorted(settings.databases)
    if settings.tools:
        assert outputs["pgadmin_url"][0] == f"http://{settings.bind_address}:{settings.pgadmin_port}"
        assert outputs["pgadmin_password"][1] and outputs["pgadmin_login"][1]
        assert outputs["pgadmin_login"][0].endswith("@agentdb.example.com")
    else:
        assert "pgadmin_url" not in outputs
