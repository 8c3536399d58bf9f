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
    """Production rendering (alertForScale 1) with the promtool test files beside it."""
    render_rules(Settings(), directory)
    for test_file in TEST_FILES:
        shutil.copy(test_file, directory / test_file.name)
    return [directory / t.name for t in TEST_FILES]


def rules(settings: Settings | None = None) -> list[dict]:
    """Every alerting rule of the rendered rule files (one entry per severity)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        out = []
        for path in render_rules(settings or Settings(), Path(tmp)):
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
