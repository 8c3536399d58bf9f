-- Repeatable step (infra/migrations.py runs every file here after each upgrade, in the same
-- transaction, as agentic_owner). 0001 leaves agent_knowledge.embedding a real[] on a server without
-- pgvector; 0001 never runs again once applied, so this step converts that fallback to the story's
-- vector(1536) with its IVFFLAT index as soon as the server has pgvector. It does nothing when the
-- column is already vector(1536), when agent_knowledge does not exist, or when pgvector is still
-- absent. Existing embeddings are kept (real[] casts to vector); the rewrite holds an ACCESS
-- EXCLUSIVE lock on agent_knowledge for its duration, once.
DO $$
DECLARE
    migrator text := current_user;
    kept bigint;
BEGIN
    IF to_regclass('public.agent_knowledge') IS NULL
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
             WHERE attrelid = 'public.agent_knowledge'::regclass AND attname = 'embedding'
        ) <> 'real[]' THEN
        RETURN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'vector') THEN
        RESET ROLE;  -- CREATE EXTENSION needs the superuser; then back to the owner
        CREATE EXTENSION vector;
        EXECUTE format('SET LOCAL ROLE %I', migrator);
    END IF;

    ALTER TABLE agent_knowledge DROP CONSTRAINT agent_knowledge_embedding_has_1536_dimensions;
    ALTER TABLE agent_knowledge ALTER COLUMN embedding TYPE vector(1536) USING embedding::vector(1536);
    CREATE INDEX idx_agent_knowledge_embedding ON agent_knowledge
        USING ivfflat (embedding vector_cosine_ops) WITH (lists = 100);

    SELECT count(embedding) INTO kept FROM agent_knowledge;
    RAISE INFO 'agent_knowledge.embedding: converted real[] to vector(1536) with idx_agent_knowledge_embedding (% embeddings kept)', kept;
END
$$;
