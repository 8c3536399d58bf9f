"""Helpers for the security tests: row counts of every table of a database."""

from __future__ import annotations

import psycopg

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
