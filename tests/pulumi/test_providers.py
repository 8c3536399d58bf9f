"""The schema dynamic providers, called directly against the real local PostgreSQL of the test stack.

Migrations run in scratch databases (one per key, owned by that key's owner and given the same
baseline), so the shared stack's databases keep their state; cron jobs are synced on the real ones.
"""

from __future__ import annotations

import subprocess

import psycopg
import pytest
from psycopg import sql

from infra import baseline, cron, migrations
from infra.databases import DATABASES
from infra.program.schema import (
    BaselineProvider,
    CronJobsProvider,
    MigrationsProvider,
    job_list,
    with_database,
)
from infra.settings import Settings

KEYS = list(DATABASES)
WITH_HISTORY = [key for key in KEYS if migrations.heads(key)]
WITH_JOBS = [key for key in KEYS if (DATABASES[key].sql_dir / "cron.yaml").exists()]


def scratch_name(key: str) -> str:
    return f"agentdb_provider_test_{key}"


@pytest.fixture
def scratch(stack, request):
    """A fresh database for `key` with the platform baseline, and its superuser URL; dropped afterwards."""
    key = request.param
    db = DATABASES[key]
    name = scratch_name(key)
    admin = stack.dsn(None)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(db.owner)))
    dsn = with_database(admin, name)
    with psycopg.connect(dsn) as conn:
        baseline.apply_database(conn, db)
    yield key, dsn
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def schema_dump(stack, dsn: str) -> str:
    result = subprocess.run(
        [str(stack.local.pg_bindir / "pg_dump"), "--schema-only", "--no-owner", dsn],
        capture_output=True,
        text=True,
        check=True,
    )
    # Recent pg_dump versions wrap the dump in \restrict / \unrestrict with a random key each run.
    return "\n".join(line for line in result.stdout.splitlines() if not line.startswith(("\\restrict", "\\unrestrict")))


def migration_props(key: str, dsn: str, keep_data: bool = True, **values) -> dict:
    return {
        "admin_dsn": dsn,
        "key": key,
        "checksum": migrations.checksum(key),
        "heads": migrations.heads(key),
        "values": {**migrations.runtime_values(key, Settings()), **values},
        "keep_data": keep_data,
    }


def table_count(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
        ).fetchone()[0]


# ----- migrations -------------------------------------------------------------------------------------
@pytest.mark.parametrize("scratch", WITH_HISTORY, indirect=True)
def test_create_applies_every_migration(stack, scratch):
    key, dsn = scratch
    result = MigrationsProvider().create(migration_props(key, dsn))
    assert result.id == key
    assert result.outs["revision"] == migrations.heads(key)[0]
    assert migrations.current(dsn, key) == migrations.heads(key)[0]
    assert table_count(dsn) > 0


@pytest.mark.parametrize("scratch", WITH_HISTORY, indirect=True)
def test_a_repeated_create_is_a_no_op(stack, scratch):
    key, dsn = scratch
    provider = MigrationsProvider()
    provider.create(migration_props(key, dsn))
    before = schema_dump(stack, dsn)
    again = provider.create(migration_props(key, dsn))
    assert again.outs["revision"] == migrations.heads(key)[0]
    assert schema_dump(stack, dsn) == before


@pytest.mark.parametrize("key", WITH_HISTORY)
def test_a_changed_checksum_is_a_diff_and_the_same_one_is_not(key):
    provider = MigrationsProvider()
    olds = migration_props(key, "postgresql://x@h/db")
    assert not provider.diff(key, olds, dict(olds)).changes
    changed = provider.diff(key, {**olds, "checksum": "0" * 64}, olds)
    assert changed.changes and not changed.replaces
    new_head = provider.diff(key, {**olds, "heads": ["0000"]}, olds)
    assert new_head.changes


@pytest.mark.parametrize("key", [key for key in WITH_HISTORY if DATABASES[key].runtime_settings])
def test_a_changed_runtime_setting_is_a_diff_in_place(key):
    provider = MigrationsProvider()
    olds = migration_props(key, "postgresql://x@h/db")
    news = {**olds, "values": {name: value + 1 for name, value in olds["values"].items()}}
    diff = provider.diff(key, olds, news)
    assert diff.changes and not diff.replaces


@pytest.mark.parametrize("scratch", ["qlearning"], indirect=True)
def test_update_writes_a_changed_retention_without_a_new_revision(stack, scratch):
    key, dsn = scratch
    provider = MigrationsProvider()

    def stored() -> int:
        with psycopg.connect(dsn) as conn:
            return conn.execute("SELECT retention_days FROM agentdb_settings").fetchone()[0]

    olds = provider.create(migration_props(key, dsn, retention_days=7)).outs
    assert stored() == 7
    news = migration_props(key, dsn, retention_days=9)
    assert provider.diff(key, olds, news).changes
    assert provider.update(key, olds, news).outs["revision"] == olds["revision"]
    assert stored() == 9


@pytest.mark.parametrize("key", WITH_HISTORY)
def test_another_database_key_replaces_the_resource(key):
    olds = migration_props(key, "postgresql://x@h/db")
    other = next(k for k in KEYS if k != key)
    diff = MigrationsProvider().diff(key, olds, {**olds, "key": other})
    assert diff.changes and diff.replaces == ["key"]


