"""ai_agent_orchestrator holds every table, ENUM, view, trigger, function, index and job of seed 002,
and the document's example, maintenance and monitoring queries run as written."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import errors

KEY = "orchestrator"

# The document's 11 subsystems, with the tables it names first and what each subsystem needs after.
TABLES = {
    "agent management": [
        "agents",
        "agent_skills",
        "agent_activity_log",
        "agent_status_history",
        "teams",
        "team_members",
    ],
    "task distribution": [
        "tasks",
        "task_dependencies",
        "task_history",
        "task_queues",
        "task_assignments",
        "task_results",
    ],
    "voting": ["voting_sessions", "votes", "vote_audit_trail"],
    "brainstorming": [
        "brainstorm_sessions",
        "brainstorm_participants",
        "ideas",
        "idea_combinations",
        "idea_votes",
    ],
    "gamification": [
        "achievements",
        "agent_achievements",
        "point_transactions",
        "streaks",
        "tier_definitions",
        "tier_history",
    ],
    "reputation": [
        "trust_graph",
        "peer_ratings",
        "global_trust_scores",
        "reputation_history",
        "pre_trusted_agents",
        "eigentrust_runs",
    ],
    "battles": ["battles", "battle_participants", "elo_history", "battle_rounds"],
    "leaderboards": ["leaderboard_rankings", "hall_of_fame", "leaderboard_categories"],
    "mentorship": [
        "mentorship_pairings",
        "mentorship_sessions",
        "mentee_progress",
        "mentorship_curriculum",
        "mentor_profiles",
    ],
    "rewards": [
        "resource_pools",
        "resource_allocations",
        "agent_permissions",
        "priority_queue_entries",
        "rewards",
        "reward_claims",
    ],
    "penalties": ["violations", "appeals", "retraining_programs", "penalty_history", "penalty_rules"],
    "settings": ["system_settings"],
}
ALL_TABLES = [t for tables in TABLES.values() for t in tables]

# "Partitioned Tables: 5 high-volume tables", monthly on created_at.
PARTITIONED = [
    "agent_activity_log",
    "task_history",
    "point_transactions",
    "reputation_history",
    "penalty_history",
]

# "Custom Types: 13 ENUMs"; agent_tier and task_priority in ascending business order.
ENUMS = {
    "agent_type": None,
    "agent_status": None,
    "agent_tier": ["bronze", "silver", "gold", "platinum", "diamond", "legendary"],
    "task_status": None,
    "task_priority": ["low", "medium", "high", "critical"],
    "voting_algorithm": ["simple_majority", "weighted", "quadratic", "ranked_choice", "consensus"],
    "voting_status": None,
    "achievement_category": None,
    "battle_mode": None,
    "battle_status": None,
    "mentorship_status": None,
    "violation_type": None,
    "appeal_status": None,
}

# Key columns from the Table Reference and the ER diagrams.
COLUMNS = {
    "agents": [
        "id",
        "agent_id",
        "name",
        "type",
        "status",
        "total_points",
        "current_tier",
        "elo_rating",
        "trust_score",
        "tasks_completed",
        "tasks_failed",
        "success_rate",
        "average_quality_score",
        "average_task_time_ms",
        "metadata",
        "deleted_at",
    ],
    "tasks": ["id", "task_id", "title", "status", "priority", "assigned_to", "quality_score", "deleted_at"],
    "voting_sessions": ["session_id", "topic", "algorithm", "status", "options", "results"],
    "votes": ["session_id", "agent_id", "vote_option", "confidence", "tokens_spent"],
    "vote_audit_trail": ["event_type", "signature"],
    "brainstorm_sessions": ["session_id", "topic", "facilitator_id", "total_ideas", "participant_count"],
    "achievements": ["achievement_id", "category", "requirements", "points_reward", "rarity"],
    "point_transactions": ["agent_id", "category", "base_points", "multiplier", "final_points", "created_at"],
    "trust_graph": ["from_agent_id", "to_agent_id", "local_trust", "interaction_count"],
    "peer_ratings": ["rating", "context"],
    "global_trust_scores": [
        "eigentrust_score",
        "persistence_score",
        "competence_score",
        "composite_score",
        "trust_level",
    ],
    "battles": ["mode", "status", "prize_pool", "winner_id"],
    "battle_participants": ["score", "rank", "elo_change"],
    "elo_history": ["old_rating", "new_rating", "change"],
    "leaderboard_rankings": [
        "category",
        "period",
        "period_start",
        "agent_id",
        "rank",
        "score",
        "rank_change",
    ],
    "hall_of_fame": ["agent_id", "tier", "title", "badge", "citation"],
    "mentorship_pairings": ["mentor_id", "mentee_id", "skill_focus", "status", "completed_sessions"],
    "mentorship_sessions": ["session_number", "topic", "objectives_met", "mentor_rating", "mentee_rating"],
    "mentee_progress": ["curriculum_id", "progress_percentage", "mastery_level"],
    "mentorship_curriculum": ["skill_name", "level", "objectives", "assessment_tasks"],
    "resource_pools": ["resource_type", "total_capacity", "available"],
    "resource_allocations": ["agent_id", "resource_type", "amount", "performance_tier", "expires_at"],
    "violations": ["agent_id", "violation_type", "severity", "penalty_points"],
    "appeals": ["status", "decision"],
    "retraining_programs": ["curriculum", "progress_percentage", "assessment"],
}

VIEWS = [
    "v_active_agents",
    "v_current_leaderboard",
    "v_active_mentorships",
    "v_agent_reputation",
    "v_task_queue_summary",
]
MATERIALIZED = ["v_agent_reputation"]

# Indexes the document lists by name.
INDEXES = [
    "idx_agents_agent_id",
    "idx_agents_type_status",
    "idx_agents_elo",
    "idx_tasks_status",
    "idx_tasks_assigned_to",
    "idx_tasks_priority_status",
    "idx_voting_sessions_status",
    "idx_leaderboard_category_period",
    "idx_trust_graph_from",
    "idx_trust_graph_to",
]
PARTIAL_INDEXES = ["idx_agents_type_status", "idx_tasks_priority_status"]

# (table, trigger): the document's two, and the business logic the issue asks for.
TRIGGERS = [
    ("agents", "update_agents_updated_at"),
    ("tasks", "task_completion_updates_agent_stats"),
    ("point_transactions", "point_transactions_apply"),
    ("battles", "battle_completion_updates_elo"),
    ("battles", "battles_check_winner"),
    ("votes", "votes_check_allowed"),
    ("votes", "votes_audit"),
    ("appeals", "appeals_check_owner"),
    ("violations", "violations_apply_penalty"),
    ("tasks", "tasks_log_history"),
    ("agents", "agents_log_status_change"),
]

FUNCTIONS = [
    "update_updated_at_column",
    "update_agent_stats_on_task_completion",
    "create_next_month_partitions",
    "run_partition_maintenance",
    "compute_eigentrust",
    "update_elo_on_battle_completion",
    "record_battle_result",
    "apply_point_transaction",
    "tally_votes",
    "tally_simple_majority",
    "tally_weighted",
    "tally_quadratic",
    "tally_ranked_choice",
    "tally_consensus",
    "close_voting_session",
    "refresh_leaderboard_rankings",
    "refresh_reputation_views",
    "claim_reward",
    "release_expired_allocations",
    "log_agent_activity",
]

CRON_JOBS = [
    "orchestrator-partition-maintenance",
    "orchestrator-eigentrust",
    "orchestrator-refresh-reputation-view",
    "orchestrator-refresh-leaderboards",
    "orchestrator-release-expired-allocations",
]

# The document's queries, verbatim.
VIEW_EXAMPLES = [
    "SELECT * FROM v_active_agents\nWHERE current_tier >= 'gold'\nORDER BY total_points DESC;",
    "SELECT * FROM v_current_leaderboard\nWHERE category = 'overall'\nORDER BY rank;",
    "SELECT * FROM v_active_mentorships\nWHERE completion_percentage > 50;",
    "SELECT * FROM v_agent_reputation\nWHERE trust_level IN ('excellent', 'outstanding')\n"
    "ORDER BY eigentrust_score DESC;",
    "SELECT * FROM v_task_queue_summary\nWHERE status = 'pending'\nORDER BY priority DESC;",
]
MONITORING = [
    """SELECT
  schemaname,
  tablename,
  pg_size_pretty(pg_total_relation_size(schemaname||'.'||tablename)) AS size
