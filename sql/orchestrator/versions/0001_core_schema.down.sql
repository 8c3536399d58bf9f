-- Undo 0001_core_schema: partman registrations and templates, tables, types.

RESET ROLE;
DO $$
DECLARE
    template text;
BEGIN
    IF to_regclass('partman.part_config') IS NULL THEN
        RETURN;  -- no pg_partman: agentdb_partitions held the settings
    END IF;
    FOR template IN
        SELECT template_table FROM partman.part_config
        WHERE parent_table IN (
            'public.agent_activity_log', 'public.task_history', 'public.point_transactions',
            'public.reputation_history', 'public.penalty_history'
        ) AND template_table IS NOT NULL
    LOOP
        EXECUTE format('DROP TABLE IF EXISTS %s', template);
    END LOOP;
    DELETE FROM partman.part_config
    WHERE parent_table IN (
        'public.agent_activity_log', 'public.task_history', 'public.point_transactions',
        'public.reputation_history', 'public.penalty_history'
    );
END
$$;
SET LOCAL ROLE ai_agent_owner;
DROP TABLE IF EXISTS agentdb_partitions;
DROP FUNCTION maintain_partitions();

DROP TABLE penalty_history;
DROP TABLE retraining_programs;
DROP TABLE appeals;
DROP TABLE violations;
DROP TABLE penalty_rules;
DROP TABLE reward_claims;
DROP TABLE rewards;
DROP TABLE priority_queue_entries;
DROP TABLE agent_permissions;
DROP TABLE resource_allocations;
DROP TABLE resource_pools;
DROP TABLE mentee_progress;
DROP TABLE mentorship_sessions;
DROP TABLE mentorship_pairings;
DROP TABLE mentorship_curriculum;
DROP TABLE mentor_profiles;
DROP TABLE hall_of_fame;
DROP TABLE leaderboard_rankings;
DROP TABLE leaderboard_categories;
DROP TABLE elo_history;
DROP TABLE battle_rounds;
DROP TABLE battle_participants;
DROP TABLE battles;
DROP TABLE reputation_history;
DROP TABLE global_trust_scores;
DROP TABLE eigentrust_runs;
DROP TABLE peer_ratings;
DROP TABLE pre_trusted_agents;
DROP TABLE trust_graph;
DROP TABLE streaks;
DROP TABLE point_transactions;
DROP TABLE agent_achievements;
DROP TABLE achievements;
DROP TABLE tier_history;
DROP TABLE tier_definitions;
DROP TABLE idea_votes;
DROP TABLE idea_combinations;
DROP TABLE ideas;
DROP TABLE brainstorm_participants;
DROP TABLE brainstorm_sessions;
DROP TABLE vote_audit_trail;
DROP TABLE votes;
DROP TABLE voting_sessions;
DROP TABLE task_history;
DROP TABLE task_results;
DROP TABLE task_assignments;
DROP TABLE task_dependencies;
DROP TABLE tasks;
DROP TABLE task_queues;
DROP TABLE agent_activity_log;
DROP TABLE team_members;
DROP TABLE teams;
DROP TABLE agent_status_history;
DROP TABLE agent_skills;
DROP TABLE agents;
DROP TABLE system_settings;

DROP TYPE appeal_status;
DROP TYPE violation_type;
DROP TYPE mentorship_status;
DROP TYPE battle_status;
DROP TYPE battle_mode;
DROP TYPE achievement_category;
DROP TYPE voting_status;
DROP TYPE voting_algorithm;
DROP TYPE task_priority;
DROP TYPE task_status;
DROP TYPE agent_tier;
DROP TYPE agent_status;
DROP TYPE agent_type;
