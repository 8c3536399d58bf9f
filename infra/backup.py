"""Backups and point-in-time recovery with pgBackRest: one stanza per stack, on a dedicated repository host.

The stack renders `etc/pgbackrest.conf` (config/pgbackrest.conf.j2, the database side) and the
repository host's configuration (config/pgbackrest-repo.conf.j2, infra/repository.py); PostgreSQL
pushes every WAL segment to the repository host over TLS with `archive_command`; `up` creates the
stanza; `infra.backup_scheduler` takes the scheduled backups on the repository host; `agentdb backup`
and `agentdb restore --to <timestamp>` call `backup()` and `restore()`. Backups run on the repository
host as its own user (pgBackRest takes them only there); everything else runs on the database side as
PostgreSQL's user, which reads the superuser's password from a 0600 pgpass file in the secrets
directory (never from its command line or environment).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from infra import credentials as sec
from infra import repository
from infra.render import PGBACKREST_STANZA

if TYPE_CHECKING:
    from infra.runner import LocalStack

KINDS = ("full", "diff", "incr")
RESTORE_TIMEOUT_S = 600
STANZA_LOCK_ATTEMPTS = 30  # seconds stanza-create waits for archive-push's lock at `up`

Progress = Callable[[str], None]


class BackupError(RuntimeError):
    """A backup or restore could not be done: the message says what and what to do."""


class TargetError(BackupError):
    """The restore target is not a moment the repository can reach (bad input)."""


@dataclass(frozen=True)
class BackupInfo:
    label: str
    kind: str
    started: dt.datetime
    stopped: dt.datetime
    size_bytes: int
    repo_size_bytes: int


def repo_path(stack: LocalStack) -> Path:
    """Where the repository host keeps the repository."""
    return repository.repo_path(stack)


def config_path(stack: LocalStack) -> Path:
    return stack.etc / "pgbackrest.conf"


def pgpass_path(stack: LocalStack) -> Path:
    return stack.secrets_dir / "pgbackrest.pgpass"


def _require_own_server(stack: LocalStack) -> None:
    if stack.topology.external:
        raise BackupError(
            "agentdb:postgresMode is external: the provider takes the backups; use its snapshots and point-in-time"
            " restore"
        )


def _prepare(stack: LocalStack) -> None:
    """The database side's lock, spool and log directories and the pgpass file, owned by the service user."""
    _require_own_server(stack)
    owner = stack._owner()
    for directory in (stack.run_dir / "pgbackrest", stack.logs / "pgbackrest"):
        directory.mkdir(parents=True, exist_ok=True)
        os.chmod(directory, 0o750)
        if owner:
            os.chown(directory, *owner)
    password = stack.secrets()[sec.SUPERUSER]
    path = pgpass_path(stack)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(f"*:*:*:{sec.SUPERUSER}:{password}\n")
    if owner:
        os.chown(path, *owner)


def _command(stack: LocalStack, *args: str, on_repo: bool = False) -> list[str]:
    if on_repo:
        cmd = ["pgbackrest", f"--config={repository.config_path(stack)}", f"--stanza={PGBACKREST_STANZA}", *args]
        return repository.as_repo_user(cmd)
    cmd = ["pgbackrest", f"--config={config_path(stack)}", f"--stanza={PGBACKREST_STANZA}", *args]
    if stack._owner():
        from infra.runner import SERVICE_USER

        cmd = ["runuser", "-u", SERVICE_USER, "--", *cmd]
    return cmd


def run(
    stack: LocalStack,
    *args: str,
    progress: Progress | None = None,
    timeout: float | None = None,
    on_repo: bool = False,
) -> str:
    """Run one pgBackRest command on the database side (or `on_repo`, the repository host) as its user.

    Its lines stream to `progress`; returns stdout.
    """
    if shutil.which("pgbackrest") is None:
        raise BackupError("pgbackrest not found on PATH: install the Debian package pgbackrest (make deps)")
    env = {**os.environ, "PGPASSFILE": str(pgpass_path(stack))}
    proc = subprocess.Popen(
        _command(stack, *args, on_repo=on_repo),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",  # a repository read with the wrong passphrase quotes bytes that are not UTF-8
        env=env,
        cwd="/",
    )
    lines: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line.rstrip("\n"))
        if progress:
            progress(f"  {line.rstrip()}")
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise BackupError(f"pgbackrest {args[0]} did not finish within {timeout:.0f}s") from None
    if code != 0:
        tail = "" if progress else "\n".join(lines[-15:])  # with progress, the lines are already shown
        logs = repository.home(stack) / "log" if on_repo else stack.logs / "pgbackrest"
        raise BackupError(f"pgbackrest {args[0]} failed (exit {code}); log: {logs}\n{tail}".rstrip())
    return "\n".join(lines)


