-- Back to 0007: the full (session_id) index of trajectories and the rewards' (agent_type, observed_at).
DROP INDEX idx_trajectories_session_id;
CREATE INDEX idx_trajectories_session_id ON trajectories (session_id);
CREATE INDEX idx_rewards_agent_type_observed_at ON rewards (agent_type, observed_at DESC);
