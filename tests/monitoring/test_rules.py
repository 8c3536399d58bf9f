"""The alert rules: valid for promtool, each alert tested firing and not firing, each with a runbook."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from infra.databases import REPO_ROOT
from infra.settings import Settings
from tests.monitoring.rules import (
    REQUIRED_ANNOTATIONS,
    TEST_FILES,
    alert_names,
    cluster_settings,
    render_rules,
    rendered_with_tests,
    rules,
    unit_cases,
)

PROMTOOL = "/usr/bin/promtool"
# The alerts the issue asks for, by the name each carries here.
SPECIFIED_ALERTS = [
    # the seeds' four
    "PostgreSQLSlowQueries",
    "PostgreSQLDeadTuples",
    "PgBouncerPoolSaturated",
    "PostgreSQLTableTooLarge",
    # the standard set
    "ExporterDown",
    "PostgreSQLDown",
    "PostgreSQLRestarted",
    "PostgreSQLConnectionsNearMax",
    "PostgreSQLDeadlocks",
    "PostgreSQLTxidWraparound",
    "PostgreSQLLongRunningQuery",
    "PostgreSQLIdleInTransaction",
    "PostgreSQLReplicationLag",
    "PgBouncerDown",
    "PgBouncerClientsWaiting",
    "PgBouncerMaxClientConn",
    "RedisDown",
    "RedisMemoryHigh",
    "RedisRejectedConnections",
    # ours
    "CronJobFailed",
    "MaterializedViewStale",
    "NextMonthPartitionMissing",
    "TTLCleanupBacklog",
    # backups (issue 14)
    "BackupTooOld",
    "WALArchivingFailing",
    "RestoreDrillFailing",
    "BackupRepositoryDown",
    # the cluster's (issue 12), rendered when agentdb:replicas > 0
    "PatroniNoLeader",
    "PatroniMembersMissing",
    "PatroniReplicaNotStreaming",
    "PatroniReplicationLag",
    "PatroniFailover",
    "EtcdMembersDown",
    "PatroniSyncStandbyMissing",
]
CLUSTER_ALERTS = SPECIFIED_ALERTS[SPECIFIED_ALERTS.index("PatroniNoLeader") :]
ALERTS = alert_names()
CASES = unit_cases()


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("rules")
    rendered_with_tests(directory)
    return directory


def test_every_specified_alert_exists_and_nothing_else():
    assert sorted(SPECIFIED_ALERTS) == ALERTS


@pytest.mark.parametrize("scale", [1.0, 0.05])
@pytest.mark.parametrize("replicated", [False, True], ids=["single", "cluster"])
def test_promtool_check_rules(tmp_path, scale, replicated):
    settings = cluster_settings(alert_for_scale=scale) if replicated else Settings(alert_for_scale=scale)
    paths = render_rules(settings, tmp_path)
    assert paths, "no rule files rendered"
    result = subprocess.run([PROMTOOL, "check", "rules", *map(str, paths)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_single_node_stack_has_no_cluster_rules(tmp_path):
    """agentdb:replicas 0 (the default): cluster.yml still renders, with empty groups."""
    paths = {p.name: p for p in render_rules(Settings(), tmp_path)}
    groups = yaml.safe_load(paths["cluster.yml"].read_text())["groups"]
    assert [g["name"] for g in groups] == ["cluster-patroni", "cluster-etcd"]
    assert all(g["rules"] == [] for g in groups)
    assert not {r["alert"] for r in rules(Settings())} & set(CLUSTER_ALERTS)


@pytest.mark.parametrize(
    ("alert", "severity", "overrides", "ending"),
    [
        ("PatroniMembersMissing", "warning", {"replicas": 1}, "< 2"),
        ("PatroniMembersMissing", "warning", {"replicas": 4}, "< 5"),
        ("PatroniReplicationLag", "warning", {"replica_max_lag": 123456789}, "> 123456789"),
        ("PatroniReplicationLag", "critical", {"maximum_lag_on_failover": 987654321}, "> 987654321"),
    ],
)
def test_cluster_thresholds_follow_the_settings(alert, severity, overrides, ending):
    (rule,) = [
        r for r in rules(cluster_settings(**overrides)) if r["alert"] == alert and r["labels"]["severity"] == severity
    ]
    assert rule["expr"].rstrip().endswith(ending), rule["expr"]


def test_sync_standby_alert_only_with_synchronous_mode():
    def names(sync):
        return {r["alert"] for r in rules(cluster_settings(synchronous_mode=sync))}

    assert "PatroniSyncStandbyMissing" in names(True)
    assert "PatroniSyncStandbyMissing" not in names(False)
    assert names(True) - names(False) == {"PatroniSyncStandbyMissing"}


@pytest.mark.parametrize("test_file", [t.name for t in TEST_FILES])
def test_promtool_test_rules(rendered, test_file):
    result = subprocess.run([PROMTOOL, "test", "rules", test_file], capture_output=True, text=True, cwd=rendered)
    assert result.returncode == 0, result.stdout + result.stderr


def test_for_durations_scale_with_settings():
    def fors(scale):
        return [rule.get("for") for rule in rules(cluster_settings(alert_for_scale=scale))]

    assert fors(1.0) != fors(0.05)
    assert "60s" in fors(1.0) and "3s" in fors(0.05)


@pytest.mark.parametrize("alert", ALERTS)
def test_alert_has_a_firing_case_with_annotations(alert):
    firing = [c for c in CASES if c["alertname"] == alert and c.get("exp_alerts")]
    assert firing, f"{alert}: no promtool case expects it to fire"
    for case in firing:
        for expected in case["exp_alerts"]:
            missing = [a for a in REQUIRED_ANNOTATIONS if a not in expected.get("exp_annotations", {})]
            assert not missing, f"{alert} ({case['test']}): annotations {missing} not asserted"
    severities = {e["exp_labels"]["severity"] for c in firing for e in c["exp_alerts"]}
    declared = {rule["labels"]["severity"] for rule in rules() if rule["alert"] == alert}
    assert severities == declared, f"{alert}: severities {declared} declared, {severities} tested firing"


@pytest.mark.parametrize("alert", ALERTS)
def test_alert_has_a_negative_case(alert):
    assert any(c["alertname"] == alert and not c.get("exp_alerts") for c in CASES), (
        f"{alert}: no promtool case expects it not to fire"
    )


@pytest.mark.parametrize("rule", rules(), ids=lambda r: f"{r['alert']}-{r['labels'].get('severity')}")
def test_rule_has_severity_and_annotations(rule):
    assert rule["labels"].get("severity") in {"warning", "critical"}
    for annotation in REQUIRED_ANNOTATIONS:
        assert rule["annotations"].get(annotation), f"{rule['alert']}: no {annotation}"
    assert rule["annotations"]["runbook_url"] == f"docs/runbooks/{rule['alert']}.md"


def test_runbook_url_follows_the_stack_setting():
    base = "https://git.example.com/platform/agentdb/-/blob/main/docs/runbooks/"
    urls = {r["alert"]: r["annotations"]["runbook_url"] for r in rules(cluster_settings(runbook_base_url=base))}
    assert urls and urls == {alert: f"{base}{alert}.md" for alert in ALERTS}


@pytest.mark.parametrize("alert", ALERTS)
def test_runbook_exists_with_its_sections(alert):
    path = REPO_ROOT / "docs" / "runbooks" / f"{alert}.md"
    assert path.is_file(), f"{path} missing"
    text = path.read_text()
    for section in ("Meaning", "Impact", "Diagnosis", "Mitigation"):
        assert f"## {section}" in text, f"{path.name}: no '## {section}' section"


MONITORING_DOC = (REPO_ROOT / "docs" / "monitoring.md").read_text()


@pytest.mark.parametrize("alert", ALERTS)
def test_alert_is_documented(alert):
    assert f"[{alert}](runbooks/{alert}.md)" in MONITORING_DOC


def _custom_metrics() -> list[str]:
    queries = yaml.safe_load((REPO_ROOT / "config" / "postgres_exporter_queries.yaml").read_text())
    return [
        f"{name}_{column}"
        for name, q in queries.items()
        for metric in q["metrics"]
        for column, spec in metric.items()
        if spec["usage"] != "LABEL"
    ]


@pytest.mark.parametrize("metric", _custom_metrics())
def test_metric_is_documented_with_the_prefix(metric):
    assert metric.startswith("agentdb_")
    assert f"`{metric}`" in MONITORING_DOC
