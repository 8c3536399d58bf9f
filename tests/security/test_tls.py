"""TLS on a dedicated stack that sets agentdb:tls: PostgreSQL and PgBouncer take TLS clients only,
with a certificate generated at `up`; the staging and prod stack files turn it on."""

from __future__ import annotations

import psycopg
import pytest

from infra.settings import load
from tests.conftest import dedicated_stack

KEY = "qlearning"


@pytest.fixture(scope="module")
def tls_stack():
    with dedicated_stack("agentdb-tls-", {"agentdb:tls": True, "agentdb:databases": [KEY]}) as ts:
        yield ts


@pytest.mark.parametrize("stack_name", ["staging", "prod"])
def test_staging_and_prod_turn_tls_on(stack_name):
    assert load(stack_name).tls is True


def test_the_certificate_is_generated_at_up(tls_stack):
    assert "generating a self-signed TLS certificate" in tls_stack.up_output
    for name in ("server.crt", "server.key"):
        path = tls_stack.state_dir / "secrets" / name
        assert path.is_file(), path
        assert path.stat().st_mode & 0o777 == 0o600, f"{path} is {oct(path.stat().st_mode & 0o777)}"
    assert (tls_stack.state_dir / "secrets" / "server.crt").read_text().startswith("-----BEGIN CERTIFICATE-----")


@pytest.mark.parametrize("via", ["postgres", "pgbouncer"])
def test_client_connections_use_tls(tls_stack, via):
    with psycopg.connect(tls_stack.dsn(KEY, "app", via) + "?sslmode=require") as conn:
        assert conn.pgconn.ssl_in_use
        # Through PgBouncer this is the server connection, which PgBouncer also opens with TLS.
        row = conn.execute("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()
        assert row[0] is True
        assert row[1] in {"TLSv1.2", "TLSv1.3"}


@pytest.mark.parametrize("via", ["postgres", "pgbouncer"])
def test_plain_tcp_connections_are_refused(tls_stack, via):
    with pytest.raises(psycopg.OperationalError, match="(?i)no encryption|SSL required|ssl"):
        psycopg.connect(tls_stack.dsn(KEY, "app", via) + "?sslmode=disable", connect_timeout=5)


def test_every_running_pg_hba_host_rule_requires_tls(tls_stack):
    rows = tls_stack.psql(None, "SELECT type FROM pg_hba_file_rules WHERE type <> 'local'").split()
    assert rows and set(rows) == {"hostssl"}, rows
