-- One row per materialized view: when refresh_materialized_views() last refreshed it and how long it
-- took. postgres_exporter reads it (agentdb_matview_refresh_age_seconds) for the "view older than
-- 2 h" alert; only the refresh function (SECURITY DEFINER, the owner) writes it.
CREATE TABLE agentdb_mv_refresh (
    matview      TEXT PRIMARY KEY,
    refreshed_at TIMESTAMPTZ NOT NULL,
    duration_ms  DOUBLE PRECISION NOT NULL,
    CONSTRAINT agentdb_mv_refresh_duration_ms_non_negative CHECK (duration_ms >= 0)
);

REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON agentdb_mv_refresh FROM qlearning_app;

CREATE OR REPLACE FUNCTION refresh_materialized_views() RETURNS VOID
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_view  TEXT;
    v_start TIMESTAMPTZ;
BEGIN
    FOREACH v_view IN ARRAY ARRAY['agent_performance_summary', 'pattern_effectiveness'] LOOP
        v_start := clock_timestamp();
        EXECUTE format('REFRESH MATERIALIZED VIEW CONCURRENTLY %I', v_view);
        INSERT INTO agentdb_mv_refresh AS r (matview, refreshed_at, duration_ms)
        VALUES (v_view, clock_timestamp(), extract(epoch FROM clock_timestamp() - v_start) * 1000)
        ON CONFLICT (matview) DO UPDATE
        SET refreshed_at = EXCLUDED.refreshed_at,
            duration_ms  = EXCLUDED.duration_ms;
    END LOOP;
END;
$$;
