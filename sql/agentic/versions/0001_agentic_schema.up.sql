-- Story S0-1.1 (seed 004): the agentic schema with the QA review's required fixes.
-- Runs as agentic_owner (infra/migrations.py does SET LOCAL ROLE), in one transaction.
-- sql/agentic/README.md maps every item of the document to the objects below.

-- ---------------------------------------------------------------------------------------------
-- Tenancy: the application sets app.current_user_id per transaction; policies compare with it.
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION agentic_current_user_id() RETURNS uuid
    LANGUAGE sql STABLE
    AS $$ SELECT NULLIF(current_setting('app.current_user_id', true), '')::uuid $$;

COMMENT ON FUNCTION agentic_current_user_id() IS
    'The tenant of this transaction: app.current_user_id as uuid, NULL when unset (then RLS shows nothing).';

-- ---------------------------------------------------------------------------------------------
-- Schema versions (QA critical issue 2) and users (referenced by the story, not defined there).
-- ---------------------------------------------------------------------------------------------
CREATE TABLE schema_versions (
    version VARCHAR(32) PRIMARY KEY,
    description TEXT NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE users (
    user_id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    email VARCHAR(255) NOT NULL,
    display_name VARCHAR(100),
    created_at TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
    is_active BOOLEAN NOT NULL DEFAULT true,
    CONSTRAINT uniq_users_email UNIQUE (email),
    CONSTRAINT users_email_has_one_at_sign CHECK (email ~ '^[^@[:space:]]+@[^@[:space:]]+$')
);

-- ---------------------------------------------------------------------------------------------
-- 1. agents (+ version for optimistic locking)
-- ---------------------------------------------------------------------------------------------
CREATE TABLE agents (
    agent_id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name VARCHAR(100) NOT NULL,
    persona_type VARCHAR(50) NOT NULL,
    capabilities JSONB NOT NULL,
    config JSONB,
    created_at TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
    is_active BOOLEAN NOT NULL DEFAULT true,
    version INTEGER NOT NULL DEFAULT 1,
    CONSTRAINT agents_persona_type_not_blank CHECK (btrim(persona_type) <> ''),
    CONSTRAINT agents_capabilities_nonempty_string_array CHECK (
        CASE WHEN jsonb_typeof(capabilities) = 'array'
            THEN jsonb_array_length(capabilities) > 0
                AND NOT jsonb_path_exists(capabilities, '$[*] ? (@.type() != "string")')
            ELSE false
        END
    ),
    CONSTRAINT agents_config_is_object CHECK (config IS NULL OR jsonb_typeof(config) = 'object'),
    CONSTRAINT agents_version_positive CHECK (version >= 1)
);

-- ---------------------------------------------------------------------------------------------
-- 2. agent_sessions (+ version, + expires_at; user_id NOT NULL because it is the tenant key)
-- ---------------------------------------------------------------------------------------------
CREATE TABLE agent_sessions (
    session_id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    agent_id UUID NOT NULL REFERENCES agents (agent_id) ON DELETE CASCADE,
    user_id UUID NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    trust_level INTEGER NOT NULL DEFAULT 0,
    context JSONB,
    started_at TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
    ended_at TIMESTAMPTZ,
    session_state VARCHAR(20) NOT NULL DEFAULT 'active',
    metadata JSONB,
    expires_at TIMESTAMPTZ NOT NULL DEFAULT (CURRENT_TIMESTAMP + INTERVAL '24 hours'),
    version INTEGER NOT NULL DEFAULT 1,
    CONSTRAINT agent_sessions_trust_level_between_0_and_4 CHECK (trust_level BETWEEN 0 AND 4),
    CONSTRAINT agent_sessions_session_state_known CHECK (session_state IN ('active', 'paused', 'completed')),
    CONSTRAINT agent_sessions_context_is_object CHECK (context IS NULL OR jsonb_typeof(context) = 'object'),
    CONSTRAINT agent_sessions_metadata_is_object CHECK (metadata IS NULL OR jsonb_typeof(metadata) = 'object'),
    CONSTRAINT agent_sessions_ended_after_started CHECK (ended_at IS NULL OR ended_at >= started_at),
    CONSTRAINT agent_sessions_expires_after_started CHECK (expires_at > started_at),
    CONSTRAINT agent_sessions_version_positive CHECK (version >= 1)
);

-- ---------------------------------------------------------------------------------------------
-- 3. agent_decisions
-- ---------------------------------------------------------------------------------------------
CREATE TABLE agent_decisions (
    decision_id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    session_id UUID NOT NULL REFERENCES agent_sessions (session_id) ON DELETE CASCADE,
    decision_type VARCHAR(50) NOT NULL,
    input_context JSONB NOT NULL,
    decision_rationale TEXT,
    action_taken JSONB NOT NULL,
    confidence_score DECIMAL(3, 2),
    user_feedback VARCHAR(20),
    created_at TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
    execution_time_ms INTEGER,
    CONSTRAINT agent_decisions_decision_type_not_blank CHECK (btrim(decision_type) <> ''),
    CONSTRAINT agent_decisions_input_context_is_object CHECK (jsonb_typeof(input_context) = 'object'),
    CONSTRAINT agent_decisions_action_taken_is_object_with_string_type CHECK (
        jsonb_typeof(action_taken) = 'object' AND COALESCE(jsonb_typeof(action_taken -> 'type'), 'missing') = 'string'
    ),
    CONSTRAINT agent_decisions_action_taken_risk_level_known CHECK (
        (action_taken ->> 'risk_level') IS NULL
        OR (action_taken ->> 'risk_level') IN ('low', 'medium', 'high', 'critical')
    ),
    CONSTRAINT agent_decisions_confidence_score_between_0_and_1 CHECK (confidence_score BETWEEN 0 AND 1),
    CONSTRAINT agent_decisions_user_feedback_known CHECK (user_feedback IN ('approved', 'rejected', 'modified')),
    CONSTRAINT agent_decisions_execution_time_ms_not_negative CHECK (execution_time_ms >= 0)
);

-- Decisions older than the active window move here (agentic_archive_decisions).
CREATE TABLE agent_decisions_archive (
    decision_id UUID PRIMARY KEY,
    session_id UUID NOT NULL REFERENCES agent_sessions (session_id) ON DELETE CASCADE,
    decision_type VARCHAR(50) NOT NULL,
    input_context JSONB NOT NULL,
    decision_rationale TEXT,
    action_taken JSONB NOT NULL,
    confidence_score DECIMAL(3, 2),
    user_feedback VARCHAR(20),
    created_at TIMESTAMPTZ NOT NULL,
    execution_time_ms INTEGER,
    archived_at TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- ---------------------------------------------------------------------------------------------
-- 4. trust_metrics: CHECK ranges per metric_type (QA critical issue 3), and the daily rollup
-- ---------------------------------------------------------------------------------------------
CREATE TABLE trust_metrics (
    metric_id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    session_id UUID NOT NULL REFERENCES agent_sessions (session_id) ON DELETE CASCADE,
    metric_type VARCHAR(50) NOT NULL,
    metric_value DECIMAL(5, 2) NOT NULL,
    measurement_context JSONB,
    recorded_at TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT trust_metrics_metric_type_known CHECK (
        metric_type IN ('accuracy', 'autonomy', 'complexity', 'confidence')
    ),
    CONSTRAINT trust_metrics_accuracy_between_0_and_100 CHECK (
        metric_type <> 'accuracy' OR metric_value BETWEEN 0 AND 100
    ),
    CONSTRAINT trust_metrics_autonomy_between_0_and_4 CHECK (
        metric_type <> 'autonomy' OR metric_value BETWEEN 0 AND 4
    ),
    CONSTRAINT trust_metrics_complexity_between_1_and_10 CHECK (
        metric_type <> 'complexity' OR metric_value BETWEEN 1 AND 10
    ),
    CONSTRAINT trust_metrics_confidence_between_0_and_100 CHECK (
        metric_type <> 'confidence' OR metric_value BETWEEN 0 AND 100
    ),
    CONSTRAINT trust_metrics_measurement_context_is_object CHECK (
        measurement_context IS NULL OR jsonb_typeof(measurement_context) = 'object'
    )
);

CREATE TABLE trust_metrics_daily (
    session_id UUID NOT NULL REFERENCES agent_sessions (session_id) ON DELETE CASCADE,
    metric_type VARCHAR(50) NOT NULL,
    metric_date DATE NOT NULL,
    sample_count INTEGER NOT NULL,
    sum_value NUMERIC NOT NULL,
    min_value DECIMAL(5, 2) NOT NULL,
    max_value DECIMAL(5, 2) NOT NULL,
    avg_value NUMERIC GENERATED ALWAYS AS (round(sum_value / sample_count, 2)) STORED,
    PRIMARY KEY (session_id, metric_type, metric_date),
    CONSTRAINT trust_metrics_daily_sample_count_positive CHECK (sample_count > 0),
    CONSTRAINT trust_metrics_daily_min_not_above_max CHECK (min_value <= max_value)
);

-- The thresholds agentic_evaluate_trust_level applies, as data (README: Trust level progression).
CREATE TABLE trust_level_thresholds (
    trust_level INTEGER PRIMARY KEY,
    label VARCHAR(30) NOT NULL,
    min_approved_decisions INTEGER NOT NULL,
    min_approval_rate DECIMAL(5, 2) NOT NULL,
    CONSTRAINT trust_level_thresholds_trust_level_between_0_and_4 CHECK (trust_level BETWEEN 0 AND 4),
    CONSTRAINT trust_level_thresholds_min_approved_not_negative CHECK (min_approved_decisions >= 0),
    CONSTRAINT trust_level_thresholds_rate_between_0_and_100 CHECK (min_approval_rate BETWEEN 0 AND 100)
);

INSERT INTO trust_level_thresholds (trust_level, label, min_approved_decisions, min_approval_rate) VALUES
    (0, 'L0 suggest', 0, 0),
    (1, 'L1 assisted', 5, 80),
    (2, 'L2 supervised', 15, 85),
    (3, 'L3 trusted', 40, 90),
    (4, 'L4 autonomous', 100, 95);

-- ---------------------------------------------------------------------------------------------
-- 5. agent_knowledge: embedding is real[] here and becomes vector(1536) below when pgvector exists
-- ---------------------------------------------------------------------------------------------
CREATE TABLE agent_knowledge (
    knowledge_id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    agent_id UUID NOT NULL REFERENCES agents (agent_id) ON DELETE CASCADE,
    knowledge_type VARCHAR(50) NOT NULL,
    domain VARCHAR(100) NOT NULL,
    content JSONB NOT NULL,
    embedding REAL [],
    usage_count INTEGER NOT NULL DEFAULT 0,
    success_rate DECIMAL(3, 2),
    created_at TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
    last_used_at TIMESTAMPTZ,
    CONSTRAINT agent_knowledge_knowledge_type_known CHECK (knowledge_type IN ('pattern', 'solution', 'preference')),
    CONSTRAINT agent_knowledge_domain_not_blank CHECK (btrim(domain) <> ''),
    CONSTRAINT agent_knowledge_content_is_nonempty_object CHECK (
        jsonb_typeof(content) = 'object' AND content <> '{}'::jsonb
    ),
    CONSTRAINT agent_knowledge_embedding_has_1536_dimensions CHECK (
        embedding IS NULL OR (array_ndims(embedding) = 1 AND cardinality(embedding) = 1536)
    ),
    CONSTRAINT agent_knowledge_usage_count_not_negative CHECK (usage_count >= 0),
    CONSTRAINT agent_knowledge_success_rate_between_0_and_1 CHECK (success_rate BETWEEN 0 AND 1)
);

-- ---------------------------------------------------------------------------------------------
-- 6. conversation_history, partitioned by month (pg_partman). The primary key must contain the
--    partition key, and a foreign key cannot point at message_id alone, so parent_message_id is
--    checked by a trigger (agentic_check_parent_message).
-- ---------------------------------------------------------------------------------------------
CREATE TABLE conversation_history (
    message_id UUID NOT NULL DEFAULT gen_random_uuid(),
    session_id UUID NOT NULL REFERENCES agent_sessions (session_id) ON DELETE CASCADE,
    role VARCHAR(20) NOT NULL,
    content TEXT NOT NULL,
    message_type VARCHAR(30),
    parent_message_id UUID,
    created_at TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
    tokens_used INTEGER,
    model_used VARCHAR(50),
    PRIMARY KEY (message_id, created_at),
    CONSTRAINT conversation_history_role_known CHECK (role IN ('user', 'agent', 'system')),
    CONSTRAINT conversation_history_message_type_known CHECK (message_type IN ('text', 'code', 'command', 'file')),
    CONSTRAINT conversation_history_tokens_used_not_negative CHECK (tokens_used >= 0)
) PARTITION BY RANGE (created_at);

-- Messages older than the active window move here (agentic_archive_conversation_history).
CREATE TABLE conversation_history_archive (
    message_id UUID PRIMARY KEY,
    session_id UUID NOT NULL REFERENCES agent_sessions (session_id) ON DELETE CASCADE,
    role VARCHAR(20) NOT NULL,
    content TEXT NOT NULL,
    message_type VARCHAR(30),
    parent_message_id UUID,
    created_at TIMESTAMPTZ NOT NULL,
    tokens_used INTEGER,
    model_used VARCHAR(50),
    archived_at TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- ---------------------------------------------------------------------------------------------
-- 7. agent_audit_log: RESTRICT on every foreign key, append-only (trigger + privileges below)
-- ---------------------------------------------------------------------------------------------
CREATE TABLE agent_audit_log (
    audit_id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    agent_id UUID REFERENCES agents (agent_id) ON DELETE RESTRICT,
    session_id UUID REFERENCES agent_sessions (session_id) ON DELETE RESTRICT,
    action_type VARCHAR(50) NOT NULL,
    action_details JSONB NOT NULL,
    risk_level VARCHAR(20),
    user_id UUID REFERENCES users (user_id) ON DELETE RESTRICT,
    "timestamp" TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
    ip_address INET,
    user_agent TEXT,
    CONSTRAINT agent_audit_log_action_type_not_blank CHECK (btrim(action_type) <> ''),
    CONSTRAINT agent_audit_log_action_details_is_object CHECK (jsonb_typeof(action_details) = 'object'),
    CONSTRAINT agent_audit_log_risk_level_known CHECK (risk_level IN ('low', 'medium', 'high', 'critical'))
);

-- ---------------------------------------------------------------------------------------------
-- Indexes: the story's Performance Considerations and the QA review's missing indexes
-- ---------------------------------------------------------------------------------------------
CREATE INDEX idx_agents_persona_type_active ON agents (persona_type) WHERE is_active;
CREATE INDEX idx_agents_capabilities ON agents USING gin (capabilities);

CREATE INDEX idx_agent_sessions_agent_id_started_at ON agent_sessions (agent_id, started_at);
CREATE INDEX idx_agent_sessions_user_id ON agent_sessions (user_id);
CREATE INDEX idx_agent_sessions_user_id_active ON agent_sessions (user_id, started_at)
    WHERE session_state = 'active';
CREATE INDEX idx_agent_sessions_context ON agent_sessions USING gin (context jsonb_path_ops);

CREATE INDEX idx_agent_decisions_session_id_created_at ON agent_decisions (session_id, created_at);
CREATE INDEX idx_agent_decisions_decision_type ON agent_decisions (decision_type);
CREATE INDEX idx_agent_decisions_created_at ON agent_decisions (created_at);
CREATE INDEX idx_agent_decisions_input_context ON agent_decisions USING gin (input_context jsonb_path_ops);
CREATE INDEX idx_agent_decisions_archive_session_id_created_at
    ON agent_decisions_archive (session_id, created_at);
CREATE INDEX idx_agent_decisions_archive_created_at ON agent_decisions_archive (created_at);

CREATE INDEX idx_trust_metrics_session_id_metric_type_recorded_at
    ON trust_metrics (session_id, metric_type, recorded_at);
CREATE INDEX idx_trust_metrics_recorded_at ON trust_metrics (recorded_at);
CREATE INDEX idx_trust_metrics_daily_metric_date ON trust_metrics_daily (metric_date);

CREATE INDEX idx_agent_knowledge_agent_id_created_at ON agent_knowledge (agent_id, created_at);
CREATE INDEX idx_agent_knowledge_knowledge_type_domain ON agent_knowledge (knowledge_type, domain);
CREATE INDEX idx_agent_knowledge_content ON agent_knowledge USING gin (content jsonb_path_ops);

CREATE INDEX idx_conversation_history_session_id_created_at ON conversation_history (session_id, created_at);
CREATE INDEX idx_conversation_history_created_at ON conversation_history (created_at);
CREATE INDEX idx_conversation_history_archive_session_id_created_at
    ON conversation_history_archive (session_id, created_at);
CREATE INDEX idx_conversation_history_archive_created_at ON conversation_history_archive (created_at);

CREATE INDEX idx_agent_audit_log_agent_id_timestamp ON agent_audit_log (agent_id, "timestamp");
CREATE INDEX idx_agent_audit_log_session_id ON agent_audit_log (session_id);
CREATE INDEX idx_agent_audit_log_user_id ON agent_audit_log (user_id);
CREATE INDEX idx_agent_audit_log_risk_level ON agent_audit_log (risk_level);
CREATE INDEX idx_agent_audit_log_timestamp ON agent_audit_log ("timestamp");
CREATE INDEX idx_agent_audit_log_action_details ON agent_audit_log USING gin (action_details jsonb_path_ops);

-- ---------------------------------------------------------------------------------------------
-- Embeddings: vector(1536) + IVFFLAT where pgvector exists, else the real[] column stays.
-- ---------------------------------------------------------------------------------------------
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'vector')
        AND EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'vector') THEN
        BEGIN
            CREATE EXTENSION vector;
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE NOTICE 'agent_knowledge.embedding: pgvector is available but this role cannot create it; using real[]';
        END;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'vector') THEN
        ALTER TABLE agent_knowledge DROP CONSTRAINT agent_knowledge_embedding_has_1536_dimensions;
        ALTER TABLE agent_knowledge ALTER COLUMN embedding TYPE vector(1536) USING embedding::vector(1536);
        CREATE INDEX idx_agent_knowledge_embedding ON agent_knowledge
            USING ivfflat (embedding vector_cosine_ops) WITH (lists = 100);
    END IF;
