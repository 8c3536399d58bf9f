"""What the running containers really have: testinfra through the docker:// backend, and the schema,
cron jobs and pgvector through PgBouncer, on PostgreSQL 17."""

from __future__ import annotations

import json
import time
import urllib.request

import psycopg
import pytest
import redis
import testinfra

from infra import credentials as sec
from infra import cron, migrations, render
from infra.databases import DATABASES
from infra.program.common import SERVICE_UID

SERVICES = [
    "postgres",
    "pgbouncer",
    "redis",
    "postgres-exporter",
    "pgbouncer-exporter",
    "redis-exporter",
    "webhook",
    "alertmanager",
    "prometheus",
    "backup",
]
# service -> the settings port it listens on (the backup container serves the backup metrics)
PORTS = {
    "postgres": "postgres_port",
    "pgbouncer": "pgbouncer_port",
    "redis": "redis_port",
    "postgres-exporter": "postgres_exporter_port",
    "pgbouncer-exporter": "pgbouncer_exporter_port",
    "redis-exporter": "redis_exporter_port",
    "webhook": "webhook_port",
    "alertmanager": "alertmanager_port",
    "prometheus": "prometheus_port",
    "backup": "backup_metrics_port",
}
# file -> mode, in the container that reads it
FILES = [
    ("postgres", "/etc/agentdb/postgresql.conf", 0o644),
    ("postgres", "/etc/agentdb/pg_hba.conf", 0o644),
    ("postgres", "/etc/agentdb/secrets/postgres", 0o600),
    ("pgbouncer", "/etc/agentdb/pgbouncer.ini", 0o644),
    ("pgbouncer", "/etc/agentdb/userlist.txt", 0o600),
    ("redis", "/etc/agentdb/users.acl", 0o600),
    ("pgbouncer-exporter", "/etc/agentdb/pgpass", 0o600),
    ("postgres-exporter", "/etc/agentdb/secrets/agentdb_monitor", 0o600),
    ("redis-exporter", "/etc/agentdb/secrets/redis_exporter", 0o600),
    ("backup", "/etc/agentdb/pgbackrest.conf", 0o644),
    ("backup", "/etc/agentdb/secrets/pgbackrest.pgpass", 0o600),
]
EXTENSIONS = ["pg_cron", "pg_partman", "vector", "pg_stat_statements", "pg_trgm", "pgcrypto"]
SCRAPE_JOBS = ["prometheus", "postgres", "pgbouncer", "redis", "alertmanager"]


def host(docker_stack, service: str):
    return testinfra.get_host(f"docker://{docker_stack.container(service)}")


def app_dsn(docker_stack, key: str, role: str = "app") -> str:
    s = docker_stack.deployment.settings
    db = DATABASES[key]
    user = db.app_role if role == "app" else db.readonly_role
    password = docker_stack.deployment.passwords()[user]
    return f"postgresql://{user}:{password}@{s.bind_address}:{s.pgbouncer_port}/{db.name}"


def admin_dsn(docker_stack, dbname: str = "postgres") -> str:
    password = docker_stack.deployment.passwords()[sec.SUPERUSER]
    return f"postgresql://{sec.SUPERUSER}:{password}@{docker_stack.ip('postgres')}:" + (
        f"{docker_stack.deployment.settings.postgres_port}/{dbname}"
    )


def test_only_grafana_is_left_out(docker_stack):
    assert docker_stack.left_out == {"grafana": docker_stack.left_out.get("grafana")}
    print(f"left out: {docker_stack.left_out}")


@pytest.mark.parametrize("service", SERVICES)
def test_the_service_runs_as_the_unprivileged_user(docker_stack, service):
    status = host(docker_stack, service).file("/proc/1/status").content_string
    uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
    assert uid_line.split()[1] == str(SERVICE_UID)


@pytest.mark.parametrize("service", PORTS)
def test_the_service_listens_on_its_port(docker_stack, service):
    port = getattr(docker_stack.deployment.settings, PORTS[service])
    h = host(docker_stack, service)
    table = h.file("/proc/net/tcp").content_string + h.file("/proc/net/tcp6").content_string
    listening = {
        int(fields[1].rsplit(":", 1)[1], 16)
        for fields in (line.split() for line in table.splitlines()[1:] if line.strip())
        if len(fields) > 3 and fields[3] == "0A"
    }
    assert port in listening


@pytest.mark.parametrize(("service", "path", "mode"), FILES)
def test_uploaded_files_have_the_renderer_mode_and_owner(docker_stack, service, path, mode):
    f = host(docker_stack, service).file(path)
    assert f.exists and f.mode == mode and f.uid == SERVICE_UID


@pytest.mark.parametrize("service", SERVICES)
def test_no_password_on_the_process_list_or_in_the_container_env(docker_stack, service):
    h = host(docker_stack, service)
    cmdlines = h.check_output("cat /proc/[0-9]*/cmdline | tr '\\000' ' '")
    env = json.dumps(dockerstack_inspect(docker_stack.container(service))["Config"]["Env"])
    for name, password in docker_stack.deployment.passwords().items():
        assert password not in cmdlines, f"{service}: {name} on the process list"
        assert password not in env, f"{service}: {name} in the container environment"


def dockerstack_inspect(name: str) -> dict:
    import dockerstack

    return json.loads(dockerstack.docker("inspect", name).stdout)[0]


def test_postgres_is_17_with_the_packaged_extensions(docker_stack):
    with psycopg.connect(admin_dsn(docker_stack)) as conn:
        assert conn.info.server_version // 10000 == 17
        available = {row[0] for row in conn.execute("SELECT name FROM pg_available_extensions")}
    assert set(EXTENSIONS) <= available


