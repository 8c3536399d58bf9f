"""What the readonly roles may execute, and proof that none of it changes the database (issue 13).

The catalog tests list, per database, every function its readonly role may execute and fail on a
VOLATILE SECURITY DEFINER one that `sql/<db>/privileges.yaml` does not allow-list. The behavioural
test calls functions as the readonly role with arguments taken from the sample data, on a direct
superuser connection switched to the role with SET SESSION AUTHORIZATION inside a REPEATABLE READ
transaction: the role's privileges apply, its `default_transaction_read_only` does not (a client
may start READ WRITE transactions, so the privileges must hold alone), and the fingerprint taken
before and after the call, in the same transaction, sees every row the call could have changed.

Covered by the behavioural test: every function the readonly role may execute outside pg_catalog
and information_schema that SQL can call (no `internal` argument, not a trigger) and that a
migration defines, and every VOLATILE one an extension defines (an extension's STABLE and IMMUTABLE
C functions are side-effect free by their authors' declaration; the catalog test counts them).
Such a function without an entry in EXAMPLES fails
`test_every_function_the_readonly_role_may_execute_has_an_example_call`.
"""

from __future__ import annotations

import psycopg
import pytest
from psycopg import errors, sql

from infra import migrations, privileges
from infra.databases import DATABASES
from infra.settings import Settings

KEYS = Settings().databases

# Every routine `role` may execute, in every schema, pg_catalog included.
EXECUTABLE = """
SELECT p.oid::regprocedure::text, n.nspname, p.provolatile, p.prosecdef,
       EXISTS (SELECT 1 FROM pg_depend d
               WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e') AS in_extension,
       -- SQL can build no value of type internal, and trigger functions run only as triggers.
       NOT 'internal'::regtype = ANY (p.proargtypes::regtype[])
           AND p.prorettype NOT IN ('trigger'::regtype, 'event_trigger'::regtype) AS callable
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE has_function_privilege(%s, p.oid, 'EXECUTE')
ORDER BY n.nspname, 1
"""

# The extensions every database has (infra/baseline.py): their VOLATILE functions take no rows, so
# constant arguments do. (args query or None, call, expected error or None)
EXTENSION_EXAMPLES = {
    "pg_stat_statements(boolean)": (None, "pg_stat_statements(true)", None),
    "pg_stat_statements_info()": (None, "pg_stat_statements_info()", None),
    "set_limit(real)": (None, "set_limit(0.4)", None),
    "uuid_generate_v1()": (None, "uuid_generate_v1()", None),
    "uuid_generate_v1mc()": (None, "uuid_generate_v1mc()", None),
    "uuid_generate_v4()": (None, "uuid_generate_v4()", None),
    "public.gen_random_uuid()": (None, "public.gen_random_uuid()", None),
    "gen_salt(text)": (None, "gen_salt('bf')", None),
    "gen_salt(text,integer)": (None, "gen_salt('bf', 6)", None),
    "gen_random_bytes(integer)": (None, "gen_random_bytes(16)", None),
    "pgp_sym_encrypt(text,text)": (None, "pgp_sym_encrypt('probe', 'key')", None),
    "pgp_sym_encrypt(text,text,text)": (None, "pgp_sym_encrypt('probe', 'key', 'cipher-algo=aes256')", None),
    "pgp_sym_encrypt_bytea(bytea,text)": (None, "pgp_sym_encrypt_bytea('\\x00'::bytea, 'key')", None),
    "pgp_sym_encrypt_bytea(bytea,text,text)": (
        None,
        "pgp_sym_encrypt_bytea('\\x00'::bytea, 'key', 'cipher-algo=aes256')",
        None,
    ),
    # Without a real public key these fail; what matters is that they change nothing.
    "pgp_pub_encrypt(text,bytea)": (None, "pgp_pub_encrypt('probe', '\\x00'::bytea)", "Wrong key"),
    "pgp_pub_encrypt(text,bytea,text)": (None, "pgp_pub_encrypt('probe', '\\x00'::bytea, '')", "Wrong key"),
    "pgp_pub_encrypt_bytea(bytea,bytea)": (None, "pgp_pub_encrypt_bytea('\\x00'::bytea, '\\x00'::bytea)", "Wrong key"),
    "pgp_pub_encrypt_bytea(bytea,bytea,text)": (
        None,
        "pgp_pub_encrypt_bytea('\\x00'::bytea, '\\x00'::bytea, '')",
        "Wrong key",
    ),
}

