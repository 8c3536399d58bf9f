"""Prometheus, Alertmanager, the webhook receiver, the three exporters and Grafana."""

from __future__ import annotations

import shlex
from collections.abc import Sequence

import pulumi
import pulumi_docker as docker

from infra import credentials as sec
from infra import render
from infra import topology as topo
from infra.program.common import (
    PYTHON_HOME,
    StackContext,
    http_health,
    rendered_upload,
    secret_upload,
    service_container,
)

GRAFANA_UID = 472  # the official image's grafana user
GRAFANA_DATASOURCE = "/etc/grafana/provisioning/datasources/agentdb.yaml"


def python_health(port: int, path: str) -> list[str]:
    return [
        "python3",
        "-c",
        f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{port}{path}', timeout=2)",
    ]


def grafana_datasource(ctx: StackContext) -> str:
    return (
        "apiVersion: 1\n"
        "datasources:\n"
        "  - name: Prometheus\n"
        "    type: prometheus\n"
        "    access: proxy\n"
        f"    url: http://prometheus:{ctx.settings.prometheus_port}\n"
        "    isDefault: true\n"
    )


def postgres_exporter_service(ctx: StackContext, unit: topo.Unit) -> str:
    """The container of one postgres_exporter unit: named as Prometheus reaches it (`postgres-exporter`, or
    `postgres-exporter-pg-N`, one per cluster node)."""
    return ctx.layout.host_of(unit.name)


