"""The afs history goes down to base and up again with an identical schema (pg_dump --schema-only)."""

from __future__ import annotations

import subprocess

import psycopg

from infra.migrations import current, downgrade, heads, upgrade

KEY = "afs"


def schema(stack) -> str:
    result = subprocess.run(
        [str(stack.local.pg_bindir / "pg_dump"), "--schema-only", "--restrict-key=afs", stack.dsn(KEY)],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


def public_objects(stack) -> int:
    with psycopg.connect(stack.dsn(KEY)) as conn:
        return conn.execute(
            "SELECT count(*) FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace"
            " AND c.relname <> 'alembic_version' AND c.relname <> 'alembic_version_pkc'"
            " AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')"
        ).fetchone()[0]


def test_down_to_base_and_up_again_gives_the_same_schema(stack):
    dsn = stack.dsn(KEY)
    assert current(dsn, KEY) == heads(KEY)[0]
    before = schema(stack)
    downgrade(dsn, KEY, "base")
    try:
        assert current(dsn, KEY) is None
        assert public_objects(stack) == 0  # the down files removed everything the up files made
    finally:
        upgrade(dsn, KEY, "head")
    assert current(dsn, KEY) == heads(KEY)[0]
    assert schema(stack) == before