_SESSION = "SELECT id::text FROM voting_sessions ORDER BY created_at, id LIMIT 1"
_AGENT = "SELECT id::text FROM agents ORDER BY agent_id LIMIT 1"

# Per database: signature -> (query returning the arguments from the sample data or None, the call
# with %s for them, the error the readonly role's call is expected to raise or None). Functions the
# readonly role may not execute are here too: their call must be refused and change nothing.
EXAMPLES: dict[str, dict[str, tuple[str | None, str, str | None]]] = {
    "qlearning": {
        "agentdb_retention_interval()": (None, "agentdb_retention_interval()", None),
        "get_best_action(character varying,character varying)": (
            "SELECT agent_type, state_hash FROM q_values ORDER BY q_value_id LIMIT 1",
            "get_best_action(%s, %s)",
            None,
        ),
        "upsert_q_value(character varying,character varying,jsonb,character varying,jsonb,double precision,uuid)": (
            "SELECT agent_type, state_hash, action_hash FROM q_values ORDER BY q_value_id LIMIT 1",
            "upsert_q_value(%s, %s, '{}', %s, '{}', 0.5)",
            None,
        ),
        "q_learning_update(character varying,character varying,character varying,double precision,character varying)": (
            "SELECT agent_type, state_hash, action_hash, state_hash FROM q_values ORDER BY q_value_id LIMIT 1",
            "q_learning_update(%s, %s, %s, 1.0, %s)",
            None,
        ),
        "cleanup_expired_data(integer,integer)": (None, "cleanup_expired_data(1000, 1)", None),
        "refresh_materialized_views()": (None, "refresh_materialized_views()", None),
    },
    "orchestrator": {
        "orchestrator_setting(text)": (
            "SELECT setting_key FROM system_settings ORDER BY 1 LIMIT 1",
            "orchestrator_setting(%s)",
            None,
        ),
        "log_agent_activity(uuid,text,text,jsonb)": (_AGENT, "log_agent_activity(%s::uuid, 'probe', 'probe')", None),
        "refresh_agent_task_stats(uuid)": (_AGENT, "refresh_agent_task_stats(%s::uuid)", None),
        "tier_for_points(integer)": (
            "SELECT total_points FROM agents ORDER BY agent_id LIMIT 1",
            "tier_for_points(%s)",
            None,
        ),
        "voting_result(uuid,jsonb,text,jsonb)": (
            "SELECT id::text, options->>0 FROM voting_sessions ORDER BY created_at, id LIMIT 1",
            "voting_result(%s::uuid, '{}'::jsonb, %s)",
            None,
        ),
        "option_scores(uuid,jsonb)": (
            "SELECT id::text, jsonb_build_object(options->>0, 1)::text FROM voting_sessions"
            " ORDER BY created_at, id LIMIT 1",
            "option_scores(%s::uuid, %s::jsonb)",
            None,
        ),
        "tally_simple_majority(uuid)": (_SESSION, "tally_simple_majority(%s::uuid)", None),
        "tally_weighted(uuid)": (_SESSION, "tally_weighted(%s::uuid)", None),
        "tally_quadratic(uuid)": (_SESSION, "tally_quadratic(%s::uuid)", None),
        "tally_ranked_choice(uuid)": (_SESSION, "tally_ranked_choice(%s::uuid)", None),
        "tally_consensus(uuid)": (_SESSION, "tally_consensus(%s::uuid)", None),
        "tally_votes(uuid)": (_SESSION, "tally_votes(%s::uuid)", None),
        "close_voting_session(uuid)": (_SESSION, "close_voting_session(%s::uuid)", None),
        "trust_level_for(numeric)": (
            "SELECT eigentrust_score FROM global_trust_scores ORDER BY agent_id LIMIT 1",
            "trust_level_for(%s)",
            None,
        ),
        "compute_eigentrust(numeric,numeric,integer)": (None, "compute_eigentrust()", None),
        "record_battle_result(uuid,uuid,numeric,integer)": (
            "SELECT battle_id::text, agent_id::text FROM battle_participants ORDER BY 1, 2 LIMIT 1",
            "record_battle_result(%s::uuid, %s::uuid, 50)",
            None,
        ),
        "refresh_leaderboard_rankings(text,date)": (None, "refresh_leaderboard_rankings('weekly')", None),
        "release_expired_allocations()": (None, "release_expired_allocations()", None),
        "claim_reward(uuid,text)": (
            "SELECT a.id::text, r.reward_key FROM agents a, rewards r ORDER BY a.agent_id, r.reward_key LIMIT 1",
            "claim_reward(%s::uuid, %s)",
            None,
        ),
        "partitioned_tables()": (None, "partitioned_tables()", None),
        "create_next_month_partitions()": (None, "create_next_month_partitions()", None),
        "run_partition_maintenance(integer)": (None, "run_partition_maintenance(1)", None),
        "refresh_reputation_views()": (None, "refresh_reputation_views()", None),
    },
    "afs": {
        "jsonb_require_enum(text,jsonb,text[])": (
            "SELECT (metadata->'priority')::text, ARRAY[metadata->>'priority'] FROM tasks ORDER BY id LIMIT 1",
            "jsonb_require_enum('priority', %s::jsonb, %s::text[])",
            None,
        ),
        "jsonb_require_number(text,jsonb,numeric,numeric,boolean)": (
            "SELECT (estimated_impact->'storage_overhead_mb')::text FROM optimization_proposals ORDER BY id LIMIT 1",
            "jsonb_require_number('storage_overhead_mb', %s::jsonb, 0, 1000000)",
            None,
        ),
        "jsonb_require_object(text,jsonb)": (
            "SELECT (metadata->'user_preferences')::text FROM tasks ORDER BY id LIMIT 1",
            "jsonb_require_object('user_preferences', %s::jsonb)",
            None,
        ),
        "validate_task_metadata(jsonb)": (
            "SELECT metadata::text FROM tasks ORDER BY id LIMIT 1",
            "validate_task_metadata(%s::jsonb)",
            None,
        ),
        "validate_estimated_impact(jsonb)": (
            "SELECT estimated_impact::text FROM optimization_proposals ORDER BY id LIMIT 1",
            "validate_estimated_impact(%s::jsonb)",
            None,
        ),
        "validate_all_scores(jsonb)": (
            "SELECT all_scores::text FROM consensus_decisions ORDER BY id LIMIT 1",
            "validate_all_scores(%s::jsonb)",
            None,
        ),
        "validate_sql_commands(text[])": (
            "SELECT sql_commands FROM optimization_proposals ORDER BY id LIMIT 1",
            "validate_sql_commands(%s::text[])",
            None,
        ),
        "query_logs_has_vector_search()": (None, "query_logs_has_vector_search()", None),
        "hybrid_search_query_logs(text,double precision[],integer)": (
            "SELECT split_part(query_text, ' ', 2) FROM query_logs ORDER BY id LIMIT 1",
            "hybrid_search_query_logs(%s)",
            None,
        ),
        "fork_created_at(text)": (
            "SELECT fork_id FROM agent_executions WHERE fork_id IS NOT NULL ORDER BY 1 LIMIT 1",
            "fork_created_at(%s)",
            None,
        ),
        "purge_query_logs(integer)": (None, "purge_query_logs(1)", None),
        "clear_stale_forks(integer)": (None, "clear_stale_forks(1)", None),
    },
    "agentic": {
        "agentic_current_user_id()": (None, "agentic_current_user_id()", None),
        "agentic_evaluate_trust_level(uuid)": (
            "SELECT session_id::text FROM agent_sessions ORDER BY 1 LIMIT 1",
            "agentic_evaluate_trust_level(%s::uuid)",
            None,
        ),
        "agentic_require_days(text,integer)": (None, "agentic_require_days('retention', 30)", None),
        "agentic_archive_conversation_history(integer,integer)": (
            None,
            "agentic_archive_conversation_history(1, 2)",
            None,
        ),
        "agentic_archive_decisions(integer,integer)": (None, "agentic_archive_decisions(1, 2)", None),
        "agentic_purge_audit_log(integer)": (None, "agentic_purge_audit_log(1)", None),
        "agentic_rollup_trust_metrics(integer)": (None, "agentic_rollup_trust_metrics(1)", None),
        "agentic_restrict_partition_privileges()": (None, "agentic_restrict_partition_privileges()", None),
        "agentic_run_partition_maintenance()": (None, "agentic_run_partition_maintenance()", None),
    },
}
CASES = [(key, sig) for key in KEYS for sig in sorted({**EXAMPLES[key], **EXTENSION_EXAMPLES})]

