"""Every table of the four databases round-trips through the ordinary drivers with their defaults (issue 18).

A representative row per table is inserted through PgBouncer with the app role, read back and compared
with what was written: once with asyncpg's default codecs, once with psycopg 3 after more than
`prepare_threshold` executions, so the last round runs as server-side prepared statements. A type one of
them cannot send or read as its users do is a schema problem: the fix goes in the schema, not in a codec
every client would have to register.

What "as its users do" means, per kind of column:
- JSON (json, jsonb, and arrays of them): one JSON document. asyncpg takes and returns it as a string
  (`json.dumps` / `json.loads`, as seed 001's client does), psycopg as `Jsonb(obj)` and a Python object.
  A jsonb[] column fails here: asyncpg wants a list of strings and psycopg a list of Jsonb.
- arrays of scalars: Python lists; enums: strings; timestamptz: aware datetimes; UUID, NUMERIC: exact.
- pgvector's `vector`: neither driver knows it without a package, so both send and read its text
  form `'[x,y,...]'` as a string, and it must come back the same string.

Rows come from the catalog: every column gets a value of its type (the first value its one-column CHECK
allows, a JSON array where the CHECK asks for one), every NOT NULL foreign key a parent row built the
same way, and ROWS holds each table's few exceptions. Every round runs in a transaction that is rolled
back. Tables the app role may not write are written (and removed again) by the superuser and only read
through the drivers.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import random
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import psycopg
import pytest
from psycopg.types.json import Jsonb

from infra.databases import DATABASES

NOW = datetime.now(UTC).replace(microsecond=123456)
EXISTING = "existing"  # reference rows that hold every key the constraints allow: read what is there
COMPUTED = object()  # a column a trigger sets: not written, not compared
PARENT = object()  # a nullable foreign key that gets a parent row all the same (row-level security wants it)


def _parent(parents: list[tuple[str, dict[str, Any]]], table: str) -> dict[str, Any]:
    return next(row for name, row in reversed(parents) if name == table)


# Per table, the columns whose generic value the table's constraints or triggers refuse. A value may be a
# callable of the row built so far (generic values filled in) and the parent rows built for it. Every
# table of the four databases has an entry, empty when the generic row is valid: a new table without
# one fails test_every_table_has_a_row_builder, and a column of a type _scalar has no value for fails
# naming the column.
ROWS: dict[str, dict[str, dict[str, Any] | str]] = {
    "qlearning": {
        "agent_types": {},
        "sessions": {},
        "q_values": {},
        "trajectories": {},
        "rewards": {},
        "patterns": {"usage_count": 2},
        "agent_states": {"total_tasks": 2},
        "agentdb_mv_refresh": {},
        "agentdb_settings": EXISTING,
    },
    "afs": {
        "agent_executions": {},
        "benchmark_results": {},
        "consensus_decisions": {"all_scores": {}},
        "fork_cleanup_logs": {},
        "optimization_proposals": {
            "estimated_impact": {
                "query_time_improvement": 50,
                "storage_overhead_mb": 10,
                "complexity": "low",
                "risk": "low",
            }
        },
        "orders": {},
        "payments": {},
        "query_logs": {},
        "tasks": {},
        "users": {},
    },
    "agentic": {
        "agent_audit_log": {
            # One tenant per transaction: the session's user is the row's user.
            "session_id": PARENT,
            "user_id": lambda row, parents: _parent(parents, "agent_sessions")["user_id"],
        },
        "agent_decisions": {"action_taken": {"type": "write_file", "path": "é/a.txt"}},
        "agent_decisions_archive": {},
        "agent_knowledge": {},
        "agent_sessions": {"expires_at": lambda row, parents: row["started_at"] + timedelta(hours=1)},
        "agents": {"capabilities": ["read", "write"]},
        "conversation_history": {"parent_message_id": None},
        "conversation_history_archive": {},
        "schema_versions": {},
        "trust_level_thresholds": EXISTING,
        "trust_metrics": {},
        "trust_metrics_daily": {},
        "users": {"email": lambda row, parents: f"user-{uuid.uuid4().hex[:8]}@example.com"},
    },
    "orchestrator": {
        "achievements": {},
        "agent_achievements": {},
        "agent_activity_log": {},
        "agent_permissions": {},
        "agent_skills": {},
        "agent_status_history": {},
        "agents": {},
        "appeals": {"agent_id": lambda row, parents: _parent(parents, "violations")["agent_id"]},
        "battle_participants": {},
        "battle_rounds": {},
        "battles": {},
        "brainstorm_participants": {},
        "brainstorm_sessions": {},
        "eigentrust_runs": {},
        "elo_history": {"change": 0},
        "global_trust_scores": {},
        "hall_of_fame": {},
        "idea_combinations": {},
        "idea_votes": {},
        "ideas": {},
        "leaderboard_categories": {},
        "leaderboard_rankings": {},
        "mentee_progress": {},
        "mentor_profiles": {},
        "mentorship_curriculum": {},
        "mentorship_pairings": {},
        "mentorship_sessions": {},
        "peer_ratings": {"rating": Decimal("4.5")},
        "penalty_history": {},
        # The sample data (which other tests seed into the same stack) holds (timeout, 1): another key.
        "penalty_rules": {"violation_type": "policy_breach", "severity": 5},
        "point_transactions": {"balance_after": COMPUTED},
        "pre_trusted_agents": {},
        "priority_queue_entries": {},
        "reputation_history": {},
        "resource_allocations": {"resource_type": COMPUTED},
        "resource_pools": {},
        "retraining_programs": {},
        "reward_claims": {},
        "rewards": {},
        "streaks": {},
        "system_settings": {},
        "task_assignments": {},
        "task_dependencies": {},
        "task_history": {},
        "task_queues": {},
        "task_results": {},
        "tasks": {},
        "team_members": {},
        "teams": {},
        "tier_definitions": EXISTING,
        "tier_history": {},
        "trust_graph": {},
        "violations": {},
        "vote_audit_trail": {},
        "votes": {"vote_option": "yes", "ranking": ["yes", "no"]},
        "voting_sessions": {"status": "open", "options": ["yes", "no"], "closes_at": NOW + timedelta(days=1)},
    },
}

# Row-level security: the setting the app role's policies read, and the column of the row it comes from.
RLS_SETTING = {"agentic": ("app.current_user_id", "user_id"), "orchestrator": ("app.current_agent_id", "agent_id")}

CATALOG_SQL = """
SELECT c.relname, a.attname, t.typname, t.typtype, et.typname, a.atttypmod, a.attnotnull, a.attgenerated <> '',
       (SELECT array_agg(e.enumlabel ORDER BY e.enumsortorder) FROM pg_enum AS e WHERE e.enumtypid = t.oid),
       has_table_privilege(%(app)s, c.oid, 'INSERT')
