"""A second repository (agentdb:backupRepos, type posix): it survives losing the repository host's own.

A stack of its own (encrypted, with a posix second repository on "another disk"): WAL goes to both
repositories, a backup is taken into each; then the database side's data directory and the
repository host's repository 1 are deleted, and `agentdb restore --to T` restores from repository 2.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra import repository
from tests.conftest import TestStack, dedicated_stack, make_state_dir
from tests.faults.test_machine_loss import present, wait_archived, write_ledger

pytestmark = pytest.mark.faults


@pytest.fixture(scope="module")
def second() -> Iterator[tuple[TestStack, Path]]:
    disk = make_state_dir("agentdb-second-disk-")
    repo2 = disk / "repo"
    overrides = {"agentdb:backupEncryption": True, "agentdb:backupRepos": [{"type": "posix", "path": str(repo2)}]}
    try:
        with dedicated_stack("agentdb-repo2-", overrides, name="repo2") as ts:
            yield ts, repo2
    finally:
        shutil.rmtree(disk, ignore_errors=True)


def test_a_backup_goes_into_the_repository_asked_for(second):
    ts, repo2 = second
    assert "into repository 2" in ts.cli("backup", "--type", "full", "--repo", "2").stdout
    assert list((repo2 / "backup" / "agentdb").glob("*F"))
    assert not list((repository.repo_path(ts.local) / "backup" / "agentdb").glob("*F"))


@pytest.mark.parametrize("repo", ["3", "0"])
def test_a_repository_the_host_does_not_keep_is_refused(second, repo):
    ts, _ = second
    result = ts.cli("backup", "--type", "full", "--repo", repo, check=False)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"--repo: {repo} is not a repository the repository host keeps; it keeps 1, 2" in result.stderr


def test_losing_the_database_side_and_repository_1_restores_from_repository_2(second, report):
    ts, repo2 = second
    ts.cli("backup", "--type", "full", "--repo", "1")
    ts.cli("backup", "--type", "full", "--repo", "2")
    before = write_ledger(ts, "repo2-before")
    target = ts.psql(
        None, "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
    ).strip()
    after = write_ledger(ts, "repo2-after")
    wait_archived(ts)  # pg_stat_archiver counts a segment once every repository has it

    ts.local._ctl("stop", "postgres")
    shutil.rmtree(ts.local.layout.postgres_data)
    shutil.rmtree(repository.repo_path(ts.local))

    result = ts.cli("restore", "--to", target)
    assert "repo2: restore backup set" in result.stdout
    assert set(before) - present(ts, "repo2-before") == set()
    assert present(ts, "repo2-after") == set()
    report["second_repository"] = {
        "fault": "data directory and repository 1 deleted; agentdb restore --to T from the posix repository 2",
        "rows_committed_before_t_lost": len(set(before) - present(ts, "repo2-before")),
        "rows_committed_after_t_present": len(present(ts, "repo2-after") & set(after)),
    }
