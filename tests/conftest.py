"""The shared test stack: one isolated local stack on free ports in a temporary state directory.

It is started through the real `agentdb up` command, with every migration at head and the cron jobs
synced, and destroyed when the session ends. Fast `for:` durations and scrape intervals come from
the stack file (settings), not from editing rendered files.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from infra.runner import LocalStack
from infra.settings import Settings, load
from loadtests.stack import free_ports

REPO = Path(__file__).resolve().parent.parent
# Every program the local runner supervises, and those of them that listen on a port.
SERVICES = [
    "postgres",
    "pgbouncer",
    "redis",
    "postgres_exporter",
    "pgbouncer_exporter",
    "redis_exporter",
    "webhook",
    "alertmanager",
    "prometheus",
    "pgbackrest_repo",
    "pgbackrest_db",
    "backup_scheduler",
    "backup_checks",
]
LISTENING = [s for s in SERVICES if s != "backup_scheduler"]  # the backup schedule listens nowhere
# Beside a server agentdb does not run: everything but PostgreSQL and our backups, plus our cron scheduler.
OWN_SERVER = ("postgres", "pgbackrest_repo", "pgbackrest_db", "backup_scheduler", "backup_checks")
EXTERNAL_SERVICES = [*(s for s in SERVICES if s not in OWN_SERVER), "scheduler"]
AGENTDB = [sys.executable, "-m", "infra.cli"]


def make_state_dir(prefix: str) -> Path:
    """A temporary directory the unprivileged service user can enter."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    path.chmod(0o755)
    return path


def write_stack_file(directory: Path, name: str, overrides: dict | None = None) -> Path:
    """A stack file on free ports, small and quick, as a test stack wants it."""
    port_keys = [f"{name}_port" for name in Settings().ports()]
    config = {
        "agentdb:memoryMb": 1024,
        "agentdb:cpus": 2,
        "agentdb:defaultPoolSize": 10,
        "agentdb:reservePoolSize": 2,
        "agentdb:scrapeIntervalS": 2,
        "agentdb:alertForScale": 0.05,
        "agentdb:redisMaxmemoryMb": 64,
        # Lock waits are logged (and reported) after this wait: short, so the report test stays quick.
        "agentdb:logLockWaitMs": 200,
    }
    from pydantic.alias_generators import to_camel

    for key, port in zip(port_keys, free_ports(len(port_keys)), strict=True):
        config[f"agentdb:{to_camel(key)}"] = port
    config.update(overrides or {})
    path = directory / f"Pulumi.{name}.yaml"
    path.write_text(yaml.safe_dump({"config": config}))
    return path


def agentdb(*args: str, check: bool = True, timeout: int = 600) -> subprocess.CompletedProcess:
    result = subprocess.run([*AGENTDB, *args], capture_output=True, text=True, cwd=REPO, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"agentdb {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


@dataclass
class TestStack:
    """A running stack and what tests need of it."""

    local: LocalStack
    stack_file: Path
    up_output: str
    outputs: list[str] = field(default_factory=list)

    __test__ = False  # not a test class

    @property
    def settings(self) -> Settings:
        return self.local.settings

    @property
    def state_dir(self) -> Path:
        return self.local.state_dir

    def dsn(self, key: str | None, role: str = "admin", via: str = "postgres") -> str:
        return self.local.dsn(key, role, via)

    def psql(self, key: str | None, query: str) -> str:
        return self.local.psql(key, query)

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run `agentdb <verb> ... --stack-file ... --state-dir ...` against this stack."""
        verb, *rest = args
        result = agentdb(
            verb,
            "--stack",
            self.local.name,
            "--stack-file",
            str(self.stack_file),
            "--state-dir",
            str(self.state_dir),
            *rest,
            check=check,
        )
        self.outputs += [result.stdout, result.stderr]
        return result


@contextmanager
def dedicated_stack(
    prefix: str, overrides: dict | None = None, name: str = "test", pg_bindir: Path | None = None
) -> Iterator[TestStack]:
    """A stack of its own (free ports, temporary state), up for the block and destroyed after it.

    With `pg_bindir` it runs that PostgreSQL installation: `up` then runs in this process (the CLI
    always takes the host's); every other verb goes through the CLI as usual.
    """
    state = make_state_dir(prefix)
    stack_file = write_stack_file(state, name, overrides)
    ts = TestStack(LocalStack(name, load(name, path=stack_file), state / "state", pg_bindir), stack_file, "")
    try:
        if pg_bindir:
            lines: list[str] = []
            ts.local.up(progress=lines.append)
            ts.up_output = "\n".join(lines)
        else:
            ts.up_output = ts.cli("up").stdout
        yield ts
    finally:
        ts.cli("destroy", check=False)
        shutil.rmtree(state, ignore_errors=True)


@pytest.fixture(scope="session")
def stack() -> Iterator[TestStack]:
    with dedicated_stack("agentdb-test-") as ts:
        yield ts


def pytest_collection_modifyitems(config, items):
    # Unit tests first: they fail fast and need no stack.
    items.sort(key=lambda item: 0 if "/unit/" in str(item.fspath) else 1)


os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
