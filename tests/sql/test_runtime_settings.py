"""Settings the databases read at run time follow the stack file on the next `up` or `migrate`.

agentdb:retentionDays is the Q-learning TTL (seed 000, "Data Retention (TTL)"): the expires_at
defaults of q_values, trajectories and patterns, the TTL both upserts refresh, and so what
cleanup_expired_data() deletes. agentdb:partitionPremakeMonths is pg_partman's premake of every
partitioned table of orchestrator and agentic. The shared stack is changed with a copy of its own
stack file and put back by the real `agentdb migrate` with the original one.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
import yaml

from infra import migrations

KEY = "qlearning"
TTL_DAYS = 7
PREMAKE = 5
PARTITIONED = ["orchestrator", "agentic"]

INSERTS = {
    "q_values": "INSERT INTO q_values (agent_type, state_hash, action_hash) VALUES ('test-generator', %s, 'a')"
    " RETURNING expires_at - now()",
    "trajectories": "INSERT INTO trajectories (agent_type, task_id) VALUES ('test-generator', %s)"
    " RETURNING expires_at - now()",
    "patterns": "INSERT INTO patterns (agent_type, pattern_name, pattern_type, pattern_data)"
    " VALUES ('test-generator', %s, 'test_template', '{}') RETURNING expires_at - now()",
}
KEYS = {"q_values": "state_hash", "trajectories": "task_id", "patterns": "pattern_name"}


def changed_stack_file(stack, directory: Path, **changes) -> Path:
    """The shared stack's own file with some `agentdb:` keys changed."""
    doc = yaml.safe_load(stack.stack_file.read_text())
    doc["config"].update({f"agentdb:{key}": value for key, value in changes.items()})
    path = directory / stack.stack_file.name
    path.write_text(yaml.safe_dump(doc))
    return path


def run(stack, verb: str, stack_file: Path, *args: str):
    """The real `agentdb <verb>` against the shared stack, reading `stack_file` instead of its own."""
    return replace(stack, stack_file=stack_file, outputs=[]).cli(verb, *args)


def stored_days(stack) -> int:
    with psycopg.connect(stack.dsn(KEY)) as conn:
        return conn.execute("SELECT retention_days FROM agentdb_settings").fetchone()[0]


@pytest.fixture(scope="module")
def changed(stack, tmp_path_factory):
    """The shared stack after `agentdb up` with retentionDays 7 and partitionPremakeMonths 5."""
    path = changed_stack_file(
        stack, tmp_path_factory.mktemp("ttl"), retentionDays=TTL_DAYS, partitionPremakeMonths=PREMAKE
    )
    try:
        yield run(stack, "up", path).stdout
    finally:
        stack.cli("migrate")
    assert stored_days(stack) == stack.settings.retention_days


@pytest.fixture
def app(stack, changed):
    """The app role through PgBouncer, as applications connect."""
    with psycopg.connect(stack.dsn(KEY, "app", "pgbouncer"), autocommit=True) as conn:
        yield conn


@pytest.fixture
def admin(stack, changed):
    with psycopg.connect(stack.dsn(KEY), autocommit=True) as conn:
        yield conn


def test_up_writes_the_changed_values_and_says_so(changed):
    assert f"qlearning    settings: retention_days={TTL_DAYS}" in changed
    for key in PARTITIONED:
        assert f"{key:<12} settings: partition_premake_months={PREMAKE}" in changed


@pytest.mark.parametrize("table", INSERTS)
def test_a_new_row_expires_after_the_setting(app, table):
    with pytest.raises(_Rollback), app.transaction():
        assert app.execute(INSERTS[table], (f"ttl-{table}",)).fetchone()[0] == timedelta(days=TTL_DAYS)
        raise _Rollback


class _Rollback(Exception):
    pass


@pytest.mark.parametrize(
    "call",
    [
        "SELECT upsert_q_value('test-generator', %s, '{}', 'a', '{}', 0.5)",
        "SELECT q_learning_update('test-generator', %s, 'a', 1, NULL)",
    ],
    ids=["upsert_q_value", "q_learning_update"],
)
def test_the_upserts_refresh_the_ttl_to_the_setting(app, admin, call):
    state = f"ttl-upsert-{call.split('(')[0][7:]}"
    admin.execute("DELETE FROM q_values WHERE state_hash = %s", (state,))
    # A row from before the change still carries 30 days; the update gives it the setting's TTL.
    admin.execute(
        "INSERT INTO q_values (agent_type, state_hash, action_hash, expires_at)"
        " VALUES ('test-generator', %s, 'a', now() + interval '30 days')",
        (state,),
    )
    app.execute(call, (state,))
    ttl, visits = admin.execute(
        "SELECT expires_at - last_updated, visit_count FROM q_values WHERE state_hash = %s", (state,)
    ).fetchone()
    admin.execute("DELETE FROM q_values WHERE state_hash = %s", (state,))
    assert (ttl, visits) == (timedelta(days=TTL_DAYS), 2)