def ensure_stanza(stack: LocalStack, progress: Progress = print) -> None:
    """Create the stanza (idempotent): `up` calls it once PostgreSQL is healthy."""
    _prepare(stack)
    # Asynchronous archive-push holds the stanza's archive lock while it retries WAL that PostgreSQL
    # queued before the stanza existed; stanza-create waits for it rather than fail.
    for attempt in range(STANZA_LOCK_ATTEMPTS):
        try:
            run(stack, "stanza-create", "--log-level-console=warn")
            break
        except BackupError as exc:
            if "unable to acquire lock" not in str(exc) or attempt == STANZA_LOCK_ATTEMPTS - 1:
                raise
            time.sleep(1)
    progress(f"  pgbackrest           stanza {PGBACKREST_STANZA} ready ({repo_path(stack)})")


def check(stack: LocalStack) -> None:
    """Switch WAL and wait until the segment is archived: proves archiving works end to end."""
    run(stack, "check", "--log-level-console=warn")


def backup(stack: LocalStack, kind: str = "incr", progress: Progress | None = None, repo: int = 1) -> BackupInfo:
    """Take a backup of `kind` (full, diff or incr) into repository `repo`; return what it records for it."""
    if kind not in KINDS:
        raise BackupError(f"--type: {kind!r} is not a backup type; use one of {', '.join(KINDS)}")
    kept = repository.kept_repos(stack.settings)
    if repo not in kept:
        raise TargetError(
            f"--repo: {repo} is not a repository the repository host keeps; it keeps {', '.join(map(str, kept))}"
            " (1 is its own; agentdb:backupRepos entries of type host are backed up on their own host)"
        )
    _prepare(stack)
    run(
        stack,
        "backup",
        f"--type={kind}",
        f"--repo={repo}",
        "--log-level-console=info",
        progress=progress,
        on_repo=True,
    )
    backups = info(stack)
    if not backups:
        raise BackupError("pgbackrest reported success but the repository lists no backup")
    return backups[-1]


def info(stack: LocalStack) -> list[BackupInfo]:
    """The backups in the repository, oldest first (read on the repository host itself)."""
    _prepare(stack)
    text = run(stack, "info", "--output=json", "--log-level-console=warn", on_repo=True)
    # strict=False: an undecryptable repository's status quotes the garbage, control characters included.
    doc = json.loads(text or "[]", strict=False)
    out = []
    for stanza in doc:
        _refuse_undecryptable(stack, stanza)
        for b in stanza.get("backup", []):
            out.append(
                BackupInfo(
                    label=b["label"],
                    kind=b["type"],
                    started=dt.datetime.fromtimestamp(b["timestamp"]["start"], dt.UTC),
                    stopped=dt.datetime.fromtimestamp(b["timestamp"]["stop"], dt.UTC),
                    size_bytes=b["info"]["size"],
                    repo_size_bytes=b["info"]["repository"]["delta"],
                )
            )
    return out


def _refuse_undecryptable(stack: LocalStack, stanza: dict) -> None:
    """A repository its passphrase cannot read reports garbage where backup.info's sections should be.

    pgBackRest 2.45 then fails with an unrelated message (or, over TLS, a crash of its remote end),
    so the cause is named here, before a restore touches anything.
    """
    for repo in stanza.get("repo", []):
        message = repo.get("status", {}).get("message", "")
        if "FormatError" in message and "outside of section" in message:
            raise BackupError(
                "the repository cannot be decrypted: the passphrase in "
                f"{stack.secrets_dir / sec.PGBACKREST_CIPHER} (agentdb:backupEncryption) is not the one it was "
                f"made with; put the right passphrase back, or move {repo_path(stack)} aside to start a new one"
            )


