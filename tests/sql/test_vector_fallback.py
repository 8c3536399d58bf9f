"""The real[] fallback on a server that cannot have pgvector, and its conversion once pgvector arrives.

The server without pgvector is a copy of the host's PostgreSQL installation without pgvector's
files: PostgreSQL finds its library and share directories relative to its binaries, so the copy
is a server of its own whose `pg_available_extensions` has no `vector`. A stack of its own runs it
(`up` gives the documented fallback); then pgvector is installed into the copy the way `make deps`
installs it (tools.ensure_pgvector) and the real `agentdb migrate` must convert the columns.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg.types.json import Jsonb

from infra import tools
from tests.conftest import TestStack, dedicated_stack, make_state_dir

DIM = 1536
LOGS = [
    "SELECT date_trunc('month', created_at), sum(total) FROM orders GROUP BY 1 -- monthly revenue",
    "SELECT sum(total) FROM orders WHERE status = 'completed' -- revenue",
    "SELECT email FROM users WHERE created_at > now() - interval '7 days'",
]
KNOWLEDGE = ["retry with backoff", "index the foreign key"]
# pgvector's files in a PostgreSQL installation (a distribution package also ships JIT bitcode).
PGVECTOR_FILES = shutil.ignore_patterns("vector.so", "vector.control", "vector--*.sql", "vector.index.bc", "vector")
# What `agentdb migrate` reports for each conversion, with the number of embeddings it kept.
REPORTS = [
    f"query_logs.query_embedding: converted real[] to vector(1536) with idx_query_logs_embedding ({len(LOGS)}"
    " embeddings kept)",
    "agent_knowledge.embedding: converted real[] to vector(1536) with idx_agent_knowledge_embedding"
    f" ({len(KNOWLEDGE)} embeddings kept)",
]
# (database key, table, embedding column, ANN index, CHECK constraint of the fallback)
EMBEDDINGS = [
    ("afs", "query_logs", "query_embedding", "idx_query_logs_embedding", "chk_query_logs_query_embedding"),
    (
        "agentic",
        "agent_knowledge",
        "embedding",
        "idx_agent_knowledge_embedding",
        "agent_knowledge_embedding_has_1536_dimensions",
    ),
]
IDS = [e[1] for e in EMBEDDINGS]


def unit(i: int) -> list[float]:
    """A 1536-dimension unit vector along axis i."""
    v = [0.0] * DIM
    v[i] = 1.0
    return v


def literal(v: list[float]) -> str:
    """pgvector's text form, as the seeds write it."""
    return "[" + ",".join(map(str, v)) + "]"


def copy_without_pgvector(root: Path) -> Path:
    """A copy of the host's PostgreSQL under `root` without pgvector; its bin directory."""
    bindir = tools.postgres_bindir()
    lib, extensions = tools.server_extension_dirs(bindir)
    for tree in (bindir.parent, lib, extensions.parent):
        target = root / tree.relative_to("/")
        if not target.exists():
            shutil.copytree(tree, target, symlinks=True, ignore=PGVECTOR_FILES)
    return root / bindir.relative_to("/")


def column(conn: psycopg.Connection, table: str, name: str) -> tuple[str, str | None]:
    return conn.execute(
        "SELECT format_type(atttypid, atttypmod), col_description(attrelid, attnum) FROM pg_attribute"
        " WHERE attrelid = %s::regclass AND attname = %s",
        (table, name),
    ).fetchone()