END
$$;

-- ---------------------------------------------------------------------------------------------
-- Optimistic locking: every UPDATE of agents / agent_sessions must set version = <read> + 1.
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION agentic_check_row_version() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF NEW.version IS DISTINCT FROM OLD.version + 1 THEN
        RAISE EXCEPTION '%.version: stale version, the row is at version % so an update must set version = %, got %',
            TG_TABLE_NAME, OLD.version, OLD.version + 1, NEW.version
            USING ERRCODE = 'serialization_failure',
                HINT = 'Re-read the row and update with SET version = <version read> + 1 WHERE version = <version read>.';
    END IF;
    RETURN NEW;
END
$$;

CREATE FUNCTION agentic_touch_updated_at() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    NEW.updated_at := CURRENT_TIMESTAMP;
    RETURN NEW;
END
$$;

CREATE FUNCTION agentic_stamp_session_end() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF NEW.session_state = 'completed' AND NEW.ended_at IS NULL THEN
        NEW.ended_at := CURRENT_TIMESTAMP;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER agents_check_version BEFORE UPDATE ON agents
    FOR EACH ROW EXECUTE FUNCTION agentic_check_row_version();
CREATE TRIGGER agents_touch_updated_at BEFORE UPDATE ON agents
    FOR EACH ROW EXECUTE FUNCTION agentic_touch_updated_at();
