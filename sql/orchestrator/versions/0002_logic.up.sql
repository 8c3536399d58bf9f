-- AI Agent Orchestrator (seed 002): functions, triggers, views, row-level security and grants.

-- ---------------------------------------------------------------------------------------------
-- Shared helpers
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION orchestrator_setting(p_key text) RETURNS numeric
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v numeric;
BEGIN
    SELECT setting_value INTO v FROM system_settings WHERE setting_key = p_key;
    IF v IS NULL THEN
        RAISE EXCEPTION 'system_settings.setting_key % is missing', p_key
            USING HINT = 'Insert the setting into system_settings.';
    END IF;
    RETURN v;
END
$$;

CREATE FUNCTION update_updated_at_column() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

-- One BEFORE UPDATE trigger per table that has updated_at, named update_<table>_updated_at.
DO $$
DECLARE
    t text;
BEGIN
    FOR t IN
        SELECT c.table_name
        FROM information_schema.columns AS c
        JOIN pg_tables AS p ON p.schemaname = c.table_schema AND p.tablename = c.table_name
        WHERE c.table_schema = 'public' AND c.column_name = 'updated_at'
        ORDER BY c.table_name
    LOOP
        EXECUTE format(
            'CREATE TRIGGER %I BEFORE UPDATE ON %I FOR EACH ROW EXECUTE FUNCTION update_updated_at_column()',
            'update_' || t || '_updated_at', t
        );
    END LOOP;
END
$$;

-- ---------------------------------------------------------------------------------------------
-- 1. Agent management
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION set_agent_defaults() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.elo_rating := COALESCE(NEW.elo_rating, orchestrator_setting('elo_initial_rating')::integer);
    RETURN NEW;
END
$$;

CREATE TRIGGER agents_set_defaults
    BEFORE INSERT ON agents
    FOR EACH ROW EXECUTE FUNCTION set_agent_defaults();

CREATE FUNCTION log_agent_status_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR OLD.status IS DISTINCT FROM NEW.status THEN
        INSERT INTO agent_status_history (agent_id, old_status, new_status)
        VALUES (NEW.id, CASE WHEN TG_OP = 'UPDATE' THEN OLD.status END, NEW.status);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER agents_log_status_change
    AFTER INSERT OR UPDATE OF status ON agents
    FOR EACH ROW EXECUTE FUNCTION log_agent_status_change();

CREATE FUNCTION log_agent_activity(
    p_agent_id uuid, p_activity_type text, p_description text DEFAULT NULL, p_metadata jsonb DEFAULT '{}'
) RETURNS uuid
LANGUAGE plpgsql AS $$
DECLARE
    v_id uuid;
BEGIN
    INSERT INTO agent_activity_log (agent_id, activity_type, description, metadata)
    VALUES (p_agent_id, p_activity_type, p_description, COALESCE(p_metadata, '{}'))
    RETURNING id INTO v_id;
    UPDATE agents SET last_active_at = now() WHERE id = p_agent_id;
    RETURN v_id;
END
$$;

-- ---------------------------------------------------------------------------------------------
-- 2. Task distribution
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION set_task_lifecycle_timestamps() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR OLD.status IS DISTINCT FROM NEW.status THEN
        IF NEW.status = 'assigned' AND NEW.assigned_at IS NULL THEN
            NEW.assigned_at := now();
        ELSIF NEW.status = 'in_progress' AND NEW.started_at IS NULL THEN
            NEW.started_at := now();
        ELSIF NEW.status IN ('completed', 'failed', 'cancelled') AND NEW.completed_at IS NULL THEN
            NEW.completed_at := now();
        END IF;
    END IF;
    IF NEW.status IN ('assigned', 'in_progress') AND NEW.assigned_to IS NULL THEN
        RAISE EXCEPTION 'tasks.assigned_to is required when tasks.status is %', NEW.status;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER tasks_set_lifecycle_timestamps
    BEFORE INSERT OR UPDATE ON tasks
    FOR EACH ROW EXECUTE FUNCTION set_task_lifecycle_timestamps();

CREATE FUNCTION log_task_history() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO task_history (task_id, agent_id, event_type, new_status)
        VALUES (NEW.id, NEW.assigned_to, 'created', NEW.status);
    ELSIF OLD.status IS DISTINCT FROM NEW.status OR OLD.assigned_to IS DISTINCT FROM NEW.assigned_to THEN
        INSERT INTO task_history (task_id, agent_id, event_type, old_status, new_status, details)
        VALUES (
            NEW.id, NEW.assigned_to,
            CASE WHEN OLD.status IS DISTINCT FROM NEW.status THEN 'status_changed' ELSE 'reassigned' END,
            OLD.status, NEW.status,
            jsonb_build_object('previous_assignee', OLD.assigned_to, 'quality_score', NEW.quality_score)
        );
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER tasks_log_history
    AFTER INSERT OR UPDATE ON tasks
    FOR EACH ROW EXECUTE FUNCTION log_task_history();

-- Recomputes an agent's task statistics from its tasks; exact, and right after reassignments too.
CREATE FUNCTION refresh_agent_task_stats(p_agent_id uuid) RETURNS void
LANGUAGE sql AS $$
    UPDATE agents AS a
    SET tasks_completed = s.completed,
        tasks_failed = s.failed,
        success_rate = CASE WHEN s.completed + s.failed > 0
            THEN round(100.0 * s.completed / (s.completed + s.failed), 2) END,
        average_quality_score = round(s.avg_quality, 2),
        average_task_time_ms = round(s.avg_ms)::bigint,
        last_active_at = now()
    FROM (
        SELECT
            count(*) FILTER (WHERE t.status = 'completed')::integer AS completed,
            count(*) FILTER (WHERE t.status = 'failed')::integer AS failed,
            avg(t.quality_score) FILTER (WHERE t.status = 'completed') AS avg_quality,
            avg(extract(epoch FROM t.completed_at - t.started_at) * 1000)
                FILTER (WHERE t.status = 'completed') AS avg_ms
        FROM tasks AS t
        WHERE t.assigned_to = p_agent_id AND t.deleted_at IS NULL
    ) AS s
    WHERE a.id = p_agent_id;
$$;

CREATE FUNCTION update_agent_stats_on_task_completion() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status IS DISTINCT FROM NEW.status
        OR OLD.assigned_to IS DISTINCT FROM NEW.assigned_to
        OR (NEW.status IN ('completed', 'failed') AND (
            OLD.quality_score IS DISTINCT FROM NEW.quality_score
            OR OLD.started_at IS DISTINCT FROM NEW.started_at
            OR OLD.completed_at IS DISTINCT FROM NEW.completed_at
            OR OLD.deleted_at IS DISTINCT FROM NEW.deleted_at))
    THEN
        PERFORM refresh_agent_task_stats(NEW.assigned_to);
        IF OLD.assigned_to IS NOT NULL AND OLD.assigned_to <> NEW.assigned_to THEN
            PERFORM refresh_agent_task_stats(OLD.assigned_to);
        END IF;
    END IF;
    IF NEW.status = 'completed' AND OLD.status IS DISTINCT FROM 'completed' AND NEW.points_reward > 0 THEN
        INSERT INTO point_transactions (agent_id, category, base_points, reason, reference_type, reference_id)
        VALUES (NEW.assigned_to, 'task_completion', NEW.points_reward, 'Completed ' || NEW.task_id, 'task', NEW.id);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER task_completion_updates_agent_stats
    AFTER UPDATE ON tasks
    FOR EACH ROW
    WHEN (NEW.assigned_to IS NOT NULL)
    EXECUTE FUNCTION update_agent_stats_on_task_completion();

