-- AI Agent Orchestrator (seed 002): types, tables and indexes of the 11 subsystems.
-- Runs as ai_agent_owner inside the migration transaction (see docs/development.md).

-- ---------------------------------------------------------------------------------------------
-- The 13 ENUM types. agent_tier and task_priority are declared lowest first, so that
-- `current_tier >= 'gold'` and `ORDER BY priority DESC` follow the business order.
-- ---------------------------------------------------------------------------------------------
CREATE TYPE agent_type AS ENUM (
    'team-leader', 'worker', 'specialist', 'coordinator', 'reviewer', 'researcher'
);
CREATE TYPE agent_status AS ENUM ('active', 'idle', 'busy', 'offline', 'suspended', 'retired');
CREATE TYPE agent_tier AS ENUM ('bronze', 'silver', 'gold', 'platinum', 'diamond', 'legendary');
CREATE TYPE task_status AS ENUM (
    'pending', 'assigned', 'in_progress', 'blocked', 'completed', 'failed', 'cancelled'
);
CREATE TYPE task_priority AS ENUM ('low', 'medium', 'high', 'critical');
CREATE TYPE voting_algorithm AS ENUM (
    'simple_majority', 'weighted', 'quadratic', 'ranked_choice', 'consensus'
);
CREATE TYPE voting_status AS ENUM ('draft', 'open', 'closed', 'cancelled');
CREATE TYPE achievement_category AS ENUM (
    'performance', 'collaboration', 'innovation', 'reliability', 'leadership', 'learning', 'special'
);
CREATE TYPE battle_mode AS ENUM ('head_to_head', 'free_for_all', 'team', 'tournament', 'speed_run');
CREATE TYPE battle_status AS ENUM ('scheduled', 'in_progress', 'completed', 'cancelled');
CREATE TYPE mentorship_status AS ENUM ('pending', 'active', 'paused', 'completed', 'cancelled');
CREATE TYPE violation_type AS ENUM (
    'timeout', 'low_quality', 'resource_abuse', 'collusion', 'vote_manipulation', 'spam',
    'security', 'policy_breach'
);
CREATE TYPE appeal_status AS ENUM ('pending', 'under_review', 'approved', 'rejected', 'withdrawn');

-- ---------------------------------------------------------------------------------------------
-- Settings read by the functions (Elo K factor and initial rating, EigenTrust parameters, ...).
-- ---------------------------------------------------------------------------------------------
CREATE TABLE system_settings (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    setting_key VARCHAR(100) NOT NULL,
    setting_value NUMERIC NOT NULL,
    description TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT uniq_system_settings_setting_key UNIQUE (setting_key)
);

INSERT INTO system_settings (setting_key, setting_value, description) VALUES
    ('elo_k_factor', 32, 'Elo K factor applied to every rated battle'),
    ('elo_initial_rating', 1200, 'Elo rating of a new agent'),
    ('eigentrust_alpha', 0.15, 'EigenTrust weight of the pre-trusted distribution (a)'),
    ('eigentrust_epsilon', 0.000001, 'EigenTrust convergence threshold on the L1 change'),
    ('eigentrust_max_iterations', 100, 'EigenTrust iteration cap'),
    ('streak_bonus_per_day', 0.05, 'Point multiplier bonus per consecutive active day'),
    ('streak_bonus_max', 0.50, 'Upper bound of the streak bonus'),
    ('consensus_threshold', 0.75, 'Share of the vote weight an option needs under consensus');

-- ---------------------------------------------------------------------------------------------
-- 1. Agent management
-- ---------------------------------------------------------------------------------------------
CREATE TABLE agents (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    agent_id VARCHAR(100) NOT NULL,
    name VARCHAR(255) NOT NULL,
    type agent_type NOT NULL,
    status agent_status NOT NULL DEFAULT 'idle',
    description TEXT,
    model VARCHAR(100),
    capabilities JSONB NOT NULL DEFAULT '[]'::jsonb,
    total_points INTEGER NOT NULL DEFAULT 0,
    current_tier agent_tier NOT NULL DEFAULT 'bronze',
    elo_rating INTEGER,
    trust_score NUMERIC(5, 4) NOT NULL DEFAULT 0.5000,
    tasks_completed INTEGER NOT NULL DEFAULT 0,
    tasks_failed INTEGER NOT NULL DEFAULT 0,
    success_rate NUMERIC(5, 2),
    average_quality_score NUMERIC(5, 2),
    average_task_time_ms BIGINT,
    battles_won INTEGER NOT NULL DEFAULT 0,
    battles_lost INTEGER NOT NULL DEFAULT 0,
    last_active_at TIMESTAMPTZ,
    metadata JSONB NOT NULL DEFAULT '{}'::jsonb,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at TIMESTAMPTZ,
    CONSTRAINT uniq_agents_agent_id UNIQUE (agent_id),
    CONSTRAINT chk_agents_trust_score_range CHECK (trust_score BETWEEN 0 AND 1),
    CONSTRAINT chk_agents_success_rate_range CHECK (success_rate BETWEEN 0 AND 100),
    CONSTRAINT chk_agents_task_counts_non_negative CHECK (tasks_completed >= 0 AND tasks_failed >= 0)
);
CREATE INDEX idx_agents_agent_id ON agents (agent_id);
CREATE INDEX idx_agents_type_status ON agents (type, status) WHERE deleted_at IS NULL;
CREATE INDEX idx_agents_elo ON agents (elo_rating DESC);
CREATE INDEX idx_agents_tier_points ON agents (current_tier, total_points DESC) WHERE deleted_at IS NULL;
CREATE INDEX idx_agents_name_trgm ON agents USING gin (name gin_trgm_ops);
CREATE INDEX idx_agents_capabilities ON agents USING gin (capabilities);
CREATE INDEX idx_agents_metadata ON agents USING gin (metadata);

CREATE TABLE agent_skills (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    agent_id UUID NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    skill_name VARCHAR(100) NOT NULL,
    proficiency NUMERIC(5, 2) NOT NULL DEFAULT 0,
    experience_points INTEGER NOT NULL DEFAULT 0,
    last_used_at TIMESTAMPTZ,
    metadata JSONB NOT NULL DEFAULT '{}'::jsonb,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at TIMESTAMPTZ,
    CONSTRAINT chk_agent_skills_proficiency_range CHECK (proficiency BETWEEN 0 AND 100)
);
CREATE UNIQUE INDEX uniq_agent_skills_agent_skill ON agent_skills (agent_id, skill_name)
    WHERE deleted_at IS NULL;
CREATE INDEX idx_agent_skills_skill_name ON agent_skills (skill_name, proficiency DESC)
    WHERE deleted_at IS NULL;

