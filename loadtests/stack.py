"""A dedicated stack for benchmarks: the dev stack's sizes on free ports, in its own state directory.

`make bench` must never touch the dev stack (`.stack/dev/`), so it stands up one of these, seeds it,
measures, and destroys it. The sizes are read from `Pulumi.dev.yaml`, so the figures describe what a
developer gets from `make up`; only the ports (and any explicit overrides) differ.
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

import yaml
from pydantic.alias_generators import to_camel

from infra.databases import REPO_ROOT
from infra.runner import LocalStack
from infra.settings import Settings, load

AGENTDB = [sys.executable, "-m", "infra.cli"]


def free_ports(count: int) -> list[int]:
    """Ports nobody listens on right now (held open together so they are distinct)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


# A cluster's ports, below the kernel's ephemeral range: Patroni, etcd and HAProxy open many local
# connections, and an outgoing connection's source port inside the range could take a node's port.
BELOW_EPHEMERAL = (20000, 32000)


def free_port_blocks(sizes: dict[str, int]) -> dict[str, int]:
    """A base port per key with `size` consecutive free ports each, below the ephemeral range."""
    rng = random.Random()
    with ExitStack() as held:
        bases: dict[str, int] = {}
        for key, size in sizes.items():
            for _ in range(200):
                base = rng.randrange(*BELOW_EPHEMERAL)
                sockets = []
                try:
                    for port in range(base, base + size):
                        sock = held.enter_context(socket.socket())
                        sock.bind(("127.0.0.1", port))
                        sockets.append(sock)
                except OSError:
                    for sock in sockets:
                        sock.close()
                    continue
                bases[key] = base
                break
            else:
                raise RuntimeError(f"no {size} free consecutive ports for {key}")
        return bases


def write_stack_file(directory: Path, name: str, base: str = "dev", overrides: dict | None = None) -> Path:
    """`Pulumi.<base>.yaml`'s settings with every port moved to a free one."""
    base_file = REPO_ROOT / f"Pulumi.{base}.yaml"
    config = dict(yaml.safe_load(base_file.read_text())["config"])
    port_keys = list(Settings().ports())
    for key, port in zip(port_keys, free_ports(len(port_keys)), strict=True):
        config[f"agentdb:{to_camel(f'{key}_port')}"] = port
    # Nothing outside this machine needs to reach a benchmark stack.
    config["agentdb:publishPostgres"] = False
    config["agentdb:publishPrometheus"] = False
    config.update(overrides or {})
    path = directory / f"Pulumi.{name}.yaml"
    path.write_text(yaml.safe_dump({"config": config}, sort_keys=True))
    return path


class BenchStack:
    """A throw-away stack: `with BenchStack("bench") as s: s.cli("up") ...`; destroyed on exit."""

    def __init__(self, name: str = "bench", overrides: dict | None = None, keep: bool = False):
        self.name = name
        self.root = Path(tempfile.mkdtemp(prefix=f"agentdb-{name}-", dir="/tmp"))
        self.root.chmod(0o755)  # the unprivileged service user must enter it
        self.stack_file = write_stack_file(self.root, name, overrides=overrides)
        self.state_dir = self.root / "state"
        self.local = LocalStack(name, load(name, path=self.stack_file), self.state_dir)
        self.keep = keep

    def cli(self, *args: str, check: bool = True, timeout: int = 900) -> subprocess.CompletedProcess:
        """Run `agentdb <verb> --stack-file ... --state-dir ... <args>` against this stack."""
        verb, *rest = args
        command = [
            *AGENTDB,
            verb,
            "--stack",
            self.name,
            "--stack-file",
            str(self.stack_file),
            "--state-dir",
            str(self.state_dir),
            *rest,
        ]
        result = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT, timeout=timeout)
        if check and result.returncode != 0:
            raise RuntimeError(f"agentdb {verb} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
        return result

    def destroy(self) -> None:
        self.cli("destroy", check=False)
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> BenchStack:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.keep:
            self.destroy()