-- ---------------------------------------------------------------------------------------------
-- 5. Gamification: multipliers, streaks, totals and tiers
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION tier_for_points(p_points integer) RETURNS agent_tier
LANGUAGE sql STABLE AS $$
    SELECT COALESCE(
        (SELECT tier FROM tier_definitions WHERE min_points <= p_points ORDER BY tier DESC LIMIT 1),
        'bronze'::agent_tier
    );
$$;

-- BEFORE INSERT: advances the daily streak, derives multiplier and final_points when not given,
-- then moves agents.total_points and the tier in the same statement.
CREATE FUNCTION apply_point_transaction() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_day date := (NEW.created_at AT TIME ZONE 'UTC')::date;
    v_streak streaks%ROWTYPE;
    v_tier agent_tier;
    v_new_tier agent_tier;
    v_total integer;
    v_bonus numeric;
BEGIN
    SELECT current_tier INTO v_tier FROM agents WHERE id = NEW.agent_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'point_transactions.agent_id % does not exist', NEW.agent_id;
    END IF;

    IF NEW.base_points > 0 THEN
        -- The agent row lock above serialises streak updates per agent.
        SELECT * INTO v_streak FROM streaks
        WHERE agent_id = NEW.agent_id AND streak_type = 'daily_activity' FOR UPDATE;
        IF NOT FOUND THEN
            INSERT INTO streaks (agent_id, streak_type, current_count, longest_count, last_activity_date)
            VALUES (NEW.agent_id, 'daily_activity', 1, 1, v_day)
            RETURNING * INTO v_streak;
        ELSIF v_streak.last_activity_date IS NULL OR v_streak.last_activity_date < v_day THEN
            UPDATE streaks
            SET current_count = CASE WHEN last_activity_date = v_day - 1 THEN current_count + 1 ELSE 1 END,
                longest_count = GREATEST(longest_count,
                    CASE WHEN last_activity_date = v_day - 1 THEN current_count + 1 ELSE 1 END),
                started_at = CASE WHEN last_activity_date = v_day - 1 THEN started_at ELSE now() END,
                last_activity_date = v_day
            WHERE id = v_streak.id
            RETURNING * INTO v_streak;
        END IF;

        IF NEW.multiplier IS NULL THEN
            v_bonus := LEAST(
                orchestrator_setting('streak_bonus_per_day') * (v_streak.current_count - 1),
                orchestrator_setting('streak_bonus_max')
            );
            NEW.multiplier := round(
                (SELECT point_multiplier FROM tier_definitions WHERE tier = v_tier) * (1 + v_bonus), 2
            );
        END IF;
    END IF;

    NEW.multiplier := COALESCE(NEW.multiplier, 1);
    NEW.final_points := COALESCE(NEW.final_points, round(NEW.base_points * NEW.multiplier)::integer);

    UPDATE agents SET total_points = total_points + NEW.final_points
    WHERE id = NEW.agent_id
    RETURNING total_points INTO v_total;
    NEW.balance_after := v_total;

    v_new_tier := tier_for_points(v_total);
    IF v_new_tier IS DISTINCT FROM v_tier THEN
        UPDATE agents SET current_tier = v_new_tier WHERE id = NEW.agent_id;
        INSERT INTO tier_history (agent_id, old_tier, new_tier, total_points)
        VALUES (NEW.agent_id, v_tier, v_new_tier, v_total);
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER point_transactions_apply
    BEFORE INSERT ON point_transactions
    FOR EACH ROW EXECUTE FUNCTION apply_point_transaction();

CREATE FUNCTION award_achievement_points() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_points integer;
    v_key text;
BEGIN
    SELECT points_reward, achievement_id INTO v_points, v_key FROM achievements WHERE id = NEW.achievement_id;
    IF v_points > 0 THEN
        INSERT INTO point_transactions (agent_id, category, base_points, multiplier, reason, reference_type, reference_id)
        VALUES (NEW.agent_id, 'achievement', v_points, 1, 'Unlocked ' || v_key, 'achievement', NEW.achievement_id);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER agent_achievements_award_points
    AFTER INSERT ON agent_achievements
    FOR EACH ROW EXECUTE FUNCTION award_achievement_points();

-- ---------------------------------------------------------------------------------------------
-- 3. Voting: guard, audit trail, one tally function per voting_algorithm value
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION check_vote_allowed() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_session voting_sessions%ROWTYPE;
    v_option text;
BEGIN
    SELECT * INTO v_session FROM voting_sessions WHERE id = NEW.session_id FOR SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'votes.session_id % does not exist', NEW.session_id;
    END IF;
    IF v_session.status <> 'open' OR (v_session.closes_at IS NOT NULL AND v_session.closes_at <= now()) THEN
        RAISE EXCEPTION 'voting session % is closed: votes are accepted only while status = open (status is %)',
            v_session.session_id, v_session.status
            USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.ranking IS NULL OR cardinality(NEW.ranking) = 0 THEN
        NEW.ranking := ARRAY[NEW.vote_option];
    END IF;
    FOREACH v_option IN ARRAY NEW.ranking || NEW.vote_option::text LOOP
        IF NOT v_session.options ? v_option THEN
            RAISE EXCEPTION 'votes.vote_option % is not one of the options of voting session %: %',
                v_option, v_session.session_id, v_session.options
                USING ERRCODE = 'check_violation';
        END IF;
    END LOOP;
    RETURN NEW;
END
$$;

CREATE TRIGGER votes_check_allowed
    BEFORE INSERT OR UPDATE ON votes
    FOR EACH ROW EXECUTE FUNCTION check_vote_allowed();

CREATE FUNCTION audit_vote() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_row votes%ROWTYPE;
    v_payload jsonb;
BEGIN
    v_row := CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    v_payload := to_jsonb(v_row);
    INSERT INTO vote_audit_trail (session_id, vote_id, agent_id, event_type, payload, signature)
    VALUES (
        v_row.session_id,
        CASE WHEN TG_OP = 'DELETE' THEN NULL ELSE v_row.id END,
        v_row.agent_id,
        CASE TG_OP WHEN 'INSERT' THEN 'vote_cast' WHEN 'UPDATE' THEN 'vote_changed' ELSE 'vote_withdrawn' END,
        v_payload,
        encode(sha256(convert_to(v_payload::text || '|' || clock_timestamp()::text, 'UTF8')), 'hex')
    );
    RETURN NULL;
END
$$;

CREATE TRIGGER votes_audit
    AFTER INSERT OR UPDATE OR DELETE ON votes
    FOR EACH ROW EXECUTE FUNCTION audit_vote();

CREATE FUNCTION audit_voting_session() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_payload jsonb;
BEGIN
    IF TG_OP = 'INSERT' OR OLD.status IS DISTINCT FROM NEW.status THEN
        v_payload := jsonb_build_object(
            'status', NEW.status, 'algorithm', NEW.algorithm, 'results', NEW.results
        );
        INSERT INTO vote_audit_trail (session_id, agent_id, event_type, payload, signature)
        VALUES (
            NEW.id, NEW.created_by, 'session_' || NEW.status::text, v_payload,
            encode(sha256(convert_to(NEW.id::text || '|' || v_payload::text || '|' || clock_timestamp()::text, 'UTF8')), 'hex')
        );
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER voting_sessions_audit
    AFTER INSERT OR UPDATE OF status ON voting_sessions
    FOR EACH ROW EXECUTE FUNCTION audit_voting_session();

