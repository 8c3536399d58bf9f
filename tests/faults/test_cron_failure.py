"""A failing pg_cron job is recorded in cron.job_run_details and shows in the exporter's cron metrics.

The job (`SELECT 1 / 0`, every minute) is scheduled when the faults stack comes up (conftest), since
pg_cron 1.4 has no schedule shorter than a minute; the other faults run meanwhile.
"""

from __future__ import annotations

import re
import urllib.request

import pytest

from tests.faults.conftest import FAILING_JOB
from tests.faults.load import wait_for

pytestmark = pytest.mark.faults

RUN_LIMIT_S = 130  # two minute boundaries


def failed_runs(stack) -> list[str]:
    return stack.psql(
        None,
        "SELECT r.return_message FROM cron.job_run_details r JOIN cron.job j USING (jobid)"
        f" WHERE j.jobname = '{FAILING_JOB}' AND r.status = 'failed'",
    ).splitlines()


def metrics(stack) -> str:
    port = stack.settings.postgres_exporter_port
    with urllib.request.urlopen(f"http://{stack.settings.bind_address}:{port}/metrics", timeout=10) as resp:
        return resp.read().decode()


def sample(text: str, name: str) -> float | None:
    pattern = rf'^{name}\{{[^}}]*jobname="{FAILING_JOB}"[^}}]*\}} (\S+)$'
    for line in text.splitlines():
        if re.match(pattern, line) and ('status="failed"' in line or "status=" not in line):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_failing_cron_job_is_recorded(fstack, report):
    waited = wait_for(lambda: failed_runs(fstack), "the failing job's first run", RUN_LIMIT_S)
    messages = failed_runs(fstack)
    report["cron_job_failed"] = {
        "fault": "a pg_cron job whose command fails (SELECT 1 / 0), every minute",
        "failed_runs_recorded": len(messages),
        "seconds_until_recorded": round(waited, 1),
    }
    assert "division by zero" in messages[0]


@pytest.mark.parametrize(
    ("metric", "expected"),
    [("agentdb_cron_runs_last_hour", "at least 1 failed run"), ("agentdb_cron_job_last_run_failed", "1")],
)
def test_failing_cron_job_shows_in_the_metric(fstack, metric, expected):
    wait_for(lambda: failed_runs(fstack), "the failing job's first run", RUN_LIMIT_S)
    value = sample(metrics(fstack), metric)
    assert value is not None, (
        f"{metric} has no series for {FAILING_JOB}: the monitoring role cannot read pg_cron's tables "
        "(it needs USAGE on schema cron, SELECT on cron.job and cron.job_run_details, and BYPASSRLS)"
    )
    assert value >= 1, f"{metric} = {value}, expected {expected}"
