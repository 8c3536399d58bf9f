"""The afs catalog holds what seed 003 names: tables, columns, keys, CHECKs, indexes, functions, jobs."""

from __future__ import annotations

import psycopg
import pytest

from infra.cron import jobs
from infra.databases import DATABASES

KEY = "afs"
DB = DATABASES[KEY]
TS = "timestamp with time zone"  # the document's TIMESTAMP, as TIMESTAMPTZ (README, deviations)

# (table, column, type, NOT NULL, default or None): seed 003's column tables, in order.
COLUMNS = [
    ("users", "id", "integer", True, "nextval"),
    ("users", "email", "character varying(255)", True, None),
    ("users", "created_at", TS, False, "now()"),
    ("orders", "id", "integer", True, "nextval"),
    ("orders", "user_id", "integer", True, None),
    ("orders", "total", "numeric(10,2)", True, None),
    ("orders", "status", "character varying(20)", True, None),
    ("orders", "created_at", TS, False, "now()"),
    ("payments", "id", "integer", True, "nextval"),
    ("payments", "order_id", "integer", True, None),
    ("payments", "amount", "numeric(10,2)", True, None),
    ("payments", "status", "character varying(20)", True, None),
    ("payments", "created_at", TS, False, "now()"),
    ("tasks", "id", "integer", True, "nextval"),
    ("tasks", "type", "character varying(50)", True, None),
    ("tasks", "description", "text", False, None),
    ("tasks", "target_query", "text", True, None),
    ("tasks", "status", "character varying(20)", True, "'pending'"),
    ("tasks", "created_at", TS, False, "now()"),
    ("tasks", "completed_at", TS, False, None),
    ("tasks", "metadata", "jsonb", False, None),
    ("agent_executions", "id", "integer", True, "nextval"),
    ("agent_executions", "task_id", "integer", True, None),
    ("agent_executions", "agent_type", "character varying(20)", True, None),
    ("agent_executions", "fork_id", "character varying(100)", False, None),
    ("agent_executions", "status", "character varying(20)", True, "'running'"),
    ("agent_executions", "started_at", TS, False, "now()"),
    ("agent_executions", "completed_at", TS, False, None),
    ("agent_executions", "error_message", "text", False, None),
    ("optimization_proposals", "id", "integer", True, "nextval"),
    ("optimization_proposals", "agent_execution_id", "integer", True, None),
    ("optimization_proposals", "proposal_type", "character varying(50)", True, None),
    ("optimization_proposals", "sql_commands", "text[]", True, None),
    ("optimization_proposals", "rationale", "text", False, None),
    ("optimization_proposals", "estimated_impact", "jsonb", True, None),
    ("optimization_proposals", "created_at", TS, False, "now()"),
    ("benchmark_results", "id", "integer", True, "nextval"),
    ("benchmark_results", "proposal_id", "integer", True, None),
    ("benchmark_results", "query_name", "character varying(100)", True, None),
    ("benchmark_results", "query_executed", "text", True, None),
    ("benchmark_results", "execution_time_ms", "numeric(10,2)", True, None),
    ("benchmark_results", "rows_returned", "integer", False, None),
    ("benchmark_results", "explain_plan", "jsonb", False, None),
    ("benchmark_results", "storage_impact_mb", "numeric(10,2)", False, None),
    ("benchmark_results", "created_at", TS, False, "now()"),
    ("consensus_decisions", "id", "integer", True, "nextval"),
    ("consensus_decisions", "task_id", "integer", True, None),
    ("consensus_decisions", "winning_proposal_id", "integer", False, None),
    ("consensus_decisions", "all_scores", "jsonb", True, None),
    ("consensus_decisions", "decision_rationale", "text", False, None),
    ("consensus_decisions", "applied_to_main", "boolean", True, "false"),
    ("consensus_decisions", "created_at", TS, False, "now()"),
    ("query_logs", "id", "integer", True, "nextval"),
    ("query_logs", "query_text", "text", True, None),
    ("query_logs", "execution_time_ms", "numeric(10,2)", False, None),
    ("query_logs", "executed_at", TS, False, "now()"),
    ("query_logs", "query_embedding", "vector(1536)", False, None),
    ("query_logs", "model_name", "character varying(100)", False, None),
    ("fork_cleanup_logs", "fork_id", "character varying(100)", True, None),
    ("fork_cleanup_logs", "cleared_at", TS, True, "now()"),
]
TABLES = sorted({c[0] for c in COLUMNS})

# (table, column, referenced table, delete rule): a = no action, c = cascade.
FOREIGN_KEYS = [
    ("orders", "user_id", "users", "a"),
    ("payments", "order_id", "orders", "a"),
    ("agent_executions", "task_id", "tasks", "c"),
    ("optimization_proposals", "agent_execution_id", "agent_executions", "c"),
    ("benchmark_results", "proposal_id", "optimization_proposals", "c"),
    ("consensus_decisions", "task_id", "tasks", "c"),
    ("consensus_decisions", "winning_proposal_id", "optimization_proposals", "a"),  # none on purpose
]