FROM pg_tables
WHERE schemaname = 'public'
ORDER BY pg_total_relation_size(schemaname||'.'||tablename) DESC;""",
    """SELECT * FROM pg_stat_statements
ORDER BY mean_exec_time DESC
LIMIT 20;""",
    """SELECT query, calls, mean_exec_time, total_exec_time
FROM pg_stat_statements
ORDER BY mean_exec_time DESC
LIMIT 20;""",
    """SELECT
  schemaname,
  tablename,
  pg_size_pretty(pg_total_relation_size(schemaname||'.'||tablename)) AS total_size,
  pg_size_pretty(pg_relation_size(schemaname||'.'||tablename)) AS table_size
FROM pg_tables
WHERE schemaname = 'public'
ORDER BY pg_total_relation_size(schemaname||'.'||tablename) DESC;""",
    "SELECT * FROM pg_locks WHERE NOT granted;",
    "SELECT create_next_month_partitions();",
]
# The document's Index Usage query names columns pg_stat_user_indexes does not have (tablename,
# indexname); the README records it, and this is the same query on the real column names.
INDEX_USAGE_VERBATIM = """SELECT
  schemaname,
  tablename,
  indexname,
  idx_scan AS index_scans,
  pg_size_pretty(pg_relation_size(indexrelid)) AS index_size
