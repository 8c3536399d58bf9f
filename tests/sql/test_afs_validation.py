"""Every afs validation rejects its bad input with an error naming the field and the rule, writing nothing.

Bad rows are written as the app role, as the application would; seed 003's own JSON examples pass.
"""

from __future__ import annotations

import json

import psycopg
import pytest

KEY = "afs"
NOT_NULL, FOREIGN_KEY, UNIQUE, CHECK = "23502", "23503", "23505", "23514"

METADATA = {  # seed 003, tasks.metadata example
    "priority": "high",
    "complexity_hint": "medium",
    "target_tables": ["orders", "users"],
    "user_preferences": {"max_storage_mb": 50, "risk_tolerance": "low"},
}
IMPACT = {  # seed 003, estimated_impact example
    "query_time_improvement": 80.0,
    "storage_overhead_mb": 12.5,
    "complexity": "low",
    "risk": "low",
    "additional_notes": "Partial index reduces size by covering only completed orders",
}
SCORE = {
    "proposal_id": 0,  # replaced by a real proposal
    "performance_score": 90.86,
    "storage_score": 98.67,
    "complexity_score": 90.0,
    "risk_score": 95.0,
    "weighted_total": 92.66,
    "rank": 1,
    "improvement_pct": 82.6,
}


def lit(value) -> str:
    """A JSON value as a SQL jsonb literal."""
    return "'" + json.dumps(value).replace("'", "''") + "'::jsonb"


def with_(base: dict, path: str, value) -> dict:
    """A copy of `base` with the dotted `path` set to `value` (or removed when value is ...)."""
    out = json.loads(json.dumps(base))
    *parents, last = path.split(".")
    node = out
    for part in parents:
        node = node[part]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return out


def task(metadata=None, type_="'query_optimization'", status="'pending'", target="'SELECT 1'") -> str:
    meta = "NULL" if metadata is None else lit(metadata)
    columns = "type, target_query, status, metadata"
    return f"INSERT INTO tasks ({columns}) VALUES ({type_}, {target}, {status}, {meta})"


def proposal(impact=IMPACT, commands="ARRAY['CREATE INDEX ON orders (status)']", kind="'index'") -> str:
    impact_sql = impact if isinstance(impact, str) else lit(impact)
    return (
        "INSERT INTO optimization_proposals"
        " (agent_execution_id, proposal_type, sql_commands, estimated_impact)"
        f" VALUES ({{e1}}, {kind}, {commands}, {impact_sql})"
    )


def scores(**changes) -> dict:
    """all_scores with one entry for the fixture's baseline proposal; changes patch that entry."""
    entry = dict(SCORE, proposal_id="{p_base}")
    for key, value in changes.items():
        if value is ...:
            entry.pop(key)
        else:
            entry[key] = value
    return {"gemini-2.5-pro": entry}


def decision(all_scores, winner="NULL", task_id="{t1}") -> str:
    text = all_scores if isinstance(all_scores, str) else lit(all_scores).replace('"{p_base}"', "{p_base}")
    return (
        "INSERT INTO consensus_decisions (task_id, winning_proposal_id, all_scores)"
        f" VALUES ({task_id}, {winner}, {text})"
    )


def two_scores(rank_a, rank_b) -> dict:
    a = dict(SCORE, proposal_id="{p_base}", rank=rank_a)
    b = dict(SCORE, proposal_id="{p_nobase}", rank=rank_b)
    return {"gemini-2.5-pro": a, "gemini-2.5-flash": b}


def two(rank_a, rank_b) -> str:
    text = lit(two_scores(rank_a, rank_b)).replace('"{p_base}"', "{p_base}").replace('"{p_nobase}"', "{p_nobase}")
    return decision(text)


