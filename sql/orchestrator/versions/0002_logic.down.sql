-- Undo 0002_logic: policies, grants, views, triggers, functions.

DROP POLICY violations_readonly_select ON violations;
DROP POLICY violations_app_insert ON violations;
DROP POLICY agent_own_violations ON violations;
ALTER TABLE violations DISABLE ROW LEVEL SECURITY;

GRANT UPDATE, DELETE ON vote_audit_trail TO ai_agent_app;

DROP FUNCTION refresh_reputation_views();
DROP VIEW v_task_queue_summary;
DROP MATERIALIZED VIEW v_agent_reputation;
DROP VIEW v_active_mentorships;
DROP VIEW v_current_leaderboard;
DROP VIEW v_active_agents;

DROP FUNCTION run_partition_maintenance(integer);
DROP FUNCTION create_next_month_partitions();
DROP FUNCTION partitioned_tables();

DROP TRIGGER appeals_resolve ON appeals;
DROP FUNCTION resolve_appeal();
DROP TRIGGER appeals_check_owner ON appeals;
DROP FUNCTION check_appeal();
DROP TRIGGER violations_apply_penalty ON violations;
DROP FUNCTION apply_violation_penalty();
DROP TRIGGER violations_set_penalty ON violations;
DROP FUNCTION set_violation_penalty();

DROP FUNCTION claim_reward(uuid, text);
DROP FUNCTION release_expired_allocations();
DROP TRIGGER resource_allocations_release ON resource_allocations;
DROP FUNCTION return_pool_resources();
DROP TRIGGER resource_allocations_reserve ON resource_allocations;
DROP FUNCTION reserve_pool_resources();

DROP TRIGGER mentorship_sessions_update_progress ON mentorship_sessions;
DROP FUNCTION update_mentorship_progress();

DROP FUNCTION refresh_leaderboard_rankings(text, date);

DROP TRIGGER battle_completion_updates_elo ON battles;
DROP FUNCTION update_elo_on_battle_completion();
DROP FUNCTION record_battle_result(uuid, uuid, numeric, integer);
DROP TRIGGER battles_check_winner ON battles;
DROP FUNCTION check_battle_winner();

DROP FUNCTION compute_eigentrust(numeric, numeric, integer);
DROP FUNCTION trust_level_for(numeric);

DROP TRIGGER idea_votes_update_score ON idea_votes;
DROP FUNCTION update_idea_vote_score();
DROP TRIGGER brainstorm_participants_update_counters ON brainstorm_participants;
DROP TRIGGER ideas_update_counters ON ideas;
DROP FUNCTION update_brainstorm_counters();

DROP FUNCTION close_voting_session(uuid);
DROP FUNCTION tally_votes(uuid);
DROP FUNCTION tally_consensus(uuid);
DROP FUNCTION tally_ranked_choice(uuid);
DROP FUNCTION tally_quadratic(uuid);
DROP FUNCTION tally_weighted(uuid);
DROP FUNCTION tally_simple_majority(uuid);
DROP FUNCTION option_scores(uuid, jsonb);
DROP FUNCTION voting_result(uuid, jsonb, text, jsonb);
DROP TRIGGER voting_sessions_audit ON voting_sessions;
DROP FUNCTION audit_voting_session();
DROP TRIGGER votes_audit ON votes;
DROP FUNCTION audit_vote();
DROP TRIGGER votes_check_allowed ON votes;
DROP FUNCTION check_vote_allowed();

DROP TRIGGER agent_achievements_award_points ON agent_achievements;
DROP FUNCTION award_achievement_points();
DROP TRIGGER point_transactions_apply ON point_transactions;
DROP FUNCTION apply_point_transaction();
DROP FUNCTION tier_for_points(integer);

DROP TRIGGER task_completion_updates_agent_stats ON tasks;
DROP FUNCTION update_agent_stats_on_task_completion();
DROP FUNCTION refresh_agent_task_stats(uuid);
DROP TRIGGER tasks_log_history ON tasks;
DROP FUNCTION log_task_history();
DROP TRIGGER tasks_set_lifecycle_timestamps ON tasks;
DROP FUNCTION set_task_lifecycle_timestamps();

DROP FUNCTION log_agent_activity(uuid, text, text, jsonb);
DROP TRIGGER agents_log_status_change ON agents;
DROP FUNCTION log_agent_status_change();
DROP TRIGGER agents_set_defaults ON agents;
DROP FUNCTION set_agent_defaults();

DO $$
DECLARE
    t record;
BEGIN
    FOR t IN
        SELECT tg.tgname, c.relname
        FROM pg_trigger AS tg
        JOIN pg_class AS c ON c.oid = tg.tgrelid
        JOIN pg_namespace AS n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND NOT tg.tgisinternal
          AND tg.tgfoid = 'update_updated_at_column()'::regprocedure
    LOOP
        EXECUTE format('DROP TRIGGER %I ON %I', t.tgname, t.relname);
    END LOOP;
END
$$;
DROP FUNCTION update_updated_at_column();
DROP FUNCTION orchestrator_setting(text);