# (index, table, "USING method (key)"): the Indexes Strategy section, plus the GIN on tasks.metadata of
# migration 004 and the e-mail UNIQUE of users.
INDEXES = [
    ("uniq_users_email", "users", "USING btree (email)"),
    ("idx_tasks_status", "tasks", "USING btree (status)"),
    ("idx_tasks_created_at", "tasks", "USING btree (created_at DESC)"),
    ("idx_tasks_type", "tasks", "USING btree (type)"),
    ("idx_tasks_metadata", "tasks", "USING gin (metadata)"),
    ("idx_agent_executions_task_id", "agent_executions", "USING btree (task_id)"),
    ("idx_agent_executions_fork_id", "agent_executions", "USING btree (fork_id)"),
    ("idx_agent_executions_status", "agent_executions", "USING btree (agent_type, status)"),
    ("idx_proposals_agent_execution_id", "optimization_proposals", "USING btree (agent_execution_id)"),
    ("idx_proposals_type", "optimization_proposals", "USING btree (proposal_type)"),
    ("idx_proposals_estimated_impact", "optimization_proposals", "USING gin (estimated_impact)"),
    ("idx_benchmark_proposal_id", "benchmark_results", "USING btree (proposal_id)"),
    ("idx_benchmark_query_name", "benchmark_results", "USING btree (query_name)"),
    ("uniq_consensus_task_id", "consensus_decisions", "USING btree (task_id)"),
    ("idx_consensus_winning_proposal", "consensus_decisions", "USING btree (winning_proposal_id)"),
    ("idx_consensus_applied", "consensus_decisions", "USING btree (applied_to_main)"),
    ("idx_consensus_all_scores", "consensus_decisions", "USING gin (all_scores)"),
    ("idx_query_logs_text", "query_logs", "USING gin (to_tsvector('english'::regconfig, query_text))"),
    ("idx_query_logs_embedding", "query_logs", "USING ivfflat (query_embedding vector_cosine_ops) WITH (lists='100')"),
    ("idx_query_logs_executed_at", "query_logs", "USING btree (executed_at DESC)"),
    ("idx_fork_cleanup_logs_cleared_at", "fork_cleanup_logs", "USING btree (cleared_at DESC)"),
]
UNIQUE_INDEXES = ["uniq_users_email", "uniq_consensus_task_id"]

# (table, constraint, text its definition contains): the recommended CHECKs and the validations.
CHECKS = [
    ("tasks", "chk_tasks_type", "'index_recommendation'"),
    ("tasks", "chk_tasks_status", "'in_progress'"),
    ("tasks", "chk_tasks_metadata", "validate_task_metadata(metadata)"),
    ("agent_executions", "chk_agent_executions_agent_type", "'gemini-2.0-flash'"),
    ("agent_executions", "chk_agent_executions_status", "'running'"),
    ("optimization_proposals", "chk_optimization_proposals_proposal_type", "'materialized_view'"),
    ("optimization_proposals", "chk_optimization_proposals_sql_commands", "validate_sql_commands("),
    ("optimization_proposals", "chk_optimization_proposals_estimated_impact", "validate_estimated_impact("),
    ("benchmark_results", "chk_benchmark_results_execution_time_ms", "execution_time_ms > "),
    ("consensus_decisions", "chk_consensus_decisions_all_scores", "validate_all_scores(all_scores)"),
]

# (signature, volatility): i = IMMUTABLE (usable in CHECK), s = STABLE, v = VOLATILE.
FUNCTIONS = [
    ("validate_task_metadata(jsonb)", "i"),
    ("validate_estimated_impact(jsonb)", "i"),
    ("validate_all_scores(jsonb)", "i"),
    ("validate_sql_commands(text[])", "i"),
    ("check_consensus_decision()", "v"),
    ("query_logs_has_vector_search()", "s"),
    ("hybrid_search_query_logs(text, double precision[], integer)", "s"),
    ("fork_created_at(text)", "i"),
    ("purge_query_logs(integer)", "v"),
    ("clear_stale_forks(integer)", "v"),
]
CRON_JOBS = ["afs-purge-query-logs", "afs-vacuum-query-logs", "afs-clear-stale-forks"]


@pytest.fixture(scope="module")
def conn(stack):
    with psycopg.connect(stack.dsn(KEY), autocommit=True) as c:
        yield c


def one(conn, sql, *args):
    return conn.execute(sql, args).fetchone()


@pytest.mark.parametrize("table", TABLES)
def test_table_exists_and_belongs_to_the_owner(conn, table):
    sql = "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = to_regclass(%s)"
    row = one(conn, sql, f"public.{table}")
    assert row == (DB.owner,), f"table {table} missing or not owned by {DB.owner}"