FROM pg_class AS c
JOIN pg_attribute AS a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_type AS t ON t.oid = a.atttypid
LEFT JOIN pg_type AS et ON et.oid = t.typelem AND t.typcategory = 'A'
WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND c.relname NOT LIKE 'alembic_version%%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend AS d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                  AND d.deptype = 'e')
ORDER BY c.relname, a.attnum
"""

CONSTRAINTS_SQL = """
SELECT c.contype, c.conrelid::regclass::text,
       ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY AS k (n, i)
             JOIN pg_attribute AS a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.i),
       c.confrelid::regclass::text,
       ARRAY(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY AS k (n, i)
             JOIN pg_attribute AS a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.i),
       pg_get_constraintdef(c.oid)
FROM pg_constraint AS c
JOIN pg_class AS r ON r.oid = c.conrelid
WHERE r.relnamespace = 'public'::regnamespace AND c.contype IN ('p', 'f', 'c') AND NOT r.relispartition
ORDER BY c.conname
"""


@dataclass
class Column:
    name: str
    type: str
    typtype: str
    element: str | None
    typmod: int
    not_null: bool
    generated: bool
    labels: list[str] | None

    @property
    def is_json(self) -> bool:
        return self.type in ("json", "jsonb") or self.element in ("json", "jsonb")


@dataclass
class Table:
    name: str
    columns: dict[str, Column] = field(default_factory=dict)
    app_may_insert: bool = True
    primary_key: list[str] = field(default_factory=list)
    foreign_keys: list[tuple[list[str], str, list[str]]] = field(default_factory=list)
    checks: dict[str, list[str]] = field(default_factory=dict)  # column -> its one-column CHECKs


def read_catalog(conn: psycopg.Connection, app_role: str) -> dict[str, Table]:
    """The public tables of one database (partitions under their parent), from the catalog."""
    tables: dict[str, Table] = {}
    for rel, name, typ, typtype, element, typmod, not_null, generated, labels, insert in conn.execute(
        CATALOG_SQL, {"app": app_role}
    ):
        table = tables.setdefault(rel, Table(rel, app_may_insert=insert))
        table.columns[name] = Column(name, typ, typtype, element, typmod, not_null, generated, labels)
    for kind, rel, columns, parent, parent_columns, definition in conn.execute(CONSTRAINTS_SQL):
        table = tables.get(rel)
        if table is None:
            continue
        if kind == "p":
            table.primary_key = columns
        elif kind == "f":
            table.foreign_keys.append((columns, parent, parent_columns))
        elif len(columns) == 1:
            table.checks.setdefault(columns[0], []).append(definition)
    return tables


def _text(column: Column, token: str) -> str:
    limit = column.typmod - 4 if column.type == "varchar" and column.typmod > 0 else 64
    return f"{column.name[: max(1, limit - len(token) - 2)]}-é{token}"[:limit]


def _vector(dimensions: int) -> str:
    # Multiples of 1/8 are exact in float4, so pgvector prints them back digit for digit.
    return "[" + ",".join(f"{(i % 8) / 8 - 0.5:g}" for i in range(dimensions)) + "]"


def generic_value(table: Table, column: Column) -> Any:
    """A value of the column's type that its one-column CHECKs accept."""
    token = uuid.uuid4().hex[:8]
    checks = " ".join(table.checks.get(column.name, []))
    allowed = re.search(r"ANY \(+ARRAY\['((?:[^']|'')*)'", checks)
    if allowed and column.type in ("text", "varchar", "bpchar"):
        return allowed.group(1).replace("''", "'")
    if column.is_json:
        if "'array'" in checks or column.element:
            return [{"step": 1, "value": "é"}, {"step": 2, "value": [1, 2.5, None]}]
        return {"key": f"é-{token}", "nested": {"list": [1, 2.5, None], "flag": True}}
    if column.typtype == "e":
        return column.labels[0]
    if column.element:
        element = Column(column.name, column.element, "b", None, -1, True, False, None)
        return [_scalar(table, element, token, False), _scalar(table, element, uuid.uuid4().hex[:8], False)]
    return _scalar(table, column, token, column.name in table.primary_key)


