"""pgAdmin 4, the operator's database UI (agentdb:tools): its files, its login, and its launcher.

pgAdmin pins its own psycopg (and Flask, SQLAlchemy ranges) apart from agentdb's, so it lives in a
virtualenv of its own (infra.tools.ensure_pgadmin), never in agentdb's. It runs in server mode under
gunicorn as the service user. Its configuration is one rendered file that pgAdmin loads through its
own `CONFIG_DISTRO_FILE_PATH` hook; every enabled database is registered as one server, through
PgBouncer, as the database's readonly role, whose password pgAdmin reads from a 0600 pgpass file.

What supervisord and the container run is infra/pgadmin_launcher.py (standard library only, so the
pgadmin image needs nothing of agentdb's but that file).
"""

from __future__ import annotations

import json
from pathlib import Path

from infra import credentials as sec
from infra.render import Layout, RenderedFile
from infra.settings import Settings

LOGIN, PASSWORD = sec.PGADMIN_LOGIN, sec.PGADMIN_PASSWORD  # secret files
SERVER_GROUP = "agentdb"
CONFIG = "pgadmin/config_distro.py"
SERVERS = "pgadmin/servers.json"
PGPASS = "pgadmin/pgpass"
MODES = {CONFIG: 0o644, SERVERS: 0o644, PGPASS: 0o600}  # the pgpass carries the readonly passwords
# Relative to the login's storage directory: in server mode pgAdmin resolves PassFile there.
PASSFILE = "/pgpass"


def data_dir(layout: Layout) -> str:
    """pgAdmin's data directory: beside the other services' data (`.stack/<stack>/data/pgadmin`)."""
    return str(Path(layout.redis_data).parent / "pgadmin")


def servers(settings: Settings, layout: Layout) -> dict:
    """servers.json: one server per enabled database, through PgBouncer, as its readonly role."""
    return {
        "Servers": {
            str(i): {
                "Name": db.name,
                "Group": SERVER_GROUP,
                "Host": layout.pgbouncer_host,
                "Port": settings.pgbouncer_port,
                "MaintenanceDB": db.name,
                "Username": db.readonly_role,
                # PgBouncer serves each pool under its database's name only.
                "DBRestriction": db.name,
                "SSLMode": "require" if settings.tls else "prefer",
                "PassFile": PASSFILE,
                "Comment": f"{db.key} through PgBouncer as {db.readonly_role} (read-only)",
            }
            for i, db in enumerate(settings.enabled, start=1)
        }
    }


def files(settings: Settings, secrets: dict[str, str], layout: Layout) -> dict[str, RenderedFile]:
    """pgAdmin's rendered files under etc/: its configuration, servers.json, and the pgpass (0600)."""
    data = data_dir(layout)
    config = "\n".join(
        [
            "# Rendered by agentdb from infra/pgadmin.py; pgAdmin loads it through CONFIG_DISTRO_FILE_PATH.",
            "SERVER_MODE = True",
            f"DATA_DIR = {data!r}  # the log, SQLite database, sessions and storage go under it",
            f"DEFAULT_SERVER = {layout.listen!r}",
            f"DEFAULT_SERVER_PORT = {settings.pgadmin_port}",
            "UPGRADE_CHECK_ENABLED = False  # no outbound network from a database host",
            "SHOW_GRAVATAR_IMAGE = False",
            "CONSOLE_LOG_LEVEL = 30  # WARNING: logins and queries stay out of the service log",
            "FILE_LOG_LEVEL = 30",
            # pgAdmin's defaults for the shipped config_distro.py, which this file replaces.
            "HELP_PATH = '../../docs/en_US/_build/html/'",
            "MINIFY_HTML = False",
            "",
        ]
    )
    pgpass = "".join(
        f"{layout.pgbouncer_host}:{settings.pgbouncer_port}:{db.name}:{db.readonly_role}:{secrets[db.readonly_role]}\n"
        for db in settings.enabled
    )
    return {
        CONFIG: RenderedFile(config, MODES[CONFIG]),
        SERVERS: RenderedFile(json.dumps(servers(settings, layout), indent=2, sort_keys=True) + "\n", MODES[SERVERS]),
        PGPASS: RenderedFile(pgpass, MODES[PGPASS]),
    }


def launcher_args(etc: str, secrets: str, layout: Layout, listen: str, venv: str) -> list[str]:
    """The launcher's arguments, the same in both realizations (paths differ by layout)."""
    return [
        "--config",
        f"{etc}/{CONFIG}",
        "--servers",
        f"{etc}/{SERVERS}",
        "--pgpass",
        f"{etc}/{PGPASS}",
        "--login-file",
        f"{secrets}/{LOGIN}",
        "--password-file",
        f"{secrets}/{PASSWORD}",
        "--data",
        data_dir(layout),
        "--listen",
        listen,
        "--venv",
        venv,
    ]