-- Shared result shape: {algorithm, total_votes, quorum_met, tally {option: score}, winner}.
CREATE FUNCTION voting_result(p_session_id uuid, p_tally jsonb, p_winner text, p_extra jsonb DEFAULT '{}')
RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'algorithm', s.algorithm,
        'total_votes', (SELECT count(*) FROM votes WHERE session_id = s.id),
        'quorum_met', (SELECT count(*) FROM votes WHERE session_id = s.id) >= s.quorum,
        'tally', p_tally,
        'winner', CASE WHEN (SELECT count(*) FROM votes WHERE session_id = s.id) >= s.quorum THEN p_winner END
    ) || p_extra
    FROM voting_sessions AS s WHERE s.id = p_session_id;
$$;

-- Scores per option (options without votes score 0) and the unique top option, if any.
CREATE FUNCTION option_scores(p_session_id uuid, p_scores jsonb, OUT tally jsonb, OUT top_option text,
    OUT top_score numeric, OUT total_score numeric)
LANGUAGE sql STABLE AS $$
    WITH s AS (
        SELECT o.option, COALESCE((p_scores ->> o.option)::numeric, 0) AS score
        FROM voting_sessions AS vs, jsonb_array_elements_text(vs.options) AS o(option)
        WHERE vs.id = p_session_id
    ), ranked AS (
        SELECT option, score, rank() OVER (ORDER BY score DESC) AS r, count(*) OVER (PARTITION BY score) AS n
        FROM s
    )
    SELECT
        (SELECT jsonb_object_agg(option, score) FROM s),
        (SELECT option FROM ranked WHERE r = 1 AND n = 1 AND score > 0),
        (SELECT max(score) FROM s),
        (SELECT sum(score) FROM s);
$$;

CREATE FUNCTION tally_simple_majority(p_session_id uuid) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    r record;
BEGIN
    SELECT * INTO r FROM option_scores(p_session_id, (
        SELECT COALESCE(jsonb_object_agg(vote_option, n), '{}') FROM (
            SELECT vote_option, count(*) AS n FROM votes WHERE session_id = p_session_id GROUP BY vote_option
        ) AS c
    ));
    RETURN voting_result(p_session_id, r.tally,
        CASE WHEN r.top_score * 2 > r.total_score THEN r.top_option END);
END
$$;

CREATE FUNCTION tally_weighted(p_session_id uuid) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    r record;
BEGIN
    SELECT * INTO r FROM option_scores(p_session_id, (
        SELECT COALESCE(jsonb_object_agg(vote_option, w), '{}') FROM (
            SELECT vote_option, sum(weight * confidence) AS w
            FROM votes WHERE session_id = p_session_id GROUP BY vote_option
        ) AS c
    ));
    RETURN voting_result(p_session_id, r.tally, r.top_option);
END
$$;

-- Quadratic voting: spending n tokens on an option buys sqrt(n) votes.
CREATE FUNCTION tally_quadratic(p_session_id uuid) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    r record;
BEGIN
    SELECT * INTO r FROM option_scores(p_session_id, (
        SELECT COALESCE(jsonb_object_agg(vote_option, q), '{}') FROM (
            SELECT vote_option, round(sum(sqrt(tokens_spent::numeric)), 6) AS q
            FROM votes WHERE session_id = p_session_id GROUP BY vote_option
        ) AS c
    ));
    RETURN voting_result(p_session_id, r.tally, r.top_option);
END
$$;

-- Instant runoff: each round counts every ballot for its highest-ranked remaining option; an
-- option with more than half of the live ballots wins, otherwise the weakest option is eliminated
-- (ties broken by option name, last first).
CREATE FUNCTION tally_ranked_choice(p_session_id uuid) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_remaining text[];
    v_counts jsonb;
    v_rounds jsonb := '[]';
    v_top text;
    v_top_n bigint;
    v_live bigint;
    v_loser text;
BEGIN
    SELECT array_agg(o ORDER BY o) INTO v_remaining
    FROM voting_sessions AS s, jsonb_array_elements_text(s.options) AS o WHERE s.id = p_session_id;
    LOOP
        WITH firsts AS (
            SELECT (
                SELECT r.opt FROM unnest(v.ranking) WITH ORDINALITY AS r(opt, pos)
                WHERE r.opt = ANY (v_remaining) ORDER BY r.pos LIMIT 1
            ) AS opt
            FROM votes AS v WHERE v.session_id = p_session_id
        ), counts AS (
            SELECT o AS opt, (SELECT count(*) FROM firsts WHERE firsts.opt = o) AS n
            FROM unnest(v_remaining) AS o
        )
        SELECT jsonb_object_agg(opt, n), (SELECT count(*) FROM firsts WHERE opt IS NOT NULL)
        INTO v_counts, v_live FROM counts;
        v_rounds := v_rounds || jsonb_build_array(v_counts);
        SELECT key, value::bigint INTO v_top, v_top_n FROM jsonb_each_text(v_counts)
        ORDER BY value::bigint DESC, key LIMIT 1;
        IF v_live = 0 THEN
            v_top := NULL;
            EXIT;
        END IF;
        EXIT WHEN v_top_n * 2 > v_live OR cardinality(v_remaining) <= 1;
        SELECT key INTO v_loser FROM jsonb_each_text(v_counts) ORDER BY value::bigint, key DESC LIMIT 1;
        v_remaining := array_remove(v_remaining, v_loser);
    END LOOP;
    RETURN voting_result(p_session_id, v_counts, v_top, jsonb_build_object('rounds', v_rounds));
END
$$;

-- Consensus: the top option wins only with at least consensus_threshold of the confidence weight.
CREATE FUNCTION tally_consensus(p_session_id uuid) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    r record;
    v_threshold numeric := orchestrator_setting('consensus_threshold');
BEGIN
    SELECT * INTO r FROM option_scores(p_session_id, (
        SELECT COALESCE(jsonb_object_agg(vote_option, w), '{}') FROM (
            SELECT vote_option, sum(confidence) AS w FROM votes WHERE session_id = p_session_id GROUP BY vote_option
        ) AS c
    ));
    RETURN voting_result(p_session_id, r.tally,
        CASE WHEN r.total_score > 0 AND r.top_score / r.total_score >= v_threshold THEN r.top_option END,
        jsonb_build_object('threshold', v_threshold,
            'agreement', CASE WHEN r.total_score > 0 THEN round(r.top_score / r.total_score, 4) END));
END
$$;

CREATE FUNCTION tally_votes(p_session_id uuid) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_algorithm voting_algorithm;
BEGIN
    SELECT algorithm INTO v_algorithm FROM voting_sessions WHERE id = p_session_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'voting session % does not exist', p_session_id;
    END IF;
    RETURN CASE v_algorithm
        WHEN 'simple_majority' THEN tally_simple_majority(p_session_id)
        WHEN 'weighted' THEN tally_weighted(p_session_id)
        WHEN 'quadratic' THEN tally_quadratic(p_session_id)
        WHEN 'ranked_choice' THEN tally_ranked_choice(p_session_id)
        WHEN 'consensus' THEN tally_consensus(p_session_id)
    END;
END
$$;

CREATE FUNCTION close_voting_session(p_session_id uuid) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_status voting_status;
    v_results jsonb;
BEGIN
    SELECT status INTO v_status FROM voting_sessions WHERE id = p_session_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'voting session % does not exist', p_session_id;
    END IF;
    IF v_status <> 'open' THEN
        RAISE EXCEPTION 'voting session % is % and cannot be closed', p_session_id, v_status;
    END IF;
    v_results := tally_votes(p_session_id);
    UPDATE voting_sessions SET status = 'closed', closed_at = now(), results = v_results WHERE id = p_session_id;
    RETURN v_results;
END
$$;