CREATE TRIGGER agent_sessions_check_version BEFORE UPDATE ON agent_sessions
    FOR EACH ROW EXECUTE FUNCTION agentic_check_row_version();
CREATE TRIGGER agent_sessions_stamp_end BEFORE UPDATE ON agent_sessions
    FOR EACH ROW EXECUTE FUNCTION agentic_stamp_session_end();

-- ---------------------------------------------------------------------------------------------
-- Expired or closed sessions cannot be used: new decisions and messages need an active session.
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION agentic_require_usable_session() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_state text;
    v_expires_at timestamptz;
BEGIN
    -- TG_ARGV[0] is the table name to report: on a partition TG_TABLE_NAME is the child's name.
    SELECT s.session_state, s.expires_at INTO v_state, v_expires_at
    FROM agent_sessions AS s
    WHERE s.session_id = NEW.session_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION '%.session_id: session % does not exist', TG_ARGV[0], NEW.session_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF v_expires_at <= CURRENT_TIMESTAMP THEN
        RAISE EXCEPTION '%.session_id: session % expired at %', TG_ARGV[0], NEW.session_id, v_expires_at
            USING ERRCODE = 'object_not_in_prerequisite_state',
                HINT = 'Start a new session; an expired session accepts no decisions or messages.';
    END IF;
    IF v_state <> 'active' THEN
        RAISE EXCEPTION '%.session_id: session % is %, only active sessions accept new rows',
            TG_ARGV[0], NEW.session_id, v_state
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER agent_decisions_require_usable_session BEFORE INSERT ON agent_decisions
    FOR EACH ROW EXECUTE FUNCTION agentic_require_usable_session('agent_decisions');
