-- The materialized views and the functions of seeds 000 and 001, plus q_learning_update.

-- AGENT_PERFORMANCE_SUMMARY: one row per agent type. Each child table is aggregated on its own
-- and the aggregates are joined one-to-one, so rows never multiply (sessions x trajectories x ...).
CREATE MATERIALIZED VIEW agent_performance_summary AS
WITH session_stats AS (
    SELECT agent_type,
           count(*) AS total_sessions,
           max(GREATEST(start_time, end_time)) AS last_session_at
    FROM sessions
    GROUP BY agent_type
), trajectory_stats AS (
    SELECT agent_type,
           count(*) AS total_trajectories,
           count(*) FILTER (WHERE success) AS successful_trajectories,
           avg(total_reward) AS avg_reward,
           sum(total_reward) AS cumulative_reward,
           avg(execution_time_ms) AS avg_execution_time_ms,
           max(COALESCE(completed_at, started_at)) AS last_trajectory_at
    FROM trajectories
    GROUP BY agent_type
), pattern_stats AS (
    SELECT agent_type, count(DISTINCT pattern_name) AS unique_patterns
    FROM patterns
    GROUP BY agent_type
), q_value_stats AS (
    SELECT agent_type,
           avg(visit_count) AS avg_state_visits,
           max(last_updated) AS last_q_update_at
    FROM q_values
    GROUP BY agent_type
), instance_stats AS (
    SELECT agent_type,
           count(*) FILTER (WHERE status IN ('active', 'learning')) AS active_instances,
           max(last_activity) AS last_activity_at
    FROM agent_states
    GROUP BY agent_type
)
SELECT ag.agent_type,
       ag.display_name,
       COALESCE(s.total_sessions, 0) AS total_sessions,
       COALESCE(t.total_trajectories, 0) AS total_trajectories,
       COALESCE(t.successful_trajectories, 0) AS successful_trajectories,
       round(t.avg_reward, 4) AS avg_reward,
       COALESCE(t.cumulative_reward, 0) AS cumulative_reward,
       round(t.avg_execution_time_ms, 2) AS avg_execution_time_ms,
       COALESCE(p.unique_patterns, 0) AS unique_patterns,
       round(q.avg_state_visits, 2) AS avg_state_visits,
       GREATEST(s.last_session_at, t.last_trajectory_at, q.last_q_update_at, i.last_activity_at)
           AS last_active,
       COALESCE(i.active_instances, 0) AS active_instances
FROM agent_types AS ag
LEFT JOIN session_stats AS s ON s.agent_type = ag.agent_type
LEFT JOIN trajectory_stats AS t ON t.agent_type = ag.agent_type
LEFT JOIN pattern_stats AS p ON p.agent_type = ag.agent_type
LEFT JOIN q_value_stats AS q ON q.agent_type = ag.agent_type
LEFT JOIN instance_stats AS i ON i.agent_type = ag.agent_type;

-- REFRESH ... CONCURRENTLY needs a unique index.
CREATE UNIQUE INDEX uniq_agent_performance_summary_agent_type
    ON agent_performance_summary (agent_type);

-- PATTERN_EFFECTIVENESS: one row per pattern. A trajectory uses a pattern when its metadata holds
-- {"pattern_id": "<uuid>"}; trajectories are aggregated per pattern before the join.
CREATE MATERIALIZED VIEW pattern_effectiveness AS
WITH trajectory_use AS (
    SELECT metadata ->> 'pattern_id' AS pattern_key,
           count(*) AS trajectories_using_pattern,
           avg(total_reward) AS avg_trajectory_reward
    FROM trajectories
    WHERE metadata ? 'pattern_id'
    GROUP BY metadata ->> 'pattern_id'
)
SELECT p.pattern_id,
       p.agent_type,
       p.pattern_name,
       p.pattern_type,
       p.pattern_category,
       p.version,
       p.usage_count,
       p.success_count,
       p.failure_count,
       CASE WHEN p.usage_count > 0 THEN round(p.success_count::numeric / p.usage_count, 4) ELSE 0 END
           AS success_rate,
       p.avg_reward,
       p.confidence_score,
       COALESCE(u.trajectories_using_pattern, 0) AS trajectories_using_pattern,
       round(u.avg_trajectory_reward, 4) AS avg_trajectory_reward,
       p.last_used,
       floor(extract(EPOCH FROM now() - p.last_used) / 86400)::integer AS days_since_used
