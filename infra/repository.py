"""pgBackRest's dedicated repository host in the local runner: its user, directories, configuration and TLS.

pgBackRest documents the layout: the repository lives on a host of its own, which runs `pgbackrest
server` (TLS) and takes the backups; the database side runs a `pgbackrest server` too, as PostgreSQL's
user, through which the repository host reads the data directories; PostgreSQL's `archive_command`
and `agentdb restore` reach the repository over TLS. Each side authenticates the other by a client
certificate from one CA made at the first `up` (`tls-server-auth`).

Locally the repository host is a supervised program under its own system user (`pgbackrest`), with
its home in `<state>/repo-host` (configuration, certificates, logs, locks) and the repository at
`agentdb:backupRepoPath` (default `<state>/repo`): neither is readable by the database side's user,
and losing the database side's state (data directory, WAL, its pgBackRest spool, locks and logs)
leaves both intact.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from infra import backup_repos, render

if TYPE_CHECKING:
    from infra.runner import LocalStack

REPO_USER = "pgbackrest"
CONFIG = "pgbackrest-repo.conf"  # the rendered file's name; on the repository host it is pgbackrest.conf
CERT_DAYS = 825
# Database side's TLS material, in the stack's secrets directory (PostgreSQL's user owns it).
DB_TLS = ("pgbackrest-ca.crt", "pgbackrest-db.crt", "pgbackrest-db.key")
# The repository host's, in <repo_home>/tls (its own user owns it).
REPO_TLS = ("ca.crt", "repo.crt", "repo.key")

Progress = Callable[[str], None]


def home(stack: LocalStack) -> Path:
    """The repository host's own directory: configuration, certificates, logs and locks."""
    return Path(stack.layout.repo_home)


def repo_path(stack: LocalStack) -> Path:
    """Where the repository is kept (agentdb:backupRepoPath, relative to the state directory)."""
    return Path(stack.layout.repo_path)


def status_dir(stack: LocalStack) -> Path:
    """Where the repository host's scheduler records verify's results, readable by the metrics' process."""
    return stack.state_dir / "repo-status"


def config_path(stack: LocalStack) -> Path:
    return home(stack) / "pgbackrest.conf"


def owner() -> tuple[int, int] | None:
    """The repository host's uid and gid when agentdb runs as root, else None (everything runs as the caller)."""
    if os.geteuid() != 0:
        return None
    entry = pwd.getpwnam(REPO_USER)
    return entry.pw_uid, entry.pw_gid


def as_repo_user(cmd: list[str]) -> list[str]:
    """`cmd` run as the repository host's user (as is when not root)."""
    return ["runuser", "-u", REPO_USER, "--", *cmd] if os.geteuid() == 0 else cmd


def ensure_user(progress: Progress) -> None:
    """The repository host's system user, made like the other service users (no home, no shell)."""
    if os.geteuid() != 0:
        return
    try:
        pwd.getpwnam(REPO_USER)
    except KeyError:
        progress(f"creating system user {REPO_USER}")
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin"]
            + [REPO_USER],
            check=True,
            capture_output=True,
        )


def kept_repos(settings) -> list[int]:
    """The pgBackRest repository numbers the repository host keeps: 1, and each posix or s3 entry's."""
    return [1, *(i + 2 for i, r in enumerate(settings.backup_repos) if r.type != "host")]


def provided_secrets(stack: LocalStack) -> dict[str, str]:
    """The S3 keys of agentdb:backupRepos, from files the operator puts in the secrets directory.

    They cannot be generated; a missing one stops `up` before anything starts, naming the file.
    """
    out: dict[str, str] = {}
    for i, repo in enumerate(stack.settings.backup_repos):
        if repo.type != "s3":
            continue
        for name in backup_repos.s3_secret_names(i + 2):
            path = stack.secrets_dir / name
            if not path.is_file() or not path.read_text().strip():
                from infra.runner import StackError

                raise StackError(
                    f"agentdb:backupRepos[{i}] (s3): put its key in {path} (mode 0600); agentdb cannot make it"
                )
            out[name] = path.read_text().strip()
    return out


def stray_processes(stack: LocalStack) -> list[int]:
    """pgBackRest processes of this stack that supervisord does not own: the asynchronous archive-push.

    archive-async forks a detached process that outlives PostgreSQL by up to a segment's push, and
    would recreate its spool directory after `destroy` deleted the state.
    """
    configs = (f"--config={stack.etc / 'pgbackrest.conf'}", f"--config={config_path(stack)}")
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue  # gone, or not ours to read
        if any(arg.decode(errors="replace") in configs for arg in args):
            found.append(int(proc.name))
    return found


