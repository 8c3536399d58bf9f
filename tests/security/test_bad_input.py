"""Hypothesis property tests on the Q-learning functions: random floats (NaN and the infinities
included) and random JSON. NaN is never stored, every rejection is a clear SQL error naming the field,
and a rejected call writes nothing."""

from __future__ import annotations

import math

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.types.json import Jsonb

KEY = "qlearning"
TABLES = ["q_values", "sessions", "trajectories", "rewards", "patterns", "agent_states", "agent_types"]
AGENT_TYPES = ["test-generator", "coverage-analyzer", "flaky-test-hunter"]
NUMERIC_LIMIT = 10**6  # q_value is NUMERIC(12, 6)

# Argument values that PostgreSQL refuses while reading them, before the function runs: invalid JSON
# (NaN, Infinity tokens) and NUL in JSON text. Their messages name the type, not a field.
INPUT_ERRORS = {"22P02", "22P05"}

EXAMPLES = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# Any float: values within NUMERIC(12, 6), values beyond it, NaN and the infinities.
floats = (
    st.floats(min_value=-99999.0, max_value=99999.0)
    | st.sampled_from([math.nan, math.inf, -math.inf, 0.0, -0.0, 1e-300, -1e-300, 99999.999999, 1e6, -1e6, 1e300])
    | st.floats(allow_nan=True, allow_infinity=True)
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
hashes = st.text(alphabet="0123456789abcdef", min_size=1, max_size=64)


@pytest.fixture(scope="module")
def conn(stack):
    """The app role, as the application calls the functions; every example is rolled back."""
    with psycopg.connect(stack.dsn(KEY, "app")) as connection:
        yield connection


def _counts(conn) -> dict[str, int]:
    return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}


def _call(conn, query: str, args: list, fields: list[str]) -> psycopg.Error | None:
    """Run one call in a savepoint; on error check it is clear and that nothing was written."""
    before = _counts(conn)
    try:
        with conn.transaction():
            conn.execute(query, args)
        return None
    except psycopg.Error as exc:
        state = exc.sqlstate or ""
        assert state[:2] in {"22", "23"} or state == "P0001", f"{state}: {exc}"
        if state not in INPUT_ERRORS:
            text = f"{exc.diag.message_primary} {exc.diag.message_detail or ''}"
            assert any(field in text for field in fields), f"{state}: message names no field: {text}"
        assert _counts(conn) == before, "a rejected call wrote rows"
        return exc


def _no_nan_stored(conn) -> None:
    assert conn.execute("SELECT count(*) FROM q_values WHERE q_value = 'NaN'").fetchone()[0] == 0


@EXAMPLES
@given(
    agent=st.sampled_from(AGENT_TYPES),
    state=hashes,
    action=hashes,
    state_data=json_values,
    action_data=json_values,
    q=floats,
)
def test_upsert_q_value_stores_finite_values_or_refuses(conn, agent, state, action, state_data, action_data, q):
    try:
        error = _call(
            conn,
            "SELECT upsert_q_value(%s, %s, %s, %s, %s, %s)",
            [agent, state, Jsonb(state_data), action, Jsonb(action_data), q],
            ["q_value", "state_data", "action_data", "agent_type", "state_hash", "action_hash"],
        )
        _no_nan_stored(conn)
        if error is None:
            stored = conn.execute(
                "SELECT q_value FROM q_values WHERE agent_type = %s AND state_hash = %s AND action_hash = %s",
                (agent, state, action),
            ).fetchone()[0]
            assert math.isfinite(q) and abs(q) < NUMERIC_LIMIT
            assert float(stored) == pytest.approx(q, abs=1e-6)
        elif not math.isfinite(q) or abs(q) >= NUMERIC_LIMIT:
            assert "q_value" in str(error) or error.sqlstate in INPUT_ERRORS
    finally:
        conn.rollback()


@EXAMPLES
@given(
    agent=st.sampled_from(AGENT_TYPES),
    state=hashes,
    action=hashes,
    next_state=st.none() | hashes,
    reward=floats,
    start=st.floats(min_value=-1000, max_value=1000),
)
def test_q_learning_update_stores_finite_values_or_refuses(conn, agent, state, action, next_state, reward, start):
    try:
        conn.execute(
            "SELECT upsert_q_value(%s, %s, '{}', %s, '{}', %s)", (agent, next_state or "terminal", "a0", start)
        )
        error = _call(
            conn,
            "SELECT q_learning_update(%s, %s, %s, %s, %s)",
            [agent, state, action, reward, next_state],
            ["reward", "q_value", "agent_type", "state_hash", "action_hash", "next_state_hash"],
        )
        _no_nan_stored(conn)
        if error is None:
            assert math.isfinite(reward)
        elif not math.isfinite(reward) or abs(reward) >= NUMERIC_LIMIT:
            assert "reward" in str(error)
    finally:
        conn.rollback()


@pytest.mark.parametrize("q", [math.nan, math.inf, -math.inf], ids=["nan", "inf", "-inf"])
def test_non_finite_q_value_is_refused_with_the_field_named(conn, q):
    try:
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="q_value must be a finite number"):
            conn.execute("SELECT upsert_q_value('test-generator', 's', '{}', 'a', '{}', %s)", (q,))
    finally:
        conn.rollback()


UPSERT = "SELECT upsert_q_value('test-generator', 's', '{}', 'a', '{}', %s)"
UPDATE = "SELECT q_learning_update('test-generator', 's', 'a', %s, NULL)"
OUT_OF_RANGE_CASES = [
    pytest.param(UPSERT, "q_value", 1e6, id="upsert_q_value-1e6"),
    pytest.param(UPSERT, "q_value", -1e6, id="upsert_q_value--1e6"),
    pytest.param(UPSERT, "q_value", 1e300, id="upsert_q_value-1e300"),
    pytest.param(UPDATE, "reward", 1e12, id="q_learning_update-1e12"),
    pytest.param(UPDATE, "reward", -1e300, id="q_learning_update--1e300"),
]


@pytest.mark.parametrize(("query", "field", "value"), OUT_OF_RANGE_CASES)
def test_out_of_range_value_is_refused_with_the_field_named(conn, query, field, value):
    try:
        error = _call(conn, query, [value], [field])
        assert error is not None
    finally:
        conn.rollback()
