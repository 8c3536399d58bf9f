"""A PostgreSQL agentdb does not run, and an external stack against it.

The server is the host's PostgreSQL 15 with its own data directory and free port, started here as a
provider would run it: TLS on, SCRAM, and an admin role with only CREATEROLE and CREATEDB (no
superuser), neither pg_cron nor pg_partman in shared_preload_libraries. The superuser stays the
harness's, as the provider's stays the provider's. The stack is started through the real `agentdb up`
with the admin's password in AGENTDB_POSTGRES_ADMIN_PASSWORD, as the local runner takes it.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from infra import external
from loadtests.stack import free_ports
from tests.conftest import TestStack, dedicated_stack, make_state_dir

BINDIR = Path("/usr/lib/postgresql/15/bin")
SERVICE_USER = "agentdb"  # PostgreSQL refuses to run as root
ADMIN = "agentdb_admin"
# What the bare server's admin cannot have: the extensions a superuser must create, and pg_cron.
BARE_DOWNGRADES = ("pg_cron", "pg_partman", "pg_stat_statements", "vector")
# Every database: without pg_partman, orchestrator and agentic make their partitions with their own function.
BARE_DATABASES = ["qlearning", "afs", "orchestrator", "agentic"]


@dataclass
class Server:
    """A running PostgreSQL of the harness: its port, its superuser's URL, the admin's password."""

    host: str
    port: int
    superuser_password: str
    admin_password: str

    __test__ = False

    def superuser_dsn(self, dbname: str = "postgres") -> str:
        return f"postgresql://provider:{self.superuser_password}@{self.host}:{self.port}/{dbname}?sslmode=require"

    def execute(self, statement: str, dbname: str = "postgres") -> list[tuple]:
        """Run one statement as the provider's superuser; the rows it returns."""
        with psycopg.connect(self.superuser_dsn(dbname), autocommit=True) as conn:
            cur = conn.execute(statement)
            return cur.fetchall() if cur.description else []


def _as_service_user(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(["runuser", "-u", SERVICE_USER, "--", *cmd], capture_output=True, text=True, check=True)


@contextmanager
def running_server(preload: str = "", admin_password: str | None = None) -> Iterator[Server]:
    """A PostgreSQL 15 of its own with an admin that has only CREATEROLE and CREATEDB; `preload` its libraries."""
    try:
        pwd.getpwnam(SERVICE_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SERVICE_USER])
    root = make_state_dir("agentdb-external-")
    os.chown(root, pwd.getpwnam(SERVICE_USER).pw_uid, pwd.getpwnam(SERVICE_USER).pw_gid)
    data, pwfile = root / "data", root / "pwfile"
    admin_password = admin_password or secrets.token_urlsafe(24)
    srv = Server("127.0.0.1", free_ports(1)[0], secrets.token_urlsafe(24), admin_password)
    pwfile.write_text(srv.superuser_password)
    shutil.chown(pwfile, SERVICE_USER)
    _as_service_user(
        str(BINDIR / "initdb"), "-D", str(data), "-U", "provider", f"--pwfile={pwfile}", "--auth=scram-sha-256",
        "--encoding=UTF8", "--locale=C.UTF-8",
    )  # fmt: skip
    pwfile.unlink()
    # A provider's server takes TLS; a self-signed certificate is enough for sslmode=require.
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=external",
         "-keyout", str(data / "server.key"), "-out", str(data / "server.crt")],
        capture_output=True, check=True,
    )  # fmt: skip
    for name in ("server.key", "server.crt"):
        shutil.chown(data / name, SERVICE_USER)
        (data / name).chmod(0o600)
    with (data / "postgresql.conf").open("a") as conf:
        conf.write(
            f"listen_addresses = '{srv.host}'\nport = {srv.port}\nssl = on\nunix_socket_directories = '{root}'\n"
            "max_connections = 60\nshared_buffers = 64MB\n"
            f"shared_preload_libraries = '{preload}'\ncron.database_name = 'postgres'\n"
            # Jobs run in background workers, as on the providers: no password for pg_cron to keep.
            "cron.use_background_workers = on\nmax_worker_processes = 16\n"
        )
    _as_service_user(str(BINDIR / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"), "-w", "start")
    try:
        srv.execute(f"CREATE ROLE {ADMIN} LOGIN CREATEROLE CREATEDB PASSWORD '{srv.admin_password}'")
        yield srv
    finally:
        subprocess.run(
            ["runuser", "-u", SERVICE_USER, "--", str(BINDIR / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"],
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    """The bare external server: no superuser for agentdb, no pg_cron, no pg_partman preloaded."""
    with running_server() as srv:
        yield srv


def stack_config(srv: Server, **extra) -> dict:
    """The stack file's keys for an external stack on `srv`."""
    return {
        "agentdb:postgresMode": "external",
        "agentdb:postgresHost": srv.host,
        "agentdb:postgresPort": srv.port,
        "agentdb:postgresAdminUser": ADMIN,
        "agentdb:postgresSslMode": "require",
        "agentdb:databases": BARE_DATABASES,
        **extra,
    }


@pytest.fixture(scope="session")
def admin_password_env(server: Server) -> Iterator[None]:
    """The admin's password where the local runner reads it, for the CLI and this process alike."""
    before = os.environ.get(external.PASSWORD_ENV)
    os.environ[external.PASSWORD_ENV] = server.admin_password
    yield
    if before is None:
        os.environ.pop(external.PASSWORD_ENV, None)
    else:
        os.environ[external.PASSWORD_ENV] = before


@pytest.fixture(scope="session")
def ext_stack(server: Server, admin_password_env) -> Iterator[TestStack]:
    """An external stack on the bare server, up through the real `agentdb up`."""
    with dedicated_stack("agentdb-ext-stack-", stack_config(server)) as ts:
        yield ts


@pytest.fixture(scope="session")
def cron_server(server: Server) -> Iterator[Server]:
    """The second variant: pg_cron preloaded and created by the provider, its functions granted to the admin.

    What RDS's rds_superuser and Cloud SQL's cloudsqlsuperuser hold for pg_cron: USAGE on schema cron
    and EXECUTE on its functions, and CREATE in the `postgres` database. The admin's password is the bare
    server's, so one environment serves both.
    """
    with running_server("pg_cron", server.admin_password) as srv:
        srv.execute("CREATE EXTENSION pg_cron")
        srv.execute(f"GRANT USAGE ON SCHEMA cron TO {ADMIN}")
        srv.execute(f"GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA cron TO {ADMIN}")
        # As the master user of RDS owns its `postgres` database: the monitoring views of pg_cron go there.
        srv.execute(f"GRANT CREATE ON DATABASE postgres TO {ADMIN}")
        yield srv


@pytest.fixture(scope="session")
def cron_stack(cron_server: Server, admin_password_env) -> Iterator[TestStack]:
    """An external stack on the server with pg_cron."""
    with dedicated_stack("agentdb-ext-cron-", stack_config(cron_server)) as ts:
        yield ts
