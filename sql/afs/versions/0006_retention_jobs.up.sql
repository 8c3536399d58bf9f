-- Seed 003, "Data Retention Policy" / "Cleanup Jobs". The pg_cron jobs in sql/afs/cron.yaml call
-- these functions with the numbers from settings (afs_query_log_retention_days,
-- afs_fork_cleanup_hours), so tests can call them with any number.

-- What the daily fork cleanup cleared. Deleting the fork itself is the platform's job (Tiger MCP):
-- it reads this log. No foreign key, so the log outlives a deleted task.
CREATE TABLE fork_cleanup_logs (
    id SERIAL PRIMARY KEY,
    agent_execution_id INTEGER NOT NULL,
    task_id INTEGER NOT NULL,
    agent_type VARCHAR(20) NOT NULL,
    fork_id VARCHAR(100) NOT NULL,
    execution_status VARCHAR(20) NOT NULL,
    fork_created_at TIMESTAMPTZ NOT NULL,
    cleared_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX idx_fork_cleanup_logs_cleared_at ON fork_cleanup_logs (cleared_at DESC);
CREATE INDEX idx_fork_cleanup_logs_agent_execution_id ON fork_cleanup_logs (agent_execution_id);

-- When a fork was created: the Unix timestamp that ends the documented fork_id format
-- afs-fork-{agentType}-task{taskID}-{timestamp}, or NULL when the id does not follow it.
CREATE FUNCTION fork_created_at(fork_id text)
RETURNS timestamptz
LANGUAGE sql IMMUTABLE
AS $$
    SELECT to_timestamp((substring(fork_id FROM '^afs-fork-.+-task[0-9]+-([0-9]{9,10})$'))::double precision)
$$;

-- Weekly: delete query_logs older than retention_days. Returns the number of rows deleted.
CREATE FUNCTION purge_query_logs(retention_days integer)
RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    deleted bigint;
BEGIN
    IF retention_days IS NULL OR retention_days < 1 THEN
        RAISE EXCEPTION 'purge_query_logs: retention_days must be at least 1, got %', retention_days
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    DELETE FROM query_logs WHERE executed_at < now() - make_interval(days => retention_days);
    GET DIAGNOSTICS deleted = ROW_COUNT;
    RETURN deleted;
END;
$$;

-- Daily: clear fork_id on executions that are no longer running and whose fork is older than
-- older_than_hours (fork age from the fork_id timestamp, else from started_at), logging each one.
-- Returns the number of executions cleared.
CREATE FUNCTION clear_stale_forks(older_than_hours integer)
RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    cleared bigint;
BEGIN
    IF older_than_hours IS NULL OR older_than_hours < 1 THEN
        RAISE EXCEPTION 'clear_stale_forks: older_than_hours must be at least 1, got %', older_than_hours
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    WITH stale AS (
        SELECT e.id, e.task_id, e.agent_type, e.fork_id, e.status,
               coalesce(fork_created_at(e.fork_id), e.started_at) AS fork_created_at
          FROM agent_executions AS e
         WHERE e.fork_id IS NOT NULL
           AND e.status <> 'running'
           AND coalesce(fork_created_at(e.fork_id), e.started_at) < now() - make_interval(hours => older_than_hours)
           FOR UPDATE
    ),
    updated AS (
        UPDATE agent_executions AS e
           SET fork_id = NULL
          FROM stale AS s
         WHERE e.id = s.id
        RETURNING s.*
    )
    INSERT INTO fork_cleanup_logs (agent_execution_id, task_id, agent_type, fork_id, execution_status, fork_created_at)
    SELECT id, task_id, agent_type, fork_id, status, fork_created_at FROM updated;
    GET DIAGNOSTICS cleared = ROW_COUNT;
    RETURN cleared;
END;
$$;

-- Maintenance, not an application call: only the owner (the cron jobs run as the owner) executes them.
REVOKE EXECUTE ON FUNCTION purge_query_logs(integer) FROM PUBLIC, afs_app;
REVOKE EXECUTE ON FUNCTION clear_stale_forks(integer) FROM PUBLIC, afs_app;