def _scalar(table: Table, column: Column, token: str, is_key: bool) -> Any:
    # Keys get a number no sequence reaches; other numbers the value every range CHECK here accepts.
    scalars: dict[str, Callable[[], Any]] = {
        "int2": lambda: random.randint(20_000, 32_000) if is_key else 1,
        "int4": lambda: random.randint(1_000_000_000, 2_000_000_000) if is_key else 1,
        "int8": lambda: random.randint(10**15, 10**16) if is_key else 1,
        "numeric": lambda: Decimal("0.5"),
        "float4": lambda: 0.5,
        "float8": lambda: 0.5,
        "bool": lambda: True,
        "text": lambda: _text(column, token),
        "varchar": lambda: _text(column, token),
        "uuid": uuid.uuid4,
        "timestamptz": lambda: NOW,
        "date": lambda: NOW.date(),
        "interval": lambda: timedelta(minutes=5),
        "inet": lambda: ipaddress.ip_address("192.0.2.7"),
        "vector": lambda: _vector(column.typmod),
    }
    if column.type not in scalars:
        raise AssertionError(f"{table.name}.{column.name}: no representative value for type {column.type}")
    return scalars[column.type]()


def build(db: str, catalog: dict[str, Table], name: str, depth: int = 0) -> list[tuple[str, dict[str, Any]]]:
    """Rows to insert, parents first, the representative row of `name` last."""
    if depth > 8:
        raise AssertionError(f"{db}.{name}: foreign keys nest too deep to build parents")
    table = catalog[name]
    overrides = ROWS[db].get(name, {})
    inserts: list[tuple[str, dict[str, Any]]] = []
    row: dict[str, Any] = {}
    foreign = {c for columns, _, _ in table.foreign_keys for c in columns}
    for column in table.columns.values():
        if column.generated or column.name in foreign:
            continue
        row[column.name] = generic_value(table, column)
    for columns, parent, parent_columns in table.foreign_keys:
        wanted = any(overrides.get(c) is PARENT for c in columns)
        if all(c in overrides for c in columns) and not wanted:
            continue
        if not (wanted or any(table.columns[c].not_null for c in columns)) or parent == name:
            for c in columns:
                row[c] = None
            continue
        parents = build(db, catalog, parent, depth + 1)
        inserts += parents
        parent_row = parents[-1][1]
        for c, p in zip(columns, parent_columns, strict=True):
            row[c] = parent_row[p]
    for column, value in overrides.items():
        if value is COMPUTED:
            row.pop(column, None)
        elif value is not PARENT:
            row[column] = value(row, inserts) if callable(value) else value
    return [*inserts, (name, row)]


