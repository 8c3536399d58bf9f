"""The Pulumi program for the Docker realization: one ComponentResource per concern.

`build()` is the whole program; `infra/__main__.py` only reads the settings and calls it, so the
mocks tests run exactly what `pulumi up` runs.
"""

from __future__ import annotations

import json
from urllib.parse import quote

import pulumi
from pydantic.alias_generators import to_camel

from infra import credentials as sec
from infra import external, render
from infra import topology as topo
from infra.program.backup import Backup, check_backup_repos
from infra.program.cluster import Cluster
from infra.program.common import POSTGRES_MAJOR, StackContext
from infra.program.images import Images
from infra.program.monitoring import Monitoring
from infra.program.network import Network
from infra.program.passwords import CONFIG_KEY, Passwords
from infra.program.pgbouncer import PgBouncer
from infra.program.postgres import Postgres
from infra.program.redis import Redis
from infra.program.scheduler import Scheduler
from infra.program.schema import Schema
from infra.program.tools import Tools
from infra.settings import NAMESPACE, Settings, SettingsError, parse

PUBLISHABLE = ("publish_postgres", "publish_redis", "publish_prometheus")


def settings_from_config(config: pulumi.Config, stack: str) -> Settings:
    """Read every settings key from the stack's Pulumi config and validate it with infra.settings."""
    values = {}
    for name in Settings.model_fields:
        raw = config.get(to_camel(name))
        if raw is None:
            continue
        try:
            values[f"{NAMESPACE}:{to_camel(name)}"] = json.loads(raw)
        except ValueError:
            values[f"{NAMESPACE}:{to_camel(name)}"] = raw  # a plain string such as `ssd`
    return parse(values, source=f"Pulumi.{stack}.yaml")


def check_publishing(stack: str, settings: Settings) -> None:
    """PostgreSQL, Redis and Prometheus are never published in prod: refuse before creating anything."""
    if stack != "prod":
        return
    for name in PUBLISHABLE:
        if getattr(settings, name):
            raise SettingsError(f"Pulumi.prod.yaml: {NAMESPACE}:{to_camel(name)}: never published in prod")


def keep_data(settings: Settings) -> bool:
    # `agentdb:dropDataOnDestroy` (requested for infra/settings.py) turns retention off; keep by default.
    return not settings.drop_data_on_destroy


def with_exporter_queries(files: dict[str, render.RenderedFile]) -> dict[str, render.RenderedFile]:
    """The local runner ships the exporter's query file beside the rendered ones; so does Docker."""
    path = render.CONFIG_DIR / "postgres_exporter_queries.yaml"
    if not path.exists():
        return files
    return {**files, "postgres_exporter_queries.yaml": render.RenderedFile(path.read_text())}


