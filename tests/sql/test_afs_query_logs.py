"""query_logs: full-text search everywhere; vector search with pgvector, else the documented real[] fallback.

PostgreSQL 15 on Debian 12 has no pgvector, so locally the fallback tests run and the pgvector tests
skip; the Docker conformance run (PostgreSQL 17 with pgvector) runs the other half.
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
                " VALUES (%s, 10, %s::real[]" + ("::vector" if has_vector(c) else "") + ", %s)",
                (text, unit(i), MARK),
            )
        yield c
        c.execute("DELETE FROM query_logs WHERE model_name = %s", (MARK,))


def has_vector(conn) -> bool:
    return conn.execute("SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'vector')").fetchone()[0]


def search(conn, text: str, embedding: list[float] | None = None, limit: int = 10):
    return conn.execute(
        "SELECT query_text, text_score, vector_score, score FROM hybrid_search_query_logs(%s, %s, %s)"
        " WHERE query_text = ANY (%s)",
        (text, embedding, limit, LOGS),
    ).fetchall()


@pytest.fixture
def fallback(conn):
    if has_vector(conn):
        pytest.skip("pgvector is installed here: the fallback is not in use")


@pytest.fixture
def pgvector(conn):
    if not has_vector(conn):
        pytest.skip("no pgvector on this server: covered by the Docker conformance run")


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


def test_fallback_column_is_a_checked_real_array(conn, fallback):
    row = conn.execute(
        "SELECT format_type(atttypid, atttypmod), col_description(attrelid, attnum) FROM pg_attribute"
        " WHERE attrelid = 'query_logs'::regclass AND attname = 'query_embedding'"
    ).fetchone()
    assert row[0] == "real[]"
    assert "Fallback without pgvector" in row[1]
    assert conn.execute("SELECT query_logs_has_vector_search()").fetchone()[0] is False


def test_fallback_has_no_ann_index(conn, fallback):
    assert conn.execute("SELECT to_regclass('idx_query_logs_embedding')").fetchone()[0] is None


@pytest.mark.parametrize("bad", [[0.1] * 3, [0.1] * (DIM + 1), [[0.1] * DIM]], ids=["short", "long", "2-d"])
def test_fallback_rejects_embeddings_of_the_wrong_shape(conn, fallback, bad):
    before = conn.execute("SELECT count(*) FROM query_logs").fetchone()[0]
    with pytest.raises(psycopg.errors.CheckViolation, match="chk_query_logs_query_embedding"):
        conn.execute("INSERT INTO query_logs (query_text, query_embedding) VALUES ('x', %s::real[])", (bad,))
    assert conn.execute("SELECT count(*) FROM query_logs").fetchone()[0] == before


def test_fallback_hybrid_search_is_full_text_only(conn, fallback):
    plain = search(conn, "revenue or monthly")
    with_vector = search(conn, "revenue or monthly", unit(2))  # points at the users query
    assert with_vector == plain
    assert all(r[2] is None and r[3] == r[1] for r in with_vector)


def test_pgvector_column_and_ivfflat_index(conn, pgvector):
    row = conn.execute(
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
        " WHERE attrelid = 'query_logs'::regclass AND attname = 'query_embedding'"
    ).fetchone()
    assert row[0] == "vector(1536)"
    indexdef = conn.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'idx_query_logs_embedding'").fetchone()
    assert indexdef and "USING ivfflat (query_embedding vector_cosine_ops)" in indexdef[0]


def test_pgvector_hybrid_search_weights_text_04_and_vector_06(conn, pgvector):
    with conn.transaction(force_rollback=True):
        conn.execute("SET LOCAL ivfflat.probes = 100")  # exact results on a tiny table
        rows = {r[0]: r for r in search(conn, "revenue", unit(2))}
    users_query = rows[LOGS[2]]  # found by its vector alone
    assert users_query[1] == 0 and users_query[2] == pytest.approx(1.0)
    assert users_query[3] == pytest.approx(0.6)
    for text in LOGS[:2]:  # found by text; their vectors are orthogonal to the query
        _, text_score, vector_score, score = rows[text]
        assert score == pytest.approx(0.4 * text_score + 0.6 * (vector_score or 0))
