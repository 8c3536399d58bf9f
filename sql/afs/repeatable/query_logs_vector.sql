-- Repeatable step (infra/migrations.py runs every file here after each upgrade, in the same
-- transaction, as afs_owner). 0005 gives query_logs a real[] query_embedding on a server without
-- pgvector; 0005 never runs again once applied, so this step converts that fallback to the seed's
-- vector(1536) with its IVFFLAT index as soon as the server has pgvector. It does nothing when the
-- column is already vector(1536), when query_logs does not exist, or when pgvector is still absent.
-- Existing embeddings are kept (real[] casts to vector); the rewrite holds an ACCESS EXCLUSIVE lock
-- on query_logs for its duration, once.
DO $$
DECLARE
    migrator text := current_user;
    kept bigint;
BEGIN
    IF to_regclass('public.query_logs') IS NULL
        -- pgvector neither installed nor one the migrator may create (a managed server's admin is no superuser)
        OR NOT (
            EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'vector')
            OR EXISTS (
                SELECT 1 FROM pg_available_extension_versions AS v
                WHERE v.name = 'vector' AND (v.trusted OR (SELECT rolsuper FROM pg_roles WHERE rolname = session_user))
            )
        )
        OR (
            SELECT format_type(atttypid, atttypmod) FROM pg_attribute
             WHERE attrelid = 'public.query_logs'::regclass AND attname = 'query_embedding'
        ) <> 'real[]' THEN
        RETURN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'vector') THEN
        RESET ROLE;  -- CREATE EXTENSION needs the superuser; then back to the owner
        CREATE EXTENSION vector;
        EXECUTE format('SET LOCAL ROLE %I', migrator);
    END IF;

    ALTER TABLE query_logs DROP CONSTRAINT chk_query_logs_query_embedding;
    ALTER TABLE query_logs ALTER COLUMN query_embedding TYPE vector(1536) USING query_embedding::vector(1536);
    CREATE INDEX idx_query_logs_embedding ON query_logs
        USING ivfflat (query_embedding vector_cosine_ops) WITH (lists = 100);
    COMMENT ON COLUMN query_logs.query_embedding IS
        'Semantic vector (pgvector vector(1536)); NULL until the embedding job processes the row.';

    SELECT count(query_embedding) INTO kept FROM query_logs;
    RAISE INFO 'query_logs.query_embedding: converted real[] to vector(1536) with idx_query_logs_embedding (% embeddings kept)', kept;
END
$$;
