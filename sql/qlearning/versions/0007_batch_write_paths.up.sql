-- Issue 15: the Q-learning write paths at the seeds' speed.
--
-- HOT updates are out of reach for the common upsert: it changes q_value, and q_value is a key column
-- of idx_q_values_lookup (agent_type, state_hash, q_value DESC), the index that lets get_best_action
-- stop at the first row without a Sort (seed 001, "Index Strategy"). PostgreSQL makes an update HOT
-- only when no indexed column changes (PostgreSQL 16 exempts BRIN, never a B-tree), so every new
-- estimate adds an entry to each index of q_values whatever the fillfactor. What this revision
-- removes instead is the work per call that buys nothing, and the per-row round trips of a batch.

-- upsert_q_value: 0005's upsert without its lookup in agent_types. The foreign key makes the same
-- check when the pair is new (SQLSTATE 23503, naming q_values_agent_type_fkey and the missing key),
-- and an existing pair's agent_type is already known. The blank-key and finite-value checks stay:
-- the constraints would report them under other SQLSTATEs, or not at all for a q_value of 10^6.
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

-- upsert_q_values: a batch of pairs of one agent type in one INSERT ... ON CONFLICT. The result is
-- the one the single-row calls in array order would leave: a pair given k times gets k visits and
-- its last q_value, and a NULL state_data/action_data element keeps the stored document. The rows
-- are written (and locked) in key order, so two batches that share pairs wait for each other
-- instead of deadlocking. Returns one row per distinct pair, in key order.
CREATE FUNCTION upsert_q_values(
    p_agent_type    VARCHAR,
    p_state_hashes  VARCHAR[],
    p_action_hashes VARCHAR[],
    p_q_values      DOUBLE PRECISION[],
    p_state_data    JSONB[] DEFAULT NULL,
    p_action_data   JSONB[] DEFAULT NULL,
    p_session_id    UUID DEFAULT NULL
) RETURNS TABLE (state_hash VARCHAR, action_hash VARCHAR, q_value_id BIGINT)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_n           INTEGER := cardinality(p_state_hashes);
    v_bad_state   BIGINT;
    v_bad_action  BIGINT;
    v_bad_value   BIGINT;
    v_big_value   BIGINT;
    -- Whether a NULL element asks to keep the stored document: only then is the per-pair lookup
    -- into the batch needed; otherwise EXCLUDED carries the document, or the stored one stays.
    v_sd_mixed    BOOLEAN := p_state_data IS NOT NULL AND array_position(p_state_data, NULL) IS NOT NULL;
    v_ad_mixed    BOOLEAN := p_action_data IS NOT NULL AND array_position(p_action_data, NULL) IS NOT NULL;