@pytest.mark.parametrize("scratch", WITH_HISTORY, indirect=True)
def test_a_new_revision_is_applied_by_update(stack, scratch):
    key, dsn = scratch
    provider = MigrationsProvider()
    head = migrations.heads(key)[0]
    # The database one revision behind the code: exactly what a new revision in sql/<key>/ looks like.
    provider.create(migration_props(key, dsn))
    migrations.downgrade(dsn, key, "-1")
    behind = migrations.current(dsn, key)
    assert behind != head
    olds = {**migration_props(key, dsn), "checksum": "checksum-before-the-new-revision", "revision": behind}
    news = migration_props(key, dsn)
    assert provider.diff(key, olds, news).changes
    result = provider.update(key, olds, news)
    assert result.outs["revision"] == head
    assert migrations.current(dsn, key) == head


@pytest.mark.parametrize("scratch", WITH_HISTORY, indirect=True)
def test_delete_keeps_the_data(stack, scratch):
    key, dsn = scratch
    provider = MigrationsProvider()
    outs = provider.create(migration_props(key, dsn, keep_data=True)).outs
    before = schema_dump(stack, dsn)
    provider.delete(key, outs)
    assert migrations.current(dsn, key) == migrations.heads(key)[0]
    assert schema_dump(stack, dsn) == before


@pytest.mark.parametrize("scratch", WITH_HISTORY, indirect=True)
def test_delete_drops_the_schema_when_the_stack_says_so(stack, scratch):
    key, dsn = scratch
    provider = MigrationsProvider()
    outs = provider.create(migration_props(key, dsn, keep_data=False)).outs
    provider.delete(key, outs)
    assert migrations.current(dsn, key) is None
    assert table_count(dsn) == 0


# ----- baseline -----------------------------------------------------------------------------------------
def baseline_props(stack) -> dict:
    return {
        "admin_dsn": stack.dsn(None),
        "settings": stack.settings.model_dump(mode="json"),
        "passwords": stack.local.secrets(),
    }


def test_baseline_create_is_idempotent_and_keeps_every_login(stack):
    provider = BaselineProvider()
    first = provider.create(baseline_props(stack))
    second = provider.create(baseline_props(stack))
    assert first.outs["databases"] == second.outs["databases"] == [db.name for db in stack.settings.enabled]
    for key in stack.settings.databases:
        with psycopg.connect(stack.dsn(key, "app", "pgbouncer")) as conn:
            assert conn.execute("SELECT current_user").fetchone()[0] == DATABASES[key].app_role


def test_baseline_diff_follows_the_settings(stack):
    provider = BaselineProvider()
    olds = baseline_props(stack)
    assert not provider.diff("baseline", olds, dict(olds)).changes
    grown = {**olds, "settings": {**olds["settings"], "databases": list(DATABASES)[:1]}}
    assert provider.diff("baseline", olds, grown).changes


def test_baseline_delete_keeps_the_databases(stack):
    provider = BaselineProvider()
    outs = provider.create(baseline_props(stack)).outs
    provider.delete("baseline", outs)
    for db in stack.settings.enabled:
        assert stack.psql(None, f"SELECT 1 FROM pg_database WHERE datname = '{db.name}'").strip() == "1"


# ----- cron jobs ----------------------------------------------------------------------------------------
def cron_props(stack, key: str, keep_data: bool = True) -> dict:
    return {
        "admin_dsn": stack.dsn(None),
        "key": key,
        "settings": stack.settings.model_dump(mode="json"),
        "jobs": job_list(key, stack.settings),
        "keep_data": keep_data,
    }


def scheduled(stack, key: str) -> set[str]:
    out = stack.psql(None, f"SELECT jobname FROM cron.job WHERE jobname LIKE '{key}-%'")
    return set(out.split())


@pytest.mark.parametrize("key", WITH_JOBS)
def test_cron_create_schedules_every_job_and_repeats_as_a_no_op(stack, key):
    provider = CronJobsProvider()
    provider.create(cron_props(stack, key))
    assert scheduled(stack, key) == {job.name for job in cron.jobs(DATABASES[key], stack.settings)}
    assert provider.create(cron_props(stack, key)).outs["changed"] == []


@pytest.mark.parametrize("key", WITH_JOBS)
def test_cron_diff_follows_the_declared_jobs(stack, key):
    provider = CronJobsProvider()
    olds = cron_props(stack, key)
    assert not provider.diff(key, olds, dict(olds)).changes
    edited = [{**job, "schedule": "0 0 1 1 *"} for job in olds["jobs"]]
    assert provider.diff(key, olds, {**olds, "jobs": edited}).changes


@pytest.mark.parametrize("key", WITH_JOBS)
def test_cron_update_reschedules_a_changed_job(stack, key):
    provider = CronJobsProvider()
    job = cron.jobs(DATABASES[key], stack.settings)[0]
    try:
        stack.psql(None, f"UPDATE cron.job SET schedule = '0 0 1 1 *' WHERE jobname = '{job.name}'")
        result = provider.update(key, cron_props(stack, key), cron_props(stack, key))
        assert result.outs["changed"] == [f"~{job.name}"]
        assert stack.psql(None, f"SELECT schedule FROM cron.job WHERE jobname = '{job.name}'").strip() == job.schedule
    finally:
        provider.create(cron_props(stack, key))


@pytest.mark.parametrize("key", WITH_JOBS)
def test_cron_delete_keeps_the_jobs_unless_the_stack_says_otherwise(stack, key):
    provider = CronJobsProvider()
    declared = {job.name for job in cron.jobs(DATABASES[key], stack.settings)}
    try:
        provider.delete(f"{key}-cron", cron_props(stack, key, keep_data=True))
        assert scheduled(stack, key) == declared
        provider.delete(f"{key}-cron", cron_props(stack, key, keep_data=False))
        assert scheduled(stack, key) == set()
    finally:
        provider.create(cron_props(stack, key))
    assert scheduled(stack, key) == declared
