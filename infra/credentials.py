"""Generated secrets: strong random passwords in files of mode 0600, and the hashes that configs carry.

Rendered configuration never holds a password: PostgreSQL and PgBouncer get SCRAM-SHA-256 verifiers,
Redis gets SHA-256 ACL hashes. The verifier salt is derived from the role and password, so rendering
is deterministic and PgBouncer's verifier equals the server's (needed for SCRAM pass-through).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets as _random
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from infra.settings import Settings

PASSWORD_BYTES = 32  # 256 bits, URL-safe base64: no quoting trouble in URLs, ini files or shells
SCRAM_ITERATIONS = 4096

SUPERUSER = "postgres"
MONITOR_ROLE = "agentdb_monitor"
PGBOUNCER_ADMIN = "pgbouncer_admin"
PGBOUNCER_STATS = "pgbouncer_stats"
REDIS_APP_USER = "agentdb_app"
REDIS_EXPORTER_USER = "agentdb_exporter"
GRAFANA_ADMIN = "admin"
REPLICATION_USER = "replicator"  # cluster only: Patroni creates it, replicas stream as it
PATRONI_REST_USER = "patroni"  # cluster only: guards Patroni's switchover, failover and restart endpoints
PGADMIN_LOGIN = "pgadmin_login"  # agentdb:tools only: pgAdmin's admin login, an email address
PGADMIN_PASSWORD = "pgadmin"  # agentdb:tools only: its password
PGBACKREST_CIPHER = "pgbackrest_cipher"  # agentdb:backupEncryption only: the repository's passphrase
PGADMIN_LOGIN_DOMAIN = "agentdb.example.com"  # a domain pgAdmin's email check accepts; no mail is sent


def secret_names(settings: Settings) -> list[str]:
    """Every secret a stack needs, by file name."""
    names = [
        SUPERUSER,
        MONITOR_ROLE,
        PGBOUNCER_ADMIN,
        PGBOUNCER_STATS,
        "redis_app",
        "redis_exporter",
        "grafana",
    ]
    for db in settings.enabled:
        names += [db.app_role, db.readonly_role]
    if settings.replicas > 0:
        names += [REPLICATION_USER, PATRONI_REST_USER]
    if settings.tools:
        names += [PGADMIN_LOGIN, PGADMIN_PASSWORD]
    if settings.backup_encryption:
        names.append(PGBACKREST_CIPHER)
    return names


def generate_password() -> str:
    return _random.token_urlsafe(PASSWORD_BYTES)


def generate_login() -> str:
    """A fresh pgAdmin admin login: pgAdmin names its users by email address."""
    return f"admin-{_random.token_hex(4)}@{PGADMIN_LOGIN_DOMAIN}"


def ensure(secrets_dir: Path, settings: Settings, owner: tuple[int, int] | None = None) -> dict[str, str]:
    """Create missing secrets (mode 0600, owned by `owner` uid/gid when given) and return them all."""
    secrets_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(secrets_dir, 0o700)
    if owner:
        os.chown(secrets_dir, *owner)
    values: dict[str, str] = {}
    for name in secret_names(settings):
        path = secrets_dir / name
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(generate_login() if name == PGADMIN_LOGIN else generate_password())
        if owner:
            os.chown(path, *owner)
        os.chmod(path, 0o600)
        values[name] = path.read_text().strip()
    return values


def load(secrets_dir: Path) -> dict[str, str]:
    """Read the existing secrets (for `env`, tests and the CLI)."""
    if not secrets_dir.is_dir():
        return {}
    return {
        path.name: path.read_text().strip()
        for path in sorted(secrets_dir.iterdir())
        if path.is_file() and path.suffix not in {".crt", ".key"}
    }


def scram_sha256(role: str, password: str, iterations: int = SCRAM_ITERATIONS) -> str:
    """A PostgreSQL SCRAM-SHA-256 verifier (RFC 5802/7677), salt derived from role and password."""
    salt = hashlib.sha256(f"agentdb:{role}:{password}".encode()).digest()[:16]
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def redis_acl_hash(password: str) -> str:
    """The `#<hex>` form Redis ACL files take instead of a plain password."""
    return "#" + hashlib.sha256(password.encode()).hexdigest()


def without_password(dsn: str) -> tuple[str, dict[str, str]]:
    """A libpq URL for a command line, and the environment for the command: the password moves to PGPASSWORD.

    Any user on the machine can read another process's command line (ps); only its owner and root can
    read its environment.
    """
    url = urlsplit(dsn)
    env = dict(os.environ)
    if url.password is None:
        return dsn, env
    env["PGPASSWORD"] = unquote(url.password)
    netloc = f"{url.username}@{url.hostname}" + (f":{url.port}" if url.port else "")
    return urlunsplit(url._replace(netloc=netloc)), env
