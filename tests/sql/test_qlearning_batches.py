"""The batch write paths of revision 0007 (issue 15): upsert_q_values and insert_trajectories leave what
the single-row path leaves, concurrent batches neither deadlock nor lose a visit, bad input writes nothing."""

from __future__ import annotations

import random
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from psycopg.types.json import Jsonb

KEY = "qlearning"
AGENT = "test-generator"
AGENTS = 18  # seed 000: "18 agents writing simultaneously"
NOT_NULL, CHECK, FOREIGN_KEY = "23502", "23514", "23503"


@pytest.fixture(scope="module", autouse=True)
def leave_q_values_as_found(stack):
    """The concurrent batches update a few rows thousands of times (no HOT: q_value is indexed), which
    bloats q_values' indexes in the shared stack until the planner prefers another index for later
    modules' get_best_action plans. Rebuild the indexes afterwards (table statistics left as they were)."""
    yield
    with psycopg.connect(stack.dsn(KEY), autocommit=True) as admin:
        admin.execute("REINDEX TABLE q_values")


@pytest.fixture(scope="module")
def app(stack):
    with psycopg.connect(stack.dsn(KEY, role="app"), autocommit=True) as conn:
        yield conn


def _prefix() -> str:
    return f"qb-{uuid.uuid4().hex[:10]}-"


def _json(value):
    return None if value is None else Jsonb(value)


# (state, action, q_value, state_data or None, action_data or None), applied in this order.
PAIRS_BEFORE = [("s1", "a", 0.25, {"m": "auth"}, {"t": 1}), ("s2", "b", -3.5, None, None)]
BATCHES = {
    "new pairs": [("s3", "a", 1.0, {"x": 1}, {"y": 2}), ("s3", "b", 2.0, None, None), ("s4", "a", -1.5, None, None)],
    "existing pairs": [("s1", "a", 0.75, None, None), ("s2", "b", 12.0, {"m": "api"}, {"t": 9})],
    "a pair repeated": [
        ("s1", "a", 0.1, None, None),
        ("s3", "c", 0.2, {"k": 1}, None),
        ("s1", "a", 0.3, None, None),
        ("s3", "c", 0.4, None, {"z": 1}),
        ("s1", "a", 0.5, {"k": 2}, None),
    ],
    "unsorted keys": [("s9", "z", 9.0, None, None), ("s0", "a", 0.5, None, None), ("s5", "m", -0.25, None, None)],
    "every document given": [("s1", "a", 1.0, {"d": 1}, {"e": 1}), ("s7", "a", 2.0, {"d": 2}, {"e": 2})],
}


def _single(conn, prefix: str, pairs) -> None:
    for state, action, q, sd, ad in pairs:
        conn.execute(
            "SELECT upsert_q_value(%s, %s, %s, %s, %s, %s)",
            (AGENT, prefix + state, _json(sd), action, _json(ad), q),
        )


def _batch(conn, prefix: str, pairs, with_documents: bool = True) -> list[tuple]:
    states, actions, values, sds, ads = (list(column) for column in zip(*pairs, strict=True))
    return conn.execute(
        "SELECT * FROM upsert_q_values(%s, %s, %s, %s, %s, %s)",
        (
            AGENT,
            [prefix + s for s in states],
            actions,
            values,
            [_json(d) for d in sds] if with_documents else None,
            [_json(d) for d in ads] if with_documents else None,
        ),
    ).fetchall()


def _rows(conn, prefix: str) -> list[tuple]:
    return conn.execute(
        "SELECT substr(state_hash, length(%s) + 1), action_hash, q_value, visit_count, confidence_score, uncertainty,"
        " state_data, action_data, session_id, expires_at - last_updated"
        " FROM q_values WHERE agent_type = %s AND starts_with(state_hash, %s) ORDER BY 1, 2",
        (prefix, AGENT, prefix),
    ).fetchall()


@pytest.mark.parametrize("name", list(BATCHES))
def test_upsert_q_values_leaves_what_the_single_row_calls_leave(app, name):
    single, batch = _prefix(), _prefix()
    _single(app, single, PAIRS_BEFORE)
    _single(app, batch, PAIRS_BEFORE)
    _single(app, single, BATCHES[name])
    returned = _batch(app, batch, BATCHES[name])
    assert _rows(app, batch) == _rows(app, single)
    # One row per distinct pair, in key order, each the stored row's id.
    ids = app.execute(
        "SELECT state_hash, action_hash, q_value_id FROM q_values WHERE starts_with(state_hash, %s) ORDER BY 1, 2",
        (batch,),
    ).fetchall()
    keys = {(batch + s, a) for s, a, *_ in BATCHES[name]}
    assert returned == [row for row in ids if (row[0], row[1]) in keys]