@pytest.mark.parametrize(
    ("table", "age_days", "deleted"), [(t, 6, False) for t in INSERTS] + [(t, 8, True) for t in INSERTS]
)
def test_cleanup_deletes_a_row_once_the_setting_has_passed(app, admin, table, age_days, deleted):
    key = f"ttl-cleanup-{table}-{age_days}"
    column = KEYS[table]
    admin.execute(f"DELETE FROM {table} WHERE {column} = %s", (key,))
    app.execute(INSERTS[table], (key,))
    # `age_days` later every deadline is that much closer: move the row's deadline back instead of the clock.
    admin.execute(
        f"UPDATE {table} SET expires_at = expires_at - make_interval(days => %s) WHERE {column} = %s", (age_days, key)
    )
    app.execute("SELECT * FROM cleanup_expired_data()")
    left = admin.execute(f"SELECT count(*) FROM {table} WHERE {column} = %s", (key,)).fetchone()[0]
    admin.execute(f"DELETE FROM {table} WHERE {column} = %s", (key,))
    assert left == (0 if deleted else 1)


def test_a_pooled_session_sees_a_new_value_at_its_next_statement(stack, changed):
    with psycopg.connect(stack.dsn(KEY, "app", "pgbouncer"), autocommit=True) as conn:
        assert conn.execute("SELECT agentdb_retention_interval()").fetchone()[0] == timedelta(days=TTL_DAYS)
        try:
            migrations.upgrade(stack.dsn(KEY), KEY, values={"retention_days": TTL_DAYS + 2})
            assert conn.execute("SELECT agentdb_retention_interval()").fetchone()[0] == timedelta(days=TTL_DAYS + 2)
        finally:
            migrations.upgrade(stack.dsn(KEY), KEY, values={"retention_days": TTL_DAYS})


def test_migrate_applies_a_changed_value_without_a_new_revision(stack, changed, tmp_path):
    before = migrations.current(stack.dsn(KEY), KEY)
    path = changed_stack_file(stack, tmp_path, retentionDays=TTL_DAYS + 1, partitionPremakeMonths=PREMAKE)
    try:
        out = run(stack, "migrate", path, "--db", KEY).stdout
        assert f"settings: retention_days={TTL_DAYS + 1}" in out
        assert stored_days(stack) == TTL_DAYS + 1
        assert migrations.current(stack.dsn(KEY), KEY) == before
        again = run(stack, "migrate", path, "--db", KEY).stdout
        assert "settings:" not in again  # an unchanged value is not written again
    finally:
        run(stack, "migrate", changed_stack_file(stack, tmp_path, retentionDays=TTL_DAYS), "--db", KEY)
    assert stored_days(stack) == TTL_DAYS


@pytest.mark.parametrize("key", PARTITIONED)
def test_every_partitioned_table_premakes_the_setting(stack, changed, key):
    with psycopg.connect(stack.dsn(key)) as conn:
        premakes = conn.execute("SELECT parent_table, premake FROM partman.part_config").fetchall()
    assert premakes and {table: PREMAKE for table, _ in premakes} == dict(premakes)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE agentdb_settings SET retention_days = 1",
        "DELETE FROM agentdb_settings",
        "INSERT INTO agentdb_settings (is_singleton) VALUES (false)",
        "TRUNCATE agentdb_settings",
    ],
)
def test_the_app_cannot_change_the_ttl(stack, statement):
    with psycopg.connect(stack.dsn(KEY, "app")) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(statement)


@pytest.mark.parametrize(
    ("days", "rule"), [(0, "greater than 0"), (36501, "less than or equal to 36500"), ("x", "integer")]
)
def test_upgrade_refuses_a_ttl_the_settings_refuse(stack, changed, days, rule):
    with pytest.raises(migrations.MigrationError, match=f"qlearning: runtime setting retention_days: .*{rule}"):
        migrations.upgrade(stack.dsn(KEY), KEY, values={"retention_days": days})
    assert stored_days(stack) == TTL_DAYS


@pytest.mark.parametrize("days", [0, 36501])
def test_the_table_refuses_a_ttl_out_of_range(stack, changed, days):
    with psycopg.connect(stack.dsn(KEY)) as conn, pytest.raises(psycopg.errors.CheckViolation):
        conn.execute("UPDATE agentdb_settings SET retention_days = %s", (days,))
    assert stored_days(stack) == TTL_DAYS


def test_pulumis_wire_form_of_a_number_is_written_as_the_setting(stack, changed):
    try:
        assert migrations.upgrade(stack.dsn(KEY), KEY, values={"retention_days": float(TTL_DAYS + 3)}) == [
            f"retention_days={TTL_DAYS + 3}"
        ]
        assert stored_days(stack) == TTL_DAYS + 3
    finally:
        migrations.upgrade(stack.dsn(KEY), KEY, values={"retention_days": TTL_DAYS})


def test_upgrade_refuses_values_that_are_not_the_databases_settings(stack, changed):
    with pytest.raises(migrations.MigrationError, match=r"must be exactly \['retention_days'\]"):
        migrations.upgrade(stack.dsn(KEY), KEY, values={"retention_days": 9, "partition_premake_months": 4})
    assert stored_days(stack) == TTL_DAYS
