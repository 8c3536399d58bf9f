-- Seed 003, "Indexes Strategy": the B-tree indexes, with the document's names.
-- uniq_consensus_task_id is the UNIQUE constraint created with consensus_decisions (0002).
-- The e-commerce tables get none: orders (user_id, status) stays missing for the demo.

CREATE INDEX idx_tasks_status ON tasks (status);
CREATE INDEX idx_tasks_created_at ON tasks (created_at DESC);
CREATE INDEX idx_tasks_type ON tasks (type);

CREATE INDEX idx_agent_executions_task_id ON agent_executions (task_id);
CREATE INDEX idx_agent_executions_fork_id ON agent_executions (fork_id);
CREATE INDEX idx_agent_executions_status ON agent_executions (agent_type, status);

CREATE INDEX idx_proposals_agent_execution_id ON optimization_proposals (agent_execution_id);
CREATE INDEX idx_proposals_type ON optimization_proposals (proposal_type);

CREATE INDEX idx_benchmark_proposal_id ON benchmark_results (proposal_id);
CREATE INDEX idx_benchmark_query_name ON benchmark_results (query_name);

CREATE INDEX idx_consensus_winning_proposal ON consensus_decisions (winning_proposal_id);
CREATE INDEX idx_consensus_applied ON consensus_decisions (applied_to_main);
