-- Seed 003, "New Tables (AFS System)": the optimisation workflow. Parent tables before children.
-- JSONB columns are validated in the database: each CHECK calls an IMMUTABLE function that raises
-- check_violation with a message naming the field and the rule ("Validation" lists of the
-- "JSONB Structures" section). Rules that need other tables are triggers.

-- Helpers shared by the validation functions: one message format for every JSONB field.
CREATE FUNCTION jsonb_require_enum(field text, value jsonb, allowed text[])
RETURNS void
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    IF value IS NULL THEN
        RAISE EXCEPTION '% is required', field USING ERRCODE = 'check_violation';
    END IF;
    IF jsonb_typeof(value) IS DISTINCT FROM 'string' OR NOT (value #>> '{}') = ANY (allowed) THEN
        RAISE EXCEPTION '% must be one of %, got %', field, array_to_string(allowed, ', '), value
            USING ERRCODE = 'check_violation';
    END IF;
END;
$$;

CREATE FUNCTION jsonb_require_number(
    field text, value jsonb, min_value numeric, max_value numeric, min_exclusive boolean DEFAULT false
)
RETURNS numeric
LANGUAGE plpgsql IMMUTABLE
AS $$
DECLARE
    n numeric;
BEGIN
    IF value IS NULL THEN
        RAISE EXCEPTION '% is required', field USING ERRCODE = 'check_violation';
    END IF;
    IF jsonb_typeof(value) IS DISTINCT FROM 'number' THEN
        RAISE EXCEPTION '% must be a number, got %', field, value
            USING ERRCODE = 'check_violation';
    END IF;
    n := (value #>> '{}')::numeric;
    IF (min_exclusive AND n <= min_value) OR (NOT min_exclusive AND n < min_value) THEN
        RAISE EXCEPTION '% must be %, got %', field,
            CASE WHEN min_exclusive THEN 'greater than ' ELSE 'at least ' END || min_value, n
            USING ERRCODE = 'check_violation';
    END IF;
    IF n > max_value THEN
        RAISE EXCEPTION '% must be at most %, got %', field, max_value, n
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN n;
END;
$$;

CREATE FUNCTION jsonb_require_object(field text, value jsonb)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    IF value IS NULL THEN
        RAISE EXCEPTION '% is required', field USING ERRCODE = 'check_violation';
    END IF;
    IF jsonb_typeof(value) IS DISTINCT FROM 'object' THEN
        RAISE EXCEPTION '% must be a JSON object, got %', field, value
            USING ERRCODE = 'check_violation';
    END IF;
END;
$$;

-- tasks.metadata: every field optional; priority/complexity_hint/risk_tolerance are enums,
-- max_storage_mb is positive, scoring_weights are 0-1 and, with the documented defaults for the
-- weights left out, sum to 1.0 (within 0.001, so thirds can be written as 0.333).
CREATE FUNCTION validate_task_metadata(metadata jsonb)
RETURNS boolean
LANGUAGE plpgsql IMMUTABLE
AS $$
DECLARE
    levels CONSTANT text[] := ARRAY['low', 'medium', 'high'];
    default_weights CONSTANT jsonb := '{"performance": 0.5, "storage": 0.2, "complexity": 0.2, "risk": 0.1}';
    prefs jsonb;
    weights jsonb;
    weight_name text;
    weight_sum numeric := 0;
    i integer;
BEGIN
    IF metadata IS NULL THEN
        RETURN true;
    END IF;
    PERFORM jsonb_require_object('tasks.metadata', metadata);
    IF metadata ? 'priority' THEN
        PERFORM jsonb_require_enum('tasks.metadata.priority', metadata -> 'priority', levels);
    END IF;
    IF metadata ? 'complexity_hint' THEN
        PERFORM jsonb_require_enum('tasks.metadata.complexity_hint', metadata -> 'complexity_hint', levels);
    END IF;
    IF metadata ? 'target_tables' THEN
        IF jsonb_typeof(metadata -> 'target_tables') IS DISTINCT FROM 'array' THEN
            RAISE EXCEPTION 'tasks.metadata.target_tables must be an array of table names, got %',
                metadata -> 'target_tables' USING ERRCODE = 'check_violation';
        END IF;
        FOR i IN 0 .. jsonb_array_length(metadata -> 'target_tables') - 1 LOOP
            IF jsonb_typeof(metadata -> 'target_tables' -> i) IS DISTINCT FROM 'string'
                OR metadata -> 'target_tables' ->> i = '' THEN
                RAISE EXCEPTION 'tasks.metadata.target_tables[%] must be a non-empty string, got %',
                    i, metadata -> 'target_tables' -> i USING ERRCODE = 'check_violation';
            END IF;
        END LOOP;
    END IF;
    IF metadata ? 'user_preferences' THEN
        prefs := metadata -> 'user_preferences';
        PERFORM jsonb_require_object('tasks.metadata.user_preferences', prefs);
        IF prefs ? 'max_storage_mb' THEN
            PERFORM jsonb_require_number(
                'tasks.metadata.user_preferences.max_storage_mb', prefs -> 'max_storage_mb', 0, 'Infinity', true
            );
        END IF;
        IF prefs ? 'risk_tolerance' THEN
            PERFORM jsonb_require_enum(
                'tasks.metadata.user_preferences.risk_tolerance', prefs -> 'risk_tolerance', levels
            );
        END IF;
    END IF;
    IF metadata ? 'scoring_weights' THEN
        weights := metadata -> 'scoring_weights';
        PERFORM jsonb_require_object('tasks.metadata.scoring_weights', weights);
        FOR weight_name IN SELECT jsonb_object_keys(weights) LOOP
            IF NOT default_weights ? weight_name THEN
                RAISE EXCEPTION 'tasks.metadata.scoring_weights.% is not a weight; allowed: performance, storage, complexity, risk',
                    weight_name USING ERRCODE = 'check_violation';
            END IF;
        END LOOP;
        FOR weight_name IN SELECT jsonb_object_keys(default_weights) LOOP
            weight_sum := weight_sum + jsonb_require_number(
                'tasks.metadata.scoring_weights.' || weight_name,
                coalesce(weights -> weight_name, default_weights -> weight_name), 0, 1
            );
        END LOOP;
        IF abs(weight_sum - 1) > 0.001 THEN
            RAISE EXCEPTION 'tasks.metadata.scoring_weights must sum to 1.0 (missing weights take their defaults), got %',
                weight_sum USING ERRCODE = 'check_violation';
        END IF;
    END IF;
    RETURN true;
END;
$$;

-- optimization_proposals.estimated_impact: the four predicted metrics are required;
-- improvement is a percentage 0-100, storage overhead is non-negative, complexity/risk are enums.
CREATE FUNCTION validate_estimated_impact(impact jsonb)
RETURNS boolean
LANGUAGE plpgsql IMMUTABLE
AS $$
DECLARE
    levels CONSTANT text[] := ARRAY['low', 'medium', 'high'];
BEGIN
    IF impact IS NULL THEN
        RETURN true;  -- NOT NULL on the column reports a missing value
    END IF;
    PERFORM jsonb_require_object('optimization_proposals.estimated_impact', impact);
    PERFORM jsonb_require_number(
        'optimization_proposals.estimated_impact.query_time_improvement', impact -> 'query_time_improvement', 0, 100
    );
    PERFORM jsonb_require_number(
        'optimization_proposals.estimated_impact.storage_overhead_mb', impact -> 'storage_overhead_mb', 0, 'Infinity'
    );
    PERFORM jsonb_require_enum('optimization_proposals.estimated_impact.complexity', impact -> 'complexity', levels);
    PERFORM jsonb_require_enum('optimization_proposals.estimated_impact.risk', impact -> 'risk', levels);
    IF impact ? 'additional_notes' AND jsonb_typeof(impact -> 'additional_notes') IS DISTINCT FROM 'string' THEN
        RAISE EXCEPTION 'optimization_proposals.estimated_impact.additional_notes must be a string, got %',
            impact -> 'additional_notes' USING ERRCODE = 'check_violation';
    END IF;
    RETURN true;
END;
$$;

-- consensus_decisions.all_scores: one entry per agent; every score 0-100, ranks exactly 1..n.
-- proposal_id existence is checked by the trigger below (it needs another table).
CREATE FUNCTION validate_all_scores(scores jsonb)
RETURNS boolean
LANGUAGE plpgsql IMMUTABLE
AS $$
DECLARE
    score_fields CONSTANT text[] := ARRAY[
        'performance_score', 'storage_score', 'complexity_score', 'risk_score', 'weighted_total'
    ];
    agent text;
    entry jsonb;
    score_field text;
    prefix text;
    ranks integer[] := '{}';
    n numeric;
BEGIN
    IF scores IS NULL THEN
        RETURN true;  -- NOT NULL on the column reports a missing value
    END IF;
    PERFORM jsonb_require_object('consensus_decisions.all_scores', scores);
    FOR agent, entry IN SELECT key, value FROM jsonb_each(scores) LOOP
        prefix := 'consensus_decisions.all_scores.' || agent;
        PERFORM jsonb_require_object(prefix, entry);
        n := jsonb_require_number(prefix || '.proposal_id', entry -> 'proposal_id', 1, 2147483647);
        IF n <> trunc(n) THEN
            RAISE EXCEPTION '%.proposal_id must be an integer, got %', prefix, n USING ERRCODE = 'check_violation';
        END IF;
        FOREACH score_field IN ARRAY score_fields LOOP
            PERFORM jsonb_require_number(prefix || '.' || score_field, entry -> score_field, 0, 100);
        END LOOP;
        n := jsonb_require_number(prefix || '.rank', entry -> 'rank', 1, 2147483647);
        IF n <> trunc(n) THEN
            RAISE EXCEPTION '%.rank must be an integer, got %', prefix, n USING ERRCODE = 'check_violation';
        END IF;
        ranks := ranks || n::integer;
        IF entry ? 'improvement_pct' THEN
            PERFORM jsonb_require_number(prefix || '.improvement_pct', entry -> 'improvement_pct', '-Infinity', 'Infinity');
        END IF;
    END LOOP;
    ranks := ARRAY(SELECT r FROM unnest(ranks) AS r ORDER BY r);
    IF ranks <> ARRAY(SELECT generate_series(1, cardinality(ranks))) THEN
        RAISE EXCEPTION 'consensus_decisions.all_scores ranks must be sequential 1..% without gaps or ties, got %',
            cardinality(ranks), ranks USING ERRCODE = 'check_violation';
    END IF;
    RETURN true;
END;
$$;

-- optimization_proposals.sql_commands: at least one statement, none NULL or blank.
CREATE FUNCTION validate_sql_commands(commands text[])
RETURNS boolean
LANGUAGE plpgsql IMMUTABLE
AS $$
DECLARE
    i integer;
BEGIN
    IF commands IS NULL THEN
        RETURN true;  -- NOT NULL on the column reports a missing value
    END IF;
    IF cardinality(commands) = 0 THEN
        RAISE EXCEPTION 'optimization_proposals.sql_commands must not be empty' USING ERRCODE = 'check_violation';
    END IF;
    FOR i IN array_lower(commands, 1) .. array_upper(commands, 1) LOOP
        IF commands[i] IS NULL OR btrim(commands[i]) = '' THEN
            RAISE EXCEPTION 'optimization_proposals.sql_commands[%] must be a SQL statement, got an empty one', i
                USING ERRCODE = 'check_violation';
        END IF;
    END LOOP;
    RETURN true;
END;
$$;

CREATE TABLE tasks (
    id SERIAL PRIMARY KEY,
    type VARCHAR(50) NOT NULL,
    description TEXT,
    target_query TEXT NOT NULL,
    status VARCHAR(20) NOT NULL DEFAULT 'pending',
    created_at TIMESTAMPTZ DEFAULT now(),
    completed_at TIMESTAMPTZ,
    metadata JSONB,
    CONSTRAINT chk_tasks_type CHECK (type IN ('query_optimization', 'schema_improvement', 'index_recommendation')),
    CONSTRAINT chk_tasks_status CHECK (status IN ('pending', 'in_progress', 'completed', 'failed')),
    CONSTRAINT chk_tasks_metadata CHECK (validate_task_metadata(metadata))
);

CREATE TABLE agent_executions (
    id SERIAL PRIMARY KEY,
    task_id INTEGER NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    agent_type VARCHAR(20) NOT NULL,
    fork_id VARCHAR(100),
    status VARCHAR(20) NOT NULL DEFAULT 'running',
    started_at TIMESTAMPTZ DEFAULT now(),
    completed_at TIMESTAMPTZ,
    error_message TEXT,
    CONSTRAINT chk_agent_executions_agent_type
        CHECK (agent_type IN ('gemini-2.5-pro', 'gemini-2.5-flash', 'gemini-2.0-flash')),
    CONSTRAINT chk_agent_executions_status CHECK (status IN ('running', 'completed', 'failed'))
);

CREATE TABLE optimization_proposals (
    id SERIAL PRIMARY KEY,
    agent_execution_id INTEGER NOT NULL REFERENCES agent_executions (id) ON DELETE CASCADE,
    proposal_type VARCHAR(50) NOT NULL,
    sql_commands TEXT[] NOT NULL,
    rationale TEXT,
    estimated_impact JSONB NOT NULL,
    created_at TIMESTAMPTZ DEFAULT now(),
    CONSTRAINT chk_optimization_proposals_proposal_type CHECK (proposal_type IN (
        'index', 'partial_index', 'composite_index', 'materialized_view',
        'partitioning', 'denormalization', 'query_rewrite'
    )),
    CONSTRAINT chk_optimization_proposals_sql_commands CHECK (validate_sql_commands(sql_commands)),
    CONSTRAINT chk_optimization_proposals_estimated_impact CHECK (validate_estimated_impact(estimated_impact))
);

CREATE TABLE benchmark_results (
    id SERIAL PRIMARY KEY,
    proposal_id INTEGER NOT NULL REFERENCES optimization_proposals (id) ON DELETE CASCADE,
    query_name VARCHAR(100) NOT NULL,
    query_executed TEXT NOT NULL,
    execution_time_ms NUMERIC(10, 2) NOT NULL,
    rows_returned INTEGER,
    explain_plan JSONB,
    storage_impact_mb NUMERIC(10, 2),
    created_at TIMESTAMPTZ DEFAULT now(),
    CONSTRAINT chk_benchmark_results_execution_time_ms CHECK (execution_time_ms > 0)
);

-- winning_proposal_id has no ON DELETE rule on purpose: a winning proposal must not be deleted.
-- applied_to_main is NOT NULL so that the recommended "IN (true, false)" really holds.
CREATE TABLE consensus_decisions (
    id SERIAL PRIMARY KEY,
    task_id INTEGER NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    winning_proposal_id INTEGER REFERENCES optimization_proposals (id),
    all_scores JSONB NOT NULL,
    decision_rationale TEXT,
    applied_to_main BOOLEAN NOT NULL DEFAULT false,
    created_at TIMESTAMPTZ DEFAULT now(),
    CONSTRAINT uniq_consensus_task_id UNIQUE (task_id),
    CONSTRAINT chk_consensus_decisions_all_scores CHECK (validate_all_scores(all_scores))
);

-- Business rules that need other tables: a winner must be a proposal of the same task with at
-- least one 'baseline' benchmark, and every proposal_id in all_scores must exist.
CREATE FUNCTION check_consensus_decision()
RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
    proposal_task_id integer;
    missing text;
BEGIN
    -- BEFORE triggers run ahead of CHECK constraints: validate the structure first for a clear message.
    PERFORM validate_all_scores(NEW.all_scores);
    SELECT string_agg(format('%s (proposal_id %s)', s.key, s.value ->> 'proposal_id'), ', ')
      INTO missing
      FROM jsonb_each(NEW.all_scores) AS s
     WHERE NOT EXISTS (
        SELECT 1 FROM optimization_proposals p WHERE p.id = (s.value ->> 'proposal_id')::integer
     );
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'consensus_decisions.all_scores names proposals that do not exist: %', missing
            USING ERRCODE = 'foreign_key_violation';
    END IF;

    IF NEW.winning_proposal_id IS NULL THEN
        RETURN NEW;
    END IF;
    SELECT e.task_id INTO proposal_task_id
      FROM optimization_proposals p
      JOIN agent_executions e ON e.id = p.agent_execution_id
     WHERE p.id = NEW.winning_proposal_id;
    IF NOT FOUND THEN
        RETURN NEW;  -- the foreign key reports a missing proposal
    END IF;
    IF proposal_task_id <> NEW.task_id THEN
        RAISE EXCEPTION 'consensus_decisions.winning_proposal_id % belongs to task %, not to task %',
            NEW.winning_proposal_id, proposal_task_id, NEW.task_id USING ERRCODE = 'check_violation';
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM benchmark_results b
         WHERE b.proposal_id = NEW.winning_proposal_id AND b.query_name = 'baseline'
    ) THEN
        RAISE EXCEPTION 'consensus_decisions.winning_proposal_id %: the proposal needs at least one ''baseline'' benchmark before it can win',
            NEW.winning_proposal_id USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER trg_consensus_decisions_check
    BEFORE INSERT OR UPDATE OF task_id, winning_proposal_id, all_scores ON consensus_decisions
    FOR EACH ROW EXECUTE FUNCTION check_consensus_decision();