-- ---------------------------------------------------------------------------------------------
-- 4. Brainstorming counters
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION update_brainstorm_counters() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_session uuid := CASE WHEN TG_OP = 'DELETE' THEN OLD.session_id ELSE NEW.session_id END;
BEGIN
    IF TG_TABLE_NAME = 'ideas' THEN
        UPDATE brainstorm_sessions
        SET total_ideas = (SELECT count(*) FROM ideas WHERE session_id = v_session AND deleted_at IS NULL)
        WHERE id = v_session;
        UPDATE brainstorm_participants AS p
        SET ideas_contributed = (
            SELECT count(*) FROM ideas AS i
            WHERE i.session_id = v_session AND i.agent_id = p.agent_id AND i.deleted_at IS NULL
        )
        WHERE p.session_id = v_session;
    ELSE
        UPDATE brainstorm_sessions
        SET participant_count = (
            SELECT count(*) FROM brainstorm_participants WHERE session_id = v_session AND left_at IS NULL
        )
        WHERE id = v_session;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER ideas_update_counters
    AFTER INSERT OR DELETE OR UPDATE OF deleted_at, agent_id ON ideas
    FOR EACH ROW EXECUTE FUNCTION update_brainstorm_counters();

CREATE TRIGGER brainstorm_participants_update_counters
    AFTER INSERT OR DELETE OR UPDATE OF left_at ON brainstorm_participants
    FOR EACH ROW EXECUTE FUNCTION update_brainstorm_counters();

CREATE FUNCTION update_idea_vote_score() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_idea uuid := CASE WHEN TG_OP = 'DELETE' THEN OLD.idea_id ELSE NEW.idea_id END;
BEGIN
    UPDATE ideas SET vote_score = (SELECT COALESCE(sum(score), 0) FROM idea_votes WHERE idea_id = v_idea)
    WHERE id = v_idea;
    RETURN NULL;
END
$$;

CREATE TRIGGER idea_votes_update_score
    AFTER INSERT OR UPDATE OR DELETE ON idea_votes
    FOR EACH ROW EXECUTE FUNCTION update_idea_vote_score();

-- ---------------------------------------------------------------------------------------------
-- 6. Reputation: EigenTrust
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION trust_level_for(p_score numeric) RETURNS varchar
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN p_score >= 0.90 THEN 'outstanding'
        WHEN p_score >= 0.75 THEN 'excellent'
        WHEN p_score >= 0.50 THEN 'good'
        WHEN p_score >= 0.25 THEN 'moderate'
        WHEN p_score > 0 THEN 'low'
        ELSE 'untrusted'
    END;
$$;

-- EigenTrust (Kamvar et al. 2003) over the live agents:
--   C[i][j] = local_trust(i->j) / sum_k local_trust(i->k); a row without trust given uses p;
--   p = uniform over pre_trusted_agents (uniform over all agents when there are none);
--   t0 = p;  t(k+1) = (1 - a) * C^T t(k) + a * p, until sum |t(k+1) - t(k)| < epsilon.
-- Writes one global_trust_scores row per agent, appends reputation_history, logs eigentrust_runs.
CREATE FUNCTION compute_eigentrust(
    p_alpha numeric DEFAULT NULL, p_epsilon numeric DEFAULT NULL, p_max_iterations integer DEFAULT NULL
) RETURNS uuid
LANGUAGE plpgsql AS $$
DECLARE
    v_alpha float8 := COALESCE(p_alpha, orchestrator_setting('eigentrust_alpha'));
    v_epsilon float8 := COALESCE(p_epsilon, orchestrator_setting('eigentrust_epsilon'));
    v_max integer := COALESCE(p_max_iterations, orchestrator_setting('eigentrust_max_iterations')::integer);
    v_started timestamptz := clock_timestamp();
    v_ids uuid[];
    v_n integer;
    v_p float8[];
    v_t float8[];
    v_next float8[];
    v_src integer[];
    v_dst integer[];
    v_w float8[];
    v_has_out boolean[];
    v_dangling float8;
    v_delta float8 := 0;
    v_iter integer := 0;
    v_max_t float8;
    v_run uuid;
    v_pre integer;
    i integer;
BEGIN
    IF v_alpha < 0 OR v_alpha > 1 THEN
        RAISE EXCEPTION 'eigentrust alpha must be in [0, 1], got %', v_alpha;
    END IF;
    IF v_epsilon <= 0 OR v_max < 1 THEN
        RAISE EXCEPTION 'eigentrust epsilon must be > 0 and max_iterations >= 1 (got %, %)', v_epsilon, v_max;
    END IF;

    SELECT array_agg(id ORDER BY id) INTO v_ids FROM agents WHERE deleted_at IS NULL;
    v_n := COALESCE(cardinality(v_ids), 0);
    IF v_n = 0 THEN
        RETURN NULL;
    END IF;

    SELECT count(*) INTO v_pre FROM pre_trusted_agents WHERE agent_id = ANY (v_ids);
    SELECT array_agg(
        CASE WHEN v_pre = 0 THEN 1.0 / v_n
             WHEN EXISTS (SELECT 1 FROM pre_trusted_agents WHERE agent_id = u.id) THEN 1.0 / v_pre
             ELSE 0 END ORDER BY u.ord)
    INTO v_p FROM unnest(v_ids) WITH ORDINALITY AS u(id, ord);

    WITH idx AS (
        SELECT u.id, u.ord::integer AS ord FROM unnest(v_ids) WITH ORDINALITY AS u(id, ord)
    ), edges AS (
        SELECT f.ord AS src, t.ord AS dst, g.local_trust::float8 AS trust,
               sum(g.local_trust::float8) OVER (PARTITION BY f.ord) AS row_sum
        FROM trust_graph AS g
        JOIN idx AS f ON f.id = g.from_agent_id
        JOIN idx AS t ON t.id = g.to_agent_id
        WHERE g.local_trust > 0
    )
    SELECT COALESCE(array_agg(src ORDER BY src, dst), '{}'), COALESCE(array_agg(dst ORDER BY src, dst), '{}'),
           COALESCE(array_agg(trust / row_sum ORDER BY src, dst), '{}')
    INTO v_src, v_dst, v_w FROM edges;

    v_has_out := array_fill(false, ARRAY[v_n]);
    FOR i IN 1 .. COALESCE(cardinality(v_src), 0) LOOP
        v_has_out[v_src[i]] := true;
    END LOOP;

    v_t := v_p;
    LOOP
        v_iter := v_iter + 1;
        v_next := array_fill(0::float8, ARRAY[v_n]);
        v_dangling := 0;
        FOR i IN 1 .. v_n LOOP
            IF NOT v_has_out[i] THEN
                v_dangling := v_dangling + v_t[i];
            END IF;
        END LOOP;
        FOR i IN 1 .. COALESCE(cardinality(v_src), 0) LOOP
            v_next[v_dst[i]] := v_next[v_dst[i]] + v_t[v_src[i]] * v_w[i];
        END LOOP;
        v_delta := 0;
        FOR i IN 1 .. v_n LOOP
            v_next[i] := (1 - v_alpha) * (v_next[i] + v_dangling * v_p[i]) + v_alpha * v_p[i];
            v_delta := v_delta + abs(v_next[i] - v_t[i]);
        END LOOP;
        v_t := v_next;
        EXIT WHEN v_delta < v_epsilon OR v_iter >= v_max;
    END LOOP;

    INSERT INTO eigentrust_runs (alpha, epsilon, iterations, final_delta, converged, agent_count, edge_count, started_at)
    VALUES (v_alpha, v_epsilon, v_iter, v_delta, v_delta < v_epsilon, v_n, COALESCE(cardinality(v_src), 0), v_started)
    RETURNING id INTO v_run;

    SELECT max(x) INTO v_max_t FROM unnest(v_t) AS x;

    WITH scores AS (
        SELECT u.id AS agent_id, v_t[u.ord::integer] AS t
        FROM unnest(v_ids) WITH ORDINALITY AS u(id, ord)
    ), parts AS (
        SELECT s.agent_id, s.t,
            LEAST(1, COALESCE(st.current_count, 0) / 30.0) AS persistence,
            COALESCE(a.success_rate, 0) / 100.0 * COALESCE(a.average_quality_score, 100) / 100.0 AS competence
        FROM scores AS s
        JOIN agents AS a ON a.id = s.agent_id
        LEFT JOIN streaks AS st ON st.agent_id = s.agent_id AND st.streak_type = 'daily_activity'
    ), composite AS (
        SELECT p.*, round((0.6 * CASE WHEN v_max_t > 0 THEN p.t / v_max_t ELSE 0 END
            + 0.2 * p.persistence + 0.2 * p.competence)::numeric, 4) AS score
        FROM parts AS p
    ), upserted AS (
        INSERT INTO global_trust_scores AS g (
            agent_id, eigentrust_score, persistence_score, competence_score, composite_score,
            trust_level, run_id, computed_at
        )
        SELECT agent_id, round(t::numeric, 10), round(persistence, 4), round(competence, 4), score,
               trust_level_for(score), v_run, now()
        FROM composite
        ON CONFLICT (agent_id) DO UPDATE SET
            eigentrust_score = EXCLUDED.eigentrust_score,
            persistence_score = EXCLUDED.persistence_score,
            competence_score = EXCLUDED.competence_score,
            composite_score = EXCLUDED.composite_score,
            trust_level = EXCLUDED.trust_level,
            run_id = EXCLUDED.run_id,
            computed_at = EXCLUDED.computed_at
        RETURNING g.agent_id, g.eigentrust_score, g.composite_score, g.trust_level,
                  g.persistence_score, g.competence_score
    ), history AS (
        INSERT INTO reputation_history (agent_id, eigentrust_score, composite_score, trust_level, run_id, details)
        SELECT agent_id, eigentrust_score, composite_score, trust_level, v_run,
               jsonb_build_object('persistence_score', persistence_score, 'competence_score', competence_score)
        FROM upserted
        RETURNING agent_id, composite_score
    )
    UPDATE agents AS a SET trust_score = h.composite_score FROM history AS h WHERE a.id = h.agent_id;

    PERFORM refresh_reputation_views();
    RETURN v_run;