# (case id, table the row would land in, SQL, SQLSTATE, text the message must contain)
CASES = [
    # tasks: columns and the recommended CHECKs
    ("task type enum", "tasks", task(type_="'speed_up'"), CHECK, "chk_tasks_type"),
    ("task status enum", "tasks", task(status="'done'"), CHECK, "chk_tasks_status"),
    ("task target_query required", "tasks", task(target="NULL"), NOT_NULL, "target_query"),
    # tasks.metadata, seed 003 "Validation"
    ("metadata not an object", "tasks", task(["high"]), CHECK, "tasks.metadata must be a JSON object"),
    ("priority enum", "tasks", task(with_(METADATA, "priority", "urgent")), CHECK, "tasks.metadata.priority"),
    ("priority null", "tasks", task(with_(METADATA, "priority", None)), CHECK, "tasks.metadata.priority"),
    ("complexity_hint enum", "tasks", task(with_(METADATA, "complexity_hint", 3)), CHECK, "complexity_hint"),
    ("target_tables not array", "tasks", task(with_(METADATA, "target_tables", "orders")), CHECK,
     "tasks.metadata.target_tables must be an array"),
    ("target_tables element", "tasks", task(with_(METADATA, "target_tables", ["orders", 7])), CHECK,
     "tasks.metadata.target_tables[1]"),
    ("user_preferences not object", "tasks", task(with_(METADATA, "user_preferences", 50)), CHECK,
     "tasks.metadata.user_preferences must be a JSON object"),
    ("max_storage_mb zero", "tasks", task(with_(METADATA, "user_preferences.max_storage_mb", 0)), CHECK,
     "max_storage_mb must be greater than 0"),
    ("max_storage_mb negative", "tasks", task(with_(METADATA, "user_preferences.max_storage_mb", -5)), CHECK,
     "max_storage_mb must be greater than 0"),
    ("max_storage_mb text", "tasks", task(with_(METADATA, "user_preferences.max_storage_mb", "50")), CHECK,
     "max_storage_mb must be a number"),
    ("risk_tolerance enum", "tasks", task(with_(METADATA, "user_preferences.risk_tolerance", "none")), CHECK,
     "tasks.metadata.user_preferences.risk_tolerance must be one of low, medium, high"),
    ("weights sum above 1", "tasks",
     task({"scoring_weights": {"performance": 0.5, "storage": 0.3, "complexity": 0.2, "risk": 0.1}}), CHECK,
     "tasks.metadata.scoring_weights must sum to 1.0"),
    ("weights sum below 1", "tasks",
     task({"scoring_weights": {"performance": 0.4, "storage": 0.2, "complexity": 0.2, "risk": 0.1}}), CHECK,
     "tasks.metadata.scoring_weights must sum to 1.0"),
    ("partial weights with defaults off 1", "tasks", task({"scoring_weights": {"performance": 0.6}}), CHECK,
     "must sum to 1.0"),
    ("weight above 1", "tasks",
     task({"scoring_weights": {"performance": 1.5, "storage": 0, "complexity": 0, "risk": 0}}), CHECK,
     "tasks.metadata.scoring_weights.performance must be at most 1"),
    ("weight not a number", "tasks", task({"scoring_weights": {"performance": "half"}}), CHECK,
     "tasks.metadata.scoring_weights.performance must be a number"),
    ("unknown weight", "tasks", task({"scoring_weights": {"speed": 0.5}}), CHECK,
     "tasks.metadata.scoring_weights.speed is not a weight"),
    # agent_executions
    ("agent_type enum", "agent_executions",
     "INSERT INTO agent_executions (task_id, agent_type) VALUES ({t1}, 'gpt-4')", CHECK,
     "chk_agent_executions_agent_type"),
    ("execution status enum", "agent_executions",
     "INSERT INTO agent_executions (task_id, agent_type, status) VALUES ({t1}, 'gemini-2.5-pro', 'x')", CHECK,
     "chk_agent_executions_status"),
    ("execution of a missing task", "agent_executions",
     "INSERT INTO agent_executions (task_id, agent_type) VALUES (-1, 'gemini-2.5-pro')", FOREIGN_KEY,
     "task_id"),
    # optimization_proposals: business rule and estimated_impact "Validation"
    ("sql_commands empty", "optimization_proposals", proposal(commands="'{}'::text[]"), CHECK,
     "optimization_proposals.sql_commands must not be empty"),
    ("sql_commands blank statement", "optimization_proposals",
     proposal(commands="ARRAY['ANALYZE orders', '  ']"), CHECK, "optimization_proposals.sql_commands[2]"),
    ("sql_commands null statement", "optimization_proposals", proposal(commands="ARRAY[NULL]::text[]"), CHECK,
     "optimization_proposals.sql_commands[1]"),
    ("sql_commands required", "optimization_proposals", proposal(commands="NULL"), NOT_NULL, "sql_commands"),
    ("proposal_type enum", "optimization_proposals", proposal(kind="'magic'"), CHECK,
     "chk_optimization_proposals_proposal_type"),
    ("impact required", "optimization_proposals", proposal(impact="NULL"), NOT_NULL, "estimated_impact"),
    ("impact not object", "optimization_proposals", proposal(impact=[80]), CHECK,
     "optimization_proposals.estimated_impact must be a JSON object"),
    ("improvement required", "optimization_proposals", proposal(with_(IMPACT, "query_time_improvement", ...)),
     CHECK, "optimization_proposals.estimated_impact.query_time_improvement is required"),
    ("improvement above 100", "optimization_proposals",
     proposal(with_(IMPACT, "query_time_improvement", 100.5)),
     CHECK, "query_time_improvement must be at most 100"),
    ("improvement negative", "optimization_proposals", proposal(with_(IMPACT, "query_time_improvement", -1)),
     CHECK, "query_time_improvement must be at least 0"),
    ("storage negative", "optimization_proposals",
     proposal(with_(IMPACT, "storage_overhead_mb", -0.1)), CHECK,
     "optimization_proposals.estimated_impact.storage_overhead_mb must be at least 0"),
    ("storage required", "optimization_proposals", proposal(with_(IMPACT, "storage_overhead_mb", ...)), CHECK,
     "storage_overhead_mb is required"),
    ("complexity enum", "optimization_proposals", proposal(with_(IMPACT, "complexity", "extreme")), CHECK,
     "optimization_proposals.estimated_impact.complexity must be one of low, medium, high"),
    ("risk enum", "optimization_proposals", proposal(with_(IMPACT, "risk", "none")), CHECK,
     "optimization_proposals.estimated_impact.risk must be one of"),
    ("risk required", "optimization_proposals", proposal(with_(IMPACT, "risk", ...)), CHECK,
     "optimization_proposals.estimated_impact.risk is required"),
    ("notes not text", "optimization_proposals", proposal(with_(IMPACT, "additional_notes", 5)), CHECK,
     "additional_notes must be a string"),
    # benchmark_results
    ("execution time zero", "benchmark_results",
     "INSERT INTO benchmark_results (proposal_id, query_name, query_executed, execution_time_ms)"
     " VALUES ({p_base}, 'test_sort', 'SELECT 1', 0)", CHECK, "chk_benchmark_results_execution_time_ms"),
    ("execution time negative", "benchmark_results",
     "INSERT INTO benchmark_results (proposal_id, query_name, query_executed, execution_time_ms)"
     " VALUES ({p_base}, 'test_sort', 'SELECT 1', -3.5)", CHECK, "chk_benchmark_results_execution_time_ms"),
    # consensus_decisions.all_scores "Validation" and the business rules
    ("all_scores required", "consensus_decisions", decision("NULL"), NOT_NULL, "all_scores"),
    ("all_scores not object", "consensus_decisions", decision("'[]'::jsonb"), CHECK,
     "consensus_decisions.all_scores must be a JSON object"),
    ("score entry not object", "consensus_decisions", decision({"gemini-2.5-pro": 92.66}), CHECK,
     "consensus_decisions.all_scores.gemini-2.5-pro must be a JSON object"),
    ("performance above 100", "consensus_decisions", decision(scores(performance_score=100.01)), CHECK,
     "consensus_decisions.all_scores.gemini-2.5-pro.performance_score must be at most 100"),
    ("storage score negative", "consensus_decisions", decision(scores(storage_score=-1)), CHECK,
     "storage_score must be at least 0"),
    ("complexity score text", "consensus_decisions", decision(scores(complexity_score="high")), CHECK,
     "complexity_score must be a number"),
    ("risk score missing", "consensus_decisions", decision(scores(risk_score=...)), CHECK,
     "risk_score is required"),
    ("weighted_total above 100", "consensus_decisions", decision(scores(weighted_total=120)), CHECK,
     "weighted_total must be at most 100"),
    ("rank missing", "consensus_decisions", decision(scores(rank=...)), CHECK, "rank is required"),
    ("rank zero", "consensus_decisions", decision(scores(rank=0)), CHECK, "rank must be at least 1"),
    ("rank fractional", "consensus_decisions", decision(scores(rank=1.5)), CHECK, "rank must be an integer"),
    ("single rank not 1", "consensus_decisions", decision(scores(rank=2)), CHECK,
     "consensus_decisions.all_scores ranks must be sequential"),
    ("ranks with a gap", "consensus_decisions", two(1, 3), CHECK, "ranks must be sequential 1..2"),
    ("ranks tied", "consensus_decisions", two(1, 1), CHECK, "ranks must be sequential 1..2"),
    ("proposal_id missing", "consensus_decisions", decision(scores(proposal_id=...)), CHECK,
     "proposal_id is required"),
    ("proposal_id unknown", "consensus_decisions", decision(scores(proposal_id=2147483000)), FOREIGN_KEY,
     "all_scores names proposals that do not exist"),
    ("improvement_pct text", "consensus_decisions", decision(scores(improvement_pct="82%")), CHECK,
     "improvement_pct must be a number"),
    ("winner without baseline", "consensus_decisions", decision(scores(), winner="{p_nobase}"), CHECK,
     "needs at least one 'baseline' benchmark"),
    ("winner of another task", "consensus_decisions", decision(scores(), winner="{p_other}"), CHECK,
     "belongs to task"),
    ("winner missing", "consensus_decisions", decision(scores(), winner="2147483000"), FOREIGN_KEY,
     "winning_proposal_id"),
    ("second decision for a task", "consensus_decisions", decision({}, task_id="{t3}"), UNIQUE,
     "uniq_consensus_task_id"),
]  # fmt: skip