def parse_timestamp(text: str) -> dt.datetime:
    """An ISO 8601 timestamp; without a zone it is UTC (the stack's `timezone`)."""
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise TargetError(f"--to: {text!r} is not an ISO 8601 timestamp such as 2026-11-23T10:15:00Z") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def restore(stack: LocalStack, to: dt.datetime, progress: Progress = print) -> Path:
    """Restore the cluster as it was at `to` into a fresh data directory and start it.

    The current data directory is kept aside (renamed, never deleted); its path is returned. The WAL
    up to now is archived first, so any `to` between the oldest backup and now can be reached.
    """
    _require_own_server(stack)
    if to.tzinfo is None:
        raise TargetError("--to: the target time needs a time zone")
    now = dt.datetime.now(dt.UTC)
    if to > now:
        raise TargetError(f"--to: {to.isoformat()} is in the future; the latest moment to restore is now")
    backups = info(stack)
    if not backups:
        raise BackupError("no backup in the repository yet: run `agentdb backup --type full` first")
    if to < backups[0].stopped:
        raise TargetError(
            f"--to: {to.isoformat()} is before the oldest backup ended ({backups[0].stopped.isoformat()}); "
            "nothing older is kept"
        )
    if stack.topology.clustered:
        return _restore_cluster(stack, to, now, progress)
    data = Path(stack.layout.postgres_data)
    if stack.process_states().get("postgres") == "RUNNING":
        progress("archiving the current WAL so the target is covered")
        check(stack)
        progress("stopping postgres")
        result = stack._ctl("stop", "postgres")
        if "ERROR" in result.stdout:
            raise BackupError(f"could not stop postgres: {result.stdout.strip()}")
    aside = data.with_name(f"{data.name}.before-restore-{now:%Y%m%dT%H%M%SZ}")
    if data.exists():
        progress(f"keeping the current data directory as {aside}")
        data.rename(aside)
    data.mkdir(mode=0o700)
    owner = stack._owner()
    if owner:
        os.chown(data, *owner)
    target = to.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00")
    progress(f"restoring to {target}")
    try:
        run(
            stack,
            "restore",
            "--type=time",
            f"--target={target}",
            "--target-action=promote",
            "--log-level-console=info",
            progress=progress,
            timeout=RESTORE_TIMEOUT_S,
        )
    except BackupError:
        shutil.rmtree(data, ignore_errors=True)
        if aside.exists():
            aside.rename(data)
            progress(f"restore failed; put the previous data directory back ({data})")
            stack._ctl("start", "postgres")
        else:
            progress("restore failed; there was no data directory to put back (the host's state was lost)")
        raise
    progress("starting postgres: it replays WAL up to the target, then promotes")
    stack._ctl("start", "postgres")
    _wait_promoted(stack, progress)
    return aside


def _as_service_user(stack: LocalStack, cmd: list[str]) -> list[str]:
    if stack._owner():
        from infra.runner import SERVICE_USER

        return ["runuser", "-u", SERVICE_USER, "--", *cmd]
    return cmd


