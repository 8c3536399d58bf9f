-- The seven core tables of the Q-learning database (seed 000, ER diagram), with their indexes.
-- Timestamps are TIMESTAMPTZ; hashes are VARCHAR(64) (a SHA-256 in hex, shorter keys allowed).
-- Every key is NOT NULL and non-blank, every count non-negative, every rate and score in 0..1,
-- and every DECIMAL finite (NaN is refused by CHECK, infinity by the column's precision).

CREATE FUNCTION set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

-- AGENT_TYPES: the registry, one row per QE agent type.
CREATE TABLE agent_types (
    agent_type              VARCHAR(50) PRIMARY KEY,
    display_name            VARCHAR(100) NOT NULL,
    description             TEXT,
    state_space_dimensions  INTEGER NOT NULL DEFAULT 1,
    action_space_dimensions INTEGER NOT NULL DEFAULT 1,
    learning_rate           NUMERIC(5, 4) NOT NULL DEFAULT 0.1,
    discount_factor         NUMERIC(5, 4) NOT NULL DEFAULT 0.95,
    exploration_rate        NUMERIC(5, 4) NOT NULL DEFAULT 0.1,
    is_active               BOOLEAN NOT NULL DEFAULT true,
    metadata                JSONB NOT NULL DEFAULT '{}',
    created_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT agent_types_agent_type_not_blank CHECK (btrim(agent_type) <> ''),
    CONSTRAINT agent_types_display_name_not_blank CHECK (btrim(display_name) <> ''),
    CONSTRAINT agent_types_state_space_dimensions_positive CHECK (state_space_dimensions > 0),
    CONSTRAINT agent_types_action_space_dimensions_positive CHECK (action_space_dimensions > 0),
    CONSTRAINT agent_types_learning_rate_range CHECK (learning_rate > 0 AND learning_rate <= 1),
    CONSTRAINT agent_types_discount_factor_range CHECK (discount_factor BETWEEN 0 AND 1),
    CONSTRAINT agent_types_exploration_rate_range CHECK (exploration_rate BETWEEN 0 AND 1)
);

CREATE TRIGGER trg_agent_types_updated_at
    BEFORE UPDATE ON agent_types
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- SESSIONS: execution groups of one agent type.
CREATE TABLE sessions (
    session_id   UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    agent_type   VARCHAR(50) NOT NULL REFERENCES agent_types (agent_type),
    session_name VARCHAR(255),
    start_time   TIMESTAMPTZ NOT NULL DEFAULT now(),
    end_time     TIMESTAMPTZ,
    status       VARCHAR(20) NOT NULL DEFAULT 'active',
    task_count   INTEGER NOT NULL DEFAULT 0,
    total_reward NUMERIC(14, 4) NOT NULL DEFAULT 0,
    environment  VARCHAR(20) NOT NULL DEFAULT 'development',
    metadata     JSONB NOT NULL DEFAULT '{}',
    CONSTRAINT sessions_status_valid
        CHECK (status IN ('active', 'completed', 'failed', 'cancelled')),
    CONSTRAINT sessions_environment_valid
        CHECK (environment IN ('development', 'staging', 'production')),
    CONSTRAINT sessions_task_count_non_negative CHECK (task_count >= 0),
    CONSTRAINT sessions_total_reward_finite CHECK (total_reward <> 'NaN'),
    CONSTRAINT sessions_end_after_start CHECK (end_time IS NULL OR end_time >= start_time)
);

CREATE INDEX idx_sessions_agent_type ON sessions (agent_type, start_time DESC);
CREATE INDEX idx_sessions_status ON sessions (status) WHERE status = 'active';
CREATE INDEX idx_sessions_metadata ON sessions USING gin (metadata);

-- Q_VALUES: the learned value of each (state, action) pair per agent type.
CREATE TABLE q_values (
    q_value_id       BIGSERIAL PRIMARY KEY,
    agent_type       VARCHAR(50) NOT NULL REFERENCES agent_types (agent_type),
    session_id       UUID REFERENCES sessions (session_id) ON DELETE SET NULL,
    state_hash       VARCHAR(64) NOT NULL,
    state_data       JSONB NOT NULL DEFAULT '{}',
    action_hash      VARCHAR(64) NOT NULL,
    action_data      JSONB NOT NULL DEFAULT '{}',
    q_value          NUMERIC(12, 6) NOT NULL DEFAULT 0,
    visit_count      INTEGER NOT NULL DEFAULT 1,
    confidence_score NUMERIC(5, 4) NOT NULL DEFAULT 0,
    uncertainty      NUMERIC(5, 4) NOT NULL DEFAULT 1,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_updated     TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at       TIMESTAMPTZ DEFAULT now() + INTERVAL '30 days',
    metadata         JSONB NOT NULL DEFAULT '{}',
    CONSTRAINT uniq_q_values_agent_type_state_hash_action_hash
        UNIQUE (agent_type, state_hash, action_hash),
    CONSTRAINT q_values_state_hash_not_blank CHECK (btrim(state_hash) <> ''),
    CONSTRAINT q_values_action_hash_not_blank CHECK (btrim(action_hash) <> ''),
    CONSTRAINT q_values_q_value_finite CHECK (q_value <> 'NaN'),
    CONSTRAINT q_values_visit_count_non_negative CHECK (visit_count >= 0),
    CONSTRAINT q_values_confidence_score_range CHECK (confidence_score BETWEEN 0 AND 1),
    CONSTRAINT q_values_uncertainty_range CHECK (uncertainty BETWEEN 0 AND 1)
);

-- Best action: WHERE agent_type = ? AND state_hash = ? ORDER BY q_value DESC LIMIT 1, no sort.
-- Its two leading columns also serve the seed's (agent_type, state_hash) lookup.
CREATE INDEX idx_q_values_lookup ON q_values (agent_type, state_hash, q_value DESC);
CREATE INDEX idx_q_values_state_data ON q_values USING gin (state_data);
CREATE INDEX idx_q_values_action_data ON q_values USING gin (action_data);
CREATE INDEX idx_q_values_expires_at ON q_values (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX idx_q_values_session_id ON q_values (session_id) WHERE session_id IS NOT NULL;

-- TRAJECTORIES: one executed task, its states, actions and rewards.
CREATE TABLE trajectories (
    trajectory_id     UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    agent_type        VARCHAR(50) NOT NULL REFERENCES agent_types (agent_type),
    session_id        UUID REFERENCES sessions (session_id) ON DELETE SET NULL,
    task_id           VARCHAR(255) NOT NULL,
    initial_state     JSONB NOT NULL DEFAULT '{}',
    final_state       JSONB,
    actions_taken     JSONB[] NOT NULL DEFAULT '{}',
    states_visited    JSONB[] NOT NULL DEFAULT '{}',
    step_rewards      JSONB[] NOT NULL DEFAULT '{}',
    total_reward      NUMERIC(12, 4) NOT NULL DEFAULT 0,
    discounted_reward NUMERIC(12, 4),
    execution_time_ms INTEGER,
    success           BOOLEAN NOT NULL DEFAULT false,
    error_message     TEXT,
    started_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    completed_at      TIMESTAMPTZ,
    expires_at        TIMESTAMPTZ DEFAULT now() + INTERVAL '30 days',
    metadata          JSONB NOT NULL DEFAULT '{}',
    CONSTRAINT trajectories_task_id_not_blank CHECK (btrim(task_id) <> ''),
    CONSTRAINT trajectories_total_reward_finite CHECK (total_reward <> 'NaN'),
    CONSTRAINT trajectories_discounted_reward_finite CHECK (discounted_reward <> 'NaN'),
    CONSTRAINT trajectories_execution_time_ms_non_negative CHECK (execution_time_ms >= 0),
    CONSTRAINT trajectories_completed_after_started
        CHECK (completed_at IS NULL OR completed_at >= started_at)
);

CREATE INDEX idx_trajectories_agent_type ON trajectories (agent_type);
CREATE INDEX idx_trajectories_session_id ON trajectories (session_id);
CREATE INDEX idx_trajectories_task_id ON trajectories (task_id);
CREATE INDEX idx_trajectories_total_reward ON trajectories (total_reward DESC);
CREATE INDEX idx_trajectories_metadata ON trajectories USING gin (metadata);
CREATE INDEX idx_trajectories_expires_at ON trajectories (expires_at) WHERE expires_at IS NOT NULL;

-- REWARDS: every observed reward; they belong to a trajectory and are deleted with it.
CREATE TABLE rewards (
    reward_id     BIGSERIAL PRIMARY KEY,
    agent_type    VARCHAR(50) NOT NULL REFERENCES agent_types (agent_type),
    session_id    UUID REFERENCES sessions (session_id) ON DELETE SET NULL,
    trajectory_id UUID NOT NULL REFERENCES trajectories (trajectory_id) ON DELETE CASCADE,
    state_hash    VARCHAR(64) NOT NULL,
    action_hash   VARCHAR(64) NOT NULL,
    reward_value  NUMERIC(12, 4) NOT NULL,
    reward_type   VARCHAR(20) NOT NULL DEFAULT 'immediate',
    reward_source VARCHAR(100),
    observed_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    metadata      JSONB NOT NULL DEFAULT '{}',
    CONSTRAINT rewards_state_hash_not_blank CHECK (btrim(state_hash) <> ''),
    CONSTRAINT rewards_action_hash_not_blank CHECK (btrim(action_hash) <> ''),
    CONSTRAINT rewards_reward_value_finite CHECK (reward_value <> 'NaN'),
    CONSTRAINT rewards_reward_type_valid CHECK (reward_type IN ('immediate', 'delayed', 'terminal'))
);

CREATE INDEX idx_rewards_trajectory_id ON rewards (trajectory_id);
CREATE INDEX idx_rewards_session_id ON rewards (session_id) WHERE session_id IS NOT NULL;
CREATE INDEX idx_rewards_agent_type_observed_at ON rewards (agent_type, observed_at DESC);

-- PATTERNS: learned strategies, versioned, evolving from a parent pattern.
CREATE TABLE patterns (
    pattern_id         UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    agent_type         VARCHAR(50) NOT NULL REFERENCES agent_types (agent_type),
    parent_pattern_id  UUID REFERENCES patterns (pattern_id) ON DELETE SET NULL,
    pattern_name       VARCHAR(255) NOT NULL,
    pattern_type       VARCHAR(50) NOT NULL,
    pattern_category   VARCHAR(100),
    pattern_data       JSONB NOT NULL,
    trigger_conditions JSONB NOT NULL DEFAULT '{}',
    expected_outcome   JSONB NOT NULL DEFAULT '{}',
    usage_count        INTEGER NOT NULL DEFAULT 0,
    success_count      INTEGER NOT NULL DEFAULT 0,
    failure_count      INTEGER NOT NULL DEFAULT 0,
    avg_reward         NUMERIC(12, 4) NOT NULL DEFAULT 0,
    confidence_score   NUMERIC(5, 4) NOT NULL DEFAULT 0,
    first_seen         TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_used          TIMESTAMPTZ,
    expires_at         TIMESTAMPTZ DEFAULT now() + INTERVAL '30 days',
    version            INTEGER NOT NULL DEFAULT 1,
    metadata           JSONB NOT NULL DEFAULT '{}',
    CONSTRAINT uniq_patterns_agent_type_pattern_name_version
        UNIQUE (agent_type, pattern_name, version),
    CONSTRAINT patterns_pattern_name_not_blank CHECK (btrim(pattern_name) <> ''),
    CONSTRAINT patterns_pattern_type_not_blank CHECK (btrim(pattern_type) <> ''),
    CONSTRAINT patterns_not_own_parent CHECK (parent_pattern_id <> pattern_id),
    CONSTRAINT patterns_usage_count_non_negative CHECK (usage_count >= 0),
    CONSTRAINT patterns_success_count_non_negative CHECK (success_count >= 0),
    CONSTRAINT patterns_failure_count_non_negative CHECK (failure_count >= 0),
    CONSTRAINT patterns_usage_count_covers_outcomes CHECK (success_count + failure_count <= usage_count),
    CONSTRAINT patterns_avg_reward_finite CHECK (avg_reward <> 'NaN'),
    CONSTRAINT patterns_confidence_score_range CHECK (confidence_score BETWEEN 0 AND 1),
    CONSTRAINT patterns_version_positive CHECK (version >= 1)
);

CREATE INDEX idx_patterns_agent_type_avg_reward ON patterns (agent_type, avg_reward DESC);
CREATE INDEX idx_patterns_pattern_data ON patterns USING gin (pattern_data);
CREATE INDEX idx_patterns_trigger_conditions ON patterns USING gin (trigger_conditions);
CREATE INDEX idx_patterns_pattern_name_trgm ON patterns USING gin (pattern_name gin_trgm_ops);
CREATE INDEX idx_patterns_parent_pattern_id ON patterns (parent_pattern_id)
    WHERE parent_pattern_id IS NOT NULL;
CREATE INDEX idx_patterns_expires_at ON patterns (expires_at) WHERE expires_at IS NOT NULL;

-- AGENT_STATES: the current learning state of each running agent instance.
CREATE TABLE agent_states (
    state_id                 UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    agent_type               VARCHAR(50) NOT NULL REFERENCES agent_types (agent_type),
    agent_instance_id        VARCHAR(100) NOT NULL,
    total_tasks              INTEGER NOT NULL DEFAULT 0,
    successful_tasks         INTEGER NOT NULL DEFAULT 0,
    failed_tasks             INTEGER NOT NULL DEFAULT 0,
    total_reward             NUMERIC(14, 4) NOT NULL DEFAULT 0,
    avg_reward               NUMERIC(12, 4) NOT NULL DEFAULT 0,
    current_exploration_rate NUMERIC(5, 4) NOT NULL DEFAULT 0.1,
    current_learning_rate    NUMERIC(5, 4) NOT NULL DEFAULT 0.1,
    success_rate             NUMERIC(5, 4) GENERATED ALWAYS AS (
        CASE WHEN total_tasks > 0 THEN round(successful_tasks::numeric / total_tasks, 4) ELSE 0 END
    ) STORED,
    patterns_learned         INTEGER NOT NULL DEFAULT 0,
    q_values_stored          INTEGER NOT NULL DEFAULT 0,
    status                   VARCHAR(20) NOT NULL DEFAULT 'idle',
    last_activity            TIMESTAMPTZ,
    initialized_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at               TIMESTAMPTZ NOT NULL DEFAULT now(),
    metadata                 JSONB NOT NULL DEFAULT '{}',
    CONSTRAINT uniq_agent_states_agent_type_agent_instance_id UNIQUE (agent_type, agent_instance_id),
    CONSTRAINT agent_states_agent_instance_id_not_blank CHECK (btrim(agent_instance_id) <> ''),
    CONSTRAINT agent_states_total_tasks_non_negative CHECK (total_tasks >= 0),
    CONSTRAINT agent_states_successful_tasks_non_negative CHECK (successful_tasks >= 0),
    CONSTRAINT agent_states_failed_tasks_non_negative CHECK (failed_tasks >= 0),
    CONSTRAINT agent_states_total_tasks_covers_outcomes CHECK (successful_tasks + failed_tasks <= total_tasks),
    CONSTRAINT agent_states_total_reward_finite CHECK (total_reward <> 'NaN'),
    CONSTRAINT agent_states_avg_reward_finite CHECK (avg_reward <> 'NaN'),
    CONSTRAINT agent_states_exploration_rate_range CHECK (current_exploration_rate BETWEEN 0 AND 1),
    CONSTRAINT agent_states_learning_rate_range CHECK (current_learning_rate BETWEEN 0 AND 1),
    CONSTRAINT agent_states_patterns_learned_non_negative CHECK (patterns_learned >= 0),
    CONSTRAINT agent_states_q_values_stored_non_negative CHECK (q_values_stored >= 0),
    CONSTRAINT agent_states_status_valid
        CHECK (status IN ('idle', 'active', 'learning', 'paused', 'error'))
);

CREATE INDEX idx_agent_states_status ON agent_states (status) WHERE status IN ('active', 'learning');

CREATE TRIGGER trg_agent_states_updated_at
    BEFORE UPDATE ON agent_states
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- A trigger function is never called directly.
REVOKE EXECUTE ON FUNCTION set_updated_at() FROM PUBLIC, qlearning_app, qlearning_readonly;
