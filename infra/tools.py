"""Find the host's server binaries; build PgBouncer >= 1.21 and pgvector when the host lacks them.

Debian 12 ships PgBouncer 1.18, which cannot keep prepared statements across transaction pooling
(`max_prepared_statements` arrived in 1.21), and no pgvector at all. Debian 13's source packages
build cleanly on Debian 12, so bootstrap builds each once into a cached tools directory instead of
pulling in trixie binaries; pgvector is then installed from that cache into the server's own
library and extension directories.
"""

from __future__ import annotations

import argparse
import fcntl
import filecmp
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

# As root the services run as an unprivileged user, which cannot enter /root: cache under /var then.
_DEFAULT_TOOLS_DIR = (
    Path("/var/cache/agentdb/tools") if os.geteuid() == 0 else Path.home() / ".cache" / "agentdb" / "tools"
)
TOOLS_DIR = Path(os.environ.get("AGENTDB_TOOLS_DIR") or _DEFAULT_TOOLS_DIR)

PGBOUNCER_MIN_VERSION = (1, 21)
POSTGRES_LIB = Path("/usr/lib/postgresql")
POSTGRES_SHARE = Path("/usr/share/postgresql")

# Only source lines for trixie: a binary `deb` line would let apt upgrade bookworm packages to trixie.
# The PgBouncer and pgvector builds share them.
TRIXIE_SOURCES = Path("/etc/apt/sources.list.d/agentdb-trixie-src.sources")
HOST_SOURCES = [Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list")]
APT_LISTS = Path("/var/lib/apt/lists")
BUILD_PACKAGES = ["build-essential", "pkg-config", "dpkg-dev", "libevent-dev", "libssl-dev", "libc-ares-dev"]
# pgvector builds with PGXS, which postgresql-server-dev-<major> provides.
PGVECTOR_BUILD_PACKAGES = ["build-essential", "dpkg-dev"]
# Debian's switch that keeps package scripts from starting services (an upgraded postgresql-NN
# would otherwise start its default cluster on port 5432 while server-dev is installed).
POLICY_RC_D = Path("/usr/sbin/policy-rc.d")

# Debian puts daemons in sbin, which is not on an ordinary user's PATH; Grafana's own package uses
# /usr/share/grafana/bin.
EXTRA_DIRS = [Path(p) for p in ("/usr/sbin", "/usr/local/sbin", "/sbin", "/usr/share/grafana/bin")]

# What to install when a binary is missing.
PACKAGE_OF = {
    "redis-server": "apt package redis-server",
    "prometheus": "apt package prometheus",
    "promtool": "apt package prometheus",
    "prometheus-postgres-exporter": "apt package prometheus-postgres-exporter",
    "prometheus-redis-exporter": "apt package prometheus-redis-exporter",
    "prometheus-alertmanager": "apt package prometheus-alertmanager",
    "supervisord": "the virtualenv's supervisor",
    "pgbackrest": "apt package pgbackrest",
    "etcd": "apt package etcd-server",
    "haproxy": "apt package haproxy",
    "pgbadger": "apt package pgbadger",
    "grafana-server": "package grafana from Grafana's apt repository (apt.grafana.com)",
}

# Binaries whose version is not printed by `--version`.
VERSION_ARGS = {"pgbackrest": ["version"], "grafana-server": ["-v"]}

_VERSION_RE = re.compile(r"(\d+(?:\.\d+)+)")


class ToolError(RuntimeError):
    """A binary the stack needs is missing or too old; the message says how to fix it."""


def postgres_major(bindir: Path) -> int:
    """The major version of the PostgreSQL in `bindir` (/usr/lib/postgresql/<major>/bin)."""
    return version_of(Path(bindir) / "postgres")[0]


def postgres_bindir(min_major: int = 14) -> Path:
    """The newest installed PostgreSQL >= `min_major` that has pg_cron and pg_partman installed."""
    installed = [p for p in POSTGRES_LIB.glob("*") if p.name.isdigit() and (p / "bin" / "postgres").exists()]
    majors = sorted((int(p.name) for p in installed), reverse=True)
    usable = [m for m in majors if m >= min_major]
    for major in usable:
        extensions = POSTGRES_SHARE / str(major) / "extension"
        if (extensions / "pg_cron.control").exists() and (extensions / "pg_partman.control").exists():
            return POSTGRES_LIB / str(major) / "bin"
    if usable:
        major = usable[0]
        raise ToolError(
            f"PostgreSQL {major} has no pg_cron or pg_partman: "
            f"install postgresql-{major}-cron and postgresql-{major}-partman (make deps)"
        )
    found = ", ".join(map(str, majors)) or "none"
    raise ToolError(
        f"no PostgreSQL {min_major} or newer in {POSTGRES_LIB} (found: {found}): install postgresql, "
        "postgresql-NN-cron and postgresql-NN-partman (make deps)"
    )


def version_of(path: Path) -> tuple[int, ...]:
    """The version a binary reports, e.g. (1, 24, 1) for `PgBouncer 1.24.1`."""
    args = VERSION_ARGS.get(Path(path).name, ["--version"])
    try:
        result = subprocess.run([str(path), *args], capture_output=True, text=True, timeout=30)
    except OSError as exc:
        raise ToolError(f"cannot run {path}: {exc}") from exc
    return parse_version(result.stdout + result.stderr, source=str(path))


def parse_version(output: str, source: str = "output") -> tuple[int, ...]:
    """The first dotted version number in the first line that has one."""
    for line in output.splitlines():
        match = _VERSION_RE.search(line)
        if match:
            return tuple(int(part) for part in match.group(1).split("."))
    raise ToolError(f"no version number in the version output of {source}: {output.strip()[:200]!r}")


def _which(name: str) -> Path | None:
    found = shutil.which(name)
    if found:
        return Path(found)
    for directory in EXTRA_DIRS:
        candidate = directory / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def binary(name: str) -> Path:
    """A server binary from PATH or Debian's usual places; supervisord comes from this virtualenv."""
    if name == "supervisord":
        # The venv's bin is not on PATH when the runner is started as `.venv/bin/python -m ...`.
        candidate = Path(sys.executable).parent / name
        if candidate.exists():
            return candidate
    found = _which(name)
    if found:
        return found
    hint = PACKAGE_OF.get(name, "the package that provides it")
    places = ", ".join(map(str, EXTRA_DIRS))
    raise ToolError(f"{name} not found on PATH or in {places}: install {hint} (make deps)")


def _cached_pgbouncers() -> list[tuple[tuple[int, ...], Path]]:
    builds = []
    try:
        found = list(TOOLS_DIR.glob("pgbouncer-*/bin/pgbouncer"))
    except OSError:  # an unreadable tools directory holds no usable build
        found = []
    for path in found:
        try:
            version = tuple(int(x) for x in path.parent.parent.name.removeprefix("pgbouncer-").split("."))
        except ValueError:
            continue
        builds.append((version, path))
    return sorted(builds, reverse=True)


def pgbouncer_binary(min_version: tuple[int, ...] = PGBOUNCER_MIN_VERSION) -> Path:
    """The host's pgbouncer if it is new enough, else the cached build, else ToolError."""
    host = _which("pgbouncer")
    if host and version_of(host) >= tuple(min_version):
        return host
    for version, path in _cached_pgbouncers():
        if version >= tuple(min_version):
            return path
    wanted = ".".join(map(str, min_version))
    have = f"the host's is {'.'.join(map(str, version_of(host)))}" if host else "none is installed"
    raise ToolError(
        f"PgBouncer {wanted} or newer is needed and {have}: "
        "run `python -m infra.tools ensure-pgbouncer` (make deps) to build it into " + str(TOOLS_DIR)
    )


def ensure_pgbouncer(progress: Callable[[str], None] = print) -> Path:
    """A PgBouncer >= 1.21, building it from Debian 13's source package when needed."""
    try:
        return pgbouncer_binary()
    except ToolError:
        return build_pgbouncer(progress)


def build_pgbouncer(progress: Callable[[str], None] = print) -> Path:
    """Build PgBouncer from trixie's source package into TOOLS_DIR/pgbouncer-<version>/."""
    try:
        TOOLS_DIR.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ToolError(f"cannot create the tools directory {TOOLS_DIR} ({exc}): set AGENTDB_TOOLS_DIR") from exc
    log_path = TOOLS_DIR / "build-pgbouncer.log"
    # Two stacks (make up, make test) may bootstrap at once: one builds, the other waits and reuses it.
    with _locked(TOOLS_DIR / ".build-pgbouncer.lock"), log_path.open("a") as log:
        cached = _cached_pgbouncers()
        if cached:
            progress(f"pgbouncer: using cached build {cached[0][1]}")
            return cached[0][1]
        build = _Build("pgbouncer", log, log_path, progress)
        build.add_trixie_sources()
        build.install_build_packages(BUILD_PACKAGES)
        with tempfile.TemporaryDirectory(prefix="build-pgbouncer-", dir=TOOLS_DIR) as tmp:
            work = Path(tmp)
            progress("pgbouncer: fetching the trixie source package")
            build.run(["apt-get", "source", "--only-source", "pgbouncer/trixie"], cwd=work)
            source = next((p for p in work.glob("pgbouncer-*") if p.is_dir()), None)
            if source is None:
                raise ToolError(f"apt-get source pgbouncer/trixie unpacked nothing: see {log_path}")
            version = source.name.removeprefix("pgbouncer-")
            prefix = TOOLS_DIR / f"pgbouncer-{version}"
            progress(f"pgbouncer: configuring {version}")
            build.run(["./configure", f"--prefix={prefix}"], cwd=source)
            progress(f"pgbouncer: compiling {version}")
            build.run(["make", f"-j{os.cpu_count() or 1}"], cwd=source)
            # Install into a staging tree and move it in whole, so a failed install leaves no
            # half-populated prefix that would later pass for a cached build.
            progress(f"pgbouncer: installing into {prefix}")
            stage = work / "stage"
            build.run(["make", "install", f"DESTDIR={stage}"], cwd=source)
            (stage / prefix.relative_to("/")).rename(prefix)
        path = prefix / "bin" / "pgbouncer"
        built = version_of(path)
        if built < PGBOUNCER_MIN_VERSION:
            raise ToolError(f"built {path} reports {built}, older than 1.21: see {log_path}")
        progress(f"pgbouncer: built {path} ({'.'.join(map(str, built))})")
        return path


def pg_config(bindir: Path, *options: str) -> list[str]:
    """What the pg_config beside `bindir`'s postgres reports (it follows a relocated installation)."""
    path = Path(bindir) / "pg_config"
    try:
        result = subprocess.run([str(path), *options], capture_output=True, text=True, timeout=30, check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise ToolError(f"cannot run {path} {' '.join(options)} ({exc}): install postgresql-client-NN") from exc
    return result.stdout.splitlines()


def server_extension_dirs(bindir: Path) -> tuple[Path, Path]:
    """(library directory, extension directory): where the server in `bindir` loads extensions from."""
    pkglibdir, sharedir = pg_config(bindir, "--pkglibdir", "--sharedir")
    return Path(pkglibdir), Path(sharedir) / "extension"


def _default_version(control: Path) -> str | None:
    match = re.search(r"^\s*default_version\s*=\s*'([^']+)'", control.read_text(), re.MULTILINE)
    return match.group(1) if match else None


def installed_pgvector(bindir: Path) -> str | None:
    """The pgvector version the server in `bindir` can create (library, control and script present), or None."""
    lib, extensions = server_extension_dirs(bindir)
    control = extensions / "vector.control"
    if not (control.is_file() and (lib / "vector.so").is_file()):
        return None
    version = _default_version(control)
    return version if version and (extensions / f"vector--{version}.sql").is_file() else None


def _cached_pgvectors(major: int) -> list[tuple[tuple[int, ...], Path]]:
    builds = []
    try:
        found = list(TOOLS_DIR.glob(f"pgvector-*-pg{major}"))
    except OSError:  # an unreadable tools directory holds no usable build
        found = []
    for path in found:
        if not ((path / "lib" / "vector.so").is_file() and (path / "extension" / "vector.control").is_file()):
            continue
        try:
            version = tuple(int(x) for x in path.name.removeprefix("pgvector-").removesuffix(f"-pg{major}").split("."))
        except ValueError:
            continue
        builds.append((version, path))
    return sorted(builds, reverse=True)


def ensure_pgvector(bindir: Path | None = None, progress: Callable[[str], None] = print) -> str:
    """Make pgvector available to the PostgreSQL in `bindir` (the stack's by default); its version.

    A server that already has it (a distribution package, or an earlier install) is left alone.
    Otherwise the cached build for its major is installed, and built first from trixie's source
    package when there is none.
    """
    bindir = Path(bindir) if bindir else postgres_bindir()
    have = installed_pgvector(bindir)
    if have:
        return have
    major = postgres_major(bindir)
    cached = _cached_pgvectors(major)
    build = cached[0][1] if cached else build_pgvector(major, progress)
    return install_pgvector(build, bindir, progress)


def install_pgvector(build: Path, bindir: Path, progress: Callable[[str], None] = print) -> str:
    """Copy a cached pgvector build into the server's directories; files already identical are kept.

    The control file goes last: PostgreSQL lists an extension once its control file exists, so an
    interrupted install never offers an extension whose library or script is missing.
    """
    lib, extensions = server_extension_dirs(bindir)
    control = build / "extension" / "vector.control"
    files = [(path, lib / path.name) for path in sorted((build / "lib").iterdir())]
    files += [(path, extensions / path.name) for path in sorted((build / "extension").iterdir()) if path != control]
    files.append((control, extensions / control.name))
    todo = [(src, dst) for src, dst in files if not (dst.is_file() and filecmp.cmp(src, dst, shallow=False))]
    if todo:
        progress(f"pgvector: installing {build.name} into {lib} and {extensions}")
    for src, dst in todo:
        if os.access(dst.parent, os.W_OK):
            # A file renamed into place: a backend loading vector.so never reads a half-written one.
            tmp = dst.with_name(f".{dst.name}.agentdb-new")
            shutil.copyfile(src, tmp)
            tmp.chmod(0o644)
            os.replace(tmp, dst)
        else:
            cmd = ["sudo", "install", "-m", "0644", str(src), str(dst)]
            result = subprocess.run(cmd, capture_output=True, text=True)
            if result.returncode != 0:
                raise ToolError(f"cannot install {dst} (as root: make deps): {result.stderr.strip()}")
    version = installed_pgvector(bindir)
    if version is None:
        raise ToolError(f"pgvector from {build} is not complete in {lib} and {extensions}: rebuild it (make deps)")
    return version


def build_pgvector(major: int, progress: Callable[[str], None] = print) -> Path:
    """Build pgvector from trixie's source package for PostgreSQL `major` into TOOLS_DIR/pgvector-<v>-pg<major>/."""
    try:
        TOOLS_DIR.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ToolError(f"cannot create the tools directory {TOOLS_DIR} ({exc}): set AGENTDB_TOOLS_DIR") from exc
    log_path = TOOLS_DIR / "build-pgvector.log"
    with _locked(TOOLS_DIR / ".build-pgvector.lock"), log_path.open("a") as log:
        cached = _cached_pgvectors(major)
        if cached:
            progress(f"pgvector: using cached build {cached[0][1]}")
            return cached[0][1]
        build = _Build("pgvector", log, log_path, progress)
        build.add_trixie_sources()
        build.install_build_packages([*PGVECTOR_BUILD_PACKAGES, f"postgresql-server-dev-{major}"])
        # The distribution's pg_config for this major: its PGXS is the one server-dev installed.
        config = POSTGRES_LIB / str(major) / "bin" / "pg_config"
        # Portable code (no -march=native, as Debian builds it) and no JIT bitcode, which the cache
        # does not keep.
        make_vars = [f"PG_CONFIG={config}", "OPTFLAGS=", "with_llvm=no"]
        with tempfile.TemporaryDirectory(prefix="build-pgvector-", dir=TOOLS_DIR) as tmp:
            work = Path(tmp)
            progress("pgvector: fetching the trixie source package")
            build.run(["apt-get", "source", "--only-source", "pgvector/trixie"], cwd=work)
            source = next((p for p in work.glob("pgvector-*") if p.is_dir()), None)
            if source is None:
                raise ToolError(f"apt-get source pgvector/trixie unpacked nothing: see {log_path}")
            version = source.name.removeprefix("pgvector-")
            progress(f"pgvector: compiling {version} for PostgreSQL {major}")
            build.run(["make", f"-j{os.cpu_count() or 1}", *make_vars], cwd=source)
            stage = work / "stage"
            build.run(["make", "install", f"DESTDIR={stage}", *make_vars], cwd=source)
            pkglibdir, sharedir = (Path(p) for p in pg_config(config.parent, "--pkglibdir", "--sharedir"))
            # Assemble the cache entry beside it and move it in whole, so a failed build leaves no
            # half-populated entry that would later pass for a cached build.
            entry = work / "entry"
            (entry / "lib").mkdir(parents=True)
            (stage / pkglibdir.relative_to("/") / "vector.so").rename(entry / "lib" / "vector.so")
            (stage / sharedir.relative_to("/") / "extension").rename(entry / "extension")
            if _default_version(entry / "extension" / "vector.control") is None:
                raise ToolError(f"the pgvector build has no usable vector.control: see {log_path}")
            target = TOOLS_DIR / f"pgvector-{version}-pg{major}"
            entry.rename(target)
        progress(f"pgvector: built {target}")
        return target


def pgadmin_requirements() -> list[str]:
    """pgAdmin 4 and its WSGI server, pinned in pyproject.toml's [tool.agentdb.pgadmin]."""
    import tomllib

    from infra.databases import REPO_ROOT

    with (REPO_ROOT / "pyproject.toml").open("rb") as handle:
        return list(tomllib.load(handle)["tool"]["agentdb"]["pgadmin"]["requirements"])


def pgadmin_venv(requirements: list[str] | None = None) -> Path:
    """Where the virtualenv for these pinned requirements lives (one per set of pins)."""
    pins = requirements or pgadmin_requirements()
    return TOOLS_DIR / ("pgadmin-" + "-".join(p.replace("==", "-") for p in pins))


def ensure_pgadmin(progress: Callable[[str], None] = print) -> Path:
    """A virtualenv with the pinned pgAdmin 4 and gunicorn, made once with Debian's python3.

    Debian's /usr/bin/python3 (not this venv's, which may live under /root) so the service user
    can run it; pgAdmin's own pins stay out of agentdb's virtualenv.
    """
    requirements = pgadmin_requirements()
    venv = pgadmin_venv(requirements)
    marker = venv / ".installed"
    if marker.exists():
        return venv
    try:
        TOOLS_DIR.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ToolError(f"cannot create the tools directory {TOOLS_DIR} ({exc}): set AGENTDB_TOOLS_DIR") from exc
    log_path = TOOLS_DIR / "install-pgadmin.log"
    with _locked(TOOLS_DIR / ".install-pgadmin.lock"), log_path.open("a") as log:
        if marker.exists():
            return venv
        python = Path("/usr/bin/python3") if Path("/usr/bin/python3").exists() else Path(sys.executable)
        progress(f"pgadmin: installing {' '.join(requirements)} into {venv} (log: {log_path})")
        shutil.rmtree(venv, ignore_errors=True)
        for cmd in (
            [str(python), "-m", "venv", str(venv)],
            [str(venv / "bin" / "pip"), "install", "--disable-pip-version-check", "-q", *requirements],
        ):
            result = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT)
            if result.returncode != 0:
                shutil.rmtree(venv, ignore_errors=True)
                raise ToolError(f"pgadmin: `{' '.join(cmd)}` failed; see {log_path}")
        marker.write_text("\n".join(requirements) + "\n")
    return venv


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


class _Build:
    """The steps of one build of `name`, each logged to build-<name>.log."""

    def __init__(self, name: str, log, log_path: Path, progress: Callable[[str], None]) -> None:
        self.name = name
        self.log = log
        self.log_path = log_path
        self.progress = progress
        # sudo resets the environment, so the frontend setting goes through `env`.
        self.sudo = [] if os.geteuid() == 0 else ["sudo", "env", "DEBIAN_FRONTEND=noninteractive"]

    def run(self, cmd: list[str], cwd: Path | None = None, root: bool = False, stdin: str | None = None) -> None:
        cmd = [*self.sudo, *cmd] if root else cmd
        self.log.write(f"\n$ {' '.join(cmd)}" + (f"   (in {cwd})" if cwd else "") + "\n")
        self.log.flush()
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C"}
        try:
            subprocess.run(
                cmd,
                cwd=cwd,
                env=env,
                input=stdin,
                text=True,
                stdout=self.log,
                stderr=subprocess.STDOUT,
                check=True,
            )
        except FileNotFoundError as exc:
            raise ToolError(f"{cmd[0]} not found while building {self.name}: install it (make deps)") from exc
        except subprocess.CalledProcessError as exc:
            raise ToolError(
                f"building {self.name} failed at `{' '.join(cmd)}` (exit {exc.returncode}): see {self.log_path}"
            ) from exc

    def add_trixie_sources(self) -> None:
        created = False
        if not TRIXIE_SOURCES.exists():
            self.progress(f"{self.name}: adding trixie source lines in {TRIXIE_SOURCES}")
            self.run(["tee", str(TRIXIE_SOURCES)], root=True, stdin=trixie_sources_text(host_mirror()))
            created = True
        # Also refresh when the file exists but its index never arrived (an update that failed before).
        if created or not any(APT_LISTS.glob("*_dists_trixie_*Sources*")):
            self.progress(f"{self.name}: apt-get update")
            self.run(["apt-get", "update"], root=True)

    def install_build_packages(self, packages: list[str]) -> None:
        missing = [p for p in packages if not _installed(p)]
        if not missing:
            return
        self.progress(f"{self.name}: installing build packages {' '.join(missing)}")
        added_policy = not POLICY_RC_D.exists()
        if added_policy:
            self.run(["tee", str(POLICY_RC_D)], root=True, stdin="#!/bin/sh\nexit 101\n")
            self.run(["chmod", "755", str(POLICY_RC_D)], root=True)
        try:
            self.run(["apt-get", "install", "-y", "--no-install-recommends", *missing], root=True)
        finally:
            if added_policy:
                self.run(["rm", "-f", str(POLICY_RC_D)], root=True)


def _installed(package: str) -> bool:
    result = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True, check=False)
    return result.stdout.strip() == "install ok installed"


