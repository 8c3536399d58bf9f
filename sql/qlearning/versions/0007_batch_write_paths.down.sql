-- Back to 0006: no batch functions, and 0005's upsert_q_value with its agent_types lookup.
DROP FUNCTION insert_trajectories(JSONB);
DROP FUNCTION upsert_q_values(VARCHAR, VARCHAR[], VARCHAR[], DOUBLE PRECISION[], JSONB[], JSONB[], UUID);

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