BEGIN
    IF p_agent_type IS NULL OR btrim(p_agent_type) = '' THEN
        RAISE EXCEPTION 'upsert_q_values: agent_type must not be NULL or empty'
            USING ERRCODE = 'not_null_violation';
    END IF;
    IF p_state_hashes IS NULL OR p_action_hashes IS NULL OR p_q_values IS NULL THEN
        RAISE EXCEPTION 'upsert_q_values: state_hashes, action_hashes and q_values must not be NULL'
            USING ERRCODE = 'not_null_violation';
    END IF;
    IF cardinality(p_action_hashes) <> v_n OR cardinality(p_q_values) <> v_n
       OR cardinality(p_state_data) <> v_n OR cardinality(p_action_data) <> v_n THEN
        RAISE EXCEPTION 'upsert_q_values: the arrays must have one element per pair: % state_hashes, % action_hashes, % q_values, % state_data, % action_data',
            v_n, cardinality(p_action_hashes), cardinality(p_q_values),
            COALESCE(cardinality(p_state_data)::text, 'NULL'), COALESCE(cardinality(p_action_data)::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT min(u.i) FILTER (WHERE u.s IS NULL OR btrim(u.s) = ''),
           min(u.i) FILTER (WHERE u.a IS NULL OR btrim(u.a) = ''),
           min(u.i) FILTER (WHERE u.q IS NULL OR u.q IN ('NaN', 'Infinity', '-Infinity')),
           min(u.i) FILTER (WHERE abs(u.q) >= 1e6 AND u.q NOT IN ('Infinity', '-Infinity'))
    INTO v_bad_state, v_bad_action, v_bad_value, v_big_value
    FROM unnest(p_state_hashes, p_action_hashes, p_q_values) WITH ORDINALITY AS u(s, a, q, i);
    IF v_bad_state IS NOT NULL THEN
        RAISE EXCEPTION 'upsert_q_values: state_hashes[%] must not be NULL or empty', v_bad_state
            USING ERRCODE = 'not_null_violation';
    END IF;
    IF v_bad_action IS NOT NULL THEN
        RAISE EXCEPTION 'upsert_q_values: action_hashes[%] must not be NULL or empty', v_bad_action
            USING ERRCODE = 'not_null_violation';
    END IF;
    IF v_bad_value IS NOT NULL THEN
        RAISE EXCEPTION 'upsert_q_values: q_values[%] must be a finite number, got %', v_bad_value, p_q_values[v_bad_value]
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_big_value IS NOT NULL THEN
        RAISE EXCEPTION 'upsert_q_values: q_values[%] must be between -10^6 and 10^6 (NUMERIC(12,6)), got %',
            v_big_value, p_q_values[v_big_value] USING ERRCODE = 'numeric_value_out_of_range';
    END IF;

    RETURN QUERY
    WITH batch AS MATERIALIZED (
        SELECT u.s, u.a, u.q, u.sd, u.ad, u.i
        FROM unnest(p_state_hashes, p_action_hashes, p_q_values,
                    COALESCE(p_state_data, array_fill(NULL::jsonb, ARRAY[v_n])),
                    COALESCE(p_action_data, array_fill(NULL::jsonb, ARRAY[v_n])))
             WITH ORDINALITY AS u(s, a, q, sd, ad, i)
    ), pairs AS MATERIALIZED (
        -- ON CONFLICT may touch a row once per statement: a repeated pair becomes one row.
        SELECT b.s, b.a,
               (array_agg(b.q ORDER BY b.i DESC))[1] AS q,
               (array_agg(b.sd ORDER BY b.i DESC) FILTER (WHERE b.sd IS NOT NULL))[1] AS sd,
               (array_agg(b.ad ORDER BY b.i DESC) FILTER (WHERE b.ad IS NOT NULL))[1] AS ad,
               count(*)::integer AS visits
        FROM batch AS b
        GROUP BY b.s, b.a
    ), written AS (
        INSERT INTO q_values AS q (
            agent_type, session_id, state_hash, state_data, action_hash, action_data,
            q_value, visit_count, confidence_score, uncertainty
        )
        SELECT p_agent_type, p_session_id, p.s, COALESCE(p.sd, '{}'), p.a, COALESCE(p.ad, '{}'), p.q, p.visits,
               round(p.visits::numeric / (p.visits + 1), 4), round(1 / sqrt(p.visits::numeric), 4)
        FROM pairs AS p
        ORDER BY p.s, p.a
        ON CONFLICT (agent_type, state_hash, action_hash) DO UPDATE
        SET q_value          = EXCLUDED.q_value,
            state_data       = CASE
                WHEN v_sd_mixed THEN COALESCE(
                    (SELECT p2.sd FROM pairs AS p2 WHERE p2.s = EXCLUDED.state_hash AND p2.a = EXCLUDED.action_hash),
                    q.state_data)
                WHEN p_state_data IS NULL THEN q.state_data
                ELSE EXCLUDED.state_data END,
            action_data      = CASE
                WHEN v_ad_mixed THEN COALESCE(
                    (SELECT p2.ad FROM pairs AS p2 WHERE p2.s = EXCLUDED.state_hash AND p2.a = EXCLUDED.action_hash),
                    q.action_data)
                WHEN p_action_data IS NULL THEN q.action_data
                ELSE EXCLUDED.action_data END,
            session_id       = COALESCE(p_session_id, q.session_id),
            visit_count      = q.visit_count + EXCLUDED.visit_count,
            confidence_score = round((q.visit_count + EXCLUDED.visit_count)::numeric
                                     / (q.visit_count + EXCLUDED.visit_count + 1), 4),
            uncertainty      = round(1 / sqrt((q.visit_count + EXCLUDED.visit_count)::numeric), 4),
            last_updated     = now(),
            expires_at       = now() + agentdb_retention_interval()
        RETURNING q.state_hash, q.action_hash, q.q_value_id
    )
    SELECT w.state_hash, w.action_hash, w.q_value_id FROM written AS w ORDER BY w.state_hash, w.action_hash;
END;
$$;

-- insert_trajectories: N trajectories and their rewards in one statement. p_trajectories is a JSON
-- array of objects keyed by the trajectories' column names, each with an optional "rewards" array
-- of objects keyed by the rewards' column names (a reward's agent_type and session_id default to
-- its trajectory's). A missing key takes the column's default. Returns the trajectory ids in the
-- input order. Any bad element fails the whole call: nothing is written.
CREATE FUNCTION insert_trajectories(p_trajectories JSONB)
RETURNS TABLE (trajectory_id UUID)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    c_trajectory_keys CONSTANT TEXT[] := ARRAY[
        'trajectory_id', 'agent_type', 'session_id', 'task_id', 'initial_state', 'final_state', 'actions_taken',
        'states_visited', 'step_rewards', 'total_reward', 'discounted_reward', 'execution_time_ms', 'success',
        'error_message', 'started_at', 'completed_at', 'expires_at', 'metadata', 'rewards'];
    c_reward_keys CONSTANT TEXT[] := ARRAY[
        'agent_type', 'session_id', 'state_hash', 'action_hash', 'reward_value', 'reward_type', 'reward_source',
        'observed_at', 'metadata'];
    v_bad    BIGINT;
    v_doc    JSONB;
    v_detail TEXT;
BEGIN
    IF p_trajectories IS NULL OR jsonb_typeof(p_trajectories) <> 'array' THEN
        RAISE EXCEPTION 'insert_trajectories: trajectories must be a JSON array of objects, got %',
            COALESCE(jsonb_typeof(p_trajectories), 'NULL') USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- One cheap pass finds the first bad element (an element that is not an object, a "rewards" that is
    -- not an array of objects, or a key jsonb_populate_record would drop without a word); only then does
    -- a second look say what is wrong with it. CASE keeps `-` from meeting a non-object.
    SELECT min(e.i) INTO v_bad
    FROM jsonb_array_elements(p_trajectories) WITH ORDINALITY AS e(doc, i)
    WHERE CASE
        WHEN jsonb_typeof(e.doc) <> 'object' THEN true
        WHEN e.doc - c_trajectory_keys <> '{}' THEN true
        WHEN NOT e.doc ? 'rewards' THEN false
        WHEN jsonb_typeof(e.doc -> 'rewards') <> 'array' THEN true
        ELSE EXISTS (SELECT 1 FROM jsonb_array_elements(e.doc -> 'rewards') AS x(rd)
                     WHERE CASE WHEN jsonb_typeof(x.rd) <> 'object' THEN true
                                ELSE x.rd - c_reward_keys <> '{}' END)
    END;
    IF v_bad IS NOT NULL THEN
        v_doc := p_trajectories -> (v_bad::integer - 1);
        IF jsonb_typeof(v_doc) <> 'object' THEN
            v_detail := ' is ' || jsonb_typeof(v_doc) || ', not an object';
        ELSIF v_doc - c_trajectory_keys <> '{}' THEN
            v_detail := ' has unknown key "'
                || (SELECT min(k) FROM jsonb_object_keys(v_doc - c_trajectory_keys) AS k) || '"';
        ELSIF jsonb_typeof(v_doc -> 'rewards') <> 'array' THEN
            v_detail := ' "rewards" is not an array';
        ELSE
            SELECT '.rewards[' || (x.j - 1) || '] ' || CASE
                       WHEN jsonb_typeof(x.rd) <> 'object' THEN 'is ' || jsonb_typeof(x.rd) || ', not an object'
                       ELSE 'has unknown key "'
                            || (SELECT min(k) FROM jsonb_object_keys(x.rd - c_reward_keys) AS k) || '"'
                   END
            INTO v_detail
            FROM jsonb_array_elements(v_doc -> 'rewards') WITH ORDINALITY AS x(rd, j)
            WHERE CASE WHEN jsonb_typeof(x.rd) <> 'object' THEN true ELSE x.rd - c_reward_keys <> '{}' END
            ORDER BY x.j
            LIMIT 1;
        END IF;
        RAISE EXCEPTION 'insert_trajectories: trajectories[%]%', v_bad - 1, v_detail
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    RETURN QUERY
    WITH src AS MATERIALIZED (
        -- Materialized once, so each trajectory's generated id is the same for it and its rewards.
        SELECT e.i, e.doc, t.*, COALESCE(t.trajectory_id, gen_random_uuid()) AS id
        FROM jsonb_array_elements(p_trajectories) WITH ORDINALITY AS e(doc, i),
             jsonb_populate_record(NULL::trajectories, e.doc) AS t
    ), trajectory_rows AS (
        INSERT INTO trajectories (
            trajectory_id, agent_type, session_id, task_id, initial_state, final_state, actions_taken,
            states_visited, step_rewards, total_reward, discounted_reward, execution_time_ms, success,
            error_message, started_at, completed_at, expires_at, metadata
        )
        SELECT s.id, s.agent_type, s.session_id, s.task_id, COALESCE(s.initial_state, '{}'), s.final_state,
               COALESCE(s.actions_taken, '[]'), COALESCE(s.states_visited, '[]'), COALESCE(s.step_rewards, '[]'),
               COALESCE(s.total_reward, 0), s.discounted_reward, s.execution_time_ms, COALESCE(s.success, false),
               s.error_message, COALESCE(s.started_at, now()), s.completed_at,
               CASE WHEN s.doc ? 'expires_at' THEN s.expires_at ELSE now() + agentdb_retention_interval() END,
               COALESCE(s.metadata, '{}')
        FROM src AS s
        ORDER BY s.i
        RETURNING 1
    ), reward_rows AS (
        INSERT INTO rewards (
            agent_type, session_id, trajectory_id, state_hash, action_hash, reward_value, reward_type,
            reward_source, observed_at, metadata
        )
        SELECT COALESCE(r.agent_type, s.agent_type),
               CASE WHEN x.rd ? 'session_id' THEN r.session_id ELSE s.session_id END,
               s.id, r.state_hash, r.action_hash, r.reward_value, COALESCE(r.reward_type, 'immediate'),
               r.reward_source, COALESCE(r.observed_at, now()), COALESCE(r.metadata, '{}')
        FROM src AS s,
             jsonb_array_elements(COALESCE(s.doc -> 'rewards', '[]')) WITH ORDINALITY AS x(rd, j),
             jsonb_populate_record(NULL::rewards, x.rd) AS r
        ORDER BY s.i, x.j
        RETURNING 1
    )
    SELECT s.id FROM src AS s ORDER BY s.i;
END;
$$;

-- Writers: the app role executes them (default privileges), analytics does not.
REVOKE EXECUTE ON FUNCTION upsert_q_values(VARCHAR, VARCHAR[], VARCHAR[], DOUBLE PRECISION[], JSONB[], JSONB[], UUID)
    FROM PUBLIC, qlearning_readonly;
REVOKE EXECUTE ON FUNCTION insert_trajectories(JSONB) FROM PUBLIC, qlearning_readonly;
