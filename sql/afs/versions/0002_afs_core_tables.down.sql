-- squawk-ignore-file ban-drop-function -- a down file drops the functions its up file created
DROP TRIGGER trg_consensus_decisions_check ON consensus_decisions;
DROP FUNCTION check_consensus_decision();
DROP TABLE consensus_decisions;
DROP TABLE benchmark_results;
DROP TABLE optimization_proposals;
DROP TABLE agent_executions;
DROP TABLE tasks;
DROP FUNCTION validate_sql_commands(text[]);
DROP FUNCTION validate_all_scores(jsonb);
DROP FUNCTION validate_estimated_impact(jsonb);
DROP FUNCTION validate_task_metadata(jsonb);
DROP FUNCTION jsonb_require_object(text, jsonb);
DROP FUNCTION jsonb_require_number(text, jsonb, numeric, numeric, boolean);
DROP FUNCTION jsonb_require_enum(text, jsonb, text[]);
