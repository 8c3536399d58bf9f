"""Roles, databases, migrations and cron jobs, applied by Pulumi dynamic resources written in Python.

The providers call the same functions as `agentdb up` and `agentdb migrate` (infra.baseline,
infra.migrations, infra.cron), so no extra plugin is needed. Each migration resource tracks its
history's checksum: a changed SQL file or a new revision is a diff, and the update upgrades to head;
so is a changed setting the database reads at run time (its `values`), which the update writes.
Deleting a resource keeps the data unless the stack asks to drop it (`keep_data` False).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
import pulumi
from pulumi.dynamic import CreateResult, DiffResult, Resource, ResourceProvider, UpdateResult

from infra import baseline, cron, external, migrations
from infra import credentials as sec
from infra.databases import DATABASES
from infra.settings import Settings


def admin_dsn(host: str, port: int, password: str, dbname: str = "postgres") -> str:
    """The superuser's libpq URL to one database."""
    return f"postgresql://{sec.SUPERUSER}:{quote(password, safe='')}@{host}:{port}/{dbname}"


def with_database(dsn: str, dbname: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{dbname}"))


def settings_of(props: dict[str, Any]) -> Settings:
    return Settings.model_validate(props["settings"])


def _changed(olds: dict[str, Any], news: dict[str, Any], keys: tuple[str, ...]) -> list[str]:
    return [key for key in keys if olds.get(key) != news.get(key)]


# ----- the platform baseline: roles, databases, extensions, default privileges -----------------------
class BaselineProvider(ResourceProvider):
    """Inputs: admin_dsn (to `postgres`), settings (by alias), passwords. Idempotent create and update."""

    def _apply(self, props: dict[str, Any]) -> dict[str, Any]:
        settings = settings_of(props)
        with psycopg.connect(props["admin_dsn"], autocommit=True) as conn:
            baseline.apply_cluster(conn, settings, props["passwords"])
        for db in settings.enabled:
            with psycopg.connect(with_database(props["admin_dsn"], db.name)) as conn:
                baseline.apply_database(conn, db)
        return {**props, "databases": [db.name for db in settings.enabled]}

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_="baseline", outs=self._apply(props))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = _changed(olds, news, ("admin_dsn", "settings", "passwords"))
        return DiffResult(changes=bool(changed), replaces=[], delete_before_replace=False)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=self._apply(news))

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        # Roles and databases live in PostgreSQL's volume: the volume's retention decides their fate.
        return None


# ----- migrations: one Alembic history per database ---------------------------------------------------
class MigrationsProvider(ResourceProvider):
    """Inputs: admin_dsn (to the database), key, checksum, heads, values, keep_data. Output: revision.

    `values` are the settings the database reads at run time (`migrations.runtime_values`): a changed
    one is a diff, and the update writes it as `agentdb migrate` does, without a new revision.
    """

    def _apply(self, props: dict[str, Any]) -> dict[str, Any]:
        migrations.upgrade(props["admin_dsn"], props["key"], values=props.get("values"))
        return {**props, "revision": migrations.current(props["admin_dsn"], props["key"])}

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_=props["key"], outs=self._apply(props))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = _changed(olds, news, ("key", "checksum", "heads", "values", "admin_dsn", "keep_data"))
        return DiffResult(
            changes=bool(changed), replaces=["key"] if "key" in changed else [], delete_before_replace=False
        )

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=self._apply(news))

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        if not props.get("keep_data", True):
            migrations.downgrade(props["admin_dsn"], props["key"], "base")


# ----- cron jobs, synced by name ------------------------------------------------------------------------
class CronJobsProvider(ResourceProvider):
    """Inputs: admin_dsn (to `postgres`, where pg_cron lives), key, settings, jobs, keep_data."""

    def _apply(self, props: dict[str, Any]) -> dict[str, Any]:
        settings = settings_of(props)
        # Without a usable pg_cron on an external server, the scheduler container runs the jobs.
        if cron.deferred(props["admin_dsn"], settings):
            return {**props, "changed": []}
        changed = cron.sync(props["admin_dsn"], DATABASES[props["key"]], settings)
        return {**props, "changed": changed}

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_=f"{props['key']}-cron", outs=self._apply(props))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = _changed(olds, news, ("key", "jobs", "admin_dsn", "keep_data"))
        return DiffResult(
            changes=bool(changed), replaces=["key"] if "key" in changed else [], delete_before_replace=False
        )

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=self._apply(news))

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        if props.get("keep_data", True) or cron.deferred(props["admin_dsn"], settings_of(props)):
            return
        with psycopg.connect(props["admin_dsn"], autocommit=True) as conn:
            # By id: unschedule(name) finds only the calling user's jobs, and these belong to the owner.
            conn.execute("SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname LIKE %s", (f"{props['key']}-%",))