FROM patterns AS p
LEFT JOIN trajectory_use AS u ON u.pattern_key = p.pattern_id::text;

CREATE UNIQUE INDEX uniq_pattern_effectiveness_pattern_id ON pattern_effectiveness (pattern_id);

-- upsert_q_value: insert or update one (state, action) estimate atomically (ON CONFLICT takes the
-- row lock, so concurrent callers never lose a visit). Returns q_value_id. q_value is DOUBLE
-- PRECISION so that clients may pass a float or a decimal (numeric casts to it implicitly); it is
-- stored as NUMERIC(12, 6).
CREATE FUNCTION upsert_q_value(
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
        expires_at       = now() + INTERVAL '30 days'
    RETURNING q.q_value_id INTO v_id;
    RETURN v_id;
END;
$$;

-- get_best_action: the highest-valued live action of a state. A plain SQL function, so its body
-- is the query the planner runs: an index scan on idx_q_values_lookup that stops at the first row.
CREATE FUNCTION get_best_action(p_agent_type VARCHAR, p_state_hash VARCHAR)
RETURNS TABLE (
    action_hash      VARCHAR,
    action_data      JSONB,
    q_value          NUMERIC,
    visit_count      INTEGER,
    confidence_score NUMERIC
)
LANGUAGE sql STABLE AS $$
SELECT q.action_hash, q.action_data, q.q_value, q.visit_count, q.confidence_score
FROM q_values AS q
WHERE q.agent_type = $1
  AND q.state_hash = $2
  AND (q.expires_at IS NULL OR q.expires_at > now())
ORDER BY q.q_value DESC
LIMIT 1
$$;

-- q_learning_update: Q(s,a) <- Q(s,a) + alpha * (r + gamma * max_a' Q(s',a') - Q(s,a)) with the
-- agent type's learning_rate (alpha) and discount_factor (gamma). The new value is computed from
-- the row's latest committed version inside ON CONFLICT DO UPDATE, so concurrent updates of the
-- same pair serialize on the row lock and none is lost. A NULL next_state_hash is a terminal
-- transition (max Q(s') = 0); a missing pair starts from Q = 0.
CREATE FUNCTION q_learning_update(
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
            expires_at       = now() + INTERVAL '30 days'
        RETURNING q.q_value INTO v_q;
    EXCEPTION WHEN numeric_value_out_of_range THEN
        -- The updated estimate would not fit NUMERIC(12,6); nothing was written.
        RAISE EXCEPTION 'q_learning_update: the updated q_value would leave -10^6..10^6 (reward %, max next Q %)',
            p_reward, v_max_next USING ERRCODE = 'numeric_value_out_of_range';
    END;
    RETURN v_q;
END;
$$;

-- cleanup_expired_data: delete rows whose expires_at has passed, in batches of p_batch_size rows
-- (at most p_max_batches per table per call). Batches lock with SKIP LOCKED, so the cleanup never
-- waits on an agent that is writing a row; rewards are deleted with their trajectories.
-- Returns one row per table with the number of rows deleted.
CREATE FUNCTION cleanup_expired_data(p_batch_size INTEGER DEFAULT 1000, p_max_batches INTEGER DEFAULT 1000)
RETURNS TABLE (table_name TEXT, deleted_count BIGINT)
LANGUAGE plpgsql AS $$
DECLARE
    v_cutoff       TIMESTAMPTZ := now();
    v_batches      INTEGER;
    v_rows         BIGINT;
    v_ids          UUID[];
    v_q_values     BIGINT := 0;
    v_trajectories BIGINT := 0;
    v_rewards      BIGINT := 0;
    v_patterns     BIGINT := 0;
BEGIN
    IF p_batch_size IS NULL OR p_batch_size < 1 THEN
        RAISE EXCEPTION 'cleanup_expired_data: batch_size must be at least 1, got %', p_batch_size
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_max_batches IS NULL OR p_max_batches < 1 THEN
        RAISE EXCEPTION 'cleanup_expired_data: max_batches must be at least 1, got %', p_max_batches
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    v_batches := 0;
    LOOP
        DELETE FROM q_values
        WHERE q_value_id IN (
            SELECT q_value_id FROM q_values
            WHERE expires_at < v_cutoff
            ORDER BY expires_at
            LIMIT p_batch_size
            FOR UPDATE SKIP LOCKED
        );
        GET DIAGNOSTICS v_rows = ROW_COUNT;
        v_q_values := v_q_values + v_rows;
        v_batches := v_batches + 1;
        EXIT WHEN v_rows < p_batch_size OR v_batches >= p_max_batches;
    END LOOP;

    -- Lock the trajectories first, then delete their rewards, then them: the same order agents
    -- use (trajectory -> reward), so the cleanup cannot deadlock with a reward insert.
    v_batches := 0;
    LOOP
        SELECT array_agg(trajectory_id) INTO v_ids
        FROM (
            SELECT trajectory_id FROM trajectories
            WHERE expires_at < v_cutoff
            ORDER BY expires_at
            LIMIT p_batch_size
            FOR UPDATE SKIP LOCKED
        ) AS batch;
        EXIT WHEN v_ids IS NULL;
        DELETE FROM rewards WHERE trajectory_id = ANY (v_ids);
        GET DIAGNOSTICS v_rows = ROW_COUNT;
        v_rewards := v_rewards + v_rows;
        DELETE FROM trajectories WHERE trajectory_id = ANY (v_ids);
        GET DIAGNOSTICS v_rows = ROW_COUNT;
        v_trajectories := v_trajectories + v_rows;
        v_batches := v_batches + 1;
        EXIT WHEN cardinality(v_ids) < p_batch_size OR v_batches >= p_max_batches;
    END LOOP;

    v_batches := 0;
    LOOP
        DELETE FROM patterns
        WHERE pattern_id IN (
            SELECT pattern_id FROM patterns
            WHERE expires_at < v_cutoff
            ORDER BY expires_at
            LIMIT p_batch_size
            FOR UPDATE SKIP LOCKED
        );
        GET DIAGNOSTICS v_rows = ROW_COUNT;
        v_patterns := v_patterns + v_rows;
        v_batches := v_batches + 1;
        EXIT WHEN v_rows < p_batch_size OR v_batches >= p_max_batches;
    END LOOP;

    RETURN QUERY VALUES
        ('q_values'::TEXT, v_q_values),
        ('trajectories'::TEXT, v_trajectories),
        ('rewards'::TEXT, v_rewards),
        ('patterns'::TEXT, v_patterns);
END;
$$;

-- refresh_materialized_views: refresh both views CONCURRENTLY (readers are never blocked).
-- SECURITY DEFINER because only the views' owner may refresh them; the app role may call it.
CREATE FUNCTION refresh_materialized_views() RETURNS VOID
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    REFRESH MATERIALIZED VIEW CONCURRENTLY agent_performance_summary;
    REFRESH MATERIALIZED VIEW CONCURRENTLY pattern_effectiveness;
END;
$$;

-- The app role executes everything (default privileges). The readonly role may only read: the
-- baseline's default privileges grant it EXECUTE on functions, so the writing ones are revoked here;
-- get_best_action is a plain read and stays executable for it.
REVOKE EXECUTE ON FUNCTION upsert_q_value(VARCHAR, VARCHAR, JSONB, VARCHAR, JSONB, DOUBLE PRECISION, UUID)
    FROM PUBLIC, qlearning_readonly;
REVOKE EXECUTE ON FUNCTION q_learning_update(VARCHAR, VARCHAR, VARCHAR, DOUBLE PRECISION, VARCHAR)
    FROM PUBLIC, qlearning_readonly;
REVOKE EXECUTE ON FUNCTION cleanup_expired_data(INTEGER, INTEGER) FROM PUBLIC, qlearning_readonly;
REVOKE EXECUTE ON FUNCTION refresh_materialized_views() FROM PUBLIC, qlearning_readonly;
REVOKE EXECUTE ON FUNCTION get_best_action(VARCHAR, VARCHAR) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION get_best_action(VARCHAR, VARCHAR) TO qlearning_readonly;
