"""query_logs on the default path: pgvector columns, the IVFFLAT index, the seed's queries as written.

`make deps` installs pgvector into the host's PostgreSQL, so the stack has seed 003's schema. The
real[] fallback (a server without pgvector) and its conversion are in test_vector_fallback.py.
"""

from __future__ import annotations

import psycopg
import pytest

KEY = "afs"
MARK = "afs-query-logs-test"
DIM = 1536
LOGS = [
    "SELECT date_trunc('month', created_at), sum(total) FROM orders GROUP BY 1 -- monthly revenue",
    "SELECT sum(total) FROM orders WHERE status = 'completed' -- revenue",
    "SELECT email FROM users WHERE created_at > now() - interval '7 days'",
]


def unit(i: int) -> list[float]:
    """A 1536-dimension unit vector along axis i."""
    v = [0.0] * DIM
    v[i] = 1.0
    return v


@pytest.fixture(scope="module")
def conn(stack):
    with psycopg.connect(stack.dsn(KEY), autocommit=True) as c:
        c.execute("DELETE FROM query_logs WHERE model_name = %s", (MARK,))
        for i, text in enumerate(LOGS):
            c.execute(
                "INSERT INTO query_logs (query_text, execution_time_ms, query_embedding, model_name)"
                " VALUES (%s, 10, %s, %s)",
                (text, literal(unit(i)), MARK),
            )
        yield c
        c.execute("DELETE FROM query_logs WHERE model_name = %s", (MARK,))


def literal(v: list[float]) -> str:
    """pgvector's text form, as the seed writes it: '[0.1,0.2,...]'."""
    return "[" + ",".join(map(str, v)) + "]"


def search(conn, text: str, embedding: list[float] | None = None, limit: int = 1000):
    """This module's rows only: the sample data (seeded by other tests) holds the same query texts."""
    return conn.execute(
        "SELECT h.query_text, h.text_score, h.vector_score, h.score FROM hybrid_search_query_logs(%s, %s, %s) h"
        " WHERE h.id IN (SELECT id FROM query_logs WHERE model_name = %s)",
        (text, embedding, limit, MARK),
    ).fetchall()


def test_full_text_search_ranks_matches_only(conn):
    rows = search(conn, "revenue or monthly")
    assert [r[0] for r in rows] == LOGS[:2]  # both words beat one; the users query does not match
    assert all(0 < r[1] < 1 for r in rows)


def test_full_text_index_serves_the_search(conn):
    with conn.transaction(force_rollback=True):
        conn.execute("SET LOCAL enable_seqscan = off")
        plan = conn.execute(
            "EXPLAIN SELECT id FROM query_logs"
            " WHERE to_tsvector('english', query_text) @@ websearch_to_tsquery('english', 'revenue')"
        ).fetchall()
    assert "idx_query_logs_text" in "\n".join(r[0] for r in plan)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("", None, 10), "search_text must not be empty"),
        (("revenue", None, 0), "result_limit must be between 1 and 1000"),
        (("revenue", [0.5] * 3, 10), "search_embedding must have 1536 elements"),
    ],
    ids=["empty text", "zero limit", "wrong dimension"],
)
def test_bad_search_arguments(conn, args, message):
    with pytest.raises(psycopg.errors.InvalidParameterValue, match=message):
        conn.execute("SELECT * FROM hybrid_search_query_logs(%s, %s::double precision[], %s)", args)


def test_pgvector_column_and_ivfflat_index(conn):
    row = conn.execute(
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
        " WHERE attrelid = 'query_logs'::regclass AND attname = 'query_embedding'"
    ).fetchone()
    assert row[0] == "vector(1536)"
    indexdef = conn.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'idx_query_logs_embedding'").fetchone()
    assert indexdef and "USING ivfflat (query_embedding vector_cosine_ops)" in indexdef[0]


def test_pgvector_hybrid_search_weights_text_04_and_vector_06(conn):
    with conn.transaction(force_rollback=True):
        conn.execute("SET LOCAL ivfflat.probes = 100")  # exact results on a tiny table
        rows = {r[0]: r for r in search(conn, "revenue", unit(2))}
    users_query = rows[LOGS[2]]  # found by its vector alone
    assert users_query[1] == 0 and users_query[2] == pytest.approx(1.0)
    assert users_query[3] == pytest.approx(0.6)
    for text in LOGS[:2]:  # found by text; their vectors are orthogonal to the query
        _, text_score, vector_score, score = rows[text]
        assert score == pytest.approx(0.4 * text_score + 0.6 * (vector_score or 0))


@pytest.mark.parametrize("axis", range(len(LOGS)))
def test_seed_similarity_query_as_written_finds_the_nearest_first(conn, axis):
    # Seed 003: ORDER BY query_embedding <=> '[user_query_embedding]' LIMIT 10. ivfflat.probes
    # covers every list: a tiny table leaves most of the 100 lists empty, and one probe may miss.
    with conn.transaction(force_rollback=True):
        conn.execute("SET LOCAL ivfflat.probes = 100")
        rows = conn.execute(
            "SELECT query_text, query_embedding <=> %s AS distance FROM query_logs"
            " ORDER BY query_embedding <=> %s LIMIT 10",
            (literal(unit(axis)), literal(unit(axis))),
        ).fetchall()
    assert rows[0] == (LOGS[axis], 0.0)
    assert all(r[1] is None or r[1] >= 0 for r in rows)


def test_seed_similarity_query_uses_the_ivfflat_index(conn):
    with conn.transaction(force_rollback=True):
        conn.execute("SET LOCAL enable_seqscan = off")
        plan = conn.execute(
            "EXPLAIN SELECT id FROM query_logs ORDER BY query_embedding <=> %s LIMIT 10", (literal(unit(0)),)
        ).fetchall()
    assert "idx_query_logs_embedding" in "\n".join(r[0] for r in plan)


def test_hybrid_search_ranks_by_both_scores(conn):
    # "revenue" matches the first two by text; the embedding points at the second, so it wins.
    with conn.transaction(force_rollback=True):
        conn.execute("SET LOCAL ivfflat.probes = 100")
        rows = search(conn, "revenue", unit(1))
    assert [r[0] for r in rows][:1] == [LOGS[1]]
    assert rows[0][1] > 0 and rows[0][2] == pytest.approx(1.0)
    assert conn.execute("SELECT query_logs_has_vector_search()").fetchone()[0] is True