# ----- the fingerprint: what a call must not change ----------------------------------------------------
_USER_RELATIONS = """
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND n.nspname NOT LIKE 'pg_temp%'
"""
FINGERPRINT = {
    # Row count and a hash of every row of every table, partition and populated materialized view.
    "rows": "SELECT c.oid::regclass::text, (xpath('/row/v/text()', query_to_xml(format("
    "'SELECT count(*) || '':'' || coalesce(sum(hashtext(t::text)::numeric), 0) AS v FROM ONLY %s t',"
    " c.oid::regclass), false, true, '')))[1]::text" + _USER_RELATIONS + " AND (c.relkind IN ('r', 'p')"
    " OR (c.relkind = 'm' AND c.relispopulated)) ORDER BY 1",
    "relations": "SELECT c.oid::regclass::text, c.relkind, c.relispopulated, c.relacl::text"
    + _USER_RELATIONS
    + " ORDER BY 1",
    "partitions": "SELECT inhparent::regclass::text, inhrelid::regclass::text FROM pg_inherits ORDER BY 1, 2",
    "functions": "SELECT p.oid::regprocedure::text, p.proacl::text, p.prosecdef, p.provolatile FROM pg_proc p"
    " WHERE p.pronamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace) ORDER BY 1",
    "sequences": "SELECT schemaname || '.' || sequencename, last_value FROM pg_sequences ORDER BY 1",
    # The caller's own session settings (SET, set_config) end with its session; the rest may not move.
    "settings": "SELECT name, setting FROM pg_settings WHERE source NOT IN ('default', 'session') ORDER BY 1",
    "role and database settings": "SELECT setrole::regrole::text, setdatabase, setconfig::text"
    " FROM pg_db_role_setting ORDER BY 1, 2",
    "roles": "SELECT rolname, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin, rolbypassrls,"
    " rolconnlimit, rolvaliduntil FROM pg_roles ORDER BY 1",
    "role memberships": "SELECT roleid::regrole::text, member::regrole::text FROM pg_auth_members ORDER BY 1, 2",
    "large objects": "SELECT count(*) FROM pg_largeobject_metadata",
}