CREATE TABLE agent_status_history (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    agent_id UUID NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    old_status agent_status,
    new_status agent_status NOT NULL,
    reason TEXT,
    metadata JSONB NOT NULL DEFAULT '{}'::jsonb,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX idx_agent_status_history_agent_created ON agent_status_history (agent_id, created_at DESC);

CREATE TABLE teams (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name VARCHAR(255) NOT NULL,
    leader_id UUID REFERENCES agents (id) ON DELETE SET NULL,
    description TEXT,
    metadata JSONB NOT NULL DEFAULT '{}'::jsonb,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at TIMESTAMPTZ
);
CREATE UNIQUE INDEX uniq_teams_name ON teams (name) WHERE deleted_at IS NULL;
CREATE INDEX idx_teams_leader_id ON teams (leader_id);

CREATE TABLE team_members (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    team_id UUID NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    agent_id UUID NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    role VARCHAR(50) NOT NULL DEFAULT 'member',
    joined_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    left_at TIMESTAMPTZ,
    CONSTRAINT uniq_team_members_team_agent UNIQUE (team_id, agent_id)
);
CREATE INDEX idx_team_members_agent_id ON team_members (agent_id);

-- Partitioned (monthly on created_at, managed by pg_partman below).
CREATE TABLE agent_activity_log (
    id UUID NOT NULL DEFAULT gen_random_uuid(),
    agent_id UUID NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    activity_type VARCHAR(50) NOT NULL,
    description TEXT,
    metadata JSONB NOT NULL DEFAULT '{}'::jsonb,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
CREATE INDEX idx_agent_activity_log_agent_created ON agent_activity_log (agent_id, created_at DESC);
CREATE INDEX idx_agent_activity_log_type ON agent_activity_log (activity_type, created_at DESC);

-- ---------------------------------------------------------------------------------------------
-- 2. Task distribution
-- ---------------------------------------------------------------------------------------------
CREATE TABLE task_queues (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name VARCHAR(100) NOT NULL,
    description TEXT,
    max_concurrency INTEGER NOT NULL DEFAULT 10,
    is_paused BOOLEAN NOT NULL DEFAULT false,
    metadata JSONB NOT NULL DEFAULT '{}'::jsonb,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at TIMESTAMPTZ,
    CONSTRAINT chk_task_queues_max_concurrency_positive CHECK (max_concurrency > 0)
);
CREATE UNIQUE INDEX uniq_task_queues_name ON task_queues (name) WHERE deleted_at IS NULL;

CREATE TABLE tasks (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    task_id VARCHAR(100) NOT NULL,
    title VARCHAR(500) NOT NULL,
    description TEXT,
    task_type VARCHAR(100),
    queue_id UUID REFERENCES task_queues (id) ON DELETE SET NULL,
    status task_status NOT NULL DEFAULT 'pending',
    priority task_priority NOT NULL DEFAULT 'medium',
    assigned_to UUID REFERENCES agents (id) ON DELETE SET NULL,
    created_by UUID REFERENCES agents (id) ON DELETE SET NULL,
    required_skills TEXT[] NOT NULL DEFAULT '{}',
    input_data JSONB NOT NULL DEFAULT '{}'::jsonb,
    result JSONB,
    quality_score NUMERIC(5, 2),
    points_reward INTEGER NOT NULL DEFAULT 0,
    retry_count INTEGER NOT NULL DEFAULT 0,
    max_retries INTEGER NOT NULL DEFAULT 3,
    deadline_at TIMESTAMPTZ,
    assigned_at TIMESTAMPTZ,
    started_at TIMESTAMPTZ,
    completed_at TIMESTAMPTZ,
    metadata JSONB NOT NULL DEFAULT '{}'::jsonb,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at TIMESTAMPTZ,
    CONSTRAINT uniq_tasks_task_id UNIQUE (task_id),
    CONSTRAINT chk_tasks_quality_score_range CHECK (quality_score BETWEEN 0 AND 100),
    CONSTRAINT chk_tasks_points_reward_non_negative CHECK (points_reward >= 0),
    CONSTRAINT chk_tasks_retry_count_non_negative CHECK (retry_count >= 0),
    CONSTRAINT chk_tasks_completed_after_started CHECK (completed_at IS NULL OR started_at IS NULL OR completed_at >= started_at)
);
CREATE INDEX idx_tasks_status ON tasks (status);
CREATE INDEX idx_tasks_assigned_to ON tasks (assigned_to);
CREATE INDEX idx_tasks_priority_status ON tasks (priority, status) WHERE deleted_at IS NULL;
CREATE INDEX idx_tasks_queue_pending ON tasks (queue_id, priority DESC, created_at)
    WHERE status = 'pending' AND deleted_at IS NULL;
CREATE INDEX idx_tasks_created_by ON tasks (created_by);
CREATE INDEX idx_tasks_required_skills ON tasks USING gin (required_skills);
CREATE INDEX idx_tasks_metadata ON tasks USING gin (metadata);

CREATE TABLE task_dependencies (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    task_id UUID NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    depends_on_task_id UUID NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    dependency_type VARCHAR(50) NOT NULL DEFAULT 'finish_to_start',
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT uniq_task_dependencies_task_depends UNIQUE (task_id, depends_on_task_id),
    CONSTRAINT chk_task_dependencies_no_self_dependency CHECK (task_id <> depends_on_task_id)
);
CREATE INDEX idx_task_dependencies_depends_on ON task_dependencies (depends_on_task_id);

CREATE TABLE task_assignments (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    task_id UUID NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    agent_id UUID NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    assigned_by UUID REFERENCES agents (id) ON DELETE SET NULL,
    outcome VARCHAR(20) NOT NULL DEFAULT 'offered',
    assigned_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    responded_at TIMESTAMPTZ,
    CONSTRAINT chk_task_assignments_outcome CHECK (
        outcome IN ('offered', 'accepted', 'declined', 'expired', 'revoked')
    )
);
CREATE INDEX idx_task_assignments_task_id ON task_assignments (task_id);
CREATE INDEX idx_task_assignments_agent_id ON task_assignments (agent_id, assigned_at DESC);
CREATE INDEX idx_task_assignments_assigned_by ON task_assignments (assigned_by);

CREATE TABLE task_results (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    task_id UUID NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    agent_id UUID NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    output JSONB NOT NULL DEFAULT '{}'::jsonb,
    quality_score NUMERIC(5, 2),
    reviewed_by UUID REFERENCES agents (id) ON DELETE SET NULL,
    review_notes TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT chk_task_results_quality_score_range CHECK (quality_score BETWEEN 0 AND 100)
);
CREATE INDEX idx_task_results_task_id ON task_results (task_id);
CREATE INDEX idx_task_results_agent_id ON task_results (agent_id);
CREATE INDEX idx_task_results_reviewed_by ON task_results (reviewed_by);

-- Partitioned.
CREATE TABLE task_history (
    id UUID NOT NULL DEFAULT gen_random_uuid(),
    task_id UUID NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    agent_id UUID REFERENCES agents (id) ON DELETE SET NULL,
    event_type VARCHAR(50) NOT NULL,
    old_status task_status,
    new_status task_status,
    details JSONB NOT NULL DEFAULT '{}'::jsonb,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
CREATE INDEX idx_task_history_task_created ON task_history (task_id, created_at DESC);
CREATE INDEX idx_task_history_agent_created ON task_history (agent_id, created_at DESC);

-- ---------------------------------------------------------------------------------------------
-- 3. Voting
-- ---------------------------------------------------------------------------------------------
CREATE TABLE voting_sessions (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    session_id VARCHAR(100) NOT NULL,
    topic VARCHAR(500) NOT NULL,
    description TEXT,
    algorithm voting_algorithm NOT NULL DEFAULT 'simple_majority',
    status voting_status NOT NULL DEFAULT 'open',
    options JSONB NOT NULL,
    results JSONB,
    quorum INTEGER NOT NULL DEFAULT 1,
    created_by UUID REFERENCES agents (id) ON DELETE SET NULL,
    opens_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    closes_at TIMESTAMPTZ,
    closed_at TIMESTAMPTZ,
    metadata JSONB NOT NULL DEFAULT '{}'::jsonb,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at TIMESTAMPTZ,
    CONSTRAINT uniq_voting_sessions_session_id UNIQUE (session_id),
    CONSTRAINT chk_voting_sessions_options_array CHECK (
        jsonb_typeof(options) = 'array' AND jsonb_array_length(options) >= 2
    ),
    CONSTRAINT chk_voting_sessions_quorum_positive CHECK (quorum > 0)
);
CREATE INDEX idx_voting_sessions_status ON voting_sessions (status);
CREATE INDEX idx_voting_sessions_created_by ON voting_sessions (created_by);

CREATE TABLE votes (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    session_id UUID NOT NULL REFERENCES voting_sessions (id) ON DELETE CASCADE,
    agent_id UUID NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    vote_option VARCHAR(255) NOT NULL,
    ranking TEXT[],
    confidence NUMERIC(4, 3) NOT NULL DEFAULT 1.000,
    weight NUMERIC(8, 4) NOT NULL DEFAULT 1,
    tokens_spent INTEGER NOT NULL DEFAULT 0,
    rationale TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT uniq_votes_session_agent UNIQUE (session_id, agent_id),
    CONSTRAINT chk_votes_confidence_range CHECK (confidence BETWEEN 0 AND 1),
    CONSTRAINT chk_votes_weight_non_negative CHECK (weight >= 0),
    CONSTRAINT chk_votes_tokens_spent_non_negative CHECK (tokens_spent >= 0)
);
CREATE INDEX idx_votes_agent_id ON votes (agent_id);
CREATE INDEX idx_votes_session_option ON votes (session_id, vote_option);

CREATE TABLE vote_audit_trail (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    session_id UUID NOT NULL REFERENCES voting_sessions (id) ON DELETE CASCADE,
    vote_id UUID REFERENCES votes (id) ON DELETE SET NULL,
    agent_id UUID REFERENCES agents (id) ON DELETE SET NULL,
    event_type VARCHAR(50) NOT NULL,
    payload JSONB NOT NULL DEFAULT '{}'::jsonb,
    signature VARCHAR(128) NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX idx_vote_audit_trail_session_created ON vote_audit_trail (session_id, created_at);
CREATE INDEX idx_vote_audit_trail_vote_id ON vote_audit_trail (vote_id);
CREATE INDEX idx_vote_audit_trail_agent_id ON vote_audit_trail (agent_id);

-- ---------------------------------------------------------------------------------------------
-- 4. Brainstorming
-- ---------------------------------------------------------------------------------------------
CREATE TABLE brainstorm_sessions (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    session_id VARCHAR(100) NOT NULL,
    topic VARCHAR(500) NOT NULL,
    description TEXT,
    facilitator_id UUID REFERENCES agents (id) ON DELETE SET NULL,
    status VARCHAR(20) NOT NULL DEFAULT 'active',
    technique VARCHAR(50) NOT NULL DEFAULT 'free_form',
    total_ideas INTEGER NOT NULL DEFAULT 0,
    participant_count INTEGER NOT NULL DEFAULT 0,
    started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    ended_at TIMESTAMPTZ,
    metadata JSONB NOT NULL DEFAULT '{}'::jsonb,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at TIMESTAMPTZ,
    CONSTRAINT uniq_brainstorm_sessions_session_id UNIQUE (session_id),
    CONSTRAINT chk_brainstorm_sessions_status CHECK (status IN ('active', 'voting', 'completed', 'cancelled'))
);
CREATE INDEX idx_brainstorm_sessions_facilitator_id ON brainstorm_sessions (facilitator_id);
CREATE INDEX idx_brainstorm_sessions_status ON brainstorm_sessions (status) WHERE deleted_at IS NULL;

CREATE TABLE brainstorm_participants (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    session_id UUID NOT NULL REFERENCES brainstorm_sessions (id) ON DELETE CASCADE,
    agent_id UUID NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    role VARCHAR(50) NOT NULL DEFAULT 'contributor',
    ideas_contributed INTEGER NOT NULL DEFAULT 0,
    joined_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    left_at TIMESTAMPTZ,
    CONSTRAINT uniq_brainstorm_participants_session_agent UNIQUE (session_id, agent_id)
);
CREATE INDEX idx_brainstorm_participants_agent_id ON brainstorm_participants (agent_id);

CREATE TABLE ideas (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    session_id UUID NOT NULL REFERENCES brainstorm_sessions (id) ON DELETE CASCADE,
    agent_id UUID REFERENCES agents (id) ON DELETE SET NULL,
    parent_idea_id UUID REFERENCES ideas (id) ON DELETE SET NULL,
    title VARCHAR(500) NOT NULL,
    content TEXT NOT NULL,
    category VARCHAR(100),
    tags TEXT[] NOT NULL DEFAULT '{}',
    vote_score INTEGER NOT NULL DEFAULT 0,
    status VARCHAR(20) NOT NULL DEFAULT 'proposed',
    metadata JSONB NOT NULL DEFAULT '{}'::jsonb,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at TIMESTAMPTZ,
    CONSTRAINT chk_ideas_status CHECK (status IN ('proposed', 'shortlisted', 'selected', 'rejected', 'merged'))
);
CREATE INDEX idx_ideas_session_score ON ideas (session_id, vote_score DESC) WHERE deleted_at IS NULL;
CREATE INDEX idx_ideas_agent_id ON ideas (agent_id);
CREATE INDEX idx_ideas_parent_idea_id ON ideas (parent_idea_id);
CREATE INDEX idx_ideas_tags ON ideas USING gin (tags);
CREATE INDEX idx_ideas_content_trgm ON ideas USING gin (content gin_trgm_ops);

CREATE TABLE idea_combinations (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    session_id UUID NOT NULL REFERENCES brainstorm_sessions (id) ON DELETE CASCADE,
    source_idea_ids UUID[] NOT NULL,
    result_idea_id UUID REFERENCES ideas (id) ON DELETE SET NULL,
    combined_by UUID REFERENCES agents (id) ON DELETE SET NULL,
    rationale TEXT,
    synergy_score NUMERIC(5, 2),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT chk_idea_combinations_two_sources CHECK (cardinality(source_idea_ids) >= 2)
);
CREATE INDEX idx_idea_combinations_session_id ON idea_combinations (session_id);
CREATE INDEX idx_idea_combinations_result_idea_id ON idea_combinations (result_idea_id);
CREATE INDEX idx_idea_combinations_combined_by ON idea_combinations (combined_by);
CREATE INDEX idx_idea_combinations_sources ON idea_combinations USING gin (source_idea_ids);

CREATE TABLE idea_votes (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    idea_id UUID NOT NULL REFERENCES ideas (id) ON DELETE CASCADE,
    agent_id UUID NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    score SMALLINT NOT NULL,
    comment TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT uniq_idea_votes_idea_agent UNIQUE (idea_id, agent_id),
    CONSTRAINT chk_idea_votes_score_range CHECK (score BETWEEN -1 AND 5)
);
CREATE INDEX idx_idea_votes_agent_id ON idea_votes (agent_id);

-- ---------------------------------------------------------------------------------------------
-- 5. Gamification
-- ---------------------------------------------------------------------------------------------
CREATE TABLE tier_definitions (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    tier agent_tier NOT NULL,
    min_points INTEGER NOT NULL,
    point_multiplier NUMERIC(4, 2) NOT NULL,
    perks JSONB NOT NULL DEFAULT '{}'::jsonb,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT uniq_tier_definitions_tier UNIQUE (tier),
    CONSTRAINT chk_tier_definitions_multiplier_positive CHECK (point_multiplier > 0)
);
INSERT INTO tier_definitions (tier, min_points, point_multiplier, perks) VALUES
    ('bronze', 0, 1.00, '{"task_slots": 1}'),
    ('silver', 1000, 1.10, '{"task_slots": 2}'),
    ('gold', 5000, 1.25, '{"task_slots": 3, "priority_boost": 1}'),
    ('platinum', 15000, 1.50, '{"task_slots": 4, "priority_boost": 2}'),
    ('diamond', 40000, 1.75, '{"task_slots": 6, "priority_boost": 3}'),
    ('legendary', 100000, 2.00, '{"task_slots": 8, "priority_boost": 5}');

CREATE TABLE tier_history (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    agent_id UUID NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    old_tier agent_tier,
    new_tier agent_tier NOT NULL,
    total_points INTEGER NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX idx_tier_history_agent_created ON tier_history (agent_id, created_at DESC);

CREATE TABLE achievements (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    achievement_id VARCHAR(100) NOT NULL,
    name VARCHAR(255) NOT NULL,
    description TEXT,
    category achievement_category NOT NULL,
    requirements JSONB NOT NULL DEFAULT '{}'::jsonb,
    points_reward INTEGER NOT NULL DEFAULT 0,
    rarity VARCHAR(20) NOT NULL DEFAULT 'common',
    badge_icon VARCHAR(255),
    is_hidden BOOLEAN NOT NULL DEFAULT false,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at TIMESTAMPTZ,
    CONSTRAINT uniq_achievements_achievement_id UNIQUE (achievement_id),
    CONSTRAINT chk_achievements_points_reward_non_negative CHECK (points_reward >= 0),
    CONSTRAINT chk_achievements_rarity CHECK (rarity IN ('common', 'uncommon', 'rare', 'epic', 'legendary'))
);
CREATE INDEX idx_achievements_category ON achievements (category) WHERE deleted_at IS NULL;
CREATE INDEX idx_achievements_requirements ON achievements USING gin (requirements);

CREATE TABLE agent_achievements (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    agent_id UUID NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    achievement_id UUID NOT NULL REFERENCES achievements (id) ON DELETE CASCADE,
    progress NUMERIC(5, 2) NOT NULL DEFAULT 100,
    unlocked_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    metadata JSONB NOT NULL DEFAULT '{}'::jsonb,
    CONSTRAINT uniq_agent_achievements_agent_achievement UNIQUE (agent_id, achievement_id),
    CONSTRAINT chk_agent_achievements_progress_range CHECK (progress BETWEEN 0 AND 100)
);
CREATE INDEX idx_agent_achievements_achievement_id ON agent_achievements (achievement_id);

-- Partitioned.
CREATE TABLE point_transactions (
    id UUID NOT NULL DEFAULT gen_random_uuid(),
    agent_id UUID NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    category VARCHAR(50) NOT NULL,
    base_points INTEGER NOT NULL,
    multiplier NUMERIC(5, 2),
    final_points INTEGER,
    balance_after INTEGER,
    reason TEXT,
    reference_type VARCHAR(50),
    reference_id UUID,
    metadata JSONB NOT NULL DEFAULT '{}'::jsonb,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (id, created_at),
    CONSTRAINT chk_point_transactions_multiplier_positive CHECK (multiplier > 0)
) PARTITION BY RANGE (created_at);
CREATE INDEX idx_point_transactions_agent_created ON point_transactions (agent_id, created_at DESC);
CREATE INDEX idx_point_transactions_category ON point_transactions (category, created_at DESC);

CREATE TABLE streaks (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    agent_id UUID NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    streak_type VARCHAR(50) NOT NULL DEFAULT 'daily_activity',
    current_count INTEGER NOT NULL DEFAULT 0,
    longest_count INTEGER NOT NULL DEFAULT 0,
    last_activity_date DATE,
    started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT uniq_streaks_agent_type UNIQUE (agent_id, streak_type),
    CONSTRAINT chk_streaks_counts CHECK (current_count >= 0 AND longest_count >= current_count)
);

-- ---------------------------------------------------------------------------------------------
-- 6. Reputation
-- ---------------------------------------------------------------------------------------------
CREATE TABLE trust_graph (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    from_agent_id UUID NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    to_agent_id UUID NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    local_trust NUMERIC(5, 4) NOT NULL,
    interaction_count INTEGER NOT NULL DEFAULT 0,
    positive_interactions INTEGER NOT NULL DEFAULT 0,
    negative_interactions INTEGER NOT NULL DEFAULT 0,
    last_interaction_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT uniq_trust_graph_from_to UNIQUE (from_agent_id, to_agent_id),
    CONSTRAINT chk_trust_graph_no_self_trust CHECK (from_agent_id <> to_agent_id),
    CONSTRAINT chk_trust_graph_local_trust_range CHECK (local_trust BETWEEN 0 AND 1),
    CONSTRAINT chk_trust_graph_interaction_count_non_negative CHECK (interaction_count >= 0)
);
CREATE INDEX idx_trust_graph_from ON trust_graph (from_agent_id);
CREATE INDEX idx_trust_graph_to ON trust_graph (to_agent_id);

CREATE TABLE pre_trusted_agents (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    agent_id UUID NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    reason TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT uniq_pre_trusted_agents_agent_id UNIQUE (agent_id)
);

CREATE TABLE peer_ratings (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    rater_id UUID NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    ratee_id UUID NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    task_id UUID REFERENCES tasks (id) ON DELETE SET NULL,
    rating NUMERIC(3, 2) NOT NULL,
    context VARCHAR(100) NOT NULL DEFAULT 'general',
    comment TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT chk_peer_ratings_no_self_rating CHECK (rater_id <> ratee_id),
    CONSTRAINT chk_peer_ratings_rating_range CHECK (rating BETWEEN 1 AND 5)
);
CREATE INDEX idx_peer_ratings_ratee_created ON peer_ratings (ratee_id, created_at DESC);
CREATE INDEX idx_peer_ratings_rater_id ON peer_ratings (rater_id);
CREATE INDEX idx_peer_ratings_task_id ON peer_ratings (task_id);

CREATE TABLE eigentrust_runs (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    alpha NUMERIC(6, 5) NOT NULL,
    epsilon NUMERIC NOT NULL,
    iterations INTEGER NOT NULL,
    final_delta DOUBLE PRECISION NOT NULL,
    converged BOOLEAN NOT NULL,
    agent_count INTEGER NOT NULL,
    edge_count INTEGER NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX idx_eigentrust_runs_finished_at ON eigentrust_runs (finished_at DESC);

CREATE TABLE global_trust_scores (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    agent_id UUID NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    eigentrust_score NUMERIC(12, 10) NOT NULL,
    persistence_score NUMERIC(5, 4) NOT NULL DEFAULT 0,
    competence_score NUMERIC(5, 4) NOT NULL DEFAULT 0,
    composite_score NUMERIC(5, 4) NOT NULL DEFAULT 0,
    trust_level VARCHAR(20) NOT NULL,
    run_id UUID REFERENCES eigentrust_runs (id) ON DELETE SET NULL,
    computed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT uniq_global_trust_scores_agent_id UNIQUE (agent_id),
    CONSTRAINT chk_global_trust_scores_eigentrust_range CHECK (eigentrust_score BETWEEN 0 AND 1),
    CONSTRAINT chk_global_trust_scores_trust_level CHECK (
        trust_level IN ('untrusted', 'low', 'moderate', 'good', 'excellent', 'outstanding')
    )
);
CREATE INDEX idx_global_trust_scores_eigentrust ON global_trust_scores (eigentrust_score DESC);
CREATE INDEX idx_global_trust_scores_run_id ON global_trust_scores (run_id);

-- Partitioned.
CREATE TABLE reputation_history (
    id UUID NOT NULL DEFAULT gen_random_uuid(),
    agent_id UUID NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    eigentrust_score NUMERIC(12, 10) NOT NULL,
    composite_score NUMERIC(5, 4) NOT NULL,
    trust_level VARCHAR(20) NOT NULL,
    run_id UUID,
    details JSONB NOT NULL DEFAULT '{}'::jsonb,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
CREATE INDEX idx_reputation_history_agent_created ON reputation_history (agent_id, created_at DESC);

-- ---------------------------------------------------------------------------------------------
-- 7. Battles
-- ---------------------------------------------------------------------------------------------
CREATE TABLE battles (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    battle_id VARCHAR(100) NOT NULL,
    title VARCHAR(255) NOT NULL,
    mode battle_mode NOT NULL DEFAULT 'head_to_head',
    status battle_status NOT NULL DEFAULT 'scheduled',
    challenge JSONB NOT NULL DEFAULT '{}'::jsonb,
    prize_pool INTEGER NOT NULL DEFAULT 0,
    is_rated BOOLEAN NOT NULL DEFAULT true,
    winner_id UUID REFERENCES agents (id) ON DELETE SET NULL,
    scheduled_at TIMESTAMPTZ,
    started_at TIMESTAMPTZ,
    completed_at TIMESTAMPTZ,
    metadata JSONB NOT NULL DEFAULT '{}'::jsonb,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at TIMESTAMPTZ,
    CONSTRAINT uniq_battles_battle_id UNIQUE (battle_id),
    CONSTRAINT chk_battles_prize_pool_non_negative CHECK (prize_pool >= 0)
);
CREATE INDEX idx_battles_status ON battles (status) WHERE deleted_at IS NULL;
CREATE INDEX idx_battles_winner_id ON battles (winner_id);

CREATE TABLE battle_participants (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    battle_id UUID NOT NULL REFERENCES battles (id) ON DELETE CASCADE,
    agent_id UUID NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    team_label VARCHAR(50),
    score NUMERIC(10, 2),
    rank INTEGER,
    elo_before INTEGER,
    elo_after INTEGER,
    elo_change INTEGER,
    points_awarded INTEGER NOT NULL DEFAULT 0,
    joined_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT uniq_battle_participants_battle_agent UNIQUE (battle_id, agent_id),
    CONSTRAINT chk_battle_participants_rank_positive CHECK (rank > 0)
);
CREATE INDEX idx_battle_participants_agent_id ON battle_participants (agent_id);

CREATE TABLE battle_rounds (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    battle_id UUID NOT NULL REFERENCES battles (id) ON DELETE CASCADE,
    round_number INTEGER NOT NULL,
    challenge JSONB NOT NULL DEFAULT '{}'::jsonb,
    scores JSONB NOT NULL DEFAULT '{}'::jsonb,
    started_at TIMESTAMPTZ,
    completed_at TIMESTAMPTZ,
    CONSTRAINT uniq_battle_rounds_battle_round UNIQUE (battle_id, round_number),
    CONSTRAINT chk_battle_rounds_round_number_positive CHECK (round_number > 0)
);

CREATE TABLE elo_history (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    agent_id UUID NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    battle_id UUID REFERENCES battles (id) ON DELETE SET NULL,
    old_rating INTEGER NOT NULL,
    new_rating INTEGER NOT NULL,
    change INTEGER NOT NULL,
    k_factor NUMERIC(6, 2) NOT NULL,
    expected_score NUMERIC(6, 5) NOT NULL,
    actual_score NUMERIC(6, 5) NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT chk_elo_history_change CHECK (change = new_rating - old_rating)
);
CREATE INDEX idx_elo_history_agent_created ON elo_history (agent_id, created_at DESC);
CREATE INDEX idx_elo_history_battle_id ON elo_history (battle_id);

-- ---------------------------------------------------------------------------------------------
-- 8. Leaderboards
-- ---------------------------------------------------------------------------------------------
CREATE TABLE leaderboard_categories (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    category VARCHAR(50) NOT NULL,
    description TEXT,
    score_source VARCHAR(50) NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT uniq_leaderboard_categories_category UNIQUE (category),
    CONSTRAINT chk_leaderboard_categories_score_source CHECK (
        score_source IN ('points', 'tasks_completed', 'elo_rating', 'trust', 'quality')
    )
);
INSERT INTO leaderboard_categories (category, description, score_source) VALUES
    ('overall', 'Points earned in the period', 'points'),
    ('tasks', 'Tasks completed in the period', 'tasks_completed'),
    ('battles', 'Current Elo rating', 'elo_rating'),
    ('reputation', 'Composite trust score', 'trust'),
    ('quality', 'Average quality of tasks completed in the period', 'quality');

CREATE TABLE leaderboard_rankings (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    category VARCHAR(50) NOT NULL,
    period VARCHAR(20) NOT NULL,
    period_start DATE NOT NULL,
    period_end DATE NOT NULL,
    agent_id UUID NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    rank INTEGER NOT NULL,
    score NUMERIC(14, 4) NOT NULL,
    previous_rank INTEGER,
    rank_change INTEGER,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT uniq_leaderboard_rankings_category_period_agent UNIQUE (category, period, period_start, agent_id),
    CONSTRAINT chk_leaderboard_rankings_period CHECK (period IN ('daily', 'weekly', 'monthly', 'all_time')),
    CONSTRAINT chk_leaderboard_rankings_rank_positive CHECK (rank > 0),
    CONSTRAINT chk_leaderboard_rankings_period_order CHECK (period_end >= period_start)
);
CREATE INDEX idx_leaderboard_category_period ON leaderboard_rankings (category, period, period_start);
CREATE INDEX idx_leaderboard_rankings_agent_id ON leaderboard_rankings (agent_id);

CREATE TABLE hall_of_fame (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    agent_id UUID NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    tier agent_tier NOT NULL,
    title VARCHAR(255) NOT NULL,
    badge VARCHAR(100),
    citation TEXT,
    category VARCHAR(50),
    period VARCHAR(20),
    inducted_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    metadata JSONB NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX idx_hall_of_fame_agent_id ON hall_of_fame (agent_id);
CREATE INDEX idx_hall_of_fame_inducted_at ON hall_of_fame (inducted_at DESC);

-- ---------------------------------------------------------------------------------------------
-- 9. Mentorship
-- ---------------------------------------------------------------------------------------------
CREATE TABLE mentor_profiles (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    agent_id UUID NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    specialties TEXT[] NOT NULL DEFAULT '{}',
    max_mentees INTEGER NOT NULL DEFAULT 3,
    is_accepting BOOLEAN NOT NULL DEFAULT true,
    average_rating NUMERIC(3, 2),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT uniq_mentor_profiles_agent_id UNIQUE (agent_id),
    CONSTRAINT chk_mentor_profiles_max_mentees_positive CHECK (max_mentees > 0)
);
CREATE INDEX idx_mentor_profiles_specialties ON mentor_profiles USING gin (specialties);

CREATE TABLE mentorship_curriculum (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    skill_name VARCHAR(100) NOT NULL,
    level INTEGER NOT NULL,
    title VARCHAR(255) NOT NULL,
    description TEXT,
    objectives TEXT[] NOT NULL DEFAULT '{}',
    assessment_tasks JSONB NOT NULL DEFAULT '[]'::jsonb,
    estimated_sessions INTEGER NOT NULL DEFAULT 1,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at TIMESTAMPTZ,
    CONSTRAINT chk_mentorship_curriculum_level_range CHECK (level BETWEEN 1 AND 10)
);
CREATE UNIQUE INDEX uniq_mentorship_curriculum_skill_level ON mentorship_curriculum (skill_name, level)
    WHERE deleted_at IS NULL;

CREATE TABLE mentorship_pairings (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    mentor_id UUID NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    mentee_id UUID NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    skill_focus VARCHAR(100) NOT NULL,
    status mentorship_status NOT NULL DEFAULT 'pending',
    planned_sessions INTEGER NOT NULL DEFAULT 10,
    completed_sessions INTEGER NOT NULL DEFAULT 0,
    goals JSONB NOT NULL DEFAULT '[]'::jsonb,
    started_at TIMESTAMPTZ,
    ended_at TIMESTAMPTZ,
    metadata JSONB NOT NULL DEFAULT '{}'::jsonb,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at TIMESTAMPTZ,
    CONSTRAINT chk_mentorship_pairings_distinct_agents CHECK (mentor_id <> mentee_id),
    CONSTRAINT chk_mentorship_pairings_sessions CHECK (planned_sessions > 0 AND completed_sessions >= 0)
);
CREATE INDEX idx_mentorship_pairings_mentor_id ON mentorship_pairings (mentor_id) WHERE deleted_at IS NULL;
CREATE INDEX idx_mentorship_pairings_mentee_id ON mentorship_pairings (mentee_id) WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX uniq_mentorship_pairings_active ON mentorship_pairings (mentor_id, mentee_id, skill_focus)
    WHERE status IN ('pending', 'active', 'paused') AND deleted_at IS NULL;

CREATE TABLE mentorship_sessions (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    pairing_id UUID NOT NULL REFERENCES mentorship_pairings (id) ON DELETE CASCADE,
    session_number INTEGER NOT NULL,
    topic VARCHAR(255) NOT NULL,
    curriculum_id UUID REFERENCES mentorship_curriculum (id) ON DELETE SET NULL,
    objectives_met TEXT[] NOT NULL DEFAULT '{}',
    mentor_rating SMALLINT,
    mentee_rating SMALLINT,
    duration_minutes INTEGER,
    notes TEXT,
    held_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT uniq_mentorship_sessions_pairing_number UNIQUE (pairing_id, session_number),
    CONSTRAINT chk_mentorship_sessions_ratings CHECK (
        (mentor_rating IS NULL OR mentor_rating BETWEEN 1 AND 5)
        AND (mentee_rating IS NULL OR mentee_rating BETWEEN 1 AND 5)
    )
);
CREATE INDEX idx_mentorship_sessions_curriculum_id ON mentorship_sessions (curriculum_id);

CREATE TABLE mentee_progress (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    pairing_id UUID NOT NULL REFERENCES mentorship_pairings (id) ON DELETE CASCADE,
    curriculum_id UUID NOT NULL REFERENCES mentorship_curriculum (id) ON DELETE CASCADE,
    progress_percentage NUMERIC(5, 2) NOT NULL DEFAULT 0,
    mastery_level VARCHAR(20) NOT NULL DEFAULT 'novice',
    assessment_score NUMERIC(5, 2),
    last_assessed_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT uniq_mentee_progress_pairing_curriculum UNIQUE (pairing_id, curriculum_id),
    CONSTRAINT chk_mentee_progress_percentage_range CHECK (progress_percentage BETWEEN 0 AND 100),
    CONSTRAINT chk_mentee_progress_mastery_level CHECK (
        mastery_level IN ('novice', 'beginner', 'intermediate', 'advanced', 'expert')
    )
);
CREATE INDEX idx_mentee_progress_curriculum_id ON mentee_progress (curriculum_id);

-- ---------------------------------------------------------------------------------------------
-- 10. Rewards
-- ---------------------------------------------------------------------------------------------
CREATE TABLE resource_pools (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    resource_type VARCHAR(50) NOT NULL,
    unit VARCHAR(20) NOT NULL DEFAULT 'units',
    total_capacity INTEGER NOT NULL,
    available INTEGER NOT NULL,
    metadata JSONB NOT NULL DEFAULT '{}'::jsonb,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT uniq_resource_pools_resource_type UNIQUE (resource_type),
    CONSTRAINT chk_resource_pools_available_range CHECK (available BETWEEN 0 AND total_capacity)
);

CREATE TABLE resource_allocations (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    pool_id UUID NOT NULL REFERENCES resource_pools (id) ON DELETE CASCADE,
    agent_id UUID NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    resource_type VARCHAR(50) NOT NULL,
    amount INTEGER NOT NULL,
    performance_tier agent_tier NOT NULL,
    reason TEXT,
    allocated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ,
    released_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT chk_resource_allocations_amount_positive CHECK (amount > 0)
);
CREATE INDEX idx_resource_allocations_agent_active ON resource_allocations (agent_id)
    WHERE released_at IS NULL;
CREATE INDEX idx_resource_allocations_pool_id ON resource_allocations (pool_id);
CREATE INDEX idx_resource_allocations_expires_at ON resource_allocations (expires_at)
    WHERE released_at IS NULL;

CREATE TABLE agent_permissions (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    agent_id UUID NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    permission VARCHAR(100) NOT NULL,
    required_tier agent_tier,
    granted_reason TEXT,
    granted_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ,
    revoked_at TIMESTAMPTZ
);
CREATE UNIQUE INDEX uniq_agent_permissions_agent_permission ON agent_permissions (agent_id, permission)
    WHERE revoked_at IS NULL;

CREATE TABLE priority_queue_entries (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    agent_id UUID NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    queue_id UUID REFERENCES task_queues (id) ON DELETE CASCADE,
    priority_boost INTEGER NOT NULL,
    reason TEXT,
    valid_from TIMESTAMPTZ NOT NULL DEFAULT now(),
    valid_until TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT chk_priority_queue_entries_boost_range CHECK (priority_boost BETWEEN 1 AND 10)
);
CREATE INDEX idx_priority_queue_entries_agent_id ON priority_queue_entries (agent_id, valid_until);
CREATE INDEX idx_priority_queue_entries_queue_id ON priority_queue_entries (queue_id);

CREATE TABLE rewards (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    reward_key VARCHAR(100) NOT NULL,
    name VARCHAR(255) NOT NULL,
    reward_type VARCHAR(50) NOT NULL,
    cost_points INTEGER NOT NULL DEFAULT 0,
    required_tier agent_tier NOT NULL DEFAULT 'bronze',
    payload JSONB NOT NULL DEFAULT '{}'::jsonb,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at TIMESTAMPTZ,
    CONSTRAINT uniq_rewards_reward_key UNIQUE (reward_key),
    CONSTRAINT chk_rewards_reward_type CHECK (reward_type IN ('resource', 'permission', 'priority', 'badge')),
    CONSTRAINT chk_rewards_cost_points_non_negative CHECK (cost_points >= 0)
);

CREATE TABLE reward_claims (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    reward_id UUID NOT NULL REFERENCES rewards (id) ON DELETE CASCADE,
    agent_id UUID NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    points_spent INTEGER NOT NULL DEFAULT 0,
    claimed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT chk_reward_claims_points_spent_non_negative CHECK (points_spent >= 0)
);
CREATE INDEX idx_reward_claims_reward_id ON reward_claims (reward_id);
CREATE INDEX idx_reward_claims_agent_id ON reward_claims (agent_id, claimed_at DESC);

-- ---------------------------------------------------------------------------------------------
-- 11. Penalties
-- ---------------------------------------------------------------------------------------------
CREATE TABLE penalty_rules (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    violation_type violation_type NOT NULL,
    severity INTEGER NOT NULL,
    penalty_points INTEGER NOT NULL,
    requires_retraining BOOLEAN NOT NULL DEFAULT false,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT uniq_penalty_rules_type_severity UNIQUE (violation_type, severity),
    CONSTRAINT chk_penalty_rules_severity_range CHECK (severity BETWEEN 1 AND 5),
    CONSTRAINT chk_penalty_rules_penalty_points_non_negative CHECK (penalty_points >= 0)
);

CREATE TABLE violations (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    agent_id UUID NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    violation_type violation_type NOT NULL,
    severity INTEGER NOT NULL,
    penalty_points INTEGER NOT NULL,
    description TEXT,
    evidence JSONB NOT NULL DEFAULT '{}'::jsonb,
    task_id UUID REFERENCES tasks (id) ON DELETE SET NULL,
    reported_by UUID REFERENCES agents (id) ON DELETE SET NULL,
    status VARCHAR(20) NOT NULL DEFAULT 'upheld',
    detected_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    resolved_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at TIMESTAMPTZ,
    CONSTRAINT chk_violations_severity_range CHECK (severity BETWEEN 1 AND 5),
    CONSTRAINT chk_violations_penalty_points_non_negative CHECK (penalty_points >= 0),
    CONSTRAINT chk_violations_status CHECK (status IN ('upheld', 'under_appeal', 'overturned', 'resolved'))
);
CREATE INDEX idx_violations_agent_created ON violations (agent_id, created_at DESC) WHERE deleted_at IS NULL;
CREATE INDEX idx_violations_type_severity ON violations (violation_type, severity);
CREATE INDEX idx_violations_task_id ON violations (task_id);
CREATE INDEX idx_violations_reported_by ON violations (reported_by);

CREATE TABLE appeals (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    violation_id UUID NOT NULL REFERENCES violations (id) ON DELETE CASCADE,
    agent_id UUID NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    reason TEXT NOT NULL,
    evidence JSONB NOT NULL DEFAULT '{}'::jsonb,
    status appeal_status NOT NULL DEFAULT 'pending',
    decision TEXT,
    decided_by UUID REFERENCES agents (id) ON DELETE SET NULL,
    decided_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX idx_appeals_violation_id ON appeals (violation_id);
CREATE INDEX idx_appeals_agent_id ON appeals (agent_id);
CREATE INDEX idx_appeals_status ON appeals (status) WHERE status IN ('pending', 'under_review');
CREATE INDEX idx_appeals_decided_by ON appeals (decided_by);

CREATE TABLE retraining_programs (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    agent_id UUID NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    violation_id UUID REFERENCES violations (id) ON DELETE SET NULL,
    curriculum_id UUID REFERENCES mentorship_curriculum (id) ON DELETE SET NULL,
    curriculum JSONB NOT NULL DEFAULT '[]'::jsonb,
    status VARCHAR(20) NOT NULL DEFAULT 'assigned',
    progress_percentage NUMERIC(5, 2) NOT NULL DEFAULT 0,
    assessment JSONB NOT NULL DEFAULT '{}'::jsonb,
    assessment_score NUMERIC(5, 2),
    started_at TIMESTAMPTZ,
    completed_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT chk_retraining_programs_status CHECK (status IN ('assigned', 'in_progress', 'completed', 'failed')),
    CONSTRAINT chk_retraining_programs_progress_range CHECK (progress_percentage BETWEEN 0 AND 100)
);
CREATE INDEX idx_retraining_programs_agent_id ON retraining_programs (agent_id);
CREATE INDEX idx_retraining_programs_violation_id ON retraining_programs (violation_id);
CREATE INDEX idx_retraining_programs_curriculum_id ON retraining_programs (curriculum_id);

-- Partitioned.
CREATE TABLE penalty_history (
    id UUID NOT NULL DEFAULT gen_random_uuid(),
    agent_id UUID NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    violation_id UUID REFERENCES violations (id) ON DELETE SET NULL,
    event_type VARCHAR(50) NOT NULL,
    penalty_points INTEGER NOT NULL DEFAULT 0,
    details JSONB NOT NULL DEFAULT '{}'::jsonb,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
CREATE INDEX idx_penalty_history_agent_created ON penalty_history (agent_id, created_at DESC);
CREATE INDEX idx_penalty_history_violation_id ON penalty_history (violation_id);

-- ---------------------------------------------------------------------------------------------
-- Monthly partitions with pg_partman (4.x locally, 5.x in the containers) where the database has
-- it. create_parent needs CREATE on schema partman for its template tables, so it runs as the
-- superuser; partman hands every child and template to the parent's owner (ai_agent_owner).
-- Without pg_partman (a managed server that does not offer it) the tables are listed in
-- agentdb_partitions and maintain_partitions() makes their partitions (below).
-- ---------------------------------------------------------------------------------------------
RESET ROLE;
DO $$
DECLARE
    partman_major integer := split_part(
        (SELECT extversion FROM pg_extension WHERE extname = 'pg_partman'), '.', 1
    )::integer;
    parent text;
    child regclass;
BEGIN
    IF partman_major IS NULL THEN
        RETURN;
    END IF;
    FOREACH parent IN ARRAY ARRAY[
        'public.agent_activity_log', 'public.task_history', 'public.point_transactions',
        'public.reputation_history', 'public.penalty_history'
    ] LOOP
        IF partman_major >= 5 THEN
            EXECUTE 'SELECT partman.create_parent(p_parent_table => $1, p_control => $2,'
                || ' p_interval => $3, p_type => $4, p_premake => $5)'
                USING parent, 'created_at', '1 month', 'range', 3;
        ELSE
            EXECUTE 'SELECT partman.create_parent(p_parent_table => $1, p_control => $2,'
                || ' p_type => $3, p_interval => $4, p_premake => $5)'
                USING parent, 'created_at', 'native', 'monthly', 3;
        END IF;
        -- Old partitions are detached (kept as plain tables), never dropped; children made by
        -- any role get the parent's owner and grants.
        UPDATE partman.part_config SET retention_keep_table = true, inherit_privileges = true
        WHERE parent_table = parent;
        FOR child IN
            SELECT i.inhrelid::regclass FROM pg_inherits AS i WHERE i.inhparent = parent::regclass
        LOOP
            EXECUTE format('ALTER TABLE %s OWNER TO ai_agent_owner', child);
        END LOOP;
    END LOOP;
END
$$;
SET LOCAL ROLE ai_agent_owner;

-- Without pg_partman, the same monthly partitions as pg_partman 4 makes (named <table>_pYYYY_MM,
-- months in UTC, plus <table>_default): premake_months behind and ahead of the current month, and
-- those ending more than retention_months ago detached, kept as plain tables. The partition
-- maintenance cron job runs it through run_partition_maintenance (0002), as the owner.
CREATE FUNCTION maintain_partitions() RETURNS integer
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    this_month timestamp := date_trunc('month', now() AT TIME ZONE 'UTC');
    config record;
    step integer;
    child text;
    old_child regclass;
    changed integer := 0;
BEGIN
    IF to_regclass('public.agentdb_partitions') IS NULL THEN
        RETURN 0;  -- pg_partman keeps the partitions
    END IF;
    FOR config IN
        SELECT parent_table, premake_months, retention_months FROM agentdb_partitions ORDER BY parent_table
    LOOP
        IF NOT EXISTS (
            SELECT 1 FROM pg_partitioned_table
            WHERE partrelid = config.parent_table::regclass AND partdefid <> 0
        ) THEN
            EXECUTE format('CREATE TABLE %I PARTITION OF %I DEFAULT', config.parent_table || '_default',
                config.parent_table);
            changed := changed + 1;
        END IF;
        FOR step IN -config.premake_months .. config.premake_months LOOP
            child := config.parent_table || '_p' || to_char(this_month + make_interval(months => step), 'YYYY_MM');
            IF to_regclass(child) IS NULL THEN
                EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)', child,
                    config.parent_table, (this_month + make_interval(months => step)) AT TIME ZONE 'UTC',
                    (this_month + make_interval(months => step + 1)) AT TIME ZONE 'UTC');
                changed := changed + 1;
            END IF;
        END LOOP;
        IF config.retention_months IS NOT NULL THEN
            FOR old_child IN
                SELECT bounds.child FROM (
                    SELECT i.inhrelid::regclass AS child,
                        (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \(''([^'']+)''\)'))[1]::timestamptz
                            AS upper_bound
                    FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid
                    WHERE i.inhparent = config.parent_table::regclass
                ) AS bounds
                WHERE bounds.upper_bound <= now() - make_interval(months => config.retention_months)
            LOOP
                EXECUTE format('ALTER TABLE %I DETACH PARTITION %s', config.parent_table, old_child);
                changed := changed + 1;
            END LOOP;
        END IF;
    END LOOP;
    RETURN changed;
END
$$;
REVOKE EXECUTE ON FUNCTION maintain_partitions() FROM PUBLIC, ai_agent_app, ai_agent_readonly;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_partman') THEN
        RETURN;
    END IF;
    CREATE TABLE agentdb_partitions (
        parent_table text PRIMARY KEY,
        premake_months integer NOT NULL,
        retention_months integer,
        CONSTRAINT chk_agentdb_partitions_premake_months_positive CHECK (premake_months > 0),
        CONSTRAINT chk_agentdb_partitions_retention_months_positive CHECK (retention_months > 0)
    );
    INSERT INTO agentdb_partitions (parent_table, premake_months)
    SELECT t, 3 FROM unnest(ARRAY[
        'agent_activity_log', 'task_history', 'point_transactions', 'reputation_history', 'penalty_history'
    ]) AS t;
    -- The settings are written by the migrations (agentdb:partitionPremakeMonths) and the cron job.
    REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON agentdb_partitions FROM ai_agent_app;
    PERFORM maintain_partitions();
END
$$;
