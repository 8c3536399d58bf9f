-- Issue 15, part 2: half the foreign-key checks per trajectory written, and no reward locking the
-- agent_types row that every concurrent agent locks too.
--
-- A reward had two foreign keys, agent_type -> agent_types and trajectory_id -> trajectories: 20
-- checks for a trajectory's 10 rewards, 10 of them a FOR KEY SHARE lock on the same agent_types row
-- the trajectory itself locks, and that every other agent of that type locks at the same moment
-- (a MultiXact per set of lockers, the row's xmax rewritten and WAL-logged). A reward's agent type is
-- its trajectory's, so one key on (trajectory_id, agent_type) -> trajectories gives both guarantees
-- with one check: the trajectory exists, the reward's agent type is the trajectory's, and through
-- trajectories_agent_type_fkey that type is in agent_types. ON DELETE CASCADE as before; deleting or
-- renaming an agent type that rewards use is refused as before (by trajectories_agent_type_fkey).
-- Changing a trajectory's agent_type while it has rewards is now refused (NO ACTION), since its
-- rewards would no longer share it.

-- Existing rewards whose agent type is not their trajectory's would make the new key fail with one
-- example; say how many there are and what to do instead, before anything changes.
DO $$
DECLARE
    v_count   BIGINT;
    v_example TEXT;
BEGIN
    SELECT count(*), min(r.reward_id::text || ' (' || r.agent_type || ', trajectory ' || t.agent_type || ')')
    INTO v_count, v_example
    FROM rewards AS r JOIN trajectories AS t ON t.trajectory_id = r.trajectory_id
    WHERE r.agent_type <> t.agent_type;
    IF v_count > 0 THEN
        RAISE EXCEPTION 'qlearning 0009: % rewards have an agent_type that is not their trajectory''s (e.g. reward_id %); set rewards.agent_type to the trajectory''s before upgrading', v_count, v_example
            USING ERRCODE = 'foreign_key_violation';
    END IF;
END;
$$;

-- The key the rewards point at. A new index (one entry per trajectory) instead of 10 lookups and
-- locks per trajectory; the seeds' (agent_type) index stays, and a trajectory's (trajectory_id) key.
ALTER TABLE trajectories
    ADD CONSTRAINT uniq_trajectories_trajectory_id_agent_type UNIQUE (trajectory_id, agent_type);

-- The two keys the new one replaces (its guarantees include theirs, see above).
-- squawk-ignore-file ban-drop-constraint
ALTER TABLE rewards DROP CONSTRAINT rewards_agent_type_fkey;
ALTER TABLE rewards DROP CONSTRAINT rewards_trajectory_id_fkey;
ALTER TABLE rewards
    ADD CONSTRAINT rewards_trajectory_id_agent_type_fkey FOREIGN KEY (trajectory_id, agent_type)
    REFERENCES trajectories (trajectory_id, agent_type) ON DELETE CASCADE;
