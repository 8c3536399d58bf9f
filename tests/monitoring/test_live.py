"""Live checks on the session stack: PromQL accepted, core series present, no alert on an idle stack,
and the end-to-end path PgBouncer down -> Prometheus -> Alertmanager -> webhook -> resolved.

The waits below poll until a condition holds or a limit passes; the limits are generous and only
keep a broken stack from hanging the run.
"""

from __future__ import annotations

import json
import re
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from infra.render import CONFIG_DIR
from tests.monitoring.rules import rules

DASHBOARD_DIR = CONFIG_DIR / "grafana" / "dashboards"
JOBS = ["prometheus", "postgres", "pgbouncer", "redis", "alertmanager", "backup"]
# Grafana's variables, as Prometheus needs them to parse the expression.
GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "1m",
    "$__range": "1h",
    "${__rate_interval}": "1m",
}
E2E_LIMIT_S = 120  # the issue: the alert reaches the webhook within 2 minutes


def rule_expressions() -> list[tuple[str, str]]:
    return [(f"rule:{r['alert']}:{r['labels']['severity']}", r["expr"]) for r in rules()]


def dashboard_expressions() -> list[tuple[str, str]]:
    out = []
    for path in sorted(DASHBOARD_DIR.glob("*.json")):
        doc = json.loads(path.read_text())
        for panel in doc.get("panels", []):
            for target in panel.get("targets", []):
                if target.get("expr"):
                    out.append((f"{path.stem}:{panel.get('title')}:{target.get('refId')}", target["expr"]))
        for variable in doc.get("templating", {}).get("list", []):
            query = variable.get("query")
            if isinstance(query, dict):
                query = query.get("query")
            if variable.get("type") == "query" and query:
                match = re.match(r"label_values\((.*),\s*\w+\)$", query)
                if match:
                    out.append((f"{path.stem}:variable:{variable['name']}", match.group(1)))
    return out


def substitute(expr: str) -> str:
    for name, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(name, value)
    # Dashboard variables ($datname, ${datname}) become a match-everything regex.
    return re.sub(r"\$\{?\w+\}?", ".*", expr)


def wait_for(what: str, check: Callable[[], object], limit_s: float, every_s: float = 1.0):
    """Poll `check` until it returns something truthy; fail naming `what` after `limit_s`."""
    deadline = time.monotonic() + limit_s
    last = None
    while True:
        try:
            last = check()
            if last:
                return last
        except Exception as exc:  # not there yet
            last = exc
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not seen within {limit_s:.0f}s (last: {last!r})")
        time.sleep(every_s)


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.load(resp)


@pytest.fixture(scope="module")
def prometheus(stack) -> str:
    s = stack.settings
    return f"http://{s.bind_address}:{s.prometheus_port}"


@pytest.fixture(scope="module")
def alertmanager(stack) -> str:
    s = stack.settings
    return f"http://{s.bind_address}:{s.alertmanager_port}"


def query(prometheus: str, promql: str) -> dict:
    url = f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    try:
        return get_json(url)
    except urllib.error.HTTPError as exc:  # 400 carries Prometheus's parse error
        return json.loads(exc.read())


def vector(prometheus: str, promql: str) -> list[dict]:
    body = query(prometheus, promql)
    assert body["status"] == "success", f"{promql}: {body.get('error')}"
    return body["data"]["result"]


@pytest.fixture(scope="module")
def loaded(stack, prometheus) -> None:
    """A short load through PgBouncer, then enough scrapes for it to show."""
    for key in stack.settings.databases:
        with psycopg.connect(stack.dsn(key, "app", "pgbouncer"), autocommit=True, prepare_threshold=None) as conn:
            for _ in range(20):
                conn.execute("SELECT count(*) FROM pg_class")
    if "qlearning" in stack.settings.databases:
        with psycopg.connect(stack.dsn("qlearning", "app", "pgbouncer"), autocommit=True, prepare_threshold=None) as c:
            for i in range(20):
                c.execute("SELECT * FROM get_best_action(%s, %s)", ("test-generator", f"state-{i}"))
    wait_for(
        "pg_stat_statements series for the load",
        lambda: vector(prometheus, 'agentdb_statements_calls{usename=~".+_app"}'),
        limit_s=60,
    )


