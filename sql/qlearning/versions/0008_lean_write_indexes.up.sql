-- Issue 15, part 2: fewer index entries per trajectory written, where no query reads them.
--
-- Each trajectory comes with about 10 rewards (seed 000, storage estimates), so every index of
-- rewards costs ten entries per trajectory. idx_rewards_agent_type_observed_at was ours, not the
-- seeds' (their index strategy names none on rewards), and no function, view, job or monitoring
-- query of this database reads rewards by agent type and time: the cleanup and the views reach
-- rewards through their trajectory (idx_rewards_trajectory_id), the foreign keys through
-- idx_rewards_trajectory_id and idx_rewards_session_id.
DROP INDEX idx_rewards_agent_type_observed_at;

-- The seeds' (session_id) index of trajectories, made partial like q_values' and rewards' already
-- are: every reader of it asks for one session (WHERE session_id = $1, the foreign key's ON DELETE
-- SET NULL included), which implies NOT NULL, so a trajectory without a session needs no entry.
DROP INDEX idx_trajectories_session_id;
CREATE INDEX idx_trajectories_session_id ON trajectories (session_id) WHERE session_id IS NOT NULL;
