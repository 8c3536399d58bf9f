-- Seed 003, "query_logs" (migrations 005 and 006): query history with full-text search and, where
-- the server has pgvector, semantic search; hybrid_search_query_logs() weights them 0.4 / 0.6.
--
-- pgvector fallback: the `vector` extension is optional. When the server has it for this migrator,
-- it is created (agentdb's baseline normally already did) and query_embedding is vector(1536) with
-- an IVFFLAT index (cosine). When it does not (Debian 12's PostgreSQL 15), query_embedding is a
-- real[] of exactly 1536 elements, there is no ANN index, and hybrid search degrades to full-text
-- only. The choice is made when this revision runs; if pgvector arrives later,
-- repeatable/query_logs_vector.sql converts the column (sql/afs/README.md).

DO $$
DECLARE
    migrator text := current_user;
    -- Installed, or one the migrator may create: a superuser, or any role when the server trusts it.
    -- A managed server's admin (agentdb:postgresMode external) is no superuser.
    has_vector boolean := EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'vector')
        OR EXISTS (
            SELECT 1 FROM pg_available_extension_versions AS v
            WHERE v.name = 'vector' AND (v.trusted OR (SELECT rolsuper FROM pg_roles WHERE rolname = session_user))
        );
BEGIN
    IF has_vector AND NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'vector') THEN
        RESET ROLE;  -- CREATE EXTENSION needs the superuser; then back to the owner
        CREATE EXTENSION vector;
        EXECUTE format('SET LOCAL ROLE %I', migrator);
    END IF;

    EXECUTE format(
        $sql$
        CREATE TABLE query_logs (
            id SERIAL PRIMARY KEY,
            query_text TEXT NOT NULL,
            execution_time_ms NUMERIC(10, 2),
            executed_at TIMESTAMPTZ DEFAULT now(),
            query_embedding %s,
            model_name VARCHAR(100)%s
        )
        $sql$,
        CASE WHEN has_vector THEN 'vector(1536)' ELSE 'real[]' END,
        CASE WHEN has_vector THEN '' ELSE ',
            CONSTRAINT chk_query_logs_query_embedding CHECK (
                query_embedding IS NULL
                OR (array_ndims(query_embedding) = 1 AND cardinality(query_embedding) = 1536)
            )' END
    );

    IF has_vector THEN
        EXECUTE 'CREATE INDEX idx_query_logs_embedding ON query_logs
                 USING ivfflat (query_embedding vector_cosine_ops) WITH (lists = 100)';
        COMMENT ON COLUMN query_logs.query_embedding IS
            'Semantic vector (pgvector vector(1536)); NULL until the embedding job processes the row.';
    ELSE
        COMMENT ON COLUMN query_logs.query_embedding IS
            'Fallback without pgvector: real[] of 1536 elements, no ANN index; hybrid search is full-text only.';
    END IF;
END;
$$;

CREATE INDEX idx_query_logs_text ON query_logs USING gin (to_tsvector('english', query_text));
CREATE INDEX idx_query_logs_executed_at ON query_logs (executed_at DESC);

-- true when query_embedding is a pgvector column, false on the real[] fallback.
CREATE FUNCTION query_logs_has_vector_search()
RETURNS boolean
LANGUAGE sql STABLE
AS $$
    SELECT t.typname = 'vector'
      FROM pg_attribute AS a
      JOIN pg_type AS t ON t.oid = a.atttypid
     WHERE a.attrelid = 'query_logs'::regclass AND a.attname = 'query_embedding'
$$;

-- Hybrid search: score = 0.4 * full-text score + 0.6 * vector similarity, both in [0, 1]
-- (ts_rank normalised with rank/(rank+1); cosine similarity 1 - distance, floored at 0).
-- search_text uses web-search syntax ("revenue or monthly", "-payments", "\"exact phrase\"").
-- Without pgvector, or without search_embedding, score is the full-text score alone.
CREATE FUNCTION hybrid_search_query_logs(
    search_text text, search_embedding double precision[] DEFAULT NULL, result_limit integer DEFAULT 10
)
RETURNS TABLE (
    id integer,
    query_text text,
    executed_at timestamptz,
    text_score double precision,
    vector_score double precision,
    score double precision
)
LANGUAGE plpgsql STABLE
AS $$
#variable_conflict use_column
BEGIN
    IF search_text IS NULL OR btrim(search_text) = '' THEN
        RAISE EXCEPTION 'hybrid_search_query_logs: search_text must not be empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF result_limit IS NULL OR result_limit < 1 OR result_limit > 1000 THEN
        RAISE EXCEPTION 'hybrid_search_query_logs: result_limit must be between 1 and 1000, got %', result_limit
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF search_embedding IS NOT NULL AND cardinality(search_embedding) <> 1536 THEN
        RAISE EXCEPTION 'hybrid_search_query_logs: search_embedding must have 1536 elements, got %',
            cardinality(search_embedding) USING ERRCODE = 'invalid_parameter_value';
    END IF;

    IF search_embedding IS NOT NULL AND query_logs_has_vector_search() THEN
        RETURN QUERY
        WITH q AS (
            SELECT websearch_to_tsquery('english', search_text) AS tsq, search_embedding::real[]::vector AS emb
        ),
        text_hits AS (
            SELECT l.id, ts_rank(to_tsvector('english', l.query_text), q.tsq, 32)::double precision AS text_score
              FROM query_logs AS l, q
             WHERE to_tsvector('english', l.query_text) @@ q.tsq
        ),
        vector_hits AS (
            SELECT l.id, greatest(0, 1 - (l.query_embedding <=> q.emb))::double precision AS vector_score
              FROM query_logs AS l, q
             WHERE l.query_embedding IS NOT NULL
             ORDER BY l.query_embedding <=> q.emb
             LIMIT result_limit * 4
        )
        SELECT l.id, l.query_text, l.executed_at,
               coalesce(t.text_score, 0), v.vector_score,
               0.4 * coalesce(t.text_score, 0) + 0.6 * coalesce(v.vector_score, 0)
          FROM text_hits AS t
          FULL JOIN vector_hits AS v ON v.id = t.id
          JOIN query_logs AS l ON l.id = coalesce(t.id, v.id)
         ORDER BY 6 DESC, l.executed_at DESC, l.id
         LIMIT result_limit;
    ELSE
        RETURN QUERY
        SELECT l.id, l.query_text, l.executed_at, t.text_score, NULL::double precision, t.text_score
          FROM query_logs AS l
         CROSS JOIN websearch_to_tsquery('english', search_text) AS q (tsq)
         CROSS JOIN LATERAL (
            SELECT ts_rank(to_tsvector('english', l.query_text), q.tsq, 32)::double precision AS text_score
         ) AS t
         WHERE to_tsvector('english', l.query_text) @@ q.tsq
         ORDER BY t.text_score DESC, l.executed_at DESC, l.id
         LIMIT result_limit;
    END IF;
END;
$$;
