"""`agentdb up` with an invalid stack file: exit code 2, one line naming the key, nothing started.

Each case writes a stack file that is valid except for one thing (free ports, small sizes, from
tests.conftest.write_stack_file), or raw text for the cases that are about the file itself.
"""

from __future__ import annotations

import shutil

import pytest

from tests.conftest import agentdb, make_state_dir, write_stack_file

# (case id, overrides of a valid stack file, what the message must contain)
BAD_VALUES = [
    ("type-int-from-text", {"agentdb:memoryMb": "lots"}, ["agentdb:memoryMb", "valid integer"]),
    ("type-int-from-fraction", {"agentdb:memoryMb": 1.5}, ["agentdb:memoryMb", "fractional part"]),
    ("type-bool", {"agentdb:tls": "perhaps"}, ["agentdb:tls", "valid boolean"]),
    ("type-list-from-text", {"agentdb:databases": "qlearning"}, ["agentdb:databases", "valid list"]),
    ("type-port-from-text", {"agentdb:pgbouncerPort": "six"}, ["agentdb:pgbouncerPort", "valid integer"]),
    ("range-memory-negative", {"agentdb:memoryMb": -5}, ["agentdb:memoryMb", "greater than 0"]),
    ("range-cpus-too-many", {"agentdb:cpus": 1000}, ["agentdb:cpus", "less than or equal to 256"]),
    ("range-port-too-high", {"agentdb:postgresPort": 70000}, ["agentdb:postgresPort", "less than or equal to 65535"]),
    ("range-port-zero", {"agentdb:redisPort": 0}, ["agentdb:redisPort", "greater than or equal to 1"]),
    ("range-max-client-conn-zero", {"agentdb:maxClientConn": 0}, ["agentdb:maxClientConn", "greater than or equal"]),
    ("range-retention-zero", {"agentdb:retentionDays": 0}, ["agentdb:retentionDays", "greater than 0"]),
    ("range-premake-months", {"agentdb:partitionPremakeMonths": 1}, ["agentdb:partitionPremakeMonths", "2"]),
    ("range-scrape-interval", {"agentdb:scrapeIntervalS": 0}, ["agentdb:scrapeIntervalS", "greater than or equal"]),
    ("range-alert-for-scale", {"agentdb:alertForScale": 11}, ["agentdb:alertForScale", "less than or equal to 10"]),
    ("enum-storage", {"agentdb:storage": "floppy"}, ["agentdb:storage", "'ssd'"]),
    ("enum-workload", {"agentdb:workload": "gaming"}, ["agentdb:workload", "'oltp'"]),
    ("enum-pool-mode", {"agentdb:poolMode": "sometimes"}, ["agentdb:poolMode", "'transaction'"]),
    ("enum-redis-policy", {"agentdb:redisMaxmemoryPolicy": "yolo"}, ["agentdb:redisMaxmemoryPolicy", "allkeys-lru"]),
    ("enum-redis-persistence", {"agentdb:redisPersistence": "tape"}, ["agentdb:redisPersistence", "'rdb'"]),
    ("unknown-key", {"agentdb:noSuchKey": 1}, ["agentdb:noSuchKey", "unknown setting"]),
    ("key-without-namespace", {"memoryMb": 2048}, ["memoryMb", "no namespace"]),
    ("unknown-database", {"agentdb:databases": ["qlearning", "crm"]}, ["agentdb:databases", "unknown database 'crm'"]),
    ("duplicate-database", {"agentdb:databases": ["afs", "afs"]}, ["agentdb:databases", "listed twice"]),
    ("no-database", {"agentdb:databases": []}, ["agentdb:databases", "at least 1 item"]),
    (
        "port-clash",
        {"agentdb:alertmanagerPort": 40001, "agentdb:prometheusPort": 40001},
        ["prometheus", "alertmanager", "40001"],
    ),
    (
        "pool-exceeds-max-client-conn",
        {"agentdb:defaultPoolSize": 900, "agentdb:maxClientConn": 100},
        ["defaultPoolSize", "maxClientConn"],
    ),
    ("bind-address-not-ip", {"agentdb:bindAddress": "localhost:5"}, ["agentdb:bindAddress", "not an IP address"]),
    ("replicas-negative", {"agentdb:replicas": -1}, ["agentdb:replicas", "greater than or equal to 0"]),
    ("patroni-ttl-too-short", {"agentdb:patroniTtl": 5}, ["agentdb:patroniTtl", "greater than or equal to 20"]),
    (
        "cluster-port-clash",
        {"agentdb:replicas": 2, "agentdb:postgresPort": 40010, "agentdb:patroniPort": 40011},
        ["pg-1", "pg-2", "40011", "agentdb:patroniPort", "agentdb:postgresPort"],
    ),
    ("image-latest", {"agentdb:baseImage": "debian:latest"}, ["agentdb:baseImage", "pinned"]),
    ("image-untagged", {"agentdb:grafanaImage": "grafana/grafana-oss"}, ["agentdb:grafanaImage", "pinned"]),
    ("image-empty-tag", {"agentdb:baseImage": "debian:"}, ["agentdb:baseImage", "pinned"]),
]

