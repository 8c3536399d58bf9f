"""The settings model: every stack file validates, and bad input names its key and rule."""

from pathlib import Path

import pytest
import yaml

from infra.settings import Settings, SettingsError, load, parse, pulumi_config_schema

REPO = Path(__file__).resolve().parents[2]
STACKS = sorted(p.name.split(".")[1] for p in REPO.glob("Pulumi.*.yaml"))


def test_the_three_stacks_exist():
    assert {"dev", "staging", "prod"} <= set(STACKS)


@pytest.mark.parametrize("stack", STACKS)
def test_stack_file_validates(stack):
    assert isinstance(load(stack), Settings)


@pytest.mark.parametrize(("stack", "replicas"), [("dev", 0), ("staging", 1), ("prod", 2)])
def test_stack_replicas(stack, replicas):
    assert load(stack).replicas == replicas


def test_only_prod_runs_synchronous_replication():
    assert [load(s).synchronous_mode for s in ("dev", "staging", "prod")] == [False, False, True]


def test_prod_is_bigger_than_dev():
    dev, prod = load("dev"), load("prod")
    assert prod.memory_mb > dev.memory_mb and prod.cpus > dev.cpus


def test_pulumi_yaml_config_block_matches_the_model():
    """Every key has a description and a default in Pulumi.yaml, generated from the model."""
    doc = yaml.safe_load((REPO / "Pulumi.yaml").read_text())
    assert doc["config"] == pulumi_config_schema()
    for key, entry in doc["config"].items():
        assert entry["description"], key
        assert "default" in entry, key


@pytest.mark.parametrize(
    ("config", "key", "rule"),
    [
        ({"agentdb:memoryMb": -1}, "agentdb:memoryMb", "greater than 0"),
        ({"agentdb:memoryMb": "lots"}, "agentdb:memoryMb", "valid integer"),
        ({"agentdb:cpus": 0}, "agentdb:cpus", "greater than 0"),
        ({"agentdb:postgresPort": 70000}, "agentdb:postgresPort", "less than or equal to 65535"),
        ({"agentdb:redisPort": 0}, "agentdb:redisPort", "greater than or equal to 1"),
        ({"agentdb:redisPort": 6432}, "agentdb", "pgbouncer and redis both use port 6432"),
        (
            {"agentdb:databases": ["qlearning", "nosuchdb"]},
            "agentdb:databases",
            "unknown database 'nosuchdb'",
        ),
        ({"agentdb:databases": []}, "agentdb:databases", "at least 1 item"),
        ({"agentdb:databases": ["afs", "afs"]}, "agentdb:databases", "listed twice"),
        (
            {"agentdb:defaultPoolSize": 900, "agentdb:maxClientConn": 100},
            "agentdb",
            "exceeds maxClientConn",
        ),
        ({"agentdb:storage": "floppy"}, "agentdb:storage", "'ssd', 'hdd' or 'san'"),
        ({"agentdb:poolMode": "sometimes"}, "agentdb:poolMode", "'transaction'"),
        ({"agentdb:redisMaxmemoryPolicy": "yolo"}, "agentdb:redisMaxmemoryPolicy", "allkeys-lru"),
        ({"agentdb:bindAddress": "localhost:5"}, "agentdb:bindAddress", "not an IP address"),
        ({"agentdb:noSuchKey": 1}, "agentdb:noSuchKey", "unknown setting"),
        ({"agentdb:grafanaImage": "grafana/grafana-oss:latest"}, "agentdb:grafanaImage", "pinned"),
        ({"agentdb:baseImage": "debian"}, "agentdb:baseImage", "pinned"),
        (
            {"agentdb:partitionPremakeMonths": 1},
            "agentdb:partitionPremakeMonths",
            "greater than or equal to 2",
        ),
        ({"agentdb:retentionDays": 0}, "agentdb:retentionDays", "greater than 0"),
        ({"agentdb:retentionDays": 36501}, "agentdb:retentionDays", "less than or equal to 36500"),
        ({"agentdb:tls": "perhaps"}, "agentdb:tls", "valid boolean"),
        ({"agentdb:runbookBaseUrl": "https://x/runbooks"}, "agentdb:runbookBaseUrl", "must end with /"),
        ({"agentdb:runbookBaseUrl": "https://x/{{ a }}/"}, "agentdb:runbookBaseUrl", "no spaces, quotes or braces"),
        ({"agentdb:logSlowStatementMs": -2}, "agentdb:logSlowStatementMs", "greater than or equal to -1"),
        ({"agentdb:logLockWaitMs": 0}, "agentdb:logLockWaitMs", "greater than or equal to 1"),
        ({"agentdb:logTempFilesKb": -5}, "agentdb:logTempFilesKb", "greater than or equal to -1"),
        ({"agentdb:logAutovacuumMs": "slow"}, "agentdb:logAutovacuumMs", "valid integer"),
        ({"agentdb:logCheckpointWarningS": -1}, "agentdb:logCheckpointWarningS", "greater than or equal to 0"),
        ({"agentdb:logRotationAgeMin": 7}, "agentdb:logRotationAgeMin", "7 must divide a day"),
        ({"agentdb:logRotationAgeMin": 2880}, "agentdb:logRotationAgeMin", "less than or equal to 1440"),
        ({"agentdb:logRotationSizeMb": 4096}, "agentdb:logRotationSizeMb", "less than or equal to 2047"),
        ({"memoryMb": 5}, "memoryMb", "no namespace"),
        ({"agentdb:replicas": -1}, "agentdb:replicas", "greater than or equal to 0"),
        ({"agentdb:replicas": 9}, "agentdb:replicas", "less than or equal to 8"),
        ({"agentdb:patroniTtl": 10}, "agentdb:patroniTtl", "greater than or equal to 20"),
        ({"agentdb:patroniLoopWait": 11, "agentdb:patroniTtl": 20}, "agentdb", "at most half of patroniTtl"),
        ({"agentdb:replicaMaxLag": -1}, "agentdb:replicaMaxLag", "greater than or equal to 0"),
        ({"agentdb:synchronousMode": "maybe"}, "agentdb:synchronousMode", "valid boolean"),
    ],
)
def test_bad_settings_name_key_and_rule(config, key, rule):
    with pytest.raises(SettingsError) as err:
        parse(config)
    message = str(err.value)
    assert f"{key}:" in message or f"'{key}'" in message, message
    assert rule in message, message


def test_other_namespaces_and_secrets_are_left_to_pulumi():
    settings = parse({"docker:host": "unix:///x", "agentdb:grafanaPassword": {"secure": "v1:abc"}})
    assert settings == Settings()


def test_missing_stack_file_is_named(tmp_path):
    with pytest.raises(SettingsError, match="no such stack file"):
        load("nope", root=tmp_path)


def test_bad_yaml_is_reported(tmp_path):
    path = tmp_path / "Pulumi.x.yaml"
    path.write_text("config: [unclosed")
    with pytest.raises(SettingsError, match="not valid YAML"):
        load("x", path=path)


def test_ports_are_all_distinct_by_default():
    ports = Settings().ports()
    assert len(set(ports.values())) == len(ports)
