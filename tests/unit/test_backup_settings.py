"""The backup settings: what they refuse, and what they put into the two pgBackRest configurations."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra import credentials as sec
from infra import render, tuning
from infra.settings import Settings, SettingsError, parse

STATE = Path("/srv/agentdb-test")


def conf(settings: Settings, name: str) -> render.RenderedFile:
    secrets = {n: f"password-of-{n}" for n in sec.secret_names(settings)}
    return render.render(settings, secrets, render.Layout.local(STATE, settings, 15))[name]


def lines(settings: Settings, name: str) -> set[str]:
    return set(conf(settings, name).content.splitlines())


@pytest.mark.parametrize(
    ("config", "key", "rule"),
    [
        ({"agentdb:backupRepoPath": "data/pgbackrest"}, "agentdb:backupRepoPath", "inside the stack's own state"),
        ({"agentdb:backupRepoPath": "secrets"}, "agentdb:backupRepoPath", "inside the stack's own state"),
        ({"agentdb:backupRepoPath": "/"}, "agentdb:backupRepoPath", "is the root"),
        ({"agentdb:backupRepoPath": "../elsewhere"}, "agentdb:backupRepoPath", "no '..' parts"),
        ({"agentdb:backupRepoPath": "repo\nrepo2-path=/x"}, "agentdb:backupRepoPath", "control characters"),
        ({"agentdb:backupRepoPort": 5432}, "agentdb", "postgres and pgbackrest_repo both use port 5432"),
        ({"agentdb:backupAgentPort": 8432}, "agentdb", "(agentdb:backupRepoPort and agentdb:backupAgentPort)"),
        ({"agentdb:backupRetentionDiff": 0}, "agentdb:backupRetentionDiff", "greater than or equal to 1"),
        (
            {"agentdb:backupRetentionArchive": 3, "agentdb:backupRetentionFull": 2},
            "agentdb",
            "backupRetentionArchive (3) must be at most backupRetentionFull (2)",
        ),
        ({"agentdb:backupEncryption": "sometimes"}, "agentdb:backupEncryption", "valid boolean"),
    ],
)
def test_bad_backup_settings_name_key_and_rule(config, key, rule):
    with pytest.raises(SettingsError) as err:
        parse(config)
    message = str(err.value)
    assert f"{key}:" in message or f"'{key}'" in message, message
    assert rule in message, message


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ("repo", STATE / "repo"),
        ("backups/agentdb", STATE / "backups/agentdb"),
        ("/mnt/nas/agentdb", "/mnt/nas/agentdb"),
    ],
)
def test_the_repository_path_is_relative_to_the_state_directory(value, path):
    assert f"repo1-path={path}" in lines(Settings(backup_repo_path=value), "pgbackrest-repo.conf")


@pytest.mark.parametrize(("encryption", "cipher"), [(False, False), (True, True)])
def test_the_passphrase_is_only_in_the_repository_hosts_0600_file(encryption, cipher):
    settings = Settings(backup_encryption=encryption)
    repo = conf(settings, "pgbackrest-repo.conf")
    assert repo.mode == 0o600
    assert ("repo1-cipher-type=aes-256-cbc" in repo.content) is cipher
    passphrase = f"password-of-{sec.PGBACKREST_CIPHER}"
    assert (f"repo1-cipher-pass={passphrase}" in repo.content) is cipher
    assert passphrase not in conf(settings, "pgbackrest.conf").content


@pytest.mark.parametrize(("cpus", "expected"), [(1, ("lz4", 1)), (4, ("lz4", 1)), (8, ("zst", 3)), (32, ("zst", 3))])
def test_compression_follows_the_cores(cpus, expected):
    assert tuning.backup_compression(cpus) == expected
    for name in ("pgbackrest.conf", "pgbackrest-repo.conf"):
        assert {f"compress-type={expected[0]}", f"compress-level={expected[1]}"} <= lines(Settings(cpus=cpus), name)


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        (Settings(), {"repo1-retention-full=2", "repo1-retention-diff=6"}),
        (
            Settings(backup_retention_full=4, backup_retention_diff=3, backup_retention_archive=2),
            {
                "repo1-retention-full=4",
                "repo1-retention-diff=3",
                "repo1-retention-archive-type=full",
                "repo1-retention-archive=2",
            },
        ),
    ],
)
def test_retention_comes_from_the_settings(settings, expected):
    assert expected <= lines(settings, "pgbackrest-repo.conf")


def test_archiving_is_asynchronous_with_a_spool_on_the_database_side():
    assert {"archive-async=y", f"spool-path={STATE}/run/pgbackrest"} <= lines(Settings(), "pgbackrest.conf")


@pytest.mark.parametrize("replicas", [0, 2])
def test_the_repository_host_reaches_every_node_over_tls(replicas):
    repo = lines(Settings(replicas=replicas), "pgbackrest-repo.conf")
    for i in range(1, replicas + 2):
        assert {
            f"pg{i}-host-type=tls",
            f"pg{i}-host-port=8442",
            f"pg{i}-host-config={STATE}/etc/pgbackrest.conf",
        } <= repo
    assert f"pg{replicas + 2}-host-type=tls" not in repo
    assert ("backup-standby=y" in repo) is (replicas > 0)


@pytest.mark.parametrize(
    ("entries", "key", "rule"),
    [
        ([{"type": "ftp", "path": "/x"}], "agentdb:backupRepos[0]", "does not match any of the expected tags"),
        ([{"type": "posix", "path": "relative"}], "agentdb:backupRepos[0].path", "must be absolute"),
        ([{"type": "posix", "path": "/srv/a/../b"}], "agentdb:backupRepos[0].path", "no '..' parts"),
        (
            [{"type": "posix", "path": "/srv/a"}, {"type": "posix", "path": "/srv/a"}],
            "agentdb",
            "two posix entries name the same path",
        ),
        ([{"type": "s3", "bucket": "b", "region": "r"}], "agentdb:backupRepos[0].endpoint", "Field required"),
        (
            [{"type": "s3", "endpoint": "e", "bucket": "b", "region": "r\nrepo9-path=/x"}],
            "agentdb:backupRepos[0].region",
            "without spaces or control characters",
        ),
        ([{"type": "host", "host": "h"}], "agentdb:backupRepos[0].caFile", "Field required"),
        ([{"type": "posix", "path": "/a", "colour": "red"}], "agentdb:backupRepos[0].colour", "unknown setting"),
        ([{"type": "posix", "path": f"/r{i}"} for i in range(4)], "agentdb:backupRepos", "at most 3 items"),
    ],
)
def test_bad_repository_entries_name_the_entry_and_rule(entries, key, rule):
    test_bad_backup_settings_name_key_and_rule({"agentdb:backupRepos": entries}, key, rule)


REPOS = [
    {"type": "host", "host": "10.0.0.9", "caFile": "/etc/a/ca.crt", "certFile": "/etc/a/c.crt", "keyFile": "/etc/a/k"},
    {"type": "posix", "path": "/mnt/second"},
    {"type": "s3", "endpoint": "minio.internal", "bucket": "backups", "region": "eu", "uriStyle": "path"},
]


def test_entries_become_repo2_and_on():
    settings = parse({"agentdb:backupEncryption": True, "agentdb:backupRepos": REPOS})
    repo, db = lines(settings, "pgbackrest-repo.conf"), lines(settings, "pgbackrest.conf")
    # The other repository host is the database side's own; the repository host keeps posix and s3.
    assert {"repo2-host=10.0.0.9", "repo2-host-ca-file=/etc/a/ca.crt"} <= db
    assert not [line for line in repo if line.startswith("repo2-")]
    assert {"repo3-path=/mnt/second", "repo3-cipher-type=aes-256-cbc", "repo3-retention-diff=6"} <= repo
    assert {"repo4-type=s3", "repo4-s3-bucket=backups", "repo4-s3-uri-style=path", "repo4-path=/agentdb"} <= repo
    assert "repo4-s3-key=password-of-backup-repo4-s3-key" not in repo  # the operator's, not generated
    for n in (3, 4):
        assert {f"repo{n}-host={settings.bind_address}", f"repo{n}-host-port={settings.backup_repo_port}"} <= db
