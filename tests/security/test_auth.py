"""Authentication on the session stack: SCRAM-SHA-256 for every role, no trust/md5/password anywhere."""

from __future__ import annotations

from urllib.parse import quote

import psycopg
import pytest

from infra import credentials as sec

WEAK_METHODS = {"trust", "md5", "password", "ident", "peer", "reject"}


def test_password_encryption_is_scram(stack):
    assert stack.psql(None, "SHOW password_encryption").strip() == "scram-sha-256"


def test_every_stored_password_is_a_scram_verifier(stack):
    rows = stack.psql(None, "SELECT rolname, coalesce(left(rolpassword, 14), '') FROM pg_authid").splitlines()
    roles = dict(line.split("|", 1) for line in rows)
    assert roles[sec.SUPERUSER] == "SCRAM-SHA-256$"
    for role, prefix in roles.items():
        assert prefix in {"", "SCRAM-SHA-256$"}, f"{role} stores a {prefix or 'non-SCRAM'} password"


@pytest.mark.parametrize("kind", ["app_role", "readonly_role"])
def test_every_login_role_with_a_secret_has_a_verifier(stack, kind):
    for db in stack.settings.enabled:
        role = getattr(db, kind)
        got = stack.psql(None, f"SELECT left(rolpassword, 14) FROM pg_authid WHERE rolname = '{role}'").strip()
        assert got == "SCRAM-SHA-256$", role


def test_running_pg_hba_has_only_scram_rules(stack):
    rows = stack.psql(None, "SELECT type, auth_method, coalesce(error, '') FROM pg_hba_file_rules").splitlines()
    assert rows, "pg_hba_file_rules is empty"
    for row in rows:
        kind, method, error = row.split("|")
        assert error == "", row
        assert method == "scram-sha-256", f"{kind} rule uses {method}"
        assert method not in WEAK_METHODS


def test_pgbouncer_authenticates_with_scram(stack):
    secrets = stack.local.secrets()
    s = stack.settings
    url = (
        f"postgresql://{sec.PGBOUNCER_ADMIN}:{quote(secrets[sec.PGBOUNCER_ADMIN], safe='')}"
        f"@{s.bind_address}:{s.pgbouncer_port}/pgbouncer"
    )
    with psycopg.connect(url, autocommit=True) as conn:
        result = conn.pgconn.exec_(b"SHOW CONFIG")
        config = {
            result.get_value(i, 0).decode(): (result.get_value(i, 1) or b"").decode() for i in range(result.ntuples)
        }
    assert config["auth_type"] == "scram-sha-256"


@pytest.mark.parametrize("via", ["postgres", "pgbouncer"])
def test_a_wrong_password_is_refused_over_tcp(stack, via):
    db = stack.settings.enabled[0]
    good = stack.dsn(db.key, "app", via)
    user = db.app_role
    bad = good.replace(f"{user}:{quote(stack.local.secrets()[user], safe='')}@", f"{user}:wrong@")
    assert bad != good
    with pytest.raises(psycopg.OperationalError, match="authentication failed"):
        psycopg.connect(bad, connect_timeout=5)


def test_the_passwordless_owner_cannot_log_in_over_tcp(stack):
    db = stack.settings.enabled[0]
    s = stack.settings
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(f"postgresql://{db.owner}@{s.bind_address}:{s.postgres_port}/{db.name}", connect_timeout=5)