CREATE TRIGGER conversation_history_require_usable_session BEFORE INSERT ON conversation_history
    FOR EACH ROW EXECUTE FUNCTION agentic_require_usable_session('conversation_history');

CREATE FUNCTION agentic_check_parent_message() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF NEW.parent_message_id IS NOT NULL
        AND NOT EXISTS (
            SELECT 1 FROM conversation_history AS m
            WHERE m.message_id = NEW.parent_message_id AND m.session_id = NEW.session_id
        )
        AND NOT EXISTS (
            SELECT 1 FROM conversation_history_archive AS a
            WHERE a.message_id = NEW.parent_message_id AND a.session_id = NEW.session_id
        ) THEN
        RAISE EXCEPTION 'conversation_history.parent_message_id: message % is not in session %',
            NEW.parent_message_id, NEW.session_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER conversation_history_check_parent BEFORE INSERT ON conversation_history
    FOR EACH ROW EXECUTE FUNCTION agentic_check_parent_message();

-- ---------------------------------------------------------------------------------------------
-- Audit trail: every decision is logged; the log is append-only.
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION agentic_audit_decision() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    INSERT INTO agent_audit_log (agent_id, session_id, action_type, action_details, risk_level, user_id)
    SELECT s.agent_id, s.session_id, 'decision',
        jsonb_build_object(
            'decision_id', NEW.decision_id,
            'decision_type', NEW.decision_type,
            'action_type', NEW.action_taken ->> 'type',
            'confidence_score', NEW.confidence_score
        ),
        COALESCE(NEW.action_taken ->> 'risk_level', 'low'),
        s.user_id
    FROM agent_sessions AS s
    WHERE s.session_id = NEW.session_id;
    RETURN NULL;