def stop_strays(stack: LocalStack, timeout: float = 30.0) -> None:
    """Let this stack's detached pgBackRest processes finish (they push WAL), then stop what remains."""
    import signal
    import time

    deadline = time.monotonic() + timeout
    while (pids := stray_processes(stack)) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):  # it finished meanwhile
            os.kill(pid, signal.SIGTERM)


def private_paths(stack: LocalStack) -> tuple[Path, ...]:
    """The directories the database side's user must never be given (the runner's chown skips them)."""
    return home(stack), repo_path(stack)


def prepare(
    stack: LocalStack,
    files: dict[str, render.RenderedFile],
    db_owner: tuple[int, int] | None,
    progress: Progress,
) -> None:
    """Make the repository host's directories, certificates and configuration (takes its file out of `files`)."""
    ensure_user(progress)
    repo_owner = owner()
    rendered = files.pop(CONFIG)
    posix = [Path(r.path) for r in stack.settings.backup_repos if r.type == "posix"]
    for directory, mode in (
        (home(stack), 0o700),
        (home(stack) / "tls", 0o700),
        (home(stack) / "log", 0o750),
        (home(stack) / "run", 0o750),
        (repo_path(stack), 0o750),
        (status_dir(stack), 0o755),
        *((path, 0o750) for path in posix),
    ):
        directory.mkdir(parents=True, exist_ok=True)
        os.chmod(directory, mode)
        if repo_owner:
            os.chown(directory, *repo_owner)
    _ensure_certificates(stack, db_owner, repo_owner, progress)
    render.write({"pgbackrest.conf": rendered}, home(stack), repo_owner)


def _openssl(*args: str, cwd: Path) -> None:
    result = subprocess.run(["openssl", *args], capture_output=True, text=True, cwd=cwd)
    if result.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {result.stderr.strip()}")


def make_certificates(name: str, dns: list[str], ips: Sequence[str] = ()) -> dict[str, bytes]:
    """A CA and a certificate for each side, signed by it, as PEM bytes by file name; the CA's key is not kept.

    Keys: ca.crt, repo.crt, repo.key, db.crt, db.key. Both certificates name every host in `dns` and
    `ips`: pgBackRest 2.45 matches the host name it connects to against the DNS names only. The local
    runner and the Docker program (infra/program/backup_tls.py) both make theirs here.
    """
    san = "subjectAltName=" + ",".join([*(f"DNS:{d}" for d in dns), *(f"IP:{i}" for i in ips)])
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        _openssl(
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", str(CERT_DAYS), "-sha256",
            "-subj", f"/CN=agentdb-{name}-pgbackrest-ca", "-keyout", "ca.key", "-out", "ca.crt",
            cwd=work,
        )  # fmt: skip
        (work / "san.ext").write_text(san + "\n")
        for side, cn in (("repo", render.PGBACKREST_REPO_CN), ("db", render.PGBACKREST_DB_CN)):
            _openssl(
                "req", "-newkey", "rsa:2048", "-nodes", "-sha256", "-subj", f"/CN={cn}",
                "-keyout", f"{side}.key", "-out", f"{side}.csr",
                cwd=work,
            )  # fmt: skip
            _openssl(
                "x509", "-req", "-in", f"{side}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                "-days", str(CERT_DAYS), "-sha256", "-extfile", "san.ext", "-out", f"{side}.crt",
                cwd=work,
            )  # fmt: skip
        return {name: (work / name).read_bytes() for name in ("ca.crt", "repo.crt", "repo.key", "db.crt", "db.key")}


def _ensure_certificates(
    stack: LocalStack, db_owner: tuple[int, int] | None, repo_owner: tuple[int, int] | None, progress: Progress
) -> None:
    """A CA and a certificate for each side, made together once; the CA's key is thrown away.

    Without the CA key nobody can mint another certificate the two servers would accept; to renew,
    delete either side's files and run `up` again, which makes all of them anew.
    """
    db_files = [stack.secrets_dir / name for name in DB_TLS]
    repo_files = [home(stack) / "tls" / name for name in REPO_TLS]
    if all(path.exists() for path in db_files + repo_files):
        return
    progress("generating the TLS certificates of pgBackRest's repository host and database side")
    host = stack.settings.bind_address
    made = make_certificates(stack.name, ["localhost", host], [host])
    sources = {
        db_files[0]: "ca.crt",
        db_files[1]: "db.crt",
        db_files[2]: "db.key",
        repo_files[0]: "ca.crt",
        repo_files[1]: "repo.crt",
        repo_files[2]: "repo.key",
    }
    for target, source in sources.items():
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(made[source])
        os.chmod(target, 0o600)
        who = db_owner if target in db_files else repo_owner
        if who:
            os.chown(target, *who)
