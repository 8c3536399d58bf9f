"""Helpers for the security tests: dedicated stacks, and row counts of every table of a database."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from infra.runner import LocalStack
from infra.settings import load
from tests.conftest import TestStack, agentdb, make_state_dir, write_stack_file


@contextmanager
def dedicated_stack(prefix: str, overrides: dict) -> Iterator[TestStack]:
    """A stack of its own (free ports, temporary state), up for the block and destroyed after it."""
    state = make_state_dir(prefix)
    stack_file = write_stack_file(state, "test", overrides)
    ts = TestStack(LocalStack("test", load("test", path=stack_file), state / "state"), stack_file, "")
    try:
        ts.up_output = ts.cli("up").stdout
        yield ts
    finally:
        agentdb(
            "destroy",
            "--stack",
            "test",
            "--stack-file",
            str(stack_file),
            "--state-dir",
            str(state / "state"),
            check=False,
        )
        shutil.rmtree(state, ignore_errors=True)


# Every table a user can see outside the catalogs, partitions counted through their root.
ROW_COUNTS = """
SELECT c.oid::regclass::text,
       (xpath('/row/n/text()',
              query_to_xml(format('SELECT count(*) AS n FROM %s', c.oid::regclass), false, true, '')))[1]::text::bigint
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
  AND n.nspname NOT LIKE 'pg_temp%'
ORDER BY 1
"""


def row_counts(conn: psycopg.Connection) -> dict[str, int]:
    """Table -> row count, for every table of the connection's database (run as a superuser)."""
    return dict(conn.execute(ROW_COUNTS).fetchall())
