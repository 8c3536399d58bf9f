"""Dashboards as code: the committed JSON is exactly what the Python generates, and covers the spec."""

from __future__ import annotations

import json

import pytest
import yaml

from infra.dashboards import OUTPUT_DIR, build_all
from infra.render import CONFIG_DIR
from infra.settings import Settings

GENERATED = build_all()
# The dashboards: overview, PgBouncer, Redis, one workload dashboard per enabled database.
EXPECTED = ["agentdb-postgres.json", "agentdb-pgbouncer.json", "agentdb-redis.json"] + [
    f"agentdb-workload-{key}.json" for key in Settings().databases
]
# qlearning's workload panels (issue 7), by a word each title must contain.
QLEARNING_PANELS = ["upserts", "lookups/s", "latency", "trajectories", "cleanup", "cron runs", "refresh age"]
# The cluster row of the PostgreSQL overview (issue 12), by a word each title must contain.
# The Backups row of the PostgreSQL overview (issue 14): one panel per backup alert's source.
BACKUP_PANELS = ["repository", "full or diff backup", "wal archiving failing", "verify", "restore drill"]
CLUSTER_PANELS = ["leaders", "members", "replicas streaming", "sync standby", "role", "lag", "timeline", "etcd"]


@pytest.mark.parametrize("name", EXPECTED)
def test_dashboard_is_generated(name):
    assert name in GENERATED


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_committed_json_matches_regeneration(name):
    committed = OUTPUT_DIR / name
    assert committed.is_file(), f"{committed} missing: run `python -m infra.dashboards` and commit"
    assert committed.read_text() == GENERATED[name], f"{name} differs: run `python -m infra.dashboards` and commit"


def test_no_stale_committed_dashboards():
    assert sorted(p.name for p in OUTPUT_DIR.glob("*.json")) == sorted(GENERATED)


@pytest.mark.parametrize("word", QLEARNING_PANELS)
def test_qlearning_workload_panel(word):
    doc = json.loads(GENERATED["agentdb-workload-qlearning.json"])
    titles = [p["title"].lower() for p in doc["panels"]]
    assert any(word in t for t in titles), f"no panel about {word!r} in {titles}"


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_panels_use_the_provisioned_datasource(name):
    datasources = yaml.safe_load((CONFIG_DIR / "grafana/provisioning/datasources/prometheus.yml").read_text())
    uid = datasources["datasources"][0]["uid"]
    doc = json.loads(GENERATED[name])
    for panel in doc["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == uid, panel["title"]
            assert panel["targets"], f"{panel['title']}: no query"


def _row_titles(doc: dict, row_title: str) -> list[str]:
    """Titles of the panels between the row named `row_title` and the next row."""
    titles, inside = [], False
    for panel in doc["panels"]:
        if panel["type"] == "row":
            inside = panel["title"] == row_title
        elif inside:
            titles.append(panel["title"].lower())
    return titles


@pytest.mark.parametrize("word", CLUSTER_PANELS)
def test_postgres_overview_has_a_cluster_row_panel(word):
    doc = json.loads(GENERATED["agentdb-postgres.json"])
    titles = _row_titles(doc, "Cluster (Patroni and etcd)")
    assert any(word in t for t in titles), f"no cluster panel about {word!r} in {titles}"


@pytest.mark.parametrize("word", BACKUP_PANELS)
def test_postgres_overview_shows_the_backups(word):
    titles = [t.lower() for t in _row_titles(json.loads(GENERATED["agentdb-postgres.json"]), "Backups")]
    assert any(word in t for t in titles), f"no panel about {word!r} in the Backups row: {titles}"