def _fingerprint(conn: psycopg.Connection) -> dict[str, list[tuple]]:
    # With only pg_catalog on the path every name prints schema-qualified, whatever the call left.
    path = conn.execute("SELECT current_setting('search_path')").fetchone()[0]
    conn.execute("SET LOCAL search_path = pg_catalog")
    try:
        return {name: conn.execute(query).fetchall() for name, query in FINGERPRINT.items()}
    finally:
        conn.execute("SELECT set_config('search_path', %s, true)", (path,))


def _sequences_used(conn: psycopg.Connection) -> list[str]:
    """Sequences this session advanced: nextval is not undone by a rollback."""
    used = []
    for (name,) in conn.execute("SELECT oid::regclass::text FROM pg_class WHERE relkind = 'S' ORDER BY 1").fetchall():
        try:
            with conn.transaction():
                conn.execute("SELECT currval(%s)", (name,))
            used.append(name)
        except errors.ObjectNotInPrerequisiteState:  # currval not yet defined in this session
            pass
    return used


def _diff(before: dict, after: dict) -> list[str]:
    changes = []
    for name in FINGERPRINT:
        gone = sorted(set(before[name]) - set(after[name]))
        new = sorted(set(after[name]) - set(before[name]))
        if gone or new:
            changes.append(f"{name}: before {gone[:5]} after {new[:5]} ({len(gone)} / {len(new)} rows differ)")
    return changes


@pytest.fixture(scope="module")
def sample_data(stack):
    """The sample data of every database (`agentdb seed --sample` adds nothing the second time)."""
    for key in KEYS:
        stack.cli("seed", "--db", key, "--sample")


def _executable(stack, key: str) -> list[tuple]:
    with psycopg.connect(stack.dsn(key)) as conn:
        return conn.execute(EXECUTABLE, (DATABASES[key].readonly_role,)).fetchall()


def _allow_listed(stack, key: str) -> set[str]:
    spec = privileges.load(DATABASES[key])
    with psycopg.connect(stack.dsn(key)) as conn:
        names = [
            conn.execute("SELECT to_regprocedure(%s)::text", (f"public.{sig}",)).fetchone()[0]
            for sig in spec.readonly_volatile
        ]
    return {name for name in names if name}