FROM pg_stat_user_indexes
ORDER BY idx_scan DESC;"""
INDEX_USAGE_FIXED = """SELECT
  schemaname,
  relname AS tablename,
  indexrelname AS indexname,
  idx_scan AS index_scans,
  pg_size_pretty(pg_relation_size(indexrelid)) AS index_size
FROM pg_stat_user_indexes
ORDER BY idx_scan DESC;"""
MAINTENANCE = [
    "VACUUM ANALYZE agents, tasks, point_transactions;",
    "VACUUM FULL agent_activity_log, task_history;",
    "REINDEX TABLE agents;",
    "REINDEX TABLE tasks;",
]


@pytest.fixture(scope="module")
def conn(stack):
    with psycopg.connect(stack.dsn(KEY), autocommit=True) as c:
        yield c


def one(conn, sql, *args):
    return conn.execute(sql, args).fetchone()[0]


def test_counts_match_the_document(conn):
    """50+ tables, 13 ENUMs, 50+ indexes ("Key Statistics")."""
    assert len(ALL_TABLES) >= 50 and len(ENUMS) == 13
    assert one(
        conn, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename = ANY(%s)", ALL_TABLES
    ) == len(ALL_TABLES)
    assert (
        one(
            conn,
            "SELECT count(*) FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
            "WHERE n.nspname = 'public' AND t.typtype = 'e'",
        )
        == 13
    )
    assert one(conn, "SELECT count(*) FROM pg_indexes WHERE schemaname = 'public'") >= 50


@pytest.mark.parametrize("table", ALL_TABLES)
def test_table_exists(conn, table):
    assert one(conn, "SELECT to_regclass(%s) IS NOT NULL", f"public.{table}"), table


@pytest.mark.parametrize("table", ALL_TABLES)
def test_table_has_uuid_key(conn, table):
    key = conn.execute(
        "SELECT array_agg(a.attname::text), array_agg(format_type(a.atttypid, a.atttypmod)) FROM pg_index i "
        "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
        "WHERE i.indrelid = %s::regclass AND i.indisprimary",
        (table,),
    ).fetchone()
    assert "id" in key[0] and key[1][key[0].index("id")] == "uuid", key


@pytest.mark.parametrize(("table", "column"), [(t, c) for t, cols in COLUMNS.items() for c in cols])
def test_column_exists(conn, table, column):
    assert (
        one(
            conn,
            "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'public' "
            "AND table_name = %s AND column_name = %s",
            table,
            column,
        )
        == 1
    )


@pytest.mark.parametrize("table", PARTITIONED)
def test_table_is_range_partitioned_on_created_at(conn, table):
    row = conn.execute(
        "SELECT p.partstrat, a.attname FROM pg_partitioned_table p "
        "JOIN pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[0] "
        "WHERE p.partrelid = %s::regclass",
        (table,),
    ).fetchone()
    assert row == ("r", "created_at")


@pytest.mark.parametrize("table", PARTITIONED)
def test_table_is_managed_by_pg_partman(conn, table):
    row = conn.execute(
        "SELECT partition_interval, premake, retention_keep_table FROM partman.part_config WHERE parent_table = %s",
        (f"public.{table}",),
    ).fetchone()
    assert row is not None and row[1] >= 2 and row[2] is True
    assert row[0] in ("1 mon", "monthly", "1 month")


@pytest.mark.parametrize(("name", "values"), ENUMS.items())
def test_enum_exists(conn, name, values):
    labels = one(
        conn,
        "SELECT array_agg(enumlabel::text ORDER BY enumsortorder) FROM pg_enum WHERE enumtypid = %s::regtype",
        name,
    )
    assert labels, name
    if values is not None:
        assert labels == values


@pytest.mark.parametrize("view", VIEWS)
def test_view_exists(conn, view):
    kind = one(conn, "SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", f"public.{view}")
    assert kind == ("m" if view in MATERIALIZED else "v")


@pytest.mark.parametrize("index", INDEXES)
def test_index_exists(conn, index):
    assert one(conn, "SELECT count(*) FROM pg_indexes WHERE schemaname = 'public' AND indexname = %s", index) == 1


@pytest.mark.parametrize("index", PARTIAL_INDEXES)
def test_index_is_partial_on_live_rows(conn, index):
    assert "WHERE (deleted_at IS NULL)" in one(conn, "SELECT indexdef FROM pg_indexes WHERE indexname = %s", index)


@pytest.mark.parametrize(("table", "trigger"), TRIGGERS)
def test_trigger_exists(conn, table, trigger):
    assert (
        one(
            conn,
            "SELECT count(*) FROM pg_trigger WHERE tgrelid = %s::regclass AND tgname = %s AND NOT tgisinternal",
            table,
            trigger,
        )
        == 1
    )


def _tables_with_updated_at(conn):
    return [
        r[0]
        for r in conn.execute(
            "SELECT c.table_name FROM information_schema.columns c JOIN pg_tables t "
            "ON t.schemaname = c.table_schema AND t.tablename = c.table_name "
            "WHERE c.table_schema = 'public' AND c.column_name = 'updated_at'"
        )
    ]


def test_every_table_with_updated_at_has_its_trigger(conn):
    tables = _tables_with_updated_at(conn)
    assert "agents" in tables and len(tables) > 20
    missing = [
        t
        for t in tables
        if one(
            conn,
            "SELECT count(*) FROM pg_trigger WHERE tgrelid = %s::regclass AND tgname = %s",
            t,
            f"update_{t}_updated_at",
        )
        != 1
    ]
    assert missing == []


@pytest.mark.parametrize("function", FUNCTIONS)
def test_function_exists(conn, function):
    assert (
        one(
            conn,
            "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE n.nspname = 'public' AND p.proname = %s",
            function,
        )
        >= 1
    )


@pytest.mark.parametrize("algorithm", ENUMS["voting_algorithm"])
def test_each_voting_algorithm_has_a_tally_function(conn, algorithm):
    assert one(conn, "SELECT to_regprocedure(%s) IS NOT NULL", f"tally_{algorithm}(uuid)")


def test_violations_have_row_level_security(conn):
    assert one(conn, "SELECT relrowsecurity FROM pg_class WHERE oid = 'violations'::regclass")
    assert (
        one(
            conn,
            "SELECT count(*) FROM pg_policies WHERE tablename = 'violations' "
            "AND policyname = 'agent_own_violations' AND cmd = 'SELECT'",
        )
        == 1
    )


@pytest.mark.parametrize("job", CRON_JOBS)
def test_cron_job_scheduled_as_owner(stack, job):
    with psycopg.connect(stack.dsn(None), autocommit=True) as c:
        row = c.execute("SELECT database, username, command FROM cron.job WHERE jobname = %s", (job,)).fetchone()
    assert row is not None, job
    assert row[:2] == ("ai_agent_orchestrator", "ai_agent_owner")


def test_partition_maintenance_job_uses_the_retention_setting(stack):
    with psycopg.connect(stack.dsn(None), autocommit=True) as c:
        command = one(c, "SELECT command FROM cron.job WHERE jobname = 'orchestrator-partition-maintenance'")
    assert command == f"SELECT run_partition_maintenance({stack.settings.partition_retention_months})"


@pytest.mark.parametrize("query", VIEW_EXAMPLES + MONITORING)
def test_document_query_runs_verbatim(conn, query):
    conn.execute(query)


def test_document_slow_query_logging_statement_runs(conn):
    try:
        conn.execute("ALTER DATABASE ai_agent_orchestrator\n  SET log_min_duration_statement = 1000; -- 1 second")
    finally:
        conn.execute("ALTER DATABASE ai_agent_orchestrator RESET log_min_duration_statement")


def test_document_index_usage_query_needs_real_column_names(conn):
    with pytest.raises(errors.UndefinedColumn):
        conn.execute(INDEX_USAGE_VERBATIM)
    assert conn.execute(INDEX_USAGE_FIXED).fetchall()


@pytest.mark.parametrize("statement", MAINTENANCE)
def test_document_maintenance_statement_runs(conn, statement):
    conn.execute(statement)