# (case id, raw file text or None for a missing file, what the message must contain)
BAD_FILES = [
    pytest.param("config: [unclosed\n", ["not valid YAML"], id="bad-yaml"),
    pytest.param(
        "config:\n  agentdb:cpus: 2\n agentdb:memoryMb: 1\n",
        ["not valid YAML"],
        id="bad-yaml-indentation",
    ),
    pytest.param("- agentdb:cpus\n- 2\n", ["expected a mapping"], id="not-a-mapping"),
    pytest.param("config: 5\n", ["expected a mapping with a `config:` mapping"], id="config-not-a-mapping"),
    pytest.param(None, ["no such stack file"], id="missing-file"),
]

CASES = len(BAD_VALUES) + len(BAD_FILES) + 1  # + the key given twice; recorded in docs/reliability.md


@pytest.fixture
def state():
    path = make_state_dir("agentdb-badcfg-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _up(stack_file, state) -> tuple[int, str, str]:
    result = agentdb(
        "up", "--stack", "bad", "--stack-file", str(stack_file), "--state-dir", str(state / "s"), check=False
    )
    return result.returncode, result.stdout, result.stderr


def _assert_refused(code: int, stdout: str, stderr: str, state, expected: list[str]) -> None:
    assert code == 2, f"exit {code}\n{stdout}\n{stderr}"
    message = stderr.strip()
    assert message.startswith("error: "), stderr
    assert "\n" not in message, f"not one line:\n{message}"
    for part in expected:
        assert part in message, f"{part!r} not in {message!r}"
    assert stdout == "", stdout
    assert not (state / "s").exists(), "the state directory was created"


@pytest.mark.parametrize(("overrides", "expected"), [c[1:] for c in BAD_VALUES], ids=[c[0] for c in BAD_VALUES])
def test_invalid_setting_exits_2_names_the_key_and_starts_nothing(state, overrides, expected):
    stack_file = write_stack_file(state, "bad", overrides)
    _assert_refused(*_up(stack_file, state), state, expected)


@pytest.mark.parametrize(("text", "expected"), BAD_FILES)
def test_invalid_stack_file_exits_2_names_the_problem_and_starts_nothing(state, text, expected):
    stack_file = state / "Pulumi.bad.yaml"
    if text is not None:
        stack_file.write_text(text)
    code, stdout, stderr = _up(stack_file, state)
    _assert_refused(code, stdout, stderr, state, [str(stack_file), *expected])


def test_a_key_given_twice_is_refused(state):
    """Two values for one key: which one wins must not be a guess. `status` starts nothing either way."""
    stack_file = state / "Pulumi.bad.yaml"
    stack_file.write_text("config:\n  agentdb:memoryMb: 1024\n  agentdb:memoryMb: 2048\n")
    result = agentdb(
        "status", "--stack", "bad", "--stack-file", str(stack_file), "--state-dir", str(state / "s"), check=False
    )
    _assert_refused(result.returncode, result.stdout, result.stderr, state, ["agentdb:memoryMb", "twice"])


def test_there_are_at_least_20_cases():
    assert CASES >= 20
