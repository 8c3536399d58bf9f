"""The local runner: the stack as native processes under supervisord, state in `.stack/<stack>/`.

It renders the same files as the Pulumi program (infra.render), starts PostgreSQL, PgBouncer, Redis,
Prometheus, Alertmanager, a webhook receiver and the three exporters, waits until each is healthy,
then runs the platform baseline (infra.baseline). Started as root, every service runs as the
unprivileged user `agentdb`.
"""

from __future__ import annotations

import os
import pwd
import shlex
import shutil
import socket
import stat
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import jinja2

from infra import credentials as sec
from infra import external, pgadmin, render, report, repository, scheduler, tools
from infra import topology as topo
from infra.databases import DATABASES, REPO_ROOT, Database
from infra.settings import Settings

SERVICE_USER = "agentdb"
# Units that run as the pgBackRest repository host's own user, not as SERVICE_USER.
REPO_HOST_KINDS = {"pgbackrest_repo", "backup_scheduler"}
STATE_ROOT = REPO_ROOT / ".stack"
HEALTH_TIMEOUT_S = 60
SUPERVISORD = Path(sys.executable).with_name("supervisord")
SUPERVISORCTL = Path(sys.executable).with_name("supervisorctl")

Progress = Callable[[str], None]


class StackError(RuntimeError):
    """Something stopped `up`: the message names the service and what to do."""


@dataclass
class Service:
    name: str
    port: int
    command: str
    priority: int
    health: Callable[[], None]  # raises while not healthy
    stopsignal: str = "TERM"
    environment: str = ""
    scheme: str = "tcp"
    autostart: bool = True  # False: `up` starts it once the baseline is applied
    user: str = ""  # its own system user; empty: the stack's service user


@dataclass
class ServiceStatus:
    name: str
    address: str
    state: str
    health: str


def _is_root() -> bool:
    return os.geteuid() == 0


def _chown_tree(root: Path, owner: tuple[int, int], live: Path, skip: tuple[Path, ...] = ()) -> None:
    """Give `root` and everything under it to `owner`, safely while the services are running.

    Under `live` (the services' data directories) a directory that `owner` already owns was made
    by a service, and so was everything in it: the walk does not descend there. That keeps a
    second `up` from walking a running PostgreSQL data directory, where files such as
    pg_internal.init come and go. Files that vanish during the walk are skipped, and so is `skip`
    (directories that belong to another user, such as the pgBackRest repository host's).
    """
    if root in skip:
        return
    try:
        st = root.lstat()
        if stat.S_ISLNK(st.st_mode):
            return
        if (st.st_uid, st.st_gid) != owner:
            os.chown(root, *owner)
        elif root.is_relative_to(live) and root != live:
            return
        children = list(root.iterdir()) if stat.S_ISDIR(st.st_mode) else []
    except FileNotFoundError:
        return
    for child in children:
        _chown_tree(child, owner, live, skip)