def test_upsert_q_values_without_documents_keeps_the_stored_ones(app):
    single, batch = _prefix(), _prefix()
    pairs = [(s, a, q, None, None) for s, a, q, *_ in BATCHES["existing pairs"]]
    for prefix in (single, batch):
        _single(app, prefix, PAIRS_BEFORE)
    _single(app, single, pairs)
    _batch(app, batch, pairs, with_documents=False)
    assert _rows(app, batch) == _rows(app, single)


def _trajectory(i: int, task: str) -> dict:
    return {
        "agent_type": AGENT,
        "task_id": task,
        "initial_state": {"file": f"f{i}.py"},
        "final_state": {"coverage": 0.5 + i / 100} if i % 2 else None,
        "actions_taken": [{"step": k, "action": "generate_unit_test"} for k in range(i % 4)],
        "states_visited": [{"step": k} for k in range(i % 3)],
        "step_rewards": [{"step": k, "reward": 0.5} for k in range(i % 4)],
        "total_reward": round(i * 1.25, 4),
        "discounted_reward": round(i * 1.1, 4) if i % 3 else None,
        "execution_time_ms": 100 * i,
        "success": bool(i % 2),
        "error_message": None if i % 2 else "assertion failed",
        "metadata": {"i": i},
        "rewards": [
            {"state_hash": f"s{i}-{k}", "action_hash": f"a{k}", "reward_value": k - 0.5, "reward_type": rtype}
            for k, rtype in enumerate(["immediate", "delayed", "terminal"][: i % 4])
        ],
    }


TRAJECTORY_COLUMNS = [
    "agent_type", "session_id", "initial_state", "final_state", "actions_taken", "states_visited", "step_rewards",
    "total_reward", "discounted_reward", "execution_time_ms", "success", "error_message", "metadata",
]  # fmt: skip


def _insert_one(conn, doc: dict) -> None:
    """The single-row path: the trajectory, then its rewards, as a client writes them with plain INSERTs."""
    columns = [c for c in doc if c != "rewards"]
    values = [Jsonb(doc[c]) if isinstance(doc[c], (dict, list)) else doc[c] for c in columns]
    with conn.transaction():
        tid = conn.execute(
            f"INSERT INTO trajectories ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))})"
            " RETURNING trajectory_id",
            values,
        ).fetchone()[0]
        for reward in doc["rewards"]:
            conn.execute(
                "INSERT INTO rewards (agent_type, trajectory_id, state_hash, action_hash, reward_value, reward_type)"
                " VALUES (%s, %s, %s, %s, %s, %s)",
                (doc["agent_type"], tid, reward["state_hash"], reward["action_hash"], reward["reward_value"],
                 reward["reward_type"]),
            )  # fmt: skip


def _trajectory_rows(conn, prefix: str) -> list[tuple]:
    return conn.execute(
        f"SELECT substr(t.task_id, length(%s) + 1), {', '.join('t.' + c for c in TRAJECTORY_COLUMNS)},"
        " date_trunc('minute', t.expires_at - t.started_at),"
        " (SELECT coalesce(jsonb_agg(jsonb_build_array(r.agent_type, r.session_id, r.state_hash, r.action_hash,"
        "   r.reward_value, r.reward_type, r.reward_source, r.metadata) ORDER BY r.reward_id), '[]')"
        "  FROM rewards AS r WHERE r.trajectory_id = t.trajectory_id)"
        " FROM trajectories AS t WHERE starts_with(t.task_id, %s) ORDER BY 1",
        (prefix, prefix),
    ).fetchall()


@pytest.mark.parametrize("count", [1, 10])
def test_insert_trajectories_leaves_what_single_inserts_leave(app, count):
    single, batch = _prefix(), _prefix()
    for i in range(count):
        _insert_one(app, _trajectory(i, f"{single}{i:03d}"))
    docs = [_trajectory(i, f"{batch}{i:03d}") for i in range(count)]
    ids = [row[0] for row in app.execute("SELECT * FROM insert_trajectories(%s)", (Jsonb(docs),)).fetchall()]
    assert _trajectory_rows(app, batch) == _trajectory_rows(app, single)
    # The ids come back in the input order.
    tasks = dict(app.execute("SELECT trajectory_id, task_id FROM trajectories WHERE trajectory_id = ANY(%s)", (ids,)))
    assert [tasks[i] for i in ids] == [d["task_id"] for d in docs]