class Monitoring(pulumi.ComponentResource):
    """Exporters start after what they read; Prometheus after the exporters and Alertmanager.

    `servers` maps the topology's PostgreSQL units (`postgres`, or each cluster node) to their containers:
    each postgres_exporter unit of the topology becomes one container reading its own server.
    """

    def __init__(
        self,
        name: str,
        ctx: StackContext,
        postgres: pulumi.Resource | None,
        pgbouncer: pulumi.Resource,
        redis: pulumi.Resource,
        servers: dict[str, pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("agentdb:index:Monitoring", name, None, opts)
        s, lay = ctx.settings, ctx.layout
        sslmode = "require" if s.tls else "disable"
        topology = topo.build(s)
        exporter_files = [secret_upload(ctx, sec.MONITOR_ROLE)]
        queries = []
        if (render.CONFIG_DIR / "postgres_exporter_queries.yaml").exists():
            exporter_files.append(rendered_upload(ctx, "postgres_exporter_queries.yaml"))
            queries.append(f"--extend.query-path={lay.etc}/postgres_exporter_queries.yaml")

        def make(service: str, after: Sequence[pulumi.Resource], **kw) -> docker.Container:
            return service_container(self, name, ctx, service, depends_on=after, **kw)

        # Each exporter reads its own server, as in the local runner: a replica's state, lag and
        # statistics exist only on that replica, so a cluster has one per node, not one behind HAProxy.
        self.postgres_exporters = []
        for unit in topology.of_kind("postgres_exporter"):
            if topology.external:
                # The monitoring role against the provider's server, with the stack's sslmode.
                source = f"{s.postgres_host}:{s.postgres_port}/postgres?sslmode={s.postgres_ssl_mode}"
            else:
                server = topology.unit(unit.target)
                source = f"{lay.host_of(server.name)}:{server.port_of('postgres')}/postgres?sslmode={sslmode}"
            self.postgres_exporters.append(
                make(
                    postgres_exporter_service(ctx, unit),
                    [servers[a] for a in unit.after],
                    image="postgres-exporter",
                    limit="postgres-exporter",
                    command=[
                        "prometheus-postgres-exporter",
                        f"--web.listen-address=0.0.0.0:{unit.port}",
                        "--auto-discover-databases",
                        "--exclude-databases=template0,template1",
                        *queries,
                    ],
                    envs=[
                        f"DATA_SOURCE_URI={source}",
                        f"DATA_SOURCE_USER={sec.MONITOR_ROLE}",
                        f"DATA_SOURCE_PASS_FILE={lay.secrets}/{sec.MONITOR_ROLE}",
                    ],
                    health=http_health(unit.health.port, unit.health.path),
                    uploads=exporter_files,
                    port=unit.port,
                )
            )
        self.pgbouncer_exporter = make(
            "pgbouncer-exporter",
            [r for r in (postgres, pgbouncer) if r],
            image="python",
            command=[
                "python3",
                "-m",
                "infra.exporters.pgbouncer",
                "--listen",
                f"0.0.0.0:{s.pgbouncer_exporter_port}",
                "--pgbouncer",
                f"host={lay.pgbouncer_host} port={s.pgbouncer_port} dbname=pgbouncer user={sec.PGBOUNCER_STATS}",
            ],
            envs=[f"PGPASSFILE={lay.etc}/pgpass"],
            health=python_health(s.pgbouncer_exporter_port, "/metrics"),
            uploads=[rendered_upload(ctx, "pgpass")],
            port=s.pgbouncer_exporter_port,
            extra={"working_dir": PYTHON_HOME},
        )
        redis_exporter = (
            f'REDIS_PASSWORD="$(cat {shlex.quote(lay.secrets + "/redis_exporter")})"'
            " exec prometheus-redis-exporter"
            f" -web.listen-address=0.0.0.0:{s.redis_exporter_port}"
            f" -redis.addr=redis://{lay.redis_host}:{s.redis_port} -redis.user={sec.REDIS_EXPORTER_USER}"
        )
        self.redis_exporter = make(
            "redis-exporter",
            [redis],
            command=["/bin/sh", "-c", redis_exporter],
            health=http_health(s.redis_exporter_port, "/metrics"),
            uploads=[secret_upload(ctx, "redis_exporter")],
            port=s.redis_exporter_port,
        )
        self.webhook = make(
            "webhook",
            [],
            image="python",
            command=[
                "python3",
                f"{PYTHON_HOME}/infra/webhook.py",
                "--listen",
                f"0.0.0.0:{s.webhook_port}",
                "--out",
                f"{lay.logs}/alerts.jsonl",
            ],
            health=python_health(s.webhook_port, "/health"),
            port=s.webhook_port,
        )
        self.alertmanager = make(
            "alertmanager",
            [self.webhook],
            command=[
                "prometheus-alertmanager",
                f"--config.file={lay.etc}/alertmanager.yml",
                f"--storage.path={lay.alertmanager_data}",
                f"--web.listen-address=0.0.0.0:{s.alertmanager_port}",
                "--cluster.listen-address=",
            ],
            health=http_health(s.alertmanager_port, "/-/ready"),
            uploads=[rendered_upload(ctx, "alertmanager.yml")],
            port=s.alertmanager_port,
            volumes=["alertmanager"],
        )
        self.prometheus = make(
            "prometheus",
            [*self.postgres_exporters, self.pgbouncer_exporter, self.redis_exporter, self.alertmanager],
            command=[
                "prometheus",
                f"--config.file={lay.etc}/prometheus.yml",
                f"--storage.tsdb.path={lay.prometheus_data}",
                f"--web.listen-address=0.0.0.0:{s.prometheus_port}",
                "--web.enable-lifecycle",
            ],
            health=http_health(s.prometheus_port, "/-/ready"),
            uploads=[rendered_upload(ctx, "prometheus.yml"), *_rule_uploads(ctx)],
            port=s.prometheus_port,
            publish=s.publish_prometheus,
            volumes=["prometheus"],
        )
        grafana_secret = secret_upload(ctx, "grafana", owner=GRAFANA_UID)
        self.grafana = make(
            "grafana",
            [self.prometheus],
            command=[],
            user=None,  # the official image's own user
            envs=[
                f"GF_SERVER_HTTP_PORT={s.grafana_port}",
                f"GF_SECURITY_ADMIN_USER={sec.GRAFANA_ADMIN}",
                f"GF_SECURITY_ADMIN_PASSWORD__FILE={lay.secrets}/grafana",
                "GF_ANALYTICS_REPORTING_ENABLED=false",
            ],
            health=["wget", "-q", "-O", "/dev/null", f"http://127.0.0.1:{s.grafana_port}/api/health"],
            uploads=[
                grafana_secret,
                docker.ContainerUploadArgs(
                    file=GRAFANA_DATASOURCE,
                    content=grafana_datasource(ctx),
                    owner=str(GRAFANA_UID),
                    group="0",
                    permissions="0644",
                ),
            ],
            port=s.grafana_port,
            publish=True,
            volumes=["grafana"],
        )
        self.containers = [
            *self.postgres_exporters,
            self.pgbouncer_exporter,
            self.redis_exporter,
            self.webhook,
            self.alertmanager,
            self.prometheus,
            self.grafana,
        ]
        self.register_outputs({"containers": [c.name for c in self.containers]})


def _rule_uploads(ctx: StackContext) -> list[docker.ContainerUploadArgs]:
    # The rule files are the rendered files under rules/; their names are known without the secrets.
    return [rendered_upload(ctx, name) for name in rule_files()]


def rule_files() -> list[str]:
    rules = render.CONFIG_DIR / "rules"
    paths = sorted(rules.glob("*.yml*")) if rules.is_dir() else []
    return [f"rules/{p.name.removesuffix('.j2')}" for p in paths if not p.name.endswith(".test.yml")]
