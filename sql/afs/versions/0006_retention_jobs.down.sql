DROP FUNCTION clear_stale_forks(integer);
DROP FUNCTION purge_query_logs(integer);
DROP FUNCTION fork_created_at(text);
DROP TABLE fork_cleanup_logs;