def _restore_cluster(stack: LocalStack, to: dt.datetime, now: dt.datetime, progress: Progress) -> Path:
    """Rebuild a Patroni cluster at `to`: the leader from pgBackRest, the replicas cloned from it.

    Every node stops and its data directory is kept aside (returned: one directory holding them all).
    The recovery to `to` runs outside Patroni, which would otherwise promote the node before it reaches
    the target. The cluster's key in etcd is removed (`patronictl remove`, as Patroni documents), so the
    first node's Patroni takes the recovered data directory as a new cluster's primary; the other
    nodes start empty and clone it, as a new replica does.
    """
    from infra import cluster

    nodes = stack.topology.nodes
    first, others = nodes[0], nodes[1:]
    data_root = Path(stack.layout.data_root)
    states = stack.process_states()
    if any(states.get(n.name) == "RUNNING" for n in nodes):
        progress("archiving the current WAL so the target is covered")
        check(stack)
    # Replicas first: stopping the leader first would only fail over to one of them.
    for node in [*others, first]:
        progress(f"stopping {node.name}")
        result = stack._ctl("stop", node.name)
        if "ERROR" in result.stdout and "not running" not in result.stdout:
            raise BackupError(f"could not stop {node.name}: {result.stdout.strip()}")
        # Patroni stops its PostgreSQL on the way out; a postmaster left behind must not lose its files.
        pid_file = data_root / node.data / "postmaster.pid"
        deadline = time.monotonic() + 60
        while pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        if pid_file.exists():
            raise BackupError(f"{node.name}'s PostgreSQL is still running after its Patroni stopped ({pid_file})")
    progress("removing the cluster's state from etcd (patronictl remove)")
    patronictl = Path(sys.executable).parent / "patronictl"
    removed = subprocess.run(
        [str(patronictl), "-c", str(stack.etc / first.files[0]), "remove", "agentdb"],
        input="agentdb\nYes I am aware\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    if removed.returncode != 0:
        raise BackupError(f"patronictl remove failed: {removed.stderr.strip() or removed.stdout.strip()}")
    aside = data_root / f"before-restore-{now:%Y%m%dT%H%M%SZ}"
    aside.mkdir(mode=0o700)
    owner = stack._owner()
    if owner:
        os.chown(aside, *owner)
    progress(f"keeping the nodes' data directories in {aside}")
    for node in nodes:
        if (data_root / node.data).exists():
            (data_root / node.data).rename(aside / node.data)
    data = data_root / first.data
    data.mkdir(mode=0o700)
    if owner:
        os.chown(data, *owner)
    target = to.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00")
    progress(f"restoring {first.name} to {target}")
    run(
        stack,
        "restore",
        f"--pg1-path={data}",
        "--type=time",
        f"--target={target}",
        "--target-action=promote",
        "--log-level-console=info",
        progress=progress,
        timeout=RESTORE_TIMEOUT_S,
    )
    # The backup comes from a replica: its standby.signal would make the node follow a leader, and its
    # postgresql.conf (Patroni's, of that replica) names the replica's port, files and archive path.
    (data / "standby.signal").unlink(missing_ok=True)
    own_conf = aside / first.data / "postgresql.conf"
    if not own_conf.exists():
        raise BackupError(f"{own_conf} is missing: {first.name}'s Patroni configuration cannot be put back")
    shutil.copy2(own_conf, data / "postgresql.conf")
    if owner:
        os.chown(data / "postgresql.conf", *owner)
    _recover(stack, data, first.port_of("postgres"), progress)
    progress(f"starting {first.name}: Patroni takes its data directory as the new cluster's primary")
    stack._ctl("start", first.name)
    for node in others:
        progress(f"starting {node.name}: it clones the new primary")
        stack._ctl("start", node.name)
    cluster.wait_ready(stack, progress, timeout=RESTORE_TIMEOUT_S)
    return aside


def _recover(stack: LocalStack, data: Path, port: int, progress: Progress) -> None:
    """Start PostgreSQL on `data` until it has replayed to the target and promoted, then stop it cleanly."""
    import psycopg

    bindir = stack.pg_bindir
    log = stack.logs / "restore-recovery.log"
    start = time.monotonic()
    progress("replaying WAL up to the target (PostgreSQL outside Patroni)")
    started = subprocess.run(
        _as_service_user(
            stack,
            [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", str(RESTORE_TIMEOUT_S), "start"],
        ),
        capture_output=True,
        text=True,
        cwd="/",
    )
    promoted, last = False, None
    while started.returncode == 0 and not promoted and time.monotonic() - start < RESTORE_TIMEOUT_S:
        try:
            with psycopg.connect(stack.dsn(None, port=port), connect_timeout=2) as conn:
                promoted = not conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]
        except psycopg.Error as exc:
            last = exc
        time.sleep(0.3)
    subprocess.run(
        _as_service_user(stack, [str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
        capture_output=True,
        text=True,
        cwd="/",
    )
    if not promoted:
        tail = log.read_text(errors="replace").splitlines()[-15:] if log.exists() else []
        raise BackupError(
            f"the restored node did not reach the target and promote ({last or started.stderr.strip()}):\n"
            + "\n".join(tail)
        )
    progress(f"replayed and promoted ({time.monotonic() - start:.1f}s)")


def _wait_promoted(stack: LocalStack, progress: Progress) -> None:
    import psycopg

    start = time.monotonic()
    last: Exception | None = None
    while time.monotonic() - start < RESTORE_TIMEOUT_S:
        try:
            with psycopg.connect(stack.dsn(None), connect_timeout=2) as conn:
                (in_recovery,) = conn.execute("SELECT pg_is_in_recovery()").fetchone()
            if not in_recovery:
                progress(f"postgres is up and promoted ({time.monotonic() - start:.1f}s)")
                return
        except psycopg.Error as exc:
            last = exc
        if stack.process_states().get("postgres") in {"FATAL", "BACKOFF"}:
            break
        time.sleep(0.3)
    raise BackupError(f"postgres did not come back after the restore: {last}\n{stack.log_tail('postgres', 15)}")
