"""Encryption at rest: the repository is unreadable without its passphrase, which nothing ever shows.

The faults stack runs with `agentdb:backupEncryption: true` (tests/faults/conftest.py), as staging and
prod do.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from infra import credentials as sec
from infra import repository

pytestmark = pytest.mark.faults


def passphrase(fstack) -> str:
    return (fstack.state_dir / "secrets" / sec.PGBACKREST_CIPHER).read_text().strip()


def test_the_repository_files_are_ciphertext(fstack):
    fstack.cli("backup", "--type", "full")
    repo = repository.repo_path(fstack.local)
    files = [p for p in (repo / "backup" / "agentdb").rglob("*") if p.is_file()]
    files += [p for p in (repo / "archive" / "agentdb").rglob("*") if p.is_file()]
    assert len(files) > 10
    # OpenSSL's salted format, as pgBackRest writes aes-256-cbc: no file starts with anything readable.
    assert [p for p in files if not p.read_bytes().startswith(b"Salted__")] == []


def test_a_wrong_passphrase_fails_the_restore_clearly_and_touches_nothing(fstack, tmp_path):
    fstack.cli("backup", "--type", "incr")
    conf = repository.config_path(fstack.local)
    saved = tmp_path / "pgbackrest.conf"
    shutil.copy2(conf, saved)
    right = passphrase(fstack)
    conf.write_text(conf.read_text().replace(right, "not-the-passphrase-" + "x" * 24))
    marker = fstack.psql(None, "SELECT system_identifier FROM pg_control_system()").strip()
    try:
        result = fstack.cli("restore", "--to", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), check=False)
    finally:
        shutil.copy2(saved, conf)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "the repository cannot be decrypted" in result.stderr
    assert str(fstack.state_dir / "secrets" / sec.PGBACKREST_CIPHER) in result.stderr
    # Nothing half-done: the same server still runs on the same data directory.
    assert fstack.psql(None, "SELECT system_identifier FROM pg_control_system()").strip() == marker
    assert not list(Path(fstack.local.layout.data_root).glob("*before-restore*"))


def test_the_passphrase_is_in_no_log_output_or_process_list(fstack):
    secret = passphrase(fstack)
    seen: list[str] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            ps = subprocess.run(["ps", "-eww", "-o", "args"], capture_output=True, text=True, check=True)
            seen.extend(line for line in ps.stdout.splitlines() if "pgbackrest" in line)
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        fstack.cli("backup", "--type", "diff")
        fstack.cli("logs")
    finally:
        done.set()
        watcher.join()
    assert [line for line in seen if "backup" in line], "pgBackRest was not seen running"
    assert [line for line in seen if secret in line] == []
    assert [out for out in fstack.outputs if secret in out] == []
    home = repository.home(fstack.local)
    logs = [p for d in (fstack.state_dir / "logs", home / "log") for p in d.rglob("*") if p.is_file()]
    assert logs
    assert [p for p in logs if secret in p.read_text(errors="replace")] == []
