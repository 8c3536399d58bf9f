"""The qlearning functions behave as seeds 000 and 001 describe: upsert, best action (by index, no sort),
the Q-learning update, TTL cleanup, the quick-start client, the monitoring queries and the samples."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal, localcontext
from pathlib import Path
from urllib.parse import unquote, urlsplit

import psycopg
import pytest
from psycopg import sql
from psycopg.types.json import Jsonb

from infra.seeds import qlearning as samples

KEY = "qlearning"


@pytest.fixture(scope="module")
def app(stack):
    with psycopg.connect(stack.dsn(KEY, role="app"), autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="module")
def admin(stack):
    with psycopg.connect(stack.dsn(KEY, role="admin"), autocommit=True) as conn:
        yield conn


def _key(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def _upsert(conn, agent: str, state: str, action: str, q: float | str, data: dict | None = None) -> int:
    return conn.execute(
        "SELECT upsert_q_value(%s, %s, %s, %s, %s, %s)",
        (agent, state, Jsonb(data or {"s": state}), action, Jsonb({"a": action}), q),
    ).fetchone()[0]


# --- upsert_q_value ------------------------------------------------------------------------------------


def test_upsert_inserts_then_updates_the_same_row(app):
    state = _key("upsert")
    first = _upsert(app, "test-generator", state, "a1", 0.25)
    before = app.execute(
        "SELECT q_value, visit_count, last_updated, expires_at FROM q_values WHERE q_value_id = %s", (first,)
    ).fetchone()
    assert before[:2] == (Decimal("0.250000"), 1)

    second = _upsert(app, "test-generator", state, "a1", 0.75, data={"s": state, "v": 2})
    after = app.execute(
        "SELECT q_value, visit_count, last_updated, expires_at, state_data FROM q_values WHERE q_value_id = %s",
        (first,),
    ).fetchone()
    assert second == first
    assert after[0] == Decimal("0.750000")  # the new estimate is stored
    assert after[1] == 2  # visits counted
    assert after[2] > before[2]  # last_updated moved
    assert after[3] > before[3]  # expires_at pushed forward
    assert after[4] == {"s": state, "v": 2}


@pytest.mark.parametrize("table", ["q_values", "trajectories", "patterns"])
def test_expires_at_defaults_to_the_retention_setting(stack, app, table):
    rows = {
        "q_values": "INSERT INTO q_values (agent_type, state_hash, action_hash) VALUES ('test-generator', %s, 'a')",
        "trajectories": "INSERT INTO trajectories (agent_type, task_id) VALUES ('test-generator', %s)",
        "patterns": "INSERT INTO patterns (agent_type, pattern_name, pattern_type, pattern_data) "
        "VALUES ('test-generator', %s, 'test_template', '{}')",
    }
    with pytest.raises(_Rollback), app.transaction():
        ttl = app.execute(rows[table] + " RETURNING expires_at - now()", (_key("ttl"),)).fetchone()[0]
        assert ttl == timedelta(days=stack.settings.retention_days)
        raise _Rollback


class _Rollback(Exception):
    pass


@pytest.mark.parametrize(("total", "successes", "rate"), [(4, 3, "0.7500"), (3, 1, "0.3333"), (0, 0, "0")])
def test_success_rate_is_successful_over_total(app, total, successes, rate):
    with pytest.raises(_Rollback), app.transaction():
        got = app.execute(
            "INSERT INTO agent_states (agent_type, agent_instance_id, total_tasks, successful_tasks) "
            "VALUES ('test-generator', %s, %s, %s) RETURNING success_rate",
            (_key("rate"), total, successes),
        ).fetchone()[0]
        assert got == Decimal(rate)
        raise _Rollback


def test_agent_states_updated_at_follows_updates(app):
    instance = _key("updated-at")
    first = app.execute(
        "INSERT INTO agent_states (agent_type, agent_instance_id) VALUES ('test-generator', %s) RETURNING updated_at",
        (instance,),
    ).fetchone()[0]
    second = app.execute(
        "UPDATE agent_states SET status = 'active' WHERE agent_instance_id = %s RETURNING updated_at",
        (instance,),
    ).fetchone()[0]
    app.execute("DELETE FROM agent_states WHERE agent_instance_id = %s", (instance,))
    assert second > first


# --- get_best_action -----------------------------------------------------------------------------------


def test_get_best_action_returns_the_highest_live_value(app, admin):
    state = _key("best")
    _upsert(app, "test-generator", state, "low", 0.1)
    _upsert(app, "test-generator", state, "high", 0.9)
    _upsert(app, "test-generator", state, "expired", 5.0)
    admin.execute(
        "UPDATE q_values SET expires_at = now() - interval '1 minute' WHERE state_hash = %s "
        "AND action_hash = 'expired'",
        (state,),
    )
    row = app.execute("SELECT * FROM get_best_action(%s, %s)", ("test-generator", state)).fetchone()
    assert row == ("high", {"a": "high"}, Decimal("0.900000"), 1, Decimal("0.5000"))
    assert app.execute("SELECT * FROM get_best_action('test-generator', %s)", (_key("none"),)).fetchall() == []


def _plan_nodes(plan: dict) -> list[dict]:
    nodes = [plan]
    for child in plan.get("Plans", []):
        nodes += _plan_nodes(child)
    return nodes


@pytest.fixture(scope="module")
def populated_q_values(admin):
    """A few thousand estimates over many states, analysed, so the planner sees a realistic table."""
    prefix = _key("plan")
    admin.execute(
        """
        INSERT INTO q_values (agent_type, state_hash, action_hash, q_value, state_data, action_data)
        SELECT at.agent_type, %s || '-' || s, 'a' || a, random(), '{}', '{}'
        FROM (SELECT agent_type FROM agent_types ORDER BY agent_type LIMIT 6) AS at,
             generate_series(1, 100) AS s, generate_series(1, 8) AS a
        """,
        (prefix,),
    )
    admin.execute("ANALYZE q_values")
    yield prefix
    admin.execute("DELETE FROM q_values WHERE state_hash LIKE %s", (prefix + "-%",))


@pytest.mark.parametrize("plan_cache_mode", ["force_custom_plan", "force_generic_plan"])
def test_get_best_action_body_uses_idx_q_values_lookup_without_sort(admin, populated_q_values, plan_cache_mode):
    """EXPLAIN the function's own body (it is a plain SQL function), prepared with its parameter types."""
    body = admin.execute(
        "SELECT prosrc FROM pg_proc WHERE proname = 'get_best_action' AND pronamespace = 'public'::regnamespace"
    ).fetchone()[0]
    explain = sql.SQL("EXPLAIN (FORMAT JSON) EXECUTE best_action('test-generator', {})").format(
        sql.Literal(populated_q_values + "-7")
    )
    with pytest.raises(_Rollback), admin.transaction():
        admin.execute(f"SET LOCAL plan_cache_mode = {plan_cache_mode}")
        admin.execute(f"PREPARE best_action(varchar, varchar) AS {body}")
        plan = admin.execute(explain).fetchone()[0][0]["Plan"]
        admin.execute("DEALLOCATE best_action")
        raise _Rollback
    nodes = _plan_nodes(plan)
    assert any(n.get("Index Name") == "idx_q_values_lookup" for n in nodes), plan
    assert not any("Sort" in n["Node Type"] for n in nodes), plan


