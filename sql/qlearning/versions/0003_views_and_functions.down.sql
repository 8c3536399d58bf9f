-- Undo 0003: drop the functions and the materialized views.
DROP FUNCTION refresh_materialized_views();
DROP FUNCTION cleanup_expired_data(INTEGER, INTEGER);
DROP FUNCTION q_learning_update(VARCHAR, VARCHAR, VARCHAR, DOUBLE PRECISION, VARCHAR);
DROP FUNCTION get_best_action(VARCHAR, VARCHAR);
DROP FUNCTION upsert_q_value(VARCHAR, VARCHAR, JSONB, VARCHAR, JSONB, DOUBLE PRECISION, UUID);
DROP MATERIALIZED VIEW pattern_effectiveness;
DROP MATERIALIZED VIEW agent_performance_summary;
