"""The seeds' client examples against the external stack, through PgBouncer, as against the session stack."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from tests.sql.test_qlearning_functions import (
    MONITORING_QUERIES,
    check_quick_start,
)
from tests.sql.test_qlearning_functions import (
    test_seed_001_monitoring_and_maintenance_queries_run_as_written as run_monitoring_query,
)


@pytest.mark.parametrize("which", ["ext_stack", "cron_stack"])
def test_seed_001_quick_start_client_runs_through_pgbouncer(request, which, tmp_path: Path):
    stack = request.getfixturevalue(which)
    check_quick_start(stack.dsn("qlearning", role="app", via="pgbouncer"), tmp_path)


@pytest.fixture(scope="module")
def admin(ext_stack):
    with psycopg.connect(ext_stack.dsn("qlearning"), autocommit=True) as conn:
        yield conn


@pytest.mark.parametrize("name", list(MONITORING_QUERIES))
def test_seed_001_monitoring_and_maintenance_queries_run_as_the_admin(admin, name):
    # The admin is no superuser: it runs them with the owner's rights, which it holds as a member.
    run_monitoring_query(admin, name)
