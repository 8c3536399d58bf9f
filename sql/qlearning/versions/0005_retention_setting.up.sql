-- The Q-learning TTL follows agentdb:retentionDays (seed 000, "Data Retention (TTL)": 30 days by
-- default). The value lives in a one-row table that `agentdb up` / `agentdb migrate` (and the Pulumi
-- migrations resource) write in the migration's transaction (infra/migrations.py), so a changed value
-- needs no new revision. The column defaults and both upserts read it through a STABLE function, so
-- every session sees a new value at its next statement, pooled PgBouncer connections included.

CREATE TABLE agentdb_settings (
    is_singleton   BOOLEAN PRIMARY KEY DEFAULT true,
    retention_days INTEGER NOT NULL DEFAULT 30,
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT agentdb_settings_is_singleton CHECK (is_singleton),
    CONSTRAINT agentdb_settings_retention_days_range CHECK (retention_days BETWEEN 1 AND 36500)
);

-- The seed's 30 days until the migrate path writes the stack's value, in the same transaction.
INSERT INTO agentdb_settings (is_singleton) VALUES (true);

-- Only the owner (the migrate path) writes it; the app and readonly roles read it through the function.
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON agentdb_settings FROM qlearning_app;

-- PL/pgSQL, not SQL: a SQL function that reads a table is not inlined and is planned again in every
-- statement that calls it (40-75 us more per upsert, measured), while PL/pgSQL keeps its plan for the
-- session. The table is schema-qualified: a client's search_path must not change what the TTL is.
CREATE FUNCTION agentdb_retention_interval() RETURNS INTERVAL
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
BEGIN
    RETURN (SELECT make_interval(days => s.retention_days) FROM public.agentdb_settings AS s);
END;
$$;

ALTER TABLE q_values ALTER COLUMN expires_at SET DEFAULT now() + agentdb_retention_interval();
ALTER TABLE trajectories ALTER COLUMN expires_at SET DEFAULT now() + agentdb_retention_interval();
ALTER TABLE patterns ALTER COLUMN expires_at SET DEFAULT now() + agentdb_retention_interval();

-- The two upserts of 0003, refreshing expires_at with the setting instead of 30 days.
CREATE OR REPLACE FUNCTION upsert_q_value(
    p_agent_type  VARCHAR,
    p_state_hash  VARCHAR,
    p_state_data  JSONB,
    p_action_hash VARCHAR,
    p_action_data JSONB,
    p_q_value     DOUBLE PRECISION,
    p_session_id  UUID DEFAULT NULL
) RETURNS BIGINT
LANGUAGE plpgsql AS $$
DECLARE
    v_id BIGINT;
BEGIN
    IF p_agent_type IS NULL OR btrim(p_agent_type) = '' THEN
        RAISE EXCEPTION 'upsert_q_value: agent_type must not be NULL or empty'
            USING ERRCODE = 'not_null_violation';
    END IF;
    IF p_state_hash IS NULL OR btrim(p_state_hash) = '' THEN
        RAISE EXCEPTION 'upsert_q_value: state_hash must not be NULL or empty'
            USING ERRCODE = 'not_null_violation';
    END IF;
    IF p_action_hash IS NULL OR btrim(p_action_hash) = '' THEN
        RAISE EXCEPTION 'upsert_q_value: action_hash must not be NULL or empty'
            USING ERRCODE = 'not_null_violation';
    END IF;
    IF p_q_value IS NULL OR p_q_value IN ('NaN', 'Infinity', '-Infinity') THEN
        RAISE EXCEPTION 'upsert_q_value: q_value must be a finite number, got %', p_q_value
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF abs(p_q_value) >= 1e6 THEN
        RAISE EXCEPTION 'upsert_q_value: q_value must be between -10^6 and 10^6 (NUMERIC(12,6)), got %', p_q_value
            USING ERRCODE = 'numeric_value_out_of_range';
    END IF;
    PERFORM 1 FROM agent_types WHERE agent_type = p_agent_type;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'upsert_q_value: unknown agent_type "%" (not in agent_types)', p_agent_type
            USING ERRCODE = 'foreign_key_violation';
    END IF;

    INSERT INTO q_values AS q (
        agent_type, session_id, state_hash, state_data, action_hash, action_data,
        q_value, visit_count, confidence_score, uncertainty
    ) VALUES (
        p_agent_type, p_session_id, p_state_hash, COALESCE(p_state_data, '{}'),
        p_action_hash, COALESCE(p_action_data, '{}'), p_q_value, 1, 0.5, 1
    )
    ON CONFLICT (agent_type, state_hash, action_hash) DO UPDATE
    SET q_value          = EXCLUDED.q_value,
        state_data       = COALESCE(p_state_data, q.state_data),
        action_data      = COALESCE(p_action_data, q.action_data),
        session_id       = COALESCE(p_session_id, q.session_id),
        visit_count      = q.visit_count + 1,
        -- confidence grows and uncertainty shrinks with the number of visits n: n/(n+1), 1/sqrt(n)
        confidence_score = round((q.visit_count + 1)::numeric / (q.visit_count + 2), 4),
        uncertainty      = round(1 / sqrt((q.visit_count + 1)::numeric), 4),
        last_updated     = now(),
        expires_at       = now() + agentdb_retention_interval()
    RETURNING q.q_value_id INTO v_id;
    RETURN v_id;