END
$$;

-- ---------------------------------------------------------------------------------------------
-- 7. Battles: results and Elo
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION check_battle_winner() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.winner_id IS NOT NULL AND (TG_OP = 'INSERT' OR OLD.winner_id IS DISTINCT FROM NEW.winner_id)
        AND NOT EXISTS (
            SELECT 1 FROM battle_participants WHERE battle_id = NEW.id AND agent_id = NEW.winner_id
        )
    THEN
        RAISE EXCEPTION 'battles.winner_id % is not a participant of battle %', NEW.winner_id, NEW.battle_id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER battles_check_winner
    BEFORE INSERT OR UPDATE OF winner_id ON battles
    FOR EACH ROW EXECUTE FUNCTION check_battle_winner();

CREATE FUNCTION record_battle_result(p_battle_id uuid, p_agent_id uuid, p_score numeric, p_rank integer DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_status battle_status;
BEGIN
    SELECT status INTO v_status FROM battles WHERE id = p_battle_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'battle % does not exist', p_battle_id;
    END IF;
    IF v_status IN ('completed', 'cancelled') THEN
        RAISE EXCEPTION 'battle % is % and takes no more results', p_battle_id, v_status;
    END IF;
    UPDATE battle_participants SET score = p_score, rank = p_rank
    WHERE battle_id = p_battle_id AND agent_id = p_agent_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'agent % is not a participant of battle %: no result recorded', p_agent_id, p_battle_id
            USING ERRCODE = 'check_violation';
    END IF;
END
$$;

-- Standard Elo. Every participant plays every other one: S = 1 / 0.5 / 0 by rank (lower is
-- better; from score when ranks are missing), E = 1 / (1 + 10^((Ropp - Rself) / 400)),
-- change = round(K * sum(S - E) / (n - 1)). Two participants give the textbook formula.
CREATE FUNCTION update_elo_on_battle_completion() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_k numeric := orchestrator_setting('elo_k_factor');
    v_initial integer := orchestrator_setting('elo_initial_rating')::integer;
    v_n integer;
    v_top uuid;
    r record;
BEGIN
    SELECT count(*) INTO v_n FROM battle_participants WHERE battle_id = NEW.id;
    IF v_n < 2 THEN
        RAISE EXCEPTION 'battle % cannot complete with % participant(s); at least 2 are needed', NEW.battle_id, v_n;
    END IF;

    -- Ranks: given ranks win; otherwise rank by score; the declared winner is first.
    UPDATE battle_participants AS bp SET rank = x.r
    FROM (
        SELECT id, rank() OVER (ORDER BY (agent_id = NEW.winner_id) DESC NULLS LAST, score DESC NULLS LAST) AS r
        FROM battle_participants WHERE battle_id = NEW.id
    ) AS x
    WHERE bp.id = x.id AND bp.rank IS NULL;

    IF EXISTS (SELECT 1 FROM battle_participants WHERE battle_id = NEW.id AND rank IS NULL) THEN
        RAISE EXCEPTION 'battle %: every participant needs a rank or a score', NEW.battle_id;
    END IF;

    IF NEW.winner_id IS NULL THEN
        SELECT agent_id INTO v_top FROM battle_participants WHERE battle_id = NEW.id AND rank = 1;
        IF (SELECT count(*) FROM battle_participants WHERE battle_id = NEW.id AND rank = 1) = 1 THEN
            NEW.winner_id := v_top;
        END IF;
    ELSIF (SELECT rank FROM battle_participants WHERE battle_id = NEW.id AND agent_id = NEW.winner_id) <> 1 THEN
        RAISE EXCEPTION 'battles.winner_id % must hold rank 1 in battle %', NEW.winner_id, NEW.battle_id;
    END IF;
    NEW.completed_at := COALESCE(NEW.completed_at, now());

    IF NEW.is_rated THEN
        FOR r IN
            WITH p AS (
                SELECT bp.id, bp.agent_id, bp.rank, COALESCE(a.elo_rating, v_initial) AS rating
                FROM battle_participants AS bp JOIN agents AS a ON a.id = bp.agent_id
                WHERE bp.battle_id = NEW.id
            )
            SELECT me.id, me.agent_id, me.rating,
                avg(CASE WHEN me.rank < opp.rank THEN 1.0 WHEN me.rank = opp.rank THEN 0.5 ELSE 0.0 END) AS actual,
                avg(1.0 / (1.0 + power(10.0, (opp.rating - me.rating) / 400.0))) AS expected
            FROM p AS me JOIN p AS opp ON opp.id <> me.id
            GROUP BY me.id, me.agent_id, me.rating
        LOOP
            UPDATE battle_participants
            SET elo_before = r.rating,
                elo_change = round(v_k * (r.actual - r.expected))::integer,
                elo_after = r.rating + round(v_k * (r.actual - r.expected))::integer
            WHERE id = r.id;
            INSERT INTO elo_history (agent_id, battle_id, old_rating, new_rating, change, k_factor, expected_score, actual_score)
            VALUES (r.agent_id, NEW.id, r.rating, r.rating + round(v_k * (r.actual - r.expected))::integer,
                    round(v_k * (r.actual - r.expected))::integer, v_k, round(r.expected, 5), round(r.actual, 5));
            UPDATE agents SET elo_rating = r.rating + round(v_k * (r.actual - r.expected))::integer
            WHERE id = r.agent_id;
        END LOOP;
    END IF;

    UPDATE agents AS a
    SET battles_won = battles_won + (bp.rank = 1)::integer,
        battles_lost = battles_lost + (bp.rank > 1)::integer
    FROM battle_participants AS bp
    WHERE bp.battle_id = NEW.id AND bp.agent_id = a.id;

    IF NEW.prize_pool > 0 AND NEW.winner_id IS NOT NULL THEN
        UPDATE battle_participants SET points_awarded = NEW.prize_pool
        WHERE battle_id = NEW.id AND agent_id = NEW.winner_id;
        INSERT INTO point_transactions (agent_id, category, base_points, reason, reference_type, reference_id)
        VALUES (NEW.winner_id, 'battle', NEW.prize_pool, 'Won ' || NEW.battle_id, 'battle', NEW.id);
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER battle_completion_updates_elo
    BEFORE UPDATE OF status ON battles
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status AND NEW.status = 'completed')
    EXECUTE FUNCTION update_elo_on_battle_completion();