@pytest.fixture(scope="module")
def admin(stack):
    with psycopg.connect(stack.dsn(KEY), autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="module")
def app(stack):
    with psycopg.connect(stack.dsn(KEY, "app"), autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="module")
def ids(admin):
    """Parents for the bad rows: task t1 (proposals p_nobase, p_base), t2 (p_other), t3 (a decision)."""
    out: dict[str, int] = {}

    def insert(sql: str, *args) -> int:
        return admin.execute(sql + " RETURNING id", args).fetchone()[0]

    for name in ("t1", "t2", "t3"):
        out[name] = insert(task(METADATA))
    out["e1"] = insert("INSERT INTO agent_executions (task_id, agent_type) VALUES (%s, 'gemini-2.5-pro')", out["t1"])
    out["e2"] = insert("INSERT INTO agent_executions (task_id, agent_type) VALUES (%s, 'gemini-2.0-flash')", out["t2"])
    for name, execution in (("p_nobase", "e1"), ("p_base", "e1"), ("p_other", "e2")):
        out[name] = insert(fill(proposal(), {"e1": out[execution]}))
    for name in ("p_base", "p_other"):
        insert(
            "INSERT INTO benchmark_results (proposal_id, query_name, query_executed, execution_time_ms)"
            " VALUES (%s, 'baseline', 'SELECT 1', 450.23)",
            out[name],
        )
    insert(decision({}, task_id=out["t3"]))
    yield out
    admin.execute("DELETE FROM tasks WHERE id = ANY(%s)", ([out["t1"], out["t2"], out["t3"]],))


