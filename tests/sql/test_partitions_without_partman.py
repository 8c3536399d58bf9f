"""Monthly partitions on a database without pg_partman, as on a managed server that does not offer it.

A scratch database per partitioned history on the test server, made by the baseline with pg_partman
left out: the migrations go up and down, the seed's inserts land, and the partition-maintenance job's
function premakes by agentdb:partitionPremakeMonths and detaches by retention.
"""

from __future__ import annotations

import datetime as dt
import re

import psycopg
import pytest
from psycopg import sql

from infra import baseline, cron, migrations, seeds
from infra.databases import DATABASES
from tests.sql.test_migrations_roundtrip import OUR_OBJECTS

PARENTS = {
    "orchestrator": [
        "agent_activity_log",
        "penalty_history",
        "point_transactions",
        "reputation_history",
        "task_history",
    ],
    "agentic": ["conversation_history"],
}
# The roundtrip test's query, less pg_partman's catalogue, which this database does not have.
OURS = re.sub(r"UNION ALL\nSELECT 'partman template'.*?FROM partman\.part_config\n", "", OUR_OBJECTS, flags=re.S)


def _months_from_now(step: int) -> str:
    today = dt.datetime.now(dt.UTC)
    index = today.year * 12 + today.month - 1 + step
    return f"{index // 12:04d}_{index % 12 + 1:02d}"


def _children(conn, parent: str) -> set[str]:
    rows = conn.execute(
        "SELECT i.inhrelid::regclass::text FROM pg_inherits i WHERE i.inhparent = %s::regclass", (parent,)
    ).fetchall()
    return {r[0] for r in rows}


@pytest.fixture(scope="module", params=list(PARENTS))
def scratch(stack, request):
    """(database, admin libpq URL) of a fresh database of history `key`, made without pg_partman, at head."""
    db = DATABASES[request.param]
    name = f"nopartman_{db.key}"
    admin = stack.dsn(None)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(
            sql.SQL("CREATE DATABASE {} OWNER {} TEMPLATE template0").format(
                sql.Identifier(name), sql.Identifier(db.owner)
            )
        )
        conn.execute(
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}, {}").format(
                sql.Identifier(name), sql.Identifier(db.app_role), sql.Identifier(db.readonly_role)
            )
        )
    dsn = admin.rsplit("/", 1)[0] + f"/{name}"
    try:
        with psycopg.connect(dsn) as conn:
            baseline.apply_database(conn, db, with_partman=False)
        migrations.upgrade(dsn, db.key, values=migrations.runtime_values(db.key, stack.settings))
        yield db, dsn
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _as_owner(dsn: str, db, query: str):
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(db.owner)))
        return conn.execute(query).fetchall()


def test_the_database_has_no_pg_partman_and_premade_partitions(stack, scratch):
    db, dsn = scratch
    premake = stack.settings.partition_premake_months
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_partman'").fetchone() is None
        for parent in PARENTS[db.key]:
            children = _children(conn, parent)
            wanted = {f"{parent}_default"} | {f"{parent}_p{_months_from_now(s)}" for s in range(-premake, premake + 1)}
            assert wanted <= children, f"{parent}: missing {sorted(wanted - children)}"
            owners = conn.execute(
                "SELECT DISTINCT pg_get_userbyid(c.relowner) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                " WHERE i.inhparent = %s::regclass",
                (parent,),
            ).fetchall()
            assert owners == [(db.owner,)]


def test_the_seeds_inserts_land_in_the_monthly_partitions(stack, scratch):
    db, dsn = scratch
    seeds.seed(dsn, db, sample=True)
    with psycopg.connect(dsn) as conn:
        landed = {
            parent: conn.execute(
                sql.SQL("SELECT tableoid::regclass::text, count(*) FROM {} GROUP BY 1").format(sql.Identifier(parent))
            ).fetchall()
            for parent in PARENTS[db.key]
        }
    rows = [(table, n) for found in landed.values() for table, n in found]
    assert sum(n for _, n in rows) > 0, landed
    # The seed writes rows of now and the last days: they land in month partitions, not the default.
    assert any(re.search(r"_p\d{4}_\d{2}$", table) for table, _ in rows), landed


def test_the_premake_setting_reaches_the_next_maintenance_run(stack, scratch):
    db, dsn = scratch
    premake = stack.settings.partition_premake_months + 2
    values = {**migrations.runtime_values(db.key, stack.settings), "partition_premake_months": premake}
    assert migrations.upgrade(dsn, db.key, values=values) == [f"partition_premake_months={premake}"]
    # The command of the database's partition-maintenance cron job, as pg_cron or our scheduler runs it.
    (job,) = [j for j in cron.jobs(db, stack.settings) if j.name.endswith("-partition-maintenance")]
    _as_owner(dsn, db, job.command)
    with psycopg.connect(dsn) as conn:
        for parent in PARENTS[db.key]:
            assert f"{parent}_p{_months_from_now(premake)}" in _children(conn, parent)
    migrations.upgrade(dsn, db.key, values=migrations.runtime_values(db.key, stack.settings))


@pytest.mark.parametrize("role", ["app", "readonly"])
def test_only_the_owner_runs_the_partition_function_and_writes_its_settings(scratch, role):
    db, dsn = scratch
    member = {"app": db.app_role, "readonly": db.readonly_role}[role]
    function = "maintain_partitions()" if db.key == "orchestrator" else "agentic_maintain_partitions()"
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT has_function_privilege(%s, %s, 'EXECUTE')", (member, function)).fetchone() == (
            False,
        )
        assert conn.execute("SELECT has_table_privilege(%s, 'agentdb_partitions', 'UPDATE')", (member,)).fetchone() == (
            False,
        )


def test_down_to_base_leaves_nothing_and_up_again_works(stack, scratch):
    db, dsn = scratch
    migrations.downgrade(dsn, db.key, "base")
    with psycopg.connect(dsn) as conn:
        assert conn.execute(OURS).fetchall() == []
    migrations.upgrade(dsn, db.key, values=migrations.runtime_values(db.key, stack.settings))
    assert migrations.current(dsn, db.key) in migrations.heads(db.key)
    with psycopg.connect(dsn) as conn:
        assert f"{PARENTS[db.key][0]}_p{_months_from_now(0)}" in _children(conn, PARENTS[db.key][0])


def test_retention_detaches_old_partitions_only_where_the_history_asks(stack, scratch):
    db, dsn = scratch
    parent = PARENTS[db.key][0]
    old = f"{parent}_p{_months_from_now(-2)}"
    if db.key == "orchestrator":
        _as_owner(dsn, db, "SELECT run_partition_maintenance(1)")  # the job's function, 1 month of retention
    else:
        _as_owner(dsn, db, "SELECT agentic_run_partition_maintenance()")  # rows leave by archiving instead
    with psycopg.connect(dsn) as conn:
        children = _children(conn, parent)
        assert (old in children) is (db.key == "agentic")
        assert f"{parent}_p{_months_from_now(-1)}" in children
        assert conn.execute("SELECT to_regclass(%s)", (old,)).fetchone()[0] is not None  # detached, kept