def test_get_best_action_call_is_inlined_into_the_same_index_scan(admin, populated_q_values):
    plan = admin.execute(
        "EXPLAIN (FORMAT JSON) SELECT * FROM get_best_action('test-generator', %s)",
        (populated_q_values + "-7",),
    ).fetchone()[0][0]["Plan"]
    nodes = _plan_nodes(plan)
    assert any(n.get("Index Name") == "idx_q_values_lookup" for n in nodes), plan
    assert not any("Sort" in n["Node Type"] for n in nodes), plan


# --- q_learning_update ---------------------------------------------------------------------------------


def q_update(q: Decimal, alpha: Decimal, gamma: Decimal, reward: Decimal, max_next: Decimal) -> Decimal:
    """Q <- Q + alpha (r + gamma max Q(s') - Q), exact, then stored as NUMERIC(12, 6) stores it."""
    with localcontext() as ctx:
        ctx.prec = 60
        return (q + alpha * (reward + gamma * max_next - q)).quantize(Decimal("0.000001"), ROUND_HALF_UP)


def test_q_learning_update_applies_the_bellman_update_with_the_agent_parameters(app, admin):
    alpha, gamma = admin.execute(
        "SELECT learning_rate, discount_factor FROM agent_types WHERE agent_type = 'coverage-analyzer'"
    ).fetchone()
    state, next_state = _key("qlu-s"), _key("qlu-next")
    _upsert(app, "coverage-analyzer", next_state, "x", 0.4)
    _upsert(app, "coverage-analyzer", next_state, "y", 0.8)  # max_a' Q(s', a') = 0.8

    expected = Decimal(0)
    for reward in ("1", "0.5", "-0.25"):
        got = app.execute(
            "SELECT q_learning_update('coverage-analyzer', %s, 'act', %s, %s)",
            (state, Decimal(reward), next_state),
        ).fetchone()[0]
        expected = q_update(expected, alpha, gamma, Decimal(reward), Decimal("0.8"))
        assert got == expected
    terminal = app.execute("SELECT q_learning_update('coverage-analyzer', %s, 'act', 2, NULL)", (state,)).fetchone()[0]
    assert terminal == q_update(expected, alpha, gamma, Decimal(2), Decimal(0))
    visits = app.execute("SELECT visit_count FROM q_values WHERE state_hash = %s", (state,)).fetchone()[0]
    assert visits == 4


