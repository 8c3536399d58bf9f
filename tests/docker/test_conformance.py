"""What the running containers really have: testinfra through the docker:// backend, and the schema,
cron jobs and pgvector through PgBouncer, on PostgreSQL 17."""

from __future__ import annotations

import json
import re
import time
import urllib.parse
import urllib.request
from pathlib import Path

import dockerstack
import psycopg
import pytest
import redis
import testinfra

from infra import credentials as sec
from infra import cron, migrations, render
from infra.databases import DATABASES
from infra.program.common import REPO_UID, SERVICE_UID

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
    "pgbackrest-repo",
    "pgbackrest-db",
    "backup-scheduler",
    "backup-checks",
]
# The repository host's side runs as its own user, which the database side's cannot read.
REPO_SIDE = {"pgbackrest-repo", "backup-scheduler"}
# service -> the settings port it listens on (backup-checks serves the backup metrics)
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
    "pgbackrest-repo": "backup_repo_port",
    "pgbackrest-db": "backup_agent_port",
    "backup-checks": "backup_metrics_port",
}
# file -> mode, in the container that reads it (owned by the service user, or the repository host's)
FILES = [
    ("postgres", "/etc/agentdb/postgresql.conf", 0o644),
    ("postgres", "/etc/agentdb/pg_hba.conf", 0o644),
    ("postgres", "/etc/agentdb/secrets/postgres", 0o600),
    ("postgres", "/etc/agentdb/secrets/pgbackrest-db.key", 0o600),
    ("pgbouncer", "/etc/agentdb/pgbouncer.ini", 0o644),
    ("pgbouncer", "/etc/agentdb/userlist.txt", 0o600),
    ("redis", "/etc/agentdb/users.acl", 0o600),
    ("pgbouncer-exporter", "/etc/agentdb/pgpass", 0o600),
    ("postgres-exporter", "/etc/agentdb/secrets/agentdb_monitor", 0o600),
    ("redis-exporter", "/etc/agentdb/secrets/redis_exporter", 0o600),
    ("pgbackrest-db", "/etc/agentdb/pgbackrest.conf", 0o644),
    ("pgbackrest-db", "/etc/agentdb/secrets/pgbackrest.pgpass", 0o600),
    ("pgbackrest-db", "/etc/agentdb/secrets/pgbackrest-db.key", 0o600),
    ("backup-checks", "/etc/agentdb/secrets/pgbackrest.pgpass", 0o600),
    ("pgbackrest-repo", "/var/lib/pgbackrest/pgbackrest.conf", 0o600),
    ("pgbackrest-repo", "/var/lib/pgbackrest/tls/repo.key", 0o600),
    ("backup-scheduler", "/var/lib/pgbackrest/pgbackrest.conf", 0o600),
]
EXTENSIONS = ["pg_cron", "pg_partman", "vector", "pg_stat_statements", "pg_trgm", "pgcrypto"]
SCRAPE_JOBS = ["prometheus", "postgres", "pgbouncer", "redis", "alertmanager", "backup"]
STANZA = f"--stanza={render.PGBACKREST_STANZA}"
REPO_PGBACKREST = "pgbackrest --config=/var/lib/pgbackrest/pgbackrest.conf"  # the repository host's side
DB_PGBACKREST = "PGPASSFILE=/etc/agentdb/secrets/pgbackrest.pgpass pgbackrest --config=/etc/agentdb/pgbackrest.conf"


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
    assert uid_line.split()[1] == str(REPO_UID if service in REPO_SIDE else SERVICE_UID)


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
    assert f.exists and f.mode == mode and f.uid == (REPO_UID if service in REPO_SIDE else SERVICE_UID)


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


def volume_dir(docker_stack, key: str) -> Path:
    """Where a declared volume's files are on this host (dockerd's local driver)."""
    name = next(
        r.inputs["name"]
        for r in docker_stack.deployment.resources
        if r.type == "docker:index/volume:Volume" and r.inputs["name"].endswith(f"-{key}-data")
    )
    return Path(dockerstack.docker("volume", "inspect", "-f", "{{.Mountpoint}}", name).stdout.decode().strip())


def mounts(docker_stack, service: str) -> dict[str, str]:
    """A running container's volumes: volume name -> path inside it."""
    return {m["Name"]: m["Destination"] for m in dockerstack_inspect(docker_stack.container(service))["Mounts"]}


@pytest.fixture(scope="module")
def full_backup(docker_stack) -> dict:
    """What the schedule runs at 01:00 UTC on Sundays, run now in backup-scheduler: the repository host's
    pgBackRest reads the data directory through pgbackrest-db (TLS) and writes into its own volume."""
    h = host(docker_stack, "backup-scheduler")
    start = time.monotonic()
    result = h.run(f"{REPO_PGBACKREST} {STANZA} backup --type=full --log-level-console=warn")
    assert result.rc == 0, result.stdout + result.stderr
    print(f"\n[docker-conformance] full backup on the repository host in {time.monotonic() - start:.1f}s")
    (info,) = json.loads(h.check_output(f"{REPO_PGBACKREST} {STANZA} info --output=json"))
    assert info["status"]["code"] == 0, info["status"]
    return info["backup"][-1]