def table_schema(stack: TestStack, key: str, table: str) -> str:
    """pg_dump's definition of one table: columns, constraints, indexes, comments, privileges."""
    dump = subprocess.run(
        [
            str(tools.postgres_bindir() / "pg_dump"),
            "--schema-only",
            "--restrict-key=agentdb",
            "-t",
            table,
            stack.dsn(key),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    # The header names the server's minor version, which is not the schema.
    return "\n".join(line for line in dump.splitlines() if not line.startswith("-- Dumped from"))


@pytest.fixture(scope="module")
def plain_server() -> Path:
    root = make_state_dir("agentdb-no-pgvector-")
    try:
        bindir = copy_without_pgvector(root)
        assert tools.installed_pgvector(bindir) is None
        yield bindir
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def fallback(plain_server):
    with dedicated_stack("agentdb-fallback-", {"agentdb:databases": ["afs", "agentic"]}, pg_bindir=plain_server) as ts:
        yield ts


@dataclass
class Conversion:
    stack: TestStack
    refused: subprocess.CompletedProcess  # `agentdb migrate` while a stored embedding cannot convert
    type_after_refusal: str
    first_migrate: str
    second_migrate: str


@pytest.fixture(scope="module")
def converted(fallback, plain_server) -> Conversion:
    """The fallback stack with embeddings in its real[] columns, pgvector installed, then migrated twice."""
    with psycopg.connect(fallback.dsn("afs"), autocommit=True) as conn:
        for i, text in enumerate(LOGS):
            conn.execute("INSERT INTO query_logs (query_text, query_embedding) VALUES (%s, %s)", (text, unit(i)))
    with psycopg.connect(fallback.dsn("agentic"), autocommit=True) as conn:
        agent = conn.execute(
            "INSERT INTO agents (name, persona_type, capabilities) VALUES ('tester', 'qa', %s) RETURNING agent_id",
            (Jsonb(["review"]),),
        ).fetchone()[0]
        for i, text in enumerate(KNOWLEDGE):
            conn.execute(
                "INSERT INTO agent_knowledge (agent_id, knowledge_type, domain, content, embedding)"
                " VALUES (%s, 'solution', 'backend', %s, %s)",
                (agent, Jsonb({"text": text}), unit(i)),
            )
    assert tools.ensure_pgvector(plain_server, progress=lambda line: None)
    # real[] accepts NaN and vector does not: the conversion must refuse it and change nothing.
    with psycopg.connect(fallback.dsn("afs"), autocommit=True) as conn:
        nan = [float("nan"), *unit(0)[1:]]
        conn.execute("INSERT INTO query_logs (query_text, query_embedding) VALUES ('nan', %s)", (nan,))
        refused = fallback.cli("migrate", check=False)
        type_after_refusal = column(conn, "query_logs", "query_embedding")[0]
        conn.execute("DELETE FROM query_logs WHERE query_text = 'nan'")
    first = fallback.cli("migrate").stdout
    second = fallback.cli("migrate").stdout
    return Conversion(fallback, refused, type_after_refusal, first, second)


# ----- the fallback: a server without pgvector ----------------------------------------------------
def test_up_says_the_server_has_no_pgvector(fallback):
    assert "extension vector is not installed on this server" in fallback.up_output


@pytest.mark.parametrize(("key", "table", "name", "index", "check"), EMBEDDINGS, ids=IDS)
def test_fallback_column_is_a_checked_real_array_without_ann_index(fallback, key, table, name, index, check):
    with psycopg.connect(fallback.dsn(key)) as conn:
        assert column(conn, table, name)[0] == "real[]"
        assert conn.execute("SELECT to_regclass(%s)", (index,)).fetchone()[0] is None
        assert conn.execute("SELECT count(*) FROM pg_constraint WHERE conname = %s", (check,)).fetchone()[0] == 1
        assert conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'vector'").fetchone()[0] == 0


def test_fallback_query_embedding_says_so_and_hybrid_search_knows(fallback):
    with psycopg.connect(fallback.dsn("afs")) as conn:
        assert "Fallback without pgvector" in column(conn, "query_logs", "query_embedding")[1]
        assert conn.execute("SELECT query_logs_has_vector_search()").fetchone()[0] is False


@pytest.mark.parametrize("bad", [[0.1] * 3, [0.1] * (DIM + 1), [[0.1] * DIM]], ids=["short", "long", "2-d"])
def test_fallback_rejects_embeddings_of_the_wrong_shape(fallback, bad):
    with psycopg.connect(fallback.dsn("afs"), autocommit=True) as conn:
        before = conn.execute("SELECT count(*) FROM query_logs").fetchone()[0]
        with pytest.raises(psycopg.errors.CheckViolation, match="chk_query_logs_query_embedding"):
            conn.execute("INSERT INTO query_logs (query_text, query_embedding) VALUES ('x', %s::real[])", (bad,))
        assert conn.execute("SELECT count(*) FROM query_logs").fetchone()[0] == before


def test_fallback_hybrid_search_is_full_text_only(fallback):
    with psycopg.connect(fallback.dsn("afs")) as conn, conn.transaction(force_rollback=True):
        for i, text in enumerate(LOGS):
            conn.execute("INSERT INTO query_logs (query_text, query_embedding) VALUES (%s, %s)", (text, unit(i)))
        query = "SELECT query_text, text_score, vector_score, score FROM hybrid_search_query_logs(%s, %s)"
        plain = conn.execute(query, ("revenue or monthly", None)).fetchall()
        with_vector = conn.execute(query, ("revenue or monthly", unit(2))).fetchall()  # points at the users query
    assert [r[0] for r in plain] == LOGS[:2]
    assert with_vector == plain
    assert all(r[2] is None and r[3] == r[1] for r in with_vector)


# ----- pgvector arrives: `agentdb migrate` converts ----------------------------------------------
def test_an_embedding_vector_cannot_hold_stops_the_conversion_and_changes_nothing(converted):
    assert converted.refused.returncode == 1
    assert "afs: repeatable step sql/afs/repeatable/query_logs_vector.sql failed, nothing was changed" in (
        converted.refused.stderr
    )
    assert "NaN not allowed in vector" in converted.refused.stderr
    assert converted.type_after_refusal == "real[]"


def test_migrate_reports_each_conversion_once(converted):
    for report in REPORTS:
        assert report in converted.first_migrate
        assert "converted" not in converted.second_migrate


@pytest.mark.parametrize(("key", "table", "name", "index", "check"), EMBEDDINGS, ids=IDS)
def test_converted_column_is_vector_with_ivfflat_and_no_fallback_check(converted, key, table, name, index, check):
    with psycopg.connect(converted.stack.dsn(key)) as conn:
        assert column(conn, table, name)[0] == "vector(1536)"
        indexdef = conn.execute("SELECT indexdef FROM pg_indexes WHERE indexname = %s", (index,)).fetchone()
        assert indexdef and f"USING ivfflat ({name} vector_cosine_ops) WITH (lists='100')" in indexdef[0]
        assert conn.execute("SELECT count(*) FROM pg_constraint WHERE conname = %s", (check,)).fetchone()[0] == 0


@pytest.mark.parametrize(("key", "table"), [(e[0], e[1]) for e in EMBEDDINGS], ids=IDS)
def test_converted_table_is_defined_as_on_a_server_that_always_had_pgvector(converted, stack, key, table):
    assert table_schema(converted.stack, key, table) == table_schema(stack, key, table)


@pytest.mark.parametrize(
    ("key", "query", "expected"),
    [
        ("afs", "SELECT query_embedding::real[] FROM query_logs ORDER BY id", [unit(i) for i in range(len(LOGS))]),
        (
            "agentic",
            "SELECT embedding::real[] FROM agent_knowledge ORDER BY content ->> 'text' DESC",
            [unit(i) for i in range(len(KNOWLEDGE))],
        ),
    ],
    ids=IDS,
)
def test_converted_embeddings_are_kept(converted, key, query, expected):
    with psycopg.connect(converted.stack.dsn(key)) as conn:
        assert [row[0] for row in conn.execute(query)] == expected


@pytest.mark.parametrize("axis", range(len(LOGS)))
def test_seed_similarity_query_as_written_works_after_conversion(converted, axis):
    with psycopg.connect(converted.stack.dsn("afs")) as conn, conn.transaction(force_rollback=True):
        conn.execute("SET LOCAL ivfflat.probes = 100")  # every list: the index was built on three rows
        rows = conn.execute(
            f"SELECT query_text FROM query_logs ORDER BY query_embedding <=> '{literal(unit(axis))}' LIMIT 10"
        ).fetchall()
    assert rows[0][0] == LOGS[axis]


def test_hybrid_search_uses_both_scores_after_conversion(converted):
    with psycopg.connect(converted.stack.dsn("afs")) as conn, conn.transaction(force_rollback=True):
        conn.execute("SET LOCAL ivfflat.probes = 100")
        rows = conn.execute(
            "SELECT query_text, text_score, vector_score, score FROM hybrid_search_query_logs('revenue', %s)",
            (unit(2),),
        ).fetchall()
    by_text = {r[0]: r for r in rows}
    assert by_text[LOGS[2]][1:] == (0, pytest.approx(1.0), pytest.approx(0.6))  # found by its vector alone
    for text in LOGS[:2]:
        _, text_score, vector_score, score = by_text[text]
        assert text_score > 0 and score == pytest.approx(0.4 * text_score + 0.6 * vector_score)


@pytest.mark.parametrize("axis", range(len(KNOWLEDGE)))
def test_knowledge_similarity_search_after_conversion(converted, axis):
    with psycopg.connect(converted.stack.dsn("agentic")) as conn, conn.transaction(force_rollback=True):
        conn.execute("SET LOCAL ivfflat.probes = 100")
        nearest = conn.execute(
            "SELECT content ->> 'text' FROM agent_knowledge ORDER BY embedding <=> %s::vector LIMIT 1",
            (literal(unit(axis)),),
        ).fetchone()[0]
    assert nearest == KNOWLEDGE[axis]