# ----- catalog -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("key", KEYS)
def test_the_readonly_role_may_execute_no_volatile_security_definer_function(stack, key):
    rows = _executable(stack, key)
    own = [
        f"{schema}.{name} ({volatility}{', definer' if definer else ''})"
        for name, schema, volatility, definer, ext, _ in rows
        if not ext and schema not in ("pg_catalog", "information_schema")
    ]
    extension = [name for name, schema, _, _, ext, _ in rows if ext and schema != "pg_catalog"]
    print(
        f"\n{DATABASES[key].readonly_role}: {len(rows)} routines, {len(extension)} of extensions outside"
        " pg_catalog, and",
        *own,
        sep="\n  ",
    )
    allowed = _allow_listed(stack, key)
    offending = [
        f"{schema}.{name}"
        for name, schema, volatility, definer, *_ in rows
        if volatility == "v" and definer and name not in allowed
    ]
    assert offending == [], f"{DATABASES[key].readonly_role} may execute VOLATILE SECURITY DEFINER functions"


@pytest.mark.parametrize("key", KEYS)
def test_every_security_definer_function_is_executable_only_by_the_roles_named(stack, key):
    db = DATABASES[key]
    spec = privileges.load(db)
    role_of = {"app": db.app_role, "readonly": db.readonly_role}
    with psycopg.connect(stack.dsn(key)) as conn:
        definers = conn.execute(
            "SELECT p.oid::regprocedure::text, array(SELECT r.rolname::text FROM pg_roles r"
            " WHERE NOT r.rolsuper AND has_function_privilege(r.oid, p.oid, 'EXECUTE') ORDER BY 1)"
            " FROM pg_proc p WHERE p.prosecdef AND p.pronamespace = 'public'::regnamespace ORDER BY 1"
        ).fetchall()
        named = {
            conn.execute("SELECT to_regprocedure(%s)::text", (f"public.{sig}",)).fetchone()[0]: grant
            for sig, grant in spec.security_definer.items()
        }
    assert {name for name, _ in definers} <= set(named), f"not in {spec.path}"
    assert {name: sorted(roles) for name, roles in definers} == {
        name: sorted([db.owner, *(role_of[r] for r in named[name].roles)]) for name, _ in definers
    }


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("role", ["app", "readonly"])
def test_pg_partman_is_for_the_owner_only(stack, key, role):
    user = DATABASES[key].app_role if role == "app" else DATABASES[key].readonly_role
    with psycopg.connect(stack.dsn(key)) as conn:
        routines = conn.execute(
            "SELECT p.oid::regprocedure::text FROM pg_proc p WHERE p.pronamespace = 'partman'::regnamespace"
            " AND has_function_privilege(%s, p.oid, 'EXECUTE')",
            (user,),
        ).fetchall()
    assert routines == []


MAINTENANCE = ["create_next_month_partitions()", "run_partition_maintenance(12)", "refresh_reputation_views()"]


@pytest.mark.parametrize("call", MAINTENANCE)
def test_the_app_role_is_refused_the_maintenance_functions(stack, call):
    app = psycopg.connect(stack.dsn("orchestrator", "app", "pgbouncer"))
    with app as conn, pytest.raises(errors.InsufficientPrivilege):
        conn.execute(f"SELECT {call}")


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("via", ["postgres", "pgbouncer"])
def test_readonly_sessions_start_read_only(stack, key, via):
    with psycopg.connect(stack.dsn(key, "readonly", via)) as conn:
        assert conn.execute("SHOW transaction_read_only").fetchone() == ("on",)
        with pytest.raises(errors.ReadOnlySqlTransaction):
            conn.execute("CREATE TEMPORARY TABLE read_only_probe (id int)")


@pytest.mark.parametrize("key", KEYS)
def test_a_security_definer_function_the_file_does_not_name_fails_the_migration(stack, key):
    db = DATABASES[key]
    probe = "public.privileges_probe()"
    refused = pytest.raises(privileges.PrivilegesError, match=r"privileges_probe\(\).*privileges\.yaml")
    with refused, migrations._owner_transaction(stack.dsn(key), key) as conn:
        conn.exec_driver_sql(f"CREATE FUNCTION {probe} RETURNS int LANGUAGE sql SECURITY DEFINER AS 'SELECT 1'")
        migrations._after_run(conn, key)
    with psycopg.connect(stack.dsn(key)) as conn:
        assert conn.execute("SELECT to_regprocedure(%s)", (probe,)).fetchone() == (None,), db.key


PROBE_SPECS = {
    # (roles, allow-listed, expected error or None, app may execute, readonly may execute)
    "definer for the app": (["app"], False, None, True, False),
    "definer for nobody": ([], False, None, False, False),
    "volatile definer for readonly, not allow-listed": (["readonly"], False, "readonly_volatile", False, False),
    "volatile definer for readonly, allow-listed": (["readonly"], True, None, False, True),
}