@pytest.mark.parametrize(("table", "column", "type_", "not_null", "default"), COLUMNS)
def test_column(conn, table, column, type_, not_null, default):
    row = one(
        conn,
        """SELECT format_type(a.atttypid, a.atttypmod), a.attnotnull, pg_get_expr(d.adbin, d.adrelid)
             FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
            WHERE a.attrelid = to_regclass(%s) AND a.attname = %s AND NOT a.attisdropped""",
        f"public.{table}",
        column,
    )
    assert row is not None, f"{table}.{column} missing"
    assert row[0] == type_
    assert row[1] is not_null
    if default is None:
        assert row[2] is None
    else:
        assert row[2] is not None and default in row[2]


@pytest.mark.parametrize(("table", "column", "ref_table", "delete_rule"), FOREIGN_KEYS)
def test_foreign_key(conn, table, column, ref_table, delete_rule):
    row = one(
        conn,
        """SELECT c.confrelid::regclass::text, c.confdeltype
             FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
            WHERE c.contype = 'f' AND c.conrelid = to_regclass(%s) AND a.attname = %s""",
        f"public.{table}",
        column,
    )
    assert row == (ref_table, delete_rule)


@pytest.mark.parametrize(("index", "table", "definition"), INDEXES)
def test_index(conn, index, table, definition):
    row = one(
        conn,
        "SELECT tablename, indexdef FROM pg_indexes WHERE schemaname = 'public' AND indexname = %s",
        index,
    )
    assert row is not None, f"index {index} missing"
    assert row[0] == table
    assert row[1].endswith(definition), row[1]


@pytest.mark.parametrize("index", UNIQUE_INDEXES)
def test_unique_index(conn, index):
    assert one(conn, "SELECT indisunique FROM pg_index WHERE indexrelid = to_regclass(%s)", index) == (True,)


def test_orders_keeps_the_optimisation_demo_index_missing(conn):
    """Seed 003: the (user_id, status) index on orders stays missing; the AFS agents propose it."""
    rows = conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'orders'").fetchall()
    assert rows == [("orders_pkey",)]


@pytest.mark.parametrize(("table", "constraint", "fragment"), CHECKS)
def test_check_constraint(conn, table, constraint, fragment):
    row = one(
        conn,
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE conrelid = to_regclass(%s) AND conname = %s AND contype = 'c'",
        f"public.{table}",
        constraint,
    )
    assert row is not None, f"CHECK {constraint} missing on {table}"
    assert fragment in row[0]


@pytest.mark.parametrize(("signature", "volatility"), FUNCTIONS)
def test_function(conn, signature, volatility):
    row = one(conn, "SELECT provolatile FROM pg_proc WHERE oid = to_regprocedure(%s)", signature)
    assert row == (volatility,), f"{signature} missing or not of volatility {volatility}"


def test_consensus_trigger(conn):
    row = one(
        conn,
        "SELECT tgenabled, tgfoid::regprocedure::text FROM pg_trigger"
        " WHERE tgrelid = 'consensus_decisions'::regclass AND tgname = 'trg_consensus_decisions_check'",
    )
    assert row == ("O", "check_consensus_decision()")


@pytest.mark.parametrize("table", TABLES)
def test_app_writes_and_readonly_reads(conn, table):
    row = one(
        conn,
        "SELECT has_table_privilege(%s, %s, 'INSERT'), has_table_privilege(%s, %s, 'SELECT'),"
        " has_table_privilege(%s, %s, 'INSERT')",
        DB.app_role,
        table,
        DB.readonly_role,
        table,
        DB.readonly_role,
        table,
    )
    assert row == (True, True, False)


@pytest.mark.parametrize("signature", ["purge_query_logs(integer)", "clear_stale_forks(integer)"])
def test_maintenance_functions_are_not_for_the_app(conn, signature):
    assert one(conn, "SELECT has_function_privilege(%s, %s, 'EXECUTE')", DB.app_role, signature) == (False,)


@pytest.mark.parametrize("name", CRON_JOBS)
def test_cron_job_is_scheduled_in_afs(stack, name):
    declared = {job.name: job for job in jobs(DB, stack.settings)}
    assert name in declared, f"{name} not in sql/afs/cron.yaml"
    with psycopg.connect(stack.dsn(None), autocommit=True) as pg:
        row = one(pg, "SELECT schedule, command, database FROM cron.job WHERE jobname = %s", name)
    assert row == (declared[name].schedule, declared[name].command, DB.name)


def test_cron_commands_take_the_numbers_from_settings(stack):
    commands = {job.name: job.command for job in jobs(DB, stack.settings)}
    assert commands["afs-purge-query-logs"] == (
        f"SELECT purge_query_logs({stack.settings.afs_query_log_retention_days})"
    )
    hours = stack.settings.afs_fork_cleanup_hours
    assert commands["afs-clear-stale-forks"] == f"SELECT clear_stale_forks({hours})"
