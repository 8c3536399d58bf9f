-- Undo 0001_agentic_schema.up.sql exactly. The vector extension belongs to the baseline and stays.

DROP TABLE conversation_history;
DROP TABLE IF EXISTS agentdb_partitions;
DO $$
BEGIN
    IF to_regclass('partman.part_config') IS NOT NULL THEN
        DROP TABLE IF EXISTS partman.template_public_conversation_history;
        DELETE FROM partman.part_config WHERE parent_table = 'public.conversation_history';
    END IF;
END
$$;

DROP TABLE agent_audit_log;
DROP TABLE conversation_history_archive;
DROP TABLE agent_knowledge;
DROP TABLE trust_level_thresholds;
DROP TABLE trust_metrics_daily;
DROP TABLE trust_metrics;
DROP TABLE agent_decisions_archive;
DROP TABLE agent_decisions;
DROP TABLE agent_sessions;
DROP TABLE agents;
DROP TABLE users;
DROP TABLE schema_versions;

DROP FUNCTION agentic_run_partition_maintenance();
DROP FUNCTION agentic_maintain_partitions();
DROP FUNCTION agentic_restrict_partition_privileges();
DROP FUNCTION agentic_rollup_trust_metrics(integer);
DROP FUNCTION agentic_purge_audit_log(integer);
DROP FUNCTION agentic_archive_decisions(integer, integer);
DROP FUNCTION agentic_archive_conversation_history(integer, integer);
DROP FUNCTION agentic_require_days(text, integer);
DROP FUNCTION agentic_evaluate_trust_level(uuid);
DROP FUNCTION agentic_audit_log_append_only();
DROP FUNCTION agentic_audit_decision();
DROP FUNCTION agentic_check_parent_message();
DROP FUNCTION agentic_require_usable_session();
DROP FUNCTION agentic_stamp_session_end();
DROP FUNCTION agentic_touch_updated_at();
DROP FUNCTION agentic_check_row_version();
DROP FUNCTION agentic_current_user_id();