def fill(sql: str, ids: dict[str, int]) -> str:
    """Put the fixture's ids into {name} placeholders (str.format would trip over JSON braces)."""
    for name, value in ids.items():
        sql = sql.replace("{" + name + "}", str(value))
    return sql


def count(conn, table: str) -> int:
    return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


@pytest.mark.parametrize(("table", "sql", "sqlstate", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_rejected_and_nothing_is_written(app, admin, ids, table, sql, sqlstate, fragment):
    before = count(admin, table)
    with pytest.raises(psycopg.Error) as caught:
        app.execute(fill(sql, ids))
    assert caught.value.sqlstate == sqlstate, caught.value
    assert fragment in str(caught.value), str(caught.value)
    assert count(admin, table) == before


def test_winner_update_without_baseline_is_rejected(app, admin, ids):
    decision_id = admin.execute("SELECT id FROM consensus_decisions WHERE task_id = %s", (ids["t3"],)).fetchone()[0]
    # p_base belongs to t1, so moving the decision to t1 first is what the rule has to allow for that winner
    with pytest.raises(psycopg.Error, match="baseline"):
        app.execute(
            "UPDATE consensus_decisions SET task_id = %s, winning_proposal_id = %s WHERE id = %s",
            (ids["t1"], ids["p_nobase"], decision_id),
        )
    row = admin.execute("SELECT task_id, winning_proposal_id FROM consensus_decisions WHERE id = %s", (decision_id,))
    assert row.fetchone() == (ids["t3"], None)


def test_the_documents_examples_are_accepted(app, admin, ids):
    """Seed 003's JSON examples, weights that rely on defaults, and a winner with a baseline pass."""
    with app.transaction(force_rollback=True):
        app.execute(task({"scoring_weights": {"performance": 0.4, "storage": 0.3}}))
        app.execute(task({"scoring_weights": {"performance": 0.334, "storage": 0.333, "complexity": 0.333, "risk": 0}}))
        app.execute(task({}))
        app.execute(fill(proposal(), ids))
        example = {
            "gemini-2.5-pro": dict(SCORE, proposal_id=ids["p_base"]),
            "gemini25pro": dict(
                SCORE, proposal_id=ids["p_nobase"], performance_score=100.0, storage_score=60.0,
                complexity_score=70.0, risk_score=70.0, weighted_total=81.00, rank=2, improvement_pct=93.5,
            ),
        }  # fmt: skip
        app.execute(decision(example, winner=str(ids["p_base"]), task_id=str(ids["t1"])))
        app.execute("UPDATE consensus_decisions SET applied_to_main = true WHERE task_id = %s", (ids["t1"],))


def test_deleting_a_task_cascades_to_everything_below_it(admin):
    t = admin.execute(task(METADATA) + " RETURNING id").fetchone()[0]
    e = admin.execute(
        "INSERT INTO agent_executions (task_id, agent_type) VALUES (%s, 'gemini-2.5-flash') RETURNING id",
        (t,),
    ).fetchone()[0]
    p = admin.execute(fill(proposal(), {"e1": e}) + " RETURNING id").fetchone()[0]
    admin.execute(
        "INSERT INTO benchmark_results (proposal_id, query_name, query_executed, execution_time_ms)"
        " VALUES (%s, 'baseline', 'SELECT 1', 10)",
        (p,),
    )
    admin.execute(decision(scores(), winner=str(p), task_id=str(t)).replace("{p_base}", str(p)))

    with pytest.raises(psycopg.errors.ForeignKeyViolation, match="winning_proposal_id"):
        admin.execute("DELETE FROM optimization_proposals WHERE id = %s", (p,))

    admin.execute("DELETE FROM tasks WHERE id = %s", (t,))
    left = admin.execute(
        "SELECT (SELECT count(*) FROM agent_executions WHERE task_id = %(t)s),"
        " (SELECT count(*) FROM optimization_proposals WHERE id = %(p)s),"
        " (SELECT count(*) FROM benchmark_results WHERE proposal_id = %(p)s),"
        " (SELECT count(*) FROM consensus_decisions WHERE task_id = %(t)s)",
        {"t": t, "p": p},
    ).fetchone()
    assert left == (0, 0, 0, 0)
