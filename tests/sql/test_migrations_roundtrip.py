"""Every history goes down to base, leaving nothing of its own, and back up to an identical schema."""

from __future__ import annotations

import subprocess

import psycopg
import pytest

from infra import migrations
from infra.databases import DATABASES

# What a history creates: relations, functions and enum types in public that no extension owns (alembic's
# table aside), and pg_partman's templates and config rows for its partitioned tables.
OUR_OBJECTS = r"""
SELECT 'relation', c.relname FROM pg_class c
WHERE c.relnamespace = 'public'::regnamespace AND c.relname NOT LIKE 'alembic_version%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                  AND d.objid = c.oid AND d.deptype = 'e')
UNION ALL
SELECT 'partman template', c.relname FROM pg_class c
WHERE c.relnamespace = 'partman'::regnamespace AND c.relname LIKE 'template\_%'
UNION ALL
SELECT 'partman config', parent_table FROM partman.part_config
UNION ALL
SELECT 'function', p.proname FROM pg_proc p
WHERE p.pronamespace = 'public'::regnamespace
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                  AND d.objid = p.oid AND d.deptype = 'e')
UNION ALL
SELECT 'type', t.typname FROM pg_type t
WHERE t.typnamespace = 'public'::regnamespace AND t.typtype = 'e'
"""


def schema(stack, key: str) -> str:
    """pg_dump --schema-only; a fixed --restrict-key, since recent pg_dump writes a random one per run."""
    return subprocess.run(
        [str(stack.local.pg_bindir / "pg_dump"), "--schema-only", "--restrict-key=agentdb", stack.dsn(key)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


@pytest.mark.parametrize("key", list(DATABASES))
def test_down_to_base_and_up_again_gives_an_identical_schema(stack, key):
    dsn = stack.dsn(key)
    head = migrations.heads(key)
    assert migrations.current(dsn, key) in head
    before = schema(stack, key)
    try:
        migrations.downgrade(dsn, key, "base")
        assert migrations.current(dsn, key) is None
        with psycopg.connect(dsn) as conn:
            assert conn.execute(OUR_OBJECTS).fetchall() == []
    finally:  # the session's stack must end at head whatever happened
        migrations.upgrade(dsn, key)
    assert migrations.current(dsn, key) in head
    assert schema(stack, key) == before
