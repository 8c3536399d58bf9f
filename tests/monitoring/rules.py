"""Helpers for the monitoring tests: the rule files as the stack renders them, and their alerts."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from infra import credentials as sec
from infra import render
from infra.settings import Settings

RULES_DIR = render.CONFIG_DIR / "rules"
TEST_FILES = sorted(RULES_DIR.glob("*.test.yml"))
REQUIRED_ANNOTATIONS = ("summary", "description", "runbook_url")
# A replicated stack, so that the cluster rules (config/rules/cluster.yml.j2) render: 3 members,
# synchronous mode, lag limits in bytes. cluster.test.yml's expected annotations follow these values.
CLUSTER = {
    "replicas": 2,
    "synchronous_mode": True,
    "replica_max_lag": 8 * 1024 * 1024,
    "maximum_lag_on_failover": 32 * 1024 * 1024,
}


def cluster_settings(**overrides) -> Settings:
    """Settings of a replicated stack (CLUSTER), with `overrides` on top."""
    values = {**CLUSTER, **overrides}
    if values.keys() <= Settings.model_fields.keys():
        return Settings(**values)
    # The cluster settings join the model with the cluster work (issue 12); until they do, set them
    # unvalidated on a copy, which the rule templates read the same way.
    return Settings().model_copy(update=values)


def render_rules(settings: Settings, directory: Path) -> list[Path]:
    """Render the rule files through the stack's own renderer into `directory`; return their paths."""
    secrets = {name: "placeholder" for name in sec.secret_names(settings)}
    files = render.render(settings, secrets, render.Layout.local(directory / "state", settings, 15))
    paths = []
    for name, rendered in files.items():
        if name.startswith("rules/"):
            path = directory / name.removeprefix("rules/")
            path.write_text(rendered.content)
            paths.append(path)
    return sorted(paths)


def rendered_with_tests(directory: Path) -> list[Path]:
    """Production rendering (alertForScale 1) of a replicated stack, with the promtool test files beside it."""
    render_rules(cluster_settings(), directory)
    for test_file in TEST_FILES:
        shutil.copy(test_file, directory / test_file.name)
    return [directory / t.name for t in TEST_FILES]


def rules(settings: Settings | None = None) -> list[dict]:
    """Every alerting rule of the rendered rule files (one entry per severity); by default those of a
    replicated stack, which has every rule a single node has and the cluster's on top."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        out = []
        for path in render_rules(settings or cluster_settings(), Path(tmp)):
            for group in yaml.safe_load(path.read_text())["groups"]:
                out += [dict(rule, file=path.name) for rule in group["rules"] if "alert" in rule]
        return out


def alert_names() -> list[str]:
    return sorted({rule["alert"] for rule in rules()})


def unit_cases() -> list[dict]:
    """Every alert_rule_test case of every promtool test file, with its file name."""
    cases = []
    for test_file in TEST_FILES:
        doc = yaml.safe_load(test_file.read_text())
        for test in doc["tests"]:
            for case in test.get("alert_rule_test", []):
                cases.append(dict(case, file=test_file.name, test=test["name"]))
    return cases