-- ---------------------------------------------------------------------------------------------
-- 8. Leaderboards
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION refresh_leaderboard_rankings(p_period text DEFAULT 'weekly', p_as_of date DEFAULT current_date)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_start date;
    v_end date;
    v_prev_start date;
    v_rows integer;
BEGIN
    CASE p_period
        WHEN 'daily' THEN v_start := p_as_of; v_end := p_as_of; v_prev_start := p_as_of - 1;
        WHEN 'weekly' THEN
            v_start := date_trunc('week', p_as_of)::date; v_end := v_start + 6; v_prev_start := v_start - 7;
        WHEN 'monthly' THEN
            v_start := date_trunc('month', p_as_of)::date;
            v_end := (v_start + interval '1 month' - interval '1 day')::date;
            v_prev_start := (v_start - interval '1 month')::date;
        WHEN 'all_time' THEN v_start := DATE '2000-01-01'; v_end := p_as_of; v_prev_start := v_start;
        ELSE
            RAISE EXCEPTION 'leaderboard period % is not one of daily, weekly, monthly, all_time', p_period;
    END CASE;

    DELETE FROM leaderboard_rankings WHERE period = p_period AND period_start = v_start;

    WITH scores AS (
        SELECT c.category, a.id AS agent_id,
            CASE c.score_source
                WHEN 'points' THEN (
                    SELECT sum(pt.final_points) FROM point_transactions AS pt
                    WHERE pt.agent_id = a.id AND pt.created_at >= v_start AND pt.created_at < v_end + 1)
                WHEN 'tasks_completed' THEN (
                    SELECT count(*) FROM tasks AS t
                    WHERE t.assigned_to = a.id AND t.status = 'completed'
                      AND t.completed_at >= v_start AND t.completed_at < v_end + 1)
                WHEN 'quality' THEN (
                    SELECT avg(t.quality_score) FROM tasks AS t
                    WHERE t.assigned_to = a.id AND t.status = 'completed'
                      AND t.completed_at >= v_start AND t.completed_at < v_end + 1)
                WHEN 'elo_rating' THEN a.elo_rating
                WHEN 'trust' THEN (SELECT g.composite_score FROM global_trust_scores AS g WHERE g.agent_id = a.id)
            END AS score
        FROM leaderboard_categories AS c CROSS JOIN agents AS a
        WHERE a.deleted_at IS NULL
    ), ranked AS (
        SELECT s.category, s.agent_id, s.score,
            rank() OVER (PARTITION BY s.category ORDER BY s.score DESC)::integer AS rnk
        FROM scores AS s
        WHERE s.score IS NOT NULL AND s.score <> 0
    )
    INSERT INTO leaderboard_rankings (category, period, period_start, period_end, agent_id, rank, score,
                                      previous_rank, rank_change)
    SELECT r.category, p_period, v_start, v_end, r.agent_id, r.rnk, r.score, prev.rank, prev.rank - r.rnk
    FROM ranked AS r
    LEFT JOIN leaderboard_rankings AS prev
        ON prev.category = r.category AND prev.period = p_period AND prev.period_start = v_prev_start
       AND prev.agent_id = r.agent_id AND p_period <> 'all_time';
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    RETURN v_rows;
END
$$;

-- ---------------------------------------------------------------------------------------------
-- 9. Mentorship
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION update_mentorship_progress() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_pairing uuid := CASE WHEN TG_OP = 'DELETE' THEN OLD.pairing_id ELSE NEW.pairing_id END;
BEGIN
    UPDATE mentorship_pairings
    SET completed_sessions = (SELECT count(*) FROM mentorship_sessions WHERE pairing_id = v_pairing),
        started_at = COALESCE(started_at, now())
    WHERE id = v_pairing;
    UPDATE mentor_profiles AS m
    SET average_rating = (
        SELECT round(avg(s.mentee_rating), 2) FROM mentorship_sessions AS s
        JOIN mentorship_pairings AS p ON p.id = s.pairing_id WHERE p.mentor_id = m.agent_id
    )
    WHERE m.agent_id = (SELECT mentor_id FROM mentorship_pairings WHERE id = v_pairing);
    RETURN NULL;
END
$$;

CREATE TRIGGER mentorship_sessions_update_progress
    AFTER INSERT OR DELETE ON mentorship_sessions
    FOR EACH ROW EXECUTE FUNCTION update_mentorship_progress();

-- ---------------------------------------------------------------------------------------------
-- 10. Rewards
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION reserve_pool_resources() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_pool resource_pools%ROWTYPE;
BEGIN
    SELECT * INTO v_pool FROM resource_pools WHERE id = NEW.pool_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'resource_allocations.pool_id % does not exist', NEW.pool_id;
    END IF;
    IF v_pool.available < NEW.amount THEN
        RAISE EXCEPTION 'resource pool % has % % available; % requested', v_pool.resource_type,
            v_pool.available, v_pool.unit, NEW.amount USING ERRCODE = 'check_violation';
    END IF;
    NEW.resource_type := v_pool.resource_type;
    IF NEW.performance_tier IS NULL THEN
        SELECT current_tier INTO NEW.performance_tier FROM agents WHERE id = NEW.agent_id;
    END IF;
    UPDATE resource_pools SET available = available - NEW.amount WHERE id = NEW.pool_id;
    RETURN NEW;
END
$$;

CREATE TRIGGER resource_allocations_reserve
    BEFORE INSERT ON resource_allocations
    FOR EACH ROW EXECUTE FUNCTION reserve_pool_resources();

CREATE FUNCTION return_pool_resources() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.released_at IS NULL AND NEW.released_at IS NOT NULL THEN
        UPDATE resource_pools SET available = available + NEW.amount WHERE id = NEW.pool_id;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER resource_allocations_release
    AFTER UPDATE OF released_at ON resource_allocations
    FOR EACH ROW EXECUTE FUNCTION return_pool_resources();

CREATE FUNCTION release_expired_allocations() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_rows integer;
BEGIN
    UPDATE resource_allocations SET released_at = now()
    WHERE released_at IS NULL AND expires_at <= now();
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    RETURN v_rows;
END
$$;

CREATE FUNCTION claim_reward(p_agent_id uuid, p_reward_key text) RETURNS uuid
LANGUAGE plpgsql AS $$
DECLARE
    v_reward rewards%ROWTYPE;
    v_agent agents%ROWTYPE;
    v_claim uuid;