# --- the two drivers ---------------------------------------------------------------------------------


def _insert(table: str, row: dict[str, Any], placeholder: Callable[[int], str]) -> str:
    columns = ", ".join(f'"{c}"' for c in row)
    values = ", ".join(placeholder(i) for i in range(1, len(row) + 1))
    return f'INSERT INTO "{table}" ({columns}) VALUES ({values})'


def _select(table: Table, placeholder: Callable[[int], str]) -> str:
    columns = ", ".join(f'"{c}"' for c in table.columns)
    where = " AND ".join(f'"{c}" = {placeholder(i)}' for i, c in enumerate(table.primary_key, 1))
    return f'SELECT {columns} FROM "{table.name}" WHERE {where}'


def _rls(db: str, chain: list[tuple[str, dict[str, Any]]]) -> str | None:
    if db not in RLS_SETTING:
        return None
    column = RLS_SETTING[db][1]
    for _, row in reversed(chain):
        if row.get(column) is not None:
            return str(row[column])
    return None


def mismatches(table: Table, written: dict[str, Any], got: dict[str, Any], driver: str) -> dict[str, str]:
    """Columns whose value did not come back as written (kind and value), with what came instead."""
    wrong: dict[str, str] = {}
    for name, value in written.items():
        if name not in got:
            continue
        column, back = table.columns[name], got[name]
        if value is None:
            ok = back is None
        elif column.is_json:
            # asyncpg hands JSON out as the document's text, psycopg parsed.
            ok = (isinstance(back, str) and json.loads(back) == value) if driver == "asyncpg" else back == value
        elif column.type == "uuid":
            ok = isinstance(back, uuid.UUID) and back == value
        elif column.type == "timestamptz":
            ok = isinstance(back, datetime) and back.tzinfo is not None and back == value
        elif column.type == "numeric":
            ok = isinstance(back, Decimal) and back == value
        elif column.type == "date":
            ok = type(back) is date and back == value
        else:
            ok = type(back) is type(value) and back == value
        if not ok:
            wrong[name] = f"{column.type}: wrote {value!r}, read {back!r}"
    return wrong


def _psycopg_param(column: Column, value: Any) -> Any:
    return Jsonb(value) if column.is_json and value is not None else value


def _asyncpg_param(column: Column, value: Any) -> Any:
    return json.dumps(value) if column.is_json and value is not None else value


def psycopg_round(
    conn: psycopg.Connection, db: str, catalog: dict[str, Table], name: str, chain: list | None = None
) -> dict[str, str]:
    """Insert a representative row and its parents (or read `chain`, written already), read it back.

    The transaction is rolled back."""
    written, chain = chain is None, chain or build(db, catalog, name)
    table, row = catalog[name], chain[-1][1]
    with conn.transaction(force_rollback=True):
        if (who := _rls(db, chain)) is not None:
            conn.execute("SELECT set_config(%s, %s, true)", (RLS_SETTING[db][0], who))
        for rel, values in chain if written else []:
            params = [_psycopg_param(catalog[rel].columns[c], v) for c, v in values.items()]
            conn.execute(_insert(rel, values, lambda _: "%s"), params)
        cur = conn.cursor(row_factory=psycopg.rows.dict_row)
        got = cur.execute(_select(table, lambda _: "%s"), [row[c] for c in table.primary_key]).fetchone()
        assert got is not None, f"{db}.{name}: the row written is not read back"
        return mismatches(table, row, got, "psycopg")


