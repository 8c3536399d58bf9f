-- Back to 0005: each JSON array becomes a jsonb[] of its elements in order ('[]' -> '{}').
-- ALTER ... USING takes no subquery, so a helper function unnests the array for the conversion.

CREATE FUNCTION agentdb_jsonb_array_to_array(p_value JSONB) RETURNS JSONB[]
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT COALESCE(array_agg(e.value ORDER BY e.n), '{}')
    FROM jsonb_array_elements(p_value) WITH ORDINALITY AS e (value, n)
$$;

-- The CHECKs and '[]' defaults are 0006's own; '{}' replaces the defaults in the same statement.
-- squawk-ignore-file ban-drop-constraint, ban-drop-default
ALTER TABLE trajectories
    DROP CONSTRAINT trajectories_actions_taken_is_array,
    DROP CONSTRAINT trajectories_states_visited_is_array,
    DROP CONSTRAINT trajectories_step_rewards_is_array,
    ALTER COLUMN actions_taken DROP DEFAULT,
    ALTER COLUMN states_visited DROP DEFAULT,
    ALTER COLUMN step_rewards DROP DEFAULT,
    ALTER COLUMN actions_taken TYPE JSONB [] USING agentdb_jsonb_array_to_array(actions_taken),
    ALTER COLUMN states_visited TYPE JSONB [] USING agentdb_jsonb_array_to_array(states_visited),
    ALTER COLUMN step_rewards TYPE JSONB [] USING agentdb_jsonb_array_to_array(step_rewards),
    ALTER COLUMN actions_taken SET DEFAULT '{}',
    ALTER COLUMN states_visited SET DEFAULT '{}',
    ALTER COLUMN step_rewards SET DEFAULT '{}';

DROP FUNCTION agentdb_jsonb_array_to_array(JSONB);