class LocalStack:
    """One stack's state directory and the processes that run from it."""

    def __init__(self, name: str, settings: Settings, state_dir: Path | None = None, pg_bindir: Path | None = None):
        """`pg_bindir` picks a PostgreSQL installation; by default the host's (tools.postgres_bindir)."""
        self.name = name
        self.settings = settings
        self.state_dir = (state_dir or STATE_ROOT / name).resolve()
        self.etc = self.state_dir / "etc"
        self.run_dir = self.state_dir / "run"
        self.logs = self.state_dir / "logs"
        self.secrets_dir = self.state_dir / "secrets"
        self.data = self.state_dir / "data"
        self.supervisord_conf = self.etc / "supervisord.conf"
        self._pg_bindir: Path | None = Path(pg_bindir) if pg_bindir else None

    # ----- facts -------------------------------------------------------------------------------
    @property
    def pg_bindir(self) -> Path:
        if self._pg_bindir is None:
            self._pg_bindir = tools.postgres_bindir()
        return self._pg_bindir

    @property
    def pg_major(self) -> int:
        return tools.postgres_major(self.pg_bindir)

    @property
    def layout(self) -> render.Layout:
        return render.Layout.local(self.state_dir, self.settings, self.pg_major)

    def secrets(self) -> dict[str, str]:
        return sec.load(self.secrets_dir)

    def _owner(self) -> tuple[int, int] | None:
        if not _is_root():
            return None
        entry = pwd.getpwnam(SERVICE_USER)
        return entry.pw_uid, entry.pw_gid

    # ----- connection strings ------------------------------------------------------------------
    def dsn(
        self, db: Database | str | None, role: str = "admin", via: str = "postgres", port: int | None = None
    ) -> str:
        """libpq URL: role admin (superuser, PostgreSQL only), app or readonly; via postgres or pgbouncer.

        `db` is a Database, a database key, or None for the `postgres` database. Via postgres is the
        primary (HAProxy's read-write port in a cluster) unless `port` names a node's own port; via
        replica is PgBouncer's `<dbname>_replica` pool, which HAProxy routes to the replicas.
        """
        if isinstance(db, str):
            db = DATABASES[db]
        s = self.settings
        secrets = self.secrets()
        if via == "replica" and not self.topology.clustered:
            raise ValueError("a stack without replicas (agentdb:replicas: 0) has no replica pool")
        if self.topology.external and via == "postgres":
            # The provider's server: the admin from the settings, its password from the environment.
            if role == "admin":
                return external.dsn(s, s.postgres_admin_user, external.admin_password(), db.name if db else "postgres")
            if db is None:
                raise ValueError(f"role {role!r} needs a database")
            user = {"app": db.app_role, "readonly": db.readonly_role}[role]
            return external.dsn(s, user, secrets[user], db.name)
        if role == "admin":
            if via != "postgres":
                raise ValueError("the superuser connects to PostgreSQL directly, not through PgBouncer")
            user = sec.SUPERUSER
        elif db is None:
            raise ValueError(f"role {role!r} needs a database")
        else:
            user = {"app": db.app_role, "readonly": db.readonly_role}[role]
        port = (port or self.topology.primary_port) if via == "postgres" else s.pgbouncer_port
        dbname = db.name if db else "postgres"
        if via == "replica":
            dbname += "_replica"
        password = quote(secrets[user], safe="")
        return f"postgresql://{user}:{password}@{s.bind_address}:{port}/{dbname}"

    def psql(self, db: Database | str | None, query: str, *args: str) -> str:
        """Run psql as the superuser against `db` and return its stdout (raises on error)."""
        url, env = sec.without_password(self.dsn(db))
        result = subprocess.run(
            [str(self.pg_bindir / "psql"), "-X", "-v", "ON_ERROR_STOP=1", "-qAt", "-c", query, *args, url],
            capture_output=True,
            text=True,
            env=env,
        )
        if result.returncode != 0:
            raise StackError(f"psql: {result.stderr.strip()}")
        return result.stdout

    def env(self) -> dict[str, str]:
        """The application's connection settings, as environment variables."""
        s = self.settings
        secrets = self.secrets()
        out: dict[str, str] = {}
        for db in s.enabled:
            prefix = db.key.upper()
            out[f"{prefix}_DATABASE_URL"] = self.dsn(db, "app", "pgbouncer")
            out[f"{prefix}_READONLY_DATABASE_URL"] = self.dsn(db, "readonly", "pgbouncer")
            if self.topology.clustered:
                out[f"{prefix}_REPLICA_DATABASE_URL"] = self.dsn(db, "readonly", "replica")
        redis_pw = quote(secrets["redis_app"], safe="")
        out["REDIS_URL"] = f"redis://{sec.REDIS_APP_USER}:{redis_pw}@{s.bind_address}:{s.redis_port}/0"
        out["PROMETHEUS_URL"] = f"http://{s.bind_address}:{s.prometheus_port}"
        out["ALERTMANAGER_URL"] = f"http://{s.bind_address}:{s.alertmanager_port}"
        if s.tools:
            out["PGADMIN_URL"] = f"http://{s.bind_address}:{s.pgadmin_port}"
            out["PGADMIN_EMAIL"] = secrets[sec.PGADMIN_LOGIN]
            out["PGADMIN_PASSWORD"] = secrets[sec.PGADMIN_PASSWORD]
        return out

    # ----- services ----------------------------------------------------------------------------
    @property
    def topology(self) -> topo.Topology:
        """What runs (infra/topology.py); the runner maps each unit to a supervisord program."""
        return topo.build(self.settings)

    def services(self) -> list[Service]:
        topology = self.topology
        return [
            Service(
                unit.name,
                unit.port,
                self._command(unit),
                10 * (topology.depth(unit.name) + 1),
                self._probe(unit.name, unit.health),
                stopsignal="INT" if unit.kind in {"postgres", "pgbouncer"} else "TERM",
                environment=self._environment(unit),
                scheme=_scheme(unit),
                autostart=not unit.after_baseline,
                user=repository.REPO_USER if _is_root() and unit.kind in REPO_HOST_KINDS else "",
            )
            for unit in topology.units
        ]

    def _probe(self, name: str, health: topo.Health) -> Callable[[], None]:
        """A check that raises while the unit is not healthy, from the topology's description."""
        s = self.settings
        host = s.bind_address

        def http() -> None:
            with urllib.request.urlopen(f"http://{host}:{health.port}{health.path}", timeout=2) as resp:
                if resp.status != 200:
                    raise StackError(f"HTTP {resp.status}")

        def postgres() -> None:
            import psycopg

            with psycopg.connect(self.dsn(None, port=health.port), connect_timeout=2) as conn:
                conn.execute("SELECT 1")

        def pgbouncer() -> None:
            import psycopg

            secrets = self.secrets()
            url = (
                f"postgresql://{sec.PGBOUNCER_ADMIN}:{quote(secrets[sec.PGBOUNCER_ADMIN], safe='')}"
                f"@{host}:{health.port}/pgbouncer"
            )
            with psycopg.connect(url, connect_timeout=2, autocommit=True) as conn:
                # The admin console speaks only the simple query protocol.
                result = conn.pgconn.exec_(b"SHOW VERSION")
                if result.status != psycopg.pq.ExecStatus.TUPLES_OK:
                    raise StackError("SHOW VERSION failed")

        def redis_ok() -> None:
            import redis

            client = redis.Redis(
                host=host,
                port=health.port,
                username=sec.REDIS_APP_USER,
                password=self.secrets()["redis_app"],
                socket_timeout=2,
            )
            try:
                client.ping()
            finally:
                client.close()

        def tcp() -> None:
            with socket.create_connection((host, health.port), timeout=2):
                pass

        def running() -> None:
            if self.process_states().get(name) != "RUNNING":
                raise StackError(f"{name} is not running")

        return {
            "http": http,
            "postgres": postgres,
            "pgbouncer": pgbouncer,
            "redis": redis_ok,
            "process": running,
            "tcp": tcp,
        }[health.kind]

    def _command(self, unit: topo.Unit) -> str:
        """The command line of one unit's program (no secrets: those stay in 0600 files)."""
        s, lay = self.settings, self.layout
        host = s.bind_address
        q = shlex.quote
        venv_bin = Path(sys.executable).parent
        if unit.kind == "postgres":
            return f"{self.pg_bindir / 'postgres'} -D {lay.postgres_data} -c config_file={self.etc / 'postgresql.conf'}"
        if unit.kind == "patroni":
            return f"{venv_bin / 'patroni'} {self.etc / unit.files[0]}"
        if unit.kind == "etcd":
            members = self.topology.members
            peers = ",".join(f"{m.name}=http://{host}:{m.port_of('peer')}" for m in members)
            client, peer = f"http://{host}:{unit.port_of('client')}", f"http://{host}:{unit.port_of('peer')}"
            return (
                f"{tools.binary('etcd')} --name {unit.name} --data-dir {self.data / unit.data}"
                f" --listen-client-urls {client} --advertise-client-urls {client}"
                f" --listen-peer-urls {peer} --initial-advertise-peer-urls {peer}"
                f" --initial-cluster {peers} --initial-cluster-token agentdb-{self.name}"
                " --initial-cluster-state new --logger zap --log-outputs stderr"
            )
        if unit.kind == "haproxy":
            return f"{tools.binary('haproxy')} -W -db -f {self.etc / 'haproxy.cfg'}"
        if unit.kind == "pgbouncer":
            return f"{tools.pgbouncer_binary()} {self.etc / 'pgbouncer.ini'}"
        if unit.kind == "redis":
            return f"{tools.binary('redis-server')} {self.etc / 'redis.conf'}"
        if unit.kind == "postgres_exporter":
            cmd = (
                f"{tools.binary('prometheus-postgres-exporter')} --web.listen-address={host}:{unit.port}"
                " --auto-discover-databases --exclude-databases=template0,template1"
            )
            if (render.CONFIG_DIR / "postgres_exporter_queries.yaml").exists():
                cmd += f" --extend.query-path={self.etc / 'postgres_exporter_queries.yaml'}"
            return cmd
        if unit.kind == "pgbouncer_exporter":
            return (
                f"{Path(sys.executable)} -m infra.exporters.pgbouncer --listen {host}:{unit.port}"
                f" --pgbouncer 'host={host} port={s.pgbouncer_port} dbname=pgbouncer user={sec.PGBOUNCER_STATS}'"
            )
        if unit.kind == "redis_exporter":
            return "/bin/sh -c " + q(
                f'REDIS_PASSWORD="$(cat {q(str(self.secrets_dir / "redis_exporter"))})" '
                f"exec {tools.binary('prometheus-redis-exporter')} -web.listen-address={host}:{unit.port}"
                f" -redis.addr=redis://{host}:{s.redis_port} -redis.user={sec.REDIS_EXPORTER_USER}"
            )
        if unit.kind == "webhook":
            return (
                f"{Path(sys.executable)} {REPO_ROOT / 'infra' / 'webhook.py'} --listen {host}:{unit.port}"
                f" --out {self.logs / 'alerts.jsonl'}"
            )
        if unit.kind == "alertmanager":
            return (
                f"{tools.binary('prometheus-alertmanager')} --config.file={self.etc / 'alertmanager.yml'}"
                f" --storage.path={lay.alertmanager_data} --web.listen-address={host}:{unit.port}"
                " --cluster.listen-address="
            )
        if unit.kind == "prometheus":
            return (
                f"{tools.binary('prometheus')} --config.file={self.etc / 'prometheus.yml'}"
                f" --storage.tsdb.path={lay.prometheus_data} --web.listen-address={host}:{unit.port}"
                " --web.enable-lifecycle"
            )
        if unit.kind == "pgadmin":
            # The launcher sets pgAdmin up, then execs gunicorn from pgAdmin's own virtualenv.
            args = pgadmin.launcher_args(
                str(self.etc), str(self.secrets_dir), lay, f"{host}:{unit.port}", str(tools.pgadmin_venv())
            )
            return shlex.join([str(Path(sys.executable)), "-m", "infra.pgadmin_launcher", *args])
        if unit.kind == "pgbackrest_repo":
            return f"{tools.binary('pgbackrest')} --config={repository.config_path(self)} server"
        if unit.kind == "pgbackrest_db":
            return f"{tools.binary('pgbackrest')} --config={self.etc / 'pgbackrest.conf'} server"
        schedule = f"{Path(sys.executable)} -m infra.backup_scheduler --stanza {render.PGBACKREST_STANZA}"
        if unit.kind == "backup_scheduler":
            # Backups run on the repository host (pgBackRest refuses them elsewhere), as its user, and so
            # does verify, which reads the repository as a whole (the database side has no passphrase).
            return (
                f"{schedule} --jobs backup,verify --config {repository.config_path(self)}"
                f" --pgpassfile {self.secrets_dir / 'pgbackrest.pgpass'} --status-dir {repository.status_dir(self)}"
            )
        if unit.kind == "backup_checks":
            from infra import drill

            # From the database side, through the TLS path archiving takes: the restore drill, and the
            # metrics (an unreachable repository host is seen as archiving sees it).
            return (
                f"{schedule} --jobs drill --config {self.etc / 'pgbackrest.conf'}"
                f" --pgpassfile {self.secrets_dir / 'pgbackrest.pgpass'}"
                f" --status-dir {drill.status_dir(self)} --metrics-listen {host}:{unit.port}"
                f" --verify-status-dir {repository.status_dir(self)}"
                f" --drill-every-days {self.settings.backup_drill_interval_days}"
                f" --bindir {self.pg_bindir} --scratch {self.data}"
            )
        if unit.kind == "scheduler":
            return (
                f"{Path(sys.executable)} -m infra.scheduler --config {self.etc / unit.files[0]}"
                f" --pgpassfile {self.secrets_dir / scheduler.PGPASS_FILE}"
            )
        raise StackError(f"the local runner has no program for units of kind {unit.kind!r} ({unit.name})")

    def _environment(self, unit: topo.Unit) -> str:
        s = self.settings
        if unit.kind == "postgres_exporter":
            # Its own PostgreSQL (a cluster node's, not HAProxy's): each node's metrics come from that node.
            if self.topology.external:
                data_source = f"{s.postgres_host}:{s.postgres_port}/postgres?sslmode={s.postgres_ssl_mode}"
            else:
                port = self.topology.unit(unit.target).port_of("postgres")
                data_source = f"{s.bind_address}:{port}/postgres?sslmode={'require' if s.tls else 'disable'}"
            return f'DATA_SOURCE_URI="{data_source}",DATA_SOURCE_USER="{sec.MONITOR_ROLE}",' + (
                f'DATA_SOURCE_PASS_FILE="{self.secrets_dir / sec.MONITOR_ROLE}"'
            )
        if unit.kind == "pgbouncer_exporter":
            return f'PGPASSFILE="{self.etc / "pgpass"}"'
        if unit.kind == "scheduler":
            # supervisord keeps root's HOME; libpq would then try root's ~/.postgresql client certificate
            # and fail on its permissions instead of connecting without one.
            return f'HOME="{self.run_dir}"'
        if unit.kind == "pgbackrest_db":
            # A backup's remote end connects to PostgreSQL as the superuser with this 0600 file.
            return f'PGPASSFILE="{self.secrets_dir / "pgbackrest.pgpass"}"'
        return ""

    # ----- supervisord -------------------------------------------------------------------------
    def _ctl(self, *args: str, check: bool = False) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(SUPERVISORCTL), "-c", str(self.supervisord_conf), *args],
            capture_output=True,
            text=True,
            check=check,
        )

    def supervisor_running(self) -> bool:
        if not (self.run_dir / "supervisor.sock").exists() or not self.supervisord_conf.exists():
            return False
        return self._ctl("pid").returncode == 0

    def process_states(self) -> dict[str, str]:
        """Service name -> supervisord state (RUNNING, STOPPED, FATAL, ...); empty when not running."""
        if not self.supervisor_running():
            return {}
        states = {}
        for line in self._ctl("status").stdout.splitlines():
            parts = line.split()
            if len(parts) >= 2:
                states[parts[0]] = parts[1]
        return states

    def _render_supervisord(self, services: list[Service]) -> str:
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(render.CONFIG_DIR)),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        return env.get_template("supervisord.conf.j2").render(
            services=services,
            layout=self.layout,
            state_dir=self.state_dir,
            stack=self.name,
            run_as_root=_is_root(),
            service_user=SERVICE_USER if _is_root() else "",
        )

    # ----- preparing the state directory -------------------------------------------------------
    def _ensure_service_user(self, progress: Progress) -> None:
        if not _is_root():
            return
        try:
            pwd.getpwnam(SERVICE_USER)
        except KeyError:
            progress(f"creating system user {SERVICE_USER}")
            subprocess.run(
                [
                    "useradd",
                    "--system",
                    "--no-create-home",
                    "--home-dir",
                    "/nonexistent",
                    "--shell",
                    "/usr/sbin/nologin",
                    SERVICE_USER,
                ],
                check=True,
                capture_output=True,
            )

    def _ensure_traversable(self, progress: Progress) -> None:
        """The service user must reach the state directory: add o+x to ancestors that lack it."""
        if not _is_root():
            return
        # The services also run the venv's python and files from the repository.
        parents = {*self.state_dir.parents, REPO_ROOT, *REPO_ROOT.parents, *Path(sys.base_prefix).parents}
        for parent in sorted(parents, key=lambda p: len(p.parts)):
            mode = parent.stat().st_mode
            if not mode & 0o001:
                progress(f"granting other users traverse (o+x) on {parent} so {SERVICE_USER} reaches the state")
                os.chmod(parent, mode | 0o001)

    def _prepare(self, progress: Progress) -> dict[str, str]:
        self._ensure_service_user(progress)
        owner = self._owner()
        for directory in (self.state_dir, self.etc, self.run_dir, self.logs, self.data):
            directory.mkdir(parents=True, exist_ok=True)
        lay = self.layout
        for directory in (lay.redis_data, lay.prometheus_data, lay.alertmanager_data):
            Path(directory).mkdir(parents=True, exist_ok=True)
        os.chmod(self.state_dir, 0o755)
        os.chmod(self.data, 0o700)
        self._ensure_traversable(progress)
        secrets = sec.ensure(self.secrets_dir, self.settings, owner)
        if owner:
            _chown_tree(self.state_dir, owner, self.data, repository.private_paths(self))
        for unit in self.topology.units:
            # Patroni, etcd and pgAdmin make their own data directories' contents; they must own an empty one.
            if unit.kind in {"patroni", "etcd", "pgadmin"}:
                path = self.data / unit.data
                path.mkdir(exist_ok=True)
                os.chmod(path, 0o700)
                if owner:
                    os.chown(path, *owner)
        pg_data = Path(lay.postgres_data)
        if not self.topology.clustered and not self.topology.external and not (pg_data / "PG_VERSION").exists():
            progress(f"initialising PostgreSQL {self.pg_major} data directory")
            pg_data.mkdir(parents=True, exist_ok=True)
            os.chmod(pg_data, 0o700)
            if owner:
                os.chown(pg_data, *owner)
            cmd = [
                str(self.pg_bindir / "initdb"),
                "-D",
                str(pg_data),
                "-U",
                sec.SUPERUSER,
                f"--pwfile={self.secrets_dir / sec.SUPERUSER}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--data-checksums",
            ]
            if owner:
                cmd = ["runuser", "-u", SERVICE_USER, "--", *cmd]
            result = subprocess.run(cmd, capture_output=True, text=True)
            if result.returncode != 0:
                shutil.rmtree(pg_data, ignore_errors=True)
                raise StackError(f"initdb failed: {result.stderr.strip() or result.stdout.strip()}")
        if self.settings.tls:
            self._ensure_certificate(progress, owner)
        files = render.render(self.settings, {**secrets, **repository.provided_secrets(self)}, lay)
        repository.prepare(self, files, owner, progress)
        if (render.CONFIG_DIR / "postgres_exporter_queries.yaml").exists():
            text = (render.CONFIG_DIR / "postgres_exporter_queries.yaml").read_text()
            files["postgres_exporter_queries.yaml"] = render.RenderedFile(text)
        if self.topology.of_kind("scheduler"):
            # The jobs of sql/<db>/cron.yaml for our scheduler, and the admin's password as a 0600 pgpass.
            config, pgpass = scheduler.write_config(self.dsn(None), self.settings)
            files[scheduler.CONFIG_FILE] = render.RenderedFile(config)
            render.write({scheduler.PGPASS_FILE: render.RenderedFile(pgpass, 0o600)}, self.secrets_dir, owner)
        render.write(files, self.etc, owner)
        return secrets

    def _ensure_certificate(self, progress: Progress, owner: tuple[int, int] | None) -> None:
        """A self-signed server certificate for PostgreSQL and PgBouncer TLS, made once at the first `up`."""
        cert, key = self.secrets_dir / "server.crt", self.secrets_dir / "server.key"
        if cert.exists() and key.exists():
            return
        progress("generating a self-signed TLS certificate")
        host = self.settings.bind_address
        result = subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "825",
                "-sha256",
                "-subj",
                f"/CN=agentdb-{self.name}",
                "-addext",
                f"subjectAltName=DNS:localhost,IP:{host}",
                "-keyout",
                str(key),
                "-out",
                str(cert),
            ],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise StackError(f"openssl could not make the TLS certificate: {result.stderr.strip()}")
        for path in (cert, key):
            os.chmod(path, 0o600)
            if owner:
                os.chown(path, *owner)

    def _check_ports(self, running: dict[str, str]) -> None:
        family = socket.AF_INET6 if ":" in self.settings.bind_address else socket.AF_INET
        for unit in self.topology.units:
            if running.get(unit.name) == "RUNNING":
                continue
            for port in unit.ports:
                with socket.socket(family) as probe:
                    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    try:
                        probe.bind((self.settings.bind_address, port.number))
                    except OSError:
                        raise StackError(
                            f"{unit.name}: port {port.number} on {self.settings.bind_address} is already in use; "
                            f"stop what holds it or set {port.key} in the stack file"
                        ) from None

    def _wait_healthy(self, services: list[Service], progress: Progress) -> None:
        for svc in services:
            start = time.monotonic()
            last: Exception | None = None
            while time.monotonic() - start < HEALTH_TIMEOUT_S:
                try:
                    svc.health()
                    progress(f"  {svc.name:<20} healthy ({time.monotonic() - start:.1f}s)")
                    break
                except Exception as exc:  # not up yet
                    last = exc
                    state = self.process_states().get(svc.name)
                    if state in {"FATAL", "BACKOFF", "EXITED"} and time.monotonic() - start > 5:
                        break
                    time.sleep(0.2)
            else:
                state = None
            if last is not None and not _healthy(svc):
                tail = self.log_tail(svc.name, 15)
                raise StackError(f"{svc.name} did not become healthy: {last}\n--- {svc.name} log ---\n{tail}")

    # ----- verbs -------------------------------------------------------------------------------
    def up(self, progress: Progress = print) -> list[ServiceStatus]:
        """Start what is stopped, wait for health, run the baseline. Idempotent."""
        from infra import backup, baseline

        tools.ensure_pgbouncer(progress=progress)
        if self.settings.tools:
            tools.ensure_pgadmin(progress=progress)
        was_running = self.supervisor_running()
        states = self.process_states()
        # Port conflicts, and an external server that cannot be used, are found before anything starts or changes.
        self._check_ports(states)
        if self.topology.external:
            s = self.settings
            where = f"{s.postgres_host}:{s.postgres_port}"
            progress(f"checking the external PostgreSQL at {where} as {s.postgres_admin_user}")
            external.preflight(s, external.admin_password())
        self._prepare(progress)
        services = self.services()
        early = [svc for svc in services if svc.autostart]
        conf = self._render_supervisord(services)
        render.write({"supervisord.conf": render.RenderedFile(conf, 0o600)}, self.etc, None)
        started_now = False
        try:
            if not was_running:
                progress(f"starting supervisord for stack {self.name} ({self.state_dir})")
                # The services inherit supervisord's environment; none of them needs the external admin's password.
                env = {k: v for k, v in os.environ.items() if k != external.PASSWORD_ENV}
                result = subprocess.run(
                    [str(SUPERVISORD), "-c", str(self.supervisord_conf)], capture_output=True, text=True, env=env
                )
                if result.returncode != 0:
                    raise StackError(f"supervisord failed to start: {result.stderr.strip()}")
                started_now = True
            else:
                self._ctl("reread")
                self._ctl("update")
                self._ctl("start", *(svc.name for svc in early))
            self._wait_healthy(early, progress)
            if self.topology.clustered:
                from infra import cluster

                cluster.wait_ready(self, progress)
            if self.topology.external:
                progress("  backups              taken by the provider of the external server (no pgBackRest here)")
            else:
                backup.ensure_stanza(self, progress)
            progress("applying the platform baseline (roles, databases, extensions, migrations, cron jobs)")
            baseline.apply(self, progress)
            late = [svc for svc in services if not svc.autostart]
            if late:
                self._ctl("start", *(svc.name for svc in late))
                self._wait_healthy(late, progress)
        except BaseException:
            if started_now:
                self._shutdown()
            raise
        return self.status()

    def _services_for_ports(self) -> list[Service]:
        """Services without commands or checks: names and ports, before secrets and binaries exist."""
        return [Service(u.name, u.port, "", 0, lambda: None) for u in self.topology.units]

    def _shutdown(self) -> None:
        if self.supervisor_running():
            self._ctl("stop", "all")
            self._ctl("shutdown")
            pid_file = self.run_dir / "supervisord.pid"
            for _ in range(100):
                if not pid_file.exists():
                    break
                time.sleep(0.1)

    def down(self, progress: Progress = print) -> None:
        """Stop every service; keep the data."""
        if not self.supervisor_running():
            progress(f"stack {self.name} is not running")
            return
        progress(f"stopping stack {self.name}")
        self._shutdown()

    def destroy(self, progress: Progress = print) -> None:
        """Stop everything and delete the state directory."""
        self.down(progress)
        repository.stop_strays(self)  # the asynchronous archive-push would write into the deleted state
        if self.state_dir.exists():
            shutil.rmtree(self.state_dir)
            progress(f"deleted {self.state_dir}")

    def status(self) -> list[ServiceStatus]:
        states = self.process_states()
        out = []
        host = self.settings.bind_address
        for svc in self.services() if self.secrets_dir.exists() else self._services_for_ports():
            state = states.get(svc.name, "STOPPED")
            health = "healthy" if state == "RUNNING" and _healthy(svc) else "down"
            address = f"{svc.scheme}://{host}:{svc.port}" if svc.port else "-"
            out.append(ServiceStatus(svc.name, address, state, health))
        return out

    def log_tail(self, service: str, lines: int = 50) -> str:
        """The last `lines` of a service's output; for PostgreSQL also of its newest CSV log file."""
        path = self.logs / f"{service}.log"
        text = (
            "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
            if path.exists()
            else f"(no log at {path})"
        )
        if service == "postgres":
            # Once the logging collector runs, PostgreSQL writes to its own files, not to the supervisor's.
            text += "\n" + report.tail(Path(self.layout.postgres_logs), lines)
        return text


def _scheme(unit: topo.Unit) -> str:
    """How the status table names the unit's main port."""
    if unit.health.kind == "process":
        return "process"
    # A Patroni node is checked over HTTP on its REST port but serves PostgreSQL on its own.
    return "http" if unit.health.kind == "http" and unit.health.port == unit.port else "tcp"


def _healthy(svc: Service) -> bool:
    try:
        svc.health()
        return True
    except Exception:
        return False


def format_status(rows: list[ServiceStatus]) -> str:
    """The service / address / health table `up` and `status` print."""
    header = ("SERVICE", "ADDRESS", "STATE", "HEALTH")
    table = [header, *[(r.name, r.address, r.state, r.health) for r in rows]]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in table)
