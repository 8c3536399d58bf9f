"""A migration that fails halfway leaves the database exactly as it was: schema, version, no partial objects.

The failing revision lives in a temporary copy of the qlearning history (never in sql/), and runs
through the one migration code path, infra.migrations.upgrade.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from alembic.config import Config

from infra import migrations
from infra.databases import DATABASES
from infra.runner import STATE_ROOT

pytestmark = pytest.mark.faults

DB = DATABASES["qlearning"]
# What the failing revision creates before it fails: none of it may remain.
PARTIAL = {
    "table": "SELECT to_regclass('public.fault_partial_table') IS NOT NULL",
    "index": "SELECT to_regclass('public.idx_fault_partial_table_note') IS NOT NULL",
    "function": "SELECT to_regprocedure('public.fault_partial_fn()') IS NOT NULL",
    "column": "SELECT count(*) > 0 FROM information_schema.columns"
    " WHERE table_name = 'q_values' AND column_name = 'fault_partial_column'",
    "row": "SELECT count(*) > 0 FROM agent_types WHERE agent_type = 'fault-partial-agent'",
}
FAILING_UP = """
CREATE TABLE fault_partial_table (id BIGINT PRIMARY KEY, note TEXT);
CREATE INDEX idx_fault_partial_table_note ON fault_partial_table (note);
CREATE FUNCTION fault_partial_fn() RETURNS INTEGER LANGUAGE sql AS $$ SELECT 1 $$;
ALTER TABLE q_values ADD COLUMN fault_partial_column TEXT;
INSERT INTO agent_types (agent_type, display_name) VALUES ('fault-partial-agent', 'Fault');
SELECT 1 / 0;
"""


@pytest.fixture()
def failing_history(monkeypatch) -> str:
    """A copy of sql/qlearning with one more revision on top that fails halfway; returns its id.

    The copy lives under the repository's git-ignored .stack/ (run_sql names failing files relative
    to the repository) and is removed afterwards.
    """
    STATE_ROOT.mkdir(exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="faults-migration-", dir=STATE_ROOT))
    monkeypatch.setattr(migrations, "_config", _config_with(scratch / "qlearning"))
    try:
        yield _write_failing_history(scratch / "qlearning")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _write_failing_history(history: Path) -> str:
    shutil.copytree(DB.sql_dir, history)
    head = migrations.heads(DB.key)[0]
    versions = history / "versions"
    (versions / "9999_fails_halfway.py").write_text(
        '"""A revision that fails halfway (faults test)."""\n\n'
        "from infra.migrations import run_sql\n\n"
        f'revision = "9999"\ndown_revision = "{head}"\nbranch_labels = None\ndepends_on = None\n\n\n'
        'def upgrade() -> None:\n    run_sql(__file__, "up")\n\n\n'
        'def downgrade() -> None:\n    run_sql(__file__, "down")\n'
    )
    (versions / "9999_fails_halfway.up.sql").write_text(FAILING_UP)
    (versions / "9999_fails_halfway.down.sql").write_text("SELECT 1;\n")
    return "9999"


def _config_with(history: Path):
    real_config = migrations._config

    def config(key: str) -> Config:
        cfg = real_config(key)
        if key == DB.key:
            cfg.set_main_option("script_location", str(history))
        return cfg

    return config


def schema_dump(stack) -> str:
    return subprocess.run(
        [
            str(Path(stack.local.pg_bindir) / "pg_dump"),
            "--schema-only",
            "--no-comments",
            "--restrict-key=faults",
            "-d",
            stack.dsn(DB.key),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_failing_migration_changes_nothing(fstack, failing_history, report):
    admin = fstack.dsn(DB.key)
    version_before = migrations.current(admin, DB.key)
    dump_before = schema_dump(fstack)
    agent_types_before = fstack.psql(DB.key, "SELECT count(*) FROM agent_types")
    with pytest.raises(migrations.MigrationError, match="division by zero"):
        migrations.upgrade(admin, DB.key, failing_history)
    report["migration_failed"] = {
        "fault": "a revision that creates a table, index, function, column and row, then fails",
        "writes_acknowledged": 0,
        "writes_lost": 0,
        "version_before": version_before,
        "version_after": migrations.current(admin, DB.key),
        "schema_identical": schema_dump(fstack) == dump_before,
    }
    assert migrations.current(admin, DB.key) == version_before
    assert schema_dump(fstack) == dump_before
    assert fstack.psql(DB.key, "SELECT count(*) FROM agent_types") == agent_types_before


@pytest.mark.parametrize("kind", sorted(PARTIAL))
def test_failing_migration_leaves_no_partial_object(fstack, failing_history, kind):
    with pytest.raises(migrations.MigrationError):
        migrations.upgrade(fstack.dsn(DB.key), DB.key, failing_history)
    assert fstack.psql(DB.key, PARTIAL[kind]).strip() == "f", f"the failed migration left its {kind} behind"