@pytest.mark.parametrize(("where", "expr"), rule_expressions() + dashboard_expressions(), ids=lambda v: v[:60])
def test_promql_is_accepted(prometheus, where, expr):
    body = query(prometheus, substitute(expr))
    assert body["status"] == "success", f"{where}: {body.get('errorType')}: {body.get('error')}"


CORE_SERIES = [(f"up-{job}", f'up{{job="{job}"}} == 1') for job in JOBS] + [
    ("pg_stat_statements", "agentdb_statements_calls"),
    ("pgbouncer-pools", "pgbouncer_pools_client_active_connections"),
    ("redis-memory", "redis_memory_used_bytes"),
    # Needs the baseline to grant agentdb_monitor read access to pg_cron (docs/monitoring.md, "Privileges").
    ("cron-runs", "agentdb_cron_runs_last_hour"),
    # WAL archiving and the backup scheduler's repository probe (issue 14).
    ("wal-archiver", "agentdb_archiver_failed_count"),
    ("backup-repository", "agentdb_backup_repository_up == 1"),
]


@pytest.mark.parametrize(("name", "promql"), CORE_SERIES, ids=[n for n, _ in CORE_SERIES])
def test_core_series_have_data(prometheus, loaded, name, promql):
    result = wait_for(f"{name} ({promql})", lambda: vector(prometheus, promql), limit_s=30)
    assert result


def test_no_alert_fires_on_an_idle_stack(stack, prometheus):
    """After every scaled `for:` has elapsed at least once, nothing is firing."""
    longest_for = max(int(r.get("for", "0s").removesuffix("s")) for r in rules(stack.settings))
    settle_s = longest_for + 5 * stack.settings.scrape_interval_s
    start = float(vector(prometheus, 'process_start_time_seconds{job="prometheus"}')[0]["value"][1])
    time.sleep(max(0.0, start + settle_s - time.time()))
    firing = vector(prometheus, 'ALERTS{alertstate="firing"}')
    assert firing == [], [a["metric"] for a in firing]


def _webhook_alerts(path: Path, alertname: str, status: str) -> list[dict]:
    if not path.exists():
        return []
    found = []
    for line in path.read_text().splitlines():
        payload = json.loads(line)["payload"]
        for alert in payload.get("alerts", []):
            if alert["labels"].get("alertname") == alertname and alert["status"] == status:
                found.append(alert)
    return found


def _pgbouncer_healthy(stack) -> bool:
    service = next(s for s in stack.local.services() if s.name == "pgbouncer")
    service.health()
    return True


def test_pgbouncer_down_alert_reaches_the_webhook_and_resolves(stack, prometheus, alertmanager):
    webhook_log = stack.state_dir / "logs" / "alerts.jsonl"
    resolved_before = len(_webhook_alerts(webhook_log, "PgBouncerDown", "resolved"))
    stopped = stack.local._ctl("stop", "pgbouncer")
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    try:
        start = time.monotonic()

        def remaining() -> float:
            return max(1.0, E2E_LIMIT_S - (time.monotonic() - start))

        wait_for(
            "PgBouncerDown firing in Prometheus",
            lambda: vector(prometheus, 'ALERTS{alertname="PgBouncerDown", alertstate="firing"}'),
            limit_s=remaining(),
        )
        in_am = wait_for(
            "PgBouncerDown in Alertmanager",
            lambda: [
                a
                for a in get_json(f"{alertmanager}/api/v2/alerts")
                if a["labels"].get("alertname") == "PgBouncerDown" and a["status"]["state"] == "active"
            ],
            limit_s=remaining(),
        )
        assert in_am[0]["labels"]["severity"] == "critical"
        delivered = wait_for(
            "PgBouncerDown firing notification in the webhook log",
            lambda: _webhook_alerts(webhook_log, "PgBouncerDown", "firing"),
            limit_s=remaining(),
        )
        assert delivered[-1]["annotations"]["runbook_url"] == "docs/runbooks/PgBouncerDown.md"
    finally:
        stack.local._ctl("start", "pgbouncer")
        wait_for("PgBouncer healthy again", lambda: _pgbouncer_healthy(stack), limit_s=60)
    wait_for(
        "PgBouncerDown resolved notification in the webhook log",
        lambda: len(_webhook_alerts(webhook_log, "PgBouncerDown", "resolved")) > resolved_before,
        limit_s=E2E_LIMIT_S,
    )
    assert vector(prometheus, 'ALERTS{alertname="PgBouncerDown", alertstate="firing"}') == []