END
$$;

CREATE TRIGGER agent_decisions_audit AFTER INSERT ON agent_decisions
    FOR EACH ROW EXECUTE FUNCTION agentic_audit_decision();

-- Rejects every UPDATE, DELETE and TRUNCATE, for every role including the owner. The one
-- exception is agentic_purge_audit_log, which sets the transaction-local agentic.audit_purge_before
-- and may delete only rows older than that cut-off.
CREATE FUNCTION agentic_audit_log_append_only() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_cutoff timestamptz;
BEGIN
    IF TG_OP = 'DELETE' THEN
        v_cutoff := NULLIF(current_setting('agentic.audit_purge_before', true), '')::timestamptz;
        IF v_cutoff IS NOT NULL AND OLD."timestamp" < v_cutoff THEN
            RETURN OLD;
        END IF;
    END IF;
    RAISE EXCEPTION 'agent_audit_log is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege',
            HINT = 'Audit rows are removed only by retention, through agentic_purge_audit_log(retention_days).';
END
$$;

CREATE TRIGGER agent_audit_log_append_only BEFORE UPDATE OR DELETE ON agent_audit_log
    FOR EACH ROW EXECUTE FUNCTION agentic_audit_log_append_only();
CREATE TRIGGER agent_audit_log_no_truncate BEFORE TRUNCATE ON agent_audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION agentic_audit_log_append_only();

-- ---------------------------------------------------------------------------------------------
-- Trust level progression L0-L4 (thresholds in trust_level_thresholds, rules in the README)
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION agentic_evaluate_trust_level(p_session_id uuid) RETURNS integer
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_current integer;
    v_approved integer;
    v_rated integer;
    v_rate numeric;
    v_accuracy numeric;
    v_earned integer;
    v_new integer;
BEGIN
    SELECT s.trust_level INTO v_current
    FROM agent_sessions AS s
    WHERE s.session_id = p_session_id
    FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'agentic_evaluate_trust_level: session % does not exist', p_session_id
            USING ERRCODE = 'no_data_found';
    END IF;

    SELECT count(*) FILTER (WHERE d.user_feedback = 'approved'), count(d.user_feedback)
    INTO v_approved, v_rated
    FROM agent_decisions AS d
    WHERE d.session_id = p_session_id;
    v_rate := CASE WHEN v_rated > 0 THEN round(100.0 * v_approved / v_rated, 2) ELSE 0 END;

    -- Externally measured accuracy (last 30 days), when any was recorded, must also meet the rate.
    SELECT avg(m.metric_value) INTO v_accuracy
    FROM trust_metrics AS m
    WHERE m.session_id = p_session_id
        AND m.metric_type = 'accuracy'
        AND m.recorded_at > CURRENT_TIMESTAMP - INTERVAL '30 days';

    SELECT max(t.trust_level) INTO v_earned
    FROM trust_level_thresholds AS t
    WHERE v_approved >= t.min_approved_decisions
        AND v_rate >= t.min_approval_rate
        AND (v_accuracy IS NULL OR v_accuracy >= t.min_approval_rate);
    v_earned := COALESCE(v_earned, 0);

    -- Rise one level per evaluation; fall straight to the level still earned.
    v_new := CASE WHEN v_earned > v_current THEN v_current + 1 ELSE v_earned END;

    IF v_new <> v_current THEN
        UPDATE agent_sessions
        SET trust_level = v_new, version = version + 1
        WHERE session_id = p_session_id;
    END IF;

    INSERT INTO trust_metrics (session_id, metric_type, metric_value, measurement_context)
    VALUES
        (p_session_id, 'autonomy', v_new, jsonb_build_object(
            'source', 'agentic_evaluate_trust_level', 'previous_level', v_current,
            'approved_decisions', v_approved, 'rated_decisions', v_rated)),
        (p_session_id, 'confidence', v_rate, jsonb_build_object(
            'source', 'agentic_evaluate_trust_level', 'approved_decisions', v_approved,
            'rated_decisions', v_rated));
    RETURN v_new;
END
$$;

-- ---------------------------------------------------------------------------------------------
-- Retention (pg_cron jobs in sql/agentic/cron.yaml call these with numbers from settings)
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION agentic_require_days(p_name text, p_days integer) RETURNS void
    LANGUAGE plpgsql IMMUTABLE
    AS $$
BEGIN
    IF p_days IS NULL OR p_days < 1 THEN
        RAISE EXCEPTION '%: must be a whole number of days >= 1, got %', p_name, p_days
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END
$$;

CREATE FUNCTION agentic_archive_conversation_history(p_active_days integer, p_archive_days integer)
    RETURNS TABLE (archived_rows bigint, deleted_rows bigint)
    LANGUAGE plpgsql
    AS $$
