"""A stack of the faults tests' own: they kill and restart its services, so the session stack is never disturbed.

Redis runs with AOF persistence here, so a killed Redis comes back with the cache entries it had: the
hard case for stale reads. Every test adds its figures to `reports/faults.json`, which
docs/reliability.md quotes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.conftest import REPO, TestStack, dedicated_stack

REPORT = REPO / "reports" / "faults.json"
# The failing cron job is scheduled when the stack comes up: pg_cron 1.4 runs at most once a minute.
FAILING_JOB = "qlearning-fault-injected"


@pytest.fixture(scope="package")
def fstack() -> Iterator[TestStack]:
    # The repository is encrypted, as in staging and prod (tests/faults/test_backup_encryption.py).
    overrides = {"agentdb:redisPersistence": "aof", "agentdb:backupEncryption": True}
    with dedicated_stack("agentdb-faults-", overrides, name="faults") as ts:
        ts.psql(
            None,
            f"SELECT cron.schedule_in_database('{FAILING_JOB}', '* * * * *', 'SELECT 1 / 0',"
            " 'qlearning_db', 'qlearning_owner', true)",
        )
        yield ts


@pytest.fixture(scope="session")
def report():
    """Figures by fault; merged into reports/faults.json when the session ends."""
    figures: dict[str, dict] = {}
    yield figures
    if figures:
        REPORT.parent.mkdir(exist_ok=True)
        old = json.loads(REPORT.read_text()) if REPORT.exists() else {}
        REPORT.write_text(json.dumps({**old, **figures}, indent=2, sort_keys=True) + "\n")


def pytest_collection_modifyitems(config, items):
    # The restores replace the whole cluster: they run after every other fault on the shared faults stack.
    items.sort(
        key=lambda item: (
            "/faults/" in str(item.fspath)
            and any(name in str(item.fspath) for name in ("test_restore", "test_machine_loss"))
        )
    )