def host_mirror() -> str:
    """The Debian mirror the host's own apt sources use, so the trixie sources come from the same place."""
    for path in HOST_SOURCES:
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            line = line.strip()
            if line.startswith("URIs:"):
                uris = line.split()[1:]
            elif line.startswith(("deb ", "deb-src ")):
                uris = [w for w in line.split()[1:] if "://" in w][:1]
            else:
                continue
            for uri in uris:
                if "security" not in uri and uri.rstrip("/").endswith("/debian"):
                    return uri.rstrip("/")
    raise ToolError(
        "cannot find the Debian mirror in the host's apt sources (" + ", ".join(map(str, HOST_SOURCES)) + "); "
        "install PgBouncer 1.21 or newer and pgvector yourself, or add a Debian source"
    )


def trixie_sources_text(mirror: str) -> str:
    """A deb822 source entry for trixie's source packages only."""
    return (
        "# Added by agentdb (infra/tools.py) to build PgBouncer >= 1.21 from Debian 13's source package.\n"
        "# Source packages only: no binary packages come from trixie.\n"
        "Types: deb-src\n"
        f"URIs: {mirror}\n"
        "Suites: trixie\n"
        "Components: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.tools", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("ensure-pgbouncer", help="print a PgBouncer >= 1.21, building it when needed")
    commands.add_parser("ensure-pgvector", help="install pgvector into the stack's PostgreSQL, building it when needed")
    commands.add_parser(
        "ensure-pgadmin", help="print the virtualenv with the pinned pgAdmin 4, installing it when needed"
    )
    commands.add_parser("postgres-bindir", help="print the PostgreSQL bin directory the stack uses")
    args = parser.parse_args(argv)
    progress = lambda line: print(line, file=sys.stderr)  # noqa: E731 - stdout carries only the answer
    try:
        if args.command == "ensure-pgbouncer":
            print(ensure_pgbouncer(progress=progress))
        elif args.command == "ensure-pgvector":
            print(ensure_pgvector(progress=progress))
        elif args.command == "ensure-pgadmin":
            print(ensure_pgadmin(progress=progress))
        else:
            print(postgres_bindir())
    except ToolError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
