CREATE OR REPLACE FUNCTION refresh_materialized_views() RETURNS VOID
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    REFRESH MATERIALIZED VIEW CONCURRENTLY agent_performance_summary;
    REFRESH MATERIALIZED VIEW CONCURRENTLY pattern_effectiveness;
END;
$$;

DROP TABLE agentdb_mv_refresh;