def job_list(key: str, settings: Settings) -> list[dict[str, str]]:
    """The declared jobs as plain data: a changed schedule or command is a diff."""
    return [vars(job) for job in cron.jobs(DATABASES[key], settings)]


class Baseline(Resource):
    def __init__(self, name: str, props: dict[str, Any], opts: pulumi.ResourceOptions | None = None):
        super().__init__(BaselineProvider(), name, {**props, "databases": None}, opts)


class Migrations(Resource):
    revision: pulumi.Output[str]

    def __init__(self, name: str, props: dict[str, Any], opts: pulumi.ResourceOptions | None = None):
        super().__init__(MigrationsProvider(), name, {**props, "revision": None}, opts)


class CronJobs(Resource):
    def __init__(self, name: str, props: dict[str, Any], opts: pulumi.ResourceOptions | None = None):
        super().__init__(CronJobsProvider(), name, {**props, "changed": None}, opts)


class Schema(pulumi.ComponentResource):
    """The baseline, then per database its migrations and its cron jobs; `revisions` maps key -> revision."""

    def __init__(
        self,
        name: str,
        settings: Settings,
        host: pulumi.Input[str],
        passwords: dict[str, pulumi.Output],
        keep_data: bool,
        depends_on: list[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
        port: int | None = None,
        admin_password: pulumi.Input[str] | None = None,
    ):
        super().__init__("agentdb:index:Schema", name, None, opts)
        # On a cluster `host`:`port` is HAProxy's read-write port, so the schema goes to the leader.
        port = port or settings.postgres_port
        secret_props = ["admin_dsn", "passwords"]
        if settings.postgres_mode == "external":
            # The provider's admin (CREATEROLE and CREATEDB), with the stack's sslmode.
            dsn = pulumi.Output.secret(
                pulumi.Output.from_input(admin_password).apply(
                    lambda pw: external.dsn(settings, settings.postgres_admin_user, pw, "postgres")
                )
            )
        else:
            dsn = pulumi.Output.secret(
                pulumi.Output.all(host, passwords[sec.SUPERUSER]).apply(lambda args: admin_dsn(args[0], port, args[1]))
            )
        settings_doc = settings.model_dump(mode="json")
        base = Baseline(
            f"{name}-baseline",
            {
                "admin_dsn": dsn,
                "settings": settings_doc,
                "passwords": pulumi.Output.secret(pulumi.Output.all(**passwords)),
            },
            pulumi.ResourceOptions(parent=self, depends_on=depends_on, additional_secret_outputs=secret_props),
        )
        self.revisions: dict[str, pulumi.Output] = {}
        for db in settings.enabled:
            migration = Migrations(
                f"{name}-{db.key}-migrations",
                {
                    "admin_dsn": dsn.apply(lambda value, dbname=db.name: with_database(value, dbname)),
                    "key": db.key,
                    "checksum": migrations.checksum(db.key),
                    "heads": migrations.heads(db.key),
                    "values": migrations.runtime_values(db.key, settings),
                    "keep_data": keep_data,
                },
                pulumi.ResourceOptions(parent=self, depends_on=[base], additional_secret_outputs=["admin_dsn"]),
            )
            CronJobs(
                f"{name}-{db.key}-cron",
                {
                    "admin_dsn": dsn,
                    "key": db.key,
                    "settings": settings_doc,
                    "jobs": job_list(db.key, settings),
                    "keep_data": keep_data,
                },
                pulumi.ResourceOptions(parent=self, depends_on=[migration], additional_secret_outputs=["admin_dsn"]),
            )
            self.revisions[db.key] = migration.revision
        self.register_outputs({"revisions": self.revisions})