def test_insert_trajectories_gives_rewards_their_trajectorys_session(app):
    session = app.execute("INSERT INTO sessions (agent_type) VALUES (%s) RETURNING session_id", (AGENT,)).fetchone()[0]
    prefix = _prefix()
    doc = {"agent_type": AGENT, "task_id": prefix, "session_id": str(session),
           "rewards": [{"state_hash": "s", "action_hash": "a", "reward_value": 1}]}  # fmt: skip
    (tid,) = app.execute("SELECT * FROM insert_trajectories(%s)", (Jsonb([doc]),)).fetchone()
    row = app.execute("SELECT agent_type, session_id FROM rewards WHERE trajectory_id = %s", (tid,)).fetchone()
    assert row == (AGENT, session)


def _run_agents(stack, work) -> list:
    """`work(conn, agent_index)` in AGENTS threads, each with its own connection through PgBouncer, released at once."""
    barrier = threading.Barrier(AGENTS)

    def agent(i: int):
        with psycopg.connect(stack.dsn(KEY, role="app", via="pgbouncer"), autocommit=True) as conn:
            barrier.wait()
            return work(conn, i)

    with ThreadPoolExecutor(max_workers=AGENTS) as pool:
        return list(pool.map(agent, range(AGENTS)))


def test_concurrent_batches_on_shared_pairs_neither_deadlock_nor_lose_a_visit(stack, app):
    prefix = _prefix()
    pool = [(f"{prefix}s{i % 12}", f"a{i % 5}") for i in range(60)]  # 60 distinct pairs every agent shares
    batches, size = 8, 40

    def work(conn, i):
        rng = random.Random(i)
        sent = 0
        for _ in range(batches):
            # Each agent names the pairs in its own order: the function must lock them in one order.
            pairs = rng.sample(pool, size)
            conn.execute(
                "SELECT count(*) FROM upsert_q_values(%s, %s, %s, %s)",
                (AGENT, [s for s, _ in pairs], [a for _, a in pairs], [rng.uniform(-1, 1) for _ in pairs]),
            )
            sent += len(pairs)
        return sent

    sent = sum(_run_agents(stack, work))
    visits, rows = app.execute(
        "SELECT sum(visit_count), count(*) FROM q_values WHERE agent_type = %s AND starts_with(state_hash, %s)",
        (AGENT, prefix),
    ).fetchone()
    assert sent == AGENTS * batches * size
    assert (visits, rows) == (sent, len(pool))


def test_concurrent_trajectory_batches_lose_nothing(stack, app):
    prefix = _prefix()
    calls, size = 5, 10

    def work(conn, i):
        for c in range(calls):
            docs = [_trajectory(k, f"{prefix}{i:02d}-{c}-{k}") for k in range(size)]
            conn.execute("SELECT count(*) FROM insert_trajectories(%s)", (Jsonb(docs),))

    _run_agents(stack, work)
    trajectories, rewards = app.execute(
        "SELECT count(DISTINCT t.trajectory_id), count(r.reward_id) FROM trajectories AS t"
        " LEFT JOIN rewards AS r USING (trajectory_id) WHERE starts_with(t.task_id, %s)",
        (prefix,),
    ).fetchone()
    per_call_rewards = sum(len(_trajectory(k, "")["rewards"]) for k in range(size))
    assert (trajectories, rewards) == (AGENTS * calls * size, AGENTS * calls * per_call_rewards)


# (agent_type, state_hashes, action_hashes, q_values, state_data, SQLSTATE, text the message must contain);
# "P" in a state hash is a fresh prefix, so the test can count what was written.
BAD_UPSERTS = [
    (None, ["P"], ["a"], [1.0], None, NOT_NULL, "agent_type"),
    (" ", ["P"], ["a"], [1.0], None, NOT_NULL, "agent_type"),
    ("no-such-agent", ["P"], ["a"], [1.0], None, FOREIGN_KEY, "agent_type"),
    (AGENT, None, ["a"], [1.0], None, NOT_NULL, "state_hashes"),
    (AGENT, ["P"], ["a", "b"], [1.0], None, "22023", "one element per pair"),
    (AGENT, ["P"], ["a"], [1.0], [], "22023", "0 state_data"),
    (AGENT, ["P", ""], ["a", "b"], [1.0, 2.0], None, NOT_NULL, "state_hashes[2]"),
    (AGENT, ["P", None], ["a", "b"], [1.0, 2.0], None, NOT_NULL, "state_hashes[2]"),
    (AGENT, ["P", "P"], ["a", " "], [1.0, 2.0], None, NOT_NULL, "action_hashes[2]"),
    (AGENT, ["P", "P"], ["a", "b"], [1.0, float("nan")], None, "22023", "q_values[2]"),
    (AGENT, ["P", "P"], ["a", "b"], [1.0, None], None, "22023", "q_values[2]"),
    (AGENT, ["P", "P"], ["a", "b"], [1.0, float("inf")], None, "22023", "q_values[2]"),
    (AGENT, ["P", "P"], ["a", "b"], [1.0, 1e6], None, "22003", "q_values[2]"),
]