END;
$$;

CREATE OR REPLACE FUNCTION q_learning_update(
    p_agent_type      VARCHAR,
    p_state_hash      VARCHAR,
    p_action_hash     VARCHAR,
    p_reward          DOUBLE PRECISION,
    p_next_state_hash VARCHAR
) RETURNS NUMERIC
LANGUAGE plpgsql AS $$
DECLARE
    v_alpha    NUMERIC;
    v_gamma    NUMERIC;
    v_max_next NUMERIC;
    v_reward   NUMERIC;
    v_q        NUMERIC;
BEGIN
    IF p_agent_type IS NULL OR btrim(p_agent_type) = '' THEN
        RAISE EXCEPTION 'q_learning_update: agent_type must not be NULL or empty'
            USING ERRCODE = 'not_null_violation';
    END IF;
    IF p_state_hash IS NULL OR btrim(p_state_hash) = '' THEN
        RAISE EXCEPTION 'q_learning_update: state_hash must not be NULL or empty'
            USING ERRCODE = 'not_null_violation';
    END IF;
    IF p_action_hash IS NULL OR btrim(p_action_hash) = '' THEN
        RAISE EXCEPTION 'q_learning_update: action_hash must not be NULL or empty'
            USING ERRCODE = 'not_null_violation';
    END IF;
    IF btrim(p_next_state_hash) = '' THEN
        RAISE EXCEPTION 'q_learning_update: next_state_hash must be NULL (terminal) or non-empty'
            USING ERRCODE = 'check_violation';
    END IF;
    IF p_reward IS NULL OR p_reward IN ('NaN', 'Infinity', '-Infinity') THEN
        RAISE EXCEPTION 'q_learning_update: reward must be a finite number, got %', p_reward
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF abs(p_reward) >= 1e6 THEN
        RAISE EXCEPTION 'q_learning_update: reward must be between -10^6 and 10^6, got %', p_reward
            USING ERRCODE = 'numeric_value_out_of_range';
    END IF;

    v_reward := p_reward::NUMERIC;  -- exact arithmetic from here on (float8 -> numeric keeps 15 digits)

    SELECT learning_rate, discount_factor INTO v_alpha, v_gamma
    FROM agent_types
    WHERE agent_type = p_agent_type;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'q_learning_update: unknown agent_type "%" (not in agent_types)', p_agent_type
            USING ERRCODE = 'foreign_key_violation';
    END IF;

    IF p_next_state_hash IS NULL THEN
        v_max_next := 0;
    ELSE
        SELECT b.q_value INTO v_max_next FROM get_best_action(p_agent_type, p_next_state_hash) AS b;
        v_max_next := COALESCE(v_max_next, 0);
    END IF;

    BEGIN
        INSERT INTO q_values AS q (
            agent_type, state_hash, action_hash, q_value, visit_count, confidence_score, uncertainty
        ) VALUES (
            p_agent_type, p_state_hash, p_action_hash, v_alpha * (v_reward + v_gamma * v_max_next),
            1, 0.5, 1
        )
        ON CONFLICT (agent_type, state_hash, action_hash) DO UPDATE
        SET q_value          = q.q_value + v_alpha * (v_reward + v_gamma * v_max_next - q.q_value),
            visit_count      = q.visit_count + 1,
            confidence_score = round((q.visit_count + 1)::numeric / (q.visit_count + 2), 4),
            uncertainty      = round(1 / sqrt((q.visit_count + 1)::numeric), 4),
            last_updated     = now(),
            expires_at       = now() + agentdb_retention_interval()
        RETURNING q.q_value INTO v_q;
    EXCEPTION WHEN numeric_value_out_of_range THEN
        -- The updated estimate would not fit NUMERIC(12,6); nothing was written.
        RAISE EXCEPTION 'q_learning_update: the updated q_value would leave -10^6..10^6 (reward %, max next Q %)',
            p_reward, v_max_next USING ERRCODE = 'numeric_value_out_of_range';
    END;
    RETURN v_q;
END;
$$;