BEGIN
    SELECT * INTO v_reward FROM rewards WHERE reward_key = p_reward_key AND deleted_at IS NULL;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'reward % does not exist', p_reward_key;
    END IF;
    SELECT * INTO v_agent FROM agents WHERE id = p_agent_id AND deleted_at IS NULL FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'agent % does not exist', p_agent_id;
    END IF;
    IF v_agent.current_tier < v_reward.required_tier THEN
        RAISE EXCEPTION 'reward % needs tier %; agent % is %', p_reward_key, v_reward.required_tier,
            v_agent.agent_id, v_agent.current_tier;
    END IF;
    IF v_agent.total_points < v_reward.cost_points THEN
        RAISE EXCEPTION 'reward % costs % points; agent % has %', p_reward_key, v_reward.cost_points,
            v_agent.agent_id, v_agent.total_points;
    END IF;
    INSERT INTO reward_claims (reward_id, agent_id, points_spent)
    VALUES (v_reward.id, p_agent_id, v_reward.cost_points) RETURNING id INTO v_claim;
    IF v_reward.cost_points > 0 THEN
        INSERT INTO point_transactions (agent_id, category, base_points, multiplier, reason, reference_type, reference_id)
        VALUES (p_agent_id, 'reward_claim', -v_reward.cost_points, 1, 'Claimed ' || p_reward_key, 'reward', v_reward.id);
    END IF;
    RETURN v_claim;
END
$$;

-- ---------------------------------------------------------------------------------------------
-- 11. Penalties: penalty points, history, retraining, appeals
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION set_violation_penalty() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.penalty_points IS NULL THEN
        SELECT penalty_points INTO NEW.penalty_points FROM penalty_rules
        WHERE violation_type = NEW.violation_type AND severity = NEW.severity;
        NEW.penalty_points := COALESCE(NEW.penalty_points, NEW.severity * 10);
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER violations_set_penalty
    BEFORE INSERT ON violations
    FOR EACH ROW EXECUTE FUNCTION set_violation_penalty();

CREATE FUNCTION apply_violation_penalty() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_retrain boolean;
BEGIN
    INSERT INTO penalty_history (agent_id, violation_id, event_type, penalty_points, details)
    VALUES (NEW.agent_id, NEW.id, 'penalty_applied', NEW.penalty_points,
            jsonb_build_object('violation_type', NEW.violation_type, 'severity', NEW.severity));
    IF NEW.penalty_points > 0 THEN
        INSERT INTO point_transactions (agent_id, category, base_points, multiplier, reason, reference_type, reference_id)
        VALUES (NEW.agent_id, 'penalty', -NEW.penalty_points, 1, NEW.violation_type::text, 'violation', NEW.id);
    END IF;
    SELECT requires_retraining INTO v_retrain FROM penalty_rules
    WHERE violation_type = NEW.violation_type AND severity = NEW.severity;
    IF COALESCE(v_retrain, false) OR NEW.severity >= 4 THEN
        INSERT INTO retraining_programs (agent_id, violation_id, curriculum)
        VALUES (NEW.agent_id, NEW.id, jsonb_build_array(NEW.violation_type::text));
        INSERT INTO penalty_history (agent_id, violation_id, event_type, details)
        VALUES (NEW.agent_id, NEW.id, 'retraining_assigned', '{}');
    END IF;
    IF NEW.severity = 5 THEN
        UPDATE agents SET status = 'suspended' WHERE id = NEW.agent_id;
        INSERT INTO penalty_history (agent_id, violation_id, event_type, details)
        VALUES (NEW.agent_id, NEW.id, 'suspended', '{}');
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER violations_apply_penalty
    AFTER INSERT ON violations
    FOR EACH ROW EXECUTE FUNCTION apply_violation_penalty();

-- Runs as the owner so the check sees the violation whatever the caller's row-level security says.
CREATE FUNCTION check_appeal() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_owner uuid;
    v_status varchar;
    v_current text := NULLIF(current_setting('app.current_agent_id', true), '');
BEGIN
    SELECT agent_id, status INTO v_owner, v_status FROM violations WHERE id = NEW.violation_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'appeals.violation_id % does not exist', NEW.violation_id;
    END IF;
    IF v_owner <> NEW.agent_id OR (v_current IS NOT NULL AND v_current::uuid <> NEW.agent_id) THEN
        RAISE EXCEPTION 'appeals.agent_id %: an agent may appeal only its own violations', NEW.agent_id
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = format('violation %s belongs to another agent', NEW.violation_id);
    END IF;
    IF v_status <> 'upheld' THEN
        RAISE EXCEPTION 'violation % is % and cannot be appealed', NEW.violation_id, v_status;
    END IF;
    UPDATE violations SET status = 'under_appeal' WHERE id = NEW.violation_id;
    RETURN NEW;
END
$$;

CREATE TRIGGER appeals_check_owner
    BEFORE INSERT ON appeals
    FOR EACH ROW EXECUTE FUNCTION check_appeal();

CREATE FUNCTION resolve_appeal() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_points integer;
BEGIN
    IF OLD.status = NEW.status OR NEW.status NOT IN ('approved', 'rejected', 'withdrawn') THEN
        RETURN NULL;
    END IF;
    IF NEW.status = 'approved' THEN
        UPDATE violations SET status = 'overturned', resolved_at = now() WHERE id = NEW.violation_id
        RETURNING penalty_points INTO v_points;
        IF v_points > 0 THEN
            INSERT INTO point_transactions (agent_id, category, base_points, multiplier, reason, reference_type, reference_id)
            VALUES (NEW.agent_id, 'appeal_refund', v_points, 1, 'Appeal approved', 'appeal', NEW.id);
        END IF;
        INSERT INTO penalty_history (agent_id, violation_id, event_type, penalty_points, details)
        VALUES (NEW.agent_id, NEW.violation_id, 'appeal_granted', -COALESCE(v_points, 0),
                jsonb_build_object('appeal_id', NEW.id));
    ELSE
        UPDATE violations SET status = 'upheld' WHERE id = NEW.violation_id;
        INSERT INTO penalty_history (agent_id, violation_id, event_type, details)
        VALUES (NEW.agent_id, NEW.violation_id, 'appeal_' || NEW.status::text, jsonb_build_object('appeal_id', NEW.id));
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER appeals_resolve
    AFTER UPDATE OF status ON appeals
    FOR EACH ROW EXECUTE FUNCTION resolve_appeal();

-- ---------------------------------------------------------------------------------------------
-- Partitions: the document's create_next_month_partitions() kept as an idempotent API over
-- pg_partman, and the daily maintenance entry point that applies retention (detach, keep table).
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION partitioned_tables() RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
    SELECT ARRAY['agent_activity_log', 'task_history', 'point_transactions', 'reputation_history', 'penalty_history'];
$$;

CREATE FUNCTION create_next_month_partitions() RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, partman, pg_temp AS $$
DECLARE
    next_month date := date_trunc('month', current_date + interval '1 month')::date;
    table_name text;
BEGIN
    IF to_regclass('public.agentdb_partitions') IS NOT NULL THEN
        PERFORM maintain_partitions();  -- no pg_partman here (0001)
        RETURN;
    END IF;
    -- partman skips partitions that exist, so calling this again changes nothing.
    FOREACH table_name IN ARRAY partitioned_tables() LOOP
        PERFORM partman.create_partition_time(
            'public.' || table_name, ARRAY[date_trunc('month', current_date)::timestamptz, next_month::timestamptz]
        );
    END LOOP;
END
$$;

CREATE FUNCTION run_partition_maintenance(p_retention_months integer) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, partman, pg_temp AS $$
DECLARE
    table_name text;
BEGIN
    IF p_retention_months IS NULL OR p_retention_months < 1 THEN
        RAISE EXCEPTION 'partition retention must be at least 1 month, got %', p_retention_months;
    END IF;
    IF to_regclass('public.agentdb_partitions') IS NOT NULL THEN
        -- No pg_partman here (0001): our function premakes and detaches by this retention.
        UPDATE agentdb_partitions SET retention_months = p_retention_months
        WHERE retention_months IS DISTINCT FROM p_retention_months;
        PERFORM maintain_partitions();
        RETURN;
    END IF;
    UPDATE partman.part_config
    SET retention = p_retention_months || ' months', retention_keep_table = true
    WHERE parent_table IN (SELECT 'public.' || t FROM unnest(partitioned_tables()) AS t);
    FOREACH table_name IN ARRAY partitioned_tables() LOOP
        PERFORM partman.run_maintenance('public.' || table_name);
    END LOOP;
    PERFORM create_next_month_partitions();