# --- TTL cleanup ---------------------------------------------------------------------------------------


def test_cleanup_deletes_only_expired_rows_in_batches_and_cascades_rewards(app, admin):
    admin.execute("SELECT * FROM cleanup_expired_data()")  # start from no expired rows
    tag = _key("ttl")
    past, future = "now() - interval '1 day'", "now() + interval '1 day'"
    ids = {}
    for name, expires in (("old", past), ("new", future)):
        ids[name] = admin.execute(
            "INSERT INTO trajectories (agent_type, task_id, expires_at) "
            f"VALUES ('test-generator', %s, {expires}) RETURNING trajectory_id",
            (f"{tag}-{name}",),
        ).fetchone()[0]
        admin.execute(
            "INSERT INTO rewards (agent_type, trajectory_id, state_hash, action_hash, reward_value) "
            "SELECT 'test-generator', %s, %s, 'a', n FROM generate_series(1, 3) AS n",
            (ids[name], tag),
        )
    admin.execute(
        f"""
        INSERT INTO q_values (agent_type, state_hash, action_hash, expires_at)
        SELECT 'test-generator', %s, 'old' || n, {past} FROM generate_series(1, 5) AS n
        UNION ALL SELECT 'test-generator', %s, 'new', {future}
        UNION ALL SELECT 'test-generator', %s, 'forever', NULL
        """,
        (tag, tag, tag),
    )
    parent = admin.execute(
        f"INSERT INTO patterns (agent_type, pattern_name, pattern_type, pattern_data, expires_at) "
        f"VALUES ('test-generator', %s, 'test_template', '{{}}', {past}) RETURNING pattern_id",
        (f"{tag}-parent",),
    ).fetchone()[0]
    admin.execute(
        "INSERT INTO patterns (agent_type, pattern_name, pattern_type, pattern_data, parent_pattern_id) "
        "VALUES ('test-generator', %s, 'test_template', '{}', %s)",
        (f"{tag}-child", parent),
    )

    result = dict(app.execute("SELECT * FROM cleanup_expired_data(2)").fetchall())

    assert result == {"q_values": 5, "trajectories": 1, "rewards": 3, "patterns": 1}
    left = admin.execute("SELECT action_hash FROM q_values WHERE state_hash = %s ORDER BY 1", (tag,)).fetchall()
    assert left == [("forever",), ("new",)]
    assert admin.execute("SELECT trajectory_id FROM trajectories WHERE task_id LIKE %s", (tag + "%",)).fetchall() == [
        (ids["new"],)
    ]
    assert admin.execute(
        "SELECT trajectory_id, count(*) FROM rewards WHERE state_hash = %s GROUP BY 1", (tag,)
    ).fetchall() == [(ids["new"], 3)]
    child = admin.execute("SELECT parent_pattern_id FROM patterns WHERE pattern_name = %s", (f"{tag}-child",))
    assert child.fetchall() == [(None,)]


