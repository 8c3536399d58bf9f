-- The vector extension stays: agentdb's baseline owns it (it creates it wherever it is available).
DROP FUNCTION hybrid_search_query_logs(text, double precision[], integer);
DROP FUNCTION query_logs_has_vector_search();
DROP TABLE query_logs;