@pytest.mark.parametrize("key", list(DATABASES))
def test_schema_is_at_head_through_pgbouncer(docker_stack, key):
    if key not in docker_stack.deployment.settings.databases:
        pytest.skip(f"{key} is not enabled in the dev stack")
    heads = migrations.heads(key)
    with psycopg.connect(app_dsn(docker_stack, key), prepare_threshold=None) as conn:
        assert conn.execute("SELECT current_user").fetchone()[0] == DATABASES[key].app_role
        revision = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()[0]
    assert revision and revision[0] == heads[0]
    assert tables > 1
    assert docker_stack.schema[f"schema-{key}-migrations"]["revision"] == heads[0]


@pytest.mark.parametrize("key", list(DATABASES))
def test_cron_jobs_are_scheduled_by_name(docker_stack, key):
    declared = {job.name for job in cron.jobs(DATABASES[key], docker_stack.deployment.settings)}
    with psycopg.connect(admin_dsn(docker_stack)) as conn:
        rows = conn.execute("SELECT jobname, database, username FROM cron.job WHERE jobname LIKE %s", (f"{key}-%",))
        scheduled = {name: (database, user) for name, database, user in rows}
    assert set(scheduled) == declared
    for database, user in scheduled.values():
        assert (database, user) == (DATABASES[key].name, DATABASES[key].owner)


def test_afs_query_logs_use_pgvector_and_hybrid_search_scores_by_vector(docker_stack):
    embedding = [0.0] * 1536
    embedding[0] = 1.0
    with psycopg.connect(app_dsn(docker_stack, "afs"), prepare_threshold=None) as conn:
        assert conn.execute("SELECT query_logs_has_vector_search()").fetchone()[0] is True
        conn.execute(
            "INSERT INTO query_logs (query_text, query_embedding) VALUES (%s, %s::real[]::vector)",
            ("conformance vector probe", embedding),
        )
        row = conn.execute(
            "SELECT vector_score FROM hybrid_search_query_logs(%s, %s::double precision[], 5) WHERE query_text = %s",
            ("conformance vector probe", embedding, "conformance vector probe"),
        ).fetchone()
        conn.rollback()
    assert row is not None and row[0] == pytest.approx(1.0)


def test_agentic_embeddings_are_pgvector_columns(docker_stack):
    with psycopg.connect(app_dsn(docker_stack, "agentic"), prepare_threshold=None) as conn:
        types = {
            row[0]
            for row in conn.execute(
                "SELECT format_type(atttypid, atttypmod) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
                " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND attname LIKE %s"
                " AND NOT attisdropped",
                ("%embedding%",),
            )
        }
    assert types and types <= {"vector(1536)"}


def test_redis_accepts_the_app_user_only(docker_stack):
    s = docker_stack.deployment.settings
    password = docker_stack.deployment.passwords()["redis_app"]
    client = redis.Redis(
        host=docker_stack.ip("redis"), port=s.redis_port, username=sec.REDIS_APP_USER, password=password
    )
    try:
        assert client.ping()
    finally:
        client.close()
    anonymous = redis.Redis(host=docker_stack.ip("redis"), port=s.redis_port)
    with pytest.raises(redis.exceptions.RedisError):
        anonymous.ping()
    anonymous.close()


def test_prometheus_scrapes_every_target(docker_stack):
    s = docker_stack.deployment.settings
    url = f"http://{s.bind_address}:{s.prometheus_port}/api/v1/targets"
    deadline = time.monotonic() + 60
    while True:
        with urllib.request.urlopen(url, timeout=5) as resp:
            targets = json.load(resp)["data"]["activeTargets"]
        health = {t["labels"]["job"]: t["health"] for t in targets}
        if all(health.get(job) == "up" for job in SCRAPE_JOBS) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert {job: health.get(job) for job in SCRAPE_JOBS} == {job: "up" for job in SCRAPE_JOBS}


def test_wal_is_archived_with_pgbackrest(docker_stack):
    with psycopg.connect(admin_dsn(docker_stack), autocommit=True) as conn:
        before = conn.execute("SELECT archived_count FROM pg_stat_archiver").fetchone()[0]
        conn.execute("SELECT pg_switch_wal()")
        deadline = time.monotonic() + 60
        while True:
            archived, failed = conn.execute("SELECT archived_count, failed_count FROM pg_stat_archiver").fetchone()
            if archived > before or failed or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    assert (archived > before, failed) == (True, 0)


def test_the_backup_container_takes_a_full_backup_of_the_running_server(docker_stack):
    # What its scheduler runs at 01:00 UTC, run now: pgBackRest in the backup container, on the data
    # and socket volumes it shares with PostgreSQL, into the repository that WAL is archived to.
    h = host(docker_stack, "backup")
    pgbackrest = "PGPASSFILE=/etc/agentdb/secrets/pgbackrest.pgpass pgbackrest --config=/etc/agentdb/pgbackrest.conf"
    stanza = f"--stanza={render.PGBACKREST_STANZA}"
    result = h.run(f"{pgbackrest} {stanza} backup --type=full --log-level-console=warn")
    assert result.rc == 0, result.stdout + result.stderr
    (info,) = json.loads(h.check_output(f"{pgbackrest} {stanza} info --output=json"))
    assert [b["type"] for b in info["backup"]][-1:] == ["full"]
    assert info["status"]["code"] == 0, info["status"]