def test_rewards_follow_a_deleted_trajectory(admin):
    tag = _key("cascade")
    trajectory = admin.execute(
        "INSERT INTO trajectories (agent_type, task_id) VALUES ('test-generator', %s) RETURNING trajectory_id",
        (tag,),
    ).fetchone()[0]
    admin.execute(
        "INSERT INTO rewards (agent_type, trajectory_id, state_hash, action_hash, reward_value) "
        "VALUES ('test-generator', %s, %s, 'a', 1)",
        (trajectory, tag),
    )
    admin.execute("DELETE FROM trajectories WHERE trajectory_id = %s", (trajectory,))
    assert admin.execute("SELECT count(*) FROM rewards WHERE state_hash = %s", (tag,)).fetchone()[0] == 0


# --- seed 001: the quick-start client, the monitoring and maintenance queries ------------------------

# Seed 001's "Test Connection (Python)" as written; only the five connection values are replaced.
QUICK_START = """
import asyncpg
import asyncio

async def test_connection():
    # Connect to database
    conn = await asyncpg.connect(
        host=HOST,
        port=PORT,  # PgBouncer
        user=USER,
        password=PASSWORD,
        database=DATABASE
    )

    # Test upsert_q_value function
    q_value_id = await conn.fetchval(
        "SELECT upsert_q_value($1, $2, $3, $4, $5, $6)",
        'test-generator',  # agent_type
        'abc123',          # state_hash
        '{"module": "auth"}',  # state_data
        'def456',          # action_hash
        '{"action": "generate_test"}',  # action_data
        0.85               # q_value
    )

    print(f"\u2705 Q-value inserted: {q_value_id}")

    # Test get_best_action function
    action = await conn.fetchrow(
        "SELECT * FROM get_best_action($1, $2)",
        'test-generator',
        'abc123'
    )

    print(f"\u2705 Best action: {action['action_data']}, Q-value: {action['q_value']}")

    await conn.close()

asyncio.run(test_connection())
"""


def test_seed_001_quick_start_client_runs_through_pgbouncer(stack, tmp_path: Path):
    check_quick_start(stack.dsn(KEY, role="app", via="pgbouncer"), tmp_path)


def check_quick_start(dsn: str, tmp_path: Path) -> None:
    """Run seed 001's quick-start client against `dsn` (its five connection values) and check what it prints."""
    url = urlsplit(dsn)
    values = {
        "HOST": repr(url.hostname),
        "PORT": str(url.port),
        "USER": repr(unquote(url.username)),
        "PASSWORD": repr(unquote(url.password)),
        "DATABASE": repr(url.path.lstrip("/")),
    }
    script = QUICK_START
    for name, value in values.items():
        script = script.replace(f"={name}", f"={value}", 1)
    path = tmp_path / "quick_start.py"
    path.write_text(textwrap.dedent(script))
    result = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("\u2705 Q-value inserted: ") and lines[0].split(": ")[1].isdigit()
    assert lines[1] == '\u2705 Best action: {"action": "generate_test"}, Q-value: 0.850000'