END
$$;

-- ---------------------------------------------------------------------------------------------
-- Views. v_agent_reputation aggregates ratings and the trust graph for every agent, so it is
-- materialized and refreshed after each EigenTrust run and by pg_cron; the others read
-- denormalised columns or small sets and stay live.
-- ---------------------------------------------------------------------------------------------
CREATE VIEW v_active_agents AS
SELECT
    a.id, a.agent_id, a.name, a.type, a.status, a.current_tier, a.total_points, a.elo_rating,
    a.trust_score, a.tasks_completed, a.tasks_failed, a.success_rate, a.average_quality_score,
    a.average_task_time_ms, a.battles_won, a.battles_lost, a.last_active_at, a.created_at,
    (SELECT count(*) FROM agent_skills AS s WHERE s.agent_id = a.id AND s.deleted_at IS NULL) AS skill_count,
    (SELECT count(*) FROM agent_achievements AS aa WHERE aa.agent_id = a.id) AS achievement_count,
    (SELECT count(*) FROM tasks AS t
     WHERE t.assigned_to = a.id AND t.status IN ('assigned', 'in_progress') AND t.deleted_at IS NULL) AS active_tasks,
    COALESCE((SELECT st.current_count FROM streaks AS st
              WHERE st.agent_id = a.id AND st.streak_type = 'daily_activity'), 0) AS current_streak
FROM agents AS a
WHERE a.deleted_at IS NULL AND a.status IN ('active', 'idle', 'busy');

CREATE VIEW v_current_leaderboard AS
SELECT
    lr.category, lr.period, lr.period_start, lr.period_end, lr.rank, lr.score, lr.previous_rank,
    lr.rank_change, a.id AS agent_uuid, a.agent_id, a.name, a.current_tier, lr.updated_at
FROM leaderboard_rankings AS lr
JOIN agents AS a ON a.id = lr.agent_id
WHERE lr.period = 'weekly'
  AND lr.period_start = date_trunc('week', current_date)::date
  AND a.deleted_at IS NULL;

CREATE VIEW v_active_mentorships AS
SELECT
    p.id AS pairing_id, p.mentor_id, mentor.name AS mentor_name, p.mentee_id, mentee.name AS mentee_name,
    p.skill_focus, p.planned_sessions, p.completed_sessions,
    round(100.0 * LEAST(p.completed_sessions, p.planned_sessions) / p.planned_sessions, 2) AS completion_percentage,
    (SELECT round(avg(mp.progress_percentage), 2) FROM mentee_progress AS mp WHERE mp.pairing_id = p.id)
        AS average_curriculum_progress,
    (SELECT max(ms.held_at) FROM mentorship_sessions AS ms WHERE ms.pairing_id = p.id) AS last_session_at,
    p.started_at
FROM mentorship_pairings AS p
JOIN agents AS mentor ON mentor.id = p.mentor_id
JOIN agents AS mentee ON mentee.id = p.mentee_id
WHERE p.status = 'active' AND p.deleted_at IS NULL;

CREATE MATERIALIZED VIEW v_agent_reputation AS
SELECT
    a.id, a.agent_id, a.name, a.type, a.current_tier, a.trust_score,
    g.eigentrust_score, g.persistence_score, g.competence_score, g.composite_score,
    COALESCE(g.trust_level, 'unrated') AS trust_level,
    pr.average_rating AS peer_rating_average, COALESCE(pr.rating_count, 0) AS peer_rating_count,
    COALESCE(ti.trusted_by, 0) AS trusted_by_count, ti.average_trust AS average_incoming_trust,
    COALESCE(tout.trusts, 0) AS trusts_count,
    g.computed_at
FROM agents AS a
LEFT JOIN global_trust_scores AS g ON g.agent_id = a.id
LEFT JOIN (
    SELECT ratee_id, round(avg(rating), 2) AS average_rating, count(*) AS rating_count
    FROM peer_ratings GROUP BY ratee_id
) AS pr ON pr.ratee_id = a.id
LEFT JOIN (
    SELECT to_agent_id, count(*) AS trusted_by, round(avg(local_trust), 4) AS average_trust
    FROM trust_graph GROUP BY to_agent_id
) AS ti ON ti.to_agent_id = a.id
LEFT JOIN (
    SELECT from_agent_id, count(*) AS trusts FROM trust_graph GROUP BY from_agent_id
) AS tout ON tout.from_agent_id = a.id
WHERE a.deleted_at IS NULL;
CREATE UNIQUE INDEX uniq_v_agent_reputation_id ON v_agent_reputation (id);
CREATE INDEX idx_v_agent_reputation_level_score ON v_agent_reputation (trust_level, eigentrust_score DESC);

CREATE VIEW v_task_queue_summary AS
SELECT
    t.status, t.priority,
    count(*) AS task_count,
    count(t.assigned_to) AS assigned_count,
    min(t.created_at) AS oldest_created_at,
    round(avg(extract(epoch FROM now() - t.created_at))) AS average_age_seconds,
    count(*) FILTER (WHERE t.deadline_at < now()) AS overdue_count,
    round(avg(t.quality_score), 2) AS average_quality_score
FROM tasks AS t
WHERE t.deleted_at IS NULL
GROUP BY t.status, t.priority;

CREATE FUNCTION refresh_reputation_views() RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_matviews WHERE matviewname = 'v_agent_reputation' AND ispopulated) THEN
        REFRESH MATERIALIZED VIEW CONCURRENTLY v_agent_reputation;
    ELSE
        REFRESH MATERIALIZED VIEW v_agent_reputation;
    END IF;
END
$$;

-- ---------------------------------------------------------------------------------------------
-- Security (the document's Security section). The baseline's default privileges already give
-- ai_agent_app SELECT/INSERT/UPDATE/DELETE and ai_agent_readonly SELECT on every table and view
-- created above, which is exactly the document's GRANT ... ON ALL TABLES; only the exceptions
-- follow.
-- ---------------------------------------------------------------------------------------------

-- The vote audit trail is append-only for the application.
REVOKE UPDATE, DELETE ON vote_audit_trail FROM ai_agent_app;

-- Maintenance entry points run as the owner (pg_cron); the application does not call them.
REVOKE EXECUTE ON FUNCTION create_next_month_partitions() FROM PUBLIC, ai_agent_app;
REVOKE EXECUTE ON FUNCTION run_partition_maintenance(integer) FROM PUBLIC, ai_agent_app;
REVOKE EXECUTE ON FUNCTION refresh_reputation_views() FROM PUBLIC, ai_agent_app;
REVOKE EXECUTE ON FUNCTION compute_eigentrust(numeric, numeric, integer) FROM PUBLIC, ai_agent_app;

-- Row-level security on violations: an agent (app.current_agent_id) sees only its own rows; the
-- application may record violations; the analytics role reads all of them. The owner, which
-- runs the triggers and jobs, is not subject to these policies.
ALTER TABLE violations ENABLE ROW LEVEL SECURITY;

CREATE POLICY agent_own_violations ON violations
    FOR SELECT
    USING (agent_id = NULLIF(current_setting('app.current_agent_id', true), '')::uuid);

CREATE POLICY violations_app_insert ON violations
    FOR INSERT TO ai_agent_app
    WITH CHECK (true);

CREATE POLICY violations_readonly_select ON violations
    FOR SELECT TO ai_agent_readonly
    USING (true);
