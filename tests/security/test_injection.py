"""Every SQL function with a text argument, called with hostile strings: nothing but the intended rows change.

The functions are discovered from pg_proc (public schema, extension members excluded); VALID holds one
valid call per function, and a test fails when the catalog and VALID disagree, so a new function
names itself. Each hostile value goes into each text argument in turn, as the owner (the most
privileged role a call could run as short of the superuser), inside a transaction that is rolled back.
"""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql
from psycopg.types.json import Jsonb

from infra.databases import DATABASES

from .conftest import row_counts

TEXT_TYPES = ("text", "character varying", "text[]", "character varying[]")

# key -> {signature: (valid arguments, {table: allowed row-count change})}; "any" allows any change.
VALID: dict[str, dict[str, tuple[list, dict]]] = {
    "qlearning": {
        "upsert_q_value(character varying,character varying,jsonb,character varying,jsonb,double precision,uuid)": (
            ["test-generator", "state-1", Jsonb({}), "action-1", Jsonb({}), 0.5, None],
            {"q_values": 1},
        ),
        "get_best_action(character varying,character varying)": (["test-generator", "state-1"], {}),
        "upsert_q_values(character varying,character varying[],character varying[],double precision[],"
        "jsonb[],jsonb[],uuid)": (
            ["test-generator", ["state-1", "state-2"], ["action-1", "action-2"], [0.5, 0.25], None, None, None],
            {"q_values": 2},
        ),
        "q_learning_update(character varying,character varying,character varying,double precision,character varying)": (
            ["test-generator", "state-1", "action-1", 1.0, "state-2"],
            {"q_values": 1},
        ),
    },
    "orchestrator": {
        "orchestrator_setting(text)": (["elo_k_factor"], {}),
        "log_agent_activity(uuid,text,text,jsonb)": (
            ["{agent}", "task_started", "started", Jsonb({})],
            {"agent_activity_log": 1},
        ),
        "voting_result(uuid,jsonb,text,jsonb)": (["{agent}", Jsonb({}), "option-a", Jsonb({})], {}),
        "refresh_leaderboard_rankings(text,date)": (["weekly", None], {"leaderboard_rankings": "any"}),
        "claim_reward(uuid,text)": (["{agent}", "no-such-reward"], {}),
    },
    "afs": {
        "jsonb_require_enum(text,jsonb,text[])": (["status", Jsonb("a"), ["a", "b"]], {}),
        "jsonb_require_number(text,jsonb,numeric,numeric,boolean)": (["score", Jsonb(0.5), 0, 1, False], {}),
        "jsonb_require_object(text,jsonb)": (["metadata", Jsonb({})], {}),
        "validate_sql_commands(text[])": ([["SELECT 1"]], {}),
        "hybrid_search_query_logs(text,double precision[],integer)": (["index scan", None, 10], {}),
        "fork_created_at(text)": (["afs-fork-x-task1-1700000000"], {}),
    },
    "agentic": {
        "agentic_require_days(text,integer)": (["retention", 30], {}),
    },
}

HOSTILE = {
    "quotes": "O'Reilly \"quoted\" \\' \\\\",
    "semicolon": "x; SELECT 1; x",
    "comment": "x -- comment /* open",
    "drop": "'); DROP TABLE q_values, agents, query_logs, users CASCADE; --",
    "dollar-quote": "$$; DROP TABLE agents CASCADE; $$",
    "format-specifiers": "%s %I %L %1$s",
    "nul": "a\x00b",
    "unicode": "\u202eΔ🙂\ufeff",
    "100k": "x" * 100_000,
}

CATALOG = """
SELECT p.oid::regprocedure::text,
       array(SELECT format_type(t, NULL) FROM unnest(p.proargtypes) WITH ORDINALITY AS a (t, i) ORDER BY i)
FROM pg_proc p
WHERE p.pronamespace = 'public'::regnamespace
  AND NOT EXISTS (SELECT 1 FROM pg_depend d
                  WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
ORDER BY 1
"""

# SQLSTATE classes a refused hostile value may raise: data exception, integrity, PL/pgSQL RAISE,
# program limit (an index row too large). Class 42 (syntax, undefined object) would mean it was run as SQL.
CLEAN_ERRORS = ("22", "23", "P0", "54")

CASES = [(key, sig) for key in VALID for sig in VALID[key]]


def _functions(conn) -> dict[str, list[str]]:
    """Signature -> argument types, for every function in public with a text argument."""
    return {sig: types for sig, types in conn.execute(CATALOG).fetchall() if set(types) & set(TEXT_TYPES)}


@pytest.fixture(scope="module")
def orchestrator_agent(stack):
    with psycopg.connect(stack.dsn("orchestrator"), autocommit=True) as conn:
        return conn.execute(
            "INSERT INTO agents (agent_id, name, type) VALUES ('security-injection', 'injection probe', 'worker')"
            " ON CONFLICT (agent_id) DO UPDATE SET name = EXCLUDED.name RETURNING id"
        ).fetchone()[0]


@pytest.mark.parametrize("key", list(VALID))
def test_every_function_with_a_text_argument_has_a_valid_call(stack, key):
    with psycopg.connect(stack.dsn(key)) as conn:
        assert sorted(_functions(conn)) == sorted(VALID[key])


def _changes(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    assert set(after) == set(before), f"tables appeared or disappeared: {set(before) ^ set(after)}"
    return {t: after[t] - before[t] for t in before if after[t] != before[t]}


def _allowed(changes: dict[str, int], intended: dict) -> bool:
    for table, delta in changes.items():
        want = intended.get(table.removeprefix("public."))
        if want is None or (want != "any" and delta not in (0, want)):
            return False
    return True


@pytest.mark.parametrize("hostile", HOSTILE.values(), ids=HOSTILE.keys())
@pytest.mark.parametrize(("key", "signature"), CASES, ids=[f"{k}-{s.split('(')[0]}" for k, s in CASES])
def test_hostile_text_changes_nothing_but_the_intended_rows(stack, orchestrator_agent, key, signature, hostile):
    db = DATABASES[key]
    valid, intended = VALID[key][signature]
    valid = [str(orchestrator_agent) if a == "{agent}" else a for a in valid]
    name = signature.split("(")[0]
    with psycopg.connect(stack.dsn(key)) as conn:
        types = _functions(conn)[signature]
        positions = [i for i, t in enumerate(types) if t in TEXT_TYPES]
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(db.owner)))
        for pos in positions:
            args = list(valid)
            args[pos] = [hostile] if types[pos].endswith("[]") else hostile
            call = sql.SQL("SELECT * FROM {}({})").format(
                sql.Identifier(name),
                sql.SQL(", ").join(sql.SQL("%s::{}").format(sql.SQL(t)) for t in types[: len(args)]),
            )
            conn.execute("RESET ROLE")
            before = row_counts(conn)
            conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(db.owner)))
            try:
                with conn.transaction():
                    conn.execute(call, args).fetchall()
            except psycopg.DataError as exc:
                # psycopg refuses NUL before sending; PostgreSQL would refuse it too.
                assert exc.sqlstate is None or exc.sqlstate.startswith(CLEAN_ERRORS), exc
            except psycopg.Error as exc:
                assert exc.sqlstate and exc.sqlstate.startswith(CLEAN_ERRORS), f"{exc.sqlstate}: {exc}"
            conn.execute("RESET ROLE")
            changes = _changes(before, row_counts(conn))
            assert _allowed(changes, intended), f"argument {pos + 1}: unintended changes {changes}"
        conn.rollback()