@pytest.mark.parametrize(("roles", "listed", "error", "app", "readonly"), PROBE_SPECS.values(), ids=PROBE_SPECS.keys())
def test_the_file_decides_who_executes_a_security_definer_function(
    stack, tmp_path, roles, listed, error, app, readonly
):
    db = DATABASES["orchestrator"]
    why = "a probe of the test"
    spec = privileges.FunctionPrivileges(
        tmp_path / privileges.FILE_NAME,
        {**privileges.load(db).security_definer, "privileges_probe()": privileges.DefinerGrant(tuple(roles), why)},
        {"privileges_probe()": why} if listed else {},
    )
    engine = migrations._engine(stack.dsn(db.key))
    may = None
    try:
        with engine.connect() as conn:  # never committed: the probe is rolled back whatever happens
            conn.exec_driver_sql(f'SET LOCAL ROLE "{db.owner}"')
            conn.exec_driver_sql(
                "CREATE FUNCTION public.privileges_probe() RETURNS int LANGUAGE sql VOLATILE SECURITY DEFINER"
                " AS 'SELECT 1'"
            )
            if error:
                with pytest.raises(privileges.PrivilegesError, match=error):
                    privileges.enforce(conn, db, spec)
            else:
                privileges.enforce(conn, db, spec)
                may = conn.exec_driver_sql(
                    "SELECT has_function_privilege(%s, 'public.privileges_probe()', 'EXECUTE'),"
                    " has_function_privilege(%s, 'public.privileges_probe()', 'EXECUTE')",
                    (db.app_role, db.readonly_role),
                ).one()
            conn.rollback()
    finally:
        engine.dispose()
    if not error:
        assert tuple(may) == (app, readonly)


# ----- behaviour ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("key", KEYS)
def test_every_function_the_readonly_role_may_execute_has_an_example_call(stack, key):
    examples = {**EXAMPLES[key], **EXTENSION_EXAMPLES}
    missing = [
        f"add an example call for {name} to EXAMPLES[{key!r}]"
        for name, schema, volatility, _, in_extension, callable_ in _executable(stack, key)
        if schema not in ("pg_catalog", "information_schema")
        and callable_
        and (not in_extension or volatility == "v")
        and name not in examples
    ]
    assert missing == []


@pytest.mark.parametrize(("key", "signature"), CASES, ids=[f"{key}-{sig}" for key, sig in CASES])
def test_a_readonly_call_changes_nothing(stack, sample_data, key, signature):
    db = DATABASES[key]
    args_query, call, expected_error = {**EXAMPLES[key], **EXTENSION_EXAMPLES}[signature]
    with psycopg.connect(stack.dsn(key)) as conn:
        # One snapshot for both fingerprints: pg_cron's jobs may commit while the call runs.
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        exists = conn.execute("SELECT to_regprocedure(%s)::oid", (signature,)).fetchone()[0]
        if exists is None:
            pytest.fail(f"{signature} is not a function of {db.name}: drop or fix its example")
        args = ()
        if args_query:
            row = conn.execute(args_query).fetchone()
            assert row is not None and None not in row, f"the sample data has no arguments for {signature}"
            args = row
        may_execute = conn.execute(
            "SELECT has_function_privilege(%s, %s, 'EXECUTE')", (db.readonly_role, signature)
        ).fetchone()[0]
        before = _fingerprint(conn)
        conn.execute(sql.SQL("SET SESSION AUTHORIZATION {}").format(sql.Identifier(db.readonly_role)))
        assert conn.execute("SELECT current_user::text").fetchone() == (db.readonly_role,)
        error = None
        try:
            with conn.transaction():
                conn.execute(f"SELECT * FROM {call}", args)
        except psycopg.Error as exc:
            error = exc
        conn.execute("RESET SESSION AUTHORIZATION")
        after = _fingerprint(conn)
        advanced = _sequences_used(conn)
        conn.rollback()
    changes = _diff(before, after)
    assert not changes, f"{db.readonly_role}: SELECT {call} changed the database:\n" + "\n".join(changes)
    assert advanced == [], f"{db.readonly_role}: SELECT {call} advanced sequences"
    if not may_execute:
        assert isinstance(error, errors.InsufficientPrivilege), (
            f"{signature}: expected permission denied, got {error!r}"
        )
    elif expected_error:
        assert error is not None and expected_error in str(error), error
    else:
        assert error is None, f"{db.readonly_role} may execute {signature} but the example call failed: {error}"