@pytest.mark.parametrize(("agent", "states", "actions", "values", "state_data", "sqlstate", "names"), BAD_UPSERTS)
def test_bad_upsert_batch_is_refused_by_name_and_writes_nothing(app, agent, states, actions, values, state_data,
                                                                 sqlstate, names):  # fmt: skip
    prefix = _prefix()
    states = None if states is None else [None if s is None else s.replace("P", prefix) for s in states]
    with pytest.raises(psycopg.Error) as caught:
        app.execute(
            "SELECT * FROM upsert_q_values(%s, %s::varchar[], %s::varchar[], %s::float8[], %s::jsonb[])",
            (agent, states, actions, values, state_data),
        )
    err = caught.value
    assert err.sqlstate == sqlstate, err
    text = " ".join(filter(None, [err.diag.message_primary, err.diag.message_detail]))
    assert names in text, text
    assert app.execute("SELECT count(*) FROM q_values WHERE state_hash = %s", (prefix,)).fetchone()[0] == 0


GOOD = {"agent_type": AGENT, "task_id": "P"}
REWARD = {"state_hash": "s", "action_hash": "a", "reward_value": 1}
# (trajectories, SQLSTATE, text the message must contain); every call holds one good trajectory, task "P".
BAD_TRAJECTORIES = [
    (None, "22023", "JSON array"),
    ({}, "22023", "JSON array"),
    ([GOOD, 7], "22023", "trajectories[1] is number"),
    ([GOOD, {**GOOD, "taskid": 1}], "22023", 'trajectories[1] has unknown key "taskid"'),
    ([{**GOOD, "rewards": {}}], "22023", '"rewards" is not an array'),
    ([{**GOOD, "rewards": [REWARD, {**REWARD, "trajectory_id": None}]}], "22023", "rewards[1]"),
    ([{**GOOD, "rewards": [REWARD, "r"]}], "22023", "rewards[1] is string"),
    ([GOOD, {"agent_type": AGENT}], NOT_NULL, "task_id"),
    ([GOOD, {**GOOD, "task_id": " "}], CHECK, "task_id"),
    ([GOOD, {**GOOD, "agent_type": "no-such-agent"}], FOREIGN_KEY, "agent_type"),
    ([GOOD, {**GOOD, "actions_taken": {"step": 1}}], CHECK, "actions_taken"),
    ([{**GOOD, "rewards": [REWARD, {"state_hash": "s", "action_hash": "a"}]}], NOT_NULL, "reward_value"),
    ([{**GOOD, "rewards": [{**REWARD, "reward_type": "later"}]}], CHECK, "reward_type"),
]


def _with_prefix(value, prefix: str):
    if isinstance(value, dict):
        return {k: (prefix if k == "task_id" and v == "P" else _with_prefix(v, prefix)) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_prefix(v, prefix) for v in value]
    return value


@pytest.mark.parametrize(("docs", "sqlstate", "names"), BAD_TRAJECTORIES, ids=[c[2] for c in BAD_TRAJECTORIES])
def test_bad_trajectory_batch_is_refused_by_name_and_writes_nothing(app, docs, sqlstate, names):
    prefix = _prefix()
    with pytest.raises(psycopg.Error) as caught:
        app.execute("SELECT * FROM insert_trajectories(%s)", (_json(_with_prefix(docs, prefix)),))
    err = caught.value
    assert err.sqlstate == sqlstate, err
    text = " ".join(filter(None, [err.diag.message_primary, err.diag.message_detail, err.diag.constraint_name]))
    assert names in text, text
    assert app.execute("SELECT count(*) FROM trajectories WHERE task_id = %s", (prefix,)).fetchone()[0] == 0
