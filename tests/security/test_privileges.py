"""Least privilege in each application database: the app role has DML and nothing more, the readonly
role only reads, the audit logs are append-only for everyone but their owner, and RLS separates tenants
through PgBouncer's transaction pooling."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from psycopg import errors

from infra.databases import DATABASES
from infra.settings import Settings

KEYS = Settings().databases  # every database the session stack enables

# One table per database, owned by the owner, that the probes aim at.
TARGET = {"qlearning": "q_values", "orchestrator": "agents", "afs": "query_logs", "agentic": "agents"}
COLUMN = {"q_values": "q_value", "agents": "name", "query_logs": "query_text"}

APP_DDL = {
    "create table": "CREATE TABLE public.security_probe (id int)",
    "create function": "CREATE FUNCTION public.security_probe() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    "create schema": "CREATE SCHEMA security_probe",
    "create table in partman": "CREATE TABLE partman.security_probe (id int)",
    "alter table": "ALTER TABLE {table} ADD COLUMN security_probe int",
    "alter table owner": "ALTER TABLE {table} OWNER TO {app}",
    "disable rls": "ALTER TABLE {table} DISABLE ROW LEVEL SECURITY",
    "create index": "CREATE INDEX security_probe ON {table} ((1))",
    "create trigger": (
        "CREATE TRIGGER security_probe BEFORE UPDATE ON {table}"
        " FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger()"
    ),
    "drop table": "DROP TABLE {table}",
    "truncate": "TRUNCATE {table}",
}

READONLY_WRITES = {
    "insert": "INSERT INTO {table} DEFAULT VALUES",
    "update": "UPDATE {table} SET {column} = {column}",
    "delete": "DELETE FROM {table}",
    "truncate": "TRUNCATE {table}",
    "create table": "CREATE TABLE public.security_probe (id int)",
}

# The append-only tables of the schemas (sql/agentic/README.md, sql/orchestrator/README.md).
AUDIT_LOGS = [("agentic", "agent_audit_log"), ("orchestrator", "vote_audit_trail")]
AUDIT_COLUMN = {"agent_audit_log": '"timestamp"', "vote_audit_trail": "created_at"}
AUDIT_EDITS = {
    "update": "UPDATE {table} SET {column} = {column}",
    "delete": "DELETE FROM {table}",
    "truncate": "TRUNCATE {table}",
}


def _refused(stack, key: str, role: str, statement: str) -> None:
    db = DATABASES[key]
    table = TARGET[key]
    sql = statement.format(table=table, column=COLUMN[table], app=db.app_role)
    with psycopg.connect(stack.dsn(key, role)) as conn, pytest.raises(errors.InsufficientPrivilege):
        # READ WRITE, as any client may ask: the readonly role's read-only default is defence in
        # depth, the privileges must refuse on their own.
        conn.read_only = False
        conn.execute(sql)


@pytest.mark.parametrize("statement", APP_DDL.values(), ids=APP_DDL.keys())
@pytest.mark.parametrize("key", KEYS)
def test_the_app_role_cannot_change_the_schema(stack, key, statement):
    _refused(stack, key, "app", statement)


@pytest.mark.parametrize("statement", READONLY_WRITES.values(), ids=READONLY_WRITES.keys())
@pytest.mark.parametrize("key", KEYS)
def test_the_readonly_role_cannot_write(stack, key, statement):
    _refused(stack, key, "readonly", statement)


def _catalog(stack, key: str, query: str) -> list[str]:
    with psycopg.connect(stack.dsn(key)) as conn:
        return [row[0] for row in conn.execute(query).fetchall()]


@pytest.mark.parametrize("key", KEYS)
def test_the_app_and_readonly_roles_own_nothing_and_create_nowhere(stack, key):
    db = DATABASES[key]
    for role in (db.app_role, db.readonly_role):
        owned = _catalog(stack, key, f"SELECT relname FROM pg_class WHERE relowner = '{role}'::regrole")
        assert owned == [], f"{role} owns {owned}"
        schemas = _catalog(
            stack,
            key,
            f"SELECT nspname FROM pg_namespace WHERE has_schema_privilege('{role}', oid, 'CREATE')",
        )
        assert schemas == [], f"{role} may create in {schemas}"
        assert _catalog(stack, key, f"SELECT has_database_privilege('{role}', current_database(), 'CREATE')") == [False]


@pytest.mark.parametrize("key", KEYS)
def test_the_app_role_has_no_truncate_references_or_trigger_anywhere(stack, key):
    app = DATABASES[key].app_role
    tables = _catalog(
        stack,
        key,
        "SELECT c.oid::regclass::text FROM pg_class c WHERE c.relkind IN ('r', 'p')"
        " AND c.relnamespace IN ('public'::regnamespace, 'partman'::regnamespace)"
        f" AND has_table_privilege('{app}', c.oid, 'TRUNCATE, REFERENCES, TRIGGER')",
    )
    assert tables == []


@pytest.mark.parametrize("key", KEYS)
def test_the_readonly_role_has_no_write_privilege_anywhere(stack, key):
    ro = DATABASES[key].readonly_role
    tables = _catalog(
        stack,
        key,
        "SELECT c.oid::regclass::text FROM pg_class c WHERE c.relkind IN ('r', 'p')"
        " AND c.relnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)"
        f" AND has_table_privilege('{ro}', c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE')",
    )
    assert tables == []


@pytest.mark.parametrize("key", KEYS)
def test_the_app_role_cannot_rewrite_the_migration_version(stack, key):
    app = DATABASES[key].app_role
    assert _catalog(
        stack, key, f"SELECT has_table_privilege('{app}', 'alembic_version', 'INSERT, UPDATE, DELETE')"
    ) == [False]


@pytest.mark.parametrize(("key", "table"), AUDIT_LOGS)
def test_nobody_but_the_owner_may_edit_the_audit_log(stack, key, table):
    owner = DATABASES[key].owner
    editors = _catalog(
        stack,
        key,
        "SELECT rolname FROM pg_roles WHERE rolcanlogin AND NOT rolsuper"
        f" AND has_table_privilege(oid, '{table}', 'UPDATE, DELETE, TRUNCATE') ORDER BY 1",
    )
    assert editors == [owner]


@pytest.mark.parametrize("statement", AUDIT_EDITS.values(), ids=AUDIT_EDITS.keys())
@pytest.mark.parametrize("role", ["app", "readonly"])
@pytest.mark.parametrize(("key", "table"), AUDIT_LOGS)
def test_the_audit_log_edit_is_refused(stack, key, table, role, statement):
    with psycopg.connect(stack.dsn(key, role)) as conn, pytest.raises(errors.InsufficientPrivilege):
        conn.read_only = False  # the privileges must refuse without the readonly role's read-only default
        conn.execute(statement.format(table=table, column=AUDIT_COLUMN[table]))


# ----- row-level security, through PgBouncer (transaction pooling) --------------------------------------
def _orchestrator_tenants(stack) -> tuple[uuid.UUID, uuid.UUID]:
    with psycopg.connect(stack.dsn("orchestrator"), autocommit=True) as conn:
        ids = []
        for n in (2, 1):
            agent = conn.execute(
                "INSERT INTO agents (agent_id, name, type) VALUES (%s, 'security probe', 'worker') RETURNING id",
                (f"security-{uuid.uuid4()}",),
            ).fetchone()[0]
            for _ in range(n):
                conn.execute(
                    "INSERT INTO violations (agent_id, violation_type, severity) VALUES (%s, 'timeout', 1)", (agent,)
                )
            ids.append(agent)
    return ids[0], ids[1]


def _agentic_tenants(stack) -> tuple[uuid.UUID, uuid.UUID]:
    from tests.sql.test_agentic_support import add_decision, make_tenant

    with psycopg.connect(stack.dsn("agentic"), autocommit=True) as conn:
        a, b = make_tenant(conn), make_tenant(conn)
        add_decision(conn, a.session_id)
        add_decision(conn, b.session_id)
    return a.user_id, b.user_id


# (database, tenant setting, table, tenant column, fixture making two tenants with rows)
RLS = [
    ("orchestrator", "app.current_agent_id", "violations", "agent_id", _orchestrator_tenants),
    ("agentic", "app.current_user_id", "agent_audit_log", "user_id", _agentic_tenants),
    ("agentic", "app.current_user_id", "agent_sessions", "user_id", _agentic_tenants),
    ("agentic", "app.current_user_id", "users", "user_id", _agentic_tenants),
]


@pytest.mark.parametrize(("key", "setting", "table", "column", "make"), RLS, ids=[f"{r[0]}-{r[2]}" for r in RLS])
def test_rls_returns_nothing_across_tenants_through_pgbouncer(stack, key, setting, table, column, make):
    a, b = make(stack)
    with psycopg.connect(stack.dsn(key, "app", "pgbouncer")) as conn:
        with conn.transaction():
            conn.execute("SELECT set_config(%s, %s, true)", (setting, str(a)))
            own = conn.execute(f"SELECT count(*) FROM {table} WHERE {column} = %s", (a,)).fetchone()[0]
            other = conn.execute(f"SELECT count(*) FROM {table} WHERE {column} = %s", (b,)).fetchone()[0]
            foreign = conn.execute(f"SELECT count(*) FROM {table} WHERE {column} <> %s", (a,)).fetchone()[0]
        assert own >= 1, f"tenant {a} does not see its own {table} rows"
        assert (other, foreign) == (0, 0)
        # The next transaction may run on another server connection: no tenant, no rows.
        with conn.transaction():
            assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0