def build(
    stack: str,
    settings: Settings,
    password_overrides: pulumi.Output | None = None,
    admin_password: pulumi.Output | None = None,
) -> dict[str, object]:
    """Create every resource of the stack and return the stack outputs.

    `admin_password` is the secret `agentdb:postgresAdminPassword`, needed with postgresMode external.
    """
    check_publishing(stack, settings)
    check_backup_repos(stack, settings)
    if settings.postgres_mode == "external" and admin_password is None:
        raise SettingsError(
            f"Pulumi.{stack}.yaml: {external.PASSWORD_KEY}: not set; `pulumi config set --secret"
            f" {external.PASSWORD_KEY}` with the password of agentdb:postgresAdminUser"
        )
    topology = topo.build(settings)
    layout = render.Layout.docker(settings, POSTGRES_MAJOR)
    keep = keep_data(settings)

    passwords = Passwords("passwords", settings, password_overrides)
    files = pulumi.Output.all(**passwords.values).apply(
        lambda values: with_exporter_queries(render.render(settings, dict(values), layout))
    )
    net = Network("network", stack, settings, keep)
    images = Images("images", settings)
    ctx = StackContext(
        stack=stack,
        settings=settings,
        layout=layout,
        files=pulumi.Output.secret(files),
        passwords=passwords.values,
        network_name=net.network.name,
        images=images.refs,
        volumes={key: volume.name for key, volume in net.volumes.items()},
    )
    # Writes go to the leader: through HAProxy's read-write port on a cluster, else to the one PostgreSQL.
    # An external server: every container but PostgreSQL's, and no backups of ours (the provider takes them).
    primary: pulumi.Resource | None
    # pgBackRest's repository host comes first: PostgreSQL archives to it over TLS from its first segment.
    backup = None if topology.external else Backup("backup", ctx)
    repository = [backup.repository] if backup else []
    if topology.external:
        primary, address, servers = None, settings.postgres_host, {}
    elif topology.clustered:
        cluster = Cluster("cluster", ctx, repository)
        primary, address, servers = cluster.primary, cluster.address, cluster.containers
    else:
        postgres = Postgres("postgres", ctx, repository)
        primary, address, servers = postgres.container, postgres.address, {"postgres": postgres.container}
    if backup:
        backup.database_side(servers)
    at_server = [primary] if primary else []
    pgbouncer = PgBouncer("pgbouncer", ctx, depends_on=at_server)
    redis = Redis("redis", ctx)
    Monitoring("monitoring", ctx, primary, pgbouncer.container, redis.container, servers)
    if settings.tools:
        Tools("tools", ctx, depends_on=[pgbouncer.container])
    schema = Schema(
        "schema",
        settings,
        address,
        passwords.values,
        keep,
        depends_on=at_server,
        port=topology.primary_port,
        admin_password=admin_password,
    )

    if topology.of_kind("scheduler"):
        # Runs the cron jobs where pg_cron cannot, as the admin the schema resources connect as; it starts
        # after them (migrations and cron sync), as the local runner starts it after the baseline.
        admin_dsn = pulumi.Output.secret(admin_password).apply(
            lambda pw: external.dsn(settings, settings.postgres_admin_user, pw, "postgres")
        )
        Scheduler("scheduler", ctx, admin_dsn, depends_on=[schema])

    host = settings.bind_address
    connections = {}
    for db in settings.enabled:
        for role, user in (("app", db.app_role), ("readonly", db.readonly_role)):
            connections[f"{db.key}_{role}"] = passwords.values[user].apply(
                lambda pw, user=user, name=db.name: (
                    f"postgresql://{user}:{quote(pw, safe='')}@{host}:{settings.pgbouncer_port}/{name}"
                )
            )
    prometheus_url = (
        f"http://{host}:{settings.prometheus_port}"
        if settings.publish_prometheus
        else f"http://prometheus:{settings.prometheus_port} (inside network agentdb-{stack})"
    )
    outputs: dict[str, object] = {
        "connection_strings": pulumi.Output.secret(pulumi.Output.all(**connections)),
        "grafana_url": f"http://{host}:{settings.grafana_port}",
        "prometheus_url": prometheus_url,
        "revisions": pulumi.Output.all(**schema.revisions),
        "grafana_admin_password": pulumi.Output.secret(passwords.values["grafana"]),
    }
    if settings.tools:
        outputs["pgadmin_url"] = f"http://{host}:{settings.pgadmin_port}"
        outputs["pgadmin_login"] = pulumi.Output.secret(passwords.values[sec.PGADMIN_LOGIN])
        outputs["pgadmin_password"] = pulumi.Output.secret(passwords.values[sec.PGADMIN_PASSWORD])
    return outputs


def config_overrides(config: pulumi.Config) -> pulumi.Output | None:
    return config.get_secret_object(CONFIG_KEY)


def config_admin_password(config: pulumi.Config) -> pulumi.Output | None:
    """The external server's admin password, from the secret `agentdb:postgresAdminPassword` (None when unset)."""
    return config.get_secret(external.PASSWORD_KEY.split(":", 1)[1])