MONITORING_QUERIES = {
    "table sizes": """
        SELECT
            tablename,
            pg_size_pretty(pg_total_relation_size('public.'||tablename)) AS size
        FROM pg_tables
        WHERE schemaname = 'public'
        ORDER BY pg_total_relation_size('public.'||tablename) DESC;
    """,
    "q-value statistics": """
        SELECT
            agent_type,
            COUNT(*) as q_value_count,
            AVG(q_value) as avg_q_value,
            MAX(visit_count) as max_visits
        FROM q_values
        GROUP BY agent_type
        ORDER BY q_value_count DESC;
    """,
    "agent performance": "SELECT * FROM agent_performance_summary;",
    "pattern effectiveness": "SELECT * FROM pattern_effectiveness ORDER BY success_rate DESC LIMIT 10;",
    "cleanup": "SELECT * FROM cleanup_expired_data();",
    "refresh": "SELECT refresh_materialized_views();",
    "vacuum status": """
        SELECT schemaname, relname, n_dead_tup, n_live_tup,
               ROUND(n_dead_tup * 100.0 / NULLIF(n_live_tup, 0), 2) AS dead_pct
        FROM pg_stat_user_tables
        WHERE schemaname = 'public'
        ORDER BY dead_pct DESC NULLS LAST;
    """,
    "reindex": "REINDEX INDEX CONCURRENTLY idx_q_values_lookup;",
    "analyze": "ANALYZE;",
    "slow lookups": "EXPLAIN ANALYZE\nSELECT * FROM q_values WHERE agent_type = 'test-gen' AND state_hash = 'abc';",
    "expired rows": "SELECT COUNT(*) FROM q_values WHERE expires_at < NOW();",
}


@pytest.mark.parametrize("name", list(MONITORING_QUERIES))
def test_seed_001_monitoring_and_maintenance_queries_run_as_written(admin, name):
    cur = admin.execute(MONITORING_QUERIES[name])
    if name in ("agent performance",):
        assert len(cur.fetchall()) == 18
    if name == "cleanup":
        assert [r[0] for r in cur.fetchall()] == ["q_values", "trajectories", "rewards", "patterns"]


def test_seed_001_metrics_export_runs_as_written(admin):
    """The monthly export writes a CSV on the server host; here the server is this machine."""
    target = Path("/tmp/metrics.csv")
    target.unlink(missing_ok=True)
    admin.execute("COPY (SELECT * FROM agent_performance_summary) TO '/tmp/metrics.csv' CSV HEADER;")
    assert target.read_text().splitlines()[0].startswith("agent_type,")
    target.unlink(missing_ok=True)


# --- samples -------------------------------------------------------------------------------------------


def test_sample_loads_the_seed_rows_idempotently(stack, admin):
    with psycopg.connect(stack.dsn(KEY, role="admin")) as conn:
        conn.execute("SET ROLE qlearning_owner")
        samples.sample(conn)
        conn.commit()
        samples.sample(conn)
        conn.commit()
    counts = admin.execute(
        "SELECT (SELECT count(*) FROM sessions WHERE metadata @> '{\"sample\": true}'), "
        "(SELECT count(*) FROM rewards WHERE trajectory_id IN (SELECT trajectory_id FROM trajectories "
        " WHERE session_id IN (SELECT session_id FROM sessions WHERE metadata @> '{\"sample\": true}')))"
    ).fetchone()
    assert counts == (len(samples.SESSIONS), sum(len(t[-1]) for t in samples.TRAJECTORIES))
    quick_start = admin.execute(
        "SELECT q_value FROM q_values WHERE agent_type = 'test-generator' AND state_hash = 'abc123' "
        "AND action_hash = 'def456'"
    ).fetchone()
    assert quick_start is not None
    used = admin.execute(
        "SELECT trajectories_using_pattern FROM pattern_effectiveness WHERE pattern_name = %s",
        (samples.PATTERNS[0][2],),
    ).fetchone()
    assert used == (2,)


def test_agentdb_seed_sample_loads_the_samples(stack, admin):
    stack.cli("seed", "--db", KEY, "--sample")
    sessions = admin.execute("SELECT count(*) FROM sessions WHERE metadata @> '{\"sample\": true}'").fetchone()[0]
    assert sessions == len(samples.SESSIONS)
