"""Who syncs the jobs into pg_cron and who leaves them to our scheduler: one decision, `cron.deferred`.

On the test server pg_cron lives in `postgres`; seen from qlearning_db it is not installed, which is
what an external server without pg_cron looks like to the admin.
"""

from __future__ import annotations

import psycopg
import pytest

from infra import baseline, cron
from infra.databases import DATABASES
from infra.program.schema import CronJobsProvider, job_list

DB = DATABASES["qlearning"]


def _settings(stack, mode: str):
    return stack.settings.model_copy(update={"postgres_mode": mode})


@pytest.mark.parametrize(
    ("mode", "key", "reason"),
    [
        ("local", None, None),
        ("local", "qlearning", None),  # a server agentdb runs always has pg_cron: sync, fail loudly if not
        ("external", None, None),
        ("external", "qlearning", "the pg_cron extension is not installed in database qlearning_db"),
    ],
)
def test_deferred_only_on_an_external_server_without_a_usable_pg_cron(stack, mode, key, reason):
    found = cron.deferred(stack.dsn(key), _settings(stack, mode))
    assert found == reason if reason is None else found.startswith(reason)


class _Target:
    """A target whose admin database is qlearning_db, where pg_cron is not installed."""

    def __init__(self, stack):
        self.settings = _settings(stack, "external")
        self._stack = stack

    def dsn(self, db, role="admin", via="postgres"):
        return self._stack.dsn(DB.key)


def test_the_baseline_leaves_the_jobs_to_the_scheduler_quietly(stack):
    # `up` says it once, among the downgrades (infra/external.py); the per-database step syncs nothing.
    lines: list[str] = []
    with psycopg.connect(stack.dsn(None)) as conn:
        before = conn.execute("SELECT count(*) FROM cron.job").fetchone()[0]
    baseline.schedule(_Target(stack), DB, lines.append)
    with psycopg.connect(stack.dsn(None)) as conn:
        assert conn.execute("SELECT count(*) FROM cron.job").fetchone()[0] == before
    assert lines == []


def test_the_pulumi_provider_leaves_them_too(stack):
    settings = _settings(stack, "external")
    props = {
        "admin_dsn": stack.dsn(DB.key),
        "key": DB.key,
        "settings": settings.model_dump(mode="json"),
        "jobs": job_list(DB.key, settings),
        "keep_data": False,
    }
    provider = CronJobsProvider()
    assert provider.create(props).outs["changed"] == []
    provider.delete(f"{DB.key}-cron", props)  # nothing to unschedule, and no cron schema to look in
    scheduled = stack.psql(None, "SELECT jobname FROM cron.job WHERE jobname LIKE 'qlearning-%'").split()
    assert set(scheduled) == {job.name for job in cron.jobs(DB, stack.settings)}