BEGIN
    PERFORM agentic_require_days('p_active_days', p_active_days);
    PERFORM agentic_require_days('p_archive_days', p_archive_days);
    IF p_archive_days < p_active_days THEN
        RAISE EXCEPTION 'p_archive_days (%) must be >= p_active_days (%)', p_archive_days, p_active_days
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    WITH moved AS (
        DELETE FROM conversation_history
        WHERE created_at < CURRENT_TIMESTAMP - make_interval(days => p_active_days)
        RETURNING message_id, session_id, role, content, message_type, parent_message_id,
            created_at, tokens_used, model_used
    )
    INSERT INTO conversation_history_archive (message_id, session_id, role, content, message_type,
        parent_message_id, created_at, tokens_used, model_used)
    SELECT message_id, session_id, role, content, message_type, parent_message_id,
        created_at, tokens_used, model_used
    FROM moved;
    GET DIAGNOSTICS archived_rows = ROW_COUNT;

    DELETE FROM conversation_history_archive
    WHERE created_at < CURRENT_TIMESTAMP - make_interval(days => p_archive_days);
    GET DIAGNOSTICS deleted_rows = ROW_COUNT;
    RETURN NEXT;
END
$$;

CREATE FUNCTION agentic_archive_decisions(p_active_days integer, p_archive_days integer)
    RETURNS TABLE (archived_rows bigint, deleted_rows bigint)
    LANGUAGE plpgsql
    AS $$
BEGIN
    PERFORM agentic_require_days('p_active_days', p_active_days);
    PERFORM agentic_require_days('p_archive_days', p_archive_days);
    IF p_archive_days < p_active_days THEN
        RAISE EXCEPTION 'p_archive_days (%) must be >= p_active_days (%)', p_archive_days, p_active_days
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    WITH moved AS (
        DELETE FROM agent_decisions
        WHERE created_at < CURRENT_TIMESTAMP - make_interval(days => p_active_days)
        RETURNING decision_id, session_id, decision_type, input_context, decision_rationale,
            action_taken, confidence_score, user_feedback, created_at, execution_time_ms
    )
    INSERT INTO agent_decisions_archive (decision_id, session_id, decision_type, input_context,
        decision_rationale, action_taken, confidence_score, user_feedback, created_at, execution_time_ms)
    SELECT decision_id, session_id, decision_type, input_context, decision_rationale,
        action_taken, confidence_score, user_feedback, created_at, execution_time_ms
    FROM moved;
    GET DIAGNOSTICS archived_rows = ROW_COUNT;

    DELETE FROM agent_decisions_archive
    WHERE created_at < CURRENT_TIMESTAMP - make_interval(days => p_archive_days);
    GET DIAGNOSTICS deleted_rows = ROW_COUNT;
    RETURN NEXT;
END
$$;

-- The only delete the audit log accepts. SECURITY DEFINER so the cron job and an operator can run
-- it without DELETE on the table; EXECUTE is revoked from everyone but the owner below.
CREATE FUNCTION agentic_purge_audit_log(p_retention_days integer) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = public, pg_temp
    AS $$
DECLARE
    v_cutoff timestamptz;
    v_deleted bigint;
BEGIN
    PERFORM agentic_require_days('p_retention_days', p_retention_days);
    v_cutoff := CURRENT_TIMESTAMP - make_interval(days => p_retention_days);
    PERFORM set_config('agentic.audit_purge_before', v_cutoff::text, true);
    DELETE FROM agent_audit_log WHERE "timestamp" < v_cutoff;
    GET DIAGNOSTICS v_deleted = ROW_COUNT;
    PERFORM set_config('agentic.audit_purge_before', '', true);
    RETURN v_deleted;
END
$$;

CREATE FUNCTION agentic_rollup_trust_metrics(p_after_days integer)
    RETURNS TABLE (rolled_up_rows bigint, daily_rows bigint)
    LANGUAGE plpgsql
    AS $$
BEGIN
    PERFORM agentic_require_days('p_after_days', p_after_days);
    WITH moved AS (
        DELETE FROM trust_metrics
        WHERE recorded_at < CURRENT_TIMESTAMP - make_interval(days => p_after_days)
        RETURNING session_id, metric_type, metric_value, recorded_at
    ),
    merged AS (
        INSERT INTO trust_metrics_daily AS d (session_id, metric_type, metric_date, sample_count,
            sum_value, min_value, max_value)
        SELECT session_id, metric_type, (recorded_at AT TIME ZONE 'UTC')::date, count(*),
            sum(metric_value), min(metric_value), max(metric_value)
        FROM moved
        GROUP BY 1, 2, 3
        ON CONFLICT (session_id, metric_type, metric_date) DO UPDATE
        SET sample_count = d.sample_count + EXCLUDED.sample_count,
            sum_value = d.sum_value + EXCLUDED.sum_value,
            min_value = LEAST(d.min_value, EXCLUDED.min_value),
            max_value = GREATEST(d.max_value, EXCLUDED.max_value)
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM moved), (SELECT count(*) FROM merged)
    INTO rolled_up_rows, daily_rows;
    RETURN NEXT;
END
$$;

-- ---------------------------------------------------------------------------------------------
-- Monthly partitions with pg_partman 4.x (PostgreSQL 15, Debian) or 5.x (containers).
-- Partitions are reached only through the parent, where RLS applies: the app and readonly roles
-- lose their default privileges on every child, here and after each maintenance run.
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION agentic_restrict_partition_privileges() RETURNS integer
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_child regclass;
    v_count integer := 0;
BEGIN
    FOR v_child IN
        SELECT i.inhrelid::regclass FROM pg_inherits AS i
        WHERE i.inhparent = 'public.conversation_history'::regclass
    LOOP
        EXECUTE format('REVOKE ALL ON TABLE %s FROM agentic_app, agentic_readonly', v_child);
        v_count := v_count + 1;
    END LOOP;
    RETURN v_count;