async def asyncpg_round(
    dsn: str, db: str, catalog: dict[str, Table], name: str, chain: list | None = None
) -> dict[str, str]:
    """The same with asyncpg and its default codecs."""
    written, chain = chain is None, chain or build(db, catalog, name)
    table, row = catalog[name], chain[-1][1]
    conn = await asyncpg.connect(dsn)
    try:
        transaction = conn.transaction()
        await transaction.start()
        try:
            if (who := _rls(db, chain)) is not None:
                await conn.execute("SELECT set_config($1, $2, true)", RLS_SETTING[db][0], who)
            for rel, values in chain if written else []:
                params = [_asyncpg_param(catalog[rel].columns[c], v) for c, v in values.items()]
                await conn.execute(_insert(rel, values, lambda i: f"${i}"), *params)
            got = await conn.fetchrow(_select(table, lambda i: f"${i}"), *[row[c] for c in table.primary_key])
        finally:
            await transaction.rollback()
    finally:
        await conn.close()
    assert got is not None, f"{db}.{name}: the row written is not read back"
    return mismatches(table, row, dict(got), "asyncpg")


# --- tests -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def catalogs(stack) -> dict[str, dict[str, Table]]:
    result = {}
    for key, db in DATABASES.items():
        with psycopg.connect(stack.dsn(key)) as conn:
            result[key] = read_catalog(conn, db.app_role)
    return result


CASES = [(db, table) for db, tables in ROWS.items() for table in tables]


@pytest.mark.parametrize("db", list(DATABASES))
def test_every_table_has_a_row_builder(catalogs, db):
    missing = sorted(set(catalogs[db]) - set(ROWS[db]))
    stale = sorted(set(ROWS[db]) - set(catalogs[db]))
    assert not missing, f"{db}: no representative row in ROWS for table(s) {', '.join(missing)}"
    assert not stale, f"{db}: ROWS names table(s) the database does not have: {', '.join(stale)}"


@contextmanager
def written_by_owner(stack, db: str, catalog: dict[str, Table], name: str) -> Iterator[list | None]:
    """For a table the app role may not write: the superuser writes the row and its parents (removed after).

    Yields None for a table the app writes itself; for an EXISTING one, its first row as the superuser reads it.
    """
    if ROWS[db][name] != EXISTING and catalog[name].app_may_insert:
        yield None
        return
    table = catalog[name]
    with psycopg.connect(stack.dsn(db), row_factory=psycopg.rows.dict_row) as conn:
        if ROWS[db][name] == EXISTING:
            columns = ", ".join(f'"{c}"' for c in table.columns)
            order = ", ".join(f'"{c}"' for c in table.primary_key)
            row = conn.execute(f'SELECT {columns} FROM "{name}" ORDER BY {order} LIMIT 1').fetchone()
            assert row is not None, f"{db}.{name}: the table has no row to read"
            yield [(name, row)]
            return
        chain = build(db, catalog, name)
        with conn.transaction():
            for rel, values in chain:
                params = [_psycopg_param(catalog[rel].columns[c], v) for c, v in values.items()]
                conn.execute(_insert(rel, values, lambda _: "%s"), params)
        try:
            yield chain
        finally:
            with conn.transaction():
                for rel, values in reversed(chain):
                    keys = catalog[rel].primary_key
                    where = " AND ".join(f'"{c}" = %s' for c in keys)
                    conn.execute(f'DELETE FROM "{rel}" WHERE {where}', [values[c] for c in keys])


@pytest.mark.parametrize(("db", "name"), CASES)
def test_psycopg_round_trips_a_row_as_prepared_statements(stack, catalogs, db, name):
    catalog = catalogs[db]
    with (
        written_by_owner(stack, db, catalog, name) as chain,
        psycopg.connect(stack.dsn(db, role="app", via="pgbouncer"), autocommit=True) as conn,
    ):
        # The first prepare_threshold rounds run unprepared; the last one runs prepared statements.
        results = [psycopg_round(conn, db, catalog, name, chain) for _ in range(conn.prepare_threshold + 1)]
    assert results[0] == {}, f"{db}.{name} through psycopg: {results[0]}"
    assert results[-1] == {}, f"{db}.{name} through psycopg, prepared: {results[-1]}"


@pytest.mark.parametrize(("db", "name"), CASES)
def test_asyncpg_round_trips_a_row_with_default_codecs(stack, catalogs, db, name):
    dsn = stack.dsn(db, role="app", via="pgbouncer")
    with written_by_owner(stack, db, catalogs[db], name) as chain:
        wrong = asyncio.run(asyncpg_round(dsn, db, catalogs[db], name, chain))
    assert wrong == {}, f"{db}.{name} through asyncpg: {wrong}"