def test_the_repository_host_is_its_own_container_with_its_own_volume(docker_stack):
    repo = f"agentdb-{docker_stack.deployment.stack}-pgbackrest-repo-data"
    assert mounts(docker_stack, "pgbackrest-repo") == {repo: "/var/lib/pgbackrest/repo"}
    # Only the repository host's side (its server and the backup schedule) has the repository.
    having = {service for service in SERVICES if repo in mounts(docker_stack, service)}
    assert having == {"pgbackrest-repo", "backup-scheduler"}


def test_wal_is_archived_over_tls_into_the_repository_host(docker_stack):
    # `check` switches WAL and waits until PostgreSQL's archive_command (in the postgres container) has pushed
    # the segment to the repository host, which stores it under its own repo1-path.
    result = host(docker_stack, "pgbackrest-db").run(f"{DB_PGBACKREST} {STANZA} check --log-level-console=info")
    assert result.rc == 0, result.stdout + result.stderr
    archived = re.search(
        r"WAL segment (\w+) successfully archived to '/var/lib/pgbackrest/repo/[^']+' on repo1", result.stdout
    )
    assert archived, result.stdout
    segment = archived.group(1)
    stored = list((volume_dir(docker_stack, "pgbackrest-repo") / "archive").glob(f"*/*/{segment[:16]}/{segment}-*"))
    assert stored, f"{segment} is not in the repository volume"
    print(f"\n[docker-conformance] {segment} archived over TLS: {stored[0].name}")


def test_a_backup_lands_in_the_repository_volume_and_not_in_postgresqls(docker_stack, full_backup):
    label = full_backup["label"]
    assert full_backup["type"] == "full"
    assert (volume_dir(docker_stack, "pgbackrest-repo") / "backup" / render.PGBACKREST_STANZA / label).is_dir()
    for key in ("postgres", "postgres-run"):
        assert not list(volume_dir(docker_stack, key).rglob("backup.manifest*")), f"a backup in {key}'s volume"
        assert not list(volume_dir(docker_stack, key).rglob("archive.info*")), f"a repository in {key}'s volume"


def test_the_repository_is_ciphertext_with_the_passphrase_only_on_the_repository_side(docker_stack, full_backup):
    assert docker_stack.deployment.settings.backup_encryption
    root = volume_dir(docker_stack, "pgbackrest-repo")
    stanza = render.PGBACKREST_STANZA
    files = [
        root / "backup" / stanza / "backup.info",
        root / "archive" / stanza / "archive.info",
        root / "backup" / stanza / full_backup["label"] / "backup.manifest",
        *sorted((root / "archive" / stanza).glob("*/*/0*"))[:3],  # WAL segments
        *sorted((root / "backup" / stanza / full_backup["label"]).rglob("PG_VERSION*")),
    ]
    assert len(files) >= 5
    for path in files:
        assert path.read_bytes()[:8] == b"Salted__", f"{path} is not encrypted"
    passphrase = docker_stack.deployment.passwords()[sec.PGBACKREST_CIPHER].encode()
    for service in SERVICES:
        etc = dockerstack.docker("cp", f"{docker_stack.container(service)}:/etc/agentdb", "-").stdout
        assert passphrase not in etc, f"{service} has the repository's passphrase"
        logs = dockerstack.docker("logs", docker_stack.container(service))
        assert passphrase not in logs.stdout + logs.stderr, f"{service} logged the repository's passphrase"
    repo = dockerstack.docker(
        "cp", f"{docker_stack.container('pgbackrest-repo')}:/var/lib/pgbackrest/pgbackrest.conf", "-"
    )
    assert passphrase in repo.stdout


def prometheus_value(docker_stack, query: str) -> float | None:
    s = docker_stack.deployment.settings
    url = f"http://{s.bind_address}:{s.prometheus_port}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    with urllib.request.urlopen(url, timeout=5) as resp:
        result = json.load(resp)["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def test_the_restore_drill_runs_in_backup_checks_and_prometheus_scrapes_its_result(docker_stack, full_backup):
    # What the schedule runs every backupDrillIntervalDays at 03:00 UTC, run now with the container's own
    # arguments: restore the latest backup from the repository host, start it with PostgreSQL 17, check it.
    command = docker_stack.service("backup-checks").inputs["command"]
    start = time.monotonic()
    result = dockerstack.docker("exec", docker_stack.container("backup-checks"), *command, "--once=drill", check=False)
    output = (result.stdout + result.stderr).decode()
    print(f"\n[docker-conformance] drill in {time.monotonic() - start:.1f}s:\n{output[-1500:]}")
    assert result.returncode == 0, output
    assert f"drill: restored backup {full_backup['label']}" in output
    deadline = time.monotonic() + 60
    while prometheus_value(docker_stack, "agentdb_backup_drill_last_ok") != 1 and time.monotonic() < deadline:
        time.sleep(1)
    assert prometheus_value(docker_stack, "agentdb_backup_drill_last_ok") == 1
    assert prometheus_value(docker_stack, "agentdb_backup_drill_enabled") == 1
    assert prometheus_value(docker_stack, "agentdb_backup_drill_last_duration_seconds") > 0
    assert prometheus_value(docker_stack, "agentdb_backup_repository_up") == 1