END
$$;

-- Without pg_partman (a managed server that does not offer it), the same monthly partitions as
-- pg_partman 4 makes (named <table>_pYYYY_MM, months in UTC, plus <table>_default), premade
-- agentdb_partitions.premake_months behind and ahead of the current month; partitions ending more
-- than retention_months ago are detached (none here: rows leave through the archive functions).
CREATE FUNCTION agentic_maintain_partitions() RETURNS integer
    LANGUAGE plpgsql
    SET search_path = public, pg_temp
    AS $$
DECLARE
    v_this_month timestamp := date_trunc('month', now() AT TIME ZONE 'UTC');
    v_config record;
    v_step integer;
    v_child text;
    v_old_child regclass;
    v_changed integer := 0;
BEGIN
    IF to_regclass('public.agentdb_partitions') IS NULL THEN
        RETURN 0;  -- pg_partman keeps the partitions
    END IF;
    FOR v_config IN
        SELECT parent_table, premake_months, retention_months FROM agentdb_partitions ORDER BY parent_table
    LOOP
        IF NOT EXISTS (
            SELECT 1 FROM pg_partitioned_table
            WHERE partrelid = v_config.parent_table::regclass AND partdefid <> 0
        ) THEN
            EXECUTE format('CREATE TABLE %I PARTITION OF %I DEFAULT', v_config.parent_table || '_default',
                v_config.parent_table);
            v_changed := v_changed + 1;
        END IF;
        FOR v_step IN -v_config.premake_months .. v_config.premake_months LOOP
            v_child := v_config.parent_table || '_p'
                || to_char(v_this_month + make_interval(months => v_step), 'YYYY_MM');
            IF to_regclass(v_child) IS NULL THEN
                EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)', v_child,
                    v_config.parent_table, (v_this_month + make_interval(months => v_step)) AT TIME ZONE 'UTC',
                    (v_this_month + make_interval(months => v_step + 1)) AT TIME ZONE 'UTC');
                v_changed := v_changed + 1;
            END IF;
        END LOOP;
        IF v_config.retention_months IS NOT NULL THEN
            FOR v_old_child IN
                SELECT bounds.child FROM (
                    SELECT i.inhrelid::regclass AS child,
                        (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \(''([^'']+)''\)'))[1]::timestamptz
                            AS upper_bound
                    FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid
                    WHERE i.inhparent = v_config.parent_table::regclass
                ) AS bounds
                WHERE bounds.upper_bound <= now() - make_interval(months => v_config.retention_months)
            LOOP
                EXECUTE format('ALTER TABLE %I DETACH PARTITION %s', v_config.parent_table, v_old_child);
                v_changed := v_changed + 1;
            END LOOP;
        END IF;
    END LOOP;
    RETURN v_changed;
END
$$;

CREATE FUNCTION agentic_run_partition_maintenance() RETURNS integer
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF to_regclass('public.agentdb_partitions') IS NOT NULL THEN
        PERFORM agentic_maintain_partitions();  -- no pg_partman in this database
    ELSE
        PERFORM partman.run_maintenance('public.conversation_history');
    END IF;
    RETURN agentic_restrict_partition_privileges();
END
$$;

DO $$
DECLARE
    v_major integer;
BEGIN
    SELECT split_part(extversion, '.', 1)::integer INTO v_major FROM pg_extension WHERE extname = 'pg_partman';
    IF v_major IS NULL THEN
        CREATE TABLE agentdb_partitions (
            parent_table text PRIMARY KEY,
            premake_months integer NOT NULL,
            retention_months integer,
            CONSTRAINT agentdb_partitions_premake_months_positive CHECK (premake_months > 0),
            CONSTRAINT agentdb_partitions_retention_months_positive CHECK (retention_months > 0)
        );
        INSERT INTO agentdb_partitions (parent_table, premake_months) VALUES ('conversation_history', 4);
        -- The migrations write premake_months (agentdb:partitionPremakeMonths); nobody else writes here.
        REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON agentdb_partitions FROM agentic_app;
        PERFORM agentic_maintain_partitions();
        PERFORM agentic_restrict_partition_privileges();
        RETURN;
    ELSIF v_major >= 5 THEN
        PERFORM partman.create_parent(
            p_parent_table => 'public.conversation_history', p_control => 'created_at',
            p_interval => '1 month', p_type => 'range', p_premake => 4);
    ELSE
        PERFORM partman.create_parent(
            p_parent_table => 'public.conversation_history', p_control => 'created_at',
            p_type => 'native', p_interval => 'monthly', p_premake => 4);
    END IF;
    -- Rows leave through agentic_archive_conversation_history, never by dropping a partition.
    UPDATE partman.part_config
    SET retention = NULL, retention_keep_table = true
    WHERE parent_table = 'public.conversation_history';
    PERFORM agentic_restrict_partition_privileges();
END
$$;

-- ---------------------------------------------------------------------------------------------
-- Privileges beyond the baseline's defaults
-- ---------------------------------------------------------------------------------------------
REVOKE UPDATE, DELETE, TRUNCATE ON agent_audit_log FROM agentic_app;
REVOKE INSERT, UPDATE, DELETE ON schema_versions, trust_level_thresholds FROM agentic_app;
REVOKE INSERT, UPDATE, DELETE ON conversation_history_archive, agent_decisions_archive, trust_metrics_daily
    FROM agentic_app;
REVOKE EXECUTE ON FUNCTION
    agentic_purge_audit_log(integer),
    agentic_archive_conversation_history(integer, integer),
    agentic_archive_decisions(integer, integer),
    agentic_rollup_trust_metrics(integer),
    agentic_run_partition_maintenance(),
    agentic_maintain_partitions(),
    agentic_restrict_partition_privileges()
    FROM PUBLIC, agentic_app, agentic_readonly;

-- ---------------------------------------------------------------------------------------------
-- Row-level security: a tenant is a user; the app sees only its current user's rows.
-- Shared catalogues (agents, agent_knowledge, thresholds, schema_versions) have no RLS.
-- The owner (migrations, pg_cron retention) is not subject to RLS: no FORCE (see README).
-- ---------------------------------------------------------------------------------------------
ALTER TABLE users ENABLE ROW LEVEL SECURITY;
CREATE POLICY users_tenant ON users TO agentic_app
    USING (user_id = agentic_current_user_id())
    WITH CHECK (user_id = agentic_current_user_id());
CREATE POLICY users_readonly ON users FOR SELECT TO agentic_readonly USING (true);

ALTER TABLE agent_sessions ENABLE ROW LEVEL SECURITY;
CREATE POLICY agent_sessions_tenant ON agent_sessions TO agentic_app
    USING (user_id = agentic_current_user_id())
    WITH CHECK (user_id = agentic_current_user_id());
CREATE POLICY agent_sessions_readonly ON agent_sessions FOR SELECT TO agentic_readonly USING (true);

ALTER TABLE agent_decisions ENABLE ROW LEVEL SECURITY;
CREATE POLICY agent_decisions_tenant ON agent_decisions TO agentic_app
    USING (EXISTS (SELECT 1 FROM agent_sessions AS s
        WHERE s.session_id = agent_decisions.session_id AND s.user_id = agentic_current_user_id()))
    WITH CHECK (EXISTS (SELECT 1 FROM agent_sessions AS s
        WHERE s.session_id = agent_decisions.session_id AND s.user_id = agentic_current_user_id()));
CREATE POLICY agent_decisions_readonly ON agent_decisions FOR SELECT TO agentic_readonly USING (true);

ALTER TABLE agent_decisions_archive ENABLE ROW LEVEL SECURITY;
CREATE POLICY agent_decisions_archive_tenant ON agent_decisions_archive FOR SELECT TO agentic_app
    USING (EXISTS (SELECT 1 FROM agent_sessions AS s
        WHERE s.session_id = agent_decisions_archive.session_id AND s.user_id = agentic_current_user_id()));
CREATE POLICY agent_decisions_archive_readonly ON agent_decisions_archive FOR SELECT TO agentic_readonly
    USING (true);

ALTER TABLE trust_metrics ENABLE ROW LEVEL SECURITY;
CREATE POLICY trust_metrics_tenant ON trust_metrics TO agentic_app
    USING (EXISTS (SELECT 1 FROM agent_sessions AS s
        WHERE s.session_id = trust_metrics.session_id AND s.user_id = agentic_current_user_id()))
    WITH CHECK (EXISTS (SELECT 1 FROM agent_sessions AS s
        WHERE s.session_id = trust_metrics.session_id AND s.user_id = agentic_current_user_id()));
CREATE POLICY trust_metrics_readonly ON trust_metrics FOR SELECT TO agentic_readonly USING (true);

ALTER TABLE trust_metrics_daily ENABLE ROW LEVEL SECURITY;
CREATE POLICY trust_metrics_daily_tenant ON trust_metrics_daily FOR SELECT TO agentic_app
    USING (EXISTS (SELECT 1 FROM agent_sessions AS s
        WHERE s.session_id = trust_metrics_daily.session_id AND s.user_id = agentic_current_user_id()));
CREATE POLICY trust_metrics_daily_readonly ON trust_metrics_daily FOR SELECT TO agentic_readonly USING (true);

ALTER TABLE conversation_history ENABLE ROW LEVEL SECURITY;
CREATE POLICY conversation_history_tenant ON conversation_history TO agentic_app
    USING (EXISTS (SELECT 1 FROM agent_sessions AS s
        WHERE s.session_id = conversation_history.session_id AND s.user_id = agentic_current_user_id()))
    WITH CHECK (EXISTS (SELECT 1 FROM agent_sessions AS s
        WHERE s.session_id = conversation_history.session_id AND s.user_id = agentic_current_user_id()));
CREATE POLICY conversation_history_readonly ON conversation_history FOR SELECT TO agentic_readonly USING (true);

ALTER TABLE conversation_history_archive ENABLE ROW LEVEL SECURITY;
CREATE POLICY conversation_history_archive_tenant ON conversation_history_archive FOR SELECT TO agentic_app
    USING (EXISTS (SELECT 1 FROM agent_sessions AS s
        WHERE s.session_id = conversation_history_archive.session_id AND s.user_id = agentic_current_user_id()));
CREATE POLICY conversation_history_archive_readonly ON conversation_history_archive FOR SELECT
    TO agentic_readonly USING (true);

ALTER TABLE agent_audit_log ENABLE ROW LEVEL SECURITY;
CREATE POLICY agent_audit_log_tenant_read ON agent_audit_log FOR SELECT TO agentic_app
    USING (user_id = agentic_current_user_id());
CREATE POLICY agent_audit_log_tenant_insert ON agent_audit_log FOR INSERT TO agentic_app
    WITH CHECK (user_id = agentic_current_user_id());
CREATE POLICY agent_audit_log_readonly ON agent_audit_log FOR SELECT TO agentic_readonly USING (true);

-- ---------------------------------------------------------------------------------------------
INSERT INTO schema_versions (version, description)
VALUES ('0001', 'Agentic schema, story S0-1.1 with the QA review fixes');
