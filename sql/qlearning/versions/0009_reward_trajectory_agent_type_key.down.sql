-- Back to 0008: a reward's two foreign keys of 0001, agent_type -> agent_types and trajectory_id ->
-- trajectories (ON DELETE CASCADE), and no (trajectory_id, agent_type) key on trajectories.
-- squawk-ignore-file ban-drop-constraint
ALTER TABLE rewards DROP CONSTRAINT rewards_trajectory_id_agent_type_fkey;
ALTER TABLE rewards
    ADD CONSTRAINT rewards_agent_type_fkey FOREIGN KEY (agent_type) REFERENCES agent_types (agent_type);
ALTER TABLE rewards
    ADD CONSTRAINT rewards_trajectory_id_fkey FOREIGN KEY (trajectory_id)
    REFERENCES trajectories (trajectory_id) ON DELETE CASCADE;
ALTER TABLE trajectories DROP CONSTRAINT uniq_trajectories_trajectory_id_agent_type;
